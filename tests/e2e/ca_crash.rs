//! The CA dies between storing a precertificate and storing the certificate, as a
//! power cut would: `BASALT_CA_CRASH_TRIGGER` makes it abort right after the
//! precertificate while the trigger file exists. The serial must be on record with
//! its precertificate, have a status that OCSP answers and that `basalt admin
//! revoke` can change, and never be used again once `basalt dev` has restarted the
//! CA; the order it was for must not turn valid, and the certificate download must
//! not serve the precertificate.
//!
//! The SA runs on PostgreSQL so the test can read its tables from outside.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use basalt_core::Serial;
use instant_acme::Account;
use instant_acme::Order;
use instant_acme::OrderStatus;
use instant_acme::RetryPolicy;
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::certs::serial_and_aki;
use crate::harness::DevCa;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::new_account;
use crate::instant_acme::pem_certs;
use crate::instant_acme::ready_order;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::ocsp;
use crate::restart::new_pid;

/// The environment variable that arms the CA's crash test.
const CRASH_TRIGGER_ENV: &str = "BASALT_CA_CRASH_TRIGGER";
/// The trigger file, in the CA's data dir.
const TRIGGER_FILE: &str = "ca-crash-trigger";
/// The one name every order of the test asks for.
const NAME: &str = "ca-crash.example.com";
/// How long the order whose issuance the crash cut short may take to turn invalid.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the second order may take to be issued.
const POLL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the OCSP responder may take to answer the expected status.
const OCSP_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_killed_after_the_precertificate_leaves_its_serial_revocable_and_unused() {
    let ca = DevCa::builder("ca-crash")
        .postgres()
        .env_data_file(CRASH_TRIGGER_ENV, TRIGGER_FILE)
        .start();
    let trigger = ca.data_dir.join(TRIGGER_FILE);
    let http01 = Http01::start(ca.http01_port).await;
    let (account, key_pkcs8) = new_account(&ca, &["mailto:ca-crash@example.com"]).await;
    let ca_pid = ca.service_pid("ca");

    // The crash: the CA aborts once the precertificate of this order is stored.
    std::fs::write(&trigger, b"abort after the next precertificate\n")
        .expect("create the crash trigger");
    let mut order = ready_order(&account, &http01, &[NAME]).await;
    let (csr, _key) = cert_csr(&[NAME]);
    order.finalize_csr(&csr).await.expect("finalize");
    let restarted = tokio::task::block_in_place(|| new_pid(&ca, "ca", ca_pid));
    assert_ne!(restarted, ca_pid);
    assert!(
        !trigger.exists(),
        "the CA did not consume the crash trigger {}",
        trigger.display()
    );
    let final_status = settle(&mut order).await;
    assert_eq!(
        final_status,
        OrderStatus::Invalid,
        "the order whose issuance the crash cut short: {:?}",
        order.state()
    );
    assert_eq!(order.state().certificate, None);

    // The serial is on record, with a precertificate, a status and no certificate.
    let database = ca.database();
    let orphans = database.query_rows(
        "SELECT p.serial FROM precertificates p
         LEFT JOIN certificates c ON c.serial = p.serial
         WHERE c.serial IS NULL",
    );
    let [orphan] = orphans.as_slice() else {
        panic!("not exactly one precertificate without a certificate: {orphans:?}");
    };
    let crashed: Serial = orphan[0].parse().expect("a hex serial");
    assert_eq!(database.count_rows("certificates"), 0);
    assert_eq!(
        database.query_scalar(&format!(
            "SELECT COUNT(*) FROM serials WHERE serial = '{crashed}'"
        )),
        "1"
    );
    assert_eq!(
        database.query_scalar(&format!(
            "SELECT status FROM certificate_status WHERE serial = '{crashed}'"
        )),
        "good"
    );
    assert_eq!(
        database.query_scalar("SELECT COUNT(*) FROM orders WHERE certificate_serial IS NOT NULL"),
        "0"
    );
    let ca_log = ca.log("ca");
    assert!(
        ca_log.contains("crash trigger: aborting after the precertificate")
            && ca_log.contains(&crashed.to_string()),
        "the CA log does not tell of the crash with serial {crashed}"
    );

    // The WFE serves certificates only, never a precertificate.
    let acme = Acme::new(&ca).await;
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    let cert_url = ca
        .directory_url
        .replace("/directory", &format!("/acme/cert/{crashed}"));
    acme.signed(&key, Some(account.id()), &cert_url, None)
        .await
        .expect_status(StatusCode::NOT_FOUND, "download of the crashed serial");

    // OCSP answers for the serial; the admin revokes it, once.
    let issuer = ca.pki("intermediate-ecdsa.pem");
    tokio::task::block_in_place(|| {
        ocsp_status_becomes(&ca, &issuer, &crashed, "good");
        let hex = crashed.to_string();
        let revoked = ca.admin(&["revoke", "--serial", &hex, "--reason", "keyCompromise"]);
        assert!(
            revoked.status.success(),
            "admin revoke failed: {}",
            revoked.text()
        );
        assert!(
            revoked
                .stdout
                .contains(&format!("revoked serial {crashed} (precertificate only")),
            "{}",
            revoked.text()
        );
        // keyCompromise also blocks the key, read from the precertificate.
        assert!(
            revoked
                .stdout
                .contains("; its key is blocked (spki_sha256 "),
            "{}",
            revoked.text()
        );
        ocsp_status_becomes(&ca, &issuer, &crashed, "revoked");
        let again = ca.admin(&["revoke", "--serial", &hex, "--reason", "superseded"]);
        assert!(
            !again.status.success(),
            "a second revocation succeeded: {}",
            again.text()
        );
        assert!(
            again.stderr.contains(&format!(
                "serial {crashed} is already revoked (keyCompromise"
            )),
            "{}",
            again.text()
        );
        let unknown = ca.admin(&["revoke", "--serial", "0x7f", "--reason", "unspecified"]);
        assert!(!unknown.status.success(), "{}", unknown.text());
        assert!(
            unknown
                .stderr
                .contains("no certificate or precertificate has serial 7f"),
            "{}",
            unknown.text()
        );
    });
    assert_eq!(
        database.query_scalar(&format!(
            "SELECT status || ' ' || revoked_reason FROM certificate_status \
             WHERE serial = '{crashed}'"
        )),
        "revoked 1"
    );

    // The restarted CA issues for the same name under a serial never used before.
    let used_before: HashSet<String> = database
        .query_rows("SELECT serial FROM serials")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert!(used_before.contains(&crashed.to_string()));
    let chain = issue(&account, &http01).await;
    let certs = pem_certs(&chain);
    let leaf = certs.first().expect("a leaf certificate");
    let (serial_bytes, _) = serial_and_aki(leaf);
    let serial = Serial::from_bytes(&serial_bytes).expect("a certificate serial");
    assert_ne!(serial, crashed);
    assert!(
        !used_before.contains(&serial.to_string()),
        "serial {serial} was used before the crash"
    );
    assert_eq!(
        database.count_rows("serials"),
        u64::try_from(used_before.len()).unwrap() + 1
    );
    assert_eq!(
        database.query_scalar(&format!(
            "SELECT status FROM certificate_status WHERE serial = '{serial}'"
        )),
        "good"
    );
    ca.assert_certificates_in_database(1);
    assert!(
        !trigger.exists(),
        "the trigger file came back: {}",
        trigger.display()
    );
}

/// Polls the order until it is `valid` or `invalid`, and returns which; panics if
/// it is neither within [`SETTLE_TIMEOUT`].
async fn settle(order: &mut Order) -> OrderStatus {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match order.refresh().await {
            Ok(state) if matches!(state.status, OrderStatus::Valid | OrderStatus::Invalid) => {
                return state.status;
            }
            Ok(state) => last = format!("{:?}", state.status),
            Err(err) => last = format!("poll: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the order did not settle within {SETTLE_TIMEOUT:?}; last: {last}");
}

/// A new order for [`NAME`], carried through to its certificate chain.
async fn issue(account: &Account, http01: &Http01) -> String {
    let mut order = ready_order(account, http01, &[NAME]).await;
    let (csr, _key) = cert_csr(&[NAME]);
    order.finalize_csr(&csr).await.expect("finalize again");
    order
        .poll_certificate(&RetryPolicy::new().timeout(POLL_TIMEOUT))
        .await
        .expect("the restarted CA issues")
}

/// Asks the OCSP responder about `serial` of `issuer` until it answers `expected`
/// (`good` or `revoked`) in a response that verifies against the root. The request
/// names the serial, not a certificate: the precertificate is a linting certificate,
/// whose signature is not the issuer's.
fn ocsp_status_becomes(ca: &DevCa, issuer: &Path, serial: &Serial, expected: &str) {
    ocsp::status_becomes(
        ca,
        issuer,
        ocsp::Target::Serial(serial),
        ocsp::CertIdHash::Sha1,
        expected,
        std::time::Instant::now(),
        OCSP_TIMEOUT,
    );
}
