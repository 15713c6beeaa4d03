//! The blocked-keys list: refused as an account key, as a new account key and in a
//! CSR; filled by revocations signed with a certificate's own key.

use super::*;

/// Puts `key` on the fake SA's blocked-keys list, as an operator would.
fn block(h: &Harness, key: &KeyPair) -> SpkiHash {
    let hash = spki_sha256(&key.subject_public_key_info());
    h.sa.lock().blocked_keys.insert(
        hash,
        BlockedKey {
            spki_sha256: hash,
            added_at: t0(),
            source: BlockedKeySource::Admin,
            comment: "test".to_owned(),
        },
    );
    hash
}

fn new_account_with(jwk: String, thumbprint: &str) -> NewAccount {
    NewAccount {
        key_jwk: jwk,
        key_thumbprint: thumbprint.to_owned(),
        contacts: Vec::new(),
        eab_key_id: None,
        remote_ip: None,
    }
}

#[tokio::test]
async fn a_blocked_key_cannot_open_an_account() {
    let h = harness();
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
    ] {
        let key = KeyPair::generate_for(alg).unwrap();
        block(&h, &key);
        let err =
            h.ra.new_account(new_account_with(jwk_of(&key), "blocked"))
                .await
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPublicKey);
        assert_eq!(
            err.detail,
            "the account key is blocked (known compromised or banned); use another key"
        );
    }
    assert!(
        h.sa.lock().new_accounts.is_empty(),
        "nothing reaches the SA"
    );

    // Another key goes through.
    h.ra.new_account(new_account_with(fresh_jwk(), "fine"))
        .await
        .unwrap();
    assert_eq!(h.sa.lock().accounts.len(), 1);
}

#[tokio::test]
async fn an_unreadable_account_key_is_a_bad_public_key() {
    let h = harness();
    let err =
        h.ra.new_account(new_account_with("{}".to_owned(), "odd"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey);
    assert!(h.sa.lock().new_accounts.is_empty());
}

#[tokio::test]
async fn a_blocked_key_cannot_replace_an_account_key() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let key = KeyPair::generate().unwrap();
    block(&h, &key);
    let err =
        h.ra.rollover_account_key(account.id, jwk_of(&key), "blocked".into())
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey);
    assert!(
        err.detail.starts_with("the account key is blocked"),
        "{err}"
    );
    let stored = h.sa.account(account.id).await.unwrap();
    assert_eq!(stored.key_thumbprint, THUMBPRINT);
    assert_eq!(stored.key_jwk, account.key_jwk);
}

#[tokio::test]
async fn a_blocked_key_cannot_be_certified() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    let key = KeyPair::generate().unwrap();
    block(&h, &key);
    let err =
        h.ra.finalize_order(order.id, csr_for(&key, &["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey);
    assert_eq!(
        err.detail,
        "the CSR's public key is blocked (known compromised or banned); certify another key"
    );
    h.assert_finalizable_with_another_key(order.id).await;
}

/// When the list cannot be read, nothing goes through: no account, no issuance.
#[tokio::test]
async fn an_unreadable_list_refuses_rather_than_allows() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    h.sa.lock().key_blocked_error = Some(Error::unavailable("sa restarting"));
    let err =
        h.ra.new_account(new_account_with(fresh_jwk(), "other"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(h.ca.calls.lock().unwrap().is_empty());
    assert_eq!(h.sa.lock().accounts.len(), 1);
}

/// A revocation signed by the certificate's key proves the key compromised (RFC 8555
/// §7.6): the key is blocked, even when the certificate was revoked already, and is
/// then refused for accounts and certificates. A revocation by the owning account,
/// whatever its reason, proves nothing about the key and blocks nothing.
#[tokio::test]
async fn key_signed_revocation_blocks_the_key() {
    let h = harness();
    let owner = h.account("owner").await;

    let by_account = KeyPair::generate().unwrap();
    let serial =
        h.sa.add_certificate_with(owner.id, "0a01", certificate_for(&by_account));
    h.ra.revoke_certificate(RevokeRequest {
        serial,
        reason: RevocationReason::KeyCompromise,
        requester: Requester::Account(owner.id),
    })
    .await
    .unwrap();
    assert!(h.sa.lock().blocked_keys.is_empty());

    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let serial =
        h.sa.add_certificate_with(owner.id, "0a02", certificate_for(&key));
    let request = RevokeRequest {
        serial: serial.clone(),
        reason: RevocationReason::Unspecified,
        requester: Requester::CertificateKey(spki.clone()),
    };
    h.ra.revoke_certificate(request.clone()).await.unwrap();
    let hash = spki_sha256(&spki);
    let blocked = h.sa.lock().blocked_keys.get(&hash).cloned().unwrap();
    assert_eq!(
        blocked,
        BlockedKey {
            spki_sha256: hash,
            added_at: h.clock.now(),
            source: BlockedKeySource::KeyCompromise,
            comment: "certificate 0a02 revoked for keyCompromise by a request signed with its key"
                .to_owned(),
        }
    );
    assert_eq!(h.sa.lock().blocked_keys.len(), 1);

    // The key may no longer hold an account or be certified.
    let err =
        h.ra.new_account(new_account_with(jwk_of(&key), "compromised"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey);
    let order = h.order(&owner, &["a.example"]).await;
    h.validate_all(&order).await;
    let err =
        h.ra.finalize_order(order.id, csr_for(&key, &["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey);

    // A certificate revoked already by its account: the key-signed request blocks
    // the key and turns the reason into keyCompromise (keeping the time); a second
    // one finds it revoked for keyCompromise already.
    let other = KeyPair::generate().unwrap();
    let serial =
        h.sa.add_certificate_with(owner.id, "0a03", certificate_for(&other));
    h.ra.revoke_certificate(RevokeRequest {
        serial: serial.clone(),
        reason: RevocationReason::Superseded,
        requester: Requester::Account(owner.id),
    })
    .await
    .unwrap();
    let by_key = RevokeRequest {
        serial: serial.clone(),
        reason: RevocationReason::Unspecified,
        requester: Requester::CertificateKey(other.subject_public_key_info()),
    };
    let revoked_at = h.sa.certificate(&serial).await.unwrap().revoked_at;
    h.clock.advance(time::Duration::hours(1));
    h.ra.revoke_certificate(by_key.clone()).await.unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(
        record.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(record.revoked_at, revoked_at);
    let err = h.ra.revoke_certificate(by_key).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyRevoked);
    assert!(err.detail.contains("(keyCompromise)"), "{}", err.detail);
    let other_hash = spki_sha256(&other.subject_public_key_info());
    assert!(h.sa.key_blocked(&other_hash).await.unwrap());

    // A request signed by another key blocks nothing.
    let stranger = KeyPair::generate().unwrap();
    let serial = h.sa.add_certificate_with(
        owner.id,
        "0a04",
        certificate_for(&KeyPair::generate().unwrap()),
    );
    let err =
        h.ra.revoke_certificate(RevokeRequest {
            serial,
            reason: RevocationReason::KeyCompromise,
            requester: Requester::CertificateKey(stranger.subject_public_key_info()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(h.sa.lock().blocked_keys.len(), 2);
}
