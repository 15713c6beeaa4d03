//! The engine-neutral entry point: the URL's scheme picks the engine.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountUpdate;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::CertificateLookup;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::NewAccount;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use time::OffsetDateTime;

use crate::DatabaseConfig;
use crate::PgStorage;
use crate::SqlStorage;
use crate::config::DEFAULT_MAX_CONNECTIONS;

/// The storage authority's database, on whichever engine the URL names:
/// `sqlite:` URLs open [`SqlStorage`], `postgres://` and `postgresql://` URLs open
/// [`PgStorage`]. Implements every storage trait by handing the call to the engine.
#[derive(Clone, Debug)]
pub enum AnyStorage {
    /// SQLite.
    Sqlite(SqlStorage),
    /// PostgreSQL.
    Postgres(PgStorage),
}

/// Runs `$call` on the engine inside `$self`, bound as `$s`.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStorage::Sqlite($s) => $call,
            AnyStorage::Postgres($s) => $call,
        }
    };
}

impl AnyStorage {
    /// Opens `url` with a pool of 5 connections, and applies pending migrations.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS, clock).await
    }

    /// Opens the database that `[database]` names, and applies pending migrations.
    pub async fn from_config(
        config: &DatabaseConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        Self::connect_with(&config.url, config.max_connections, clock).await
    }

    async fn connect_with(
        url: &str,
        max_connections: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        match engine(url) {
            Some(Engine::Sqlite) => Ok(Self::Sqlite(
                SqlStorage::connect_with(url, max_connections, clock).await?,
            )),
            Some(Engine::Postgres) => Ok(Self::Postgres(
                PgStorage::connect_with(url, max_connections, clock).await?,
            )),
            None => Err(Error::internal(
                "unsupported database url: expected sqlite://PATH, sqlite::memory:, \
                 postgres://… or postgresql://…",
            )),
        }
    }

    /// Closes every connection; for a graceful shutdown.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

/// The engines a URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

fn engine(url: &str) -> Option<Engine> {
    if url.starts_with("sqlite:") {
        Some(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Engine::Postgres)
    } else {
        None
    }
}

#[async_trait]
impl CertificateLookup for AnyStorage {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        dispatch!(self, s => s.certificate(serial).await)
    }
}

#[async_trait]
impl StorageReadOnly for AnyStorage {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        dispatch!(self, s => s.account(id).await)
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        dispatch!(self, s => s.account_by_key(key_thumbprint).await)
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        dispatch!(self, s => s.order(id).await)
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        dispatch!(self, s => s.authz(id).await)
    }

    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        dispatch!(self, s => s.replacement_order(serial).await)
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        dispatch!(self, s => s.eab_key(key_id).await)
    }

    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        dispatch!(self, s => s.eab_keys().await)
    }

    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        dispatch!(self, s => s.orders_for_account(account_id, page).await)
    }
}

#[async_trait]
impl CertificateStore for AnyStorage {
    async fn add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        dispatch!(self, s => s.add_serial(serial, account_id, created_at, expires_at).await)
    }

    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
    ) -> Result<(), Error> {
        dispatch!(self, s => s.add_precertificate(serial, der, account_id, issued_at).await)
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        dispatch!(self, s => s.add_certificate(certificate).await)
    }
}

#[async_trait]
impl Storage for AnyStorage {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        dispatch!(self, s => s.new_account(account).await)
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error> {
        dispatch!(self, s => s.update_account(id, update).await)
    }

    async fn new_order(&self, order: NewOrder) -> Result<Order, Error> {
        dispatch!(self, s => s.new_order(order).await)
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        dispatch!(self, s => s.deactivate_authz(id).await)
    }

    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        dispatch!(self, s => s.add_eab_key(key).await)
    }

    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        dispatch!(self, s => s.revoke_eab_key(key_id).await)
    }

    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
    ) -> Result<(), Error> {
        dispatch!(self, s => s.set_challenge_processing(id, kind).await)
    }

    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        dispatch!(self, s => s.finalize_authz(id, kind, outcome).await)
    }

    async fn set_order_processing(&self, id: OrderId) -> Result<(), Error> {
        dispatch!(self, s => s.set_order_processing(id).await)
    }

    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        dispatch!(self, s => s.finalize_order(id, serial).await)
    }

    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        dispatch!(self, s => s.set_order_error(id, error).await)
    }

    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        dispatch!(self, s => s.revoke_certificate(serial, reason, revoked_at).await)
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::FixedClock;

    use super::*;

    #[test]
    fn the_scheme_picks_the_engine() {
        assert_eq!(engine("sqlite::memory:"), Some(Engine::Sqlite));
        assert_eq!(engine("sqlite:///var/lib/basalt.db"), Some(Engine::Sqlite));
        assert_eq!(engine("postgres://127.0.0.1/test"), Some(Engine::Postgres));
        assert_eq!(engine("postgresql://u@db/basalt"), Some(Engine::Postgres));
        assert_eq!(engine("mysql://db/basalt"), None);
        assert_eq!(engine("postgres:relative"), None);
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let clock = Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH));
        let err = AnyStorage::connect("mysql://127.0.0.1/basalt", clock)
            .await
            .unwrap_err();
        assert!(err.detail.contains("unsupported database url"), "{err}");
    }

    #[tokio::test]
    async fn a_sqlite_url_opens_sqlite() {
        let clock = Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH));
        let sa = AnyStorage::connect("sqlite::memory:", clock).await.unwrap();
        assert!(matches!(sa, AnyStorage::Sqlite(_)));
        let err = sa.account(AccountId(7)).await.unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::NotFound);
        sa.close().await;
    }
}
