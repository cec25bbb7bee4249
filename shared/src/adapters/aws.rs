//! AWS SDK configuration shared by the S3 and SQS adapters.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::Config;

/// Loads region and credentials from the standard chain; `AWS_ENDPOINT_URL` (moto, LocalStack)
/// overrides the endpoint.
pub async fn sdk_config(cfg: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
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
