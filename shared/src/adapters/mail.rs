//! Sending email (replies on the email channel): Amazon SES v2 with the raw RFC 5322 message,
//! so the threading headers (`In-Reply-To`, `References`) are ours; none on one machine unless
//! configured (`EMAIL_SENDER=ses` with an SES endpoint).

use async_trait::async_trait;

use crate::channels::SendError;

#[async_trait]
pub trait MailSender: Send + Sync {
    /// Sends `raw` (a complete message) from `from` to `to`; returns the provider's message id.
    async fn send_raw(&self, from: &str, to: &str, raw: &[u8]) -> Result<Option<String>, SendError>;
}

/// No email backend configured: every send fails with a clear, permanent reason.
pub struct NoMailSender;

#[async_trait]
impl MailSender for NoMailSender {
    async fn send_raw(&self, _from: &str, _to: &str, _raw: &[u8]) -> Result<Option<String>, SendError> {
        Err(SendError::Permanent {
            code: "email_not_configured".into(),
            message: "no email sender is configured (EMAIL_SENDER=ses)".into(),
        })
    }
}

/// Amazon SES v2 `SendEmail` with raw content.
pub struct SesMailSender {
    client: aws_sdk_sesv2::Client,
}

impl SesMailSender {
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl MailSender for SesMailSender {
    async fn send_raw(&self, from: &str, to: &str, raw: &[u8]) -> Result<Option<String>, SendError> {
        use aws_sdk_sesv2::primitives::Blob;
        use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
        let message = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| SendError::Permanent { code: "invalid_request".into(), message: e.to_string() })?;
        let sent = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(message).build())
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.message_id().map(str::to_string)),
            Err(e) => {
                use aws_sdk_sesv2::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or("unknown").to_string();
                let message = e.message().unwrap_or("SES request failed").to_string();
                // Throttling and service trouble pass; a rejected message or identity does not.
                if matches!(
                    code.as_str(),
                    "TooManyRequestsException" | "LimitExceededException" | "InternalFailure" | "unknown"
                ) || code.contains("Throttl")
                    || code.contains("ServiceUnavailable")
                {
                    Err(SendError::Retryable { status: None, message: format!("{code}: {message}"), retry_after: None })
                } else {
                    Err(SendError::Permanent { code, message })
                }
            }
        }
    }
}
