//! lego against `basalt dev`: a two-name certificate through lego's own http-01
//! server, a renewal, then revocation.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::certbot::ocsp_status_becomes;
use crate::certbot::serial;
use crate::certbot::write_first_cert;
use crate::harness::DevCa;
use crate::harness::run_ok;
use crate::steps::Steps;

const DOMAINS: [&str; 2] = ["lego-one.example.com", "lego-two.example.com"];
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// A lego command for [`DOMAINS`] by http-01, with its state under `dir`, talking
/// to `ca`.
fn lego(ca: &DevCa, dir: &Path, subcommand: &str) -> Command {
    let mut cmd = crate::challenges::lego(ca, dir, &DOMAINS);
    cmd.arg("--http")
        .args(["--http.port", &format!("127.0.0.1:{}", ca.http01_port)])
        .arg(subcommand);
    cmd
}

/// The leaf of lego's bundle written to `DIR/leaf.pem`, verified against the
/// root, with every name in its SAN; and OCSP says it is good.
fn check_certificate(ca: &DevCa, dir: &Path) {
    let certs = dir.join("certificates");
    let bundle = certs.join(format!("{}.crt", DOMAINS[0]));
    let issuer_file = certs.join(format!("{}.issuer.crt", DOMAINS[0]));
    // The .crt holds the leaf first and then the chain; openssl reads the leaf
    // from it and finds the intermediate among the -untrusted certificates.
    let leaf = dir.join("leaf.pem");
    write_first_cert(&bundle, &leaf);
    let verify = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(ca.pki("root.pem"))
            .arg("-untrusted")
            .arg(&bundle)
            .arg(&leaf),
        OPENSSL_TIMEOUT,
    );
    assert!(
        verify.stdout.trim_end().ends_with(": OK"),
        "openssl verify: {}",
        verify.text()
    );

    let san = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&leaf),
        OPENSSL_TIMEOUT,
    );
    for domain in DOMAINS {
        assert!(
            san.stdout.contains(&format!("DNS:{domain}")),
            "{domain} missing from SAN: {}",
            san.stdout
        );
    }

    let issuer = dir.join("issuer.pem");
    write_first_cert(&issuer_file, &issuer);
    ocsp_status_becomes(ca, &issuer, &leaf, "good");
}

/// `lego renew --days 100`: the 90-day certificate is due, so lego renews it.
fn renew(ca: &DevCa, dir: &Path) {
    let before = serial(&dir.join("leaf.pem"));
    run_ok(
        lego(ca, dir, "renew").args(["--days", "100", "--no-random-sleep"]),
        CLIENT_TIMEOUT,
    );
    check_certificate(ca, dir);
    let after = serial(&dir.join("leaf.pem"));
    assert_ne!(before, after, "lego renew kept the old certificate");
}

fn revoke(ca: &DevCa, dir: &Path) {
    run_ok(
        lego(ca, dir, "revoke").args(["--keep", "--reason", "1"]),
        CLIENT_TIMEOUT,
    );
    ocsp_status_becomes(
        ca,
        &dir.join("issuer.pem"),
        &dir.join("leaf.pem"),
        "revoked",
    );
}

/// The whole lego flow against `ca`: a two-name certificate, then (if that
/// worked) a renewal and a revocation; fails at the end if any step did.
fn issue_renew_revoke(ca: &DevCa) {
    let dir = ca.client_dir("lego");
    let mut steps = Steps::default();

    let issued = steps.run("issue", || {
        run_ok(&mut lego(ca, &dir, "run"), CLIENT_TIMEOUT);
        check_certificate(ca, &dir);
    });
    if issued.is_none() {
        steps.skipped("renew", "issue");
        steps.skipped("revoke", "issue");
        steps.finish();
        return;
    }
    steps.run("renew --days 100", || renew(ca, &dir));
    steps.run("revoke", || revoke(ca, &dir));
    steps.finish();
}

#[test]
fn lego_issues_two_names_renews_and_revokes() {
    issue_renew_revoke(&DevCa::start("lego"));
}

#[test]
fn lego_on_postgres_issues_two_names_renews_and_revokes() {
    let ca = DevCa::builder("lego-postgres").postgres().start();
    issue_renew_revoke(&ca);
    ca.assert_certificates_in_database(2);
}

#[test]
fn lego_on_mariadb_issues_two_names_renews_and_revokes() {
    let ca = DevCa::builder("lego-mariadb").mariadb().start();
    issue_renew_revoke(&ca);
    ca.assert_certificates_in_database(2);
}
