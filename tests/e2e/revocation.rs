//! Every revocation path of RFC 8555 §7.6 through the real WFE and RA, with the
//! recorded reason read back from the SA:
//!
//! - the issuing account may give reasons 0, 1, 3, 4 and 5; 2 (cACompromise) and
//!   9 (privilegeWithdrawn) are `badRevocationReason` (`conformance.rs` covers the
//!   unassigned 7 and 99);
//! - another account holding valid authorizations for every name may revoke, and
//!   the reason becomes cessationOfOperation; one lacking an authorization for any
//!   name is `unauthorized`;
//! - a request signed with the certificate's key records keyCompromise and blocks
//!   the key for new accounts (for CSRs: `weak_keys.rs`), and it may replace the
//!   reason of a certificate revoked for another one, keeping the revocation time;
//!   any other repeat is `alreadyRevoked`;
//! - an operator revokes with `basalt admin revoke --by NAME`, for any reason.
//!
//! `jws.rs`, `instant_acme.rs`, `certbot.rs` and `lego.rs` revoke through clients
//! and check OCSP; `ca_crash.rs` revokes a precertificate-only serial as an operator.

use std::sync::Arc;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::CertStatus;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevocationStatus;
use basalt_core::Serial;
use basalt_grpc::GrpcChannel;
use basalt_grpc::SaClient;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::json;

use crate::audit::events_for;
use crate::audit::normal_serial;
use crate::certs::serial_and_aki;
use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::pem_certs;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::jws::Answer;
use crate::jws::UNAUTHORIZED;
use crate::steps::Steps;

const BAD_REVOCATION_REASON: &str = "urn:ietf:params:acme:error:badRevocationReason";
const ALREADY_REVOKED: &str = "urn:ietf:params:acme:error:alreadyRevoked";
const BAD_PUBLIC_KEY: &str = "urn:ietf:params:acme:error:badPublicKey";

/// The SA as `basalt admin` reaches it (the admin's certificate may read), for
/// the recorded revocation status of a serial.
pub(crate) fn admin_sa(ca: &DevCa) -> SaClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let channel = GrpcChannel::new(
        &GrpcClientConfig {
            address: ca.grpc_address("sa"),
            server_name: "sa".to_owned(),
            timeout: ConfigDuration(Duration::from_secs(10)),
        },
        &TlsConfig {
            cert: ca.pki("admin.pem"),
            key: ca.pki("admin.key"),
            ca: ca.pki("internal-ca.pem"),
        },
    )
    .expect("a channel to the SA");
    SaClient::new(channel)
}

/// The serial of a DER certificate.
pub(crate) fn serial_of(leaf_der: &[u8]) -> Serial {
    let (bytes, _) = serial_and_aki(leaf_der);
    Serial::from_bytes(&bytes).expect("a certificate serial")
}

/// What the SA records for the certificate `leaf_der`.
async fn status(ca: &DevCa, leaf_der: &[u8]) -> RevocationStatus {
    let serial = serial_of(leaf_der);
    admin_sa(ca)
        .revocation_status(&serial)
        .await
        .unwrap_or_else(|err| panic!("the SA's status of {serial}: {err}"))
}

/// Checks that the SA records the certificate as revoked for `reason`.
async fn assert_revoked_for(ca: &DevCa, leaf_der: &[u8], reason: RevocationReason, what: &str) {
    let status = status(ca, leaf_der).await;
    assert_eq!(
        (status.status, status.revocation_reason),
        (CertStatus::Revoked, Some(reason)),
        "{what}: the SA records {status:?}"
    );
}

/// Checks that the SA records the certificate as not revoked.
async fn assert_good(ca: &DevCa, leaf_der: &[u8], what: &str) {
    let status = status(ca, leaf_der).await;
    assert_eq!(status.status, CertStatus::Good, "{what}: {status:?}");
}

/// A fresh DNS name under `label`.
fn fresh_name(label: &str) -> String {
    format!("{label}-{:x}.revocation.example.com", random_u64())
}

/// A certificate for `names` issued to `account`: its DER and its key (PKCS#8).
async fn issue(account: &RawAccount, http01: &Http01, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let (order_url, order) = account.ready_order(http01, &order_payload(names)).await;
    let (csr, key_pkcs8) = cert_csr(names);
    let order = account.finalize(&order_url, &order, &csr).await;
    let certificate = order["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("a valid order without a certificate: {order}"));
    let download = account.post(certificate, None).await;
    download.expect_status(StatusCode::OK, "certificate download");
    let leaf = pem_certs(&download.text)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no certificate in {}", download.text));
    (leaf, key_pkcs8)
}

/// A revokeCert payload.
fn revocation(leaf_der: &[u8], reason: Option<u8>) -> Value {
    let mut payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(leaf_der) });
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    payload
}

/// revokeCert signed by `account` (`kid`).
async fn revoke_as(account: &RawAccount, leaf_der: &[u8], reason: Option<u8>) -> Answer {
    account
        .post(
            &account.acme.url("revokeCert"),
            Some(&revocation(leaf_der, reason)),
        )
        .await
}

/// revokeCert signed by the certificate's own key (`jwk`).
async fn revoke_with_key(acme: &Acme, key_pkcs8: &[u8], leaf_der: &[u8], reason: u8) -> Answer {
    let key = AccountKey::es256_from_pkcs8(key_pkcs8);
    acme.signed(
        &key,
        None,
        &acme.url("revokeCert"),
        Some(&revocation(leaf_der, Some(reason))),
    )
    .await
}

/// The issuing account revokes one certificate for each reason a subscriber may
/// give, and the SA records that reason.
async fn account_reasons(ca: Arc<DevCa>, owner: Arc<RawAccount>, http01: Http01) {
    for reason in [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ] {
        let label = reason.as_str().to_ascii_lowercase();
        let (leaf, _) = issue(&owner, &http01, &[&fresh_name(&label)]).await;
        revoke_as(&owner, &leaf, Some(reason.code()))
            .await
            .expect_status(StatusCode::OK, &format!("revocation for {reason}"));
        assert_revoked_for(&ca, &leaf, reason, reason.as_str()).await;
    }
}

/// cACompromise (2) and privilegeWithdrawn (9) are not the subscriber's to give;
/// the certificate stays good, and once revoked, a repeat is `alreadyRevoked`.
async fn refused_reasons_and_repeats(ca: Arc<DevCa>, owner: Arc<RawAccount>, http01: Http01) {
    let (leaf, _) = issue(&owner, &http01, &[&fresh_name("refused-reasons")]).await;
    for reason in [2, 9] {
        revoke_as(&owner, &leaf, Some(reason)).await.expect_problem(
            StatusCode::BAD_REQUEST,
            BAD_REVOCATION_REASON,
            &format!("revocation by the account for reason {reason}"),
        );
    }
    assert_good(&ca, &leaf, "after the refused reasons").await;
    revoke_as(&owner, &leaf, Some(4))
        .await
        .expect_status(StatusCode::OK, "revocation for superseded");
    for reason in [Some(4), Some(5), None] {
        revoke_as(&owner, &leaf, reason).await.expect_problem(
            StatusCode::BAD_REQUEST,
            ALREADY_REVOKED,
            &format!("a second revocation by the account (reason {reason:?})"),
        );
    }
    assert_revoked_for(
        &ca,
        &leaf,
        RevocationReason::Superseded,
        "after the repeats",
    )
    .await;
}

/// Another account may revoke a certificate only with valid authorizations for
/// all of its names; its reason is replaced by cessationOfOperation.
async fn another_account_with_authorizations(
    ca: Arc<DevCa>,
    acme: Acme,
    owner: Arc<RawAccount>,
    http01: Http01,
) {
    let (one, two) = (fresh_name("authorized-1"), fresh_name("authorized-2"));
    let (leaf, _) = issue(&owner, &http01, &[&one, &two]).await;

    let stranger = RawAccount::create(&acme).await;
    revoke_as(&stranger, &leaf, Some(4)).await.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "revocation by an account without authorizations",
    );
    // Valid authorizations for one name of two are not enough.
    let half = RawAccount::create(&acme).await;
    half.ready_order(&http01, &order_payload(&[&one])).await;
    revoke_as(&half, &leaf, Some(4)).await.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "revocation by an account authorized for one name of two",
    );
    assert_good(&ca, &leaf, "after the refused revocations").await;

    let holder = RawAccount::create(&acme).await;
    holder
        .ready_order(&http01, &order_payload(&[&one, &two]))
        .await;
    revoke_as(&holder, &leaf, Some(4)).await.expect_status(
        StatusCode::OK,
        "revocation by an account holding both names",
    );
    assert_revoked_for(
        &ca,
        &leaf,
        RevocationReason::CessationOfOperation,
        "revoked by another account for superseded",
    )
    .await;
}

/// Signed with the certificate's key: keyCompromise whatever the reason given,
/// and the key can no longer open an account.
async fn certificate_key(ca: Arc<DevCa>, acme: Acme, owner: Arc<RawAccount>, http01: Http01) {
    let (leaf, key_pkcs8) = issue(&owner, &http01, &[&fresh_name("key-signed")]).await;
    revoke_with_key(&acme, &key_pkcs8, &leaf, 4)
        .await
        .expect_status(StatusCode::OK, "revocation signed by the certificate's key");
    assert_revoked_for(
        &ca,
        &leaf,
        RevocationReason::KeyCompromise,
        "revoked with the certificate's key for superseded",
    )
    .await;
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    acme.signed(
        &key,
        None,
        &acme.url("newAccount"),
        Some(&json!({ "termsOfServiceAgreed": true })),
    )
    .await
    .expect_problem(
        StatusCode::BAD_REQUEST,
        BAD_PUBLIC_KEY,
        "newAccount with the compromised key",
    );
}

/// A certificate revoked for superseded is revoked again by its key: the reason
/// becomes keyCompromise, the time stays, the key is blocked for CSRs; then a
/// repeat is `alreadyRevoked` even so.
async fn key_compromise_replaces_an_earlier_reason(
    ca: Arc<DevCa>,
    acme: Acme,
    owner: Arc<RawAccount>,
    http01: Http01,
) {
    let (leaf, key_pkcs8) = issue(&owner, &http01, &[&fresh_name("upgraded")]).await;
    revoke_as(&owner, &leaf, Some(4))
        .await
        .expect_status(StatusCode::OK, "revocation for superseded");
    let first = status(&ca, &leaf).await;
    assert_eq!(
        first.revocation_reason,
        Some(RevocationReason::Superseded),
        "{first:?}"
    );

    revoke_with_key(&acme, &key_pkcs8, &leaf, 1)
        .await
        .expect_status(
            StatusCode::OK,
            "keyCompromise by the key of a certificate revoked for superseded",
        );
    let upgraded = status(&ca, &leaf).await;
    assert_eq!(
        (upgraded.status, upgraded.revocation_reason),
        (CertStatus::Revoked, Some(RevocationReason::KeyCompromise)),
        "{upgraded:?}"
    );
    assert_eq!(
        upgraded.revoked_at, first.revoked_at,
        "the re-revocation moved the revocation time"
    );
    revoke_with_key(&acme, &key_pkcs8, &leaf, 1)
        .await
        .expect_problem(
            StatusCode::BAD_REQUEST,
            ALREADY_REVOKED,
            "keyCompromise again by the key",
        );

    // The key is blocked: a CSR with it is refused and the order stays ready.
    let name = fresh_name("reuse-upgraded-key");
    let (order_url, order) = owner.ready_order(&http01, &order_payload(&[&name])).await;
    let csr = csr_for_key(&key_pkcs8, &name);
    let finalize = order["finalize"].as_str().expect("a finalize URL");
    owner
        .post(
            finalize,
            Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(&csr) })),
        )
        .await
        .expect_problem(
            StatusCode::BAD_REQUEST,
            BAD_PUBLIC_KEY,
            "a CSR with the key revoked for keyCompromise",
        );
    let after = owner.post(&order_url, None).await;
    assert_eq!(after.json["status"], "ready", "{}", after.text);
}

/// A CSR for `name` with the P-256 key `key_pkcs8`.
fn csr_for_key(key_pkcs8: &[u8], name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::try_from(key_pkcs8).expect("load the certificate key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("CSR params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .serialize_request(&key)
        .expect("serialize the CSR")
        .der()
        .to_vec()
}

/// Runs `basalt admin ARGS…`; returns its output.
fn admin(ca: &DevCa, args: &[&str]) -> crate::harness::CmdOutput {
    tokio::task::block_in_place(|| ca.admin(args))
}

/// An operator revokes for privilegeWithdrawn, named with `--by`; a repeat is
/// refused saying why; keyCompromise then replaces the reason and blocks the key.
async fn operator(ca: Arc<DevCa>, owner: Arc<RawAccount>, http01: Http01) {
    let (leaf, _) = issue(&owner, &http01, &[&fresh_name("operator")]).await;
    let serial = serial_of(&leaf).to_string();
    let revoke = |reason: &str| {
        admin(
            &ca,
            &[
                "revoke", "--serial", &serial, "--reason", reason, "--by", "alice",
            ],
        )
    };
    let done = revoke("privilegeWithdrawn");
    assert!(done.status.success(), "admin revoke: {}", done.text());
    assert_eq!(
        done.stdout.trim(),
        format!("revoked serial {serial} (certificate), reason privilegeWithdrawn (9), by alice"),
        "{}",
        done.text()
    );
    assert_revoked_for(
        &ca,
        &leaf,
        RevocationReason::PrivilegeWithdrawn,
        "revoked by an operator",
    )
    .await;
    revoke_as(&owner, &leaf, Some(1)).await.expect_problem(
        StatusCode::BAD_REQUEST,
        ALREADY_REVOKED,
        "the account revoking a certificate an operator revoked",
    );

    let again = revoke("superseded");
    assert!(
        !again.status.success(),
        "a second revocation: {}",
        again.text()
    );
    assert!(
        again.stderr.contains(&format!(
            "serial {serial} is already revoked (privilegeWithdrawn at "
        )),
        "{}",
        again.text()
    );

    let upgraded = revoke("keyCompromise");
    assert!(upgraded.status.success(), "{}", upgraded.text());
    assert!(
        upgraded.stdout.contains(&format!(
            "serial {serial} was revoked already (privilegeWithdrawn at "
        )) && upgraded.stdout.contains(
            "its reason is now keyCompromise (1), by alice; its key is blocked (spki_sha256 "
        ),
        "{}",
        upgraded.text()
    );
    assert_revoked_for(
        &ca,
        &leaf,
        RevocationReason::KeyCompromise,
        "an operator's keyCompromise after privilegeWithdrawn",
    )
    .await;

    // The RA audits both, naming the operator.
    let ra_log = ca.data_dir.join("audit").join("ra.jsonl");
    let events = tokio::task::block_in_place(|| {
        events_for(&ra_log, "certificate_revoked", &normal_serial(&serial))
    });
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|event| {
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            (field("reason"), field("method"), field("requester"))
        })
        .collect();
    let by_alice = |reason: &str| {
        (
            reason.to_owned(),
            "operator".to_owned(),
            "operator:alice".to_owned(),
        )
    };
    assert_eq!(
        seen,
        [by_alice("privilegeWithdrawn"), by_alice("keyCompromise")],
        "{events:?}"
    );
}

// Multi-threaded: the steps call `basalt admin` with `block_in_place`, and the
// gRPC connections to the SA must be able to close while `DevCa::drop` blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revocation_path() {
    let ca = Arc::new(DevCa::start("revocation"));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let owner = Arc::new(RawAccount::create(&acme).await);
    let mut steps = Steps::default();

    steps
        .run_async(
            "the issuing account: reasons 0, 1, 3, 4 and 5",
            account_reasons(ca.clone(), owner.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "the issuing account: reasons 2 and 9 refused, repeats alreadyRevoked",
            refused_reasons_and_repeats(ca.clone(), owner.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "another account with authorizations for every name",
            another_account_with_authorizations(
                ca.clone(),
                acme.clone(),
                owner.clone(),
                http01.clone(),
            ),
        )
        .await;
    steps
        .run_async(
            "the certificate's key: keyCompromise, key blocked for accounts",
            certificate_key(ca.clone(), acme.clone(), owner.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "keyCompromise by the key replaces superseded",
            key_compromise_replaces_an_earlier_reason(
                ca.clone(),
                acme.clone(),
                owner.clone(),
                http01.clone(),
            ),
        )
        .await;
    steps
        .run_async(
            "basalt admin revoke --by alice",
            operator(ca.clone(), owner.clone(), http01.clone()),
        )
        .await;
    steps.finish();
}
