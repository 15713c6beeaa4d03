//! The storage authority's database: one implementation of the storage traits for
//! every engine.
//!
//! Plain `sqlx::query` with `.bind()` and hand-written row mapping through sqlx's `Any`
//! driver (no sqlx macros, which would compile the whole database stack a second time).
//! Every query is written once, in the SQL the engines share; `crate::engine` holds
//! what differs. Every write that reads before it writes runs in a write transaction
//! (`BEGIN IMMEDIATE` on SQLite, `SERIALIZABLE` on PostgreSQL and MySQL); when the
//! database aborts one for a serialization failure or a deadlock, the whole transaction
//! runs again, a bounded number of times, with a jittered backoff. A failed statement
//! aborts a PostgreSQL transaction, so writes look before they insert rather than
//! catching a violation and going on.
//!
//! The schema stays within what CockroachDB accepts: application-chosen BIGINT IDs, no
//! sequences, no advisory locks on PostgreSQL, no cross-table foreign keys.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::AccountUpdate;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::BlockedKey;
use basalt_core::CertStatus;
use basalt_core::CertificateLookup;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::CrlPlacement;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::Incident;
use basalt_core::NewAccount;
use basalt_core::NewIncident;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderStatus;
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevocationStatus;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::StatusChange;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use sqlx::Any;
use sqlx::AnyConnection;
use sqlx::AnyPool;
use sqlx::AssertSqlSafe;
use sqlx::Executor;
use sqlx::Row;
use sqlx::Transaction;
use sqlx::any::AnyPoolOptions;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use time::OffsetDateTime;
use tracing::info;
use tracing::warn;

use crate::DatabaseConfig;
use crate::MaintenanceConfig;
use crate::common;
use crate::common::account_from_row;
use crate::common::challenge_from_row;
use crate::common::corrupt;
use crate::common::eab_key_from_row;
use crate::common::eab_refused;
use crate::common::from_json;
use crate::common::from_unix;
use crate::common::identifier_from_row;
use crate::common::identifier_type_str;
use crate::common::incident_from_row;
use crate::common::is_unique_violation;
use crate::common::new_id;
use crate::common::parse_cursor;
use crate::common::parse_wire;
use crate::common::position_value;
use crate::common::to_json;
use crate::common::unix;
use crate::engine::Engine;
use crate::engine::SQLITE_MEMORY_CONNECTIONS;
use crate::engine::for_engine;
use crate::engine::sql;
use crate::migrate;
use crate::status;
use crate::status::OrderFacts;

mod search;

/// How many times one write runs before a serialization failure is given up on.
const MAX_ATTEMPTS: u32 = 5;

/// How long the first retry waits; each later one waits twice as long, plus jitter.
const RETRY_BACKOFF: Duration = Duration::from_millis(5);

/// The most random delay added to a retry's wait, in milliseconds.
const RETRY_JITTER_MS: u64 = 10;

/// The start of the detail of an error that a retry may cure.
const SERIALIZATION_FAILURE: &str = "database serialization failure";

/// The shortest external account binding HMAC key accepted: 256 bits.
const MIN_EAB_KEY_BYTES: usize = 32;

/// The page size when a request asks for 0 items.
const DEFAULT_PAGE_SIZE: u32 = 50;

/// The most items one page holds, whatever the request asks for.
const MAX_PAGE_SIZE: u32 = 100;

/// How many of an account's newest orders order reuse looks at. Reuse serves a client
/// that asks again for what it asked a moment ago; bounding the look keeps the cost of
/// every new order of a large account constant.
const REUSE_CANDIDATES: i64 = 50;

/// The longest incident name, in bytes (MySQL's column is a VARCHAR(255)).
const MAX_INCIDENT_NAME: usize = 255;

/// The length of an issuer key hash (SHA-1; MySQL's column is a VARBINARY(20)).
const ISSUER_KEY_HASH_LEN: usize = 20;

/// The most status changes one `status_changes` call returns.
const MAX_STATUS_CHANGES: u32 = 10_000;

// The queries on hot paths, named so that the index test (`storage::tests`) explains
// the very text the storage runs.

const ACCOUNT_BY_ID: &str = "SELECT id, key_jwk, key_thumbprint, contacts, status, created_at
     FROM accounts WHERE id = $1";

const ACCOUNT_BY_KEY: &str = "SELECT id, key_jwk, key_thumbprint, contacts, status, created_at
     FROM accounts WHERE key_thumbprint = $1";

/// An order and its authorizations in one statement (so one round trip and a
/// consistent read without a transaction): a row per authorization, in the
/// order's order, each repeating the order's columns; a single row with null
/// authorization columns if it has none.
const ORDER_WITH_AUTHZS: &str = "SELECT o.account_id, o.identifiers, o.expires, o.error,
     o.began_processing, o.certificate_serial, o.created_at, o.profile, o.not_before,
     o.not_after, o.replaces, oa.authz_id, a.identifier_type, a.identifier_value, a.status,
     a.expires AS authz_expires, a.wildcard
     FROM orders o LEFT JOIN order_authzs oa ON oa.order_id = o.id
     LEFT JOIN authzs a ON a.id = oa.authz_id
     WHERE o.id = $1
     ORDER BY oa.position";

const ORDERS_PAGE_FIRST: &str = "SELECT id, created_at FROM orders
     WHERE account_id = $1
     ORDER BY created_at DESC, id DESC
     LIMIT $2";

const ORDERS_PAGE_AFTER: &str = "SELECT id, created_at FROM orders
     WHERE account_id = $1
     AND (created_at < $2 OR (created_at = $3 AND id < $4))
     ORDER BY created_at DESC, id DESC
     LIMIT $5";

/// An account's newest orders with what order reuse filters on, newest first.
const RECENT_ORDERS: &str = "SELECT id, identifiers, expires, error, began_processing,
     certificate_serial, profile, not_before, not_after, replaces
     FROM orders WHERE account_id = $1
     ORDER BY created_at DESC, id DESC
     LIMIT $2";

const REPLACEMENT_ORDERS: &str = "SELECT id FROM orders WHERE replaces = $1
     ORDER BY created_at DESC, id DESC";

/// An authorization and its challenges in one statement (so one round trip and a
/// consistent read without a transaction): a row per challenge, in their order,
/// each repeating the authorization's columns; a single row with null challenge
/// columns if it has none.
const AUTHZ_WITH_CHALLENGES: &str = "SELECT a.account_id, a.identifier_type,
     a.identifier_value, a.status AS authz_status, a.expires, a.wildcard,
     c.kind, c.token, c.status, c.validated, c.error, c.validation_records
     FROM authzs a LEFT JOIN challenges c ON c.authz_id = a.id
     WHERE a.id = $1
     ORDER BY c.position";

/// An account's authorizations for one name that are valid until a time, or pending
/// and unexpired.
const AUTHZS_FOR_REUSE: &str = "SELECT id FROM authzs
     WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3
     AND ((status = $4 AND expires > $5) OR (status = $6 AND expires > $7))
     ORDER BY expires DESC, id DESC";

/// What an authorization offered for reuse is checked against.
const AUTHZ_FOR_LINKING: &str = "SELECT account_id, identifier_type, identifier_value, status,
     expires, wildcard FROM authzs WHERE id = $1";

const CERTIFICATE_BY_SERIAL: &str = "SELECT c.account_id, c.der, c.issued_at, c.expires_at,
     s.status, s.revoked_at, s.revoked_reason
     FROM certificates c LEFT JOIN certificate_status s ON s.serial = c.serial
     WHERE c.serial = $1";

const CERTIFICATE_CHAIN: &str =
    "SELECT der FROM certificate_chains WHERE serial = $1 ORDER BY position";

const CERTIFICATE_STATUS_BY_SERIAL: &str =
    "SELECT status FROM certificate_status WHERE serial = $1";

/// A serial's status with its certificate, or its precertificate when the
/// certificate was never stored.
const REVOCATION_STATUS_BY_SERIAL: &str = "SELECT s.status, s.revoked_at, s.revoked_reason,
     s.not_after, c.serial AS certificate_serial, COALESCE(c.der, p.der) AS der
     FROM certificate_status s
     LEFT JOIN certificates c ON c.serial = s.serial
     LEFT JOIN precertificates p ON p.serial = s.serial
     WHERE s.serial = $1";

/// A CRL shard's revoked certificates that expire after a time, by serial.
const REVOKED_CERTIFICATES: &str = "SELECT serial, revoked_at, revoked_reason
     FROM certificate_status
     WHERE status = $1 AND issuer_key_hash = $2 AND crl_shard = $3 AND not_after > $4
     ORDER BY serial";

/// The serials whose status was written at or after a time, in the order written.
const STATUS_CHANGES: &str = "SELECT serial, status, last_updated, issuer_key_hash, crl_shard
     FROM certificate_status
     WHERE last_updated >= $1
     ORDER BY last_updated, serial
     LIMIT $2";

const STUCK_ORDERS: &str = "SELECT id FROM orders
     WHERE began_processing = 1 AND processing_at < $1
     AND certificate_serial IS NULL AND error IS NULL
     LIMIT $2";

/// The newest incident that names a serial.
const INCIDENT_FOR_SERIAL: &str = "SELECT i.id, i.name, i.url, i.created_at, i.serial_count
     FROM incident_serials s JOIN incidents i ON i.id = s.incident_id
     WHERE s.serial = $1
     ORDER BY i.created_at DESC, i.id DESC
     LIMIT 1";

const KEY_BLOCKED: &str = "SELECT added_at FROM blocked_keys WHERE spki_sha256 = $1";

const EXPIRED_ORDERS: &str = "SELECT id FROM orders WHERE expires < $1 LIMIT $2";

const EXPIRED_AUTHZS: &str = "SELECT a.id FROM authzs a
     WHERE a.expires < $1
     AND NOT EXISTS (SELECT 1 FROM order_authzs oa WHERE oa.authz_id = a.id)
     LIMIT $2";

/// The storage authority's database, on SQLite, PostgreSQL or MySQL/MariaDB.
///
/// Implements [`StorageReadOnly`], [`Storage`] and the certificate traits. IDs are
/// random positive `i64`s chosen here; times are stored as unix seconds, so they come
/// back truncated to the second; statuses that depend on time are computed on read
/// with the injected clock.
#[derive(Clone)]
pub struct SqlStorage {
    pool: AnyPool,
    engine: Engine,
    clock: Arc<dyn Clock>,
    /// SQLite takes one writer at a time. Its writers queue here, in this process,
    /// rather than on the database's lock, whose busy handler sleeps and polls: a
    /// waiting writer slept for milliseconds after the lock was free, and at
    /// concurrency 16 writes spent more time asleep than writing.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for SqlStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStorage")
            .field("engine", &self.engine)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl SqlStorage {
    /// Opens `url` with the default pool settings and applies pending migrations.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Self::from_config(&DatabaseConfig::new(url), clock).await
    }

    /// Opens the database that `[database]` names. With `migrate = true` (the default)
    /// pending migrations are applied; otherwise a schema older than this binary needs
    /// is refused.
    pub async fn from_config(
        config: &DatabaseConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let storage = Self::open(config, clock).await?;
        if config.migrate {
            storage.migrate().await?;
        } else {
            let pending = storage.pending_migrations().await?;
            if let Some(first) = pending.first() {
                return Err(Error::internal(format!(
                    "the database lacks migration {first} and `database.migrate` is false: \
                     apply it with `basalt sa migrate`"
                )));
            }
        }
        Ok(storage)
    }

    /// Opens the database that `[database]` names and touches nothing in it.
    pub async fn open(config: &DatabaseConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(&config.url).ok_or_else(|| {
            Error::internal(
                "database.url: unsupported database url: expected sqlite://PATH, \
                 sqlite::memory:, postgres://…, postgresql://…, mysql://… or mariadb://…",
            )
        })?;
        if config.max_connections == 0 {
            return Err(Error::internal(
                "database.max_connections must be at least 1",
            ));
        }
        if config.min_connections > config.max_connections {
            return Err(Error::internal(
                "database.min_connections must not exceed database.max_connections",
            ));
        }
        let url = connection_url(config, engine)?;
        let in_memory =
            engine == Engine::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let options = if in_memory {
            // An in-memory database lives as long as one connection to it: keep exactly
            // one, forever.
            AnyPoolOptions::new()
                .max_connections(SQLITE_MEMORY_CONNECTIONS)
                .min_connections(SQLITE_MEMORY_CONNECTIONS)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new()
                .max_connections(config.max_connections)
                .min_connections(config.min_connections)
                .idle_timeout(Some(config.idle_timeout.0))
                .max_lifetime(Some(config.max_lifetime.0))
        };
        let setup = engine.session_setup();
        let pool = options
            .acquire_timeout(config.acquire_timeout.0)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !setup.is_empty() {
                        conn.execute(setup).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(db_error("opening the database"))?;
        Ok(Self {
            pool,
            engine,
            clock,
            writer: Arc::default(),
        })
    }

    /// The engine this storage runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies every migration the database has not seen yet and returns their
    /// versions. Safe to run again, and from two processes at once: the loser of a
    /// race retries and finds the migration applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, Error> {
        let mut attempt = 0;
        let applied = loop {
            attempt += 1;
            match migrate::apply(&self.pool, self.engine, &self.clock).await {
                Ok(applied) => break applied,
                Err(err) if attempt < MAX_ATTEMPTS => {
                    warn!(attempt, error = %err, "database migration failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(err) => return Err(err),
            }
        };
        let newest = migrate::applied(&self.pool, self.engine)
            .await?
            .last()
            .copied()
            .unwrap_or(0);
        let known = migrate::latest(self.engine);
        if newest > known {
            warn!(
                database_version = newest,
                code_version = known,
                "the database schema is newer than this binary"
            );
        }
        Ok(applied)
    }

    /// The versions this binary knows that the database has not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, Error> {
        let applied = migrate::applied(&self.pool, self.engine).await?;
        Ok(migrate::history(self.engine)
            .iter()
            .map(|m| m.version)
            .filter(|version| !applied.contains(version))
            .collect())
    }

    /// The pool, for tests that run their own SQL.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; for a graceful shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool's connections now: how many are idle, how many in use.
    pub fn pool_connections(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (idle, self.pool.size().saturating_sub(idle))
    }

    /// Whether the database answers a connection from the pool (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(db_error("reaching the database"))?;
        sqlx::Connection::ping(&mut *connection)
            .await
            .map_err(db_error("reaching the database"))
    }

    /// Now, truncated to what the database keeps (whole seconds), so what a write
    /// returns equals what a later read returns.
    fn now(&self) -> Result<OffsetDateTime, Error> {
        from_unix(unix(self.clock.now()))
    }

    /// A query on the pool, outside a transaction, in this engine's SQL.
    fn sql(&self, text: &'static str) -> AssertSqlSafe<std::borrow::Cow<'static, str>> {
        for_engine(self.engine, text)
    }

    /// A connection from the pool, for reads of one statement.
    async fn acquire(&self, operation: &'static str) -> Result<PoolConnection<Any>, Error> {
        self.pool.acquire().await.map_err(db_error(operation))
    }

    /// On SQLite, this process's turn to write (see `writer`), held by every
    /// write: a transaction's, and a single statement's on the pool. `None` on
    /// the other engines, which take concurrent writers.
    async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.engine {
            Engine::Sqlite => Some(self.writer.clone().lock_owned().await),
            Engine::Postgres | Engine::MySql => None,
        }
    }

    async fn begin_write(&self) -> Result<Tx, Error> {
        // The turn first, then a connection: waiting writers hold no connection.
        let turn = self.write_turn().await;
        let inner = self
            .pool
            .begin_with(self.engine.begin_write())
            .await
            .map_err(db_error("starting a transaction"))?;
        Ok(Tx { inner, _turn: turn })
    }

    /// A consistent snapshot for reads that span tables.
    async fn begin_read(&self) -> Result<Tx, Error> {
        let inner = self
            .pool
            .begin_with(self.engine.begin_read())
            .await
            .map_err(db_error("starting a transaction"))?;
        Ok(Tx { inner, _turn: None })
    }

    /// Runs `attempt` until it does not fail with a serialization failure, at most
    /// [`MAX_ATTEMPTS`] times. Each attempt is one whole transaction.
    async fn retrying<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, Error>> + Send,
        T: Send,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(err) if is_retryable(&err) && tries < MAX_ATTEMPTS => {
                    warn!(
                        operation,
                        attempt = tries,
                        "serialization failure; retrying"
                    );
                    tokio::time::sleep(backoff(tries)).await;
                }
                result => return result,
            }
        }
    }
}

/// The URL the pool opens: `database.url`, with the password of
/// `database.password_file`, and for a SQLite file the mode that creates it.
fn connection_url(config: &DatabaseConfig, engine: Engine) -> Result<String, Error> {
    if engine == Engine::Sqlite {
        if config.password_file.is_some() {
            return Err(Error::internal(
                "database.password_file: SQLite has no password; remove the setting",
            ));
        }
        if config.url.contains(":memory:") || config.url.contains("mode=") {
            return Ok(config.url.clone());
        }
        let separator = if config.url.contains('?') { '&' } else { '?' };
        return Ok(format!("{}{separator}mode=rwc", config.url));
    }
    let mut url = url::Url::from_str(&config.url)
        .map_err(|err| Error::internal(format!("database.url: invalid url: {err}")))?;
    if url.password().is_some() {
        return Err(Error::internal(
            "database.url: the url must not hold a password; put it in a file named by \
             database.password_file",
        ));
    }
    if let Some(path) = &config.password_file {
        let password = std::fs::read_to_string(path).map_err(|err| {
            Error::internal(format!(
                "database.password_file: cannot read {}: {err}",
                path.display()
            ))
        })?;
        let password = password.trim();
        if password.is_empty() {
            return Err(Error::internal(format!(
                "database.password_file: {} is empty",
                path.display()
            )));
        }
        url.set_password(Some(password))
            .map_err(|()| Error::internal("database.url: this url cannot carry a password"))?;
    }
    Ok(url.into())
}

/// The wait before retry number `attempt` (1-based): exponential, with jitter so two
/// colliding writers do not collide again.
fn backoff(attempt: u32) -> Duration {
    let base = RETRY_BACKOFF.saturating_mul(1 << attempt.min(8));
    base + Duration::from_millis(rand::random_range(0..=RETRY_JITTER_MS))
}

/// Whether `err` is a serialization failure that running the transaction again may cure.
fn is_retryable(err: &Error) -> bool {
    err.is(ErrorKind::Unavailable) && err.detail.starts_with(SERIALIZATION_FAILURE)
}

#[async_trait]
impl Storage for SqlStorage {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        self.retrying("new_account", || self.attempt_new_account(account.clone()))
            .await
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error> {
        self.retrying("update_account", || {
            self.attempt_update_account(id, update.clone())
        })
        .await
    }

    async fn new_order(&self, order: NewOrder) -> Result<Order, Error> {
        self.retrying("new_order", || self.attempt_new_order(order.clone()))
            .await
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        self.retrying("deactivate_authz", || self.attempt_deactivate_authz(id))
            .await
    }

    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        self.retrying("add_eab_key", || self.attempt_add_eab_key(key.clone()))
            .await
    }

    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        self.retrying("revoke_eab_key", || self.attempt_revoke_eab_key(key_id))
            .await
    }

    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        attempt: &str,
    ) -> Result<(), Error> {
        self.retrying("set_challenge_processing", || {
            self.attempt_set_challenge_processing(id, kind, attempt)
        })
        .await
    }

    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        self.retrying("finalize_authz", || {
            self.attempt_finalize_authz(id, kind, outcome.clone())
        })
        .await
    }

    async fn set_order_processing(&self, id: OrderId, attempt: &str) -> Result<(), Error> {
        self.retrying("set_order_processing", || {
            self.attempt_set_order_processing(id, attempt)
        })
        .await
    }

    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        self.retrying("finalize_order", || self.attempt_finalize_order(id, serial))
            .await
    }

    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        self.retrying("set_order_error", || {
            self.attempt_set_order_error(id, error)
        })
        .await
    }

    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        self.retrying("revoke_certificate", || {
            self.attempt_revoke_certificate(serial, reason, revoked_at)
        })
        .await
    }

    async fn block_key(&self, key: BlockedKey) -> Result<(), Error> {
        self.retrying("block_key", || self.attempt_block_key(&key))
            .await
    }

    async fn rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error> {
        self.retrying("rerevoke_for_key_compromise", || {
            self.attempt_rerevoke_for_key_compromise(serial)
        })
        .await
    }

    async fn add_incident(&self, incident: NewIncident) -> Result<Incident, Error> {
        self.retrying("add_incident", || self.attempt_add_incident(&incident))
            .await
    }
}

#[async_trait]
impl CertificateStore for SqlStorage {
    async fn add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        self.retrying("add_serial", || {
            self.attempt_add_serial(serial, account_id, created_at, expires_at)
        })
        .await
    }

    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error> {
        self.retrying("add_precertificate", || {
            self.attempt_add_precertificate(serial, der, account_id, issued_at, placement)
        })
        .await
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        self.retrying("add_certificate", || {
            self.attempt_add_certificate(certificate)
        })
        .await
    }
}

#[async_trait]
impl StorageReadOnly for SqlStorage {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        load_account(&mut *self.acquire("reading an account").await?, id).await
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        let row = sqlx::query(self.sql(ACCOUNT_BY_KEY))
            .bind(key_thumbprint)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading an account"))?
            .ok_or_else(|| Error::not_found("no account has this key"))?;
        account_from_row(&row)
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        let now = self.clock.now();
        // One statement: consistent without a transaction.
        load_order(&mut *self.acquire("reading an order").await?, id, now).await
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        let now = self.clock.now();
        // One statement: consistent without a transaction.
        load_authz(
            &mut *self.acquire("reading an authorization").await?,
            id,
            now,
        )
        .await
    }

    /// The newest order replacing `serial` that is not invalid at the clock's now; `None`
    /// when there is none (also for a serial that names no certificate).
    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        let now = self.clock.now();
        let mut tx = self.begin_read().await?;
        let replacement = live_replacement(&mut tx, serial, now).await?;
        commit(tx).await?;
        Ok(replacement)
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        let row = sqlx::query(self.sql(
            "SELECT key_id, hmac_key, comment, created_at, revoked, account_id
             FROM eab_keys WHERE key_id = $1",
        ))
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error("reading an eab key"))?
        .ok_or_else(|| {
            Error::not_found(format!("external account binding key {key_id:?} not found"))
        })?;
        eab_key_from_row(&row)
    }

    /// Every key, newest first (`created_at`, then `key_id`, both descending).
    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        let rows = sqlx::query(self.sql(
            "SELECT key_id, hmac_key, comment, created_at, revoked, account_id
             FROM eab_keys ORDER BY created_at DESC, key_id DESC",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("listing eab keys"))?;
        rows.iter().map(eab_key_from_row).collect()
    }

    /// Every order of the account, whatever its status, newest first (`created_at`,
    /// then `id`, both descending).
    ///
    /// RFC 8555 §7.1.2.1 says the list SHOULD include pending orders and SHOULD NOT
    /// include invalid ones. An order's status is computed on read from its
    /// authorizations and the clock, so filtering invalid orders would mean computing
    /// every row's status and pages of uneven length; Basalt lists every order instead,
    /// so a client sees its whole history, and the order objects carry the status.
    ///
    /// Keyset paging: the cursor is `"<created_at>.<id>"` of the page's last order (an
    /// opaque string to clients), so a page never skips or repeats an order when new
    /// ones arrive. `size` 0 means 50; larger than 100 means 100.
    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        let after = page.cursor.as_deref().map(parse_cursor).transpose()?;
        let size = match page.size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let mut tx = self.begin_read().await?;
        let account = sqlx::query(sql(&tx, "SELECT id FROM accounts WHERE id = $1"))
            .bind(account_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading an account"))?;
        if account.is_none() {
            return Err(Error::not_found(format!("account {account_id} not found")));
        }
        // One row more than the page holds tells whether another page follows.
        let limit = i64::from(size) + 1;
        let rows = match after {
            None => {
                sqlx::query(sql(&tx, ORDERS_PAGE_FIRST))
                    .bind(account_id.0)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await
            }
            Some((created_at, id)) => {
                sqlx::query(sql(&tx, ORDERS_PAGE_AFTER))
                    .bind(account_id.0)
                    .bind(created_at)
                    .bind(created_at)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await
            }
        }
        .map_err(db_error("listing an account's orders"))?;
        commit(tx).await?;

        let mut order_ids = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows
            .iter()
            .take(usize::try_from(size).unwrap_or(usize::MAX))
        {
            let id: i64 = get(row, "id")?;
            last = Some((get::<i64>(row, "created_at")?, id));
            order_ids.push(OrderId(id));
        }
        let next = if rows.len() > order_ids.len() {
            last.map(|(created_at, id)| format!("{created_at}.{id}"))
        } else {
            None
        };
        Ok(OrdersPage { order_ids, next })
    }

    async fn key_blocked(&self, spki_sha256: &SpkiHash) -> Result<bool, Error> {
        let row = sqlx::query(self.sql(KEY_BLOCKED))
            .bind(spki_sha256.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading the blocked-keys list"))?;
        Ok(row.is_some())
    }

    /// Looks at the account's [`REUSE_CANDIDATES`] newest orders only, newest first:
    /// the first that asked for exactly these identifiers (compared as `new_order`
    /// stores them: sorted, without duplicates) and this profile, replaces nothing,
    /// asked for no validity window, has not begun processing and is pending or ready
    /// at the clock's now.
    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error> {
        let wanted = sorted_unique(identifiers);
        if wanted.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let mut tx = self.begin_read().await?;
        let rows = sqlx::query(sql(&tx, RECENT_ORDERS))
            .bind(account_id.0)
            .bind(REUSE_CANDIDATES)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error("reading an account's recent orders"))?;
        let mut found = None;
        for row in &rows {
            if !may_be_reused(row, &wanted, profile, now)? {
                continue;
            }
            let order = load_order(&mut tx, OrderId(get(row, "id")?), now).await?;
            if matches!(order.status, OrderStatus::Pending | OrderStatus::Ready) {
                found = Some(order);
                break;
            }
        }
        commit(tx).await?;
        Ok(found)
    }

    /// Per identifier (in their sorted order, duplicates ignored), the matching
    /// authorizations that expire last first. A valid one must also be unexpired now,
    /// whatever `valid_until_at_least` says.
    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error> {
        let now = self.clock.now();
        let valid_after = unix(valid_until_at_least.max(now));
        let mut tx = self.begin_read().await?;
        let mut authzs = Vec::new();
        for identifier in sorted_unique(identifiers) {
            let rows = sqlx::query(sql(&tx, AUTHZS_FOR_REUSE))
                .bind(account_id.0)
                .bind(identifier_type_str(identifier.kind))
                .bind(&identifier.value)
                .bind(AuthzStatus::Valid.as_str())
                .bind(valid_after)
                .bind(AuthzStatus::Pending.as_str())
                .bind(unix(now))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error("reading authorizations for reuse"))?;
            for row in &rows {
                authzs.push(load_authz(&mut tx, AuthzId(get(row, "id")?), now).await?);
            }
        }
        commit(tx).await?;
        Ok(authzs)
    }

    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error> {
        let row = sqlx::query(self.sql(INCIDENT_FOR_SERIAL))
            .bind(serial.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading a serial's incident"))?;
        row.as_ref().map(incident_from_row).transpose()
    }

    /// Newest first (`created_at`, then `id`, both descending).
    async fn incidents(&self) -> Result<Vec<Incident>, Error> {
        let rows = sqlx::query(self.sql(
            "SELECT id, name, url, created_at, serial_count
             FROM incidents ORDER BY created_at DESC, id DESC",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("listing incidents"))?;
        rows.iter().map(incident_from_row).collect()
    }
}

/// `identifiers` sorted, without duplicates: how an order stores them.
fn sorted_unique(identifiers: &[Identifier]) -> Vec<Identifier> {
    let mut sorted = identifiers.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
}

/// Whether an order row of [`RECENT_ORDERS`] may be reused for `wanted` (sorted,
/// without duplicates) and `profile` at `now`, as far as its own columns tell; its
/// status, which depends on its authorizations, is for the caller to check.
fn may_be_reused(
    row: &AnyRow,
    wanted: &[Identifier],
    profile: &str,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    if get::<String>(row, "profile")? != profile
        || get::<Option<String>>(row, "replaces")?.is_some()
        || get::<Option<i64>>(row, "not_before")?.is_some()
        || get::<Option<i64>>(row, "not_after")?.is_some()
        || get::<i64>(row, "began_processing")? != 0
        || get::<Option<String>>(row, "error")?.is_some()
        || get::<Option<String>>(row, "certificate_serial")?.is_some()
        || from_unix(get(row, "expires")?)? <= now
    {
        return Ok(false);
    }
    let stored: Vec<Identifier> = from_json(&get::<String>(row, "identifiers")?, "identifiers")?;
    Ok(sorted_unique(&stored) == wanted)
}

#[async_trait]
impl CertificateLookup for SqlStorage {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        let mut tx = self.begin_read().await?;
        let certificate = load_certificate(&mut tx, serial).await?;
        commit(tx).await?;
        Ok(certificate)
    }
}

#[async_trait]
impl RevocationLookup for SqlStorage {
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error> {
        let row = sqlx::query(self.sql(REVOCATION_STATUS_BY_SERIAL))
            .bind(serial.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading a revocation status"))?
            .ok_or_else(|| Error::not_found(format!("serial {serial} not found")))?;
        let Some(der) = get::<Option<Vec<u8>>>(&row, "der")? else {
            return Err(corrupt(format!(
                "serial {serial} has a status but neither a certificate nor a precertificate"
            )));
        };
        Ok(RevocationStatus {
            serial: serial.clone(),
            der,
            precertificate: get::<Option<String>>(&row, "certificate_serial")?.is_none(),
            expires_at: from_unix(get(&row, "not_after")?)?,
            status: parse_wire(&get::<String>(&row, "status")?, "certificate_status.status")?,
            revoked_at: get::<Option<i64>>(&row, "revoked_at")?
                .map(from_unix)
                .transpose()?,
            revocation_reason: revocation_reason(get(&row, "revoked_reason")?)?,
        })
    }

    /// Ordered as [`Serial`]s compare (their bytes), which is the order of the hex
    /// text they are stored as. `issuer_key_hash` must be 20 bytes (SHA-1). A row
    /// revoked without a reason code (none is written so, but the column is
    /// nullable) is listed as unspecified, which is what a CRL entry without a
    /// reasonCode means (RFC 5280 §5.3.1).
    async fn revoked_certificates(
        &self,
        issuer_key_hash: &[u8],
        shard: u32,
        expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        if issuer_key_hash.len() != ISSUER_KEY_HASH_LEN {
            return Err(Error::malformed(format!(
                "issuer_key_hash must be {ISSUER_KEY_HASH_LEN} bytes (SHA-1), not {}",
                issuer_key_hash.len()
            )));
        }
        let rows = sqlx::query(self.sql(REVOKED_CERTIFICATES))
            .bind(CertStatus::Revoked.as_str())
            .bind(issuer_key_hash)
            .bind(i64::from(shard))
            .bind(unix(expires_after))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("listing a CRL shard's revoked certificates"))?;
        rows.iter()
            .map(|row| {
                let serial: String = get(row, "serial")?;
                let Some(revoked_at) = get::<Option<i64>>(row, "revoked_at")? else {
                    return Err(corrupt(format!("serial {serial} is revoked with no time")));
                };
                Ok(RevokedEntry {
                    serial: parse_wire(&serial, "certificate_status.serial")?,
                    revoked_at: from_unix(revoked_at)?,
                    reason: revocation_reason(get(row, "revoked_reason")?)?
                        .unwrap_or(RevocationReason::Unspecified),
                })
            })
            .collect()
    }

    /// `since` is truncated to the second, as stored times are; `limit` must be
    /// 1 to 10 000.
    async fn status_changes(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StatusChange>, Error> {
        if limit == 0 || limit > MAX_STATUS_CHANGES {
            return Err(Error::malformed(format!(
                "limit must be between 1 and {MAX_STATUS_CHANGES}, not {limit}"
            )));
        }
        let rows = sqlx::query(self.sql(STATUS_CHANGES))
            .bind(unix(since))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("listing status changes"))?;
        rows.iter().map(status_change_from_row).collect()
    }
}

/// A row of [`STATUS_CHANGES`].
fn status_change_from_row(row: &AnyRow) -> Result<StatusChange, Error> {
    let serial: String = get(row, "serial")?;
    let shard = get::<Option<i64>>(row, "crl_shard")?
        .map(|shard| {
            u32::try_from(shard)
                .map_err(|_| corrupt(format!("serial {serial} has crl_shard {shard}")))
        })
        .transpose()?;
    let placement = match (get::<Option<Vec<u8>>>(row, "issuer_key_hash")?, shard) {
        (Some(issuer_key_hash), shard) => Some(CrlPlacement {
            issuer_key_hash,
            shard,
        }),
        (None, None) => None,
        (None, Some(shard)) => {
            return Err(corrupt(format!(
                "serial {serial} has crl_shard {shard} but no issuer_key_hash"
            )));
        }
    };
    Ok(StatusChange {
        serial: parse_wire(&serial, "certificate_status.serial")?,
        status: parse_wire(&get::<String>(row, "status")?, "certificate_status.status")?,
        changed_at: from_unix(get(row, "last_updated")?)?,
        placement,
    })
}

impl SqlStorage {
    /// Stores the account and, when it names an external account binding key, binds
    /// that key to it in the same transaction: the key must exist, not be revoked and
    /// not be bound yet ([`ErrorKind::Unauthorized`] otherwise, and no account is
    /// stored).
    async fn attempt_new_account(&self, account: NewAccount) -> Result<Account, Error> {
        let id = AccountId(new_id());
        let created_at = self.now()?;
        let mut tx = self.begin_write().await?;
        if let Some(key_id) = &account.eab_key_id {
            let key = sqlx::query(sql(
                &tx,
                "SELECT revoked, account_id FROM eab_keys WHERE key_id = $1",
            ))
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading an eab key"))?;
            let usable = match &key {
                Some(row) => {
                    get::<i64>(row, "revoked")? == 0
                        && get::<Option<i64>>(row, "account_id")?.is_none()
                }
                None => false,
            };
            if !usable {
                warn!(eab_key_id = %key_id, "account refused: eab key unusable");
                return Err(eab_refused());
            }
        }
        let taken = sqlx::query(sql(
            &tx,
            "SELECT id FROM accounts WHERE key_thumbprint = $1",
        ))
        .bind(&account.key_thumbprint)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading an account"))?;
        if taken.is_some() {
            return Err(Error::conflict("an account with this key already exists"));
        }
        let inserted = sqlx::query(sql(
            &tx,
            "INSERT INTO accounts (id, key_jwk, key_thumbprint, contacts, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(id.0)
        .bind(&account.key_jwk)
        .bind(&account.key_thumbprint)
        .bind(to_json(&account.contacts)?)
        .bind(AccountStatus::Valid.as_str())
        .bind(unix(created_at))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // A failed statement aborts a PostgreSQL transaction, so the key was looked
            // up before the insert: a unique violation here is a concurrent
            // registration of the same key (or, once in about 2^62 accounts, a random ID
            // collision, which the client's retry cures).
            if is_unique_violation(&err) {
                return Err(Error::conflict("an account with this key already exists"));
            }
            return Err(db_error("storing an account")(err));
        }
        if let Some(key_id) = &account.eab_key_id {
            let bound = sqlx::query(sql(
                &tx,
                "UPDATE eab_keys SET account_id = $1
                 WHERE key_id = $2 AND revoked = 0 AND account_id IS NULL",
            ))
            .bind(id.0)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error("binding an eab key"))?;
            if bound.rows_affected() != 1 {
                return Err(eab_refused());
            }
        }
        commit(tx).await?;
        info!(
            account_id = %id,
            eab_key_id = account.eab_key_id.as_deref().unwrap_or(""),
            "account created"
        );
        Ok(Account {
            id,
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            status: AccountStatus::Valid,
            created_at,
        })
    }

    /// Applies every change of `update` in one transaction, or none. The only status
    /// change is valid → deactivated (RFC 8555 §7.3.6); a key already held by another
    /// account is a conflict (RFC 8555 §7.3.5).
    async fn attempt_update_account(
        &self,
        id: AccountId,
        update: AccountUpdate,
    ) -> Result<Account, Error> {
        let mut tx = self.begin_write().await?;
        let current = load_account(&mut tx, id).await?;
        if let Some(status) = update.status {
            if current.status != AccountStatus::Valid || status != AccountStatus::Deactivated {
                return Err(Error::malformed(format!(
                    "account {id} cannot move from {} to {status}",
                    current.status
                )));
            }
            sqlx::query(sql(&tx, "UPDATE accounts SET status = $1 WHERE id = $2"))
                .bind(status.as_str())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error("updating an account"))?;
        }
        if let Some(contacts) = &update.contacts {
            sqlx::query(sql(&tx, "UPDATE accounts SET contacts = $1 WHERE id = $2"))
                .bind(to_json(contacts)?)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error("updating an account"))?;
        }
        if let Some((key_jwk, key_thumbprint)) = &update.key {
            let updated = sqlx::query(sql(
                &tx,
                "UPDATE accounts SET key_jwk = $1, key_thumbprint = $2 WHERE id = $3",
            ))
            .bind(key_jwk)
            .bind(key_thumbprint)
            .bind(id.0)
            .execute(&mut *tx)
            .await;
            match updated {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => {
                    warn!(account_id = %id, "key rollover refused: key in use");
                    return Err(Error::conflict("key is in use by another account"));
                }
                Err(err) => return Err(db_error("updating an account")(err)),
            }
        }
        let updated = load_account(&mut tx, id).await?;
        commit(tx).await?;
        info!(
            account_id = %id,
            status = %updated.status,
            contacts_changed = update.contacts.is_some(),
            key_changed = update.key.is_some(),
            "account updated"
        );
        Ok(updated)
    }

    async fn attempt_new_order(&self, order: NewOrder) -> Result<Order, Error> {
        if order.identifiers.is_empty() {
            return Err(Error::malformed("an order needs at least one identifier"));
        }
        for authz in &order.authzs {
            if authz.challenges.is_empty() {
                return Err(Error::malformed(format!(
                    "the authorization for {} offers no challenge",
                    authz.identifier
                )));
            }
            for (i, challenge) in authz.challenges.iter().enumerate() {
                if authz.challenges[..i]
                    .iter()
                    .any(|c| c.kind == challenge.kind)
                {
                    return Err(Error::malformed(format!(
                        "the authorization for {} offers {} twice",
                        authz.identifier, challenge.kind
                    )));
                }
            }
        }
        if let (Some(not_before), Some(not_after)) = (order.not_before, order.not_after)
            && not_after <= not_before
        {
            return Err(Error::malformed("notAfter must be later than notBefore"));
        }
        let identifiers = sorted_unique(&order.identifiers);
        let now = self.now()?;

        let mut tx = self.begin_write().await?;
        let account = sqlx::query(sql(&tx, "SELECT id FROM accounts WHERE id = $1"))
            .bind(order.account_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading an account"))?;
        if account.is_none() {
            return Err(Error::not_found(format!(
                "account {} not found",
                order.account_id
            )));
        }
        if let Some(serial) = &order.replaces {
            // Checked in the write transaction, so two newOrders replacing the same
            // certificate cannot both pass.
            let known = sqlx::query(sql(
                &tx,
                "SELECT serial FROM certificates WHERE serial = $1",
            ))
            .bind(serial.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading a certificate"))?;
            if known.is_none() {
                return Err(Error::malformed("replaces names an unknown certificate"));
            }
            if let Some(other) = live_replacement(&mut tx, serial, self.clock.now()).await? {
                warn!(
                    serial = %serial,
                    replaced_by = %other,
                    account_id = %order.account_id,
                    "replacement order refused: certificate already replaced"
                );
                return Err(Error::new(
                    ErrorKind::AlreadyReplaced,
                    format!("certificate {serial} was already replaced by order {other}"),
                ));
            }
        }

        let reused = check_reused_authzs(&mut tx, &order, &identifiers, self.clock.now()).await?;

        let order_id = OrderId(new_id());
        sqlx::query(sql(&tx, "INSERT INTO orders (id, account_id, identifiers, expires, began_processing, created_at,
                                 profile, not_before, not_after, replaces)
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9)"),
        )
        .bind(order_id.0)
        .bind(order.account_id.0)
        .bind(to_json(&identifiers)?)
        .bind(unix(order.expires))
        .bind(unix(now))
        .bind(&order.profile)
        .bind(order.not_before.map(unix))
        .bind(order.not_after.map(unix))
        .bind(order.replaces.as_ref().map(ToString::to_string))
        .execute(&mut *tx)
        .await
        .map_err(db_error("storing an order"))?;

        for (position, authz) in order.authzs.iter().enumerate() {
            let authz_id = AuthzId(new_id());
            sqlx::query(sql(
                &tx,
                "INSERT INTO authzs (id, account_id, identifier_type, identifier_value, status,
                                     expires, wildcard, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ))
            .bind(authz_id.0)
            .bind(order.account_id.0)
            .bind(identifier_type_str(authz.identifier.kind))
            .bind(&authz.identifier.value)
            .bind(AuthzStatus::Pending.as_str())
            .bind(unix(authz.expires))
            .bind(i64::from(authz.wildcard))
            .bind(unix(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error("storing an authorization"))?;
            sqlx::query(sql(
                &tx,
                "INSERT INTO order_authzs (order_id, authz_id, position) VALUES ($1, $2, $3)",
            ))
            .bind(order_id.0)
            .bind(authz_id.0)
            .bind(position_value(position)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error("linking an authorization to its order"))?;
            for (position, challenge) in authz.challenges.iter().enumerate() {
                insert_challenge(&mut tx, authz_id, position, challenge).await?;
            }
        }
        // Reused authorizations follow the new ones; the link is all that is written,
        // so an authorization shared by several orders moves them all when it changes.
        for (i, authz_id) in reused.iter().enumerate() {
            sqlx::query(sql(
                &tx,
                "INSERT INTO order_authzs (order_id, authz_id, position) VALUES ($1, $2, $3)",
            ))
            .bind(order_id.0)
            .bind(authz_id.0)
            .bind(position_value(order.authzs.len() + i)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error("linking a reused authorization to an order"))?;
        }

        commit(tx).await?;
        // Read back after the commit, in a read-only snapshot: inside the write
        // transaction this read would widen its predicate locks over the order and
        // authorization indexes, and PostgreSQL would abort concurrent new orders as
        // serialization failures though none touches another's rows.
        let mut read = self.begin_read().await?;
        let stored = load_order(&mut read, order_id, self.clock.now()).await?;
        commit(read).await?;
        info!(
            order_id = %order_id,
            account_id = %order.account_id,
            authzs = order.authzs.len(),
            reused_authzs = reused.len(),
            profile = %order.profile,
            replaces = ?order.replaces.as_ref().map(ToString::to_string),
            "order created"
        );
        Ok(stored)
    }

    /// Deactivates an authorization that is pending or valid (and not expired) at the
    /// clock's now. Orders holding it compute as invalid from then on.
    async fn attempt_deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sql(&tx, "SELECT status, expires FROM authzs WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading an authorization"))?
            .ok_or_else(|| Error::not_found(format!("authorization {id} not found")))?;
        let stored: AuthzStatus = parse_wire(&get::<String>(&row, "status")?, "authzs.status")?;
        let expires = from_unix(get(&row, "expires")?)?;
        let current = status::authz_status(stored, expires, now);
        if !matches!(current, AuthzStatus::Pending | AuthzStatus::Valid) {
            return Err(Error::malformed("authorization is not pending or valid"));
        }
        sqlx::query(sql(
            &tx,
            "UPDATE authzs SET status = $1 WHERE id = $2 AND status = $3",
        ))
        .bind(AuthzStatus::Deactivated.as_str())
        .bind(id.0)
        .bind(stored.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating an authorization"))?;
        commit(tx).await?;
        info!(authz_id = %id, previous = %current, "authorization deactivated");
        Ok(())
    }

    /// Stores a new key as given (its `created_at` truncated to the second). The
    /// identifier must not be empty and the HMAC key must have at least 256 bits.
    async fn attempt_add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        if key.key_id.is_empty() {
            return Err(Error::malformed(
                "an external account binding key needs a key ID",
            ));
        }
        if key.hmac_key.len() < MIN_EAB_KEY_BYTES {
            return Err(Error::malformed(format!(
                "an external account binding key has at least {} bits",
                MIN_EAB_KEY_BYTES * 8
            )));
        }
        let _turn = self.write_turn().await;
        let inserted = sqlx::query(self.sql(
            "INSERT INTO eab_keys (key_id, hmac_key, comment, created_at, revoked, account_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(&key.key_id)
        .bind(&key.hmac_key)
        .bind(&key.comment)
        .bind(unix(key.created_at))
        .bind(i64::from(key.revoked))
        .bind(key.account_id.map(|id| id.0))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {
                info!(eab_key_id = %key.key_id, "eab key added");
                Ok(())
            }
            Err(err) if is_unique_violation(&err) => Err(Error::conflict(format!(
                "external account binding key {:?} already exists",
                key.key_id
            ))),
            Err(err) => Err(db_error("storing an eab key")(err)),
        }
    }

    /// Revokes a key; revoking a revoked key again is not an error. An account the key
    /// already bound keeps working.
    async fn attempt_revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(self.sql("UPDATE eab_keys SET revoked = 1 WHERE key_id = $1"))
            .bind(key_id)
            .execute(&self.pool)
            .await
            .map_err(db_error("revoking an eab key"))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!(
                "external account binding key {key_id:?} not found"
            )));
        }
        info!(eab_key_id = %key_id, "eab key revoked");
        Ok(())
    }

    /// Inserts the key; a key already on the list keeps its first record. One
    /// statement outside a transaction, so a concurrent insert of the same key makes
    /// one of the two a unique violation, which is success too.
    async fn attempt_block_key(&self, key: &BlockedKey) -> Result<(), Error> {
        let _turn = self.write_turn().await;
        let inserted = sqlx::query(self.sql(
            "INSERT INTO blocked_keys (spki_sha256, added_at, source, comment)
             VALUES ($1, $2, $3, $4)",
        ))
        .bind(key.spki_sha256.as_bytes().as_slice())
        .bind(unix(key.added_at))
        .bind(key.source.as_str())
        .bind(&key.comment)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {
                info!(
                    spki_sha256 = %key.spki_sha256,
                    source = %key.source,
                    comment = %key.comment,
                    "key blocked"
                );
                Ok(())
            }
            Err(err) if is_unique_violation(&err) => {
                info!(spki_sha256 = %key.spki_sha256, "key already blocked");
                Ok(())
            }
            Err(err) => Err(db_error("blocking a key")(err)),
        }
    }

    async fn attempt_set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        attempt: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let authz = load_authz(&mut tx, id, now).await?;
        if authz
            .challenge(kind)
            .is_some_and(|c| c.status == ChallengeStatus::Processing)
        {
            // The same request again, its first answer lost to a crash after the
            // commit: it still owns the validation.
            let owner = sqlx::query(sql(
                &tx,
                "SELECT processing_attempt FROM challenges WHERE authz_id = $1 AND kind = $2",
            ))
            .bind(id.0)
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error("reading a challenge"))?;
            if get::<Option<String>>(&owner, "processing_attempt")?.as_deref() == Some(attempt) {
                info!(authz_id = %id, challenge = %kind, "challenge already processing for this attempt");
                return Ok(());
            }
        }
        if authz.status != AuthzStatus::Pending {
            return Err(Error::malformed(format!(
                "authorization {id} is {}, not pending",
                authz.status
            )));
        }
        let challenge = authz.challenge(kind).ok_or_else(|| {
            Error::not_found(format!("authorization {id} has no {kind} challenge"))
        })?;
        if challenge.status != ChallengeStatus::Pending {
            return Err(Error::malformed(format!(
                "the {kind} challenge of authorization {id} is {}, not pending",
                challenge.status
            )));
        }
        sqlx::query(sql(
            &tx,
            "UPDATE challenges SET status = $1, processing_attempt = $2
             WHERE authz_id = $3 AND kind = $4 AND status = $5",
        ))
        .bind(ChallengeStatus::Processing.as_str())
        .bind(attempt)
        .bind(id.0)
        .bind(kind.as_str())
        .bind(ChallengeStatus::Pending.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating a challenge"))?;
        commit(tx).await?;
        info!(authz_id = %id, challenge = %kind, "challenge processing");
        Ok(())
    }

    async fn attempt_finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        let challenge_status = match outcome.status {
            AuthzStatus::Valid => ChallengeStatus::Valid,
            AuthzStatus::Invalid => ChallengeStatus::Invalid,
            other => {
                return Err(Error::malformed(format!(
                    "an authorization is finalized as valid or invalid, not {other}"
                )));
            }
        };
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let authz = load_authz(&mut tx, id, now).await?;
        if authz.status != AuthzStatus::Pending {
            return Err(Error::malformed(format!(
                "authorization {id} is {}, not pending",
                authz.status
            )));
        }
        let challenge = authz.challenge(kind).ok_or_else(|| {
            Error::not_found(format!("authorization {id} has no {kind} challenge"))
        })?;
        if !matches!(
            challenge.status,
            ChallengeStatus::Pending | ChallengeStatus::Processing
        ) {
            return Err(Error::malformed(format!(
                "the {kind} challenge of authorization {id} is already {}",
                challenge.status
            )));
        }
        sqlx::query(sql(
            &tx,
            "UPDATE authzs SET status = $1, expires = $2 WHERE id = $3 AND status = $4",
        ))
        .bind(outcome.status.as_str())
        .bind(unix(outcome.expires))
        .bind(id.0)
        .bind(AuthzStatus::Pending.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating an authorization"))?;
        let error = outcome.error.as_ref().map(to_json).transpose()?;
        sqlx::query(sql(
            &tx,
            "UPDATE challenges SET status = $1, validated = $2, validation_records = $3, error = $4
             WHERE authz_id = $5 AND kind = $6",
        ))
        .bind(challenge_status.as_str())
        .bind(unix(outcome.validated_at))
        .bind(to_json(&outcome.records)?)
        .bind(error)
        .bind(id.0)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating a challenge"))?;
        commit(tx).await?;
        info!(
            authz_id = %id,
            challenge = %kind,
            status = %outcome.status,
            identifier = %authz.identifier,
            "authorization finalized"
        );
        Ok(())
    }

    async fn attempt_set_order_processing(&self, id: OrderId, attempt: &str) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let order = load_order(&mut tx, id, now).await?;
        if order.status == OrderStatus::Processing {
            // The same finalize request again, its first answer lost to a crash
            // after the commit: it still owns the issuance.
            let owner = sqlx::query(sql(
                &tx,
                "SELECT processing_attempt FROM orders WHERE id = $1",
            ))
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error("reading an order"))?;
            if get::<Option<String>>(&owner, "processing_attempt")?.as_deref() == Some(attempt) {
                info!(order_id = %id, "order already processing for this attempt");
                return Ok(());
            }
        }
        if order.status != OrderStatus::Ready {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order {id} is {}, not ready", order.status),
            ));
        }
        let updated = sqlx::query(sql(
            &tx,
            "UPDATE orders SET began_processing = 1, processing_at = $1, processing_attempt = $2
             WHERE id = $3 AND began_processing = 0 AND error IS NULL
                   AND certificate_serial IS NULL",
        ))
        .bind(unix(now))
        .bind(attempt)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating an order"))?;
        if updated.rows_affected() != 1 {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order {id} is already processing"),
            ));
        }
        commit(tx).await?;
        info!(order_id = %id, "order processing");
        Ok(())
    }

    async fn attempt_finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let order = load_order(&mut tx, id, now).await?;
        if order.certificate_serial.as_ref() == Some(serial) {
            // A repeat of a call whose answer was lost (the SA died after the
            // commit): the order already says so.
            info!(order_id = %id, serial = %serial, "order already valid with this serial");
            return Ok(());
        }
        let certificate = sqlx::query(sql(
            &tx,
            "SELECT account_id FROM certificates WHERE serial = $1",
        ))
        .bind(serial.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading a certificate"))?;
        let Some(certificate) = certificate else {
            return Err(Error::internal(format!(
                "certificate {serial} is not stored; refusing to finalize order {id} with it"
            )));
        };
        if get::<i64>(&certificate, "account_id")? != order.account_id.0 {
            return Err(Error::internal(format!(
                "certificate {serial} belongs to another account than order {id}"
            )));
        }
        let updated = sqlx::query(sql(
            &tx,
            "UPDATE orders SET certificate_serial = $1
             WHERE id = $2 AND began_processing = 1 AND certificate_serial IS NULL
                   AND error IS NULL",
        ))
        .bind(serial.to_string())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating an order"))?;
        if updated.rows_affected() != 1 {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order {id} is {}, not processing", order.status),
            ));
        }
        commit(tx).await?;
        info!(order_id = %id, serial = %serial, "order valid");
        Ok(())
    }

    async fn attempt_set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(sql(
            &tx,
            "UPDATE orders SET error = $1, began_processing = 0
             WHERE id = $2 AND certificate_serial IS NULL",
        ))
        .bind(to_json(error)?)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error("updating an order"))?;
        if updated.rows_affected() != 1 {
            let exists = sqlx::query(sql(&tx, "SELECT id FROM orders WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error("reading an order"))?;
            return Err(match exists {
                Some(_) => {
                    Error::malformed(format!("order {id} is valid; it cannot be marked invalid"))
                }
                None => Error::not_found(format!("order {id} not found")),
            });
        }
        commit(tx).await?;
        info!(order_id = %id, error = %error, "order invalid");
        Ok(())
    }

    async fn attempt_revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sql(&tx, CERTIFICATE_STATUS_BY_SERIAL))
            .bind(serial.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading a certificate status"))?
            .ok_or_else(|| Error::not_found(format!("certificate {serial} not found")))?;
        let current: CertStatus = parse_wire(&get::<String>(&row, "status")?, "status")?;
        if current == CertStatus::Revoked {
            return Err(Error::new(
                ErrorKind::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            ));
        }
        sqlx::query(sql(
            &tx,
            "UPDATE certificate_status
             SET status = $1, revoked_at = $2, revoked_reason = $3, last_updated = $4
             WHERE serial = $5 AND status = $6",
        ))
        .bind(CertStatus::Revoked.as_str())
        .bind(unix(revoked_at))
        .bind(i64::from(reason.code()))
        .bind(unix(now))
        .bind(serial.to_string())
        .bind(CertStatus::Good.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error("revoking a certificate"))?;
        commit(tx).await?;
        info!(serial = %serial, reason = reason.code(), "certificate revoked");
        Ok(())
    }

    /// Reads the serial's status to say why it cannot be re-revoked, then changes the
    /// reason with one UPDATE that matches only a revocation for another reason, so of
    /// two concurrent calls one changes it and the other finds it keyCompromise.
    async fn attempt_rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error> {
        let key_compromise = i64::from(RevocationReason::KeyCompromise.code());
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sql(
            &tx,
            "SELECT status, revoked_reason FROM certificate_status WHERE serial = $1",
        ))
        .bind(serial.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading a certificate status"))?
        .ok_or_else(|| Error::not_found(format!("serial {serial} not found")))?;
        let current: CertStatus = parse_wire(&get::<String>(&row, "status")?, "status")?;
        if current != CertStatus::Revoked {
            return Err(Error::conflict(format!("serial {serial} is not revoked")));
        }
        let previous = revocation_reason(get(&row, "revoked_reason")?)?;
        let updated = sqlx::query(sql(
            &tx,
            "UPDATE certificate_status SET revoked_reason = $1, last_updated = $2
             WHERE serial = $3 AND status = $4
             AND (revoked_reason IS NULL OR revoked_reason <> $5)",
        ))
        .bind(key_compromise)
        .bind(unix(self.clock.now()))
        .bind(serial.to_string())
        .bind(CertStatus::Revoked.as_str())
        .bind(key_compromise)
        .execute(&mut *tx)
        .await
        .map_err(db_error("re-revoking a certificate"))?;
        if updated.rows_affected() != 1 {
            return Err(Error::new(
                ErrorKind::AlreadyRevoked,
                format!("serial {serial} is already revoked for keyCompromise"),
            ));
        }
        commit(tx).await?;
        info!(
            serial = %serial,
            previous_reason = previous.map_or(-1, |reason| i64::from(reason.code())),
            reason = key_compromise,
            "revocation reason changed to keyCompromise"
        );
        Ok(())
    }

    /// Stores the incident and its serials (duplicates ignored) in one transaction,
    /// after checking that its name is free and that the CA used every serial.
    async fn attempt_add_incident(&self, incident: &NewIncident) -> Result<Incident, Error> {
        if incident.name.trim().is_empty() {
            return Err(Error::malformed("an incident needs a name"));
        }
        if incident.name.len() > MAX_INCIDENT_NAME {
            return Err(Error::malformed(format!(
                "an incident name has at most {MAX_INCIDENT_NAME} bytes"
            )));
        }
        let mut seen = BTreeSet::new();
        let serials: Vec<&Serial> = incident
            .serials
            .iter()
            .filter(|serial| seen.insert(*serial))
            .collect();
        if serials.is_empty() {
            return Err(Error::malformed("an incident names at least one serial"));
        }
        let count = position_value(serials.len())?;
        let id = new_id();
        let created_at = self.now()?;

        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(sql(&tx, "SELECT id FROM incidents WHERE name = $1"))
            .bind(&incident.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading an incident"))?;
        if taken.is_some() {
            return Err(incident_exists(&incident.name));
        }
        for serial in &serials {
            let known = sqlx::query(sql(&tx, "SELECT serial FROM serials WHERE serial = $1"))
                .bind(serial.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error("reading a serial"))?;
            if known.is_none() {
                return Err(Error::malformed(format!(
                    "serial {serial} is not one this CA used"
                )));
            }
        }
        let inserted = sqlx::query(sql(
            &tx,
            "INSERT INTO incidents (id, name, url, created_at, serial_count)
             VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(id)
        .bind(&incident.name)
        .bind(&incident.url)
        .bind(unix(created_at))
        .bind(count)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Declared by someone else since the look-up above.
            Err(err) if is_unique_violation(&err) => return Err(incident_exists(&incident.name)),
            Err(err) => return Err(db_error("storing an incident")(err)),
        }
        for serial in &serials {
            sqlx::query(sql(
                &tx,
                "INSERT INTO incident_serials (incident_id, serial) VALUES ($1, $2)",
            ))
            .bind(id)
            .bind(serial.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error("storing an incident's serials"))?;
        }
        commit(tx).await?;
        info!(
            incident_id = id,
            name = %incident.name,
            url = %incident.url,
            serials = count,
            "incident declared"
        );
        Ok(Incident {
            id,
            name: incident.name.clone(),
            url: incident.url.clone(),
            created_at,
            serials: count.unsigned_abs(),
        })
    }

    async fn attempt_add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        let _turn = self.write_turn().await;
        let inserted = sqlx::query(self.sql("INSERT INTO serials (serial, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"),
        )
        .bind(serial.to_string())
        .bind(account_id.0)
        .bind(unix(created_at))
        .bind(unix(expires_at))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {
                info!(serial = %serial, account_id = %account_id, "serial reserved");
                Ok(())
            }
            Err(err) if is_unique_violation(&err) => {
                warn!(serial = %serial, "serial reuse refused");
                Err(Error::conflict(format!("serial {serial} already used")))
            }
            Err(err) => Err(db_error("storing a serial")(err)),
        }
    }

    async fn attempt_add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error> {
        // A CA bug, like a serial it never reserved: refused before anything is stored.
        if placement.issuer_key_hash.len() != ISSUER_KEY_HASH_LEN {
            return Err(Error::internal(format!(
                "the placement of serial {serial} names an issuer_key_hash of {} bytes, \
                 not {ISSUER_KEY_HASH_LEN} (SHA-1); refusing its precertificate",
                placement.issuer_key_hash.len()
            )));
        }
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let reserved = sqlx::query(sql(
            &tx,
            "SELECT account_id, expires_at FROM serials WHERE serial = $1",
        ))
        .bind(serial.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading a serial"))?;
        let Some(reserved) = reserved else {
            return Err(Error::internal(format!(
                "serial {serial} was never reserved; refusing its precertificate"
            )));
        };
        if get::<i64>(&reserved, "account_id")? != account_id.0 {
            return Err(Error::internal(format!(
                "serial {serial} was reserved for another account than {account_id}"
            )));
        }
        let inserted = sqlx::query(sql(&tx, "INSERT INTO precertificates (serial, account_id, der, issued_at) VALUES ($1, $2, $3, $4)"),
        )
        .bind(serial.to_string())
        .bind(account_id.0)
        .bind(der)
        .bind(unix(issued_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(Error::conflict(format!(
                    "a precertificate with serial {serial} is already stored"
                )));
            }
            Err(err) => return Err(db_error("storing a precertificate")(err)),
        }
        // From here on the issuer key may sign with this serial, so the serial must be
        // revocable and have a status for OCSP and CRLs even if the certificate is
        // never stored; it expires when the serial's reservation says, and is listed
        // on the CRL shard its placement names once revoked.
        sqlx::query(sql(
            &tx,
            "INSERT INTO certificate_status (serial, status, not_after, last_updated,
                                             issuer_key_hash, crl_shard)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(serial.to_string())
        .bind(CertStatus::Good.as_str())
        .bind(get::<i64>(&reserved, "expires_at")?)
        .bind(unix(now))
        .bind(placement.issuer_key_hash.as_slice())
        .bind(placement.shard.map(i64::from))
        .execute(&mut *tx)
        .await
        .map_err(db_error("storing a certificate status"))?;
        search::index_precertificate(
            &mut tx,
            serial,
            der,
            unix(issued_at),
            get::<i64>(&reserved, "expires_at")?,
        )
        .await?;
        commit(tx).await?;
        info!(serial = %serial, account_id = %account_id, "precertificate stored");
        Ok(())
    }

    async fn attempt_add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        let serial = &certificate.serial;
        let now = self.clock.now();
        let mut tx = self.begin_write().await?;
        let precertificate = sqlx::query(sql(
            &tx,
            "SELECT account_id FROM precertificates WHERE serial = $1",
        ))
        .bind(serial.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("reading a precertificate"))?;
        let Some(precertificate) = precertificate else {
            return Err(Error::internal(format!(
                "no precertificate with serial {serial} is stored; refusing the certificate"
            )));
        };
        if get::<i64>(&precertificate, "account_id")? != certificate.account_id.0 {
            return Err(Error::internal(format!(
                "the precertificate {serial} belongs to another account than {}",
                certificate.account_id
            )));
        }
        let inserted = sqlx::query(sql(
            &tx,
            "INSERT INTO certificates (serial, account_id, der, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(serial.to_string())
        .bind(certificate.account_id.0)
        .bind(&certificate.der)
        .bind(unix(certificate.issued_at))
        .bind(unix(certificate.expires_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(Error::conflict(format!(
                    "a certificate with serial {serial} is already stored"
                )));
            }
            Err(err) => return Err(db_error("storing a certificate")(err)),
        }
        for (position, der) in certificate.chain.iter().enumerate() {
            sqlx::query(sql(
                &tx,
                "INSERT INTO certificate_chains (serial, position, der) VALUES ($1, $2, $3)",
            ))
            .bind(serial.to_string())
            .bind(position_value(position)?)
            .bind(der)
            .execute(&mut *tx)
            .await
            .map_err(db_error("storing a certificate chain"))?;
        }
        // The precertificate gave the serial its status, and a revocation since then
        // stands: the record's status is ignored, since revocation goes through
        // `revoke_certificate`, so it is audited. A precertificate stored before
        // precertificates had a status has none yet; the new certificate is good.
        let status = sqlx::query(sql(&tx, CERTIFICATE_STATUS_BY_SERIAL))
            .bind(serial.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading a certificate status"))?;
        if status.is_none() {
            sqlx::query(sql(
                &tx,
                "INSERT INTO certificate_status (serial, status, not_after, last_updated)
                 VALUES ($1, $2, $3, $4)",
            ))
            .bind(serial.to_string())
            .bind(CertStatus::Good.as_str())
            .bind(unix(certificate.expires_at))
            .bind(unix(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error("storing a certificate status"))?;
        }
        commit(tx).await?;
        info!(
            serial = %serial,
            account_id = %certificate.account_id,
            "certificate stored"
        );
        Ok(())
    }
}

/// What one maintenance pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Orders stuck in processing that were made invalid.
    pub orders_recovered: u64,
    /// Expired orders deleted, with their links to authorizations.
    pub orders_purged: u64,
    /// Expired authorizations deleted, with their challenges.
    pub authzs_purged: u64,
}

impl SqlStorage {
    /// One maintenance pass, as the SA runs on a period:
    ///
    /// - an order that began processing more than `processing_timeout` ago and has
    ///   neither a certificate nor an error was cut short (the RA or the SA died between
    ///   "processing" and "valid"); it becomes invalid with a `serverInternal` error, so
    ///   the client stops polling and orders again. A certificate signed for it, if any,
    ///   is stored already (the CA stores before it returns) and was never handed out.
    /// - orders and authorizations that expired more than `retention` ago are deleted,
    ///   at most `batch` of each per pass, so one pass never holds the database long.
    ///   An authorization is deleted only once no remaining order names it.
    pub async fn maintain(
        &self,
        processing_timeout: Duration,
        retention: Duration,
        batch: u32,
    ) -> Result<Maintenance, Error> {
        let now = self.clock.now();
        let stuck_before = unix(now).saturating_sub(seconds(processing_timeout));
        let expired_before = unix(now).saturating_sub(seconds(retention));
        let limit = i64::from(batch.max(1));
        let mut report = Maintenance::default();

        let stuck = sqlx::query(self.sql(STUCK_ORDERS))
            .bind(stuck_before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("finding orders stuck in processing"))?;
        for row in &stuck {
            let id = OrderId(get(row, "id")?);
            let error = Error::internal(
                "issuance was interrupted before the certificate was issued; \
                 submit a new order",
            );
            // The RA may finish the order between the scan and this update; then the
            // order is valid and stays so.
            match self.set_order_error(id, &error).await {
                Ok(()) => {
                    warn!(order_id = %id, "order stuck in processing made invalid");
                    report.orders_recovered += 1;
                }
                Err(err) if err.is(ErrorKind::Malformed) => {}
                Err(err) => return Err(err),
            }
        }

        let expired = sqlx::query(self.sql(EXPIRED_ORDERS))
            .bind(expired_before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("finding expired orders"))?;
        for row in &expired {
            let id: i64 = get(row, "id")?;
            self.retrying("purging an order", || self.purge_order(id))
                .await?;
            report.orders_purged += 1;
        }

        let expired = sqlx::query(self.sql(EXPIRED_AUTHZS))
            .bind(expired_before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("finding expired authorizations"))?;
        for row in &expired {
            let id: i64 = get(row, "id")?;
            if self
                .retrying("purging an authorization", || self.purge_authz(id))
                .await?
            {
                report.authzs_purged += 1;
            }
        }
        if report != Maintenance::default() {
            info!(
                orders_recovered = report.orders_recovered,
                orders_purged = report.orders_purged,
                authzs_purged = report.authzs_purged,
                "database maintenance"
            );
        }
        Ok(report)
    }

    /// Runs [`SqlStorage::maintain`] every `config.interval` until the task is
    /// dropped; a failed pass is logged and the next one tries again.
    pub async fn maintain_forever(&self, config: &MaintenanceConfig) {
        if config.interval.0.is_zero() {
            info!("database maintenance is off");
            return;
        }
        let mut ticks = tokio::time::interval(config.interval.0);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = self
                .maintain(
                    config.processing_timeout.0,
                    config.retention.0,
                    config.batch,
                )
                .await
            {
                warn!(error = %err, "database maintenance failed; the next pass tries again");
            }
        }
    }

    async fn purge_order(&self, id: i64) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        for statement in [
            "DELETE FROM order_authzs WHERE order_id = $1",
            "DELETE FROM orders WHERE id = $1",
        ] {
            sqlx::query(sql(&tx, statement))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_error("purging an order"))?;
        }
        commit(tx).await
    }

    /// Deletes an authorization and its challenges, unless an order names it: a
    /// reused authorization may have been linked to another order since the scan.
    /// Returns whether it was deleted.
    async fn purge_authz(&self, id: i64) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(sql(
            &tx,
            "DELETE FROM authzs WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM order_authzs oa WHERE oa.authz_id = $2)",
        ))
        .bind(id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_error("purging an authorization"))?;
        let deleted = deleted.rows_affected() == 1;
        if deleted {
            sqlx::query(sql(&tx, "DELETE FROM challenges WHERE authz_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_error("purging an authorization"))?;
        }
        commit(tx).await?;
        Ok(deleted)
    }
}

/// The answer to declaring an incident under a name already taken.
fn incident_exists(name: &str) -> Error {
    Error::conflict(format!("an incident named {name:?} already exists"))
}

/// A duration in whole seconds, for arithmetic on unix times.
fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

async fn load_account(conn: &mut AnyConnection, id: AccountId) -> Result<Account, Error> {
    let row = sqlx::query(sql(conn, ACCOUNT_BY_ID))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error("reading an account"))?
        .ok_or_else(|| Error::not_found(format!("account {id} not found")))?;
    account_from_row(&row)
}

async fn load_order(
    conn: &mut AnyConnection,
    id: OrderId,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let rows = sqlx::query(sql(conn, ORDER_WITH_AUTHZS))
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("reading an order"))?;
    let Some(row) = rows.first() else {
        return Err(Error::not_found(format!("order {id} not found")));
    };

    let mut authz_ids = Vec::with_capacity(rows.len());
    let mut authzs = Vec::with_capacity(rows.len());
    for authz_row in &rows {
        // The LEFT JOIN's row for an order without authorizations.
        let Some(authz_id) = get::<Option<i64>>(authz_row, "authz_id")? else {
            continue;
        };
        let authz_id = AuthzId(authz_id);
        let Some(stored) = get::<Option<String>>(authz_row, "status")? else {
            return Err(Error::internal(format!(
                "order {id} names authorization {authz_id}, which does not exist"
            )));
        };
        let stored: AuthzStatus = parse_wire(&stored, "authzs.status")?;
        let expires = from_unix(get(authz_row, "authz_expires")?)?;
        let identifier = identifier_from_row(authz_row)?;
        authz_ids.push(authz_id);
        let wildcard = get::<Option<i64>>(authz_row, "wildcard")?.unwrap_or(0) != 0;
        authzs.push((
            covered_name(identifier, wildcard),
            status::authz_status(stored, expires, now),
        ));
    }

    let identifiers: Vec<Identifier> =
        from_json(&get::<String>(row, "identifiers")?, "identifiers")?;
    let expires = from_unix(get(row, "expires")?)?;
    let error: Option<Error> = get::<Option<String>>(row, "error")?
        .map(|text| from_json(&text, "orders.error"))
        .transpose()?;
    let began_processing = get::<i64>(row, "began_processing")? != 0;
    let certificate_serial: Option<Serial> = get::<Option<String>>(row, "certificate_serial")?
        .map(|text| parse_wire(&text, "certificate_serial"))
        .transpose()?;
    let status = status::order_status(
        &OrderFacts {
            identifiers: &identifiers,
            expires,
            has_error: error.is_some(),
            began_processing,
            has_certificate: certificate_serial.is_some(),
            authzs: &authzs,
        },
        now,
    );
    Ok(Order {
        id,
        account_id: AccountId(get(row, "account_id")?),
        identifiers,
        status,
        expires,
        authz_ids,
        error,
        certificate_serial,
        created_at: from_unix(get(row, "created_at")?)?,
        profile: get(row, "profile")?,
        not_before: get::<Option<i64>>(row, "not_before")?
            .map(from_unix)
            .transpose()?,
        not_after: get::<Option<i64>>(row, "not_after")?
            .map(from_unix)
            .transpose()?,
        replaces: get::<Option<String>>(row, "replaces")?
            .map(|text| parse_wire(&text, "orders.replaces"))
            .transpose()?,
    })
}

/// The newest order replacing the certificate `serial` that is not invalid at `now`.
///
/// Invalid replacement orders pile up only as fast as a client retries, so computing
/// each one's status is cheap.
async fn live_replacement(
    conn: &mut AnyConnection,
    serial: &Serial,
    now: OffsetDateTime,
) -> Result<Option<OrderId>, Error> {
    let rows = sqlx::query(sql(conn, REPLACEMENT_ORDERS))
        .bind(serial.to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("reading replacement orders"))?;
    for row in &rows {
        let id = OrderId(get(row, "id")?);
        if load_order(conn, id, now).await?.status != OrderStatus::Invalid {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

async fn load_authz(
    conn: &mut AnyConnection,
    id: AuthzId,
    now: OffsetDateTime,
) -> Result<Authz, Error> {
    let rows = sqlx::query(sql(conn, AUTHZ_WITH_CHALLENGES))
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("reading an authorization"))?;
    let Some(row) = rows.first() else {
        return Err(Error::not_found(format!("authorization {id} not found")));
    };
    let mut challenges = Vec::with_capacity(rows.len());
    for challenge_row in &rows {
        // The LEFT JOIN's row for an authorization without challenges.
        if get::<Option<String>>(challenge_row, "kind")?.is_none() {
            continue;
        }
        challenges.push(challenge_from_row(challenge_row)?);
    }
    let stored: AuthzStatus = parse_wire(&get::<String>(row, "authz_status")?, "authzs.status")?;
    let expires = from_unix(get(row, "expires")?)?;
    Ok(Authz {
        id,
        account_id: AccountId(get(row, "account_id")?),
        identifier: identifier_from_row(row)?,
        status: status::authz_status(stored, expires, now),
        expires,
        wildcard: get::<i64>(row, "wildcard")? != 0,
        challenges,
    })
}

/// The name an authorization covers: a wildcard one covers `*.` + its name.
fn covered_name(identifier: Identifier, wildcard: bool) -> Identifier {
    if !wildcard {
        return identifier;
    }
    Identifier {
        value: format!("*.{}", identifier.value),
        ..identifier
    }
}

/// Whether two identifiers name the same thing, as order status compares them.
fn same_name(a: &Identifier, b: &Identifier) -> bool {
    a.kind == b.kind && a.value.eq_ignore_ascii_case(&b.value)
}

/// Checks the authorizations `order` reuses, in the write transaction that stores the
/// order, and returns their IDs in the order given. Each must exist, belong to the
/// order's account and be pending or valid at `now`, and cover one of `identifiers`
/// (the order's) that no other authorization of the order covers; otherwise the order
/// is refused with [`ErrorKind::Conflict`] naming it, so the caller can order again
/// without it.
async fn check_reused_authzs(
    conn: &mut AnyConnection,
    order: &NewOrder,
    identifiers: &[Identifier],
    now: OffsetDateTime,
) -> Result<Vec<AuthzId>, Error> {
    let mut covered: Vec<Identifier> = order
        .authzs
        .iter()
        .map(|authz| covered_name(authz.identifier.clone(), authz.wildcard))
        .collect();
    let mut reused = Vec::with_capacity(order.reused_authz_ids.len());
    for &id in &order.reused_authz_ids {
        let row = sqlx::query(sql(conn, AUTHZ_FOR_LINKING))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error("reading an authorization"))?;
        let usable = match &row {
            Some(row) => {
                let stored: AuthzStatus =
                    parse_wire(&get::<String>(row, "status")?, "authzs.status")?;
                let current = status::authz_status(stored, from_unix(get(row, "expires")?)?, now);
                get::<i64>(row, "account_id")? == order.account_id.0
                    && matches!(current, AuthzStatus::Pending | AuthzStatus::Valid)
            }
            None => false,
        };
        let Some(row) = row.filter(|_| usable) else {
            warn!(
                authz_id = %id,
                account_id = %order.account_id,
                "order refused: authorization no longer reusable"
            );
            return Err(Error::conflict(format!(
                "authorization {id} can no longer be reused"
            )));
        };
        let name = covered_name(
            identifier_from_row(&row)?,
            get::<i64>(&row, "wildcard")? != 0,
        );
        if !identifiers.iter().any(|wanted| same_name(wanted, &name)) {
            return Err(Error::conflict(format!(
                "authorization {id} is for {name}, which the order does not ask for"
            )));
        }
        if covered.iter().any(|other| same_name(other, &name)) {
            return Err(Error::conflict(format!(
                "authorization {id} is for {name}, which another authorization of the order \
                 covers"
            )));
        }
        covered.push(name);
        reused.push(id);
    }
    Ok(reused)
}

async fn load_certificate(
    conn: &mut AnyConnection,
    serial: &Serial,
) -> Result<CertificateRecord, Error> {
    let row = sqlx::query(sql(conn, CERTIFICATE_BY_SERIAL))
        .bind(serial.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error("reading a certificate"))?
        .ok_or_else(|| Error::not_found(format!("certificate {serial} not found")))?;
    let chain_rows = sqlx::query(sql(conn, CERTIFICATE_CHAIN))
        .bind(serial.to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("reading a certificate chain"))?;

    let chain = chain_rows
        .iter()
        .map(|row| get::<Vec<u8>>(row, "der"))
        .collect::<Result<Vec<_>, Error>>()?;
    let Some(status) = get::<Option<String>>(&row, "status")? else {
        return Err(Error::internal(format!(
            "certificate {serial} has no status row"
        )));
    };
    let revocation_reason = revocation_reason(get(&row, "revoked_reason")?)?;
    Ok(CertificateRecord {
        serial: serial.clone(),
        account_id: AccountId(get(&row, "account_id")?),
        der: get(&row, "der")?,
        chain,
        issued_at: from_unix(get(&row, "issued_at")?)?,
        expires_at: from_unix(get(&row, "expires_at")?)?,
        status: parse_wire(&status, "certificate_status.status")?,
        revoked_at: get::<Option<i64>>(&row, "revoked_at")?
            .map(from_unix)
            .transpose()?,
        revocation_reason,
    })
}

/// The reason stored in `certificate_status.revoked_reason`, if any.
fn revocation_reason(code: Option<i64>) -> Result<Option<RevocationReason>, Error> {
    code.map(|code| {
        u8::try_from(code)
            .ok()
            .and_then(|code| RevocationReason::try_from(code).ok())
            .ok_or_else(|| corrupt(format!("revoked_reason {code}")))
    })
    .transpose()
}

async fn insert_challenge(
    conn: &mut AnyConnection,
    authz_id: AuthzId,
    position: usize,
    challenge: &Challenge,
) -> Result<(), Error> {
    let error = challenge.error.as_ref().map(to_json).transpose()?;
    sqlx::query(sql(
        conn,
        "INSERT INTO challenges (authz_id, kind, position, token, status, validated, error,
                                 validation_records)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ))
    .bind(authz_id.0)
    .bind(challenge.kind.as_str())
    .bind(position_value(position)?)
    .bind(&challenge.token)
    .bind(challenge.status.as_str())
    .bind(challenge.validated.map(unix))
    .bind(error)
    .bind(to_json(&challenge.validation_records)?)
    .execute(&mut *conn)
    .await
    .map_err(db_error("storing a challenge"))?;
    Ok(())
}

fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(db_error("reading a row"))
}

/// Maps a database failure to the cross-service error, logging the cause. A failure
/// that a retry of the whole transaction may cure is `unavailable` with a detail that
/// [`is_retryable`] recognises.
pub(crate) fn db_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |err| {
        if err.as_database_error().is_some_and(Engine::is_retryable) {
            warn!(operation, error = %err, "database serialization failure");
            return Error::unavailable(format!("{SERIALIZATION_FAILURE} while {operation}: {err}"));
        }
        common::db_error(operation)(err)
    }
}

async fn commit(tx: Tx) -> Result<(), Error> {
    tx.commit()
        .await
        .map_err(db_error("committing a transaction"))
}

/// A transaction and, for a SQLite write, this process's turn to write, held
/// until it commits or is dropped (rolled back). Use it as the connection.
pub(crate) struct Tx {
    inner: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    #[cfg(test)]
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests;
