//! The conformance suite: what every storage engine must do, written once.
//!
//! Each test is an `async fn` over a [`SqlStorage`] on a fresh database; each engine's
//! test module instantiates every one of them with [`conformance_tests!`].

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::AccountUpdate;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::CertificateLookup;
use basalt_core::CertificateQuery;
use basalt_core::CertificateRecord;
use basalt_core::CertificateSearch;
use basalt_core::CertificateSelector;
use basalt_core::CertificateStore;
use basalt_core::CertificateSummary;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::CrlPlacement;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::NewAccount;
use basalt_core::NewAuthz;
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
use basalt_core::ValidationRecord;
use sqlx::Row;
use time::Duration;
use time::OffsetDateTime;
use tokio::sync::Barrier;

use crate::SqlStorage;
use crate::common::from_unix;
use crate::common::parse_wire;
use crate::engine::for_engine;

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
            a_precertificate_alone_has_a_status_and_is_revocable,
            a_revocation_before_the_certificate_stands,
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
            concurrent_key_rollovers_to_one_key_let_one_through,
            concurrent_registrations_of_one_key_let_one_through,
            concurrent_serial_reservations_let_one_through,
            concurrent_orders_are_all_stored,
            concurrent_challenge_attempts_let_one_through,
            concurrent_authz_finalizations_let_one_through,
            concurrent_revocations_let_one_through,
            reads_of_unknown_ids_are_not_found,
            writes_naming_unknown_ids_are_not_found_and_write_nothing,
            a_challenge_is_attempted_and_finalized_once,
            an_expired_authz_takes_no_outcome,
            orders_need_identifiers_and_challenges,
            ip_identifiers_round_trip_and_authorize_only_ips,
            unicode_contacts_round_trip,
            times_are_kept_to_the_second,
            certificates_round_trip_byte_exact,
            a_certificate_is_stored_once,
            a_serial_serves_only_the_account_it_was_reserved_for,
            only_unfinished_orders_take_an_error,
            revocation_keeps_its_second_and_its_reason,
            eab_keys_keep_what_they_are_given,
            blocked_keys_are_added_once_and_found,
            blocked_key_hashes_compare_byte_exact,
            concurrent_blocks_of_one_key_all_succeed,
            a_live_order_for_the_same_names_is_reused,
            authzs_for_reuse_are_valid_long_enough_or_pending,
            an_order_links_reused_authzs,
            reused_authzs_must_still_be_usable,
            a_shared_authz_is_purged_with_its_last_order,
            a_revocation_becomes_key_compromise_once,
            incidents_are_declared_listed_and_found,
            concurrent_incidents_of_one_name_let_one_through,
            placements_are_stored_and_reported_with_status_changes,
            revoked_certificates_list_one_shard,
            status_changes_follow_writes_in_order,
            status_change_limits_are_checked,
            certificates_are_found_by_name_account_and_key,
            searches_show_revocations_and_keep_to_active_certificates,
            searches_are_newest_first_and_limited,
            unreadable_precertificates_are_found_by_account_only,
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

/// A JWK that stands for the key with this thumbprint.
pub(crate) fn jwk(thumbprint: &str) -> String {
    format!(r#"{{"kty":"EC","x":"{thumbprint}"}}"#)
}

pub(crate) async fn account<S: Storage>(sa: &S, thumbprint: &str) -> Account {
    sa.new_account(NewAccount {
        key_jwk: jwk(thumbprint),
        key_thumbprint: thumbprint.to_owned(),
        contacts: vec!["mailto:admin@example.com".to_owned()],
        eab_key_id: None,
        remote_ip: None,
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
        reused_authz_ids: Vec::new(),
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
            perspectives: Vec::new(),
        }],
        error: None,
    }
}

/// Validates every authorization of `order` with its first challenge.
pub(crate) async fn validate_all<S: Storage>(sa: &S, order: &Order, now: OffsetDateTime) {
    for id in &order.authz_ids {
        let kind = sa.authz(*id).await.unwrap().challenges[0].kind;
        sa.set_challenge_processing(*id, kind, "attempt")
            .await
            .unwrap();
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
    store_certificate(sa, &record(serial, account_id, now)).await;
}

/// Reserves the serial of `certificate`, stores a precertificate and then the
/// certificate itself, as the CA does.
pub(crate) async fn store_certificate<S: Storage>(sa: &S, certificate: &CertificateRecord) {
    let CertificateRecord {
        serial,
        account_id,
        issued_at,
        expires_at,
        ..
    } = certificate;
    sa.add_serial(serial, *account_id, *issued_at, *expires_at)
        .await
        .unwrap();
    sa.add_precertificate(serial, b"precert", *account_id, *issued_at, &placement())
        .await
        .unwrap();
    sa.add_certificate(certificate).await.unwrap();
}

/// The placement the helpers store precertificates with: one issuer, shard 0.
pub(crate) fn placement() -> CrlPlacement {
    CrlPlacement {
        issuer_key_hash: vec![0x1a; 20],
        shard: Some(0),
    }
}

/// Reserves `serial` until `expires` and stores its precertificate with `placement`,
/// both at the start; the certificate is never stored.
pub(crate) async fn precertificate<S: Storage>(
    sa: &S,
    account_id: AccountId,
    serial: &Serial,
    expires: OffsetDateTime,
    placement: &CrlPlacement,
) {
    sa.add_serial(serial, account_id, start(), expires)
        .await
        .unwrap();
    sa.add_precertificate(serial, b"precert", account_id, start(), placement)
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

/// Runs every attempt on a task of its own, all released at the same moment so they
/// really race, and returns their results in the order given.
pub(crate) async fn concurrently<F>(attempts: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let attempts: Vec<F> = attempts.into_iter().collect();
    let gate = Arc::new(Barrier::new(attempts.len()));
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|attempt| {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.wait().await;
                attempt.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// The one success among `results`, where every other attempt must have failed with
/// `kind`.
pub(crate) fn the_one_winner<T: fmt::Debug>(results: Vec<Result<T, Error>>, kind: ErrorKind) -> T {
    let mut won = Vec::new();
    for result in results {
        match result {
            Ok(value) => won.push(value),
            Err(err) => assert_eq!(err.kind, kind, "{err}"),
        }
    }
    assert_eq!(won.len(), 1, "not exactly one winner: {won:?}");
    won.remove(0)
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
            remote_ip: None,
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
        sa.set_order_processing(order.id, "attempt").await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("pending"), "{err}");
    assert_kind(
        sa.set_challenge_processing(a, ChallengeType::Http01, "attempt")
            .await,
        ErrorKind::NotFound,
    );

    sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
        .await
        .unwrap();
    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Processing);
    assert_eq!(authz.status, AuthzStatus::Pending);
    // The same attempt again (its first answer lost) succeeds; another is refused.
    sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
        .await
        .unwrap();
    assert_kind(
        sa.set_challenge_processing(b, ChallengeType::Http01, "another attempt")
            .await,
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
        sa.set_challenge_processing(b, ChallengeType::Dns01, "attempt")
            .await,
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
    sa.set_order_processing(order.id, "attempt").await.unwrap();
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Processing
    );
    // The same attempt again (its first answer lost) succeeds; another is refused.
    sa.set_order_processing(order.id, "attempt").await.unwrap();
    let err = assert_kind(
        sa.set_order_processing(order.id, "another attempt").await,
        ErrorKind::OrderNotReady,
    );
    assert!(err.detail.contains("processing"), "{err}");

    issue(sa, acct.id, &serial, now).await;
    sa.finalize_order(order.id, &serial).await.unwrap();
    let done = sa.order(order.id).await.unwrap();
    assert_eq!(done.status, OrderStatus::Valid);
    assert_eq!(done.certificate_serial, Some(serial.clone()));
    // The RA repeats a finalize whose answer an SA restart lost: with the same serial
    // it succeeds and changes nothing.
    sa.finalize_order(order.id, &serial).await.unwrap();
    assert_eq!(sa.order(order.id).await.unwrap(), done);
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
    sa.set_order_processing(order.id, "attempt").await.unwrap();

    let problem = Error::new(ErrorKind::BadCsr, "csr names c.example");
    sa.set_order_error(order.id, &problem).await.unwrap();
    let failed = sa.order(order.id).await.unwrap();
    assert_eq!(failed.status, OrderStatus::Invalid);
    assert_eq!(failed.error, Some(problem.clone()));
    assert_kind(
        sa.set_order_processing(order.id, "attempt").await,
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
        sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
            .await,
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
        sa.set_order_processing(order.id, "attempt").await,
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
        sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
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
    // A reserved serial with nothing signed has no status yet.
    assert_kind(sa.revocation_status(&serial).await, ErrorKind::NotFound);

    assert_kind(
        sa.add_precertificate(&serial, b"precert", AccountId(1), start(), &placement())
            .await,
        ErrorKind::Internal,
    );
    sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
        .await
        .unwrap();
    assert_kind(
        sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
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

/// The CA died between the precertificate and the certificate: the serial still has
/// a status, good, until its reservation's expiry, and can be revoked once; the
/// certificate download knows nothing of it.
pub(crate) async fn a_precertificate_alone_has_a_status_and_is_revocable(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0badca".parse().unwrap();
    let expires = start() + Duration::days(47);
    sa.add_serial(&serial, acct.id, start(), expires)
        .await
        .unwrap();
    sa.add_precertificate(
        &serial,
        b"linting certificate",
        acct.id,
        start(),
        &placement(),
    )
    .await
    .unwrap();

    let status = sa.revocation_status(&serial).await.unwrap();
    assert_eq!(
        status,
        RevocationStatus {
            serial: serial.clone(),
            der: b"linting certificate".to_vec(),
            precertificate: true,
            expires_at: expires,
            status: CertStatus::Good,
            revoked_at: None,
            revocation_reason: None,
        }
    );
    assert_kind(sa.certificate(&serial).await, ErrorKind::NotFound);
    let unknown: Serial = "0badcb".parse().unwrap();
    let err = assert_kind(sa.revocation_status(&unknown).await, ErrorKind::NotFound);
    assert_eq!(err.detail, "serial 0badcb not found");

    clock.advance(Duration::hours(3));
    let at = clock.now();
    sa.revoke_certificate(&serial, RevocationReason::KeyCompromise, at)
        .await
        .unwrap();
    let revoked = sa.revocation_status(&serial).await.unwrap();
    assert_eq!(
        (
            revoked.status,
            revoked.revoked_at,
            revoked.revocation_reason,
            revoked.precertificate
        ),
        (
            CertStatus::Revoked,
            Some(at),
            Some(RevocationReason::KeyCompromise),
            true
        )
    );
    assert_kind(
        sa.revoke_certificate(&serial, RevocationReason::Superseded, at)
            .await,
        ErrorKind::AlreadyRevoked,
    );
}

/// A serial revoked while only its precertificate was stored stays revoked when the
/// certificate is stored after all; from then on the status comes with the
/// certificate.
pub(crate) async fn a_revocation_before_the_certificate_stands(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0bad0c".parse().unwrap();
    let certificate = record(&serial, acct.id, start());
    sa.add_serial(&serial, acct.id, start(), certificate.expires_at)
        .await
        .unwrap();
    sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
        .await
        .unwrap();
    let at = start() + Duration::minutes(1);
    sa.revoke_certificate(&serial, RevocationReason::PrivilegeWithdrawn, at)
        .await
        .unwrap();

    sa.add_certificate(&certificate).await.unwrap();
    let stored = sa.certificate(&serial).await.unwrap();
    assert_eq!(
        (stored.status, stored.revoked_at, stored.revocation_reason),
        (
            CertStatus::Revoked,
            Some(at),
            Some(RevocationReason::PrivilegeWithdrawn)
        )
    );
    let status = sa.revocation_status(&serial).await.unwrap();
    assert!(!status.precertificate);
    assert_eq!(status.der, certificate.der);
    assert_eq!(status.status, CertStatus::Revoked);
    assert_eq!(status.expires_at, certificate.expires_at);

    // An issued certificate's status is good, and its DER is the certificate's.
    let good: Serial = "0bad0d".parse().unwrap();
    issue(sa, acct.id, &good, start()).await;
    let status = sa.revocation_status(&good).await.unwrap();
    assert_eq!(
        (status.status, status.precertificate, status.der),
        (CertStatus::Good, false, record(&good, acct.id, start()).der)
    );
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

    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        async move {
            sa.set_order_processing(order.id, &format!("attempt-{i}"))
                .await
        }
    }))
    .await;
    the_one_winner(results, ErrorKind::OrderNotReady);
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
        sa.set_challenge_processing(pending, ChallengeType::Http01, "attempt")
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
        sa.set_order_processing(ready.id, "attempt").await,
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
    sa.set_challenge_processing(failed, ChallengeType::Http01, "attempt")
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

/// A new order of `account_id`, its authorizations valid, finalization begun.
pub(crate) async fn processing_order<S: Storage>(sa: &S, account_id: AccountId) -> Order {
    let order = sa.new_order(new_order(account_id, start())).await.unwrap();
    validate_all(sa, &order, start()).await;
    sa.set_order_processing(order.id, "attempt").await.unwrap();
    sa.order(order.id).await.unwrap()
}

/// A new order of `account_id` carried through to valid with a certificate of `serial`.
pub(crate) async fn valid_order<S: Storage>(
    sa: &S,
    account_id: AccountId,
    serial: &Serial,
) -> Order {
    let order = processing_order(sa, account_id).await;
    issue(sa, account_id, serial, start()).await;
    sa.finalize_order(order.id, serial).await.unwrap();
    sa.order(order.id).await.unwrap()
}

/// Issues a certificate with `serial` to a fresh account and returns that account.
pub(crate) async fn issued<S: Storage>(sa: &S, thumbprint: &str, serial: &Serial) -> Account {
    let acct = account(sa, thumbprint).await;
    valid_order(sa, acct.id, serial).await;
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
    sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
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
    sa.set_order_processing(renewal.id, "attempt")
        .await
        .unwrap();
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
    let results = concurrently((0..8).map(|_| {
        let sa = sa.clone();
        let order = replacing(acct.id, &serial);
        async move { sa.new_order(order).await }
    }))
    .await;
    let won = the_one_winner(results, ErrorKind::AlreadyReplaced);
    assert_eq!(sa.replacement_order(&serial).await.unwrap(), Some(won.id));
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
        remote_ip: None,
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
    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        async move { eab_account(&sa, &format!("thumb-{i}"), "kid").await }
    }))
    .await;
    let won = the_one_winner(results, ErrorKind::Unauthorized);
    assert_eq!(sa.eab_key("kid").await.unwrap().account_id, Some(won.id));
    assert_eq!(sa.count_rows("accounts").await, 1);
}

/// Every table the storage writes to.
const TABLES: [&str; 13] = [
    "accounts",
    "orders",
    "authzs",
    "order_authzs",
    "challenges",
    "serials",
    "precertificates",
    "certificates",
    "certificate_chains",
    "certificate_status",
    "eab_keys",
    "incidents",
    "incident_serials",
];

/// Every reason a subscriber may give (RFC 8555 §7.6).
const REVOCATION_REASONS: [RevocationReason; 6] = [
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::PrivilegeWithdrawn,
];

/// The number of rows in each table, to show that a refused write wrote nothing.
async fn row_counts(sa: &SqlStorage) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        counts.push((table, sa.count_rows(table).await));
    }
    counts
}

/// The only order of `account_id`.
async fn only_order(sa: &SqlStorage, account_id: AccountId) -> Order {
    let page = sa
        .orders_for_account(account_id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.order_ids.len(), 1, "{page:?}");
    sa.order(page.order_ids[0]).await.unwrap()
}

pub(crate) async fn concurrent_key_rollovers_to_one_key_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    // One round may run the two rollovers one after the other; several rounds make the
    // two transactions overlap on every engine.
    for round in 0..5 {
        let first = account(sa, &format!("thumb-{round}-a")).await;
        let second = account(sa, &format!("thumb-{round}-b")).await;
        let new_key = format!("thumb-{round}-new");
        let results = concurrently([&first, &second].map(|acct| {
            let sa = sa.clone();
            let id = acct.id;
            let update = AccountUpdate {
                key: Some((jwk(&new_key), new_key.clone())),
                ..AccountUpdate::default()
            };
            async move { sa.update_account(id, update).await }
        }))
        .await;
        let winner = the_one_winner(results, ErrorKind::Conflict);
        let (old, loser) = match winner.id {
            id if id == first.id => (&first, &second),
            id if id == second.id => (&second, &first),
            other => panic!("account {other} rolled over, but it was not asked to"),
        };
        assert_eq!(
            winner,
            Account {
                key_jwk: jwk(&new_key),
                key_thumbprint: new_key.clone(),
                ..old.clone()
            }
        );
        assert_eq!(sa.account_by_key(&new_key).await.unwrap(), winner);
        assert_kind(
            sa.account_by_key(&old.key_thumbprint).await,
            ErrorKind::NotFound,
        );
        // The loser's transaction wrote nothing.
        assert_eq!(sa.account(loser.id).await.unwrap(), *loser);
        assert_eq!(
            sa.account_by_key(&loser.key_thumbprint).await.unwrap(),
            *loser
        );
    }
}

pub(crate) async fn concurrent_registrations_of_one_key_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        async move {
            sa.new_account(NewAccount {
                key_jwk: jwk("thumb"),
                key_thumbprint: "thumb".into(),
                contacts: vec![format!("mailto:admin-{i}@example.com")],
                eab_key_id: None,
                remote_ip: None,
            })
            .await
        }
    }))
    .await;
    // Each registration had its own contact, so the stored account is the winner's.
    let winner = the_one_winner(results, ErrorKind::Conflict);
    assert_eq!(sa.account_by_key("thumb").await.unwrap(), winner);
    assert_eq!(sa.account(winner.id).await.unwrap(), winner);
    assert_eq!(sa.count_rows("accounts").await, 1);
}

pub(crate) async fn concurrent_serial_reservations_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let mut accounts = Vec::new();
    for i in 0..8 {
        accounts.push(account(sa, &format!("thumb-{i}")).await);
    }
    let serial: Serial = "5e71a1".parse().unwrap();
    let results = concurrently(accounts.iter().map(|acct| {
        let sa = sa.clone();
        let (serial, account_id) = (serial.clone(), acct.id);
        async move {
            sa.add_serial(&serial, account_id, start(), start() + Duration::days(90))
                .await
                .map(|()| account_id)
        }
    }))
    .await;
    let owner = the_one_winner(results, ErrorKind::Conflict);
    assert_eq!(sa.count_rows("serials").await, 1);
    // The reservation is the winner's: only its precertificate is taken.
    for acct in accounts.iter().filter(|acct| acct.id != owner) {
        assert_kind(
            sa.add_precertificate(&serial, b"precert", acct.id, start(), &placement())
                .await,
            ErrorKind::Internal,
        );
    }
    sa.add_precertificate(&serial, b"precert", owner, start(), &placement())
        .await
        .unwrap();
}

pub(crate) async fn concurrent_orders_are_all_stored(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let results = concurrently((0..16).map(|_| {
        let sa = sa.clone();
        async move { sa.new_order(new_order(acct.id, start())).await }
    }))
    .await;
    let mut created = Vec::new();
    for result in results {
        created.push(result.unwrap());
    }
    created.sort_by_key(|order| order.id);
    let created_ids: Vec<OrderId> = created.iter().map(|order| order.id).collect();

    let page = sa
        .orders_for_account(
            acct.id,
            PageRequest {
                cursor: None,
                size: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.next, None);
    let mut listed = page.order_ids;
    listed.sort();
    listed.dedup();
    assert_eq!(listed, created_ids);
    assert_eq!(listed.len(), 16);

    for order in &created {
        assert_eq!(sa.order(order.id).await.unwrap(), *order);
        for id in &order.authz_ids {
            assert_eq!(sa.authz(*id).await.unwrap().account_id, acct.id);
        }
    }
    let mut authz_ids: Vec<AuthzId> = created
        .iter()
        .flat_map(|order| order.authz_ids.clone())
        .collect();
    authz_ids.sort();
    authz_ids.dedup();
    assert_eq!(authz_ids.len(), 32);
    for (table, rows) in [
        ("orders", 16),
        ("authzs", 32),
        ("order_authzs", 32),
        ("challenges", 48),
    ] {
        assert_eq!(sa.count_rows(table).await, rows, "{table}");
    }
}

pub(crate) async fn concurrent_challenge_attempts_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let b = order.authz_ids[0];
    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        async move {
            sa.set_challenge_processing(b, ChallengeType::Http01, &format!("attempt-{i}"))
                .await
        }
    }))
    .await;
    // Two winners would mean the VA is asked to validate the same challenge twice.
    the_one_winner(results, ErrorKind::Malformed);
    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Pending);
    assert_eq!(
        authz.challenge(ChallengeType::Http01).unwrap().status,
        ChallengeStatus::Processing
    );
    assert_eq!(
        authz.challenge(ChallengeType::Dns01).unwrap().status,
        ChallengeStatus::Pending
    );
}

pub(crate) async fn concurrent_authz_finalizations_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let b = order.authz_ids[0];
    sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
        .await
        .unwrap();
    // Outcomes for both challenges, valid and invalid: only one may land.
    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        let kind = [ChallengeType::Http01, ChallengeType::Dns01][i % 2];
        let status = [AuthzStatus::Valid, AuthzStatus::Invalid][i / 2 % 2];
        async move {
            sa.finalize_authz(b, kind, outcome(status, start()))
                .await
                .map(|()| (kind, status))
        }
    }))
    .await;
    let (kind, status) = the_one_winner(results, ErrorKind::Malformed);

    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.status, status);
    let (won, other) = match kind {
        ChallengeType::Http01 => (ChallengeType::Http01, ChallengeType::Dns01),
        _ => (ChallengeType::Dns01, ChallengeType::Http01),
    };
    let expected = match status {
        AuthzStatus::Valid => ChallengeStatus::Valid,
        _ => ChallengeStatus::Invalid,
    };
    assert_eq!(authz.challenge(won).unwrap().status, expected);
    assert_eq!(authz.challenge(won).unwrap().validated, Some(start()));
    let untouched = authz.challenge(other).unwrap();
    assert_eq!(untouched.validated, None);
    assert_ne!(untouched.status, expected);
}

pub(crate) async fn concurrent_revocations_let_one_through(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "7e".parse().unwrap();
    issue(sa, acct.id, &serial, start()).await;
    let results = concurrently((1..).zip(REVOCATION_REASONS).map(|(minutes, reason)| {
        let sa = sa.clone();
        let serial = serial.clone();
        let at = start() + Duration::minutes(minutes);
        async move {
            sa.revoke_certificate(&serial, reason, at)
                .await
                .map(|()| (reason, at))
        }
    }))
    .await;
    // The first revocation's time and reason are what OCSP and CRLs must report.
    let (reason, at) = the_one_winner(results, ErrorKind::AlreadyRevoked);
    let revoked = sa.certificate(&serial).await.unwrap();
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(revoked.revocation_reason, Some(reason));
}

pub(crate) async fn reads_of_unknown_ids_are_not_found(sa: &SqlStorage, _clock: &FixedClock) {
    // One of everything exists, so a lookup that ignored its key would find something.
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = issued(sa, "thumb", &serial).await;
    let order = only_order(sa, acct.id).await;
    sa.add_eab_key(eab_key("kid", start())).await.unwrap();
    let reserved: Serial = "0d0e0f".parse().unwrap();
    sa.add_serial(&reserved, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    sa.add_precertificate(&reserved, b"precert", acct.id, start(), &placement())
        .await
        .unwrap();

    assert_kind(sa.account(AccountId(1)).await, ErrorKind::NotFound);
    assert_kind(sa.account_by_key("thumb-2").await, ErrorKind::NotFound);
    assert_kind(sa.account_by_key("THUMB").await, ErrorKind::NotFound);
    assert_kind(sa.account_by_key("").await, ErrorKind::NotFound);
    assert_kind(sa.order(OrderId(1)).await, ErrorKind::NotFound);
    assert_kind(sa.authz(AuthzId(1)).await, ErrorKind::NotFound);
    assert_kind(
        sa.certificate(&"01".parse().unwrap()).await,
        ErrorKind::NotFound,
    );
    // A serial reserved and precertified is not a certificate.
    assert_kind(sa.certificate(&reserved).await, ErrorKind::NotFound);
    assert_kind(sa.eab_key("kid-2").await, ErrorKind::NotFound);
    assert_kind(sa.eab_key("").await, ErrorKind::NotFound);
    assert_kind(
        sa.orders_for_account(AccountId(1), PageRequest::default())
            .await,
        ErrorKind::NotFound,
    );
    assert_eq!(sa.replacement_order(&reserved).await.unwrap(), None);

    // An ID is looked up in its own table only.
    assert_kind(sa.order(OrderId(acct.id.0)).await, ErrorKind::NotFound);
    assert_kind(sa.authz(AuthzId(order.id.0)).await, ErrorKind::NotFound);
    assert_kind(
        sa.order(OrderId(order.authz_ids[0].0)).await,
        ErrorKind::NotFound,
    );
    assert_kind(sa.account(AccountId(order.id.0)).await, ErrorKind::NotFound);
}

pub(crate) async fn writes_naming_unknown_ids_are_not_found_and_write_nothing(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = issued(sa, "thumb", &serial).await;
    let order = only_order(sa, acct.id).await;
    sa.add_eab_key(eab_key("kid", start())).await.unwrap();
    let before = row_counts(sa).await;
    let (account_id, order_id, authz_id) = (AccountId(1), OrderId(1), AuthzId(1));

    let everything = AccountUpdate {
        contacts: Some(Vec::new()),
        status: Some(AccountStatus::Deactivated),
        key: Some((jwk("thumb-new"), "thumb-new".into())),
    };
    assert_kind(
        sa.update_account(account_id, everything).await,
        ErrorKind::NotFound,
    );
    assert_kind(
        sa.new_order(new_order(account_id, start())).await,
        ErrorKind::NotFound,
    );
    assert_kind(sa.deactivate_authz(authz_id).await, ErrorKind::NotFound);
    assert_kind(
        sa.set_challenge_processing(authz_id, ChallengeType::Http01, "attempt")
            .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        sa.finalize_authz(
            authz_id,
            ChallengeType::Http01,
            outcome(AuthzStatus::Valid, start()),
        )
        .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        sa.set_order_processing(order_id, "attempt").await,
        ErrorKind::NotFound,
    );
    // The certificate exists; only the order is unknown.
    assert_kind(
        sa.finalize_order(order_id, &serial).await,
        ErrorKind::NotFound,
    );
    assert_kind(
        sa.set_order_error(order_id, &Error::internal("issuance failed"))
            .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        sa.revoke_certificate(
            &"01".parse().unwrap(),
            RevocationReason::KeyCompromise,
            start(),
        )
        .await,
        ErrorKind::NotFound,
    );
    assert_kind(sa.revoke_eab_key("kid-2").await, ErrorKind::NotFound);

    assert_eq!(row_counts(sa).await, before);
    assert_kind(sa.account_by_key("thumb-new").await, ErrorKind::NotFound);
    assert_eq!(sa.account(acct.id).await.unwrap(), acct);
    assert_eq!(sa.order(order.id).await.unwrap(), order);
    assert_eq!(
        sa.certificate(&serial).await.unwrap(),
        record(&serial, acct.id, start())
    );
    assert!(!sa.eab_key("kid").await.unwrap().revoked);
}

pub(crate) async fn a_challenge_is_attempted_and_finalized_once(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let order = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let b = order.authz_ids[0];
    let fresh = sa.authz(b).await.unwrap();

    // A type the authorization does not offer.
    let err = assert_kind(
        sa.set_challenge_processing(b, ChallengeType::TlsAlpn01, "attempt")
            .await,
        ErrorKind::NotFound,
    );
    assert!(err.detail.contains("tls-alpn-01"), "{err}");
    assert_kind(
        sa.finalize_authz(
            b,
            ChallengeType::TlsAlpn01,
            outcome(AuthzStatus::Valid, start()),
        )
        .await,
        ErrorKind::NotFound,
    );
    assert_eq!(sa.authz(b).await.unwrap(), fresh);

    sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
        .await
        .unwrap();
    let err = assert_kind(
        sa.set_challenge_processing(b, ChallengeType::Http01, "another attempt")
            .await,
        ErrorKind::Malformed,
    );
    assert!(err.detail.contains("processing"), "{err}");

    // Only valid and invalid are outcomes of a validation.
    for status in [
        AuthzStatus::Pending,
        AuthzStatus::Expired,
        AuthzStatus::Deactivated,
        AuthzStatus::Revoked,
    ] {
        assert_kind(
            sa.finalize_authz(b, ChallengeType::Http01, outcome(status, start()))
                .await,
            ErrorKind::Malformed,
        );
    }
    let processing = sa.authz(b).await.unwrap();
    assert_eq!(processing.status, AuthzStatus::Pending);
    let challenge = processing.challenge(ChallengeType::Http01).unwrap();
    assert_eq!(challenge.status, ChallengeStatus::Processing);
    assert_eq!(challenge.validated, None);

    sa.finalize_authz(
        b,
        ChallengeType::Http01,
        outcome(AuthzStatus::Valid, start()),
    )
    .await
    .unwrap();
    let done = sa.authz(b).await.unwrap();
    assert_eq!(done.status, AuthzStatus::Valid);
    // A second outcome, on either challenge and either way, changes nothing.
    let later = start() + Duration::minutes(1);
    for kind in [ChallengeType::Http01, ChallengeType::Dns01] {
        for status in [AuthzStatus::Valid, AuthzStatus::Invalid] {
            assert_kind(
                sa.finalize_authz(b, kind, outcome(status, later)).await,
                ErrorKind::Malformed,
            );
        }
    }
    assert_eq!(sa.authz(b).await.unwrap(), done);
    assert_eq!(
        done.challenge(ChallengeType::Http01).unwrap().validated,
        Some(start())
    );
}

pub(crate) async fn an_expired_authz_takes_no_outcome(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let mut request = new_order(acct.id, start());
    request.authzs[0].expires = start() + Duration::hours(1);
    let order = sa.new_order(request).await.unwrap();
    let b = order.authz_ids[0];
    sa.set_challenge_processing(b, ChallengeType::Http01, "attempt")
        .await
        .unwrap();

    // The validation outlived the authorization: at its expiry it is over.
    clock.advance(Duration::hours(1));
    let err = assert_kind(
        sa.finalize_authz(
            b,
            ChallengeType::Http01,
            outcome(AuthzStatus::Valid, clock.now()),
        )
        .await,
        ErrorKind::Malformed,
    );
    assert!(err.detail.contains("expired"), "{err}");
    assert_kind(
        sa.finalize_authz(
            b,
            ChallengeType::Dns01,
            outcome(AuthzStatus::Invalid, clock.now()),
        )
        .await,
        ErrorKind::Malformed,
    );

    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Expired);
    assert_eq!(authz.expires, start() + Duration::hours(1));
    let challenge = authz.challenge(ChallengeType::Http01).unwrap();
    assert_eq!(challenge.status, ChallengeStatus::Processing);
    assert_eq!(challenge.validated, None);
    assert_eq!(
        sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
}

pub(crate) async fn orders_need_identifiers_and_challenges(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let nameless = NewOrder {
        identifiers: Vec::new(),
        ..new_order(acct.id, start())
    };
    assert_kind(sa.new_order(nameless).await, ErrorKind::Malformed);
    let mut unanswerable = new_order(acct.id, start());
    unanswerable.authzs[1].challenges.clear();
    assert_kind(sa.new_order(unanswerable).await, ErrorKind::Malformed);
    for table in ["orders", "authzs", "order_authzs", "challenges"] {
        assert_eq!(sa.count_rows(table).await, 0, "{table}");
    }

    // A name asked for twice is one name, and does not keep the order from being ready.
    let mut twice = new_order(acct.id, start());
    twice.identifiers.push(Identifier::dns("b.example"));
    twice.identifiers.insert(0, Identifier::dns("*.a.example"));
    let order = sa.new_order(twice).await.unwrap();
    assert_eq!(
        order.identifiers,
        vec![Identifier::dns("*.a.example"), Identifier::dns("b.example")]
    );
    assert_eq!(sa.order(order.id).await.unwrap(), order);
    validate_all(sa, &order, start()).await;
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);
}

pub(crate) async fn ip_identifiers_round_trip_and_authorize_only_ips(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let v4 = Identifier::ip("192.0.2.1");
    let v6 = Identifier::ip("2001:db8:85a3::8a2e:370:7334");
    // RFC 8738 §7: no dns-01 for an IP address.
    let ip_authz = |identifier: &Identifier, token: &str| NewAuthz {
        identifier: identifier.clone(),
        wildcard: false,
        expires: start() + Duration::days(7),
        challenges: vec![
            Challenge::pending(ChallengeType::Http01, format!("{token}-http")),
            Challenge::pending(ChallengeType::TlsAlpn01, format!("{token}-alpn")),
        ],
    };
    let order = sa
        .new_order(NewOrder {
            identifiers: vec![v6.clone(), v4.clone()],
            authzs: vec![ip_authz(&v4, "v4"), ip_authz(&v6, "v6")],
            ..new_order(acct.id, start())
        })
        .await
        .unwrap();
    assert_eq!(order.identifiers, vec![v4.clone(), v6.clone()]);
    assert_eq!(sa.order(order.id).await.unwrap(), order);
    for (id, identifier) in order.authz_ids.iter().zip([&v4, &v6]) {
        let authz = sa.authz(*id).await.unwrap();
        assert_eq!(authz.identifier, *identifier);
        assert_eq!(
            authz.challenges.iter().map(|c| c.kind).collect::<Vec<_>>(),
            vec![ChallengeType::Http01, ChallengeType::TlsAlpn01]
        );
    }
    validate_all(sa, &order, start()).await;
    assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);

    // An authorization for the address does not cover a DNS name spelled the same: if
    // the type were lost on the way to the database, this order would be ready.
    let lookalike = sa
        .new_order(NewOrder {
            identifiers: vec![Identifier::dns("192.0.2.1")],
            authzs: vec![ip_authz(&v4, "lookalike")],
            ..new_order(acct.id, start())
        })
        .await
        .unwrap();
    validate_all(sa, &lookalike, start()).await;
    let authz = sa.authz(lookalike.authz_ids[0]).await.unwrap();
    assert_eq!((authz.identifier, authz.status), (v4, AuthzStatus::Valid));
    assert_eq!(
        sa.order(lookalike.id).await.unwrap().status,
        OrderStatus::Pending
    );
}

pub(crate) async fn unicode_contacts_round_trip(sa: &SqlStorage, _clock: &FixedClock) {
    // Four-byte characters (MySQL's legacy utf8 holds three), quotes and a backslash
    // that the JSON column has to escape.
    let contacts: Vec<String> = [
        "mailto:jürgen@bücher.example",
        "mailto:管理者@例え.テスト",
        "mailto:🦀+👩‍💻@example.com",
        r#"mailto:"o'brien\ops"@example.com"#,
    ]
    .map(String::from)
    .to_vec();
    let acct = sa
        .new_account(NewAccount {
            key_jwk: jwk("thumb"),
            key_thumbprint: "thumb".into(),
            contacts: contacts.clone(),
            eab_key_id: None,
            remote_ip: None,
        })
        .await
        .unwrap();
    assert_eq!(acct.contacts, contacts);
    assert_eq!(sa.account(acct.id).await.unwrap(), acct);
    assert_eq!(sa.account_by_key("thumb").await.unwrap(), acct);

    let mut reversed = contacts;
    reversed.reverse();
    let updated = sa
        .update_account(
            acct.id,
            AccountUpdate {
                contacts: Some(reversed.clone()),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.contacts, reversed);
    assert_eq!(sa.account(acct.id).await.unwrap(), updated);
}

pub(crate) async fn times_are_kept_to_the_second(sa: &SqlStorage, clock: &FixedClock) {
    let second = |s: i64| start() + Duration::seconds(s);
    clock.advance(Duration::milliseconds(1500));
    let acct = account(sa, "thumb").await;
    assert_eq!(acct.created_at, second(1));
    assert_eq!(sa.account(acct.id).await.unwrap(), acct);

    let mut request = new_order(acct.id, clock.now());
    request.authzs[0].expires = clock.now() + Duration::days(1);
    let order = sa.new_order(request).await.unwrap();
    assert_eq!(order.created_at, second(1));
    assert_eq!(order.expires, second(1) + Duration::days(7));
    assert_eq!(sa.order(order.id).await.unwrap(), order);
    let b = order.authz_ids[0];
    assert_eq!(
        sa.authz(b).await.unwrap().expires,
        second(1) + Duration::days(1)
    );

    let validated_at = second(2) + Duration::milliseconds(999);
    sa.finalize_authz(
        b,
        ChallengeType::Http01,
        outcome(AuthzStatus::Valid, validated_at),
    )
    .await
    .unwrap();
    let authz = sa.authz(b).await.unwrap();
    assert_eq!(authz.expires, second(2) + Duration::days(30));
    assert_eq!(
        authz.challenge(ChallengeType::Http01).unwrap().validated,
        Some(second(2))
    );
}

pub(crate) async fn certificates_round_trip_byte_exact(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0c".parse().unwrap();
    // 256 KiB holding every byte value, NUL and 0xff included, and a chain whose
    // middle link is longer than MySQL's plain BLOB (64 KiB).
    let der: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    let chain: Vec<Vec<u8>> = vec![
        vec![0x30, 0x00],
        (0..=255u8).rev().cycle().take(70_000).collect(),
        b"cross-signed root".to_vec(),
    ];
    let issued_at = start() + Duration::milliseconds(250);
    sa.add_serial(&serial, acct.id, issued_at, issued_at + Duration::days(90))
        .await
        .unwrap();
    sa.add_precertificate(&serial, &der, acct.id, issued_at, &placement())
        .await
        .unwrap();
    let certificate = CertificateRecord {
        der: der.clone(),
        chain: chain.clone(),
        issued_at,
        expires_at: issued_at + Duration::days(90),
        ..record(&serial, acct.id, start())
    };
    sa.add_certificate(&certificate).await.unwrap();

    let stored = sa.certificate(&serial).await.unwrap();
    // Not assert_eq!: a failure would print a quarter of a megabyte.
    assert!(
        stored.der == der,
        "the DER came back changed: {} bytes stored, {} read",
        der.len(),
        stored.der.len()
    );
    let lengths = |chain: &[Vec<u8>]| chain.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(lengths(&stored.chain), lengths(&chain));
    assert!(stored.chain == chain, "the chain came back changed");
    assert_eq!(stored.issued_at, start());
    assert_eq!(stored.expires_at, start() + Duration::days(90));
    assert_eq!(
        (stored.status, stored.revoked_at, stored.revocation_reason),
        (CertStatus::Good, None, None)
    );

    // Twelve links, so an order by position that sorted as text ("10" < "2") shows.
    let long: Serial = "0d".parse().unwrap();
    let long_chain: Vec<Vec<u8>> = (1..=12u8).map(|i| vec![i; usize::from(i)]).collect();
    store_certificate(
        sa,
        &CertificateRecord {
            chain: long_chain.clone(),
            ..record(&long, acct.id, start())
        },
    )
    .await;
    assert_eq!(sa.certificate(&long).await.unwrap().chain, long_chain);

    // A certificate straight under a root has an empty chain.
    let bare: Serial = "0e".parse().unwrap();
    let unchained = CertificateRecord {
        chain: Vec::new(),
        ..record(&bare, acct.id, start())
    };
    store_certificate(sa, &unchained).await;
    assert_eq!(sa.certificate(&bare).await.unwrap(), unchained);
}

pub(crate) async fn a_certificate_is_stored_once(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0c".parse().unwrap();
    let first = record(&serial, acct.id, start());
    store_certificate(sa, &first).await;

    let second = CertificateRecord {
        der: b"another certificate".to_vec(),
        chain: vec![b"another intermediate".to_vec()],
        issued_at: start() + Duration::hours(1),
        ..first.clone()
    };
    let err = assert_kind(sa.add_certificate(&second).await, ErrorKind::Conflict);
    assert!(err.detail.contains("0c"), "{err}");
    assert_kind(sa.add_certificate(&first).await, ErrorKind::Conflict);
    assert_eq!(sa.certificate(&serial).await.unwrap(), first);
    for (table, rows) in [
        ("certificates", 1),
        ("certificate_chains", 2),
        ("certificate_status", 1),
    ] {
        assert_eq!(sa.count_rows(table).await, rows, "{table}");
    }

    // Storing a revoked certificate again does not make it good.
    let at = start() + Duration::hours(2);
    sa.revoke_certificate(&serial, RevocationReason::Superseded, at)
        .await
        .unwrap();
    assert_kind(sa.add_certificate(&first).await, ErrorKind::Conflict);
    let revoked = sa.certificate(&serial).await.unwrap();
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(at));
}

pub(crate) async fn a_serial_serves_only_the_account_it_was_reserved_for(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let owner = account(sa, "owner").await;
    let other = account(sa, "other").await;
    let serial: Serial = "0c".parse().unwrap();
    sa.add_serial(&serial, owner.id, start(), start() + Duration::days(90))
        .await
        .unwrap();

    // These are CA bugs, not client errors: internal, and nothing is stored.
    assert_kind(
        sa.add_precertificate(&serial, b"precert", other.id, start(), &placement())
            .await,
        ErrorKind::Internal,
    );
    assert_eq!(sa.count_rows("precertificates").await, 0);
    sa.add_precertificate(&serial, b"precert", owner.id, start(), &placement())
        .await
        .unwrap();
    assert_kind(
        sa.add_certificate(&record(&serial, other.id, start()))
            .await,
        ErrorKind::Internal,
    );
    assert_kind(sa.certificate(&serial).await, ErrorKind::NotFound);
    sa.add_certificate(&record(&serial, owner.id, start()))
        .await
        .unwrap();

    // Nor does the certificate finalize another account's order.
    let theirs = processing_order(sa, other.id).await;
    assert_kind(
        sa.finalize_order(theirs.id, &serial).await,
        ErrorKind::Internal,
    );
    assert_eq!(sa.order(theirs.id).await.unwrap(), theirs);
    assert_eq!(theirs.status, OrderStatus::Processing);
}

pub(crate) async fn only_unfinished_orders_take_an_error(sa: &SqlStorage, _clock: &FixedClock) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    let acct = account(sa, "thumb").await;
    let valid = valid_order(sa, acct.id, &serial).await;
    assert_eq!(valid.status, OrderStatus::Valid);
    let err = assert_kind(
        sa.set_order_error(valid.id, &Error::new(ErrorKind::BadCsr, "late"))
            .await,
        ErrorKind::Malformed,
    );
    assert!(err.detail.contains("valid"), "{err}");
    // Still valid, with no error and its certificate.
    assert_eq!(sa.order(valid.id).await.unwrap(), valid);
    assert_kind(
        sa.set_order_error(OrderId(1), &Error::new(ErrorKind::BadCsr, "late"))
            .await,
        ErrorKind::NotFound,
    );

    // A pending and a ready order both become invalid, each with its own error.
    let pending = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let ready = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &ready, start()).await;
    for order in [&pending, &ready] {
        let problem = Error::new(
            ErrorKind::RejectedIdentifier,
            format!("order {} refused", order.id),
        );
        sa.set_order_error(order.id, &problem).await.unwrap();
        let failed = sa.order(order.id).await.unwrap();
        assert_eq!(failed.status, OrderStatus::Invalid);
        assert_eq!(failed.error, Some(problem));
    }
    assert_kind(
        sa.set_order_processing(ready.id, "attempt").await,
        ErrorKind::OrderNotReady,
    );
}

pub(crate) async fn revocation_keeps_its_second_and_its_reason(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    for (hours, reason) in (1..).zip(REVOCATION_REASONS) {
        let serial: Serial = format!("7e{hours:02x}").parse().unwrap();
        issue(sa, acct.id, &serial, start()).await;
        let at = start() + Duration::hours(hours);
        sa.revoke_certificate(&serial, reason, at + Duration::milliseconds(750))
            .await
            .unwrap();
        assert_eq!(
            sa.certificate(&serial).await.unwrap(),
            CertificateRecord {
                status: CertStatus::Revoked,
                revoked_at: Some(at),
                revocation_reason: Some(reason),
                ..record(&serial, acct.id, start())
            },
            "{reason:?}"
        );
    }
    assert_kind(
        sa.revoke_certificate(
            &"7eff".parse().unwrap(),
            RevocationReason::KeyCompromise,
            start(),
        )
        .await,
        ErrorKind::NotFound,
    );
}

pub(crate) async fn eab_keys_keep_what_they_are_given(sa: &SqlStorage, _clock: &FixedClock) {
    let comment = "für Jürgen 🦀 \"ops\"";
    // Created within the same second: listed by key ID, descending.
    for key_id in ["kid-b", "kid-a", "kid-c"] {
        let key = EabKey {
            comment: comment.to_owned(),
            ..eab_key(key_id, start() + Duration::milliseconds(500))
        };
        sa.add_eab_key(key).await.unwrap();
    }
    let listed = sa.eab_keys().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|key| key.key_id.as_str()).collect();
    assert_eq!(ids, ["kid-c", "kid-b", "kid-a"]);
    for key in &listed {
        assert_eq!(
            *key,
            EabKey {
                comment: comment.to_owned(),
                ..eab_key(&key.key_id, start())
            }
        );
    }

    // Key IDs are opaque: one that differs only in case is another key.
    assert_kind(sa.eab_key("KID-A").await, ErrorKind::NotFound);
    sa.add_eab_key(eab_key("KID-A", start())).await.unwrap();
    assert_eq!(sa.eab_key("KID-A").await.unwrap().comment, "for KID-A");
    assert_eq!(sa.eab_key("kid-a").await.unwrap().comment, comment);

    // A key stored revoked, or already bound, is stored so, and binds no new account.
    let revoked = EabKey {
        revoked: true,
        ..eab_key("kid-revoked", start())
    };
    let bound = EabKey {
        account_id: Some(AccountId(7)),
        ..eab_key("kid-bound", start())
    };
    for key in [revoked, bound] {
        sa.add_eab_key(key.clone()).await.unwrap();
        assert_eq!(sa.eab_key(&key.key_id).await.unwrap(), key);
        assert_kind(
            eab_account(sa, &format!("thumb-{}", key.key_id), &key.key_id).await,
            ErrorKind::Unauthorized,
        );
        assert_eq!(sa.eab_key(&key.key_id).await.unwrap(), key);
    }
    assert_eq!(sa.count_rows("accounts").await, 0);
}

/// A blocked key named by `hash`, blocked by an operator at the start.
fn blocked_key(hash: [u8; 32]) -> BlockedKey {
    BlockedKey {
        spki_sha256: SpkiHash::new(hash),
        added_at: start(),
        source: BlockedKeySource::Admin,
        comment: "leaked on a paste site".to_owned(),
    }
}

/// The stored record of a blocked key, read straight from the table (the storage
/// traits only ask whether a key is blocked), and how many rows name it.
async fn stored_block(sa: &SqlStorage, hash: &SpkiHash) -> (Option<BlockedKey>, usize) {
    let rows = sqlx::query(for_engine(
        sa.engine(),
        "SELECT spki_sha256, added_at, source, comment FROM blocked_keys
         WHERE spki_sha256 = $1",
    ))
    .bind(hash.as_bytes().as_slice())
    .fetch_all(sa.pool())
    .await
    .unwrap();
    let record = rows.first().map(|row| BlockedKey {
        spki_sha256: SpkiHash::from_slice(&row.get::<Vec<u8>, _>("spki_sha256")).unwrap(),
        added_at: from_unix(row.get::<i64, _>("added_at")).unwrap(),
        source: parse_wire(&row.get::<String, _>("source"), "source").unwrap(),
        comment: row.get("comment"),
    });
    (record, rows.len())
}

pub(crate) async fn blocked_keys_are_added_once_and_found(sa: &SqlStorage, _clock: &FixedClock) {
    let first = BlockedKey {
        added_at: start() + Duration::milliseconds(700),
        ..blocked_key([0x11; 32])
    };
    let hash = first.spki_sha256;
    assert!(!sa.key_blocked(&hash).await.unwrap());
    assert_eq!(stored_block(sa, &hash).await, (None, 0));

    sa.block_key(first.clone()).await.unwrap();
    assert!(sa.key_blocked(&hash).await.unwrap());
    // Kept to the second, as every time.
    let kept = BlockedKey {
        added_at: start(),
        ..first.clone()
    };
    assert_eq!(stored_block(sa, &hash).await, (Some(kept.clone()), 1));

    // Blocking it again, even for another reason, succeeds and keeps the first record.
    let again = BlockedKey {
        added_at: start() + Duration::days(1),
        source: BlockedKeySource::KeyCompromise,
        comment: "revoked by its own key".to_owned(),
        ..first
    };
    sa.block_key(again.clone()).await.unwrap();
    sa.block_key(again).await.unwrap();
    assert!(sa.key_blocked(&hash).await.unwrap());
    assert_eq!(stored_block(sa, &hash).await, (Some(kept), 1));

    // A key blocked after a compromise is stored so, with an empty comment.
    let compromised = BlockedKey {
        source: BlockedKeySource::KeyCompromise,
        comment: String::new(),
        ..blocked_key([0x22; 32])
    };
    sa.block_key(compromised.clone()).await.unwrap();
    assert_eq!(
        stored_block(sa, &compromised.spki_sha256).await,
        (Some(compromised), 1)
    );
    assert!(!sa.key_blocked(&SpkiHash::new([0x33; 32])).await.unwrap());
}

pub(crate) async fn blocked_key_hashes_compare_byte_exact(sa: &SqlStorage, _clock: &FixedClock) {
    let mut last_one = [0u8; 32];
    last_one[31] = 1;
    let mut first_one = [0u8; 32];
    first_one[0] = 1;
    let mut high_bits = [0x80u8; 32];
    high_bits[31] = 0x81;
    let blocked = [[0u8; 32], [0xff; 32], high_bits];
    let not_blocked = [last_one, first_one, [0x80; 32], [0xfe; 32]];
    for hash in blocked {
        let key = BlockedKey {
            comment: "für Jürgen 🦀 \"ops\" ' ; --".to_owned(),
            ..blocked_key(hash)
        };
        sa.block_key(key.clone()).await.unwrap();
        assert_eq!(stored_block(sa, &key.spki_sha256).await, (Some(key), 1));
    }
    for hash in blocked {
        assert!(
            sa.key_blocked(&SpkiHash::new(hash)).await.unwrap(),
            "{hash:02x?}"
        );
    }
    // Hashes that differ in one byte or one bit, or that a collation could fold onto
    // a blocked one, are other keys.
    for hash in not_blocked {
        assert!(
            !sa.key_blocked(&SpkiHash::new(hash)).await.unwrap(),
            "{hash:02x?}"
        );
    }
}

pub(crate) async fn concurrent_blocks_of_one_key_all_succeed(sa: &SqlStorage, _clock: &FixedClock) {
    let hash = SpkiHash::new([0x5a; 32]);
    let results = concurrently((0..8).map(|i| {
        let sa = sa.clone();
        let key = BlockedKey {
            comment: format!("attempt {i}"),
            ..blocked_key(*hash.as_bytes())
        };
        async move { sa.block_key(key).await }
    }))
    .await;
    for result in results {
        result.unwrap();
    }
    assert!(sa.key_blocked(&hash).await.unwrap());
    let (record, rows) = stored_block(sa, &hash).await;
    assert_eq!(rows, 1);
    assert!(record.unwrap().comment.starts_with("attempt "));
}

/// The names of [`new_order`], in another order and with a duplicate: reuse compares
/// them as the order stores them.
fn new_order_names() -> Vec<Identifier> {
    vec![
        Identifier::dns("b.example"),
        Identifier::dns("*.a.example"),
        Identifier::dns("b.example"),
    ]
}

/// An order for `b.example` alone, with one http-01 authorization that expires with it.
fn order_for_b(account_id: AccountId, now: OffsetDateTime) -> NewOrder {
    let mut order = new_order(account_id, now);
    order.identifiers = vec![Identifier::dns("b.example")];
    order.authzs.truncate(1);
    order
}

pub(crate) async fn a_live_order_for_the_same_names_is_reused(sa: &SqlStorage, clock: &FixedClock) {
    let serial: Serial = "0a0b0c".parse().unwrap();
    // Its order is valid: never reused.
    let acct = issued(sa, "thumb", &serial).await;
    let other = account(sa, "other").await;
    let names = new_order_names();
    assert_eq!(
        sa.reusable_order(acct.id, &names, "classic").await.unwrap(),
        None
    );

    let pending = sa.new_order(new_order(acct.id, start())).await.unwrap();
    assert_eq!(
        sa.reusable_order(acct.id, &names, "classic").await.unwrap(),
        Some(pending.clone())
    );
    // Each later order is the account's newest when created, and none may be reused
    // for these names and this profile.
    let newer = |order: NewOrder| {
        clock.advance(Duration::seconds(1));
        let sa = sa.clone();
        async move { sa.new_order(order).await.unwrap() }
    };
    newer(replacing(acct.id, &serial)).await;
    newer(NewOrder {
        not_after: Some(start() + Duration::days(5)),
        ..new_order(acct.id, start())
    })
    .await;
    newer(NewOrder {
        not_before: Some(start() + Duration::days(1)),
        ..new_order(acct.id, start())
    })
    .await;
    let shortlived = newer(NewOrder {
        profile: "shortlived".into(),
        ..new_order(acct.id, start())
    })
    .await;
    let fewer = newer(order_for_b(acct.id, start())).await;
    let failed = newer(new_order(acct.id, start())).await;
    sa.set_order_error(failed.id, &Error::internal("issuance failed"))
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let processing = processing_order(sa, acct.id).await;
    assert_eq!(processing.status, OrderStatus::Processing);
    newer(new_order(other.id, start())).await;

    assert_eq!(
        sa.reusable_order(acct.id, &names, "classic").await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        sa.reusable_order(acct.id, &names, "shortlived")
            .await
            .unwrap()
            .map(|order| order.id),
        Some(shortlived.id)
    );
    assert_eq!(sa.reusable_order(acct.id, &names, "").await.unwrap(), None);
    assert_eq!(
        sa.reusable_order(acct.id, &[Identifier::dns("b.example")], "classic")
            .await
            .unwrap()
            .map(|order| order.id),
        Some(fewer.id)
    );
    assert_eq!(
        sa.reusable_order(acct.id, &[Identifier::dns("a.example")], "classic")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        sa.reusable_order(acct.id, &[], "classic").await.unwrap(),
        None
    );
    assert_eq!(
        sa.reusable_order(AccountId(1), &names, "classic")
            .await
            .unwrap(),
        None
    );

    // The newest of several candidates, also once it is ready.
    let newest = newer(new_order(acct.id, start())).await;
    let reused = sa.reusable_order(acct.id, &names, "classic").await.unwrap();
    assert_eq!(reused, Some(newest.clone()));
    validate_all(sa, &newest, clock.now()).await;
    let reused = sa.reusable_order(acct.id, &names, "classic").await.unwrap();
    assert_eq!(
        reused.map(|order| (order.id, order.status)),
        Some((newest.id, OrderStatus::Ready))
    );
    // An authorization deactivated makes it invalid: the older pending one is next.
    sa.deactivate_authz(newest.authz_ids[0]).await.unwrap();
    assert_eq!(
        sa.reusable_order(acct.id, &names, "classic").await.unwrap(),
        Some(pending.clone())
    );
    // Every order expires 7 days after start.
    clock.advance(Duration::days(7));
    assert_eq!(
        sa.reusable_order(acct.id, &names, "classic").await.unwrap(),
        None
    );
}

pub(crate) async fn authzs_for_reuse_are_valid_long_enough_or_pending(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let other = account(sa, "other").await;
    let pending = sa.new_order(new_order(acct.id, start())).await.unwrap();
    // Valid for 30 days from start.
    let valid = sa.new_order(new_order(acct.id, start())).await.unwrap();
    validate_all(sa, &valid, start()).await;
    // One invalid, one deactivated.
    let failed = sa.new_order(new_order(acct.id, start())).await.unwrap();
    sa.finalize_authz(
        failed.authz_ids[0],
        ChallengeType::Http01,
        outcome(AuthzStatus::Invalid, start()),
    )
    .await
    .unwrap();
    sa.deactivate_authz(failed.authz_ids[1]).await.unwrap();
    // Pending, expiring in an hour.
    let mut short = new_order(acct.id, start());
    for authz in &mut short.authzs {
        authz.expires = start() + Duration::hours(1);
    }
    sa.new_order(short).await.unwrap();
    // Another account's.
    sa.new_order(new_order(other.id, start())).await.unwrap();
    // Another name.
    sa.new_order(NewOrder {
        identifiers: vec![Identifier::dns("c.example")],
        authzs: vec![NewAuthz {
            identifier: Identifier::dns("c.example"),
            ..new_order(acct.id, start()).authzs.remove(0)
        }],
        ..new_order(acct.id, start())
    })
    .await
    .unwrap();

    clock.advance(Duration::hours(2));
    let names = [Identifier::dns("b.example"), Identifier::dns("a.example")];
    let ids = |authzs: &[basalt_core::Authz]| {
        let mut ids: Vec<AuthzId> = authzs.iter().map(|authz| authz.id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<AuthzId>| {
        ids.sort();
        ids
    };

    let found = sa
        .authzs_for_reuse(acct.id, &names, clock.now() + Duration::days(29))
        .await
        .unwrap();
    let expected = sorted([pending.authz_ids.clone(), valid.authz_ids.clone()].concat());
    assert_eq!(ids(&found), expected);
    // Whole authorizations, as `authz` reads them.
    for authz in &found {
        assert_eq!(*authz, sa.authz(authz.id).await.unwrap());
        assert_eq!(authz.account_id, acct.id);
    }
    // The wildcard one is found by its base name, and says it is a wildcard one.
    let wildcard = found
        .iter()
        .find(|authz| authz.id == valid.authz_ids[1])
        .unwrap();
    assert_eq!(
        (
            wildcard.identifier.clone(),
            wildcard.wildcard,
            wildcard.status
        ),
        (Identifier::dns("a.example"), true, AuthzStatus::Valid)
    );

    // Valid ones that expire too soon are left out; pending ones are not.
    let found = sa
        .authzs_for_reuse(acct.id, &names, start() + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(ids(&found), sorted(pending.authz_ids.clone()));
    // One name, asked twice.
    let found = sa
        .authzs_for_reuse(
            acct.id,
            &[Identifier::dns("b.example"), Identifier::dns("b.example")],
            clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&found),
        sorted(vec![pending.authz_ids[0], valid.authz_ids[0]])
    );
    assert_eq!(
        sa.authzs_for_reuse(acct.id, &[Identifier::ip("192.0.2.1")], clock.now())
            .await
            .unwrap(),
        Vec::new()
    );
    assert_eq!(
        sa.authzs_for_reuse(AccountId(1), &names, clock.now())
            .await
            .unwrap(),
        Vec::new()
    );
    // A valid authorization is never offered past its expiry, whatever the caller
    // asks for; pending ones expire with the clock too.
    clock.advance(Duration::days(30));
    assert_eq!(
        sa.authzs_for_reuse(acct.id, &names, start()).await.unwrap(),
        Vec::new()
    );
}

pub(crate) async fn an_order_links_reused_authzs(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let first = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let (b, a) = (first.authz_ids[0], first.authz_ids[1]);
    validate_all(sa, &first, start()).await;

    // c.example is new; b.example and *.a.example come from the first order.
    let mut request = new_order(acct.id, start());
    request.identifiers.push(Identifier::dns("c.example"));
    request.authzs = vec![NewAuthz {
        identifier: Identifier::dns("c.example"),
        ..request.authzs.remove(0)
    }];
    request.reused_authz_ids = vec![b, a];
    let second = sa.new_order(request).await.unwrap();
    let c = second.authz_ids[0];
    assert_eq!(second.authz_ids, vec![c, b, a]);
    assert_eq!(second.status, OrderStatus::Pending);
    assert_eq!(sa.order(second.id).await.unwrap(), second);
    assert_eq!(sa.count_rows("authzs").await, 3);

    sa.finalize_authz(
        c,
        ChallengeType::Http01,
        outcome(AuthzStatus::Valid, start()),
    )
    .await
    .unwrap();
    assert_eq!(
        sa.order(second.id).await.unwrap().status,
        OrderStatus::Ready
    );
    // Both orders are finalized, each with its certificate.
    for (order, serial) in [(&second, "0c0c"), (&first, "0f0f")] {
        let serial: Serial = serial.parse().unwrap();
        sa.set_order_processing(order.id, "attempt").await.unwrap();
        issue(sa, acct.id, &serial, start()).await;
        sa.finalize_order(order.id, &serial).await.unwrap();
        let done = sa.order(order.id).await.unwrap();
        assert_eq!(
            (done.status, done.certificate_serial),
            (OrderStatus::Valid, Some(serial))
        );
    }

    // An order made only of reused authorizations is ready at once when they are
    // valid; one made of a pending authorization waits for it, and so does the order
    // the authorization came from.
    let reusing = |ids: Vec<AuthzId>| NewOrder {
        authzs: Vec::new(),
        reused_authz_ids: ids,
        ..new_order(acct.id, start())
    };
    let ready = sa.new_order(reusing(vec![a, b])).await.unwrap();
    assert_eq!(
        (ready.status, ready.authz_ids.clone()),
        (OrderStatus::Ready, vec![a, b])
    );

    let third = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let fourth = sa
        .new_order(reusing(third.authz_ids.clone()))
        .await
        .unwrap();
    assert_eq!(fourth.status, OrderStatus::Pending);
    assert_eq!(fourth.authz_ids, third.authz_ids);
    validate_all(sa, &third, start()).await;
    for order in [&third, &fourth] {
        assert_eq!(sa.order(order.id).await.unwrap().status, OrderStatus::Ready);
    }
    // Deactivating a shared authorization invalidates every order that holds it.
    sa.deactivate_authz(third.authz_ids[1]).await.unwrap();
    for order in [&third, &fourth] {
        assert_eq!(
            sa.order(order.id).await.unwrap().status,
            OrderStatus::Invalid
        );
    }
}

pub(crate) async fn reused_authzs_must_still_be_usable(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let other = account(sa, "other").await;
    let mut short = new_order(acct.id, start());
    short.authzs[0].expires = start() + Duration::hours(1);
    let short = sa.new_order(short).await.unwrap();
    let deactivated = sa.new_order(new_order(acct.id, start())).await.unwrap();
    sa.deactivate_authz(deactivated.authz_ids[0]).await.unwrap();
    let failed = sa.new_order(new_order(acct.id, start())).await.unwrap();
    sa.finalize_authz(
        failed.authz_ids[0],
        ChallengeType::Http01,
        outcome(AuthzStatus::Invalid, start()),
    )
    .await
    .unwrap();
    let theirs = sa.new_order(new_order(other.id, start())).await.unwrap();
    let live = sa.new_order(new_order(acct.id, start())).await.unwrap();
    clock.advance(Duration::hours(2));
    let before = row_counts(sa).await;

    // The order for b.example and *.a.example with a new authorization for the
    // wildcard and `b` reused.
    let reusing = |b: AuthzId| {
        let mut order = new_order(acct.id, clock.now());
        order.authzs.remove(0);
        order.reused_authz_ids = vec![b];
        order
    };
    for refused in [
        short.authz_ids[0],
        deactivated.authz_ids[0],
        failed.authz_ids[0],
        theirs.authz_ids[0],
        AuthzId(1),
    ] {
        let err = assert_kind(sa.new_order(reusing(refused)).await, ErrorKind::Conflict);
        assert_eq!(
            err.detail,
            format!("authorization {refused} can no longer be reused")
        );
    }
    // An authorization for a name the order does not ask for.
    let mut unneeded = reusing(live.authz_ids[0]);
    unneeded.identifiers = vec![Identifier::dns("*.a.example")];
    let err = assert_kind(sa.new_order(unneeded).await, ErrorKind::Conflict);
    assert!(err.detail.contains(&live.authz_ids[0].to_string()), "{err}");
    // The wildcard's authorization does not stand for the base name.
    let base = NewOrder {
        identifiers: vec![Identifier::dns("a.example")],
        authzs: Vec::new(),
        reused_authz_ids: vec![live.authz_ids[1]],
        ..new_order(acct.id, clock.now())
    };
    assert_kind(sa.new_order(base).await, ErrorKind::Conflict);
    // An authorization for a name another authorization of the order covers.
    let mut twice = reusing(live.authz_ids[1]);
    twice.reused_authz_ids.push(live.authz_ids[0]);
    let err = assert_kind(sa.new_order(twice).await, ErrorKind::Conflict);
    assert!(err.detail.contains(&live.authz_ids[1].to_string()), "{err}");
    let mut repeated = reusing(live.authz_ids[0]);
    repeated.reused_authz_ids.push(live.authz_ids[0]);
    assert_kind(sa.new_order(repeated).await, ErrorKind::Conflict);
    assert_eq!(row_counts(sa).await, before);

    let order = sa.new_order(reusing(live.authz_ids[0])).await.unwrap();
    assert_eq!(order.authz_ids[1], live.authz_ids[0]);
    assert_eq!(order.status, OrderStatus::Pending);
}

/// An expired authorization stays while an order names it, and goes with the last one.
pub(crate) async fn a_shared_authz_is_purged_with_its_last_order(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    // Order and authorizations expire 7 days after start.
    let first = sa.new_order(new_order(acct.id, start())).await.unwrap();
    let second = sa
        .new_order(NewOrder {
            expires: start() + Duration::days(20),
            authzs: Vec::new(),
            reused_authz_ids: first.authz_ids.clone(),
            ..new_order(acct.id, start())
        })
        .await
        .unwrap();
    let timeout = std::time::Duration::from_secs(300);
    let retention = std::time::Duration::from_secs(86_400);

    clock.advance(Duration::days(10));
    let report = sa.maintain(timeout, retention, 100).await.unwrap();
    assert_eq!(
        (report.orders_purged, report.authzs_purged),
        (1, 0),
        "{report:?}"
    );
    assert_kind(sa.order(first.id).await, ErrorKind::NotFound);
    let kept = sa.order(second.id).await.unwrap();
    assert_eq!(
        (kept.status, kept.authz_ids),
        (OrderStatus::Invalid, first.authz_ids.clone())
    );
    for id in &first.authz_ids {
        assert_eq!(sa.authz(*id).await.unwrap().status, AuthzStatus::Expired);
    }

    clock.advance(Duration::days(12));
    let report = sa.maintain(timeout, retention, 100).await.unwrap();
    assert_eq!(
        (report.orders_purged, report.authzs_purged),
        (1, 2),
        "{report:?}"
    );
    for table in ["orders", "authzs", "order_authzs", "challenges"] {
        assert_eq!(sa.count_rows(table).await, 0, "{table}");
    }
}

pub(crate) async fn a_revocation_becomes_key_compromise_once(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let unknown: Serial = "01".parse().unwrap();
    let err = assert_kind(
        sa.rerevoke_for_key_compromise(&unknown).await,
        ErrorKind::NotFound,
    );
    assert_eq!(err.detail, "serial 01 not found");
    // Reserved, nothing signed: no status, so unknown too.
    let reserved: Serial = "02".parse().unwrap();
    sa.add_serial(&reserved, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    assert_kind(
        sa.rerevoke_for_key_compromise(&reserved).await,
        ErrorKind::NotFound,
    );

    let serial: Serial = "7e".parse().unwrap();
    issue(sa, acct.id, &serial, start()).await;
    let err = assert_kind(
        sa.rerevoke_for_key_compromise(&serial).await,
        ErrorKind::Conflict,
    );
    assert_eq!(err.detail, "serial 7e is not revoked");
    assert_eq!(
        sa.certificate(&serial).await.unwrap().status,
        CertStatus::Good
    );

    let at = start() + Duration::hours(2);
    sa.revoke_certificate(&serial, RevocationReason::Superseded, at)
        .await
        .unwrap();
    clock.advance(Duration::days(1));
    sa.rerevoke_for_key_compromise(&serial).await.unwrap();
    let stored = sa.certificate(&serial).await.unwrap();
    assert_eq!(
        (stored.status, stored.revoked_at, stored.revocation_reason),
        (
            CertStatus::Revoked,
            Some(at),
            Some(RevocationReason::KeyCompromise)
        )
    );
    let err = assert_kind(
        sa.rerevoke_for_key_compromise(&serial).await,
        ErrorKind::AlreadyRevoked,
    );
    assert!(err.detail.contains("keyCompromise"), "{err}");

    // A serial with only its precertificate, revoked for another reason.
    let precert: Serial = "7f".parse().unwrap();
    sa.add_serial(&precert, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    sa.add_precertificate(&precert, b"precert", acct.id, start(), &placement())
        .await
        .unwrap();
    sa.revoke_certificate(&precert, RevocationReason::Unspecified, at)
        .await
        .unwrap();
    sa.rerevoke_for_key_compromise(&precert).await.unwrap();
    let status = sa.revocation_status(&precert).await.unwrap();
    assert_eq!(
        (
            status.precertificate,
            status.revoked_at,
            status.revocation_reason
        ),
        (true, Some(at), Some(RevocationReason::KeyCompromise))
    );

    // Revoked for keyCompromise in the first place.
    let compromised: Serial = "80".parse().unwrap();
    issue(sa, acct.id, &compromised, start()).await;
    sa.revoke_certificate(&compromised, RevocationReason::KeyCompromise, at)
        .await
        .unwrap();
    assert_kind(
        sa.rerevoke_for_key_compromise(&compromised).await,
        ErrorKind::AlreadyRevoked,
    );

    // Of concurrent calls, one changes the reason.
    let raced: Serial = "81".parse().unwrap();
    issue(sa, acct.id, &raced, start()).await;
    sa.revoke_certificate(&raced, RevocationReason::CessationOfOperation, at)
        .await
        .unwrap();
    let results = concurrently((0..8).map(|_| {
        let sa = sa.clone();
        let raced = raced.clone();
        async move { sa.rerevoke_for_key_compromise(&raced).await }
    }))
    .await;
    the_one_winner(results, ErrorKind::AlreadyRevoked);
    let stored = sa.certificate(&raced).await.unwrap();
    assert_eq!(
        (stored.revoked_at, stored.revocation_reason),
        (Some(at), Some(RevocationReason::KeyCompromise))
    );
}

fn new_incident(name: &str, serials: &[&Serial]) -> NewIncident {
    NewIncident {
        name: name.to_owned(),
        url: format!("https://status.example/{name}"),
        serials: serials.iter().map(|serial| (*serial).clone()).collect(),
    }
}

pub(crate) async fn incidents_are_declared_listed_and_found(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let (one, two, reserved): (Serial, Serial, Serial) = (
        "0a01".parse().unwrap(),
        "0a02".parse().unwrap(),
        "0a03".parse().unwrap(),
    );
    issue(sa, acct.id, &one, start()).await;
    issue(sa, acct.id, &two, start()).await;
    sa.add_serial(&reserved, acct.id, start(), start() + Duration::days(90))
        .await
        .unwrap();
    assert_eq!(sa.incidents().await.unwrap(), Vec::new());
    assert_eq!(sa.incident_for_serial(&one).await.unwrap(), None);

    // A serial named twice counts once.
    let first = sa
        .add_incident(new_incident("first", &[&one, &reserved, &one]))
        .await
        .unwrap();
    assert!(first.id > 0);
    assert_eq!(
        (
            first.name.as_str(),
            first.url.as_str(),
            first.created_at,
            first.serials
        ),
        ("first", "https://status.example/first", start(), 2)
    );
    assert_eq!(
        sa.incident_for_serial(&one).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        sa.incident_for_serial(&reserved).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(sa.incident_for_serial(&two).await.unwrap(), None);

    clock.advance(Duration::hours(1));
    let second = sa
        .add_incident(NewIncident {
            url: String::new(),
            ..new_incident("second", &[&two, &one])
        })
        .await
        .unwrap();
    assert_eq!(
        (second.url.as_str(), second.created_at, second.serials),
        ("", start() + Duration::hours(1), 2)
    );
    assert_ne!(second.id, first.id);
    // The newest incident that names a serial.
    assert_eq!(
        sa.incident_for_serial(&one).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        sa.incident_for_serial(&two).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        sa.incident_for_serial(&reserved).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        sa.incidents().await.unwrap(),
        vec![second.clone(), first.clone()]
    );

    // Refused, and nothing written.
    let before = (
        sa.count_rows("incidents").await,
        sa.count_rows("incident_serials").await,
    );
    let err = assert_kind(
        sa.add_incident(new_incident("first", &[&two])).await,
        ErrorKind::Conflict,
    );
    assert!(err.detail.contains("\"first\""), "{err}");
    let (unknown, also_unknown): (Serial, Serial) =
        ("0b01".parse().unwrap(), "0b02".parse().unwrap());
    let err = assert_kind(
        sa.add_incident(new_incident("third", &[&two, &unknown, &also_unknown]))
            .await,
        ErrorKind::Malformed,
    );
    assert_eq!(err.detail, "serial 0b01 is not one this CA used");
    assert_kind(
        sa.add_incident(new_incident("third", &[])).await,
        ErrorKind::Malformed,
    );
    assert_kind(
        sa.add_incident(new_incident(" ", &[&two])).await,
        ErrorKind::Malformed,
    );
    assert_kind(
        sa.add_incident(new_incident(&"x".repeat(256), &[&two]))
            .await,
        ErrorKind::Malformed,
    );
    assert_eq!(
        (
            sa.count_rows("incidents").await,
            sa.count_rows("incident_serials").await
        ),
        before
    );
    assert_eq!(sa.incidents().await.unwrap().len(), 2);

    // Names compare exactly on every engine; the longest name fits.
    clock.advance(Duration::seconds(1));
    let upper = sa
        .add_incident(new_incident("FIRST", &[&two]))
        .await
        .unwrap();
    assert_eq!(upper.name, "FIRST");
    let long = sa
        .add_incident(new_incident(&"x".repeat(255), &[&two]))
        .await
        .unwrap();
    assert_eq!(sa.incidents().await.unwrap().len(), 4);
    assert_eq!(sa.incident_for_serial(&one).await.unwrap(), Some(second));
    // Same second: the tie goes to the larger ID, as the listing orders them.
    let newest_for_two = sa.incident_for_serial(&two).await.unwrap().unwrap();
    assert_eq!(newest_for_two.id, upper.id.max(long.id));
    assert_eq!(sa.incidents().await.unwrap()[0], newest_for_two);
}

pub(crate) async fn concurrent_incidents_of_one_name_let_one_through(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0a01".parse().unwrap();
    issue(sa, acct.id, &serial, start()).await;
    let results = concurrently((0..8).map(|_| {
        let sa = sa.clone();
        let incident = new_incident("outage", &[&serial]);
        async move { sa.add_incident(incident).await }
    }))
    .await;
    let won = the_one_winner(results, ErrorKind::Conflict);
    assert_eq!(sa.incidents().await.unwrap(), vec![won]);
    assert_eq!(sa.count_rows("incident_serials").await, 1);
}

/// The placement a precertificate is stored with comes back, byte-exact, with its
/// status changes, and stays when the certificate is stored; a row stored before
/// placements were (both columns NULL) has none. A placement whose issuer key hash
/// is not a SHA-1 is a CA bug: refused, and nothing is stored.
pub(crate) async fn placements_are_stored_and_reported_with_status_changes(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let expires = start() + Duration::days(90);
    let mut issuer = vec![0xa1; 20];
    (issuer[0], issuer[19]) = (0x00, 0xff);
    let last_shard = CrlPlacement {
        issuer_key_hash: issuer,
        shard: Some(u32::MAX),
    };
    let no_shard = CrlPlacement {
        issuer_key_hash: vec![0xa2; 20],
        shard: None,
    };
    let sharded: Serial = "c1".parse().unwrap();
    let unsharded: Serial = "c2".parse().unwrap();
    let old: Serial = "c3".parse().unwrap();
    let issued: Serial = "c4".parse().unwrap();
    precertificate(sa, acct.id, &sharded, expires, &last_shard).await;
    precertificate(sa, acct.id, &unsharded, expires, &no_shard).await;
    precertificate(sa, acct.id, &old, expires, &placement()).await;
    store_certificate(sa, &record(&issued, acct.id, start())).await;
    // As a row stored before the placement migration holds it.
    sqlx::query(for_engine(
        sa.engine(),
        "UPDATE certificate_status SET issuer_key_hash = NULL, crl_shard = NULL
         WHERE serial = $1",
    ))
    .bind(old.to_string())
    .execute(sa.pool())
    .await
    .unwrap();

    let change = |serial: &Serial, placement: Option<CrlPlacement>| StatusChange {
        serial: serial.clone(),
        status: CertStatus::Good,
        changed_at: start(),
        placement,
    };
    assert_eq!(
        sa.status_changes(start(), 10).await.unwrap(),
        [
            change(&sharded, Some(last_shard.clone())),
            change(&unsharded, Some(no_shard)),
            change(&old, None),
            change(&issued, Some(placement())),
        ]
    );
    // A row stored before placements is revoked as any other, and listed on no shard.
    sa.revoke_certificate(&old, RevocationReason::KeyCompromise, start())
        .await
        .unwrap();
    assert_eq!(
        sa.revoked_certificates(&placement().issuer_key_hash, 0, start())
            .await
            .unwrap(),
        []
    );

    for length in [0, 19, 32] {
        let serial: Serial = format!("c5{length:02x}").parse().unwrap();
        sa.add_serial(&serial, acct.id, start(), expires)
            .await
            .unwrap();
        let bad = CrlPlacement {
            issuer_key_hash: vec![0xa3; length],
            shard: Some(1),
        };
        let err = assert_kind(
            sa.add_precertificate(&serial, b"precert", acct.id, start(), &bad)
                .await,
            ErrorKind::Internal,
        );
        assert!(err.detail.contains("issuer_key_hash"), "{err}");
        assert_kind(sa.revocation_status(&serial).await, ErrorKind::NotFound);
    }
    assert_eq!(sa.count_rows("precertificates").await, 4);
    assert_eq!(sa.count_rows("certificate_status").await, 4);
}

/// A CRL shard lists the revoked certificates of its issuer and shard only, that
/// expire after the given time, by serial, each with its revocation time (to the
/// second) and its reason as it stands after a re-revocation.
pub(crate) async fn revoked_certificates_list_one_shard(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let issuer = vec![0x5a; 20];
    let other_issuer = vec![0x5b; 20];
    let on = |issuer: &[u8], shard: Option<u32>| CrlPlacement {
        issuer_key_hash: issuer.to_vec(),
        shard,
    };
    let expires_after = start() + Duration::days(30);
    let live = start() + Duration::days(90);
    use RevocationReason::*;
    // Serial, placement, expiry, reason (None: not revoked), and whether shard 7 of
    // `issuer` lists it. "0100" is numerically the greatest but sorts first, as
    // serials compare (their bytes, as their hex text).
    let cases: [(
        &str,
        CrlPlacement,
        OffsetDateTime,
        Option<RevocationReason>,
        bool,
    ); 10] = [
        ("d2", on(&issuer, Some(7)), live, Some(Superseded), true),
        ("d1", on(&issuer, Some(7)), live, Some(Unspecified), true),
        (
            "0100",
            on(&issuer, Some(7)),
            live,
            Some(AffiliationChanged),
            true,
        ),
        (
            "d3",
            on(&issuer, Some(7)),
            expires_after,
            Some(Superseded),
            false,
        ),
        (
            "d4",
            on(&issuer, Some(7)),
            start() + Duration::days(10),
            Some(KeyCompromise),
            false,
        ),
        ("d5", on(&issuer, Some(7)), live, None, false),
        ("d6", on(&issuer, Some(8)), live, Some(KeyCompromise), false),
        (
            "d7",
            on(&other_issuer, Some(7)),
            live,
            Some(KeyCompromise),
            false,
        ),
        ("d8", on(&issuer, None), live, Some(KeyCompromise), false),
        (
            "d9",
            on(&issuer, Some(7)),
            expires_after + Duration::seconds(1),
            Some(CessationOfOperation),
            true,
        ),
    ];
    let mut expected = Vec::new();
    for (hours, (serial, placement, expires, reason, listed)) in (1..).zip(&cases) {
        let serial: Serial = serial.parse().unwrap();
        precertificate(sa, acct.id, &serial, *expires, placement).await;
        let Some(reason) = *reason else { continue };
        let at = start() + Duration::hours(hours);
        sa.revoke_certificate(&serial, reason, at + Duration::milliseconds(250))
            .await
            .unwrap();
        if *listed {
            expected.push(RevokedEntry {
                serial,
                revoked_at: at,
                reason,
            });
        }
    }
    // d2 is re-revoked for keyCompromise: listed with its new reason, its time kept.
    let d2: Serial = "d2".parse().unwrap();
    sa.rerevoke_for_key_compromise(&d2).await.unwrap();
    for entry in &mut expected {
        if entry.serial == d2 {
            entry.reason = KeyCompromise;
        }
    }
    expected.sort_by(|a, b| a.serial.cmp(&b.serial));
    assert_eq!(
        expected
            .iter()
            .map(|entry| entry.serial.to_string())
            .collect::<Vec<_>>(),
        ["0100", "d1", "d2", "d9"]
    );

    assert_eq!(
        sa.revoked_certificates(&issuer, 7, expires_after)
            .await
            .unwrap(),
        expected
    );
    let serials = |entries: Vec<RevokedEntry>| {
        entries
            .into_iter()
            .map(|entry| entry.serial.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        serials(
            sa.revoked_certificates(&issuer, 8, expires_after)
                .await
                .unwrap()
        ),
        ["d6"]
    );
    assert_eq!(
        serials(
            sa.revoked_certificates(&other_issuer, 7, expires_after)
                .await
                .unwrap()
        ),
        ["d7"]
    );
    // An earlier cut-off lists what had not expired by then.
    assert_eq!(
        serials(
            sa.revoked_certificates(
                &issuer,
                7,
                start() + Duration::days(10) - Duration::seconds(1)
            )
            .await
            .unwrap()
        ),
        ["0100", "d1", "d2", "d3", "d4", "d9"]
    );
    assert_eq!(
        sa.revoked_certificates(&issuer, 9, expires_after)
            .await
            .unwrap(),
        []
    );
    for length in [0, 19, 21] {
        let err = assert_kind(
            sa.revoked_certificates(&vec![0x5a; length], 7, expires_after)
                .await,
            ErrorKind::Malformed,
        );
        assert!(err.detail.contains("issuer_key_hash"), "{err}");
    }
}

/// The feed lists each serial once, at the last time its status was written (the
/// precertificate, a revocation, a re-revocation; not the certificate, which leaves
/// the status as it is), ordered by that time then serial, from `since` on (taken to
/// the second), at most `limit`.
pub(crate) async fn status_changes_follow_writes_in_order(sa: &SqlStorage, clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let expires = start() + Duration::days(90);
    let at = |seconds: i64| start() + Duration::seconds(seconds);
    let (e1, e2, e3): (Serial, Serial, Serial) = (
        "e1".parse().unwrap(),
        "e2".parse().unwrap(),
        "e3".parse().unwrap(),
    );
    let feed = |since: OffsetDateTime, limit: u32| {
        let sa = sa.clone();
        async move {
            sa.status_changes(since, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|change| {
                    assert_eq!(change.placement, Some(placement()));
                    (change.serial.to_string(), change.status, change.changed_at)
                })
                .collect::<Vec<_>>()
        }
    };
    let good = CertStatus::Good;
    let revoked = CertStatus::Revoked;

    // Two in the same second, stored out of serial order; a third ten seconds on.
    clock.advance(Duration::milliseconds(400));
    precertificate(sa, acct.id, &e2, expires, &placement()).await;
    precertificate(sa, acct.id, &e1, expires, &placement()).await;
    clock.advance(Duration::seconds(10));
    precertificate(sa, acct.id, &e3, expires, &placement()).await;
    let all = vec![
        ("e1".to_owned(), good, at(0)),
        ("e2".to_owned(), good, at(0)),
        ("e3".to_owned(), good, at(10)),
    ];
    assert_eq!(feed(start() - Duration::days(1), 100).await, all);
    assert_eq!(feed(start(), 100).await, all);
    assert_eq!(feed(start(), 2).await, all[..2]);
    assert_eq!(feed(start(), 1).await, all[..1]);
    assert_eq!(feed(at(1), 100).await, all[2..]);
    assert_eq!(
        feed(at(10) + Duration::milliseconds(999), 100).await,
        all[2..]
    );
    assert_eq!(feed(at(11), 100).await, []);

    // Storing the certificate changes no status.
    clock.advance(Duration::seconds(10));
    sa.add_certificate(&record(&e2, acct.id, start()))
        .await
        .unwrap();
    assert_eq!(feed(start(), 100).await, all);

    // A revocation is a change at the time it is written, whatever time it gives.
    clock.advance(Duration::seconds(10));
    sa.revoke_certificate(&e1, RevocationReason::Superseded, start())
        .await
        .unwrap();
    assert_eq!(
        feed(start(), 100).await,
        [
            ("e2".to_owned(), good, at(0)),
            ("e3".to_owned(), good, at(10)),
            ("e1".to_owned(), revoked, at(30)),
        ]
    );
    assert_eq!(
        feed(at(11), 100).await,
        [("e1".to_owned(), revoked, at(30))]
    );

    // So is a re-revocation for keyCompromise; a refused one is none.
    clock.advance(Duration::seconds(10));
    sa.rerevoke_for_key_compromise(&e1).await.unwrap();
    clock.advance(Duration::seconds(10));
    assert_kind(
        sa.rerevoke_for_key_compromise(&e1).await,
        ErrorKind::AlreadyRevoked,
    );
    assert_kind(
        sa.revoke_certificate(&e1, RevocationReason::KeyCompromise, start())
            .await,
        ErrorKind::AlreadyRevoked,
    );
    assert_eq!(
        feed(at(31), 100).await,
        [("e1".to_owned(), revoked, at(40))]
    );
    assert_eq!(
        feed(start(), 100).await,
        [
            ("e2".to_owned(), good, at(0)),
            ("e3".to_owned(), good, at(10)),
            ("e1".to_owned(), revoked, at(40)),
        ]
    );
}

/// A feed page holds 1 to 10 000 changes; any other limit is malformed, naming it.
pub(crate) async fn status_change_limits_are_checked(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "f1".parse().unwrap();
    precertificate(
        sa,
        acct.id,
        &serial,
        start() + Duration::days(90),
        &placement(),
    )
    .await;
    for limit in [0, 10_001, u32::MAX] {
        let err = assert_kind(
            sa.status_changes(start(), limit).await,
            ErrorKind::Malformed,
        );
        assert!(err.detail.contains("limit"), "{limit}: {err}");
    }
    for limit in [1, 10_000] {
        let changes = sa.status_changes(start(), limit).await.unwrap();
        assert_eq!(changes.len(), 1, "{limit}");
        assert_eq!(changes[0].serial, serial);
    }
}

/// A certificate for `names` (DNS names, or IP addresses where they parse as one)
/// with `key`: what the SA reads a precertificate's names and key from.
pub(crate) fn certificate_der(names: &[&str], key: &rcgen::KeyPair) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(key)
        .unwrap()
        .der()
        .to_vec()
}

/// The SHA-256 of `key`'s SubjectPublicKeyInfo, as searches name keys.
pub(crate) fn key_hash(key: &rcgen::KeyPair) -> SpkiHash {
    basalt_policy::spki_sha256(&rcgen::PublicKeyData::subject_public_key_info(key))
}

/// Reserves `serial` for 90 days from `not_before` and stores `der` as its
/// precertificate, as the CA does; with `certificate`, then the certificate too.
async fn issue_der(
    sa: &SqlStorage,
    account_id: AccountId,
    serial: &Serial,
    der: &[u8],
    not_before: OffsetDateTime,
    certificate: bool,
) {
    let not_after = not_before + Duration::days(90);
    sa.add_serial(serial, account_id, not_before, not_after)
        .await
        .unwrap();
    sa.add_precertificate(serial, der, account_id, not_before, &placement())
        .await
        .unwrap();
    if certificate {
        sa.add_certificate(&CertificateRecord {
            der: der.to_vec(),
            issued_at: not_before,
            expires_at: not_after,
            ..record(serial, account_id, not_before)
        })
        .await
        .unwrap();
    }
}

/// Every certificate `selector` finds, newest first.
async fn found(sa: &SqlStorage, selector: CertificateSelector) -> Vec<String> {
    search(sa, selector, false, 0)
        .await
        .iter()
        .map(|summary| summary.serial.to_string())
        .collect()
}

async fn search(
    sa: &SqlStorage,
    selector: CertificateSelector,
    active_only: bool,
    limit: u32,
) -> Vec<CertificateSummary> {
    sa.search_certificates(&CertificateQuery {
        selector,
        active_only,
        limit,
    })
    .await
    .unwrap()
}

fn by_name(name: &str, subdomains: bool) -> CertificateSelector {
    let identifier = if name.parse::<IpAddr>().is_ok() {
        Identifier::ip(name)
    } else {
        Identifier::dns(name)
    };
    CertificateSelector::Name {
        identifier,
        subdomains,
    }
}

/// A name finds the certificates that carry it, and with subdomains those that
/// carry a name under it (a wildcard included) but not a sibling that only shares
/// its first letters; an account finds its own, a key those it certifies. A serial
/// whose certificate was never stored is found like the others, newest first.
pub(crate) async fn certificates_are_found_by_name_account_and_key(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let (alice, bob) = (account(sa, "alice").await, account(sa, "bob").await);
    let (first_key, second_key) = (
        rcgen::KeyPair::generate().unwrap(),
        rcgen::KeyPair::generate().unwrap(),
    );
    let hour = |n: i64| start() + Duration::hours(n);
    let apex = certificate_der(&["example.com", "www.example.com"], &first_key);
    issue_der(sa, alice.id, &"a1".parse().unwrap(), &apex, hour(0), true).await;
    let shop = certificate_der(&["*.shop.example.com", "192.0.2.7"], &second_key);
    issue_der(sa, alice.id, &"a2".parse().unwrap(), &shop, hour(1), true).await;
    let siblings = certificate_der(
        &["examples.com", "example-1.com", "example.com.evil.test"],
        &first_key,
    );
    issue_der(sa, bob.id, &"b3".parse().unwrap(), &siblings, hour(2), true).await;
    let again = certificate_der(&["example.com"], &first_key);
    issue_der(sa, alice.id, &"a4".parse().unwrap(), &again, hour(3), false).await;

    assert_eq!(found(sa, by_name("example.com", false)).await, ["a4", "a1"]);
    assert_eq!(
        found(sa, by_name("EXAMPLE.com.", false)).await,
        ["a4", "a1"]
    );
    assert_eq!(
        found(sa, by_name("example.com", true)).await,
        ["a4", "a2", "a1"]
    );
    assert_eq!(found(sa, by_name("www.example.com", false)).await, ["a1"]);
    assert_eq!(
        found(sa, by_name("*.shop.example.com", false)).await,
        ["a2"]
    );
    assert!(
        found(sa, by_name("shop.example.com", false))
            .await
            .is_empty()
    );
    assert_eq!(found(sa, by_name("shop.example.com", true)).await, ["a2"]);
    assert_eq!(found(sa, by_name("examples.com", true)).await, ["b3"]);
    assert_eq!(found(sa, by_name("192.0.2.7", false)).await, ["a2"]);
    assert!(found(sa, by_name("192.0.2.8", false)).await.is_empty());
    assert!(found(sa, by_name("com", false)).await.is_empty());
    assert_eq!(
        found(sa, by_name("com", true)).await,
        ["a4", "b3", "a2", "a1"],
        "each of them names something under com"
    );

    let account_of = |id| CertificateSelector::Account(id);
    assert_eq!(found(sa, account_of(alice.id)).await, ["a4", "a2", "a1"]);
    assert_eq!(found(sa, account_of(bob.id)).await, ["b3"]);
    assert!(found(sa, account_of(AccountId(42))).await.is_empty());
    assert_eq!(
        found(sa, CertificateSelector::Key(key_hash(&first_key))).await,
        ["a4", "b3", "a1"]
    );
    assert_eq!(
        found(sa, CertificateSelector::Key(key_hash(&second_key))).await,
        ["a2"]
    );
    let unknown_key = rcgen::KeyPair::generate().unwrap();
    assert!(
        found(sa, CertificateSelector::Key(key_hash(&unknown_key)))
            .await
            .is_empty()
    );

    let summaries = search(sa, by_name("www.example.com", false), false, 0).await;
    assert_eq!(
        summaries,
        [CertificateSummary {
            serial: "a1".parse().unwrap(),
            account_id: alice.id,
            names: vec![
                Identifier::dns("example.com"),
                Identifier::dns("www.example.com")
            ],
            not_before: start(),
            not_after: start() + Duration::days(90),
            status: CertStatus::Good,
            revoked_at: None,
            revocation_reason: None,
        }]
    );
    let ip = search(sa, by_name("192.0.2.7", false), false, 0).await;
    assert_eq!(
        ip[0].names,
        [
            Identifier::dns("*.shop.example.com"),
            Identifier::ip("192.0.2.7")
        ]
    );

    for (selector, what) in [
        (by_name("", false), "an empty name"),
        (by_name("a..example.com", true), "an empty label"),
        (by_name("192.0.2.7", true), "subdomains of an address"),
    ] {
        let query = CertificateQuery {
            selector,
            active_only: false,
            limit: 0,
        };
        let err = sa.search_certificates(&query).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{what}: {err}");
    }
}

/// A revoked certificate shows its reason and time; `active_only` leaves out the
/// revoked and the expired, at the SA's now.
pub(crate) async fn searches_show_revocations_and_keep_to_active_certificates(
    sa: &SqlStorage,
    clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let key = rcgen::KeyPair::generate().unwrap();
    let der = certificate_der(&["status.example"], &key);
    let [revoked, expired, live]: [Serial; 3] = ["01", "02", "03"].map(|s| s.parse().unwrap());
    issue_der(sa, acct.id, &revoked, &der, start(), true).await;
    issue_der(
        sa,
        acct.id,
        &expired,
        &der,
        start() - Duration::days(89),
        false,
    )
    .await;
    issue_der(sa, acct.id, &live, &der, start() + Duration::hours(1), true).await;
    let revoked_at = start() + Duration::hours(2);
    sa.revoke_certificate(&revoked, RevocationReason::KeyCompromise, revoked_at)
        .await
        .unwrap();
    clock.advance(Duration::days(1) + Duration::hours(3));

    let selectors = [
        by_name("status.example", false),
        CertificateSelector::Account(acct.id),
        CertificateSelector::Key(key_hash(&key)),
    ];
    for selector in selectors {
        let all = search(sa, selector.clone(), false, 0).await;
        let statuses: Vec<(String, CertStatus, Option<RevocationReason>)> = all
            .iter()
            .map(|s| (s.serial.to_string(), s.status, s.revocation_reason))
            .collect();
        assert_eq!(
            statuses,
            [
                ("03".to_owned(), CertStatus::Good, None),
                (
                    "01".to_owned(),
                    CertStatus::Revoked,
                    Some(RevocationReason::KeyCompromise)
                ),
                ("02".to_owned(), CertStatus::Good, None),
            ],
            "{selector:?}"
        );
        assert_eq!(all[1].revoked_at, Some(revoked_at), "{selector:?}");
        assert!(all[2].not_after < clock.now(), "{selector:?}");
        let active: Vec<String> = search(sa, selector.clone(), true, 0)
            .await
            .iter()
            .map(|s| s.serial.to_string())
            .collect();
        assert_eq!(active, ["03"], "{selector:?}");
    }
}

/// Newest first by notBefore, then by serial; a limit keeps the newest.
pub(crate) async fn searches_are_newest_first_and_limited(sa: &SqlStorage, _clock: &FixedClock) {
    let acct = account(sa, "thumb").await;
    let key = rcgen::KeyPair::generate().unwrap();
    let der = certificate_der(&["order.example"], &key);
    for (serial, hours) in [("10", 0), ("30", 1), ("20", 1), ("40", 2)] {
        let not_before = start() + Duration::hours(hours);
        issue_der(
            sa,
            acct.id,
            &serial.parse().unwrap(),
            &der,
            not_before,
            true,
        )
        .await;
    }
    for selector in [
        by_name("order.example", false),
        CertificateSelector::Account(acct.id),
        CertificateSelector::Key(key_hash(&key)),
    ] {
        let serials = |limit| {
            let selector = selector.clone();
            async move {
                search(sa, selector, false, limit)
                    .await
                    .iter()
                    .map(|s| s.serial.to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(serials(0).await, ["40", "30", "20", "10"], "{selector:?}");
        assert_eq!(serials(2).await, ["40", "30"], "{selector:?}");
        assert_eq!(serials(1).await, ["40"], "{selector:?}");
        assert_eq!(serials(u32::MAX).await.len(), 4, "{selector:?}");
    }
}

/// A precertificate the SA cannot read (the CA sends linted certificates only, so
/// this is a bug) is stored all the same, unindexed: found by its account, without
/// names, and by no name or key.
pub(crate) async fn unreadable_precertificates_are_found_by_account_only(
    sa: &SqlStorage,
    _clock: &FixedClock,
) {
    let acct = account(sa, "thumb").await;
    let serial: Serial = "0bad".parse().unwrap();
    issue_der(sa, acct.id, &serial, b"precert", start(), false).await;
    let summaries = search(sa, CertificateSelector::Account(acct.id), false, 0).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].serial, serial);
    assert!(summaries[0].names.is_empty(), "{summaries:?}");
    assert_eq!(
        sa.revocation_status(&serial).await.unwrap().status,
        CertStatus::Good
    );
    let rows = sqlx::query(for_engine(
        sa.engine(),
        "SELECT COUNT(*) AS n FROM issued_names",
    ))
    .fetch_one(sa.pool())
    .await
    .unwrap();
    assert_eq!(rows.get::<i64, _>("n"), 0);
}
