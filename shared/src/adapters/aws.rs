//! AWS SDK configuration shared by the S3 and SQS adapters.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_s3::config::SharedHttpClient;
pub use aws_smithy_http_client::tls::TrustStore;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext};

use crate::config::Config;

/// The SDK's standard loader with its HTTPS client on ring, trusting the system's roots.
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(TrustStore::default()))
}

/// The SDK's HTTPS client on ring (its default client would link aws-lc-rs beside the ring that
/// PostgreSQL's TLS and reqwest use), trusting `trust`.
pub fn https_client(trust: TrustStore) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(TlsContext::builder().with_trust_store(trust).build().expect("a TLS context"))
        .build_https()
}

/// Loads region and credentials from the standard chain; `AWS_ENDPOINT_URL` (moto, LocalStack)
/// overrides the endpoint.
pub async fn sdk_config(cfg: &Config) -> SdkConfig {
    let mut loader = loader();
    if let Some(url) = &cfg.aws_endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

pub fn s3_client(sdk: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn ses_client(sdk: &SdkConfig) -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(sdk)
}

pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
