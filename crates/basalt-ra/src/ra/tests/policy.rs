//! Order and authorization reuse, rate limits, and every revocation path.

use basalt_ratelimit::Limiter;
use basalt_ratelimit::RateLimitsConfig;

use super::*;

/// The harness, with in-process rate limits from this `[rate_limits]` TOML body.
fn limited(limits: &str) -> Harness {
    let config: RateLimitsConfig = basalt_config::parse(limits).unwrap();
    let mut h = harness();
    let ra = std::mem::replace(
        &mut h.ra,
        Ra::new(
            RaSettings::with_defaults(PREFIX),
            h.sa.clone(),
            h.va.clone(),
            h.ca.clone(),
            Arc::new(h.clock.clone()),
        ),
    );
    h.ra = ra.with_limiter(Limiter::new(&config).unwrap());
    h
}

// --- Reuse -------------------------------------------------------------------

#[tokio::test]
async fn an_identical_new_order_returns_the_pending_order() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let first = h.order(&account, &["b.example", "a.example"]).await;
    let again = h
        .order(&account, &["a.example", "b.example", "a.example"])
        .await;
    assert_eq!(again.id, first.id);
    assert_eq!(h.sa.lock().orders.len(), 1);

    // Another profile, a window or a replacement make a new order.
    let windowed =
        h.ra.new_order(OrderRequest {
            not_after: Some(h.clock.now() + time::Duration::days(10)),
            ..order_request(account.id, &["a.example", "b.example"])
        })
        .await
        .unwrap();
    assert_ne!(windowed.id, first.id);
    // …which shares the first order's pending authorizations instead of new ones.
    assert_eq!(windowed.authz_ids, first.authz_ids);
    assert_eq!(h.sa.lock().authzs.len(), 2);

    // Another account gets its own order and authorizations.
    let other = h.account("other").await;
    let theirs = h.order(&other, &["a.example", "b.example"]).await;
    assert_ne!(theirs.id, first.id);
    assert_eq!(h.sa.lock().authzs.len(), 4);
}

#[tokio::test]
async fn a_ready_order_is_reused_and_an_invalid_one_is_not() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    let account = order.account_id;
    let again =
        h.ra.new_order(order_request(account, &["a.example"]))
            .await
            .unwrap();
    assert_eq!((again.id, again.status), (order.id, OrderStatus::Ready));

    h.sa.lock().orders.get_mut(&order.id).unwrap().status = OrderStatus::Invalid;
    let fresh =
        h.ra.new_order(order_request(account, &["a.example"]))
            .await
            .unwrap();
    assert_ne!(fresh.id, order.id);
    // Its authorization is the valid one, reused: no new validation is needed.
    assert_eq!(fresh.authz_ids, order.authz_ids);
    assert_eq!(
        h.sa.order(fresh.id).await.unwrap().status,
        OrderStatus::Ready
    );
}

#[tokio::test]
async fn a_valid_authorization_spares_a_new_validation() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    let validations = h.va.requests.lock().unwrap().len();
    let bigger =
        h.ra.new_order(order_request(order.account_id, &["a.example", "b.example"]))
            .await
            .unwrap();
    assert!(bigger.authz_ids.contains(&order.authz_ids[0]));
    assert_eq!(bigger.status, OrderStatus::Pending);
    h.validate_all(&bigger).await;
    // Only b.example was validated.
    let requests = h.va.requests.lock().unwrap();
    assert_eq!(requests.len(), validations + 1);
    assert_eq!(
        requests.last().unwrap().identifier,
        Identifier::dns("b.example")
    );
}

#[tokio::test]
async fn an_authorization_close_to_expiry_is_not_reused() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    // 30 days of validity, less than a day left.
    h.clock
        .advance(time::Duration::days(29) + time::Duration::hours(1));
    let bigger =
        h.ra.new_order(order_request(order.account_id, &["a.example", "b.example"]))
            .await
            .unwrap();
    assert!(!bigger.authz_ids.contains(&order.authz_ids[0]));
    assert_eq!(bigger.authz_ids.len(), 2);
}

#[tokio::test]
async fn a_profile_wanting_fresh_validations_gets_them() {
    let mut settings = RaSettings::with_defaults(PREFIX);
    let mut fresh = ProfileSettings::classic();
    fresh.valid_authz_lifetime = Duration::from_secs(3600);
    settings.profiles.insert("fresh".to_owned(), fresh);
    let h = harness_with(settings);
    let order = h.ready_order(&["a.example"]).await;
    h.clock.advance(time::Duration::hours(2));
    let classic =
        h.ra.new_order(order_request(order.account_id, &["a.example", "b.example"]))
            .await
            .unwrap();
    assert!(classic.authz_ids.contains(&order.authz_ids[0]));
    let fresh =
        h.ra.new_order(in_profile(order.account_id, &["a.example"], "fresh"))
            .await
            .unwrap();
    assert!(!fresh.authz_ids.contains(&order.authz_ids[0]));
}

#[tokio::test]
async fn losing_a_reuse_race_creates_new_authorizations() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let first = h.order(&account, &["a.example"]).await;
    // The SA refuses the reuse, as when the authorization was deactivated between
    // the RA's read and its write.
    h.sa.lock().refuse_reuse = true;
    let second =
        h.ra.new_order(OrderRequest {
            not_after: Some(t0() + time::Duration::days(10)),
            ..order_request(account.id, &["a.example"])
        })
        .await
        .unwrap();
    assert_ne!(second.authz_ids, first.authz_ids);
    assert_eq!(second.authz_ids.len(), 1);
}

// --- Rate limits -------------------------------------------------------------

#[tokio::test]
async fn the_third_order_in_a_window_of_two_is_refused_until_its_time() {
    let h = limited("[limits.new_orders_per_account]\ncount = 2\nperiod = \"1h\"\nburst = 2\n");
    let account = h.account(THUMBPRINT).await;
    h.order(&account, &["a.example"]).await;
    h.order(&account, &["b.example"]).await;
    let err =
        h.ra.new_order(order_request(account.id, &["c.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(
        err.detail.contains("new_orders_per_account"),
        "{}",
        err.detail
    );
    let retry_after = err.retry_after.expect("a Retry-After");
    assert_eq!(retry_after, Duration::from_secs(1800));
    // A repeat of an existing order is the same order, and costs nothing.
    let again = h.order(&account, &["a.example"]).await;
    assert_eq!(h.sa.lock().orders.len(), 2, "{again:?}");

    h.clock.advance(time::Duration::seconds(1799));
    let err =
        h.ra.new_order(order_request(account.id, &["c.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    h.clock.advance(time::Duration::seconds(1));
    h.order(&account, &["c.example"]).await;
}

#[tokio::test]
async fn overrides_change_one_key_only() {
    let h = limited("[limits.new_orders_per_account]\ncount = 1\nperiod = \"1h\"\nburst = 1\n");
    let big = h.account("big").await;
    let small = h.account("small").await;
    h.ra.add_rate_limit_override(RateLimitOverride {
        limit: "new_orders_per_account".to_owned(),
        key: big.id.to_string(),
        rate: basalt_core::RateLimit {
            count: 3,
            period: Duration::from_secs(3600),
            burst: 3,
        },
        comment: "a hosting provider".to_owned(),
    })
    .await
    .unwrap();
    for name in ["a.example", "b.example", "c.example"] {
        h.order(&big, &[name]).await;
    }
    h.order(&small, &["a.example"]).await;
    let err =
        h.ra.new_order(order_request(small.id, &["b.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    let listed = h.ra.rate_limit_overrides().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, big.id.to_string());
    h.ra.remove_rate_limit_override("new_orders_per_account", &big.id.to_string())
        .await
        .unwrap();
    let err =
        h.ra.remove_rate_limit_override("new_orders_per_account", &big.id.to_string())
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn an_ari_renewal_in_its_window_is_not_limited() {
    let h = limited("[limits.new_orders_per_account]\ncount = 1\nperiod = \"1h\"\nburst = 1\n");
    let owner = h.account("owner").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    h.order(&owner, &["b.example"]).await;
    // The certificate (90 days from t0) is not yet in its window (day 60).
    let err =
        h.ra.new_order(replacing(owner.id, &serial))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    h.clock.advance(time::Duration::days(61));
    h.order(&owner, &["c.example"]).await;
    let err =
        h.ra.new_order(order_request(owner.id, &["d.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    let renewal = h.ra.new_order(replacing(owner.id, &serial)).await.unwrap();
    assert_eq!(renewal.replaces, Some(serial));
}

#[tokio::test]
async fn an_incident_opens_the_renewal_window_at_once() {
    let h = limited("[limits.new_orders_per_account]\ncount = 1\nperiod = \"1h\"\nburst = 1\n");
    let owner = h.account("owner").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    h.order(&owner, &["b.example"]).await;
    h.sa.add_incident(NewIncident {
        name: "cps-mismatch".to_owned(),
        url: String::new(),
        serials: vec![serial.clone()],
    })
    .await
    .unwrap();
    h.ra.new_order(replacing(owner.id, &serial)).await.unwrap();
}

#[tokio::test]
async fn failed_issuance_gives_the_certificate_limits_back() {
    let h = limited("[limits.certificates_per_fqdn_set]\ncount = 1\nperiod = \"7d\"\nburst = 1\n");
    let order = h.ready_order(&["a.example"]).await;
    *h.ca.result.lock().unwrap() = Err(Error::internal("HSM unplugged"));
    h.ra.finalize_order(order.id, csr(&["a.example"]))
        .await
        .unwrap();
    h.ra.wait_for_background_work().await;
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    // The failed order's duplicate-certificate slot is back.
    let again =
        h.ra.new_order(order_request(order.account_id, &["a.example"]))
            .await
            .unwrap();
    assert_ne!(again.id, order.id);
    // Now it is spent.
    h.sa.lock().orders.get_mut(&again.id).unwrap().status = OrderStatus::Invalid;
    let err =
        h.ra.new_order(order_request(order.account_id, &["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(
        err.detail.contains("certificates_per_fqdn_set"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn failed_validations_limit_new_orders_for_the_name() {
    let h = limited(
        "[limits.failed_authorizations_per_domain_per_account]\n\
         count = 1\nperiod = \"1h\"\nburst = 1\n",
    );
    h.va.set(Ok(ValidationResult {
        records: Vec::new(),
        problem: Some(Error::new(ErrorKind::IncorrectResponse, "wrong token")),
    }));
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    h.validate_all(&order).await;
    let err =
        h.ra.new_order(order_request(account.id, &["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(
        err.detail
            .contains("failed_authorizations_per_domain_per_account"),
        "{}",
        err.detail
    );
    // Other names are not held back.
    h.order(&account, &["b.example"]).await;
}

#[tokio::test]
async fn new_accounts_are_limited_per_address() {
    let h = limited("[limits.new_accounts_per_ip]\ncount = 1\nperiod = \"3h\"\nburst = 1\n");
    let from = |ip: &str, thumbprint: &str| NewAccount {
        key_jwk: fresh_jwk(),
        key_thumbprint: thumbprint.to_owned(),
        contacts: Vec::new(),
        eab_key_id: None,
        remote_ip: Some(ip.parse().unwrap()),
    };
    h.ra.new_account(from("192.0.2.1", "one")).await.unwrap();
    let err =
        h.ra.new_account(from("192.0.2.1", "two"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    h.ra.new_account(from("192.0.2.2", "three")).await.unwrap();
    // A refused registration (the key is taken) gives its slot back.
    let err =
        h.ra.new_account(from("192.0.2.3", "three"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    h.ra.new_account(from("192.0.2.3", "four")).await.unwrap();
}

// --- Revocation ----------------------------------------------------------------

/// A certificate for `names` with a fresh key, stored for `owner`.
fn stored_certificate(
    h: &Harness,
    owner: AccountId,
    serial: &str,
    names: &[&str],
) -> (Serial, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let der = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec();
    (h.sa.add_certificate_with(owner, serial, der), key)
}

fn by(requester: Requester, serial: &Serial, reason: RevocationReason) -> RevokeRequest {
    RevokeRequest {
        serial: serial.clone(),
        reason,
        requester,
    }
}

#[tokio::test]
async fn the_issuing_account_may_give_the_subscriber_reasons_only() {
    let h = harness();
    let owner = h.account("owner").await;
    for (i, reason) in RevocationReason::ALL.into_iter().enumerate() {
        let (serial, _) = stored_certificate(&h, owner.id, &format!("0b{i:02x}"), &["a.example"]);
        let result =
            h.ra.revoke_certificate(by(Requester::Account(owner.id), &serial, reason))
                .await;
        let record = h.sa.certificate(&serial).await.unwrap();
        if reason == RevocationReason::PrivilegeWithdrawn {
            assert_eq!(result.unwrap_err().kind, ErrorKind::BadRevocationReason);
            assert_eq!(record.status, CertStatus::Good);
        } else {
            result.unwrap();
            assert_eq!(record.revocation_reason, Some(reason));
        }
    }
}

#[tokio::test]
async fn an_account_controlling_every_name_revokes_for_cessation_of_operation() {
    let h = harness();
    let owner = h.account("owner").await;
    let (serial, _) = stored_certificate(&h, owner.id, "0c01", &["a.example", "*.b.example"]);
    // The new holder of the names validates them from its own account.
    let holder = h.account("holder").await;
    let order = h.order(&holder, &["a.example"]).await;
    h.validate_all(&order).await;
    let err =
        h.ra.revoke_certificate(by(
            Requester::Account(holder.id),
            &serial,
            RevocationReason::KeyCompromise,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Unauthorized,
        "b.example is not validated yet"
    );
    let order = h.order(&holder, &["*.b.example"]).await;
    for id in &order.authz_ids {
        h.ra.perform_validation(*id, ChallengeType::Dns01)
            .await
            .unwrap();
    }
    h.ra.wait_for_background_work().await;
    // privilegeWithdrawn stays refused whoever asks.
    let err =
        h.ra.revoke_certificate(by(
            Requester::Account(holder.id),
            &serial,
            RevocationReason::PrivilegeWithdrawn,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRevocationReason);
    h.ra.revoke_certificate(by(
        Requester::Account(holder.id),
        &serial,
        RevocationReason::KeyCompromise,
    ))
    .await
    .unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(
        record.revocation_reason,
        Some(RevocationReason::CessationOfOperation)
    );
    // Nothing was blocked: possession of the key was not shown.
    assert!(h.sa.lock().blocked_keys.is_empty());
}

#[tokio::test]
async fn an_operator_may_give_any_reason_and_block_the_key() {
    let h = harness();
    let owner = h.account("owner").await;
    let (serial, _) = stored_certificate(&h, owner.id, "0d01", &["a.example"]);
    h.ra.revoke_certificate(by(
        Requester::Operator("alice".to_owned()),
        &serial,
        RevocationReason::PrivilegeWithdrawn,
    ))
    .await
    .unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(
        record.revocation_reason,
        Some(RevocationReason::PrivilegeWithdrawn)
    );
    assert!(h.sa.lock().blocked_keys.is_empty());

    // Then the key turns out compromised: the operator upgrades the reason.
    h.ra.revoke_certificate(by(
        Requester::Operator("alice".to_owned()),
        &serial,
        RevocationReason::KeyCompromise,
    ))
    .await
    .unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(
        record.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    let blocked: Vec<BlockedKey> = h.sa.lock().blocked_keys.values().cloned().collect();
    assert_eq!(blocked.len(), 1);
    assert!(
        blocked[0].comment.contains("by an operator"),
        "{}",
        blocked[0].comment
    );
}

#[tokio::test]
async fn a_subscriber_cannot_upgrade_a_revocation_without_the_key() {
    let h = harness();
    let owner = h.account("owner").await;
    let (serial, _) = stored_certificate(&h, owner.id, "0e01", &["a.example"]);
    h.ra.revoke_certificate(by(
        Requester::Account(owner.id),
        &serial,
        RevocationReason::Superseded,
    ))
    .await
    .unwrap();
    let err =
        h.ra.revoke_certificate(by(
            Requester::Account(owner.id),
            &serial,
            RevocationReason::KeyCompromise,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyRevoked);
    assert!(err.detail.contains("(superseded)"), "{}", err.detail);
    assert_eq!(
        h.sa.certificate(&serial).await.unwrap().revocation_reason,
        Some(RevocationReason::Superseded)
    );
}
