//! The conformance suite: what every storage engine must do, written once.
//!
//! Each test is an `async fn` over a [`SqlStorage`] on a fresh database; each engine's
//! test module instantiates every one of them with [`conformance_tests!`].

use std::fmt;
use std::net::IpAddr;

use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::AccountUpdate;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::CertStatus;
use basalt_core::CertificateLookup;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::EabKey;
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
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::RevocationReason;
use basalt_core::Serial;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_core::ValidationRecord;
use time::Duration;

use crate::SqlStorage;
use time::OffsetDateTime;

/// Instantiates every conformance test for an engine:
/// `conformance_tests!(crate::Engine::Postgres);`.
macro_rules! conformance_tests {
    ($engine:expr) => {
        $crate::conformance::conformance_tests!(@each $engine;
            account_keys_are_unique,
            order_round_trips_with_its_authzs,
            new_order_is_one_transaction,
            order_status_moves_from_pending_to_valid,
            finalize_order_needs_processing,
            a_failed_challenge_invalidates_the_order,
            order_error_makes_it_invalid,
            authzs_and_orders_expire_with_the_clock,
            serials_are_never_reused,
            nothing_is_stored_without_its_precertificate,
            revocation_happens_once,
            only_one_finalize_wins,
            orders_are_listed_newest_first_in_pages,
            page_size_defaults_to_50_and_stops_at_100,
            garbled_cursors_are_malformed,
            account_contacts_and_key_change,
            a_key_in_use_is_a_conflict_and_changes_nothing,
            accounts_only_move_from_valid_to_deactivated,
            deactivating_an_authz_invalidates_its_order,
            only_pending_or_valid_authzs_are_deactivated,
            orders_keep_profile_window_and_replaces,
            replacing_an_unknown_certificate_is_malformed,
            a_certificate_is_replaced_by_one_live_order,
            a_valid_replacement_keeps_the_certificate_replaced,
            concurrent_replacements_let_one_through,
            eab_keys_are_stored_listed_and_revoked,
            an_eab_key_binds_one_account,
            unusable_eab_keys_create_no_account,
            concurrent_registrations_bind_a_key_once,
        );
    };
    (@each $engine:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let clock = basalt_core::FixedClock::new($crate::conformance::start());
                let (sa, guard) = $crate::testdb::TestDatabase::fresh($engine, &clock).await;
                $crate::conformance::$name(&sa, &clock).await;
                sa.close().await;
                drop(guard);
            }
        )*
    };
}

pub(crate) use conformance_tests;

/// 2030-01-01T00:00:00Z.
pub(crate) fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
}

pub(crate) async fn account<S: Storage>(sa: &S, thumbprint: &str) -> Account {
    sa.new_account(NewAccount {
        key_jwk: format!(r#"{{"kty":"EC","x":"{thumbprint}"}}"#),
        key_thumbprint: thumbprint.to_owned(),
        contacts: vec!["mailto:admin@example.com".to_owned()],
        eab_key_id: None,
    })
    .await
    .unwrap()
}

/// An order for `b.example` (http-01, dns-01) and `*.a.example` (dns-01).
pub(crate) fn new_order(account_id: AccountId, now: OffsetDateTime) -> NewOrder {
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
        profile: "classic".into(),
        not_before: None,
        not_after: None,
        replaces: None,
    }
}

pub(crate) fn outcome(status: AuthzStatus, now: OffsetDateTime) -> AuthzOutcome {
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
pub(crate) async fn validate_all<S: Storage>(sa: &S, order: &Order, now: OffsetDateTime) {
    for id in &order.authz_ids {
        let kind = sa.authz(*id).await.unwrap().challenges[0].kind;
        sa.set_challenge_processing(*id, kind).await.unwrap();
        sa.finalize_authz(*id, kind, outcome(AuthzStatus::Valid, now))
            .await
            .unwrap();
    }
}

/// Reserves a serial, stores its precertificate and its certificate.
pub(crate) async fn issue<S: Storage>(
    sa: &S,
    account_id: AccountId,
    serial: &Serial,
    now: OffsetDateTime,
) {
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

pub(crate) fn record(
    serial: &Serial,
    account_id: AccountId,
    now: OffsetDateTime,
) -> CertificateRecord {
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

pub(crate) fn assert_kind<T: fmt::Debug>(result: Result<T, Error>, kind: ErrorKind) -> Error {
    let err = result.unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    err
}

pub(crate) async fn account_keys_are_unique(sa: &SqlStorage, _clock: &FixedClock) {
    let first = account(sa, "thumb-1").await;
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
            eab_key_id: None,
        })
        .await;
    assert_kind(err, ErrorKind::Conflict);

    let second = account(sa, "thumb-2").await;
    assert_ne!(second.id, first.id);
    assert_kind(sa.account_by_key("thumb-3").await, ErrorKind::NotFound);
    let err = assert_kind(sa.account(AccountId(42)).await, ErrorKind::NotFound);
    assert_eq!(err.detail, "account 42 not found");
}

pub(crate) async fn order_round_trips_with_its_authzs(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;

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

pub(crate) async fn new_order_is_one_transaction(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    // An authorization that offers a challenge type twice is refused up front.
    let mut bad = new_order(acct.id, start());
    bad.authzs[1]
        .challenges
        .push(Challenge::pending(ChallengeType::Dns01, "again".into()));
    assert_kind(sa.new_order(bad).await, ErrorKind::Malformed);

    // A failure inside the transaction (here on the second authorization's challenge)
    // rolls back everything written before it.
    sa.add_failing_trigger(
        "fail_second",
        "INSERT",
        "challenges",
        Some("NEW.token = 'token-a'"),
    )
    .await;
    assert_kind(
        sa.new_order(new_order(acct.id, start())).await,
        ErrorKind::Internal,
    );
    for table in ["orders", "authzs", "order_authzs", "challenges"] {
        let count = sa.count_rows(table).await;
        assert_eq!(count, 0, "{table} kept rows of a failed order");
    }
}

pub(crate) async fn order_status_moves_from_pending_to_valid(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
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

    issue(sa, acct.id, &serial, now).await;
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

pub(crate) async fn finalize_order_needs_processing(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &order, start()).await;
    let serial: Serial = "0a0b".parse().unwrap();
    issue(sa, acct.id, &serial, start()).await;
    let err = assert_kind(
        sa.finalize_order(order.id, &serial).await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("ready"), "{err}");
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);
}

pub(crate) async fn a_failed_challenge_invalidates_the_order(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
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

pub(crate) async fn order_error_makes_it_invalid(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &order, start()).await;
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

pub(crate) async fn authzs_and_orders_expire_with_the_clock(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
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
    validate_all(sa, &order, clock.now()).await;
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

pub(crate) async fn serials_are_never_reused(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
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

pub(crate) async fn nothing_is_stored_without_its_precertificate(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
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

pub(crate) async fn revocation_happens_once(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "7e".parse().unwrap();
    issue(sa, acct.id, &serial, start()).await;

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

pub(crate) async fn only_one_finalize_wins(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &order, start()).await;

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
}

/// Every page of `account_id`'s orders with this page size, and each page's `next`.
pub(crate) async fn all_pages<S: Storage>(
    sa: &S,
    account_id: AccountId,
    size: u32,
) -> Vec<OrdersPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = sa
            .orders_for_account(account_id, PageRequest { cursor, size })
            .await
            .unwrap();
        cursor = page.next.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

pub(crate) async fn orders_are_listed_newest_first_in_pages(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb-a").await;
    let other = account(sa, "thumb-b").await;
    let empty = account(sa, "thumb-c").await;

    // Five orders over three seconds, two pairs sharing a second, so the id breaks ties.
    let mut created = Vec::new();
    let mut elapsed = 0;
    for second in [0, 0, 1, 2, 2] {
        clock.advance(Duration::seconds(second - elapsed));
        elapsed = second;
        let order = sa.new_order(new_order(acct.id, clock.now())).await.unwrap();
        created.push((order.created_at, order.id));
    }
    let other_orders = [
        sa.new_order(new_order(other.id, clock.now()))
            .await
            .unwrap(),
        sa.new_order(new_order(other.id, clock.now()))
            .await
            .unwrap(),
    ];
    assert_eq!(created[0].0, created[1].0);
    assert_eq!(created[3].0, created[4].0);
    assert!(created[1].0 < created[2].0 && created[2].0 < created[3].0);
    created.sort();
    created.reverse();
    let expected: Vec<OrderId> = created.iter().map(|(_, id)| *id).collect();

    let pages = all_pages(sa, acct.id, 2).await;
    let sizes: Vec<usize> = pages.iter().map(|page| page.order_ids.len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert!(pages[0].next.is_some() && pages[1].next.is_some());
    assert_eq!(pages[2].next, None);
    let listed: Vec<OrderId> = pages.iter().flat_map(|p| p.order_ids.clone()).collect();
    assert_eq!(listed, expected);

    // A page exactly full at the end of the list has no next.
    let mut theirs: Vec<OrderId> = other_orders.iter().map(|o| o.id).collect();
    theirs.sort();
    theirs.reverse();
    let pages = all_pages(sa, other.id, 2).await;
    assert_eq!(
        pages,
        vec![OrdersPage {
            order_ids: theirs,
            next: None
        }]
    );
    assert_eq!(
        all_pages(sa, empty.id, 2).await,
        vec![OrdersPage::default()]
    );

    // An order created while a client pages does not shift the later pages.
    let first = sa
        .orders_for_account(
            acct.id,
            PageRequest {
                cursor: None,
                size: 2,
            },
        )
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let newest = sa.new_order(new_order(acct.id, clock.now())).await.unwrap();
    let second = sa
        .orders_for_account(
            acct.id,
            PageRequest {
                cursor: first.next,
                size: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.order_ids, expected[2..4].to_vec());
    let all = all_pages(sa, acct.id, 0).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].order_ids[0], newest.id);

    let err = assert_kind(
        sa.orders_for_account(AccountId(42), PageRequest::default())
            .await,
        ErrorKind::NotFound,
    );
    assert_eq!(err.detail, "account 42 not found");
}

pub(crate) async fn page_size_defaults_to_50_and_stops_at_100(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    for _ in 0..101 {
        sa.new_order(new_order(acct.id, start())).await.unwrap();
    }
    let page = |cursor: Option<String>, size: u32| {
        let sa = sa.clone();
        async move {
            sa.orders_for_account(acct.id, PageRequest { cursor, size })
                .await
                .unwrap()
        }
    };
    let default = page(None, 0).await;
    assert_eq!(default.order_ids.len(), 50);
    assert!(default.next.is_some());
    let capped = page(None, u32::MAX).await;
    assert_eq!(capped.order_ids.len(), 100);
    assert_eq!(capped.order_ids[..50], default.order_ids[..]);
    let rest = page(capped.next, 1000).await;
    assert_eq!(rest.order_ids.len(), 1);
    assert_eq!(rest.next, None);
    assert!(!capped.order_ids.contains(&rest.order_ids[0]));
}

pub(crate) async fn garbled_cursors_are_malformed(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    for cursor in [
        "",
        ".",
        "garbage",
        "1893456000",
        "1893456000.",
        ".42",
        "1893456000.42.7",
        "-1.42",
        "+1.42",
        "1893456000.4x2",
        "99999999999999999999.42",
        "1893456000 .42",
        "١٢.٣",
    ] {
        let err = assert_kind(
            sa.orders_for_account(
                acct.id,
                PageRequest {
                    cursor: Some(cursor.to_owned()),
                    size: 2,
                },
            )
            .await,
            ErrorKind::Malformed,
        );
        assert_eq!(err.detail, "invalid cursor", "{cursor:?}");
    }
    // A well-formed cursor past every order is simply the end of the list.
    let page = sa
        .orders_for_account(
            acct.id,
            PageRequest {
                cursor: Some("0.0".into()),
                size: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page, OrdersPage::default());
}

pub(crate) async fn account_contacts_and_key_change(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb-old").await;

    let contacts = vec![
        "mailto:ops@example.com".to_owned(),
        "mailto:pager@example.com".to_owned(),
    ];
    let updated = sa
        .update_account(
            acct.id,
            AccountUpdate {
                contacts: Some(contacts.clone()),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated,
        Account {
            contacts: contacts.clone(),
            ..acct.clone()
        }
    );
    assert_eq!(sa.account(acct.id).await.unwrap(), updated);

    let cleared = sa
        .update_account(
            acct.id,
            AccountUpdate {
                contacts: Some(Vec::new()),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(cleared.contacts.is_empty());
    assert_eq!(sa.account(acct.id).await.unwrap(), cleared);

    // Nothing to change changes nothing.
    let same = sa
        .update_account(acct.id, AccountUpdate::default())
        .await
        .unwrap();
    assert_eq!(same, cleared);

    let rolled = sa
        .update_account(
            acct.id,
            AccountUpdate {
                key: Some((r#"{"kty":"EC","x":"new"}"#.into(), "thumb-new".into())),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rolled.key_thumbprint, "thumb-new");
    assert_eq!(rolled.key_jwk, r#"{"kty":"EC","x":"new"}"#);
    assert_eq!(rolled.id, acct.id);
    assert_eq!(sa.account_by_key("thumb-new").await.unwrap(), rolled);
    assert_kind(sa.account_by_key("thumb-old").await, ErrorKind::NotFound);

    let err = assert_kind(
        sa.update_account(
            AccountId(42),
            AccountUpdate {
                contacts: Some(Vec::new()),
                ..AccountUpdate::default()
            },
        )
        .await,
        ErrorKind::NotFound,
    );
    assert_eq!(err.detail, "account 42 not found");
}

pub(crate) async fn a_key_in_use_is_a_conflict_and_changes_nothing(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let mine = account(sa, "thumb-mine").await;
    let theirs = account(sa, "thumb-theirs").await;

    let err = assert_kind(
        sa.update_account(
            mine.id,
            AccountUpdate {
                contacts: Some(vec!["mailto:new@example.com".into()]),
                status: Some(AccountStatus::Deactivated),
                key: Some(("{}".into(), "thumb-theirs".into())),
            },
        )
        .await,
        ErrorKind::Conflict,
    );
    assert_eq!(err.detail, "key is in use by another account");
    // The contacts and status written before the key failed were rolled back.
    assert_eq!(sa.account(mine.id).await.unwrap(), mine);
    assert_eq!(sa.account_by_key("thumb-theirs").await.unwrap(), theirs);

    // Rolling over to the key an account already has is no conflict.
    let same = sa
        .update_account(
            mine.id,
            AccountUpdate {
                key: Some((mine.key_jwk.clone(), mine.key_thumbprint.clone())),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same, mine);
}

pub(crate) async fn accounts_only_move_from_valid_to_deactivated(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;

    for status in [AccountStatus::Valid, AccountStatus::Revoked] {
        assert_kind(
            sa.update_account(
                acct.id,
                AccountUpdate {
                    status: Some(status),
                    contacts: Some(Vec::new()),
                    ..AccountUpdate::default()
                },
            )
            .await,
            ErrorKind::Malformed,
        );
    }
    assert_eq!(sa.account(acct.id).await.unwrap(), acct);

    let deactivated = sa
        .update_account(
            acct.id,
            AccountUpdate {
                status: Some(AccountStatus::Deactivated),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deactivated.status, AccountStatus::Deactivated);
    assert_eq!(
        sa.account(acct.id).await.unwrap().status,
        AccountStatus::Deactivated
    );

    for status in [
        AccountStatus::Deactivated,
        AccountStatus::Valid,
        AccountStatus::Revoked,
    ] {
        let err = assert_kind(
            sa.update_account(
                acct.id,
                AccountUpdate {
                    status: Some(status),
                    ..AccountUpdate::default()
                },
            )
            .await,
            ErrorKind::Malformed,
        );
        assert!(err.detail.contains("cannot move from deactivated"), "{err}");
    }
    assert_eq!(sa.account(acct.id).await.unwrap(), deactivated);
}

pub(crate) async fn deactivating_an_authz_invalidates_its_order(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;

    // A pending authorization.
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    let pending = order.authz_ids[0];
    sa.deactivate_authz(pending).await.unwrap();
    assert_eq!(
        sa.authz(pending).await.unwrap().status,
        AuthzStatus::Deactivated
    );
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    // The other authorization of the order is untouched.
    assert_eq!(
        sa.authz(order.authz_ids[1]).await.unwrap().status,
        AuthzStatus::Pending
    );
    // A deactivated authorization cannot be validated any more, nor deactivated twice.
    assert_kind(
        sa.set_challenge_processing(pending, ChallengeType::Http01)
            .await,
        ErrorKind::Malformed,
    );
    let err = assert_kind(sa.deactivate_authz(pending).await, ErrorKind::Malformed);
    assert_eq!(err.detail, "authorization is not pending or valid");

    // A valid authorization of a ready order.
    let ready = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &ready, start()).await;
    assert_eq!(sa.order(ready.id).await.unwrap().status, OrderStatus::Ready);
    sa.deactivate_authz(ready.authz_ids[1]).await.unwrap();
    assert_eq!(
        sa.authz(ready.authz_ids[1]).await.unwrap().status,
        AuthzStatus::Deactivated
    );
    assert_eq!(
        sa.order(ready.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    assert_kind(
        sa.set_order_processing(ready.id).await,
        ErrorKind::OrderNotReady,
    );

    let err = assert_kind(sa.deactivate_authz(AuthzId(42)).await, ErrorKind::NotFound);
    assert_eq!(err.detail, "authorization 42 not found");
}

pub(crate) async fn only_pending_or_valid_authzs_are_deactivated(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;

    // Invalid.
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let failed = order.authz_ids[0];
    sa.set_challenge_processing(failed, ChallengeType::Http01)
        .await
        .unwrap();
    sa.finalize_authz(
        failed,
        ChallengeType::Http01,
        outcome(AuthzStatus::Invalid, start()),
    )
    .await
    .unwrap();
    let err = assert_kind(sa.deactivate_authz(failed).await, ErrorKind::Malformed);
    assert_eq!(err.detail, "authorization is not pending or valid");
    assert_eq!(sa.authz(failed).await.unwrap().status, AuthzStatus::Invalid);

    // Expired: pending, and valid, past their expiry.
    let valid_order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &valid_order, start()).await;
    clock.advance(Duration::days(8));
    let expired = order.authz_ids[1];
    assert_eq!(
        sa.authz(expired).await.unwrap().status,
        AuthzStatus::Expired
    );
    assert_kind(sa.deactivate_authz(expired).await, ErrorKind::Malformed);
    // Validated authorizations live 30 days, so these are still valid.
    let still_valid = valid_order.authz_ids[0];
    assert_eq!(
        sa.authz(still_valid).await.unwrap().status,
        AuthzStatus::Valid
    );
    clock.advance(Duration::days(30));
    assert_eq!(
        sa.authz(still_valid).await.unwrap().status,
        AuthzStatus::Expired
    );
    assert_kind(sa.deactivate_authz(still_valid).await, ErrorKind::Malformed);
}

/// Issues a certificate with `serial` to a fresh account and returns that account.
pub(crate) async fn issued<S: Storage>(sa: &S, thumbprint: &str, serial: &Serial) -> Account {
    let acct = account(sa, thumbprint).await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &order, start()).await;
    sa.set_order_processing(order.id).await.unwrap();
    issue(sa, acct.id, serial, start()).await;
    sa.finalize_order(order.id, serial).await.unwrap();
    acct
}

pub(crate) fn replacing(account_id: AccountId, serial: &Serial) -> NewOrder {
    NewOrder {
        replaces: Some(serial.clone()),
        ..new_order(account_id, start())
    }
}

pub(crate) async fn orders_keep_profile_window_and_replaces(sa: &SqlStorage, _clock: &FixedClock) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = issued(sa, "thumb", &serial).await;

    let not_before = start() + Duration::hours(1);
    let not_after = start() + Duration::days(6);
    let order = sa
        .new_order(NewOrder {
            profile: "shortlived".into(),
            // Sub-second parts are dropped, like every stored time.
            not_before: Some(not_before + Duration::milliseconds(300)),
            not_after: Some(not_after),
            ..replacing(acct.id, &serial)
        })
        .await
        .unwrap();
    assert_eq!(order.profile, "shortlived");
    assert_eq!(order.not_before, Some(not_before));
    assert_eq!(order.not_after, Some(not_after));
    assert_eq!(order.replaces, Some(serial.clone()));
    assert_eq!(sa.order(order.id).await.unwrap(), order);

    let plain = sa.new_order(new_order(acct.id, start())).await.unwrap();
    assert_eq!(plain.profile, "classic");
    assert_eq!(
        (plain.not_before, plain.not_after, plain.replaces),
        (None, None, None)
    );

    let backwards = NewOrder {
        not_before: Some(not_after),
        not_after: Some(not_before),
        ..new_order(acct.id, start())
    };
    let err = assert_kind(sa.new_order(backwards).await, ErrorKind::Malformed);
    assert_eq!(err.detail, "notAfter must be later than notBefore");
}

pub(crate) async fn replacing_an_unknown_certificate_is_malformed(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    // A reserved serial with a precertificate is not a certificate yet.
    let serial: Serial = "77".parse().unwrap();
    sa.add_serial(&serial, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    sa.add_precertificate(&serial, b"precert", acct.id, start())
        .await
        .unwrap();
    let err = assert_kind(
        sa.new_order(replacing(acct.id, &serial)).await,
        ErrorKind::Malformed,
    );
    assert_eq!(err.detail, "replaces names an unknown certificate");
    let count = sa.count_rows("orders").await;
    assert_eq!(count, 0);
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), None);
}

pub(crate) async fn a_certificate_is_replaced_by_one_live_order(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let owner = issued(sa, "owner", &serial).await;
    let other = account(sa, "other").await;
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), None);

    // The first replacement is pending: a second one, from any account, is refused.
    let first = sa.new_order(replacing(owner.id, &serial)).await.unwrap();
    assert_eq!(first.status, OrderStatus::Pending);
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), Some(first.id));
    for account_id in [owner.id, other.id] {
        let err = assert_kind(
            sa.new_order(replacing(account_id, &serial)).await,
            ErrorKind::AlreadyReplaced,
        );
        assert_eq!(
            err.detail,
            format!(
                "certificate 0a0b0c was already replaced by order {}",
                first.id
            )
        );
    }

    // Once it is invalid, the certificate can be replaced again.
    sa.set_order_error(first.id, &Error::internal("issuance failed"))
        .await
        .unwrap();
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), None);
    let second = sa.new_order(replacing(other.id, &serial)).await.unwrap();
    assert_eq!(
        sa.replacement_order(&serial).await.unwrap(),
        Some(second.id)
    );
    assert_kind(
        sa.new_order(replacing(owner.id, &serial)).await,
        ErrorKind::AlreadyReplaced,
    );

    // An order that expires unfinished is invalid too.
    clock.advance(Duration::days(8));
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), None);
    let third = sa
        .new_order(NewOrder {
            replaces: Some(serial.clone()),
            ..new_order(owner.id, clock.now())
        })
        .await
        .unwrap();
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), Some(third.id));
}

pub(crate) async fn a_valid_replacement_keeps_the_certificate_replaced(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = issued(sa, "thumb", &serial).await;
    let renewal = sa.new_order(replacing(acct.id, &serial)).await.unwrap();
    validate_all(sa, &renewal, start()).await;
    sa.set_order_processing(renewal.id).await.unwrap();
    let next: Serial = "0d0e0f".parse().unwrap();
    issue(sa, acct.id, &next, start()).await;
    sa.finalize_order(renewal.id, &next).await.unwrap();

    // Valid orders stay valid after their expiry, so the replacement stands.
    clock.advance(Duration::days(30));
    assert_eq!(
        sa.replacement_order(&serial).await.unwrap(),
        Some(renewal.id)
    );
    let later = NewOrder {
        replaces: Some(serial.clone()),
        ..new_order(acct.id, clock.now())
    };
    assert_kind(sa.new_order(later).await, ErrorKind::AlreadyReplaced);
    // The new certificate itself is not replaced by anything.
    assert_eq!(sa.replacement_order(&next).await.unwrap(), None);
}

pub(crate) async fn concurrent_replacements_let_one_through(sa: &SqlStorage, _clock: &FixedClock) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = issued(sa, "thumb", &serial).await;
    let attempts = (0..8).map(|_| {
        let sa = sa.clone();
        let order = replacing(acct.id, &serial);
        tokio::spawn(async move { sa.new_order(order).await })
    });
    let mut won = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(order) => won.push(order.id),
            Err(err) => assert_eq!(err.kind, ErrorKind::AlreadyReplaced, "{err}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), Some(won[0]));
}

pub(crate) fn eab_key(key_id: &str, created_at: OffsetDateTime) -> EabKey {
    EabKey {
        key_id: key_id.to_owned(),
        hmac_key: vec![0x42; 32],
        comment: format!("for {key_id}"),
        created_at,
        revoked: false,
        account_id: None,
    }
}

pub(crate) async fn eab_account<S: Storage>(
    sa: &S,
    thumbprint: &str,
    key_id: &str,
) -> Result<Account, Error> {
    sa.new_account(NewAccount {
        key_jwk: "{}".into(),
        key_thumbprint: thumbprint.to_owned(),
        contacts: Vec::new(),
        eab_key_id: Some(key_id.to_owned()),
    })
    .await
}

pub(crate) async fn eab_keys_are_stored_listed_and_revoked(sa: &SqlStorage, _clock: &FixedClock) {
    assert_eq!(sa.eab_keys().await.unwrap(), Vec::new());

    let older = eab_key("kid-1", start());
    let newer = EabKey {
        hmac_key: (0..64).collect(),
        ..eab_key("kid-2", start() + Duration::minutes(5))
    };
    sa.add_eab_key(older.clone()).await.unwrap();
    sa.add_eab_key(newer.clone()).await.unwrap();
    assert_eq!(sa.eab_key("kid-1").await.unwrap(), older);
    assert_eq!(sa.eab_key("kid-2").await.unwrap(), newer);
    assert_eq!(
        sa.eab_keys().await.unwrap(),
        vec![newer.clone(), older.clone()]
    );

    let err = assert_kind(
        sa.add_eab_key(eab_key("kid-1", start())).await,
        ErrorKind::Conflict,
    );
    assert_eq!(
        err.detail,
        "external account binding key \"kid-1\" already exists"
    );
    assert_eq!(sa.eab_key("kid-1").await.unwrap(), older);
    let short = EabKey {
        hmac_key: vec![1; 31],
        ..eab_key("kid-3", start())
    };
    assert_kind(sa.add_eab_key(short).await, ErrorKind::Malformed);
    assert_kind(
        sa.add_eab_key(eab_key("", start())).await,
        ErrorKind::Malformed,
    );
    assert_kind(sa.eab_key("kid-3").await, ErrorKind::NotFound);

    sa.revoke_eab_key("kid-1").await.unwrap();
    sa.revoke_eab_key("kid-1").await.unwrap();
    assert!(sa.eab_key("kid-1").await.unwrap().revoked);
    assert!(!sa.eab_key("kid-2").await.unwrap().revoked);
    assert_kind(sa.revoke_eab_key("kid-9").await, ErrorKind::NotFound);
}

pub(crate) async fn an_eab_key_binds_one_account(sa: &SqlStorage, _clock: &FixedClock) {
    sa.add_eab_key(eab_key("kid", start())).await.unwrap();

    let first = eab_account(sa, "thumb-1", "kid").await.unwrap();
    assert_eq!(sa.account(first.id).await.unwrap(), first);
    assert_eq!(sa.eab_key("kid").await.unwrap().account_id, Some(first.id));

    let err = assert_kind(
        eab_account(sa, "thumb-2", "kid").await,
        ErrorKind::Unauthorized,
    );
    assert_eq!(
        err.detail,
        "external account binding key ID is unknown, revoked or already used"
    );
    assert_kind(sa.account_by_key("thumb-2").await, ErrorKind::NotFound);
    assert_eq!(sa.eab_key("kid").await.unwrap().account_id, Some(first.id));

    // Revoking a used key leaves its account alone.
    sa.revoke_eab_key("kid").await.unwrap();
    let key = sa.eab_key("kid").await.unwrap();
    assert!(key.revoked);
    assert_eq!(key.account_id, Some(first.id));
    assert_eq!(sa.account(first.id).await.unwrap(), first);
}

pub(crate) async fn unusable_eab_keys_create_no_account(sa: &SqlStorage, _clock: &FixedClock) {
    sa.add_eab_key(eab_key("revoked", start())).await.unwrap();
    sa.revoke_eab_key("revoked").await.unwrap();
    sa.add_eab_key(eab_key("fresh", start())).await.unwrap();

    assert_kind(
        eab_account(sa, "thumb", "revoked").await,
        ErrorKind::Unauthorized,
    );
    assert_kind(
        eab_account(sa, "thumb", "unknown").await,
        ErrorKind::Unauthorized,
    );
    // A key already taken by an account fails as a conflict and does not use the key.
    let taken = account(sa, "taken").await;
    assert_kind(eab_account(sa, "taken", "fresh").await, ErrorKind::Conflict);
    assert_eq!(sa.eab_key("fresh").await.unwrap().account_id, None);
    assert_eq!(sa.count_rows("accounts").await, 1);
    assert_eq!(sa.eab_key("revoked").await.unwrap().account_id, None);

    // A failure after the account row is written (here, binding the key) rolls the
    // account back too.
    sa.add_failing_trigger(
        "fail_binding",
        "UPDATE",
        "eab_keys",
        Some("NEW.account_id IS NOT NULL"),
    )
    .await;
    assert_kind(eab_account(sa, "thumb", "fresh").await, ErrorKind::Internal);
    assert_eq!(sa.count_rows("accounts").await, 1);
    assert_kind(sa.account_by_key("thumb").await, ErrorKind::NotFound);
    assert_eq!(sa.eab_key("fresh").await.unwrap().account_id, None);
    sa.drop_trigger("fail_binding", "eab_keys").await;

    // The refused registrations left nothing behind: the same key registers now.
    let acct = eab_account(sa, "thumb", "fresh").await.unwrap();
    assert_eq!(sa.eab_key("fresh").await.unwrap().account_id, Some(acct.id));
    assert_ne!(acct.id, taken.id);
    assert_eq!(sa.count_rows("accounts").await, 2);
}

pub(crate) async fn concurrent_registrations_bind_a_key_once(sa: &SqlStorage, _clock: &FixedClock) {
    sa.add_eab_key(eab_key("kid", start())).await.unwrap();
    let attempts = (0..8).map(|i| {
        let sa = sa.clone();
        tokio::spawn(async move { eab_account(&sa, &format!("thumb-{i}"), "kid").await })
    });
    let mut won = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(acct) => won.push(acct.id),
            Err(err) => assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(sa.eab_key("kid").await.unwrap().account_id, Some(won[0]));
    assert_eq!(sa.count_rows("accounts").await, 1);
}
