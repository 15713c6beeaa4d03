//! pkilint, the CA/Browser Forum's reference linter, on the certificates Basalt
//! issues: ECDSA and RSA leaves under the classic and modern profiles must show no
//! ERROR and no FATAL finding (warnings are allowed). The short-lived profile is not
//! here yet: its leaves carry no authorityInfoAccess (no OCSP, and no caIssuers
//! URL, which Basalt does not publish yet) and no revocation information, which
//! pkilint reports as errors.
//!
//! pkilint comes from PyPI; `.ci/run` installs it into `/var/tmp/basalt-pkilint`
//! (`BASALT_PKILINT` names another `lint_cabf_serverauth_cert`). The lab's OCSP
//! responder listens on 127.0.0.1, which pkilint rightly calls an internal name, so
//! this CA writes a public-form OCSP URL into its certificates, as a production CA
//! would; nothing here fetches it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::certbot::certbot_at;
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

#[test]
fn pkilint_finds_no_error_in_classic_and_modern_leaves() {
    let ca = DevCa::builder("pkilint")
        .arg("--ocsp-url")
        .arg("http://ocsp.example.net/")
        .start();
    let mut findings = Vec::new();
    for profile in ["classic", "modern"] {
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
            let leaf = dir.join("config/live/leaf/cert.pem");
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
        }
    }
    assert!(findings.is_empty(), "pkilint:\n{}", findings.join("\n"));
}
