//! Secrets at rest (channel credentials, provider keys): AES-256-GCM under the platform key
//! from configuration (`SECRETS_KEY`; on AWS a KMS data key kept in Secrets Manager).
//!
//! A sealed value is `version (1 byte) || nonce (12) || ciphertext || tag (16)`. The row's id
//! and the company id are the associated data, so a sealed value copied into another row or
//! another tenant does not open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed or was sealed under another key or row")]
    Open,
    #[error("no randomness available for a nonce")]
    Random,
}

/// The platform's sealing key. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SealingKey {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    pub fn new(bytes: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256 takes a 32-byte key");
        SealingKey { key: std::sync::Arc::new(LessSafeKey::new(key)) }
    }

    /// Encrypts `plaintext` bound to (`company`, `row`).
    pub fn seal(&self, company: Uuid, row: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(company, row)), &mut in_out)
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same (`company`, `row`).
    pub fn open(&self, company: Uuid, row: Uuid, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + AES_256_GCM.tag_len() || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| SealError::Open)?;
        let mut in_out = sealed[1 + NONCE_LEN..].to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(aad(company, row)), &mut in_out).map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

fn aad(company: Uuid, row: Uuid) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..16].copy_from_slice(company.as_bytes());
    a[16..].copy_from_slice(row.as_bytes());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = SealingKey::new(&[7u8; 32]);
        let (c, r) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = key.seal(c, r, b"app-secret").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"app-secret"));
        assert_eq!(key.open(c, r, &sealed).unwrap(), b"app-secret");
        // Another row, another company, another key, a flipped byte: none opens.
        assert_eq!(key.open(c, Uuid::new_v4(), &sealed), Err(SealError::Open));
        assert_eq!(key.open(Uuid::new_v4(), r, &sealed), Err(SealError::Open));
        assert_eq!(SealingKey::new(&[8u8; 32]).open(c, r, &sealed), Err(SealError::Open));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(c, r, &flipped), Err(SealError::Open));
        assert_eq!(key.open(c, r, &sealed[..5]), Err(SealError::Open));
        // Two seals of one value differ (fresh nonce).
        assert_ne!(key.seal(c, r, b"app-secret").unwrap(), sealed);
    }
}
