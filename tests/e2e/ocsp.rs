//! `openssl ocsp` against the OCSP responder of `basalt dev` (RFC 6960, profiled by
//! RFC 5019), with every signed response verified up to the roots:
//!
//! - a fresh certificate is `good`, one with an ECDSA key (from the ECDSA
//!   intermediate) and one with an RSA key (from the RSA intermediate);
//! - after revokeCert, `revoked` with its reason and revocation time within five
//!   seconds of the revokeCert answer: keyCompromise when the certificate's key
//!   signs, superseded when the account asks for it;
//! - a certificate of another issuer, even one reusing a Basalt serial, gets the
//!   responder error `unauthorized`, and so does a Basalt serial asked under the
//!   intermediate that did not issue it; a serial Basalt's issuer never used is
//!   `unknown` (RFC 6960 §2.2);
//! - SHA-256 CertIDs (`openssl ocsp -sha256`) get the same answers as SHA-1 ones;
//! - with `basalt dev --ocsp-signer delegated`, each intermediate's delegated OCSP
//!   responder (RFC 6960 §4.2.2.2) signs instead: the responses still verify up
//!   to the roots, `good` then `revoked`, their responderID is the delegated
//!   certificate's key hash (not the intermediate's) and they carry that
//!   certificate.
//!
//! `certbot.rs`, `pkilint.rs`, `jws.rs`, `lego.rs` and `ca_crash.rs` check OCSP
//! on the way through their own flows.

use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use basalt_core::Serial;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::json;

use crate::certs::wall_clock_now;
use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::harness::run;
use crate::harness::run_ok;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::pem_certs;
use crate::instant_acme::write_pem;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::jws::Answer;
use crate::revocation::serial_of;
use crate::steps::Steps;

/// How long one `openssl` run may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon after the revokeCert answer (or the certificate download) OCSP must
/// tell the new status.
const STATUS_WITHIN: Duration = Duration::from_secs(5);
/// The shortest time between two OCSP requests of one poll.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How far the revocation time OCSP gives may be from the revokeCert exchange:
/// both clocks are this machine's, but the response has whole seconds.
const REVOCATION_TIME_SLACK: i64 = 2;

/// The hash of the issuer's name and key in the request's CertID (RFC 6960 §4.1.1).
#[derive(Clone, Copy, Debug)]
pub(crate) enum CertIdHash {
    Sha1,
    Sha256,
}

impl CertIdHash {
    /// The `openssl ocsp` flag that selects it.
    fn flag(self) -> &'static str {
        match self {
            Self::Sha1 => "-sha1",
            Self::Sha256 => "-sha256",
        }
    }

    /// The name `openssl ocsp -resp_text` prints for it.
    fn openssl_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }
}

/// What an OCSP request is about: a certificate file (PEM), or a bare serial of
/// the issuer (for a precertificate, or a serial that was never issued).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Cert(&'a Path),
    Serial(&'a Serial),
}

impl Target<'_> {
    /// The `openssl ocsp` arguments naming the target.
    fn args(self) -> Vec<String> {
        match self {
            Self::Cert(path) => vec!["-cert".to_owned(), path.display().to_string()],
            Self::Serial(serial) => vec!["-serial".to_owned(), format!("0x{serial}")],
        }
    }

    /// How `openssl ocsp` names the target in its summary: the argument as given.
    fn label(self) -> String {
        match self {
            Self::Cert(path) => path.display().to_string(),
            Self::Serial(serial) => format!("0x{serial}"),
        }
    }
}

/// One `openssl ocsp` exchange, as read from its output.
#[derive(Debug)]
pub(crate) struct OcspAnswer {
    /// openssl exited with success.
    pub(crate) success: bool,
    /// openssl printed `Response verify OK`: the response's signature verified up
    /// to the roots.
    pub(crate) verified: bool,
    /// The status openssl found for the request's CertID (`good`, `revoked`,
    /// `unknown`), from its summary line `<target>: <status>`.
    pub(crate) status: Option<String>,
    /// The reason of a revocation, from the summary's `Reason:` line.
    pub(crate) reason: Option<String>,
    /// The revocation time, as Unix seconds, from the summary's `Revocation Time:`.
    pub(crate) revoked_at: Option<i64>,
    /// The responder error, e.g. `unauthorized (6)`, from `Responder Error: …`.
    pub(crate) responder_error: Option<String>,
    /// The hash algorithm of the response's CertID, from `-resp_text`.
    pub(crate) hash_algorithm: Option<String>,
    /// Everything openssl printed.
    pub(crate) text: String,
}

impl OcspAnswer {
    /// Whether this is a verified response with `status` for the target.
    pub(crate) fn is_verified(&self, status: &str) -> bool {
        self.success && self.verified && self.status.as_deref() == Some(status)
    }
}

/// Asks the OCSP responder of `ca` once about `target` of `issuer`, with CertIDs
/// hashed by `hash`; the response must verify against the CA's roots.
pub(crate) fn ask(ca: &DevCa, issuer: &Path, target: Target<'_>, hash: CertIdHash) -> OcspAnswer {
    let output = run(
        Command::new("openssl")
            .arg("ocsp")
            .arg(hash.flag())
            .arg("-issuer")
            .arg(issuer)
            .arg("-verify_other")
            .arg(issuer)
            .args(target.args())
            .args(["-url", &ca.ocsp_url()])
            .arg("-CAfile")
            .arg(ca.pki("root.pem"))
            .arg("-resp_text"),
        OPENSSL_TIMEOUT,
    );
    let text = output.text();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(|value| value.trim().to_owned())
    };
    let label = format!("{}: ", target.label());
    // The summary: `<target>: <status>`, then tab-indented details.
    let summary: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with(&label))
        .take_while(|line| line.starts_with(&label) || line.starts_with('\t'))
        .collect();
    let detail = |prefix: &str| {
        summary
            .iter()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(|value| value.trim().to_owned())
    };
    OcspAnswer {
        success: output.status.success(),
        verified: text.lines().any(|line| line.trim() == "Response verify OK"),
        status: summary
            .first()
            .and_then(|line| line.strip_prefix(&label))
            .map(|status| status.trim().to_owned()),
        reason: detail("Reason:"),
        revoked_at: detail("Revocation Time:").map(|time| {
            openssl_time(&time).unwrap_or_else(|| panic!("unreadable revocation time {time:?}"))
        }),
        responder_error: field("Responder Error:"),
        hash_algorithm: field("Hash Algorithm:"),
        text,
    }
}

/// Asks about `target` of `issuer` every [`POLL_INTERVAL`] at most until a verified
/// response gives `expected` (`good` or `revoked`); panics unless one does within
/// `within` of `since`. Returns that answer and when it came, after `since`.
pub(crate) fn status_becomes(
    ca: &DevCa,
    issuer: &Path,
    target: Target<'_>,
    hash: CertIdHash,
    expected: &str,
    since: Instant,
    within: Duration,
) -> (OcspAnswer, Duration) {
    let mut asked = 0;
    loop {
        let started = Instant::now();
        let answer = ask(ca, issuer, target, hash);
        asked += 1;
        let elapsed = since.elapsed();
        if answer.is_verified(expected) {
            assert!(
                elapsed <= within,
                "OCSP answered {expected:?} for {} only {elapsed:?} after the change \
                 (allowed: {within:?}, {asked} requests):\n{}",
                target.label(),
                answer.text
            );
            return (answer, elapsed);
        }
        assert!(
            elapsed < within,
            "OCSP did not answer {expected:?} for {} in a verified response within \
             {within:?} ({asked} requests); the last answer:\n{}",
            target.label(),
            answer.text
        );
        std::thread::sleep(POLL_INTERVAL.saturating_sub(started.elapsed()));
    }
}

/// Parses a time as `openssl` prints ASN.1 times, `Nov 29 19:00:00 2025 GMT`,
/// into Unix seconds.
fn openssl_time(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let [month, day, clock, year, "GMT"] = text.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|name| *name == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let year: u32 = year.parse().ok()?;
    // The fraction openssl may print after the seconds is dropped.
    let clock = clock.split('.').next()?;
    crate::certs::parse_timestamp(&format!("{year:04}-{month:02}-{day:02}T{clock}Z"))
}

/// An issued certificate on disk, with the intermediate that issued it.
struct Leaf {
    /// The leaf, PEM.
    cert: PathBuf,
    /// The leaf, DER.
    der: Vec<u8>,
    /// The CA's intermediate that must have issued it, PEM.
    issuer: PathBuf,
    /// The certificate's key: PKCS#8 DER (P-256 only: it signs a revokeCert).
    key_pkcs8: Option<Vec<u8>>,
}

/// An RSA-2048 key and a CSR for `name` with it, from `openssl`; returns the
/// CSR's DER. The key is left in `dir` as `<name>.key.pem`.
pub(crate) fn rsa_csr(dir: &Path, name: &str) -> Vec<u8> {
    let csr = dir.join(format!("{name}.csr.der"));
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(dir.join(format!("{name}.key.pem")))
            .args([
                "-subj",
                "/",
                "-addext",
                &format!("subjectAltName=DNS:{name}"),
            ])
            .args(["-outform", "DER", "-out"])
            .arg(&csr),
        OPENSSL_TIMEOUT,
    );
    fs::read(&csr).expect("read the RSA CSR")
}

/// Orders a certificate for `name` through `account`, finalizes it with `csr` and
/// downloads it; checks that its chain starts with `intermediate` (a file in the
/// CA's `pki/`) and writes the leaf as `<name>.pem` in `dir`.
async fn issue(
    ca: &DevCa,
    account: &RawAccount,
    http01: &Http01,
    dir: &Path,
    name: &str,
    csr: &[u8],
    intermediate: &str,
) -> (PathBuf, Vec<u8>, PathBuf) {
    let (order_url, order) = account.ready_order(http01, &order_payload(&[name])).await;
    let order = account.finalize(&order_url, &order, csr).await;
    let certificate = order["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("a valid order without a certificate: {order}"));
    let download = account.post(certificate, None).await;
    download.expect_status(StatusCode::OK, "certificate download");
    let chain = pem_certs(&download.text);
    let issuer = ca.pki(intermediate);
    let expected = pem_certs(&fs::read_to_string(&issuer).expect("read the intermediate"));
    assert!(
        chain.len() >= 2 && expected.first() == chain.get(1),
        "the chain of {name} does not start with {intermediate}:\n{}",
        download.text
    );
    let cert = dir.join(format!("{name}.pem"));
    write_pem(&cert, &chain[0]);
    (cert, chain[0].clone(), issuer)
}

/// A certificate with a fresh P-256 key, from the ECDSA intermediate.
async fn ecdsa_leaf(ca: &DevCa, account: &RawAccount, http01: &Http01, dir: &Path) -> Leaf {
    let name = format!("ecdsa-{:x}.ocsp.example.com", random_u64());
    let (csr, key_pkcs8) = cert_csr(&[&name]);
    let (cert, der, issuer) = issue(
        ca,
        account,
        http01,
        dir,
        &name,
        &csr,
        "intermediate-ecdsa.pem",
    )
    .await;
    Leaf {
        cert,
        der,
        issuer,
        key_pkcs8: Some(key_pkcs8),
    }
}

/// A certificate with a fresh RSA key, from the RSA intermediate.
async fn rsa_leaf(ca: &DevCa, account: &RawAccount, http01: &Http01, dir: &Path) -> Leaf {
    let name = format!("rsa-{:x}.ocsp.example.com", random_u64());
    let csr = tokio::task::block_in_place(|| rsa_csr(dir, &name));
    let (cert, der, issuer) = issue(
        ca,
        account,
        http01,
        dir,
        &name,
        &csr,
        "intermediate-rsa.pem",
    )
    .await;
    Leaf {
        cert,
        der,
        issuer,
        key_pkcs8: None,
    }
}

/// A revokeCert payload.
fn revocation(leaf_der: &[u8], reason: u8) -> Value {
    json!({ "certificate": URL_SAFE_NO_PAD.encode(leaf_der), "reason": reason })
}

/// revokeCert signed by the certificate's own key (`jwk`).
async fn revoke_with_key(acme: &Acme, leaf: &Leaf, reason: u8) -> Answer {
    let key_pkcs8 = leaf.key_pkcs8.as_deref().expect("the leaf's P-256 key");
    let key = AccountKey::es256_from_pkcs8(key_pkcs8);
    acme.signed(
        &key,
        None,
        &acme.url("revokeCert"),
        Some(&revocation(&leaf.der, reason)),
    )
    .await
}

/// revokeCert signed by `account` (`kid`).
async fn revoke_as(account: &RawAccount, leaf: &Leaf, reason: u8) -> Answer {
    account
        .post(
            &account.acme.url("revokeCert"),
            Some(&revocation(&leaf.der, reason)),
        )
        .await
}

/// A fresh certificate is `good` within [`STATUS_WITHIN`] of its download;
/// returns how long that took.
fn fresh_is_good(ca: &DevCa, leaf: &Leaf, hash: CertIdHash, downloaded: Instant) -> Duration {
    let (answer, took) = status_becomes(
        ca,
        &leaf.issuer,
        Target::Cert(&leaf.cert),
        hash,
        "good",
        downloaded,
        STATUS_WITHIN,
    );
    assert_eq!(
        answer.hash_algorithm.as_deref(),
        Some(hash.openssl_name()),
        "the response's CertID hash:\n{}",
        answer.text
    );
    assert_eq!(answer.reason, None, "{}", answer.text);
    assert_eq!(answer.revoked_at, None, "{}", answer.text);
    took
}

/// After the revokeCert exchange that ran from `sent` (wall clock, Unix seconds)
/// to `answered`, the leaf is `revoked` for `reason` within [`STATUS_WITHIN`],
/// with a revocation time inside the exchange; returns how long that took.
fn becomes_revoked(
    ca: &DevCa,
    leaf: &Leaf,
    hash: CertIdHash,
    reason: &str,
    sent: i64,
    answered: Instant,
) -> Duration {
    let (answer, took) = status_becomes(
        ca,
        &leaf.issuer,
        Target::Cert(&leaf.cert),
        hash,
        "revoked",
        answered,
        STATUS_WITHIN,
    );
    assert_eq!(
        answer.reason.as_deref(),
        Some(reason),
        "the revocation reason:\n{}",
        answer.text
    );
    assert!(
        answer.text.contains(&format!("Reason: {reason}")),
        "{}",
        answer.text
    );
    let revoked_at = answer
        .revoked_at
        .unwrap_or_else(|| panic!("no revocation time:\n{}", answer.text));
    let now = wall_clock_now();
    assert!(
        sent - REVOCATION_TIME_SLACK <= revoked_at && revoked_at <= now + REVOCATION_TIME_SLACK,
        "the revocation time {revoked_at} is not within the revokeCert exchange \
         ({sent}..{now}):\n{}",
        answer.text
    );
    assert_eq!(
        answer.hash_algorithm.as_deref(),
        Some(hash.openssl_name()),
        "the response's CertID hash:\n{}",
        answer.text
    );
    took
}

/// The ECDSA leaf: `good`, then revoked by its own key, which makes the reason
/// keyCompromise.
async fn ecdsa_good_then_key_compromise(
    ca: Arc<DevCa>,
    acme: Acme,
    account: Arc<RawAccount>,
    http01: Http01,
    hash: CertIdHash,
) {
    let (ca, acme, account, http01) = (&*ca, &acme, &*account, &http01);
    let dir = ca.client_dir(&format!("ocsp-ecdsa-{}", hash.openssl_name()));
    let leaf = ecdsa_leaf(ca, account, http01, &dir).await;
    let downloaded = Instant::now();
    let good = tokio::task::block_in_place(|| fresh_is_good(ca, &leaf, hash, downloaded));
    println!("ocsp ({hash:?}): the ECDSA leaf was good {good:?} after its download");

    let sent = wall_clock_now();
    revoke_with_key(acme, &leaf, 1)
        .await
        .expect_status(StatusCode::OK, "revokeCert signed by the certificate key");
    let answered = Instant::now();
    let took = tokio::task::block_in_place(|| {
        becomes_revoked(ca, &leaf, hash, "keyCompromise", sent, answered)
    });
    println!("ocsp ({hash:?}): the ECDSA leaf was revoked {took:?} after the revokeCert answer");
}

/// The RSA leaf: `good`, then revoked by the account for superseded.
async fn rsa_good_then_superseded(
    ca: Arc<DevCa>,
    account: Arc<RawAccount>,
    http01: Http01,
    hash: CertIdHash,
) {
    let (ca, account, http01) = (&*ca, &*account, &http01);
    let dir = ca.client_dir(&format!("ocsp-rsa-{}", hash.openssl_name()));
    let leaf = rsa_leaf(ca, account, http01, &dir).await;
    let downloaded = Instant::now();
    let good = tokio::task::block_in_place(|| fresh_is_good(ca, &leaf, hash, downloaded));
    println!("ocsp ({hash:?}): the RSA leaf was good {good:?} after its download");

    let sent = wall_clock_now();
    revoke_as(account, &leaf, 4)
        .await
        .expect_status(StatusCode::OK, "revokeCert by the account");
    let answered = Instant::now();
    let took = tokio::task::block_in_place(|| {
        becomes_revoked(ca, &leaf, hash, "superseded", sent, answered)
    });
    println!("ocsp ({hash:?}): the RSA leaf was revoked {took:?} after the revokeCert answer");
}

/// A throwaway CA, unknown to Basalt, and a leaf it signs with `serial`; returns
/// the paths of the CA's certificate and of the leaf (PEM).
fn foreign_issuer(dir: &Path, serial: &Serial) -> (PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("generate the foreign CA key");
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("foreign CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Foreign Test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .expect("self-sign the foreign CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().expect("generate the foreign leaf key");
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["foreign.ocsp.example.com".to_owned()])
            .expect("foreign leaf params");
    leaf_params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("sign the foreign leaf");

    let ca_path = dir.join("foreign-ca.pem");
    let leaf_path = dir.join(format!("foreign-{serial}.pem"));
    fs::write(&ca_path, ca_cert.pem()).expect("write the foreign CA");
    fs::write(&leaf_path, leaf.pem()).expect("write the foreign leaf");
    (ca_path, leaf_path)
}

/// Panics unless the responder refuses the request with `unauthorized` (RFC 6960
/// §2.3), signing nothing.
fn assert_unauthorized(answer: &OcspAnswer, what: &str) {
    assert_eq!(
        answer.responder_error.as_deref(),
        Some("unauthorized (6)"),
        "{what}:\n{}",
        answer.text
    );
    assert_eq!(answer.status, None, "{what}:\n{}", answer.text);
    assert!(!answer.verified, "{what}:\n{}", answer.text);
}

/// Certificates the responder has no authority for are `unauthorized` (RFC 5019
/// §2.2.3): one of a throwaway CA, one of that CA reusing the serial of a Basalt
/// certificate, and a Basalt serial asked under Basalt's other intermediate. A
/// serial Basalt's own issuer never used is `unknown`, in a signed response.
async fn other_issuers_are_unauthorized(
    ca: Arc<DevCa>,
    account: Arc<RawAccount>,
    http01: Http01,
    hash: CertIdHash,
) {
    let (ca, account, http01) = (&*ca, &*account, &http01);
    let dir = ca.client_dir(&format!("ocsp-foreign-{}", hash.openssl_name()));
    let basalt = ecdsa_leaf(ca, account, http01, &dir).await;
    let basalt_serial = serial_of(&basalt.der);
    tokio::task::block_in_place(|| {
        let random: Serial = format!("7f{:016x}{:016x}", random_u64(), random_u64())
            .parse()
            .expect("a hex serial");
        let (foreign_ca, foreign_leaf) = foreign_issuer(&dir, &random);
        assert_unauthorized(
            &ask(ca, &foreign_ca, Target::Cert(&foreign_leaf), hash),
            "a certificate of another CA",
        );

        let (foreign_ca, same_serial) = foreign_issuer(&dir, &basalt_serial);
        assert_unauthorized(
            &ask(ca, &foreign_ca, Target::Cert(&same_serial), hash),
            "a certificate of another CA with the serial of a Basalt certificate",
        );
        // The Basalt certificate itself is answered for: the refusal was the issuer's.
        let answer = ask(ca, &basalt.issuer, Target::Cert(&basalt.cert), hash);
        assert!(
            answer.is_verified("good"),
            "the Basalt certificate whose serial the foreign one reuses:\n{}",
            answer.text
        );

        assert_unauthorized(
            &ask(
                ca,
                &ca.pki("intermediate-rsa.pem"),
                Target::Serial(&basalt_serial),
                hash,
            ),
            "the serial of an ECDSA-issued certificate asked under the RSA intermediate",
        );

        // RFC 6960 §2.2: the issuer is Basalt's, and it never issued this serial.
        let never = ask(ca, &basalt.issuer, Target::Serial(&random), hash);
        assert!(
            never.is_verified("unknown"),
            "a serial the ECDSA intermediate never issued:\n{}",
            never.text
        );
    });
}

/// Every check of this file with CertIDs hashed by `hash`, on one CA.
async fn every_check(label: &str, hash: CertIdHash) {
    let ca = Arc::new(DevCa::start(label));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = Arc::new(RawAccount::create(&acme).await);
    let mut steps = Steps::default();
    steps
        .run_async(
            "ECDSA leaf: good, then revoked for keyCompromise by its key",
            ecdsa_good_then_key_compromise(
                ca.clone(),
                acme.clone(),
                account.clone(),
                http01.clone(),
                hash,
            ),
        )
        .await;
    steps
        .run_async(
            "RSA leaf: good, then revoked for superseded by the account",
            rsa_good_then_superseded(ca.clone(), account.clone(), http01.clone(), hash),
        )
        .await;
    steps
        .run_async(
            "other issuers: unauthorized; a serial never issued: unknown",
            other_issuers_are_unauthorized(ca.clone(), account.clone(), http01.clone(), hash),
        )
        .await;
    steps.finish();
}

// Multi-threaded: openssl runs under `block_in_place`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_good_then_revoked_within_five_seconds_and_other_issuers_unauthorized() {
    every_check("ocsp-sha1", CertIdHash::Sha1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_certids_get_the_same_answers() {
    every_check("ocsp-sha256", CertIdHash::Sha256).await;
}

/// `openssl x509 -ocspid`'s "Public key OCSP hash" of the certificate `cert`: the
/// SHA-1 of its subjectPublicKey, in uppercase hex as `-resp_text` prints a
/// responderID.
fn public_key_ocsp_hash(cert: &Path) -> String {
    let output = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ocspid", "-in"])
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    output
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Public key OCSP hash:"))
        .map(|hash| hash.trim().to_owned())
        .unwrap_or_else(|| panic!("no public key hash in:\n{}", output.text()))
}

/// Panics unless `answer` was signed by the delegated responder `signer` (a
/// file of the CA's `pki/`) rather than by `leaf`'s intermediate: its responderID
/// is the responder's key hash, and the response carries the responder's
/// certificate, whose subject is `signer_cn`.
fn assert_signed_by_delegate(answer: &OcspAnswer, leaf: &Leaf, signer: &Path, signer_cn: &str) {
    let delegate = public_key_ocsp_hash(signer);
    let intermediate = public_key_ocsp_hash(&leaf.issuer);
    assert_ne!(delegate, intermediate);
    let responder = answer
        .text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Responder Id:"))
        .map(str::trim);
    assert_eq!(
        responder,
        Some(delegate.as_str()),
        "the responderID is not the delegated responder's key hash ({delegate}; the \
         intermediate's is {intermediate}):\n{}",
        answer.text
    );
    assert!(
        answer
            .text
            .contains(&format!("Subject: O=Basalt Dev, CN={signer_cn}")),
        "the response does not carry the delegated responder's certificate:\n{}",
        answer.text
    );
}

/// With delegated responders: a leaf of `intermediate` is `good` and then, once
/// revoked (by its own key for the ECDSA leaf, by the account for the RSA one),
/// `revoked`, both in responses that verify up to the roots and that the
/// intermediate's delegated responder `signer` signed.
async fn delegated_good_then_revoked(
    ca: Arc<DevCa>,
    acme: Acme,
    account: Arc<RawAccount>,
    http01: Http01,
    rsa: bool,
) {
    let (ca, acme, account, http01) = (&*ca, &acme, &*account, &http01);
    let (label, signer, signer_cn) = if rsa {
        ("rsa", "ocsp-signer-rsa.pem", "Basalt Dev OCSP Signer RSA")
    } else {
        (
            "ecdsa",
            "ocsp-signer-ecdsa.pem",
            "Basalt Dev OCSP Signer ECDSA",
        )
    };
    let dir = ca.client_dir(&format!("ocsp-delegated-{label}"));
    let leaf = if rsa {
        rsa_leaf(ca, account, http01, &dir).await
    } else {
        ecdsa_leaf(ca, account, http01, &dir).await
    };
    let signer = ca.pki(signer);
    let downloaded = Instant::now();
    tokio::task::block_in_place(|| {
        let (answer, took) = status_becomes(
            ca,
            &leaf.issuer,
            Target::Cert(&leaf.cert),
            CertIdHash::Sha1,
            "good",
            downloaded,
            STATUS_WITHIN,
        );
        assert_signed_by_delegate(&answer, &leaf, &signer, signer_cn);
        println!("ocsp (delegated): the {label} leaf was good {took:?} after its download");
    });

    let sent = wall_clock_now();
    if rsa {
        revoke_as(account, &leaf, 4)
            .await
            .expect_status(StatusCode::OK, "revokeCert by the account");
    } else {
        revoke_with_key(acme, &leaf, 1)
            .await
            .expect_status(StatusCode::OK, "revokeCert signed by the certificate key");
    }
    let answered = Instant::now();
    tokio::task::block_in_place(|| {
        let reason = if rsa { "superseded" } else { "keyCompromise" };
        let took = becomes_revoked(ca, &leaf, CertIdHash::Sha1, reason, sent, answered);
        println!(
            "ocsp (delegated): the {label} leaf was revoked {took:?} after the revokeCert answer"
        );
        for hash in [CertIdHash::Sha1, CertIdHash::Sha256] {
            let answer = ask(ca, &leaf.issuer, Target::Cert(&leaf.cert), hash);
            assert!(
                answer.is_verified("revoked"),
                "the {label} leaf ({hash:?}):\n{}",
                answer.text
            );
            assert_signed_by_delegate(&answer, &leaf, &signer, signer_cn);
        }
    });
}

/// `basalt dev --ocsp-signer delegated`: every OCSP response of both
/// intermediates is signed by their delegated responders, and openssl verifies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_responders_sign_verified_good_then_revoked() {
    let ca = Arc::new(
        DevCa::builder("ocsp-delegated")
            .arg("--ocsp-signer")
            .arg("delegated")
            .start(),
    );
    for signer in ["ocsp-signer-ecdsa.pem", "ocsp-signer-rsa.pem"] {
        assert!(ca.pki(signer).is_file(), "basalt dev made no {signer}");
    }
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = Arc::new(RawAccount::create(&acme).await);
    let mut steps = Steps::default();
    for rsa in [false, true] {
        steps
            .run_async(
                if rsa {
                    "RSA leaf: good, then revoked, signed by the RSA delegated responder"
                } else {
                    "ECDSA leaf: good, then revoked, signed by the ECDSA delegated responder"
                },
                delegated_good_then_revoked(
                    ca.clone(),
                    acme.clone(),
                    account.clone(),
                    http01.clone(),
                    rsa,
                ),
            )
            .await;
    }
    steps.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_times_parse() {
        assert_eq!(
            openssl_time("Feb 29 00:00:00 2000 GMT"),
            crate::certs::parse_timestamp("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            openssl_time("Nov  9 19:05:07 2025 GMT"),
            crate::certs::parse_timestamp("2025-11-09T19:05:07Z")
        );
        assert_eq!(openssl_time("Nov 9 19:05:07 2025"), None);
        assert_eq!(openssl_time("Foo 9 19:05:07 2025 GMT"), None);
    }
}
