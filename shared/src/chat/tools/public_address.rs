//! Which addresses an agent's HTTP action may reach: [`forbidden_ip`] names the internal ones
//! (see `http_action`'s module documentation), and [`PublicResolver`] resolves host names to
//! public addresses only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What a call to an internal address fails with.
pub(crate) const NOT_PUBLIC: &str = "the action's address is not public";

/// An address an action may not be called at unless private addresses are allowed: loopback,
/// private (RFC 1918), shared (CGNAT), link-local, unspecified ("this network"), broadcast,
/// multicast, IPv6 unique-local, and the IPv4-mapped, IPv4-compatible and NAT64 forms of the
/// IPv4 ones.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    let v6 = match ip {
        IpAddr::V4(v4) => return forbidden_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    let s = v6.segments();
    let o = v6.octets();
    let embedded = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // fc00::/7 is unique-local (AWS's metadata service answers at fd00:ec2::254 too), fe80::/10
    // link-local; ::a.b.c.d is IPv4-compatible, 64:ff9b::a.b.c.d NAT64.
    let unique_local = (s[0] & 0xfe00) == 0xfc00;
    let link_local = (s[0] & 0xffc0) == 0xfe80;
    let compatible = s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    v6.is_unspecified()
        || v6.is_loopback()
        || v6.is_multicast()
        || unique_local
        || link_local
        || v6.to_ipv4_mapped().is_some_and(forbidden_v4)
        || (compatible && forbidden_v4(embedded))
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (b & 0xc0) == 64)
        || ip.is_broadcast()
        || ip.is_multicast()
}

/// The host of `url` when it is an IP address.
pub(crate) fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Resolves host names as the system does, then drops every address [`forbidden_ip`] refuses;
/// a name left with none fails. (An IP address in the URL is not resolved: `http_action::call` checks it.)
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(resolve_public(name.as_str().to_string()))
    }
}

async fn resolve_public(host: String) -> Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let public: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|addr| !forbidden_ip(addr.ip())).collect();
    if public.is_empty() {
        return Err(format!("{host} has no public address ({NOT_PUBLIC})").into());
    }
    Ok(Box::new(public.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:100.64.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b::192.168.0.1",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "169.253.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "fec0::1",
        ] {
            assert!(!forbidden_ip(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_only_internal_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let error = match PublicResolver.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("no public address") && error.contains(NOT_PUBLIC), "{error}");
    }
}
