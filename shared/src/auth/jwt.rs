//! Minimal HS256 JWTs for short-lived access tokens: header and claims are fixed, so only a
//! token this platform signed (alg HS256, typ access) ever verifies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id.
    pub sub: Uuid,
    /// Company id; absent for the master admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<Uuid>,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

pub fn sign(claims: &AccessClaims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length works");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<AccessClaims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    // Refuse any other algorithm outright ("alg":"none" and friends).
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(JwtError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length works");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&sig).map_err(|_| JwtError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
    let claims: AccessClaims = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
    if claims.typ != "access" {
        return Err(JwtError::Malformed);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: Uuid::new_v4(),
            cid: Some(Uuid::new_v4()),
            role: "company_admin".into(),
            iat: 0,
            exp,
            typ: "access".into(),
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let key = b"0123456789abcdef0123456789abcdef";
        let c = claims(100);
        let t = sign(&c, key);
        assert_eq!(verify(&t, key, 50).unwrap(), c);
        assert_eq!(verify(&t, key, 100), Err(JwtError::Expired));
        assert_eq!(verify(&t, b"another-key-another-key-another-k", 50), Err(JwtError::BadSignature));
        let mut forged = t.clone();
        forged.push('x');
        assert!(verify(&forged, key, 50).is_err());
        assert_eq!(verify("a.b", key, 0), Err(JwtError::Malformed));
        // alg=none with an empty signature
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), t.split('.').nth(1).unwrap());
        assert_eq!(verify(&none, key, 50), Err(JwtError::Malformed));
    }
}
