//! Multi-perspective validation in the lab CA: `basalt dev` runs three remote VAs,
//! each its own process in a region of its own, and the VA asks all of them after
//! each local success. lego answers http-01 for every perspective from its own
//! server. A remote is taken down with SIGSTOP: `basalt dev` starts again a service
//! that exits (a remote killed with SIGKILL comes back, as the last test shows) but
//! leaves a stopped one alone, and the VA waits out the lab's `remote_timeout` (5s)
//! for it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use crate::challenges::check_leaf;
use crate::challenges::lego;
use crate::harness::DevCa;
use crate::harness::REMOTE_VAS;
use crate::harness::run_fails;
use crate::harness::run_ok;
use crate::restart::kill;
use crate::restart::new_pid;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restarted remote VA may take to serve again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);

/// A remote VA stopped with SIGSTOP until this is dropped, when SIGCONT lets it go
/// on. Declared after the CA, it is dropped first even when the test fails, so
/// `basalt dev` can then stop every service cleanly.
struct Stopped {
    service: &'static str,
    pid: u32,
}

impl Stopped {
    fn new(ca: &DevCa, service: &'static str) -> Self {
        let pid = ca.service_pid(service);
        run_ok(
            Command::new("kill").args(["-STOP", &pid.to_string()]),
            SIGNAL_TIMEOUT,
        );
        Self { service, pid }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // Never a panic here: this may run while a failed test unwinds.
        let resumed = Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .status();
        if !resumed.as_ref().is_ok_and(|status| status.success()) {
            eprintln!(
                "kill -CONT {} (the {} service) failed: {resumed:?}",
                self.pid, self.service
            );
        }
    }
}

/// `lego run` for `domain` by http-01, with its state in a directory of its own.
fn lego_http01(ca: &DevCa, domain: &str) -> (PathBuf, Command) {
    let dir = ca.client_dir(&format!("lego-{domain}"));
    let mut cmd = lego(ca, &dir, &[domain]);
    cmd.arg("--http")
        .args(["--http.port", &format!("127.0.0.1:{}", ca.http01_port)])
        .arg("run");
    (dir, cmd)
}

/// The primary VA's one audit line about the challenge of `domain` (not about a
/// CAA recheck at finalize, which only validations hours old get).
fn audit_line(ca: &DevCa, domain: &str) -> String {
    let log = ca.log("va");
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("audit: multi-perspective validation"))
        .filter(|line| field(line, "identifier") == Some(domain))
        .filter(|line| field(line, "check") != Some("caa"))
        .collect();
    assert_eq!(lines.len(), 1, "audit lines for {domain} in va.log:\n{log}");
    lines[0].to_owned()
}

/// The value of `name=value` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&prefix))
}

/// The audit line says `remotes=3`, `failed=…` and `quorum=…` as expected.
fn assert_audit(line: &str, failed: usize, quorum: bool) {
    assert_eq!(field(line, "remotes"), Some("3"), "{line}");
    assert_eq!(field(line, "failed"), Some(&*failed.to_string()), "{line}");
    assert_eq!(field(line, "quorum"), Some(&*quorum.to_string()), "{line}");
}

/// The outcome `remote` had in the audit line's `outcomes`, as its `Debug` form
/// spells it.
fn outcome(remote: &str, index: usize, succeeded: bool) -> String {
    format!(
        "perspective: \"{remote}\", region: \"region-{}\", succeeded: {succeeded}",
        index + 1
    )
}

/// Whether `remote`'s log says it validated `domain`.
fn remote_validated(ca: &DevCa, remote: &str, domain: &str) -> bool {
    ca.log(remote).lines().any(|line| {
        line.contains("validation succeeded") && field(line, "identifier") == Some(domain)
    })
}

#[test]
fn every_perspective_validates() {
    let ca = DevCa::start("perspectives-all");
    let domain = "every-perspective.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);

    let line = audit_line(&ca, domain);
    assert_audit(&line, 0, true);
    for (index, remote) in REMOTE_VAS.into_iter().enumerate() {
        assert!(line.contains(&outcome(remote, index, true)), "{line}");
        assert!(
            remote_validated(&ca, remote, domain),
            "{remote} never validated {domain}:\n{}",
            ca.log(remote)
        );
    }
}

#[test]
fn one_remote_down_still_validates() {
    let ca = DevCa::start("perspectives-one-down");
    let down = Stopped::new(&ca, REMOTE_VAS[1]);
    let domain = "one-remote-down.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);

    let line = audit_line(&ca, domain);
    assert_audit(&line, 1, true);
    assert!(line.contains(&outcome(REMOTE_VAS[0], 0, true)), "{line}");
    assert!(line.contains(&outcome(REMOTE_VAS[1], 1, false)), "{line}");
    assert!(line.contains(&outcome(REMOTE_VAS[2], 2, true)), "{line}");
    assert!(
        !remote_validated(&ca, down.service, domain),
        "the stopped {} validated",
        down.service
    );
    drop(down);
}

#[test]
fn two_remotes_down_refuse() {
    let ca = DevCa::start("perspectives-two-down");
    let first = Stopped::new(&ca, REMOTE_VAS[0]);
    let last = Stopped::new(&ca, REMOTE_VAS[2]);
    let domain = "two-remotes-down.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    let refused = run_fails(&mut cmd, CLIENT_TIMEOUT);
    // lego shows the authorization's error: its type and the quorum's detail.
    let text = refused.text();
    assert!(
        text.contains("urn:ietf:params:acme:error:connection")
            && text.contains("2 of 3 remote perspectives could not validate"),
        "lego failed for another reason:\n{text}"
    );
    assert!(
        !dir.join("certificates")
            .join(format!("{domain}.crt"))
            .exists(),
        "lego saved a certificate"
    );

    let line = audit_line(&ca, domain);
    assert_audit(&line, 2, false);
    assert!(line.contains(&outcome(REMOTE_VAS[0], 0, false)), "{line}");
    assert!(line.contains(&outcome(REMOTE_VAS[1], 1, true)), "{line}");
    assert!(line.contains(&outcome(REMOTE_VAS[2], 2, false)), "{line}");
    drop((first, last));
}

#[test]
fn a_killed_remote_is_restarted_and_validates_again() {
    let ca = DevCa::start("perspectives-restart");
    let remote = REMOTE_VAS[1];
    let old = ca.service_pid(remote);
    kill(old);
    ca.wait_for_stdout_line(
        &format!("basalt dev: the {remote} service exited (signal: 9 (SIGKILL)); restarting"),
        RESTART_TIMEOUT,
    );
    new_pid(&ca, remote, old);
    // Serving again, so the VA's next call reaches the new process.
    let deadline = Instant::now() + RESTART_TIMEOUT;
    while ca.log(remote).matches("serving gRPC").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the restarted {remote} never served:\n{}",
            ca.log(remote)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let domain = "restarted-remote.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);
    assert_audit(&audit_line(&ca, domain), 0, true);
    assert!(
        remote_validated(&ca, remote, domain),
        "the restarted {remote} never validated {domain}"
    );
}
