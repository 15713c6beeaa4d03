//! SQLite: the conformance suite on a fresh database file per test, and what only
//! SQLite does (files that survive a restart, upgrades from older schemas).

use std::path::PathBuf;
use std::sync::Arc;

use basalt_core::AccountId;
use basalt_core::AuthzStatus;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::OrderId;
use basalt_core::OrderStatus;
use basalt_core::PageRequest;
use basalt_core::Serial;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use sqlx::AssertSqlSafe;

use super::*;
use crate::conformance::TestEngine;
use crate::conformance::account;
use crate::conformance::assert_kind;
use crate::conformance::conformance_tests;
use crate::conformance::issue;
use crate::conformance::new_order;
use crate::conformance::record;
use crate::conformance::start;
use crate::conformance::validate_all;

impl TestEngine for SqlStorage {
    type Guard = TempDb;

    /// A database file rather than `sqlite::memory:`, so the concurrency tests get
    /// more than one connection.
    async fn fresh(clock: &FixedClock) -> (Self, TempDb) {
        let db = TempDb::new();
        let sa = Self::connect(&db.url(), Arc::new(clock.clone()))
            .await
            .unwrap();
        (sa, db)
    }

    async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
            .get("n")
    }

    async fn add_failing_trigger(&self, name: &str, event: &str, table: &str, when: Option<&str>) {
        let when = when.map(|when| format!("WHEN {when}")).unwrap_or_default();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TRIGGER {name} BEFORE {event} ON {table} {when}
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn drop_trigger(&self, name: &str, _table: &str) {
        sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {name}")))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    async fn shut_down(&self) {
        self.close().await;
    }
}

conformance_tests!(SqlStorage);

async fn memory(clock: &FixedClock) -> SqlStorage {
    SqlStorage::connect("sqlite::memory:", Arc::new(clock.clone()))
        .await
        .unwrap()
}

/// A database file in the temp dir, removed (with its WAL files) on drop.
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = format!("basalt-sa-test-{:016x}.db", rand::random::<u64>());
        Self(std::env::temp_dir().join(name))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn data_survives_a_restart() {
    let db = TempDb::new();
    let clock = FixedClock::new(start());
    let sa = SqlStorage::connect(&db.url(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;
    sa.set_order_processing(order.id).await.unwrap();
    let serial: Serial = "0102030405060708".parse().unwrap();
    issue(&sa, acct.id, &serial, start()).await;
    sa.finalize_order(order.id, &serial).await.unwrap();
    let before = sa.order(order.id).await.unwrap();
    sa.close().await;
    drop(sa);

    let sa = SqlStorage::connect(&db.url(), Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(sa.account_by_key("thumb").await.unwrap(), acct);
    assert_eq!(sa.order(order.id).await.unwrap(), before);
    assert_eq!(before.status, OrderStatus::Valid);
    assert_eq!(
        sa.authz(order.authz_ids[0]).await.unwrap().status,
        AuthzStatus::Valid
    );
    assert_eq!(
        sa.certificate(&serial).await.unwrap(),
        record(&serial, acct.id, start())
    );
    assert_kind(
        sa.add_serial(&serial, acct.id, start(), start()).await,
        ErrorKind::Conflict,
    );

    // Migrations ran once, and running them again changes nothing.
    sa.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&sa.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("version"))
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&sa.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(journal, "wal");
    sa.close().await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let clock = Arc::new(FixedClock::new(start()));
    let err = SqlStorage::connect("postgres://localhost/test", clock.clone())
        .await
        .unwrap_err();
    assert!(err.detail.contains("unsupported database url"), "{err}");
    let config = DatabaseConfig {
        url: "sqlite::memory:".into(),
        max_connections: 0,
    };
    assert!(SqlStorage::from_config(&config, clock).await.is_err());
}

#[tokio::test]
async fn a_version_1_database_is_upgraded() {
    let db = TempDb::new();
    // A database as the first release left it: only 0001 applied, with an account and
    // an order in the old columns.
    {
        let options = SqliteConnectOptions::from_str(&db.url())
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_migrations (
                 version BIGINT NOT NULL PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             );
             INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0);",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(MIGRATIONS[0].sql)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO accounts (id, key_jwk, key_thumbprint, contacts, status, created_at)
             VALUES (11, '{}', 'old-thumb', '[]', 'valid', 1893456000);
             INSERT INTO orders (id, account_id, identifiers, expires, began_processing,
                                 created_at)
             VALUES (22, 11, '[{\"type\":\"dns\",\"value\":\"old.example\"}]',
                     1894060800, 0, 1893456000);",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    let clock = FixedClock::new(start());
    let sa = SqlStorage::connect(&db.url(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let indexes: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&sa.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get("name"))
    .collect();
    assert_eq!(
        indexes,
        vec![
            "orders_account_created_id".to_owned(),
            "orders_replaces".to_owned()
        ]
    );
    let page = sa
        .orders_for_account(AccountId(11), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.order_ids, vec![OrderId(22)]);
    // The old order asked for the default profile, no window, and replaces nothing.
    let old = sa.order(OrderId(22)).await.unwrap();
    assert_eq!(old.identifiers, vec![Identifier::dns("old.example")]);
    assert_eq!(old.profile, "");
    assert_eq!(
        (old.not_before, old.not_after, old.replaces),
        (None, None, None)
    );
    assert_eq!(sa.eab_keys().await.unwrap(), Vec::new());

    // And the new columns work on the upgraded file.
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    assert_eq!(sa.order(order.id).await.unwrap().profile, "classic");
    sa.close().await;
}

#[tokio::test]
async fn the_orders_listing_walks_its_index() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    // The listing walks the index the second migration made.
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT id, created_at FROM orders
         WHERE account_id = ? AND (created_at < ? OR (created_at = ? AND id < ?))
         ORDER BY created_at DESC, id DESC LIMIT ?",
    )
    .bind(acct.id.0)
    .bind(0_i64)
    .bind(0_i64)
    .bind(0_i64)
    .bind(3_i64)
    .fetch_all(&sa.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>("detail"))
    .collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("orders_account_created_id")),
        "{plan:?}"
    );
    assert!(
        plan.iter().all(|step| !step.contains("TEMP B-TREE")),
        "{plan:?}"
    );
}
