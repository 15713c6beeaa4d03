//! Alternate chains (RFC 8555 §7.4.2) against `basalt dev`: the dev ECDSA
//! intermediate is also cross-signed by "Basalt Dev Root X2", and clients that
//! prefer that root (certbot and lego `--preferred-chain`) get the cross-signed
//! chain, while the default chain still leads to the dev roots (`root.pem`).
//! Both clients make ECDSA keys by default, so their certificates come from the
//! ECDSA intermediate.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::certbot::certbot;
use crate::harness::DevCa;
use crate::harness::run;
use crate::harness::run_ok;
use crate::steps::Steps;

const ROOT_X2_CN: &str = "Basalt Dev Root X2";
const CERTBOT_DEFAULT_DOMAIN: &str = "chains-default.example.com";
const CERTBOT_X2_DOMAIN: &str = "chains-x2.example.com";
const LEGO_X2_DOMAIN: &str = "chains-lego.example.com";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// The base64 bodies of the PEM certificates in `path`, whitespace removed, so
/// certificates compare by their DER whatever the line wrapping.
fn pem_certs(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let mut certs = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .unwrap_or_else(|| panic!("unterminated certificate in {}", path.display()));
        certs.push(body[..end].split_whitespace().collect());
        rest = &body[end..];
    }
    certs
}

/// Asserts that the first certificate of `chain` is the one in `expected`.
fn assert_first_cert_is(chain: &Path, expected: &Path) {
    let chain_certs = pem_certs(chain);
    let expected_certs = pem_certs(expected);
    assert_eq!(
        expected_certs.len(),
        1,
        "{} should hold one certificate",
        expected.display()
    );
    assert_eq!(
        chain_certs.first(),
        expected_certs.first(),
        "the first certificate of {} is not {}",
        chain.display(),
        expected.display()
    );
}

/// `openssl verify -CAfile ROOT -untrusted CHAIN CERT`: whether it printed OK,
/// and everything it printed.
fn verifies(root: &Path, chain: &Path, cert: &Path) -> (bool, String) {
    let output = run(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(root)
            .arg("-untrusted")
            .arg(chain)
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    let ok = output.status.success() && output.stdout.trim_end().ends_with(": OK");
    (ok, output.text())
}

fn assert_verifies(root: &Path, chain: &Path, cert: &Path) {
    let (ok, text) = verifies(root, chain, cert);
    assert!(
        ok,
        "{} does not verify against {} with {}: {text}",
        cert.display(),
        root.display(),
        chain.display()
    );
}

fn assert_does_not_verify(root: &Path, chain: &Path, cert: &Path) {
    let (ok, text) = verifies(root, chain, cert);
    assert!(
        !ok,
        "{} unexpectedly verifies against {} with {}: {text}",
        cert.display(),
        root.display(),
        chain.display()
    );
}

/// `certbot certonly` for `domain`, with `extra` flags; returns certbot's live dir.
fn certbot_issue(ca: &DevCa, dir: &Path, domain: &str, extra: &[&str]) -> std::path::PathBuf {
    run_ok(
        certbot(ca, dir, "certonly")
            .args([
                "--standalone",
                "--agree-tos",
                "--register-unsafely-without-email",
            ])
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"])
            .args(["-d", domain])
            .args(extra),
        CLIENT_TIMEOUT,
    );
    dir.join("config/live").join(domain)
}

/// Without a preference certbot keeps the default chain: the dev ECDSA
/// intermediate, leading to the dev roots and not to Root X2.
fn certbot_default(ca: &DevCa, dir: &Path) {
    let live = certbot_issue(ca, dir, CERTBOT_DEFAULT_DOMAIN, &[]);
    let (cert, chain) = (live.join("cert.pem"), live.join("chain.pem"));
    assert_first_cert_is(&chain, &ca.pki("intermediate-ecdsa.pem"));
    assert_verifies(&ca.pki("root.pem"), &chain, &cert);
    assert_does_not_verify(&ca.pki("root-x2.pem"), &chain, &cert);
}

/// `--preferred-chain "Basalt Dev Root X2"`: certbot follows the alternate link
/// and keeps the cross-signed intermediate, which leads to Root X2.
fn certbot_preferred(ca: &DevCa, dir: &Path) {
    let live = certbot_issue(
        ca,
        dir,
        CERTBOT_X2_DOMAIN,
        &["--preferred-chain", ROOT_X2_CN],
    );
    let (cert, chain) = (live.join("cert.pem"), live.join("chain.pem"));
    assert_first_cert_is(&chain, &ca.pki("intermediate-x2.pem"));
    assert_verifies(&ca.pki("root-x2.pem"), &chain, &cert);
    assert_does_not_verify(&ca.pki("root.pem"), &chain, &cert);
}

/// `lego run --preferred-chain "Basalt Dev Root X2"` likewise.
fn lego_preferred(ca: &DevCa, dir: &Path) {
    run_ok(
        Command::new("lego")
            .args(["--server", &ca.directory_url])
            .args(["--email", "lego@example.com", "--accept-tos"])
            .args(["--domains", LEGO_X2_DOMAIN])
            .arg("--http")
            .args(["--http.port", &format!("127.0.0.1:{}", ca.http01_port)])
            .arg("--path")
            .arg(dir)
            .arg("run")
            .args(["--preferred-chain", ROOT_X2_CN])
            .env("LEGO_CA_CERTIFICATES", &ca.api_ca),
        CLIENT_TIMEOUT,
    );
    let certs = dir.join("certificates");
    let bundle = certs.join(format!("{LEGO_X2_DOMAIN}.crt"));
    let issuer = certs.join(format!("{LEGO_X2_DOMAIN}.issuer.crt"));
    assert_first_cert_is(&issuer, &ca.pki("intermediate-x2.pem"));
    // The bundle is the leaf, then the chain.
    let leaf = dir.join("leaf.pem");
    crate::certbot::write_first_cert(&bundle, &leaf);
    assert_eq!(pem_certs(&bundle).len(), 2, "{}", bundle.display());
    assert_eq!(pem_certs(&bundle)[1], pem_certs(&issuer)[0]);
    assert_verifies(&ca.pki("root-x2.pem"), &bundle, &leaf);
    assert_does_not_verify(&ca.pki("root.pem"), &bundle, &leaf);
}

#[test]
fn clients_choose_the_cross_signed_chain() {
    let ca = DevCa::start("alternate-chains");
    let certbot_dir = ca.client_dir("certbot");
    let lego_dir = ca.client_dir("lego");
    let mut steps = Steps::default();
    steps.run("certbot default chain", || {
        certbot_default(&ca, &certbot_dir)
    });
    steps.run("certbot --preferred-chain", || {
        certbot_preferred(&ca, &certbot_dir);
    });
    steps.run("lego run --preferred-chain", || {
        lego_preferred(&ca, &lego_dir);
    });
    steps.finish();
}
