//! Every challenge type with a real client: lego answering tls-alpn-01 with its own
//! TLS server, lego answering dns-01 for a wildcard and its base name through its
//! `exec` provider (which sets TXT records on the mock DNS), and certbot 5 getting
//! a certificate for an IP address (RFC 8738) under the short-lived profile.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::certbot::certbot_at;
use crate::certbot::write_first_cert;
use crate::harness::DevCa;
use crate::harness::run_ok;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// lego with its state under `dir`, for `names`, talking to `ca`; the challenge
/// flags come from the caller.
pub(crate) fn lego(ca: &DevCa, dir: &Path, names: &[&str]) -> Command {
    let mut cmd = Command::new("lego");
    cmd.args(["--server", &ca.directory_url])
        .args(["--email", "lego@example.com", "--accept-tos"])
        .arg("--path")
        .arg(dir)
        .env("LEGO_CA_CERTIFICATES", &ca.api_ca);
    for name in names {
        cmd.args(["--domains", name]);
    }
    cmd
}

/// The leaf lego saved for `first` passes [`check_pem`].
pub(crate) fn check_leaf(ca: &DevCa, dir: &Path, first: &str, want: &[&str]) -> String {
    let file_name = first.replace('*', "_");
    check_pem(
        ca,
        &dir.join("certificates").join(format!("{file_name}.crt")),
        want,
    )
}

/// The first certificate of `bundle` (leaf, then chain) verifies against the dev
/// root with the rest as intermediates, and its SAN is exactly `want` (openssl's
/// spelling, e.g. `DNS:a.example`, `IP Address:127.0.0.1`). Returns its text.
fn check_pem(ca: &DevCa, bundle: &Path, want: &[&str]) -> String {
    let leaf = bundle.with_extension("leaf.pem");
    write_first_cert(bundle, &leaf);
    let verify = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(ca.pki("root.pem"))
            .arg("-untrusted")
            .arg(bundle)
            .arg(&leaf),
        OPENSSL_TIMEOUT,
    );
    assert!(
        verify.stdout.trim_end().ends_with(": OK"),
        "openssl verify: {}",
        verify.text()
    );
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf),
        OPENSSL_TIMEOUT,
    )
    .stdout;
    let san = text
        .lines()
        .skip_while(|line| !line.contains("X509v3 Subject Alternative Name"))
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut got: Vec<&str> = san.split(", ").collect();
    got.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "SAN of {}", bundle.display());
    text
}

#[test]
fn lego_answers_tls_alpn_01() {
    let ca = DevCa::start("tls-alpn");
    let dir = ca.client_dir("lego-tls");
    run_ok(
        lego(&ca, &dir, &["alpn.example.com"])
            .arg("--tls")
            .args(["--tls.port", &format!("127.0.0.1:{}", ca.tlsalpn01_port)])
            .arg("run"),
        CLIENT_TIMEOUT,
    );
    check_leaf(&ca, &dir, "alpn.example.com", &["DNS:alpn.example.com"]);
    assert!(
        ca.log("va").contains("challenge=tls-alpn-01"),
        "the VA never validated tls-alpn-01"
    );
}

/// A script for lego's `exec` DNS provider: `present FQDN VALUE` adds the TXT
/// record on the mock DNS through its management API; `cleanup` leaves it (the
/// mock DNS dies with the test), so a second record at the same name (a wildcard
/// and its base name share `_acme-challenge.<base>`) never removes the first.
fn exec_script(ca: &DevCa, dir: &Path) -> PathBuf {
    let path = dir.join("dns-exec.sh");
    fs::create_dir_all(dir).expect("create the client dir");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nset -eu\n[ \"$1\" = present ] || exit 0\n\
             exec curl -sf -X POST -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" \
             http://127.0.0.1:{}/set-txt\n",
            ca.dns_management_port
        ),
    )
    .expect("write the exec script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the script");
    path
}

#[test]
fn lego_answers_dns_01_for_a_wildcard_and_its_base_name() {
    let ca = DevCa::start("dns-01");
    let dir = ca.client_dir("lego-dns");
    let script = exec_script(&ca, &dir);
    run_ok(
        lego(&ca, &dir, &["*.wild.example.com", "wild.example.com"])
            .args(["--dns", "exec"])
            .args(["--dns.resolvers", &ca.dns_server()])
            .arg("--dns.disable-cp")
            .env("EXEC_PATH", &script)
            .env("EXEC_POLLING_INTERVAL", "1")
            .env("EXEC_PROPAGATION_TIMEOUT", "30")
            // The exec provider solves one challenge at a time and waits 60 s
            // between them unless told otherwise.
            .env("EXEC_SEQUENCE_INTERVAL", "1")
            .arg("run"),
        CLIENT_TIMEOUT,
    );
    check_leaf(
        &ca,
        &dir,
        "*.wild.example.com",
        &["DNS:*.wild.example.com", "DNS:wild.example.com"],
    );
    assert!(
        ca.log("va").contains("challenge=dns-01"),
        "the VA never validated dns-01"
    );
}

/// certbot 5 (Debian's certbot 2.1 predates IP addresses and profiles): `.ci/run`
/// installs it from PyPI into `/var/tmp/basalt-certbot5`; `BASALT_CERTBOT5` names
/// another one.
pub(crate) fn certbot5() -> PathBuf {
    let path = std::env::var_os("BASALT_CERTBOT5").map_or_else(
        || PathBuf::from("/var/tmp/basalt-certbot5/bin/certbot"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run .ci/run, or `python3 -m venv /var/tmp/basalt-certbot5 && \
         /var/tmp/basalt-certbot5/bin/pip install certbot==5.8.0`, or set BASALT_CERTBOT5",
        path.display()
    );
    path
}

#[test]
fn certbot_gets_an_ip_address_certificate_under_the_short_lived_profile() {
    let ca = DevCa::start("ip-shortlived");
    let dir = ca.client_dir("certbot-ip");
    run_ok(
        certbot_at(&certbot5(), &ca, &dir, "certonly")
            .arg("--standalone")
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"])
            .args(["--ip-address", "127.0.0.1"])
            .args(["--required-profile", "shortlived"])
            .args(["--agree-tos", "--register-unsafely-without-email"])
            .args(["--cert-name", "ip"]),
        CLIENT_TIMEOUT,
    );
    let live = dir.join("config/live/ip");
    let text = check_pem(&ca, &live.join("fullchain.pem"), &["IP Address:127.0.0.1"]);
    // 160 hours, not the classic 90 days.
    let not_before = field(&text, "Not Before: ");
    let not_after = field(&text, "Not After : ");
    let hours = (openssl_time(&not_after) - openssl_time(&not_before)) / 3600;
    assert!(
        (159..=160).contains(&hours),
        "validity {not_before} .. {not_after} is {hours} h"
    );
}

fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in the certificate"))
        .to_owned()
}

/// Seconds since the epoch of an openssl date such as `Nov 29 13:40:00 2026 GMT`,
/// through `date`, which reads that form.
fn openssl_time(text: &str) -> i64 {
    let out = run_ok(
        Command::new("date").args(["-u", "-d", text, "+%s"]),
        OPENSSL_TIMEOUT,
    );
    out.stdout.trim().parse().expect("date printed seconds")
}

/// Sets the CAA record set of `name` on the mock DNS: one `issue` record per value.
fn set_caa(ca: &DevCa, name: &str, issuers: &[&str]) {
    let policies = issuers
        .iter()
        .map(|issuer| format!("{{\"tag\":\"issue\",\"value\":\"{issuer}\"}}"))
        .collect::<Vec<_>>()
        .join(",");
    run_ok(
        Command::new("curl")
            .args(["-sf", "-X", "POST", "-d"])
            .arg(format!(
                "{{\"host\":\"{name}.\",\"policies\":[{policies}]}}"
            ))
            .arg(format!(
                "http://127.0.0.1:{}/add-caa",
                ca.dns_management_port
            )),
        OPENSSL_TIMEOUT,
    );
}

/// CAA on a parent domain naming another CA stops issuance with a `caa` problem,
/// after the challenge was met; naming the lab CA (`basalt-dev.example`) allows it.
#[test]
fn caa_decides_after_the_challenge() {
    let ca = DevCa::start("caa");
    set_caa(&ca, "forbidden.example.com", &["other-ca.example"]);
    set_caa(
        &ca,
        "allowed.example.com",
        &["other-ca.example", "basalt-dev.example"],
    );
    let http = |cmd: &mut Command| {
        cmd.arg("--http")
            .args(["--http.port", &format!("127.0.0.1:{}", ca.http01_port)])
            .arg("run");
    };

    let dir = ca.client_dir("lego-caa-forbidden");
    let mut forbidden = lego(&ca, &dir, &["www.forbidden.example.com"]);
    http(&mut forbidden);
    let out = crate::harness::run_fails(&mut forbidden, CLIENT_TIMEOUT);
    assert!(
        out.text().contains("urn:ietf:params:acme:error:caa"),
        "lego: {}",
        out.text()
    );

    let dir = ca.client_dir("lego-caa-allowed");
    let mut allowed = lego(&ca, &dir, &["www.allowed.example.com"]);
    http(&mut allowed);
    run_ok(&mut allowed, CLIENT_TIMEOUT);
    check_leaf(
        &ca,
        &dir,
        "www.allowed.example.com",
        &["DNS:www.allowed.example.com"],
    );
}
