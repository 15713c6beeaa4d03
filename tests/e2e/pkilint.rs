//! pkilint, the CA/Browser Forum's reference linter, on the certificates Basalt
//! issues: ECDSA and RSA leaves under every profile must show no ERROR and no
//! FATAL finding (warnings are allowed). The same run keeps the CA's keys in
//! SoftHSM2 and checks which hierarchy each key type gets.
//!
//! pkilint comes from PyPI; `.ci/run` installs it into `/var/tmp/basalt-pkilint`
//! (`BASALT_PKILINT` names another `lint_cabf_serverauth_cert`). The lab's OCSP
//! responder listens on 127.0.0.1, which pkilint rightly calls an internal name, so
//! this CA writes a public-form OCSP URL into its certificates, as a production CA
//! would; nothing here fetches it.

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::certbot::certbot_at;
use crate::certbot::ocsp_status_becomes;
use crate::challenges::certbot5;
use crate::harness::DevCa;
use crate::harness::run;
use crate::harness::run_ok;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const LINT_TIMEOUT: Duration = Duration::from_secs(120);

fn pkilint() -> PathBuf {
    let path = std::env::var_os("BASALT_PKILINT").map_or_else(
        || PathBuf::from("/var/tmp/basalt-pkilint/bin/lint_cabf_serverauth_cert"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run .ci/run, or `python3 -m venv /var/tmp/basalt-pkilint && \
         /var/tmp/basalt-pkilint/bin/pip install pkilint`, or set BASALT_PKILINT",
        path.display()
    );
    path
}

/// Every profile and both key types, with the CA's keys in SoftHSM2: certbot gets
/// each leaf, pkilint finds no error in any, an RSA key gets a leaf from the RSA
/// intermediate and an ECDSA key one from the ECDSA intermediate (each verifying
/// up to its own root only), and the OCSP responses the token's keys sign verify
/// for both issuers, before and after a revocation.
#[test]
fn every_profile_and_key_type_lints_clean_and_chains_to_its_own_hierarchy_with_softhsm_keys() {
    let ca = DevCa::builder("pkilint")
        .softhsm()
        .arg("--ocsp-url")
        .arg("http://ocsp.example.net/")
        .start();
    let mut findings = Vec::new();
    for profile in ["classic", "modern", "shortlived"] {
        for key_type in ["ecdsa", "rsa"] {
            let name = format!("{profile}-{key_type}.example.com");
            let dir = ca.client_dir(&format!("certbot-{profile}-{key_type}"));
            run_ok(
                certbot_at(&certbot5(), &ca, &dir, "certonly")
                    .arg("--standalone")
                    .args(["--http-01-port", &ca.http01_port.to_string()])
                    .args(["--http-01-address", "127.0.0.1"])
                    .args(["--required-profile", profile])
                    .args(["--key-type", key_type])
                    .args(["--agree-tos", "--register-unsafely-without-email"])
                    .args(["--cert-name", "leaf", "-d", &name]),
                CLIENT_TIMEOUT,
            );
            let live = dir.join("config/live/leaf");
            let leaf = live.join("cert.pem");
            let out = run(
                Command::new(pkilint())
                    .args(["lint", "-t", "DV-FINAL-CERTIFICATE", "-s", "ERROR"])
                    .arg(&leaf),
                LINT_TIMEOUT,
            );
            let text = out.text();
            if text.contains("(ERROR)") || text.contains("(FATAL)") || !out.status.success() {
                findings.push(format!("{name} ({profile}, {key_type}):\n{text}"));
            }
            let hierarchy = if key_type == "rsa" { "rsa" } else { "ecdsa" };
            let other = if key_type == "rsa" { "ecdsa" } else { "rsa" };
            let intermediate = ca.pki(&format!("intermediate-{hierarchy}.pem"));
            assert_eq!(
                first_cert(&live.join("chain.pem")),
                first_cert(&intermediate),
                "{name}: the chain starts with the {hierarchy} intermediate"
            );
            assert!(
                verifies(
                    &ca.pki(&format!("root-{hierarchy}.pem")),
                    &intermediate,
                    &leaf
                ),
                "{name} verifies up to the {hierarchy} root"
            );
            assert!(
                !verifies(&ca.pki(&format!("root-{other}.pem")), &intermediate, &leaf),
                "{name} does not verify up to the {other} root"
            );
            if profile == "classic" {
                ocsp_status_becomes(&ca, &intermediate, &leaf, "good");
                if key_type == "rsa" {
                    run_ok(
                        certbot_at(&certbot5(), &ca, &dir, "revoke")
                            .arg("--cert-path")
                            .arg(&leaf)
                            .args(["--reason", "superseded", "--no-delete-after-revoke"]),
                        CLIENT_TIMEOUT,
                    );
                    ocsp_status_becomes(&ca, &intermediate, &leaf, "revoked");
                }
            }
        }
    }
    assert!(findings.is_empty(), "pkilint:\n{}", findings.join("\n"));
}

/// The first certificate of a PEM file, as text.
fn first_cert(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let end = "-----END CERTIFICATE-----";
    let stop = text.find(end).map(|at| at + end.len());
    let start = text.find("-----BEGIN CERTIFICATE-----");
    match (start, stop) {
        (Some(start), Some(stop)) => text[start..stop].to_owned(),
        _ => panic!("no certificate in {}", path.display()),
    }
}

/// Whether `openssl verify` accepts `leaf` with `intermediate` up to `root` only.
fn verifies(root: &Path, intermediate: &Path, leaf: &Path) -> bool {
    let out = run(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(root)
            .arg("-untrusted")
            .arg(intermediate)
            .arg(leaf),
        LINT_TIMEOUT,
    );
    out.status.success() && out.stdout.trim_end().ends_with(": OK")
}
