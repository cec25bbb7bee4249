//! Agent packages (`chatapp_agent_packages`, seed 001 section 3.1) and their versions
//! (`chatapp_agent_package_versions`, migration 0026): global rows every signed-in user may
//! read and only the master admin may write (row-level security). Agents are made from them by
//! the agents function (`chatapp::repo::agents::package`).
//!
//! A package's bundle, when one was uploaded, is a platform object of the blob store under its
//! SHA-256: [`bundle_key`] (`<nil uuid>/packages/<sha256 hex>`), and `package_url` holds that
//! object key (not a URL a client can fetch). Seeded built-in packages have a `builtin://` URL
//! and no stored bundle.
//!
//! `usage_count` as read here is counted: the agents (not deleted) made from the package that
//! the caller may see, i.e. of every company for the master admin and of the caller's company
//! otherwise. The stored `usage_count` column is not maintained (the agents function does not
//! increment it) and is not read.
//!
//! It also holds the checks of what the master admin writes that are the package's own rules
//! (capabilities, tool names, the hash, what the default configuration enables), used by the
//! `agent-packages` function.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use super::agents::{CUSTOM_MODEL, CUSTOM_PROMPT};
use crate::adapters::blob::{BlobError, ObjectKey};
use crate::db::{DbError, TenantTx};
use crate::error::ApiError;
use crate::tenant::CompanyId;

/// The part of a bundle's object key before its hash.
pub const BUNDLE_PREFIX: &str = "packages/";

/// An agent package as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentPackage {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `major.minor.patch`.
    pub version: String,
    /// Where the bundle is: the blob store's object key of an uploaded bundle
    /// (`<nil uuid>/packages/<sha256>`), `builtin://<slug>` for a built-in package, or absent.
    pub package_url: Option<String>,
    /// The SHA-256 (64 hex digits) an uploaded bundle must have, or had.
    pub package_hash: Option<String>,
    pub entry_point: Option<String>,
    /// Bytes of the uploaded bundle.
    pub package_size: Option<i32>,
    /// `["rag", "tools", ...]`.
    #[schema(value_type = Vec<String>)]
    pub capabilities: Value,
    /// What an agent made from the package starts with: `llmConfig`, `ragConfig`,
    /// `enabledTools`, `toolConfig`, `responseStyle`, `escalationRules`, `businessHours`,
    /// `fallbackResponses`, `systemPrompt`, `personality`, `ragEnabled`.
    #[schema(value_type = Object)]
    pub default_config: Value,
    /// The tools the package enables (`default_config.enabledTools`).
    #[schema(value_type = Vec<String>)]
    pub enabled_tools: Value,
    pub author: Option<String>,
    pub documentation: Option<String>,
    pub changelog: Option<String>,
    /// Companies may make agents from it (when also published).
    pub is_active: bool,
    pub is_default: bool,
    /// Agents made from the package that the caller may see (every company's for the master
    /// admin, the caller's company's otherwise).
    pub usage_count: i64,
    /// The bundle with `package_hash` is in the blob store.
    pub bundle_stored: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Absent until the master admin publishes it.
    pub published_at: Option<DateTime<Utc>>,
}

impl AgentPackage {
    /// Companies may see it and make agents from it.
    pub fn usable(&self) -> bool {
        self.is_active && self.published_at.is_some()
    }

    /// Nothing is declared that is missing: no `package_hash`, or the bundle with it is stored,
    /// or the package is built in.
    pub fn bundle_verified(&self) -> bool {
        self.package_hash.is_none()
            || self.bundle_stored
            || self.package_url.as_deref().is_some_and(|u| u.starts_with("builtin://"))
    }

    /// What the master admin set, to change some of it.
    pub fn fields(&self) -> PackageFields {
        PackageFields {
            name: self.name.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            version: self.version.clone(),
            package_url: self.package_url.clone(),
            package_hash: self.package_hash.clone(),
            entry_point: self.entry_point.clone(),
            package_size: self.package_size,
            capabilities: self.capabilities.clone(),
            default_config: self.default_config.clone(),
            enabled_tools: self.enabled_tools.clone(),
            author: self.author.clone(),
            documentation: self.documentation.clone(),
            changelog: self.changelog.clone(),
        }
    }
}

/// The columns the master admin sets (checked by the caller). `slug` is written on insert only.
#[derive(Debug, Clone)]
pub struct PackageFields {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub version: String,
    pub package_url: Option<String>,
    pub package_hash: Option<String>,
    pub entry_point: Option<String>,
    pub package_size: Option<i32>,
    pub capabilities: Value,
    pub default_config: Value,
    pub enabled_tools: Value,
    pub author: Option<String>,
    pub documentation: Option<String>,
    pub changelog: Option<String>,
}

/// One version of a package: what it held when it was the current one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PackageVersion {
    pub id: Uuid,
    pub package_id: Uuid,
    pub version: String,
    #[schema(value_type = Vec<String>)]
    pub capabilities: Value,
    #[schema(value_type = Object)]
    pub default_config: Value,
    #[schema(value_type = Vec<String>)]
    pub enabled_tools: Value,
    pub documentation: Option<String>,
    pub changelog: Option<String>,
    pub package_hash: Option<String>,
    pub package_size: Option<i32>,
    /// The master admin who made it (absent for versions recorded from an existing package).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The package's tools: `default_config.enabledTools` (what agents copy) when it is a list, else
/// the column (packages seeded without it).
const ENABLED_TOOLS: &str = "CASE WHEN jsonb_typeof(p.default_config -> 'enabledTools') = 'array' \
    THEN p.default_config -> 'enabledTools' ELSE COALESCE(p.enabled_tools, '[]'::jsonb) END";

/// The package's columns (the statements alias the package `p`), with its counted usage.
const COLUMNS: &str = "p.id, p.name, p.slug, p.description, p.version, p.package_url, p.package_hash, \
    p.entry_point, p.package_size, COALESCE(p.capabilities, '[]'::jsonb), COALESCE(p.default_config, '{}'::jsonb), \
    CASE WHEN jsonb_typeof(p.default_config -> 'enabledTools') = 'array' \
    THEN p.default_config -> 'enabledTools' ELSE COALESCE(p.enabled_tools, '[]'::jsonb) END, \
    p.author, p.documentation, p.changelog, COALESCE(p.is_active, true), COALESCE(p.is_default, false), \
    (SELECT count(*) FROM chatapp_agents a WHERE a.package_id = p.id AND a.deleted_at IS NULL), \
    p.created_at, p.updated_at, p.published_at";

/// The number of columns in [`COLUMNS`] (the list's window count follows them).
const NCOLUMNS: usize = 21;

fn from_row(r: &Row) -> AgentPackage {
    let package_url: Option<String> = r.get(5);
    let package_hash: Option<String> = r.get(6);
    let bundle_stored = match (&package_hash, &package_url) {
        (Some(hash), Some(url)) => *url == bundle_object(hash),
        _ => false,
    };
    AgentPackage {
        id: r.get(0),
        name: r.get(1),
        slug: r.get(2),
        description: r.get(3),
        version: r.get(4),
        package_url,
        package_hash,
        entry_point: r.get(7),
        package_size: r.get(8),
        capabilities: r.get(9),
        default_config: r.get(10),
        enabled_tools: r.get(11),
        author: r.get(12),
        documentation: r.get(13),
        changelog: r.get(14),
        is_active: r.get(15),
        is_default: r.get(16),
        usage_count: r.get(17),
        bundle_stored,
        created_at: r.get(18),
        updated_at: r.get(19),
        published_at: r.get(20),
    }
}

const VERSION_COLUMNS: &str = "v.id, v.package_id, v.version, v.capabilities, v.default_config, v.enabled_tools, \
    v.documentation, v.changelog, v.package_hash, v.package_size, v.created_by, v.created_at";

fn version_from_row(r: &Row) -> PackageVersion {
    PackageVersion {
        id: r.get(0),
        package_id: r.get(1),
        version: r.get(2),
        capabilities: r.get(3),
        default_config: r.get(4),
        enabled_tools: r.get(5),
        documentation: r.get(6),
        changelog: r.get(7),
        package_hash: r.get(8),
        package_size: r.get(9),
        created_by: r.get(10),
        created_at: r.get(11),
    }
}

/// The SHA-256 of `bytes`, 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The blob store key of the bundle with SHA-256 `hash`: a platform object (the nil company).
pub fn bundle_key(hash: &str) -> Result<ObjectKey, BlobError> {
    ObjectKey::new(CompanyId::GLOBAL, &format!("{BUNDLE_PREFIX}{hash}"))
}

/// [`bundle_key`]'s full text, as `package_url` holds it.
fn bundle_object(hash: &str) -> String {
    format!("{}/{BUNDLE_PREFIX}{hash}", CompanyId::GLOBAL)
}

/// `major.minor.patch`, each a number of at most 9 digits without a leading zero (`0` itself is
/// fine), at most 20 characters in all; `None` for anything else.
pub fn parse_version(raw: &str) -> Option<(u64, u64, u64)> {
    if raw.len() > 20 {
        return None;
    }
    let mut parts = raw.split('.');
    let mut number = || -> Option<u64> {
        let p = parts.next()?;
        let ok =
            (1..=9).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
        if ok {
            p.parse().ok()
        } else {
            None
        }
    };
    let v = (number()?, number()?, number()?);
    if parts.next().is_some() {
        return None;
    }
    Some(v)
}

// --- Checks of what the master admin writes (400 naming the field) -------------------------

/// The capabilities a package may declare: `rag`, `tools`, `custom_prompt` and `custom_model`
/// (which the agents function acts on), and the seed's `file_upload`, `voice` and
/// `multi_agent` (declared only: nothing acts on them yet).
pub const CAPABILITIES: &[&str] =
    &["rag", "tools", "custom_prompt", "custom_model", "file_upload", "voice", "multi_agent"];

const MAX_TOOLS: usize = 50;
const MAX_TOOL_NAME: usize = 64;

/// Known capabilities, none twice.
pub fn capabilities(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let c = raw.trim();
        if !CAPABILITIES.contains(&c) {
            return Err(ApiError::validation(format!(
                "capabilities[{i}]: unknown capability {c:?}; known: {}",
                CAPABILITIES.join(", ")
            )));
        }
        if out.iter().any(|o| o == c) {
            return Err(ApiError::validation(format!("capabilities[{i}]: {c:?} is in the list twice")));
        }
        out.push(c.to_string());
    }
    Ok(out)
}

/// At most 50 tool names (lowercase letters, digits and `_`, starting with a letter, at most
/// 64 characters), none twice, each a built-in tool.
pub fn tool_names(field: &str, list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_TOOLS {
        return Err(ApiError::validation(format!("{field} must have at most {MAX_TOOLS} tools")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let t = raw.trim();
        let mut bytes = t.bytes();
        let ok = t.len() <= MAX_TOOL_NAME
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ApiError::validation(format!(
                "{field}[{i}] must be a tool name: lowercase letters, digits and '_', starting with a letter, at most \
                 {MAX_TOOL_NAME} characters"
            )));
        }
        if out.iter().any(|o| o == t) {
            return Err(ApiError::validation(format!("{field}[{i}]: {t:?} is in the list twice")));
        }
        out.push(t.to_string());
    }
    if let Some(message) = crate::chat::tools::unknown_builtin(field, &out) {
        return Err(ApiError::validation(message));
    }
    Ok(out)
}

/// 64 hex digits, lower-cased.
pub fn package_hash(raw: &str) -> Result<String, ApiError> {
    let s = raw.trim().to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(ApiError::validation("package_hash must be 64 hex digits (a SHA-256)"))
    }
}

/// A default configuration as given: its settings, checked, without `enabledTools`, and its
/// `enabledTools`.
pub struct ConfigInput {
    pub settings: Map<String, Value>,
    pub tools: Option<Vec<String>>,
}

/// The strings of a JSON list.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The configuration to store and the package's tools: the given configuration (or the current
/// one), with `enabledTools` set to the given tools (or the configuration's, or the current
/// ones). Both given and different: 400.
pub fn settle(
    config: Option<ConfigInput>,
    tools: Option<Vec<String>>,
    current_config: &Value,
    current_tools: &Value,
) -> Result<(Map<String, Value>, Vec<String>), ApiError> {
    let (mut settings, config_tools) = match config {
        Some(c) => (c.settings, c.tools),
        None => (current_config.as_object().cloned().unwrap_or_default(), None),
    };
    let tools = match (tools, config_tools) {
        (Some(given), Some(in_config)) if given != in_config => {
            return Err(ApiError::validation(
                "default_config.enabledTools differs from enabled_tools: give the package's tools once",
            ))
        }
        (Some(given), _) => given,
        (None, Some(in_config)) => in_config,
        (None, None) => strings(current_tools),
    };
    settings.insert("enabledTools".to_string(), json!(tools));
    Ok((settings, tools))
}

/// What the configuration enables must be among the capabilities, as the agents function
/// requires of an agent made from the package: `rag` for `ragEnabled`, `ragConfig` and the
/// `rag_search` tool, `tools` for any other tool and `toolConfig`.
pub fn check_grants(capabilities: &[String], settings: &Map<String, Value>, tools: &[String]) -> Result<(), ApiError> {
    let has = |c: &str| capabilities.iter().any(|x| x == c);
    let non_empty = |key: &str| settings.get(key).and_then(Value::as_object).is_some_and(|o| !o.is_empty());
    let mut needs: Vec<(String, &str)> = Vec::new();
    if settings.get("ragEnabled") == Some(&Value::Bool(true)) {
        needs.push(("default_config.ragEnabled".to_string(), "rag"));
    }
    if non_empty("ragConfig") {
        needs.push(("default_config.ragConfig".to_string(), "rag"));
    }
    if non_empty("toolConfig") {
        needs.push(("default_config.toolConfig".to_string(), "tools"));
    }
    for (i, tool) in tools.iter().enumerate() {
        needs.push((format!("enabled_tools[{i}]"), crate::chat::tools::capability_for(tool)));
    }
    match needs.into_iter().find(|(_, capability)| !has(capability)) {
        None => Ok(()),
        Some((path, capability)) => Err(ApiError::validation(format!(
            "{path} needs the {capability:?} capability, which the package does not declare"
        ))),
    }
}

/// Removes from a default configuration what only the master admin sees (as the agents
/// function hides it): `systemPrompt` unless the capabilities grant `custom_prompt`,
/// `llmConfig` unless they grant `custom_model`.
pub fn hide_master_fields(config: &mut Value, capabilities: &Value) {
    let has = |c: &str| capabilities.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(c)));
    let (prompt, model) = (has(CUSTOM_PROMPT), has(CUSTOM_MODEL));
    if let Some(o) = config.as_object_mut() {
        if !prompt {
            o.remove("systemPrompt");
        }
        if !model {
            o.remove("llmConfig");
        }
    }
}

pub async fn insert(tx: &TenantTx, f: &PackageFields) -> Result<AgentPackage, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "WITH p AS (
                    INSERT INTO chatapp_agent_packages
                        (name, slug, description, version, package_url, package_hash, entry_point, package_size,
                         capabilities, default_config, enabled_tools, author, documentation, changelog,
                         is_active, is_default)
                    VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::text, 'index.js'), $8::int4, $9, $10, $11, $12,
                            $13, $14, true, false)
                    RETURNING *)
                 SELECT {COLUMNS} FROM p"
            ),
            &[
                &f.name,
                &f.slug,
                &f.description,
                &f.version,
                &f.package_url,
                &f.package_hash,
                &f.entry_point,
                &f.package_size,
                &f.capabilities,
                &f.default_config,
                &f.enabled_tools,
                &f.author,
                &f.documentation,
                &f.changelog,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

/// One page of the packages (the default first, then by name), with the total. `active`
/// filters by whether packages are active; `only_usable` hides every package that is not both
/// active and published (what companies see); `name_like` is an `ILIKE` pattern on the name or
/// slug (the caller escapes `%`, `_` and `\`).
pub async fn list(
    tx: &TenantTx,
    active: Option<bool>,
    only_usable: bool,
    name_like: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AgentPackage>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_agent_packages p
                 WHERE ($1::boolean IS NULL OR COALESCE(p.is_active, true) = $1)
                   AND (NOT $2::boolean OR (COALESCE(p.is_active, true) AND p.published_at IS NOT NULL))
                   AND ($3::text IS NULL OR p.name ILIKE $3 OR p.slug ILIKE $3)
                 ORDER BY COALESCE(p.is_default, false) DESC, p.name, p.id LIMIT $4 OFFSET $5"
            ),
            &[&active, &only_usable, &name_like, &limit, &offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(NCOLUMNS)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<AgentPackage>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_agent_packages p WHERE p.id = $1"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], after locking the row until the transaction ends (the master admin's only:
/// row-level security hides the row from a lock anyone else asks for).
pub async fn lock(tx: &TenantTx, id: Uuid) -> Result<Option<AgentPackage>, DbError> {
    let locked =
        tx.client().query_opt("SELECT id FROM chatapp_agent_packages WHERE id = $1 FOR UPDATE", &[&id]).await?;
    if locked.is_none() {
        return Ok(None);
    }
    get(tx, id).await
}

/// Replaces every column the master admin sets but the slug.
pub async fn update(tx: &TenantTx, id: Uuid, f: &PackageFields) -> Result<Option<AgentPackage>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH p AS (
                    UPDATE chatapp_agent_packages SET
                        name = $2, description = $3, version = $4, package_url = $5, package_hash = $6,
                        entry_point = $7, package_size = $8::int4, capabilities = $9, default_config = $10,
                        enabled_tools = $11, author = $12, documentation = $13, changelog = $14, updated_at = now()
                    WHERE id = $1
                    RETURNING *)
                 SELECT {COLUMNS} FROM p"
            ),
            &[
                &id,
                &f.name,
                &f.description,
                &f.version,
                &f.package_url,
                &f.package_hash,
                &f.entry_point,
                &f.package_size,
                &f.capabilities,
                &f.default_config,
                &f.enabled_tools,
                &f.author,
                &f.documentation,
                &f.changelog,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Makes the package the default (the previous default stops being one first: at most one
/// package is, a unique index says so) or not the default.
pub async fn set_default(tx: &TenantTx, id: Uuid, is_default: bool) -> Result<Option<AgentPackage>, DbError> {
    if is_default {
        tx.client()
            .execute(
                "UPDATE chatapp_agent_packages SET is_default = false, updated_at = now() WHERE is_default AND id <> $1",
                &[&id],
            )
            .await?;
    }
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH p AS (
                    UPDATE chatapp_agent_packages SET is_default = $2, updated_at = now() WHERE id = $1 RETURNING *)
                 SELECT {COLUMNS} FROM p"
            ),
            &[&id, &is_default],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Sets `published_at` (kept when it is already set).
pub async fn publish(tx: &TenantTx, id: Uuid) -> Result<Option<AgentPackage>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH p AS (
                    UPDATE chatapp_agent_packages SET published_at = COALESCE(published_at, now()), updated_at = now()
                    WHERE id = $1 RETURNING *)
                 SELECT {COLUMNS} FROM p"
            ),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn set_active(tx: &TenantTx, id: Uuid, active: bool) -> Result<Option<AgentPackage>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH p AS (
                    UPDATE chatapp_agent_packages SET is_active = $2, updated_at = now() WHERE id = $1 RETURNING *)
                 SELECT {COLUMNS} FROM p"
            ),
            &[&id, &active],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Records the package as it is now as a version.
pub async fn insert_version(
    tx: &TenantTx,
    p: &AgentPackage,
    created_by: Option<Uuid>,
) -> Result<PackageVersion, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "WITH v AS (
                    INSERT INTO chatapp_agent_package_versions
                        (package_id, version, capabilities, default_config, enabled_tools, documentation, changelog,
                         package_hash, package_size, created_by)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::int4, $10)
                    RETURNING *)
                 SELECT {VERSION_COLUMNS} FROM v"
            ),
            &[
                &p.id,
                &p.version,
                &p.capabilities,
                &p.default_config,
                &p.enabled_tools,
                &p.documentation,
                &p.changelog,
                &p.package_hash,
                &p.package_size,
                &created_by,
            ],
        )
        .await?;
    Ok(version_from_row(&row))
}

/// Records the package's current version when it has no version row yet (a package seeded
/// before it had versions), dated by the package's last change.
pub async fn ensure_current_version(tx: &TenantTx, id: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            &format!(
                "INSERT INTO chatapp_agent_package_versions
                    (package_id, version, capabilities, default_config, enabled_tools, documentation, changelog,
                     package_hash, package_size, created_at)
                 SELECT p.id, p.version, COALESCE(p.capabilities, '[]'::jsonb), COALESCE(p.default_config, '{{}}'::jsonb),
                        {ENABLED_TOOLS}, p.documentation, p.changelog, p.package_hash, p.package_size, p.updated_at
                 FROM chatapp_agent_packages p WHERE p.id = $1
                 ON CONFLICT (package_id, version) DO NOTHING"
            ),
            &[&id],
        )
        .await?;
    Ok(())
}

/// Writes the package's bundle (hash and size) into its current version's row (recording the
/// version first if it has none).
pub async fn sync_current_bundle(tx: &TenantTx, id: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            &format!(
                "INSERT INTO chatapp_agent_package_versions
                    (package_id, version, capabilities, default_config, enabled_tools, documentation, changelog,
                     package_hash, package_size)
                 SELECT p.id, p.version, COALESCE(p.capabilities, '[]'::jsonb), COALESCE(p.default_config, '{{}}'::jsonb),
                        {ENABLED_TOOLS}, p.documentation, p.changelog, p.package_hash, p.package_size
                 FROM chatapp_agent_packages p WHERE p.id = $1
                 ON CONFLICT (package_id, version)
                 DO UPDATE SET package_hash = EXCLUDED.package_hash, package_size = EXCLUDED.package_size"
            ),
            &[&id],
        )
        .await?;
    Ok(())
}

/// One page of the package's versions, newest first, with the total.
pub async fn list_versions(
    tx: &TenantTx,
    package: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PackageVersion>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS}, count(*) OVER () FROM chatapp_agent_package_versions v
                 WHERE v.package_id = $1
                 ORDER BY v.created_at DESC, v.id DESC LIMIT $2 OFFSET $3"
            ),
            &[&package, &limit, &offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(12)).unwrap_or(0);
    Ok((rows.iter().map(version_from_row).collect(), total))
}

/// Whether any agent (of any company the caller may see: every one for the master admin),
/// deleted or not, was made from the package.
pub async fn in_use(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one("SELECT EXISTS (SELECT 1 FROM chatapp_agents WHERE package_id = $1)", &[&id])
        .await?
        .get(0))
}

/// The bundle hashes the package and its versions name.
pub async fn bundle_hashes(tx: &TenantTx, id: Uuid) -> Result<Vec<String>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT package_hash FROM chatapp_agent_packages WHERE id = $1 AND package_hash IS NOT NULL
             UNION
             SELECT package_hash FROM chatapp_agent_package_versions WHERE package_id = $1 AND package_hash IS NOT NULL",
            &[&id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether a package or a version names the bundle hash.
pub async fn hash_referenced(tx: &TenantTx, hash: &str) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM chatapp_agent_packages WHERE package_hash = $1)
                 OR EXISTS (SELECT 1 FROM chatapp_agent_package_versions WHERE package_hash = $1)",
            &[&hash],
        )
        .await?
        .get(0))
}

/// Deletes the package and its versions.
pub async fn delete(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let n = tx.client().execute("DELETE FROM chatapp_agent_packages WHERE id = $1", &[&id]).await?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(parse_version("1.0.0"), Some((1, 0, 0)));
        assert_eq!(parse_version("0.10.2"), Some((0, 10, 2)));
        assert!(parse_version("1.10.0") > parse_version("1.9.9"));
        assert!(parse_version("2.0.0") > parse_version("1.99.99"));
        for bad in ["", "1", "1.0", "1.0.0.0", "01.0.0", "1.a.0", "1..0", "v1.0.0", "1.0.0-beta", "1234567890.0.0"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn bundle_keys_are_platform_objects() {
        let hash = sha256_hex(b"bundle");
        assert_eq!(hash.len(), 64);
        let key = bundle_key(&hash).unwrap();
        assert!(key.company().is_global());
        assert_eq!(key.full(), bundle_object(&hash));
        assert_eq!(key.full(), format!("00000000-0000-0000-0000-000000000000/packages/{hash}"));
    }
}
