use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::CertStatus;
use basalt_core::CertificateRecord;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::NewAccount;
use basalt_core::NewAuthz;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderStatus;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_core::ValidationRecord;
use sqlx::AssertSqlSafe;
use time::Duration;
use time::OffsetDateTime;

use super::*;

/// 2030-01-01T00:00:00Z.
fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
}

async fn memory(clock: &FixedClock) -> SqlStorage {
    SqlStorage::connect("sqlite::memory:", Arc::new(clock.clone()))
        .await
        .unwrap()
}

/// A database file in the temp dir, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

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

async fn account(sa: &SqlStorage, thumbprint: &str) -> Account {
    sa.new_account(NewAccount {
        key_jwk: format!(r#"{{"kty":"EC","x":"{thumbprint}"}}"#),
        key_thumbprint: thumbprint.to_owned(),
        contacts: vec!["mailto:admin@example.com".to_owned()],
    })
    .await
    .unwrap()
}

/// An order for `b.example` (http-01, dns-01) and `*.a.example` (dns-01).
fn new_order(account_id: AccountId, now: OffsetDateTime) -> NewOrder {
    NewOrder {
        account_id,
        identifiers: vec![Identifier::dns("b.example"), Identifier::dns("*.a.example")],
        expires: now + Duration::days(7),
        authzs: vec![
            NewAuthz {
                identifier: Identifier::dns("b.example"),
                wildcard: false,
                expires: now + Duration::days(7),
                challenges: vec![
                    Challenge::pending(ChallengeType::Http01, "token-b-http".into()),
                    Challenge::pending(ChallengeType::Dns01, "token-b-dns".into()),
                ],
            },
            NewAuthz {
                identifier: Identifier::dns("a.example"),
                wildcard: true,
                expires: now + Duration::days(7),
                challenges: vec![Challenge::pending(ChallengeType::Dns01, "token-a".into())],
            },
        ],
    }
}

fn outcome(status: AuthzStatus, now: OffsetDateTime) -> AuthzOutcome {
    AuthzOutcome {
        status,
        validated_at: now,
        expires: now + Duration::days(30),
        records: vec![ValidationRecord {
            url: None,
            hostname: "b.example".into(),
            port: Some(53),
            addresses_resolved: vec!["192.0.2.1".parse::<IpAddr>().unwrap()],
            address_used: None,
        }],
        error: None,
    }
}

/// Validates every authorization of `order` with its first challenge.
async fn validate_all(sa: &SqlStorage, order: &Order, now: OffsetDateTime) {
    for id in &order.authz_ids {
        let kind = sa.authz(*id).await.unwrap().challenges[0].kind;
        sa.set_challenge_processing(*id, kind).await.unwrap();
        sa.finalize_authz(*id, kind, outcome(AuthzStatus::Valid, now))
            .await
            .unwrap();
    }
}

/// Reserves a serial, stores its precertificate and its certificate.
async fn issue(sa: &SqlStorage, account_id: AccountId, serial: &Serial, now: OffsetDateTime) {
    let expires = now + Duration::days(90);
    sa.add_serial(serial, account_id, now, expires)
        .await
        .unwrap();
    sa.add_precertificate(serial, b"precert", account_id, now)
        .await
        .unwrap();
    sa.add_certificate(&record(serial, account_id, now))
        .await
        .unwrap();
}

fn record(serial: &Serial, account_id: AccountId, now: OffsetDateTime) -> CertificateRecord {
    CertificateRecord {
        serial: serial.clone(),
        account_id,
        der: vec![0x30, 0x82, 0x01, 0x00, 0xff],
        chain: vec![b"intermediate".to_vec(), b"cross".to_vec()],
        issued_at: now,
        expires_at: now + Duration::days(90),
        status: CertStatus::Good,
        revoked_at: None,
        revocation_reason: None,
    }
}

fn assert_kind<T: fmt::Debug>(result: Result<T, Error>, kind: ErrorKind) -> Error {
    let err = result.unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    err
}

#[tokio::test]
async fn account_keys_are_unique() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let first = account(&sa, "thumb-1").await;
    assert!(first.id.0 > 0);
    assert_eq!(first.status, AccountStatus::Valid);
    assert_eq!(first.created_at, start());

    assert_eq!(sa.account(first.id).await.unwrap(), first);
    assert_eq!(sa.account_by_key("thumb-1").await.unwrap(), first);

    let err = sa
        .new_account(NewAccount {
            key_jwk: "{}".into(),
            key_thumbprint: "thumb-1".into(),
            contacts: Vec::new(),
        })
        .await;
    assert_kind(err, ErrorKind::Conflict);

    let second = account(&sa, "thumb-2").await;
    assert_ne!(second.id, first.id);
    assert_kind(sa.account_by_key("thumb-3").await, ErrorKind::NotFound);
    let err = assert_kind(sa.account(AccountId(42)).await, ErrorKind::NotFound);
    assert_eq!(err.detail, "account 42 not found");
}

#[tokio::test]
async fn order_round_trips_with_its_authzs() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;

    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    assert_eq!(order.account_id, acct.id);
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(
        order.identifiers,
        vec![Identifier::dns("*.a.example"), Identifier::dns("b.example")]
    );
    assert_eq!(order.expires, start() + Duration::days(7));
    assert_eq!(order.created_at, start());
    assert_eq!(order.authz_ids.len(), 2);
    assert_eq!(order.error, None);
    assert_eq!(order.certificate_serial, None);
    assert_eq!(sa.order(order.id).await.unwrap(), order);

    let b = sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(b.account_id, acct.id);
    assert_eq!(b.identifier, Identifier::dns("b.example"));
    assert_eq!(b.status, AuthzStatus::Pending);
    assert!(!b.wildcard);
    assert_eq!(
        b.challenges,
        vec![
            Challenge::pending(ChallengeType::Http01, "token-b-http".into()),
            Challenge::pending(ChallengeType::Dns01, "token-b-dns".into()),
        ]
    );
    let a = sa.authz(order.authz_ids[1]).await.unwrap();
    assert_eq!(a.identifier, Identifier::dns("a.example"));
    assert!(a.wildcard);
    assert_eq!(a.challenges.len(), 1);

    let err = assert_kind(sa.order(OrderId(7)).await, ErrorKind::NotFound);
    assert_eq!(err.detail, "order 7 not found");
    assert_kind(sa.authz(AuthzId(7)).await, ErrorKind::NotFound);
    assert_kind(
        sa.new_order(new_order(AccountId(99), start())).await,
        ErrorKind::NotFound,
    );

    let mut twice = new_order(acct.id, start());
    twice.authzs[0].challenges[1].kind = ChallengeType::Http01;
    assert_kind(sa.new_order(twice).await, ErrorKind::Malformed);
}

#[tokio::test]
async fn new_order_is_one_transaction() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    // An authorization that offers a challenge type twice is refused up front.
    let mut bad = new_order(acct.id, start());
    bad.authzs[1]
        .challenges
        .push(Challenge::pending(ChallengeType::Dns01, "again".into()));
    assert_kind(sa.new_order(bad).await, ErrorKind::Malformed);

    // A failure inside the transaction (here on the second authorization's challenge)
    // rolls back everything written before it.
    sqlx::query(
        "CREATE TRIGGER fail_second BEFORE INSERT ON challenges
                 WHEN NEW.token = 'token-a'
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&sa.pool)
    .await
    .unwrap();
    assert_kind(
        sa.new_order(new_order(acct.id, start())).await,
        ErrorKind::Internal,
    );
    for table in ["orders", "authzs", "order_authzs", "challenges"] {
        let count: i64 = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&sa.pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(count, 0, "{table} kept rows of a failed order");
    }
}

#[tokio::test]
async fn order_status_moves_from_pending_to_valid() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let (b, a) = (order.authz_ids[0], order.authz_ids[1]);

    let err = assert_kind(
        sa.set_order_processing(order.id).await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("pending"), "{err}");
    assert_kind(
        sa.set_challenge_processing(a, ChallengeType::Http01).await,
        ErrorKind::NotFound,
    );

    sa.set_challenge_processing(b, ChallengeType::Http01)
        .await
        .unwrap();
    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Processing);
    assert_eq!(authz.status, AuthzStatus::Pending);
    assert_kind(
        sa.set_challenge_processing(b, ChallengeType::Http01).await,
        ErrorKind::Malformed,
    );

    clock.advance(Duration::seconds(5));
    let now = start() + Duration::seconds(5);
    sa.finalize_authz(b, ChallengeType::Http01, outcome(AuthzStatus::Valid, now))
        .await
        .unwrap();
    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Valid);
    assert_eq!(authz.expires, now + Duration::days(30));
    let challenge = authz.challenge(ChallengeType::Http01).unwrap();
    assert_eq!(challenge.status, ChallengeStatus::Valid);
    assert_eq!(challenge.validated, Some(now));
    assert_eq!(
        challenge.validation_records,
        outcome(AuthzStatus::Valid, now).records
    );
    assert_eq!(
        authz.challenge(ChallengeType::Dns01).unwrap().status,
        ChallengeStatus::Pending
    );
    // Only a pending authorization can be finalized or attempted.
    assert_kind(
        sa.finalize_authz(b, ChallengeType::Dns01, outcome(AuthzStatus::Invalid, now))
            .await,
        ErrorKind::Malformed,
    );
    assert_kind(
        sa.set_challenge_processing(b, ChallengeType::Dns01).await,
        ErrorKind::Malformed,
    );
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Pending
    );

    // Finalizing straight from pending (no processing step) is allowed.
    sa.finalize_authz(a, ChallengeType::Dns01, outcome(AuthzStatus::Valid, now))
        .await
        .unwrap();
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);

    let serial: Serial = "7f0102".parse().unwrap();
    assert_kind(
        sa.finalize_order(order.id, &serial).await,
        ErrorKind::Internal,
    );
    sa.set_order_processing(order.id).await.unwrap();
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Processing
    );
    let err = assert_kind(
        sa.set_order_processing(order.id).await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("processing"), "{err}");

    issue(&sa, acct.id, &serial, now).await;
    sa.finalize_order(order.id, &serial).await.unwrap();
    let done = sa.order(order.id).await.unwrap();
    assert_eq!(done.status, OrderStatus::Valid);
    assert_eq!(done.certificate_serial, Some(serial.clone()));
    assert_kind(
        sa.finalize_order(order.id, &serial).await,
        ErrorKind::OrderNotReady,
    );
    assert_kind(
        sa.set_order_error(order.id, &Error::internal("late")).await,
        ErrorKind::Malformed,
    );

    // Valid stays valid once the order and its authorizations expire.
    clock.advance(Duration::days(60));
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Valid);
}

#[tokio::test]
async fn finalize_order_needs_processing() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;
    let serial: Serial = "0a0b".parse().unwrap();
    issue(&sa, acct.id, &serial, start()).await;
    let err = assert_kind(
        sa.finalize_order(order.id, &serial).await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("ready"), "{err}");
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);
}

#[tokio::test]
async fn a_failed_challenge_invalidates_the_order() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let b = order.authz_ids[0];
    let problem = Error::new(ErrorKind::IncorrectResponse, "wrong key authorization");
    let mut failed = outcome(AuthzStatus::Invalid, start());
    failed.error = Some(problem.clone());
    sa.finalize_authz(b, ChallengeType::Dns01, failed)
        .await
        .unwrap();

    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Invalid);
    let challenge = authz.challenge(ChallengeType::Dns01).unwrap();
    assert_eq!(challenge.status, ChallengeStatus::Invalid);
    assert_eq!(challenge.error, Some(problem));
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    assert_kind(
        sa.finalize_authz(
            b,
            ChallengeType::Dns01,
            outcome(AuthzStatus::Pending, start()),
        )
        .await,
        ErrorKind::Malformed,
    );
}

#[tokio::test]
async fn order_error_makes_it_invalid() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;
    sa.set_order_processing(order.id).await.unwrap();

    let problem = Error::new(ErrorKind::BadCsr, "csr names c.example");
    sa.set_order_error(order.id, &problem).await.unwrap();
    let failed = sa.order(order.id).await.unwrap();
    assert_eq!(failed.status, OrderStatus::Invalid);
    assert_eq!(failed.error, Some(problem.clone()));
    assert_kind(
        sa.set_order_processing(order.id).await,
        ErrorKind::OrderNotReady,
    );
    assert_kind(
        sa.set_order_error(OrderId(5), &problem).await,
        ErrorKind::NotFound,
    );
}

#[tokio::test]
async fn authzs_and_orders_expire_with_the_clock() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let mut request = new_order(acct.id, start());
    request.authzs[0].expires = start() + Duration::days(1);
    let order = sa.new_order(request).await.unwrap();
    let (b, a) = (order.authz_ids[0], order.authz_ids[1]);

    clock.advance(Duration::hours(23));
    assert_eq!(sa.authz(b).await.unwrap().status, AuthzStatus::Pending);
    clock.advance(Duration::hours(1));
    assert_eq!(sa.authz(b).await.unwrap().status, AuthzStatus::Expired);
    assert_eq!(sa.authz(a).await.unwrap().status, AuthzStatus::Pending);
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    let err = assert_kind(
        sa.set_challenge_processing(b, ChallengeType::Http01).await,
        ErrorKind::Malformed,
    );
    assert!(err.detail.contains("expired"), "{err}");

    // A valid authorization expires too, and then the ready order is invalid.
    let order = sa.new_order(new_order(acct.id, clock.now())).await.unwrap();
    validate_all(&sa, &order, clock.now()).await;
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);
    clock.advance(Duration::days(7));
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    clock.advance(Duration::days(23));
    assert_eq!(
        sa.authz(order.authz_ids[0]).await.unwrap().status,
        AuthzStatus::Expired
    );
    assert_kind(
        sa.set_order_processing(order.id).await,
        ErrorKind::OrderNotReady,
    );
}

#[tokio::test]
async fn serials_are_never_reused() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let serial: Serial = "01ab".parse().unwrap();
    let expires = start() + Duration::days(90);
    sa.add_serial(&serial, acct.id, start(), expires)
        .await
        .unwrap();
    let err = assert_kind(
        sa.add_serial(&serial, acct.id, start(), expires).await,
        ErrorKind::Conflict,
    );
    assert!(err.detail.contains("serial 01ab already used"), "{err}");
    // The same number written with a leading zero is the same serial.
    let padded: Serial = "0001ab".parse().unwrap();
    assert_kind(
        sa.add_serial(&padded, AccountId(3), start(), expires).await,
        ErrorKind::Conflict,
    );
}

#[tokio::test]
async fn nothing_is_stored_without_its_precertificate() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let serial: Serial = "5e71a1".parse().unwrap();

    assert_kind(
        sa.add_precertificate(&serial, b"precert", acct.id, start())
            .await,
        ErrorKind::Internal,
    );
    sa.add_serial(&serial, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    assert_kind(
        sa.add_certificate(&record(&serial, acct.id, start())).await,
        ErrorKind::Internal,
    );
    assert_kind(sa.certificate(&serial).await, ErrorKind::NotFound);

    assert_kind(
        sa.add_precertificate(&serial, b"precert", AccountId(1), start())
            .await,
        ErrorKind::Internal,
    );
    sa.add_precertificate(&serial, b"precert", acct.id, start())
        .await
        .unwrap();
    assert_kind(
        sa.add_precertificate(&serial, b"precert", acct.id, start())
            .await,
        ErrorKind::Conflict,
    );
    let mut revoked_record = record(&serial, acct.id, start());
    revoked_record.status = CertStatus::Revoked;
    sa.add_certificate(&revoked_record).await.unwrap();
    assert_kind(
        sa.add_certificate(&record(&serial, acct.id, start())).await,
        ErrorKind::Conflict,
    );

    let stored = sa.certificate(&serial).await.unwrap();
    assert_eq!(stored, record(&serial, acct.id, start()));
}

#[tokio::test]
async fn revocation_happens_once() {
    let clock = FixedClock::new(start());
    let sa = memory(&clock).await;
    let acct = account(&sa, "thumb").await;
    let serial: Serial = "7e".parse().unwrap();
    issue(&sa, acct.id, &serial, start()).await;

    let unknown: Serial = "01".parse().unwrap();
    let err = assert_kind(
        sa.revoke_certificate(&unknown, RevocationReason::KeyCompromise, start())
            .await,
        ErrorKind::NotFound,
    );
    assert_eq!(err.detail, "certificate 01 not found");

    let at = start() + Duration::hours(2);
    sa.revoke_certificate(&serial, RevocationReason::KeyCompromise, at)
        .await
        .unwrap();
    let revoked = sa.certificate(&serial).await.unwrap();
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );

    assert_kind(
        sa.revoke_certificate(
            &serial,
            RevocationReason::Superseded,
            at + Duration::hours(1),
        )
        .await,
        ErrorKind::AlreadyRevoked,
    );
    let unchanged = sa.certificate(&serial).await.unwrap();
    assert_eq!(
        unchanged.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(unchanged.revoked_at, Some(at));
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
    assert_eq!(versions, vec![1]);
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&sa.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(journal, "wal");
    sa.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_finalize_wins() {
    let db = TempDb::new();
    let clock = FixedClock::new(start());
    let sa = SqlStorage::connect(&db.url(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let acct = account(&sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(&sa, &order, start()).await;

    let attempts = (0..8).map(|_| {
        let sa = sa.clone();
        tokio::spawn(async move { sa.set_order_processing(order.id).await })
    });
    let mut won = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(()) => won += 1,
            Err(err) => assert_eq!(err.kind, ErrorKind::OrderNotReady, "{err}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Processing
    );
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
