//! The knowledge base: text extraction, chunking, embeddings, vector index, and the ingestion
//! and search services built on them. Adapters (embedders, vector indexes) sit behind one trait
//! per capability, with the embedded and the hosted implementation side by side.

pub mod chunk;
pub mod embed;
pub mod extract;
pub mod lexical;
pub mod service;
pub mod vector;
#[cfg(feature = "embedded")]
pub mod vector_edge;
pub mod vector_qdrant;
