//! certbot against `basalt dev`: account, order, http-01 through certbot's
//! standalone server, finalize, download, OCSP, a forced renewal, revoke, then
//! the account's contact update and deactivation.

use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use crate::harness::DevCa;
use crate::harness::run_fails;
use crate::harness::run_ok;
use crate::ocsp;
use crate::steps::Steps;

const DOMAIN: &str = "certbot-one.example.com";
const NEW_EMAIL: &str = "new@example.com";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// A certbot command with its state under `dir`, talking to `ca`.
pub(crate) fn certbot(ca: &DevCa, dir: &Path, subcommand: &str) -> Command {
    certbot_at(Path::new("certbot"), ca, dir, subcommand)
}

/// [`certbot`] with the certbot program at `program`.
pub(crate) fn certbot_at(program: &Path, ca: &DevCa, dir: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg(subcommand)
        .args(["--server", &ca.directory_url])
        .arg("--non-interactive")
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .env("REQUESTS_CA_BUNDLE", &ca.api_ca);
    cmd
}

/// The first PEM certificate in `chain`, written to `out`.
pub(crate) fn write_first_cert(chain: &Path, out: &Path) {
    let text = fs::read_to_string(chain).expect("read the chain");
    let end_marker = "-----END CERTIFICATE-----";
    let end = text
        .find(end_marker)
        .unwrap_or_else(|| panic!("no certificate in {}", chain.display()))
        + end_marker.len();
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a BEGIN marker before the END marker");
    fs::write(out, format!("{}\n", &text[start..end])).expect("write the first cert");
}

/// Asks the OCSP responder about `cert` until it answers with `expected` status
/// (`good` or `revoked`) in a signed response that verifies against the root.
pub(crate) fn ocsp_status_becomes(ca: &DevCa, issuer: &Path, cert: &Path, expected: &str) {
    ocsp::status_becomes(
        ca,
        issuer,
        ocsp::Target::Cert(cert),
        ocsp::CertIdHash::Sha1,
        expected,
        Instant::now(),
        Duration::from_secs(20),
    );
}

/// The serial number of the certificate in `cert`, as openssl prints it.
pub(crate) fn serial(cert: &Path) -> String {
    let output = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    output
        .stdout
        .trim()
        .strip_prefix("serial=")
        .unwrap_or_else(|| panic!("no serial in {:?}", output.stdout))
        .to_owned()
}

/// `openssl verify` of `cert` against the CA's root with `chain` as intermediates.
fn verify(ca: &DevCa, chain: &Path, cert: &Path) {
    let verify = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(ca.pki("root.pem"))
            .arg("-untrusted")
            .arg(chain)
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    assert!(
        verify.stdout.trim_end().ends_with(": OK"),
        "openssl verify: {}",
        verify.text()
    );
}

/// The latest certbot log (certbot rotates it on every run).
fn certbot_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default()
}

fn issue(ca: &DevCa, dir: &Path) {
    run_ok(
        certbot(ca, dir, "certonly")
            .args([
                "--standalone",
                "--agree-tos",
                "--register-unsafely-without-email",
            ])
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"])
            .args(["-d", DOMAIN]),
        CLIENT_TIMEOUT,
    );

    let live: PathBuf = dir.join("config/live").join(DOMAIN);
    let cert = live.join("cert.pem");
    let chain = live.join("chain.pem");
    verify(ca, &chain, &cert);

    let san = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&cert),
        OPENSSL_TIMEOUT,
    );
    assert!(
        san.stdout.contains(&format!("DNS:{DOMAIN}")),
        "SAN: {}",
        san.stdout
    );

    let issuer = dir.join("issuer.pem");
    write_first_cert(&chain, &issuer);
    ocsp_status_becomes(ca, &issuer, &cert, "good");
}

/// `certbot renew --force-renewal` gets a new certificate with a new serial.
fn renew(ca: &DevCa, dir: &Path) {
    let live: PathBuf = dir.join("config/live").join(DOMAIN);
    let cert = live.join("cert.pem");
    let before = serial(&cert);
    run_ok(
        certbot(ca, dir, "renew")
            .args(["--cert-name", DOMAIN])
            .args(["--force-renewal", "--no-random-sleep-on-renew"])
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"]),
        CLIENT_TIMEOUT,
    );
    let after = serial(&cert);
    assert_ne!(before, after, "certbot renew kept the old certificate");
    let chain = live.join("chain.pem");
    verify(ca, &chain, &cert);
    let issuer = dir.join("issuer.pem");
    write_first_cert(&chain, &issuer);
    ocsp_status_becomes(ca, &issuer, &cert, "good");
}

fn revoke(ca: &DevCa, dir: &Path) {
    let live: PathBuf = dir.join("config/live").join(DOMAIN);
    let cert = live.join("cert.pem");
    let issuer = dir.join("issuer.pem");
    write_first_cert(&live.join("chain.pem"), &issuer);
    let revoke = || {
        let mut cmd = certbot(ca, dir, "revoke");
        cmd.arg("--cert-path").arg(&cert).args([
            "--no-delete-after-revoke",
            "--reason",
            "keycompromise",
        ]);
        cmd
    };
    run_ok(&mut revoke(), CLIENT_TIMEOUT);
    ocsp_status_becomes(ca, &issuer, &cert, "revoked");

    let again = run_fails(&mut revoke(), CLIENT_TIMEOUT);
    // certbot 2.1 on Python 3.11 masks ACME errors with "AttributeError: can't set
    // attribute" (josepy's immutable Error), so look in its log for the problem type.
    let log = certbot_log(dir);
    assert!(
        again.text().contains("alreadyRevoked")
            || log.contains("urn:ietf:params:acme:error:alreadyRevoked"),
        "the second revocation failed for another reason: {}\n--- certbot log ---\n{log}",
        again.text()
    );
}

/// `certbot update_account -m` changes the contact on the server, as
/// `certbot show_account` (which asks the server) shows.
fn update_account(ca: &DevCa, dir: &Path) {
    run_ok(
        certbot(ca, dir, "update_account").args(["-m", NEW_EMAIL, "--no-eff-email"]),
        CLIENT_TIMEOUT,
    );
    let shown = run_ok(&mut certbot(ca, dir, "show_account"), CLIENT_TIMEOUT);
    assert!(
        shown
            .text()
            .contains(&format!("Email contact: {NEW_EMAIL}")),
        "show_account after update_account: {}",
        shown.text()
    );
}

/// `certbot unregister` deactivates the account: certbot then forgets it, so put
/// its files back and see the server refuse it.
fn unregister(ca: &DevCa, dir: &Path) {
    let accounts = dir.join("config/accounts");
    let saved = dir.join("accounts-saved");
    run_ok(
        Command::new("cp").arg("-a").arg(&accounts).arg(&saved),
        OPENSSL_TIMEOUT,
    );
    run_ok(&mut certbot(ca, dir, "unregister"), CLIENT_TIMEOUT);

    fs::remove_dir_all(&accounts).expect("remove what certbot left of the accounts");
    run_ok(
        Command::new("cp").arg("-a").arg(&saved).arg(&accounts),
        OPENSSL_TIMEOUT,
    );
    let refused = run_fails(&mut certbot(ca, dir, "show_account"), CLIENT_TIMEOUT);
    let log = certbot_log(dir);
    assert!(
        refused
            .text()
            .contains("urn:ietf:params:acme:error:unauthorized")
            || log.contains("urn:ietf:params:acme:error:unauthorized"),
        "show_account with a deactivated account failed for another reason: {}\n--- certbot log ---\n{log}",
        refused.text()
    );
}

/// The whole certbot flow against `ca`: issue, then (if that worked) renew,
/// revoke, update the account and unregister; fails at the end if any step did.
fn issue_renew_revoke_unregister(ca: &DevCa) {
    let dir = ca.client_dir("certbot");
    let mut steps = Steps::default();

    if steps.run("issue", || issue(ca, &dir)).is_none() {
        for step in ["renew", "revoke", "update_account", "unregister"] {
            steps.skipped(step, "issue");
        }
        steps.finish();
        return;
    }
    steps.run("renew --force-renewal", || renew(ca, &dir));
    steps.run("revoke", || revoke(ca, &dir));
    steps.run("update_account", || update_account(ca, &dir));
    steps.run("unregister", || unregister(ca, &dir));
    steps.finish();
}

#[test]
fn certbot_issues_renews_revokes_and_unregisters() {
    issue_renew_revoke_unregister(&DevCa::start("certbot"));
}

#[test]
fn certbot_on_postgres_issues_renews_revokes_and_unregisters() {
    let ca = DevCa::builder("certbot-postgres").postgres().start();
    issue_renew_revoke_unregister(&ca);
    ca.assert_certificates_in_database(2);
}

#[test]
fn certbot_on_mariadb_issues_renews_revokes_and_unregisters() {
    let ca = DevCa::builder("certbot-mariadb").mariadb().start();
    issue_renew_revoke_unregister(&ca);
    ca.assert_certificates_in_database(2);
}
