//! PostgreSQL access. Handlers never see a raw client: they get a [`TenantTx`], which can only
//! be opened from a [`TenantCtx`] and applies it with `set_config(..., true)`, i.e. for this
//! transaction only, so a pooled connection never carries one tenant's identity into the next
//! request. Repository functions (crate `repo` modules) are the only code that runs SQL.

pub mod listen;
pub mod migrate;
pub mod tls;

/// `text` as a literal inside a `LIKE` / `ILIKE` pattern: its `\`, `%` and `_` match themselves.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::tenant::TenantCtx;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("could not get a database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("migration {version} was changed after it was applied (checksum mismatch)")]
    MigrationChanged { version: String },
}

impl DbError {
    /// No connection could be had in time: the pool is exhausted or the server unreachable.
    pub fn is_busy(&self) -> bool {
        matches!(self, DbError::Pool(deadpool_postgres::PoolError::Timeout(_)))
    }

    /// The violated constraint's name when this is a unique violation (SQLSTATE 23505).
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            DbError::Query(e) => e.as_db_error().and_then(|db| {
                (db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                    .then(|| db.constraint().unwrap_or("unique").to_string())
            }),
            _ => None,
        }
    }
}

/// The application's connection pool (role `chatapp_app`, subject to RLS).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    listener: std::sync::Arc<listen::Listener>,
}

impl Db {
    /// Builds the pool; connections are made lazily, so a cold start costs no round trip.
    /// Waiting for a free connection, or for a new one to be made, is bounded by `timeout`:
    /// an exhausted pool answers 503 `busy` instead of hanging the request.
    pub fn connect(url: &str, pool_size: usize, timeout: Duration) -> Result<Self, DbError> {
        let target = tls::target(url)?;
        let listener = listen::Listener::new(target.config.clone(), target.tls.clone());
        let manager =
            Manager::from_config(target.config, target.tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .build()
            .map_err(|e| DbError::Config(e.to_string()))?;
        Ok(Self { pool, listener })
    }

    /// Opens a transaction that acts as `ctx`. Nothing is sent yet: the BEGIN (with the
    /// tenant settings) goes out together with the transaction's first statement, so opening a
    /// transaction costs no round trip of its own.
    pub async fn begin(&self, ctx: &TenantCtx) -> Result<TenantTx, DbError> {
        let conn = self.pool.get().await?;
        // Uuids and role names are formatted from typed values (hex digits, fixed words), so a
        // simple query built from them is safe.
        let company = ctx.company_id().map(|c| c.to_string()).unwrap_or_default();
        let user = ctx.user_id().map(|u| u.to_string()).unwrap_or_default();
        let begin = format!(
            "BEGIN; SELECT set_config('app.current_company_id', '{company}', true), \
             set_config('app.current_user_id', '{user}', true), \
             set_config('app.user_role', '{}', true)",
            ctx.db_role()
        );
        Ok(TenantTx { conn: Some(conn), ctx: ctx.clone(), phase: Mutex::new(Phase::Unsent(begin)) })
    }

    /// The process's LISTEN connection for conversation events (opened on first use).
    pub fn listener(&self) -> &std::sync::Arc<listen::Listener> {
        &self.listener
    }

    /// A connection with no tenant identity: RLS shows it no tenant rows. Used by the auth
    /// code (through SECURITY DEFINER lookups) and by infrastructure tables (queue, login
    /// attempts) that are not tenant data.
    pub(crate) async fn system(&self) -> Result<SystemConn, DbError> {
        Ok(SystemConn(self.pool.get().await?))
    }
}

/// A tenant-scoped transaction. Commit explicitly; dropping it uncommitted discards the
/// connection, so the server rolls back and nothing half-done returns to the pool.
pub struct TenantTx {
    conn: Option<Object>,
    ctx: TenantCtx,
    phase: Mutex<Phase>,
}

/// How far a transaction got on the wire.
enum Phase {
    /// Nothing sent yet; the BEGIN goes out with the first statement (see [`Db::begin`]).
    Unsent(String),
    Open,
    /// COMMIT is on its way: any further statement would run outside the transaction.
    CommitSent,
    /// Committed or rolled back: the connection is clean again.
    Ended,
}

impl TenantTx {
    pub fn ctx(&self) -> &TenantCtx {
        &self.ctx
    }

    /// The transaction's connection, preparing each statement once per connection: a cached
    /// statement costs one round trip per query instead of two (parse, then execute).
    pub(crate) fn client(&self) -> Cached<'_> {
        Cached { conn: self.conn.as_ref().expect("transaction is open"), phase: Some(&self.phase) }
    }

    /// Prepares `statements` (pipelined; free when all are cached). Once a statement is
    /// prepared, its query goes out the moment it is first polled, so queries joined after this
    /// (`tokio::try_join!` polls in the order written) reach the server, and run, in that order:
    /// one round trip for a sequence that must stay ordered, such as a lock and the reads after it.
    pub(crate) async fn prepare(&self, statements: &[&str]) -> Result<(), DbError> {
        let conn = self.conn.as_ref().expect("transaction is open");
        futures_util::future::try_join_all(statements.iter().map(|sql| conn.prepare_cached(sql))).await?;
        Ok(())
    }

    /// Plans this transaction's statements once per connection (`plan_cache_mode =
    /// force_generic_plan`) instead of once per execution. For a statement whose custom plan
    /// never wins but costs a planning pass every time, such as the chunk lookup by an id array
    /// behind every search (0.28 ms of planning per execution, measured). Call it before the
    /// first statement; afterwards it does nothing.
    pub fn prefer_generic_plans(&self) {
        if let Phase::Unsent(begin) = &mut *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            begin.push_str(", set_config('plan_cache_mode', 'force_generic_plan', true)");
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.end("COMMIT").await
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.end("ROLLBACK").await
    }

    /// Ends the transaction with `sql`; when no statement ran, nothing was sent and there is
    /// nothing to end.
    async fn end(mut self, sql: &str) -> Result<(), DbError> {
        let phase = std::mem::replace(self.phase.get_mut().unwrap_or_else(PoisonError::into_inner), Phase::Ended);
        if matches!(phase, Phase::Unsent(_)) {
            return Ok(());
        }
        let conn = self.conn.take().expect("transaction is open");
        conn.batch_execute(sql).await?;
        Ok(())
    }

    /// Runs `work` on this transaction and sends COMMIT right behind its statements, in the
    /// same round trip. `work` must send every statement when first polled: one prepared
    /// statement, or a join of them ([`TenantTx::prepare`]; a prepared statement goes out when
    /// first polled). A statement sent after the COMMIT panics rather than run outside the
    /// transaction. When `work` fails, the server turns the COMMIT into a rollback.
    pub async fn commit_alongside<T, E: From<DbError>>(
        &self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let conn = self.conn.as_ref().expect("transaction is open");
        let commit = async {
            // Polled right after `work` first was, so behind every statement it sent then.
            {
                let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
                if !matches!(*phase, Phase::Open) {
                    return Ok(false);
                }
                *phase = Phase::CommitSent;
            }
            conn.batch_execute("COMMIT").await.map(|()| true)
        };
        let (result, committed) = tokio::join!(biased; work, commit);
        let value = result?;
        let sent = committed.map_err(|e| E::from(DbError::from(e)))?;
        let open = matches!(*self.phase.lock().unwrap_or_else(PoisonError::into_inner), Phase::Open);
        if !sent && open {
            // `work` sent nothing before the commit point (an unprepared first statement):
            // commit after it instead.
            conn.batch_execute("COMMIT").await.map_err(|e| E::from(DbError::from(e)))?;
        }
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = Phase::Ended;
        Ok(value)
    }

    /// Commits on `Ok`, rolls back on `Err`, and passes the result on.
    pub async fn finish<T, E: From<DbError>>(self, result: Result<T, E>) -> Result<T, E> {
        match result {
            Ok(v) => {
                self.commit().await?;
                Ok(v)
            }
            Err(e) => {
                if let Err(rb) = self.rollback().await {
                    tracing::warn!(error = %rb, "rollback failed; connection dropped");
                }
                Err(e)
            }
        }
    }
}

/// A connection whose queries go through the per-connection statement cache. SQL text must
/// not embed values (they are parameters), so the cache stays as small as the set of queries.
pub(crate) struct Cached<'a> {
    conn: &'a Object,
    /// The transaction's progress (`None` outside a transaction).
    phase: Option<&'a Mutex<Phase>>,
}

impl Cached<'_> {
    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.conn.prepare_cached(sql).await?;
        self.checked(self.send(self.conn.query(&statement, params)).await)
    }

    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, tokio_postgres::Error> {
        let statement = self.conn.prepare_cached(sql).await?;
        self.checked(self.send(self.conn.query_one(&statement, params)).await)
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.conn.prepare_cached(sql).await?;
        self.checked(self.send(self.conn.query_opt(&statement, params)).await)
    }

    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        let statement = self.conn.prepare_cached(sql).await?;
        self.checked(self.send(self.conn.execute(&statement, params)).await)
    }

    /// Runs `query` (not yet polled, so not yet sent), sending the transaction's BEGIN right
    /// before it when this is the transaction's first statement: both in one round trip.
    async fn send<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        let begin = match self.phase {
            None => None,
            Some(phase) => {
                let mut phase = phase.lock().unwrap_or_else(PoisonError::into_inner);
                match std::mem::replace(&mut *phase, Phase::Open) {
                    Phase::Unsent(begin) => Some(begin),
                    Phase::Open => None,
                    Phase::CommitSent | Phase::Ended => {
                        panic!("a statement was sent after its transaction's COMMIT; prepare it first")
                    }
                }
            }
        };
        match begin {
            None => query.await,
            Some(begin) => {
                let (began, result) = tokio::join!(biased; self.conn.batch_execute(&begin), query);
                began?;
                result
            }
        }
    }

    /// A schema change under a running process invalidates its cached statements ("cached plan
    /// must not change result type", or a statement the server no longer knows): forget them
    /// all so the next transaction prepares afresh instead of failing for good.
    fn checked<T>(&self, result: Result<T, tokio_postgres::Error>) -> Result<T, tokio_postgres::Error> {
        use tokio_postgres::error::SqlState;
        if let Err(e) = &result {
            if e.code()
                .is_some_and(|c| *c == SqlState::FEATURE_NOT_SUPPORTED || *c == SqlState::INVALID_SQL_STATEMENT_NAME)
            {
                self.conn.statement_cache.clear();
            }
        }
        result
    }
}

/// A pooled connection without tenant identity (see [`Db::system`]); statements cached too.
pub(crate) struct SystemConn(Object);

impl SystemConn {
    fn cached(&self) -> Cached<'_> {
        Cached { conn: &self.0, phase: None }
    }

    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.cached().query(sql, params).await
    }

    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, tokio_postgres::Error> {
        self.cached().query_one(sql, params).await
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.cached().query_opt(sql, params).await
    }

    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        self.cached().execute(sql, params).await
    }
}

impl Drop for TenantTx {
    fn drop(&mut self) {
        // Nothing sent, or committed: the connection is clean and goes back to the pool.
        let clean =
            matches!(self.phase.get_mut().unwrap_or_else(PoisonError::into_inner), Phase::Unsent(_) | Phase::Ended);
        if let Some(conn) = self.conn.take().filter(|_| !clean) {
            // Detach from the pool and close: the server aborts the open transaction.
            drop(Object::take(conn));
        }
    }
}
