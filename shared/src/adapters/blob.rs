//! Knowledge files. Every object key starts with the company id; an [`ObjectKey`] cannot be
//! built any other way, and listing takes a [`CompanyId`].

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::tenant::CompanyId;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    company: CompanyId,
    rest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    #[error("blob store I/O failed")]
    Io(#[from] std::io::Error),
    #[error("S3 request failed: {0}")]
    S3(String),
    /// The function did not declare S3 access (its `AwsAccess`), so its IAM role has none.
    #[error("this function has no access to the blob store")]
    NotPermitted,
}

impl ObjectKey {
    /// `rest` is the part after `<company_id>/`: relative, no `.`/`..` segments, ≤ 900 bytes.
    pub fn new(company: CompanyId, rest: &str) -> Result<Self, BlobError> {
        let ok = !rest.is_empty()
            && rest.len() <= 900
            && !rest.starts_with('/')
            && !rest.contains('\\')
            && !rest.contains('\0')
            && rest.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
        if !ok {
            return Err(BlobError::InvalidKey(rest.to_string()));
        }
        Ok(Self { company, rest: rest.to_string() })
    }

    /// Parses a full key (`<company_id>/<rest>`), as found in an S3 event.
    pub fn parse_full(key: &str) -> Result<Self, BlobError> {
        let (company, rest) = key.split_once('/').ok_or_else(|| BlobError::InvalidKey(key.into()))?;
        let company = uuid::Uuid::parse_str(company).map_err(|_| BlobError::InvalidKey(key.into()))?;
        Self::new(CompanyId::new(company), rest)
    }

    pub fn company(&self) -> CompanyId {
        self.company
    }

    pub fn rest(&self) -> &str {
        &self.rest
    }

    pub fn full(&self) -> String {
        format!("{}/{}", self.company, self.rest)
    }
}

/// A URL the client uploads the file to directly (S3 presigned PUT).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PresignedUpload {
    pub method: String,
    pub url: String,
    /// Headers the client must send exactly as given (they are part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// A direct-upload URL for `key`, bound to the content type and exact size, or `None` when
    /// the store has no such thing (the local directory: clients use the upload route instead).
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> Result<Option<PresignedUpload>, BlobError>;
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;
    /// `None` when there is no such object.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, BlobError>;
    /// Keys of `company` whose rest starts with `prefix`, sorted.
    async fn list(&self, company: CompanyId, prefix: &str) -> Result<Vec<ObjectKey>, BlobError>;
    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError>;
    /// Deletes every object of `company` under `prefix` ("" for all); returns how many.
    async fn delete_prefix(&self, company: CompanyId, prefix: &str) -> Result<usize, BlobError> {
        let keys = self.list(company, prefix).await?;
        for k in &keys {
            self.delete(k).await?;
        }
        Ok(keys.len())
    }
}

/// Embedded: files under a local directory, `<root>/<company_id>/<rest>`.
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        let mut p = self.root.join(key.company.to_string());
        for seg in key.rest.split('/') {
            p.push(seg);
        }
        debug_assert!(p.components().all(|c| !matches!(c, Component::ParentDir)));
        p
    }
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, base, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn presign_put(
        &self,
        _key: &ObjectKey,
        _content_type: &str,
        _size: u64,
        _ttl: std::time::Duration,
    ) -> Result<Option<PresignedUpload>, BlobError> {
        Ok(None)
    }

    async fn put(&self, key: &ObjectKey, bytes: Bytes, _content_type: &str) -> Result<(), BlobError> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Write then rename, so a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, BlobError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, company: CompanyId, prefix: &str) -> Result<Vec<ObjectKey>, BlobError> {
        let base = self.root.join(company.to_string());
        let mut rels = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&base, &base, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
        rels.retain(|r| r.starts_with(prefix) && !r.contains(".tmp-"));
        rels.sort();
        rels.iter().map(|r| ObjectKey::new(company, r)).collect()
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Production: one S3 bucket.
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

fn s3_err<E: std::error::Error + 'static>(e: aws_sdk_s3::error::SdkError<E>) -> BlobError {
    BlobError::S3(crate::error::error_chain(&e))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> Result<Option<PresignedUpload>, BlobError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| BlobError::S3(format!("presigning config: {e}")))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.full())
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(config)
            .await
            .map_err(s3_err)?;
        Ok(Some(PresignedUpload {
            method: req.method().to_string(),
            url: req.uri().to_string(),
            headers: req.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }))
    }

    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.full())
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(s3_err)?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, BlobError> {
        match self.client.get_object().bucket(&self.bucket).key(key.full()).send().await {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| BlobError::S3(e.to_string()))?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_err(e)),
        }
    }

    async fn list(&self, company: CompanyId, prefix: &str) -> Result<Vec<ObjectKey>, BlobError> {
        let full_prefix = format!("{company}/{prefix}");
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full_prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(s3_err)?;
            for obj in page.contents() {
                if let Some(k) = obj.key() {
                    let parsed = ObjectKey::parse_full(k)?;
                    // The prefix filter is S3's; the company check is ours.
                    if parsed.company == company {
                        out.push(parsed);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.rest.cmp(&b.rest));
        Ok(out)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        self.client.delete_object().bucket(&self.bucket).key(key.full()).send().await.map_err(s3_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_their_company() {
        let c = CompanyId::new(uuid::Uuid::nil());
        assert!(ObjectKey::new(c, "file/a.txt").is_ok());
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a\\b", "./a"] {
            assert!(ObjectKey::new(c, bad).is_err(), "{bad:?} accepted");
        }
        let k = ObjectKey::new(c, "f/x.pdf").unwrap();
        assert_eq!(k.full(), format!("{}/f/x.pdf", uuid::Uuid::nil()));
        assert_eq!(ObjectKey::parse_full(&k.full()).unwrap(), k);
        assert!(ObjectKey::parse_full("not-a-uuid/x").is_err());
    }
}
