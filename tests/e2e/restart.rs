//! `basalt dev` as an operator sees it: one OS process per service, the issuer key
//! named only by the CA's config, a restart that keeps accounts and certificates,
//! and a service that dies started again (unless it keeps dying).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use crate::certbot::certbot;
use crate::harness::DevCa;
use crate::harness::processes_mentioning;
use crate::harness::run_ok;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `basalt dev` may take to notice a death and start the service again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// How many restarts of one service `basalt dev` allows within a minute.
const MAX_RESTARTS: usize = 5;

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

/// `kill -KILL pid`: the process gets no chance to clean up, as in a crash.
pub(crate) fn kill(pid: u32) {
    run_ok(
        Command::new("kill").args(["-KILL", &pid.to_string()]),
        Duration::from_secs(10),
    );
}

/// Waits until the pid file of `svc` names a process other than `old`, and
/// returns it.
pub(crate) fn new_pid(ca: &DevCa, svc: &str, old: u32) -> u32 {
    let deadline = Instant::now() + RESTART_TIMEOUT;
    loop {
        let pid = ca.service_pid(svc);
        if pid != old {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the {svc} service was not restarted within {RESTART_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // Each remote VA is a `basalt va` with a config of its own.
    let services = ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"]
        .map(|service| (service, service))
        .into_iter()
        .chain(ca.remote_vas().iter().map(|remote| (*remote, "va")));
    for (service, command) in services {
        let config = ca.data_dir.join(format!("config/{service}.toml"));
        let wanted = format!(" {command} --config {}", config.display());
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
        assert_eq!(ca.service_pid(service), *pid, "run/{service}.pid");
    }

    // The issuing keys (or, with `--ca-keys softhsm`, the token's PINs) are for
    // the owner alone.
    let secrets: Vec<_> = fs::read_dir(ca.data_dir.join("ca-keys"))
        .expect("ca-keys/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "key" || extension == "pin")
        })
        .collect();
    assert!(!secrets.is_empty(), "no key or PIN file in ca-keys/");
    for secret in &secrets {
        let mode = fs::metadata(secret).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is readable by others: {mode:o}",
            secret.display()
        );
    }
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

#[test]
fn a_killed_service_is_restarted_and_the_ca_keeps_working() {
    let ca = DevCa::start("supervise");
    let dir = ca.client_dir("certbot");
    certonly(&ca, &dir, "before-crash.example.com");

    let old = ca.service_pid("sa");
    kill(old);
    ca.wait_for_stdout_line(
        "basalt dev: the sa service exited (signal: 9 (SIGKILL)); restarting",
        RESTART_TIMEOUT,
    );
    let new = new_pid(&ca, "sa", old);
    assert_eq!(
        parent_of(new),
        ca.launcher_pid(),
        "the new sa is not a child of basalt dev"
    );
    let config = ca.config("sa");
    let cmdline = fs::read_to_string(format!("/proc/{new}/cmdline")).unwrap();
    assert!(
        cmdline.contains(&*config.to_string_lossy()),
        "the new sa runs another config: {cmdline:?}"
    );

    // The restarted SA serves the same database: certbot's account still works
    // and the certificate from before the crash can be revoked.
    certonly(&ca, &dir, "after-crash.example.com");
    let cert = dir.join("config/live/before-crash.example.com/cert.pem");
    run_ok(
        certbot(&ca, &dir, "revoke")
            .arg("--cert-path")
            .arg(&cert)
            .args(["--no-delete-after-revoke", "--reason", "superseded"]),
        CLIENT_TIMEOUT,
    );
    let log = ca.log("sa");
    assert_eq!(
        log.matches("serving gRPC").count(),
        2,
        "both sa processes log to sa.log:\n{log}"
    );
}

#[test]
fn a_service_that_keeps_dying_stops_basalt_dev() {
    let mut ca = DevCa::start("crash-loop");
    let mut pid = ca.service_pid("nonce");
    // One death more than the restart budget allows within a minute.
    for death in 1..=MAX_RESTARTS + 1 {
        kill(pid);
        if death <= MAX_RESTARTS {
            pid = new_pid(&ca, "nonce", pid);
        }
    }

    let status = ca.wait_for_exit(RESTART_TIMEOUT);
    assert!(!status.success(), "basalt dev exited with {status}");
    assert!(
        ca.diagnostics()
            .contains("basalt: the nonce service keeps dying"),
        "basalt dev gave another reason:\n{}",
        ca.diagnostics()
    );
    let survivors = processes_mentioning(&ca.data_dir);
    assert!(survivors.is_empty(), "still running: {survivors:#?}");
    let pid_files = fs::read_dir(ca.data_dir.join("run")).unwrap().count();
    assert_eq!(pid_files, 0, "pid files left in run/");
}
