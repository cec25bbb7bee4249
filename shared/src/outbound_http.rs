//! The one way to build an HTTP client for calls out of the platform (model providers, embedders,
//! channel APIs, HTTP actions, key checks): reqwest on rustls with ring, the crypto provider
//! PostgreSQL's TLS and the AWS SDK's client use too, so no binary links a second one.

/// A reqwest builder whose TLS uses ring. reqwest (built without a provider of its own) takes the
/// process's default rustls provider when the client is built, so ring is installed first.
pub fn client_builder() -> reqwest::ClientBuilder {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // An error means a default is installed already: ring, the only provider linked.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// A client with reqwest's defaults on ring (tests and one-off calls).
pub fn client() -> reqwest::Client {
    client_builder().build().expect("an HTTP client on rustls with ring")
}
