//! Multi-perspective validation in the lab CA: `basalt dev` runs the suite's remote
//! VAs (`BASALT_E2E_REMOTE_VAS`, 5 unless told; 3 here when the suite runs without
//! them), each its own process in a region of its own, and the VA asks all of them
//! after each local success. The tests hold for any number: with 2 to 5 remotes one
//! may fail, with 6 or more two, and the successes must span two regions. lego
//! answers http-01 for every perspective from its own server. A remote is taken
//! down with SIGSTOP: `basalt dev` starts again a service that exits (a remote
//! killed with SIGKILL comes back, as the last test shows) but leaves a stopped one
//! alone, and the VA waits out the lab's `remote_timeout` (5s) for it.

use std::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use crate::challenges::check_leaf;
use crate::challenges::lego;
use crate::harness::DevCa;
use crate::harness::run_fails;
use crate::harness::run_ok;
use crate::harness::suite_remote_vas;
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

/// A CA whose VA asks the suite's remote VAs, or 3 when the suite runs without
/// any (`BASALT_E2E_REMOTE_VAS=0`): these tests need some.
fn start(label: &str) -> DevCa {
    let ca = DevCa::builder(label);
    if suite_remote_vas() == 0 {
        ca.remote_vas(3).start()
    } else {
        ca.start()
    }
}

/// How many of `remotes` remote perspectives may be down with the quorum still
/// met: one with 2 to 5 of them, two with 6 or more, as long as two succeed (each
/// lab remote is in a region of its own, and successes must span two regions).
fn tolerated(remotes: usize) -> usize {
    let allowed = if remotes >= 6 { 2 } else { 1 };
    allowed.min(remotes.saturating_sub(2))
}

/// The value of `name=value` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&prefix))
}

/// The audit line says `remotes=…`, `failed=…` and `quorum=…` as expected.
fn assert_audit(line: &str, remotes: usize, failed: usize, quorum: bool) {
    assert_eq!(
        field(line, "remotes"),
        Some(&*remotes.to_string()),
        "{line}"
    );
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
    let ca = start("perspectives-all");
    let domain = "every-perspective.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);

    let remotes = ca.remote_vas();
    let line = audit_line(&ca, domain);
    assert_audit(&line, remotes.len(), 0, true);
    for (index, remote) in remotes.iter().enumerate() {
        assert!(line.contains(&outcome(remote, index, true)), "{line}");
        assert!(
            remote_validated(&ca, remote, domain),
            "{remote} never validated {domain}:\n{}",
            ca.log(remote)
        );
    }
}

#[test]
fn remotes_down_within_the_quorum_still_validate() {
    let ca = start("perspectives-some-down");
    let remotes = ca.remote_vas();
    // The 2nd, 4th, …: one with up to five remotes, two from six.
    let down: Vec<usize> = (1..remotes.len())
        .step_by(2)
        .take(tolerated(remotes.len()))
        .collect();
    let stopped: Vec<Stopped> = down
        .iter()
        .map(|&index| Stopped::new(&ca, remotes[index]))
        .collect();
    let domain = "remotes-down.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);

    let line = audit_line(&ca, domain);
    assert_audit(&line, remotes.len(), down.len(), true);
    for (index, remote) in remotes.iter().enumerate() {
        let up = !down.contains(&index);
        assert!(line.contains(&outcome(remote, index, up)), "{line}");
    }
    for stopped in &stopped {
        assert!(
            !remote_validated(&ca, stopped.service, domain),
            "the stopped {} validated",
            stopped.service
        );
    }
    drop(stopped);
}

#[test]
fn one_remote_more_down_refuses() {
    let ca = start("perspectives-too-many-down");
    let remotes = ca.remote_vas();
    // The 1st, 3rd, …: one more than the quorum allows.
    let down: Vec<usize> = (0..remotes.len())
        .step_by(2)
        .take(tolerated(remotes.len()) + 1)
        .collect();
    let stopped: Vec<Stopped> = down
        .iter()
        .map(|&index| Stopped::new(&ca, remotes[index]))
        .collect();
    let domain = "too-many-remotes-down.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    let refused = run_fails(&mut cmd, CLIENT_TIMEOUT);
    // lego shows the authorization's error: its type and the quorum's detail.
    let text = refused.text();
    let detail = format!(
        "{} of {} remote perspectives could not validate",
        down.len(),
        remotes.len()
    );
    assert!(
        text.contains("urn:ietf:params:acme:error:connection") && text.contains(&detail),
        "lego failed for another reason than {detail:?}:\n{text}"
    );
    assert!(
        !dir.join("certificates")
            .join(format!("{domain}.crt"))
            .exists(),
        "lego saved a certificate"
    );

    let line = audit_line(&ca, domain);
    assert_audit(&line, remotes.len(), down.len(), false);
    for (index, remote) in remotes.iter().enumerate() {
        let up = !down.contains(&index);
        assert!(line.contains(&outcome(remote, index, up)), "{line}");
    }
    drop(stopped);
}

/// Kills service `svc` with SIGKILL and waits until `basalt dev` has started it
/// again and it serves, so the next call reaches the new process.
fn kill_and_wait_for_restart(ca: &DevCa, svc: &str) {
    let old = ca.service_pid(svc);
    let served = ca.log(svc).matches("serving gRPC").count();
    kill(old);
    ca.wait_for_stdout_line(
        &format!("basalt dev: the {svc} service exited (signal: 9 (SIGKILL)); restarting"),
        RESTART_TIMEOUT,
    );
    new_pid(ca, svc, old);
    let deadline = Instant::now() + RESTART_TIMEOUT;
    while ca.log(svc).matches("serving gRPC").count() <= served {
        assert!(
            Instant::now() < deadline,
            "the restarted {svc} never served:\n{}",
            ca.log(svc)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_remote_is_restarted_and_validates_again() {
    let ca = start("perspectives-restart");
    let remote = ca.remote_vas()[1];
    kill_and_wait_for_restart(&ca, remote);

    let domain = "restarted-remote.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);
    assert_audit(&audit_line(&ca, domain), ca.remote_vas().len(), 0, true);
    assert!(
        remote_validated(&ca, remote, domain),
        "the restarted {remote} never validated {domain}"
    );
}

/// A remote VA pool in a real primary VA: the first remote becomes a
/// `[[remote_pool]]` whose name (`localhost`) the VA resolves and whose every
/// address it asks over mutual TLS with the pool's certificate name, beside the
/// second remote, still a fixed `[[remote]]` in another region.
#[test]
fn a_remote_pool_is_asked_at_every_address_of_its_name() {
    let ca = DevCa::builder("perspectives-pool").remote_vas(2).start();
    let [first, second] = ca.remote_vas() else {
        panic!("two remote VAs")
    };
    let port = ca.port_base + 6;
    let config = ca.config("va");
    let text = std::fs::read_to_string(&config).unwrap();
    let fixed = format!(
        "[[remote]]\nname = \"{first}\"\nregion = \"region-1\"\naddress = \"127.0.0.1:{port}\"\n"
    );
    assert!(text.contains(&fixed), "{fixed:?} not in:\n{text}");
    let pool = format!(
        "[[remote_pool]]\nname = \"pool\"\nregion = \"region-1\"\naddress = \"localhost:{port}\"\n"
    );
    std::fs::write(&config, text.replace(&fixed, &pool)).unwrap();
    kill_and_wait_for_restart(&ca, "va");
    // The VA logs what it found once it has resolved the name, as it starts.
    let deadline = Instant::now() + RESTART_TIMEOUT;
    while !ca.log("va").contains("remote VA pool resolved") {
        assert!(
            Instant::now() < deadline,
            "the VA never resolved its pool:\n{}",
            ca.log("va")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every address of the name is a perspective; the remote listens on the
    // IPv4 one alone, so any other (::1) fails, within the quorum.
    let mut members: Vec<SocketAddr> = ("localhost", port).to_socket_addrs().unwrap().collect();
    members.sort_unstable();
    members.dedup();
    assert!(
        members.contains(&SocketAddr::from(([127, 0, 0, 1], port))),
        "localhost is {members:?}"
    );

    let domain = "remote-pool.example.com";
    let (dir, mut cmd) = lego_http01(&ca, domain);
    run_ok(&mut cmd, CLIENT_TIMEOUT);
    check_leaf(&ca, &dir, domain, &[format!("DNS:{domain}").as_str()]);
    let line = audit_line(&ca, domain);
    assert_audit(&line, 1 + members.len(), members.len() - 1, true);
    assert!(
        line.contains("perspective: \"pool@127.0.0.1\", region: \"region-1\", succeeded: true"),
        "{line}"
    );
    assert!(line.contains(&outcome(second, 1, true)), "{line}");
    assert!(
        remote_validated(&ca, first, domain),
        "{first} never validated"
    );
}

#[test]
fn the_tolerated_failures_follow_the_quorum() {
    let tolerated: Vec<usize> = (2..=9).map(tolerated).collect();
    assert_eq!(tolerated, [0, 1, 1, 1, 2, 2, 2, 2]);
}
