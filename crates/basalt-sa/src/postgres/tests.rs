//! PostgreSQL: the conformance suite on a fresh database per test, and what only this
//! engine does (serialization failures and their retry, concurrent migrators).
//!
//! The server is `BASALT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test creates its own database
//! `basalt_test_<random>` there and drops it afterwards, so tests run in parallel. When
//! the server is not reachable these tests FAIL: they never pass without PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use basalt_core::FixedClock;
use basalt_core::OrderStatus;
use sqlx::AssertSqlSafe;
use sqlx::Connection;

use super::*;
use crate::conformance::TestEngine;
use crate::conformance::account;
use crate::conformance::conformance_tests;
use crate::conformance::new_order;
use crate::conformance::start;
use crate::conformance::validate_all;

/// The server the tests use when `BASALT_TEST_POSTGRES_URL` is not set.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

fn server_url() -> String {
    std::env::var("BASALT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
}

/// `url` with its database replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{base}/{name}{query}")
}

async fn admin_connection(server: &str) -> PgConnection {
    match PgConnection::connect(server).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "postgresql is not reachable at {server} ({err}): the postgres tests need a \
             running server; start one or set BASALT_TEST_POSTGRES_URL"
        ),
    }
}

/// A database of its own for one test; dropping it drops the database.
pub(crate) struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let server = server_url();
        let name = format!("basalt_test_{:016x}", rand::random::<u64>());
        let mut conn = admin_connection(&server).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = with_database(&server, &name);
        Self { server, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of
        // its own with a runtime of its own drops the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&server).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

impl TestEngine for PgStorage {
    type Guard = TestDatabase;

    async fn fresh(clock: &FixedClock) -> (Self, TestDatabase) {
        let db = TestDatabase::create().await;
        let sa = Self::connect(&db.url, Arc::new(clock.clone()))
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
        sqlx::raw_sql(
            "CREATE OR REPLACE FUNCTION basalt_test_fail() RETURNS trigger
             LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
        )
        .execute(&self.pool)
        .await
        .unwrap();
        let when = when
            .map(|when| format!("WHEN ({when})"))
            .unwrap_or_default();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW {when}
             EXECUTE FUNCTION basalt_test_fail()"
        )))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn drop_trigger(&self, name: &str, table: &str) {
        sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {name} ON {table}")))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    async fn shut_down(&self) {
        self.close().await;
    }
}

conformance_tests!(PgStorage);

#[test]
fn test_databases_replace_the_server_url_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@db/test?sslmode=disable", "x"),
        "postgresql://u:p@db/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://db", "x"), "postgres://db/x");
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let clock = Arc::new(FixedClock::new(start()));
    let err = PgStorage::connect("sqlite::memory:", clock.clone())
        .await
        .unwrap_err();
    assert!(err.detail.contains("unsupported database url"), "{err}");
    let config = DatabaseConfig {
        url: with_database(&server_url(), "test"),
        max_connections: 0,
    };
    let err = PgStorage::from_config(&config, clock).await.unwrap_err();
    assert!(err.detail.contains("max_connections"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_even_from_two_processes() {
    let clock = FixedClock::new(start());
    let db = TestDatabase::create().await;
    // Two SAs starting at once against an empty database: both come up.
    let (first, second) = tokio::join!(
        PgStorage::connect(&db.url, Arc::new(clock.clone())),
        PgStorage::connect(&db.url, Arc::new(clock.clone())),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    first.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&first.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("version"))
        .collect();
    assert_eq!(versions, vec![1]);
    let acct = account(&first, "thumb").await;
    assert_eq!(second.account(acct.id).await.unwrap(), acct);
    first.close().await;
    second.close().await;
}

/// Runs `sa`'s `set_order_processing` while another transaction holds the order's row
/// and then commits a change to it, so the SA's serializable transaction fails to
/// serialize on its first attempt. Returns what `run` returned.
async fn against_a_concurrent_update<T, F, Fut>(sa: &PgStorage, order: OrderId, run: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut other = sa.pool.begin().await.unwrap();
    sqlx::query("UPDATE orders SET profile = profile WHERE id = $1")
        .bind(order.0)
        .execute(&mut *other)
        .await
        .unwrap();
    let task = tokio::spawn(run());
    // Wait until the SA's transaction blocks on the row `other` holds.
    let mut waited = 0;
    loop {
        let waiting: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&sa.pool)
        .await
        .unwrap()
        .get("n");
        if waiting > 0 {
            break;
        }
        waited += 1;
        assert!(
            waited < 500,
            "the SA's transaction never blocked on the row"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other.commit().await.unwrap();
    task.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_are_retried() {
    let clock = FixedClock::new(start());
    let (sa, _db) = PgStorage::fresh(&clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;

    // One attempt alone fails to serialize, and says a retry may cure it.
    let once = sa.clone();
    let err = against_a_concurrent_update(&sa, order.id, move || async move {
        once.attempt_set_order_processing(order.id).await
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(is_retryable(&err), "{err}");
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);

    // The storage method retries and succeeds.
    let retried = sa.clone();
    against_a_concurrent_update(&sa, order.id, move || async move {
        retried.set_order_processing(order.id).await
    })
    .await
    .unwrap();
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Processing
    );
    sa.close().await;
}

#[tokio::test]
async fn retries_are_bounded_and_only_for_serialization_failures() {
    let clock = FixedClock::new(start());
    let (sa, _db) = PgStorage::fresh(&clock).await;

    let attempts = AtomicU32::new(0);
    let err = sa
        .retrying("test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::unavailable(format!(
                "{SERIALIZATION_FAILURE} while testing"
            )))
        })
        .await
        .unwrap_err();
    assert!(is_retryable(&err));
    assert_eq!(attempts.load(Ordering::SeqCst), MAX_ATTEMPTS);

    let attempts = AtomicU32::new(0);
    let err = sa
        .retrying("test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::unavailable("database unavailable while testing"))
        })
        .await
        .unwrap_err();
    assert!(!is_retryable(&err));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let attempts = AtomicU32::new(0);
    let value = sa
        .retrying("test", || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Error::unavailable(format!(
                    "{SERIALIZATION_FAILURE} while testing"
                )))
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
    assert_eq!((value, attempts.load(Ordering::SeqCst)), (7, 3));
    sa.close().await;
}

#[tokio::test]
async fn any_storage_opens_postgres_urls() {
    let clock = FixedClock::new(start());
    let db = TestDatabase::create().await;
    let config = DatabaseConfig {
        url: db.url.clone(),
        max_connections: 2,
    };
    let sa = crate::AnyStorage::from_config(&config, Arc::new(clock.clone()))
        .await
        .unwrap();
    assert!(matches!(sa, crate::AnyStorage::Postgres(_)));
    let acct = account(&sa, "thumb").await;
    assert_eq!(sa.account_by_key("thumb").await.unwrap(), acct);
    sa.close().await;
}
