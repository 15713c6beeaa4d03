//! Each engine: the conformance suite on a fresh database per test, the start-up and
//! migration behaviour every engine shares, and what only one engine does.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use basalt_core::FixedClock;
use basalt_core::OrderStatus;

use super::*;
use crate::Maintenance;
use crate::conformance::account;
use crate::conformance::conformance_tests;
use crate::conformance::new_order;
use crate::conformance::placement;
use crate::conformance::start;
use crate::conformance::validate_all;
use crate::create_database_if_missing;
use crate::testdb::TestDatabase;

/// The versions in `schema_migrations`, oldest first.
async fn versions(sa: &SqlStorage) -> Vec<i64> {
    migrate::applied(sa.pool(), sa.engine()).await.unwrap()
}

/// Two SAs starting at once against an empty database both come up, and the
/// migrations are applied once.
async fn migrations_run_once_even_from_two_processes(engine: Engine) {
    let clock = FixedClock::new(start());
    let db = TestDatabase::create(engine).await;
    let (first, second) = tokio::join!(
        SqlStorage::connect(&db.url, Arc::new(clock.clone())),
        SqlStorage::connect(&db.url, Arc::new(clock.clone())),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.migrate().await.unwrap(), Vec::<i64>::new());
    let all: Vec<i64> = migrate::history(engine).iter().map(|m| m.version).collect();
    assert_eq!(versions(&first).await, all);
    assert_eq!(first.pending_migrations().await.unwrap(), Vec::<i64>::new());
    let acct = account(&first, "thumb").await;
    assert_eq!(second.account(acct.id).await.unwrap(), acct);
    first.close().await;
    second.close().await;
}

/// With `migrate = false` an SA refuses a database that lacks migrations, and
/// `migrate` (what `basalt sa migrate` runs) applies them.
async fn without_auto_migration_an_old_schema_is_refused(engine: Engine) {
    let clock = Arc::new(FixedClock::new(start()));
    let db = TestDatabase::create(engine).await;
    let config = DatabaseConfig {
        migrate: false,
        ..DatabaseConfig::new(&db.url)
    };
    let err = SqlStorage::from_config(&config, clock.clone())
        .await
        .unwrap_err();
    assert!(err.detail.contains("basalt sa migrate"), "{err}");

    let sa = SqlStorage::open(&config, clock.clone()).await.unwrap();
    let all: Vec<i64> = migrate::history(engine).iter().map(|m| m.version).collect();
    assert_eq!(sa.pending_migrations().await.unwrap(), all);
    assert_eq!(sa.migrate().await.unwrap(), all);
    sa.close().await;
    let sa = SqlStorage::from_config(&config, clock).await.unwrap();
    account(&sa, "thumb").await;
    sa.close().await;
}

/// An order stuck in processing past the timeout is made invalid; one within it, and
/// finished orders, are left alone.
async fn stuck_orders_are_settled(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, _db) = TestDatabase::fresh(engine, &clock).await;
    let acct = account(&sa, "thumb").await;
    let processing = |sa: SqlStorage| async move {
        let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
        validate_all(&sa, &order, start()).await;
        sa.set_order_processing(order.id, "attempt").await.unwrap();
        order.id
    };
    let stuck = processing(sa.clone()).await;
    let finished = processing(sa.clone()).await;
    let serial: Serial = "0a0b0c0d".parse().unwrap();
    crate::conformance::issue(&sa, acct.id, &serial, start()).await;
    sa.finalize_order(finished, &serial).await.unwrap();
    clock.advance(time::Duration::minutes(10));
    let recent = processing(sa.clone()).await;

    let timeout = Duration::from_secs(300);
    let retention = Duration::from_secs(30 * 86_400);
    let report = sa.maintain(timeout, retention, 100).await.unwrap();
    assert_eq!(report.orders_recovered, 1, "{report:?}");
    let settled = sa.order(stuck).await.unwrap();
    assert_eq!(settled.status, OrderStatus::Invalid);
    assert_eq!(settled.error.unwrap().kind, ErrorKind::Internal);
    assert_eq!(sa.order(finished).await.unwrap().status, OrderStatus::Valid);
    assert_eq!(
        sa.order(recent).await.unwrap().status,
        OrderStatus::Processing
    );
    // A second pass finds nothing more to do.
    assert_eq!(
        sa.maintain(timeout, retention, 100).await.unwrap(),
        Maintenance::default()
    );
    sa.close().await;
}

/// Orders and authorizations expired past the retention go, a batch per pass, orders
/// first; live ones stay.
async fn expired_data_is_purged_in_batches(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, _db) = TestDatabase::fresh(engine, &clock).await;
    let acct = account(&sa, "thumb").await;
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(sa.new_order(new_order(acct.id, start())).await.unwrap());
    }
    // `new_order` orders and authorizations expire after 7 days.
    clock.advance(time::Duration::days(9));
    let live = sa.new_order(new_order(acct.id, clock.now())).await.unwrap();

    let timeout = Duration::from_secs(300);
    let retention = Duration::from_secs(86_400);
    let first = sa.maintain(timeout, retention, 2).await.unwrap();
    assert_eq!(
        (first.orders_purged, first.authzs_purged),
        (2, 2),
        "{first:?}"
    );
    let second = sa.maintain(timeout, retention, 2).await.unwrap();
    assert_eq!(
        (second.orders_purged, second.authzs_purged),
        (1, 2),
        "{second:?}"
    );
    let third = sa.maintain(timeout, retention, 2).await.unwrap();
    assert_eq!(
        (third.orders_purged, third.authzs_purged),
        (0, 2),
        "{third:?}"
    );
    assert_eq!(
        sa.maintain(timeout, retention, 2).await.unwrap(),
        Maintenance::default()
    );

    for order in &old {
        assert_eq!(
            sa.order(order.id).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        for authz in &order.authz_ids {
            assert_eq!(
                sa.authz(*authz).await.unwrap_err().kind,
                ErrorKind::NotFound
            );
        }
    }
    assert_eq!(sa.order(live.id).await.unwrap(), live);
    assert_eq!(sa.count_rows("orders").await, 1);
    assert_eq!(sa.count_rows("authzs").await, 2);
    assert_eq!(sa.count_rows("order_authzs").await, 2);
    assert_eq!(sa.count_rows("challenges").await, 3);
    sa.close().await;
}

/// The server drops every connection of the SA (a restart, a fail-over, an
/// administrator): the SA opens new ones, and a call never hangs nor fails with
/// anything but a retryable `unavailable`.
async fn lost_connections_are_replaced(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, db) = TestDatabase::fresh(engine, &clock).await;
    let acct = account(&sa, "thumb").await;
    for round in 0..3 {
        db.drop_connections().await;
        let mut answered = false;
        for _ in 0..3 {
            let call = tokio::time::timeout(Duration::from_secs(10), sa.account(acct.id))
                .await
                .unwrap_or_else(|_| panic!("round {round}: the call hung"));
            match call {
                Ok(found) => {
                    assert_eq!(found, acct);
                    answered = true;
                    break;
                }
                Err(err) => assert_eq!(err.kind, ErrorKind::Unavailable, "{err}"),
            }
        }
        assert!(
            answered,
            "round {round}: no answer after the connections were lost"
        );
        // Writes go through as well.
        account(&sa, &format!("thumb-{round}")).await;
    }
    sa.close().await;
}

/// The server ends a connection in the middle of a transaction: the failure is a
/// retryable `unavailable`, not an internal error, so the RA tries again.
async fn a_connection_ended_mid_transaction_is_unavailable(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, db) = TestDatabase::fresh(engine, &clock).await;
    let mut tx = sa.begin_write().await.unwrap();
    let own_id = match engine {
        Engine::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT) AS id",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS id",
    };
    let id: i64 = sqlx::query(own_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get("id");
    db.end_connection(id).await;
    let failed = sqlx::query(sql(&tx, "SELECT id FROM accounts WHERE id = $1"))
        .bind(1_i64)
        .fetch_optional(&mut *tx)
        .await
        .map(|row| row.is_some());
    let err = db_error("testing")(failed.expect_err("the ended connection answered"));
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    drop(tx);
    account(&sa, "thumb").await;
    sa.close().await;
}

/// A missing database is created, once; an existing one is left alone.
async fn missing_databases_are_created(engine: Engine) {
    let db = TestDatabase::named(engine);
    assert!(create_database_if_missing(&db.url).await.unwrap());
    assert!(!create_database_if_missing(&db.url).await.unwrap());
    let clock = FixedClock::new(start());
    let sa = SqlStorage::connect(&db.url, Arc::new(clock)).await.unwrap();
    account(&sa, "thumb").await;
    sa.close().await;
    let bad = crate::testdb::with_database(&db.url, "no-dashes");
    let err = create_database_if_missing(&bad).await.unwrap_err();
    assert!(err.detail.starts_with("database.url"), "{err}");
}

/// A value bound to a hot query when it is explained.
enum Param {
    Int(i64),
    Text(&'static str),
    Bytes(&'static [u8]),
}

/// Every hot query with values of the right types for its bind parameters.
fn hot_queries() -> Vec<(&'static str, &'static str, Vec<Param>)> {
    use Param::Bytes;
    use Param::Int;
    use Param::Text;
    vec![
        ("account by id", ACCOUNT_BY_ID, vec![Int(1)]),
        ("account by key", ACCOUNT_BY_KEY, vec![Text("thumb")]),
        (
            "order and its authorizations by id",
            ORDER_WITH_AUTHZS,
            vec![Int(1)],
        ),
        (
            "an account's orders",
            ORDERS_PAGE_FIRST,
            vec![Int(1), Int(50)],
        ),
        (
            "an account's orders, next page",
            ORDERS_PAGE_AFTER,
            vec![Int(1), Int(2), Int(2), Int(3), Int(50)],
        ),
        (
            "an account's orders, newest for reuse",
            RECENT_ORDERS,
            vec![Int(1), Int(50)],
        ),
        (
            "orders replacing a certificate",
            REPLACEMENT_ORDERS,
            vec![Text("0a")],
        ),
        (
            "authorization and its challenges by id",
            AUTHZ_WITH_CHALLENGES,
            vec![Int(1)],
        ),
        (
            "an account's authorizations for a name",
            AUTHZS_FOR_REUSE,
            vec![
                Int(1),
                Text("dns"),
                Text("a.example"),
                Text("valid"),
                Int(1),
                Text("pending"),
                Int(1),
            ],
        ),
        ("an authorization to reuse", AUTHZ_FOR_LINKING, vec![Int(1)]),
        (
            "certificate by serial",
            CERTIFICATE_BY_SERIAL,
            vec![Text("0a")],
        ),
        ("a certificate's chain", CERTIFICATE_CHAIN, vec![Text("0a")]),
        (
            "certificate status by serial",
            CERTIFICATE_STATUS_BY_SERIAL,
            vec![Text("0a")],
        ),
        (
            "revocation status by serial",
            REVOCATION_STATUS_BY_SERIAL,
            vec![Text("0a")],
        ),
        (
            "orders stuck in processing",
            STUCK_ORDERS,
            vec![Int(1), Int(100)],
        ),
        ("expired orders", EXPIRED_ORDERS, vec![Int(1), Int(100)]),
        (
            "expired authorizations",
            EXPIRED_AUTHZS,
            vec![Int(1), Int(100)],
        ),
        ("a blocked key", KEY_BLOCKED, vec![Bytes(&[0x11; 32])]),
        (
            "the incident of a serial",
            INCIDENT_FOR_SERIAL,
            vec![Text("0a")],
        ),
        (
            "a CRL shard's revoked certificates",
            REVOKED_CERTIFICATES,
            vec![Text("revoked"), Bytes(&[0x1a; 20]), Int(0), Int(1)],
        ),
        (
            "status changes since a time",
            STATUS_CHANGES,
            vec![Int(1), Int(100)],
        ),
        (
            "certificates by name",
            search::SEARCH_BY_NAME,
            vec![
                Text("dns"),
                Text("com.example"),
                Text("com.example."),
                Text("com.example/"),
                Text("good"),
                Text("revoked"),
                Int(0),
                Int(100),
            ],
        ),
        (
            "certificates of an account",
            search::SEARCH_BY_ACCOUNT,
            vec![Int(1), Text("good"), Text("revoked"), Int(0), Int(100)],
        ),
        (
            "certificates of a key",
            search::SEARCH_BY_KEY,
            vec![
                Bytes(&[0x11; 32]),
                Int(0),
                Text("good"),
                Text("revoked"),
                Int(100),
            ],
        ),
    ]
}

/// The plan `engine` chooses for `query`, a line per step.
async fn plan(
    conn: &mut AnyConnection,
    prefix: &str,
    query: &str,
    params: &[Param],
) -> Vec<String> {
    let text = format!("{prefix} {query}");
    let mut explain = sqlx::query(AssertSqlSafe(text));
    for param in params {
        explain = match param {
            Param::Int(value) => explain.bind(*value),
            Param::Text(value) => explain.bind(*value),
            Param::Bytes(value) => explain.bind(*value),
        };
    }
    explain
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(row.len() - 1))
        .collect()
}

/// The RA repeats `finalize_order` when an SA restart lost the first answer: the
/// repeat with the same serial succeeds and changes nothing; another serial is refused.
async fn finalizing_again_with_the_same_serial_is_a_no_op(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, _db) = TestDatabase::fresh(engine, &clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;
    sa.set_order_processing(order.id, "attempt").await.unwrap();
    let serial: Serial = "0a0b0c0d".parse().unwrap();
    let other: Serial = "0a0b0c0e".parse().unwrap();
    crate::conformance::issue(&sa, acct.id, &serial, start()).await;
    crate::conformance::issue(&sa, acct.id, &other, start()).await;
    sa.finalize_order(order.id, &serial).await.unwrap();
    let valid = sa.order(order.id).await.unwrap();
    sa.finalize_order(order.id, &serial).await.unwrap();
    assert_eq!(sa.order(order.id).await.unwrap(), valid);
    assert_eq!(
        sa.finalize_order(order.id, &other).await.unwrap_err().kind,
        ErrorKind::OrderNotReady
    );
    assert_eq!(sa.order(order.id).await.unwrap(), valid);
    sa.close().await;
}

/// A precertificate stored before precertificates gave their serial a status (its
/// status row deleted here, as such a database holds it) gets one, good, from the
/// migration that introduced them, and can then be revoked; a serial that already
/// had a status keeps it.
async fn old_precertificates_get_a_status_from_their_migration(engine: Engine) {
    let clock = FixedClock::new(start());
    let (sa, _db) = TestDatabase::fresh(engine, &clock).await;
    let acct = account(&sa, "thumb").await;
    let expires = start() + time::Duration::days(90);
    let old: Serial = "01d0".parse().unwrap();
    let revoked: Serial = "02d0".parse().unwrap();
    for serial in [&old, &revoked] {
        sa.add_serial(serial, acct.id, start(), expires)
            .await
            .unwrap();
        sa.add_precertificate(serial, b"precert", acct.id, start(), &placement())
            .await
            .unwrap();
    }
    sa.revoke_certificate(&revoked, RevocationReason::Superseded, start())
        .await
        .unwrap();
    let version = migrate::history(engine)
        .iter()
        .find(|migration| migration.name == "precertificate_status")
        .unwrap()
        .version;
    for text in [
        format!("DELETE FROM schema_migrations WHERE version = {version}"),
        format!("DELETE FROM certificate_status WHERE serial = '{old}'"),
    ] {
        sqlx::query(AssertSqlSafe(text))
            .execute(sa.pool())
            .await
            .unwrap();
    }
    assert_eq!(
        sa.revocation_status(&old).await.unwrap_err().kind,
        ErrorKind::NotFound
    );

    assert_eq!(sa.migrate().await.unwrap(), vec![version]);
    let status = sa.revocation_status(&old).await.unwrap();
    assert_eq!(
        (status.status, status.precertificate, status.expires_at),
        (CertStatus::Good, true, expires)
    );
    assert_eq!(
        sa.revocation_status(&revoked).await.unwrap().status,
        CertStatus::Revoked
    );
    sa.revoke_certificate(&old, RevocationReason::KeyCompromise, start())
        .await
        .unwrap();
    sa.close().await;
}

/// A database as it was before placements were recorded, with a serial stored then
/// (the certificate never stored), migrated: the serial keeps no placement, so it is
/// reported without one and listed on no CRL shard, and it can still be revoked.
/// On MySQL, where DDL commits on its own, the migration runs again harmlessly.
async fn statuses_from_before_placements_have_none(engine: Engine) {
    let clock = Arc::new(FixedClock::new(start()));
    let db = TestDatabase::create(engine).await;
    let config = DatabaseConfig {
        migrate: false,
        ..DatabaseConfig::new(&db.url)
    };
    let old = SqlStorage::open(&config, clock.clone()).await.unwrap();
    let history = migrate::history(engine);
    let placements = history
        .iter()
        .position(|migration| migration.name == "crl_placement")
        .unwrap();
    assert!(
        migrate::applied(old.pool(), engine)
            .await
            .unwrap()
            .is_empty()
    );
    for migration in &history[..placements] {
        sqlx::raw_sql(AssertSqlSafe(migration.sql))
            .execute(old.pool())
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ({}, 0)",
            migration.version
        )))
        .execute(old.pool())
        .await
        .unwrap();
    }
    let serial: Serial = "01d0".parse().unwrap();
    let expires = unix(start() + time::Duration::days(90));
    sqlx::query(for_engine(
        engine,
        "INSERT INTO serials (serial, account_id, created_at, expires_at)
         VALUES ($1, 7, $2, $3)",
    ))
    .bind(serial.to_string())
    .bind(unix(start()))
    .bind(expires)
    .execute(old.pool())
    .await
    .unwrap();
    sqlx::query(for_engine(
        engine,
        "INSERT INTO precertificates (serial, account_id, der, issued_at)
         VALUES ($1, 7, $2, $3)",
    ))
    .bind(serial.to_string())
    .bind(b"precert".as_slice())
    .bind(unix(start()))
    .execute(old.pool())
    .await
    .unwrap();
    sqlx::query(for_engine(
        engine,
        "INSERT INTO certificate_status (serial, status, not_after, last_updated)
         VALUES ($1, 'good', $2, $3)",
    ))
    .bind(serial.to_string())
    .bind(expires)
    .bind(unix(start()))
    .execute(old.pool())
    .await
    .unwrap();
    old.close().await;

    let sa = SqlStorage::connect(&db.url, clock.clone()).await.unwrap();
    assert_eq!(versions(&sa).await.len(), history.len());
    let changes = sa.status_changes(start(), 10).await.unwrap();
    assert_eq!(
        changes,
        [StatusChange {
            serial: serial.clone(),
            status: CertStatus::Good,
            changed_at: start(),
            placement: None,
        }]
    );
    sa.revoke_certificate(&serial, RevocationReason::KeyCompromise, start())
        .await
        .unwrap();
    assert_eq!(
        sa.revocation_status(&serial).await.unwrap().status,
        CertStatus::Revoked
    );
    for shard in [0, 1] {
        assert_eq!(
            sa.revoked_certificates(&placement().issuer_key_hash, shard, start())
                .await
                .unwrap(),
            Vec::<RevokedEntry>::new()
        );
    }
    if engine == Engine::MySql {
        sqlx::raw_sql(AssertSqlSafe(history[placements].sql))
            .execute(sa.pool())
            .await
            .unwrap();
        assert_eq!(sa.status_changes(start(), 10).await.unwrap().len(), 1);
    }
    sa.close().await;
}

/// A database from before certificate search, with a precertificate stored then,
/// migrated: the precertificate was not indexed (the migration does not backfill),
/// so a search by account finds it, with its names, and a search by name or by key
/// does not; one stored after the migration is found every way. On MySQL, where DDL
/// commits on its own, the migration runs again harmlessly.
async fn precertificates_from_before_search_are_found_by_account_only(engine: Engine) {
    use basalt_core::CertificateQuery;
    use basalt_core::CertificateSearch;
    use basalt_core::CertificateSelector;
    use basalt_core::Identifier;

    use crate::conformance::certificate_der;
    use crate::conformance::key_hash;

    let clock = Arc::new(FixedClock::new(start()));
    let db = TestDatabase::create(engine).await;
    let config = DatabaseConfig {
        migrate: false,
        ..DatabaseConfig::new(&db.url)
    };
    let old = SqlStorage::open(&config, clock.clone()).await.unwrap();
    let history = migrate::history(engine);
    let search = history
        .iter()
        .position(|migration| migration.name == "certificate_search")
        .unwrap();
    // Creates schema_migrations, empty.
    assert!(
        migrate::applied(old.pool(), engine)
            .await
            .unwrap()
            .is_empty()
    );
    for migration in &history[..search] {
        sqlx::raw_sql(AssertSqlSafe(migration.sql))
            .execute(old.pool())
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ({}, 0)",
            migration.version
        )))
        .execute(old.pool())
        .await
        .unwrap();
    }
    let acct = account(&old, "thumb").await;
    let key = rcgen::KeyPair::generate().unwrap();
    let der = certificate_der(&["old.example"], &key);
    let before: Serial = "01d0".parse().unwrap();
    let expires = start() + time::Duration::days(90);
    // What add_precertificate wrote before it indexed anything.
    old.add_serial(&before, acct.id, start(), expires)
        .await
        .unwrap();
    sqlx::query(for_engine(
        engine,
        "INSERT INTO precertificates (serial, account_id, der, issued_at)
         VALUES ($1, $2, $3, $4)",
    ))
    .bind(before.to_string())
    .bind(acct.id.0)
    .bind(der.as_slice())
    .bind(unix(start()))
    .execute(old.pool())
    .await
    .unwrap();
    sqlx::query(for_engine(
        engine,
        "INSERT INTO certificate_status (serial, status, not_after, last_updated)
         VALUES ($1, 'good', $2, $3)",
    ))
    .bind(before.to_string())
    .bind(unix(expires))
    .bind(unix(start()))
    .execute(old.pool())
    .await
    .unwrap();
    old.close().await;

    let sa = SqlStorage::connect(&db.url, clock.clone()).await.unwrap();
    assert_eq!(versions(&sa).await.len(), history.len());
    let after: Serial = "02d0".parse().unwrap();
    sa.add_serial(&after, acct.id, start(), expires)
        .await
        .unwrap();
    sa.add_precertificate(&after, &der, acct.id, start(), &placement())
        .await
        .unwrap();
    let serials = |selector: CertificateSelector| {
        let sa = sa.clone();
        async move {
            let query = CertificateQuery {
                selector,
                active_only: false,
                limit: 0,
            };
            let found = sa.search_certificates(&query).await.unwrap();
            for summary in &found {
                assert_eq!(summary.names, [Identifier::dns("old.example")]);
            }
            found
                .iter()
                .map(|summary| summary.serial.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        serials(CertificateSelector::Account(acct.id)).await,
        ["02d0", "01d0"]
    );
    let name = CertificateSelector::Name {
        identifier: Identifier::dns("old.example"),
        subdomains: false,
    };
    assert_eq!(serials(name).await, ["02d0"]);
    assert_eq!(
        serials(CertificateSelector::Key(key_hash(&key))).await,
        ["02d0"]
    );
    if engine == Engine::MySql {
        sqlx::raw_sql(AssertSqlSafe(history[search].sql))
            .execute(sa.pool())
            .await
            .unwrap();
        assert_eq!(
            serials(CertificateSelector::Account(acct.id)).await.len(),
            2
        );
    }
    sa.close().await;
}

/// Instantiates the tests every engine runs.
macro_rules! engine_tests {
    ($engine:expr) => {
        conformance_tests!($engine);

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn migrations_run_once_even_from_two_processes() {
            super::migrations_run_once_even_from_two_processes($engine).await;
        }

        #[tokio::test]
        async fn without_auto_migration_an_old_schema_is_refused() {
            super::without_auto_migration_an_old_schema_is_refused($engine).await;
        }

        #[tokio::test]
        async fn finalizing_again_with_the_same_serial_is_a_no_op() {
            super::finalizing_again_with_the_same_serial_is_a_no_op($engine).await;
        }

        #[tokio::test]
        async fn stuck_orders_are_settled() {
            super::stuck_orders_are_settled($engine).await;
        }

        #[tokio::test]
        async fn expired_data_is_purged_in_batches() {
            super::expired_data_is_purged_in_batches($engine).await;
        }

        #[tokio::test]
        async fn old_precertificates_get_a_status_from_their_migration() {
            super::old_precertificates_get_a_status_from_their_migration($engine).await;
        }

        #[tokio::test]
        async fn statuses_from_before_placements_have_none() {
            super::statuses_from_before_placements_have_none($engine).await;
        }

        #[tokio::test]
        async fn precertificates_from_before_search_are_found_by_account_only() {
            super::precertificates_from_before_search_are_found_by_account_only($engine).await;
        }
    };
}

mod sqlite {
    use basalt_core::AccountId;
    use basalt_core::AuthzStatus;
    use basalt_core::Identifier;
    use basalt_core::PageRequest;

    use super::*;
    use crate::conformance::assert_kind;
    use crate::conformance::issue;
    use crate::conformance::record;

    engine_tests!(Engine::Sqlite);

    /// SQLite's plan says `SCAN <table>` for a whole-table read and `SEARCH … USING
    /// INDEX` for a lookup; no hot query may scan. The account's orders listing may
    /// grow without bound, so it must also come out of its index already sorted; the
    /// other sorts are over one order's or one certificate's few rows.
    #[tokio::test]
    async fn hot_queries_use_an_index() {
        let clock = FixedClock::new(start());
        let (sa, _db) = TestDatabase::fresh(Engine::Sqlite, &clock).await;
        let mut conn = sa.pool().acquire().await.unwrap();
        for (name, query, params) in hot_queries() {
            let steps = plan(&mut conn, "EXPLAIN QUERY PLAN", query, &params).await;
            assert!(
                steps.iter().all(|step| !step.starts_with("SCAN")),
                "{name} scans a whole table: {steps:#?}"
            );
            // The status-change feed grows without bound too.
            if name.starts_with("an account's orders") || name.starts_with("status changes") {
                assert!(
                    steps.iter().all(|step| !step.contains("TEMP B-TREE")),
                    "{name} sorts outside an index: {steps:#?}"
                );
            }
        }
        drop(conn);
        sa.close().await;
    }

    #[tokio::test]
    async fn data_survives_a_restart() {
        let clock = FixedClock::new(start());
        let db = TestDatabase::create(Engine::Sqlite).await;
        let sa = SqlStorage::connect(&db.url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let acct = account(&sa, "thumb").await;
        let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
        validate_all(&sa, &order, start()).await;
        sa.set_order_processing(order.id, "attempt").await.unwrap();
        let serial: Serial = "0102030405060708".parse().unwrap();
        issue(&sa, acct.id, &serial, start()).await;
        sa.finalize_order(order.id, &serial).await.unwrap();
        let before = sa.order(order.id).await.unwrap();
        sa.close().await;
        drop(sa);

        let sa = SqlStorage::connect(&db.url, Arc::new(clock.clone()))
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
        assert_eq!(sa.migrate().await.unwrap(), Vec::<i64>::new());
        let all: Vec<i64> = migrate::history(Engine::Sqlite)
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(versions(&sa).await, all);
        let journal: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(sa.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(journal, "wal");
        sa.close().await;
    }

    #[tokio::test]
    async fn bad_settings_name_their_field() {
        let clock = Arc::new(FixedClock::new(start()));
        let err = SqlStorage::connect("oracle://localhost/test", clock.clone())
            .await
            .unwrap_err();
        assert!(err.detail.contains("database.url"), "{err}");
        for (config, field) in [
            (
                DatabaseConfig {
                    max_connections: 0,
                    ..DatabaseConfig::new("sqlite::memory:")
                },
                "database.max_connections",
            ),
            (
                DatabaseConfig {
                    min_connections: 11,
                    ..DatabaseConfig::new("sqlite::memory:")
                },
                "database.min_connections",
            ),
            (
                DatabaseConfig {
                    password_file: Some("/nonexistent".into()),
                    ..DatabaseConfig::new("sqlite::memory:")
                },
                "database.password_file",
            ),
            (
                DatabaseConfig::new("postgres://u:secret@127.0.0.1:1/test"),
                "database.url",
            ),
            (
                DatabaseConfig {
                    password_file: Some("/nonexistent/basalt-password".into()),
                    ..DatabaseConfig::new("postgres://u@127.0.0.1:1/test")
                },
                "database.password_file",
            ),
        ] {
            let err = SqlStorage::from_config(&config, clock.clone())
                .await
                .unwrap_err();
            assert!(err.detail.starts_with(field), "{field}: {err}");
        }
    }

    #[tokio::test]
    async fn a_version_1_database_is_upgraded() {
        let db = TestDatabase::create(Engine::Sqlite).await;
        // A database as the first release left it: only 0001 applied, with an account
        // and an order in the old columns.
        {
            sqlx::any::install_default_drivers();
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&format!("{}?mode=rwc", db.url))
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
            sqlx::raw_sql(include_str!("../../migrations/sqlite/0001_initial.sql"))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::raw_sql(
                "INSERT INTO accounts (id, key_jwk, key_thumbprint, contacts, status,
                                       created_at)
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
        let sa = SqlStorage::connect(&db.url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let indexes: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(sa.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("name"))
        .collect();
        assert_eq!(
            indexes,
            [
                "orders_account_created_id",
                "orders_expires",
                "orders_processing",
                "orders_replaces"
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
    async fn an_in_memory_database_keeps_its_data_across_calls() {
        let clock = FixedClock::new(start());
        let sa = SqlStorage::connect("sqlite::memory:", Arc::new(clock.clone()))
            .await
            .unwrap();
        let acct = account(&sa, "thumb").await;
        assert_eq!(sa.account_by_key("thumb").await.unwrap(), acct);
        sa.close().await;
    }
}

mod postgres {
    use super::*;

    engine_tests!(Engine::Postgres);

    /// With sequential scans priced out, a query still planned as one has no index to
    /// use. (On tables this small the planner would scan whatever indexes exist.)
    #[tokio::test]
    async fn hot_queries_use_an_index() {
        let clock = FixedClock::new(start());
        let (sa, _db) = TestDatabase::fresh(Engine::Postgres, &clock).await;
        let mut conn = sa.pool().acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        for (name, query, params) in hot_queries() {
            let steps = plan(&mut conn, "EXPLAIN", query, &params).await;
            assert!(
                steps.iter().all(|step| !step.contains("Seq Scan")),
                "{name} scans a whole table: {steps:#?}"
            );
            assert!(
                steps.iter().any(|step| step.contains("Index")),
                "{name} uses no index: {steps:#?}"
            );
        }
        drop(conn);
        sa.close().await;
    }

    #[tokio::test]
    async fn missing_databases_are_created() {
        super::missing_databases_are_created(Engine::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lost_connections_are_replaced() {
        super::lost_connections_are_replaced(Engine::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_connection_ended_mid_transaction_is_unavailable() {
        super::a_connection_ended_mid_transaction_is_unavailable(Engine::Postgres).await;
    }

    /// Runs `set_order_processing` while another transaction has written the order's row
    /// and not committed, so the SA's transaction waits on it and, once the other one
    /// commits, fails to serialize on its first attempt.
    /// Returns what `run` returned.
    async fn against_a_concurrent_update<T, F, Fut>(sa: &SqlStorage, order: OrderId, run: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let mut other = sa.begin_write().await.unwrap();
        sqlx::query(sql(
            &other,
            "UPDATE orders SET profile = profile WHERE id = $1",
        ))
        .bind(order.0)
        .execute(&mut *other)
        .await
        .unwrap();
        let task = tokio::spawn(run());
        // Long enough for the SA's transaction to reach the row and wait on it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        other.commit().await.unwrap();
        task.await.unwrap()
    }

    /// One attempt alone fails and says a retry may cure it; the storage method retries
    /// and succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn serialization_failures_are_retried() {
        let clock = FixedClock::new(start());
        let (sa, _db) = TestDatabase::fresh(Engine::Postgres, &clock).await;
        let acct = account(&sa, "thumb").await;
        let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
        validate_all(&sa, &order, start()).await;

        let once = sa.clone();
        let err = against_a_concurrent_update(&sa, order.id, move || async move {
            once.attempt_set_order_processing(order.id, "attempt").await
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
        assert!(is_retryable(&err), "{err}");
        assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);

        let retried = sa.clone();
        against_a_concurrent_update(&sa, order.id, move || async move {
            retried.set_order_processing(order.id, "attempt").await
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
        let (sa, _db) = TestDatabase::fresh(Engine::Postgres, &clock).await;

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
}

mod mysql {
    use super::*;

    engine_tests!(Engine::MySql);

    #[tokio::test]
    async fn missing_databases_are_created() {
        super::missing_databases_are_created(Engine::MySql).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lost_connections_are_replaced() {
        super::lost_connections_are_replaced(Engine::MySql).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_connection_ended_mid_transaction_is_unavailable() {
        super::a_connection_ended_mid_transaction_is_unavailable(Engine::MySql).await;
    }

    /// Another transaction and the SA's both read the order (InnoDB's SERIALIZABLE
    /// makes each read a shared lock) and then both write it: InnoDB breaks the
    /// deadlock by rolling one back. Whichever it picks, the SA's call succeeds: as
    /// the victim it runs again once the other commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_deadlock_does_not_reach_the_caller() {
        let clock = FixedClock::new(start());
        let (sa, _db) = TestDatabase::fresh(Engine::MySql, &clock).await;
        let acct = account(&sa, "thumb").await;
        let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
        validate_all(&sa, &order, start()).await;

        let mut other = sa.begin_write().await.unwrap();
        sqlx::query("SELECT began_processing FROM orders WHERE id = ?")
            .bind(order.id.0)
            .fetch_one(&mut *other)
            .await
            .unwrap();
        let task = tokio::spawn({
            let sa = sa.clone();
            async move { sa.set_order_processing(order.id, "attempt").await }
        });
        // The SA's transaction reads the row too and waits to write it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = sqlx::query("UPDATE orders SET profile = profile WHERE id = ?")
            .bind(order.id.0)
            .execute(&mut *other)
            .await;
        match written {
            Ok(_) => other.commit().await.unwrap(),
            Err(err) => {
                let err = db_error("testing")(err);
                assert!(is_retryable(&err), "{err}");
                other.rollback().await.unwrap();
            }
        }
        task.await.unwrap().unwrap();
        assert_eq!(
            sa.order(order.id).await.unwrap().status,
            OrderStatus::Processing
        );
        sa.close().await;
    }

    #[tokio::test]
    async fn key_thumbprints_compare_case_sensitively() {
        let clock = FixedClock::new(start());
        let (sa, _db) = TestDatabase::fresh(Engine::MySql, &clock).await;
        let upper = account(&sa, "ThumbPrint").await;
        let lower = account(&sa, "thumbprint").await;
        assert_ne!(upper.id, lower.id);
        assert_eq!(sa.account_by_key("ThumbPrint").await.unwrap(), upper);
        assert_eq!(sa.account_by_key("thumbprint").await.unwrap(), lower);
        sa.close().await;
    }
}
