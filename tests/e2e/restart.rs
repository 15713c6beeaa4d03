//! `basalt dev` as an operator sees it: one OS process per service, the issuer key
//! named only by the CA's config, and a restart that keeps accounts and
//! certificates.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::certbot::certbot;
use crate::harness::DevCa;
use crate::harness::processes_mentioning;
use crate::harness::run_ok;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // "pid (comm) state ppid …"; comm may hold spaces, so split after the last ')'.
    let after_comm = &stat[stat.rfind(')').expect("a comm field") + 2..];
    after_comm
        .split_whitespace()
        .nth(1)
        .and_then(|ppid| ppid.parse().ok())
        .expect("a ppid field")
}

fn certonly(ca: &DevCa, dir: &std::path::Path, domain: &str) {
    run_ok(
        certbot(ca, dir, "certonly")
            .args([
                "--standalone",
                "--agree-tos",
                "--register-unsafely-without-email",
            ])
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"])
            .args(["-d", domain]),
        CLIENT_TIMEOUT,
    );
}

#[test]
fn every_service_is_its_own_process_and_only_the_ca_names_the_issuer_key() {
    let ca = DevCa::start("processes");
    let launcher = ca.launcher_pid();
    let processes = processes_mentioning(&ca.data_dir);
    for service in ["sa", "ra", "va", "ca", "wfe", "ocsp"] {
        let config = ca.data_dir.join(format!("config/{service}.toml"));
        let wanted = format!(" {service} --config {}", config.display());
        let (pid, _) = processes
            .iter()
            .find(|(_, cmdline)| cmdline.contains(&wanted))
            .unwrap_or_else(|| panic!("no process runs the {service} service: {processes:#?}"));
        assert_ne!(*pid, launcher);
        assert_eq!(
            parent_of(*pid),
            launcher,
            "{service} is not a child of basalt dev"
        );
    }

    let key = ca.data_dir.join("ca-keys/intermediate.key");
    let mode = fs::metadata(&key)
        .expect("the issuer key")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the issuer key is readable by others: {mode:o}"
    );
    let dir_mode = fs::metadata(ca.data_dir.join("ca-keys"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        dir_mode & 0o077,
        0,
        "ca-keys/ is open to others: {dir_mode:o}"
    );
    for entry in fs::read_dir(ca.data_dir.join("config")).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let names_key = text.contains("ca-keys/");
        let is_ca = path.file_name().is_some_and(|name| name == "ca.toml");
        assert_eq!(
            names_key,
            is_ca,
            "{} and the issuer key:\n{text}",
            path.display()
        );
    }
}

#[test]
fn a_restart_keeps_accounts_and_certificates() {
    let mut ca = DevCa::start("restart");
    let dir = ca.client_dir("certbot");
    certonly(&ca, &dir, "before-restart.example.com");

    ca.restart();

    // certbot reuses its account: the server must still know it.
    certonly(&ca, &dir, "after-restart.example.com");
    // And the certificate issued before the restart can still be revoked.
    let cert = dir.join("config/live/before-restart.example.com/cert.pem");
    run_ok(
        certbot(&ca, &dir, "revoke")
            .arg("--cert-path")
            .arg(&cert)
            .args(["--no-delete-after-revoke", "--reason", "superseded"]),
        CLIENT_TIMEOUT,
    );
    let accounts = fs::read_dir(dir.join("config/accounts"))
        .map(|entries| entries.count())
        .unwrap_or_default();
    assert_eq!(accounts, 1, "certbot registered a second account");
}
