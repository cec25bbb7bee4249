//! The lexical half of hybrid retrieval: BM25 as sparse vectors. Documents get BM25 term
//! weights (`tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len))`); queries get weight 1 per term;
//! the index multiplies by IDF at query time (Qdrant's `Modifier::Idf`), so the dot product is
//! the BM25 score. Terms are lower-cased, stop words dropped, Snowball-stemmed (English) and
//! hashed to stable u32 ids (FNV-1a), so no vocabulary has to be stored.

use std::collections::BTreeMap;

use rust_stemmers::{Algorithm, Stemmer};

use super::vector::SparseVector;

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Typical chunk length in terms; a fixed estimate keeps a document's weights independent
/// of the rest of the corpus (so upserts never need rewriting).
const AVG_LEN: f32 = 150.0;

const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "do", "does", "for", "from", "had",
    "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "of", "on", "or", "our", "so",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

pub struct LexicalEncoder {
    stemmer: Stemmer,
}

impl Default for LexicalEncoder {
    fn default() -> Self {
        Self { stemmer: Stemmer::create(Algorithm::English) }
    }
}

impl LexicalEncoder {
    /// Stemmed terms of `text`, in order, stop words removed.
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| !STOP_WORDS.contains(&w.as_str()))
            .map(|w| self.stemmer.stem(&w).into_owned())
            .collect()
    }

    pub fn document(&self, text: &str) -> SparseVector {
        let terms = self.terms(text);
        let len = terms.len() as f32;
        let mut tf: BTreeMap<u32, f32> = BTreeMap::new();
        for t in &terms {
            *tf.entry(term_id(t)).or_default() += 1.0;
        }
        let norm = K1 * (1.0 - B + B * len / AVG_LEN);
        let (indices, values) = tf.into_iter().map(|(id, f)| (id, f * (K1 + 1.0) / (f + norm))).unzip();
        SparseVector { indices, values }
    }

    pub fn query(&self, text: &str) -> SparseVector {
        let mut ids: Vec<u32> = self.terms(text).iter().map(|t| term_id(t)).collect();
        ids.sort_unstable();
        ids.dedup();
        let values = vec![1.0; ids.len()];
        SparseVector { indices: ids, values }
    }
}

/// FNV-1a, 32 bits: stable across builds and platforms (std's hasher is not).
fn term_id(term: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in term.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_drops_stop_words() {
        let enc = LexicalEncoder::default();
        assert_eq!(enc.terms("The Refunds are processed quickly"), vec!["refund", "process", "quick"]);
        // Same stem, same id: a query for "refund" matches a document saying "refunds".
        assert_eq!(enc.query("refund").indices, enc.query("refunds").indices);
    }

    #[test]
    fn document_weights_saturate_with_term_frequency() {
        let enc = LexicalEncoder::default();
        let once = enc.document("invoice payment");
        let thrice = enc.document("invoice invoice invoice payment");
        let id = enc.query("invoice").indices[0];
        let w = |v: &SparseVector| v.values[v.indices.iter().position(|&i| i == id).unwrap()];
        assert!(w(&thrice) > w(&once));
        assert!(w(&thrice) < 3.0 * w(&once));
        assert!(enc.document("").indices.is_empty());
    }
}
