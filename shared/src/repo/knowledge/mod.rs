//! Knowledge categories, files, articles and chunk rows.
//!
//! One file per section; everything is re-exported here, so callers name `repo::knowledge::X`.

mod articles;
mod categories;
mod chunks;
mod files;
mod rag_config;

pub use articles::{
    articles_in_category, create_article, delete_article, get_article, list_articles, mark_article_indexed,
    set_article_status, update_article, Article, ArticleFields,
};
pub use categories::{
    agent_categories, count_categories, count_existing_categories, create_category, delete_category, get_category,
    list_categories, update_category, would_cycle, Category, CategoryFields,
};
pub use chunks::{
    cached_embeddings, chunk_refs, count_chunks, prepare_chunk_refs, replace_chunks, store_embeddings, ChunkRef,
    NewChunk, Source,
};
pub use files::{
    create_file, delete_file, files_in_category, get_file, list_files, lock_file, mark_error, mark_indexed,
    mark_processing, queue_file, storage_used, FileFilter, KnowledgeFile, NewFile,
};
pub use rag_config::{agent_rag_config, rag_config_for_category};
