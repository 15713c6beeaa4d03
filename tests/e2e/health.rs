//! `basalt health`: the probe containers and orchestrators run, against every
//! running service, and against one that has stopped answering.

use std::process::Command;
use std::time::Duration;

use crate::harness::DevCa;
use crate::harness::basalt_bin;
use crate::harness::run_fails;
use crate::harness::run_ok;

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

fn health(ca: &DevCa, service: &str, config: &str) -> Command {
    let mut command = Command::new(basalt_bin());
    command
        .args(["health", service, "--config"])
        .arg(ca.config(config));
    command
}

#[test]
fn every_service_answers_its_probe_and_a_stopped_one_does_not() {
    let ca = DevCa::start("health");
    for service in ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"] {
        let output = run_ok(&mut health(&ca, service, service), PROBE_TIMEOUT);
        assert!(
            output
                .stdout
                .starts_with(&format!("basalt health: {service} at 127.0.0.1:"))
                && output.stdout.trim_end().ends_with(": serving"),
            "{}",
            output.text()
        );
    }
    // A remote VA is a VA with a config of its own.
    for remote in ca.remote_vas() {
        run_ok(&mut health(&ca, "va", remote), PROBE_TIMEOUT);
    }

    // A process that accepts connections but never answers (SIGSTOP) is unhealthy
    // within the probe's timeout.
    let pid = ca.service_pid("ca").to_string();
    run_ok(Command::new("kill").args(["-STOP", &pid]), PROBE_TIMEOUT);
    let stopped = run_fails(
        health(&ca, "ca", "ca").args(["--timeout", "2s"]),
        PROBE_TIMEOUT,
    );
    run_ok(Command::new("kill").args(["-CONT", &pid]), PROBE_TIMEOUT);
    assert!(
        stopped.stderr.contains("ca at 127.0.0.1:") && stopped.stderr.contains("within 2s"),
        "{}",
        stopped.text()
    );
    run_ok(&mut health(&ca, "ca", "ca"), PROBE_TIMEOUT);

    // The wrong service's config is refused, naming the file and the field.
    let wrong = run_fails(&mut health(&ca, "wfe", "ocsp"), PROBE_TIMEOUT);
    assert!(
        wrong.stderr.contains("ocsp.toml") && wrong.stderr.contains("unknown field"),
        "{}",
        wrong.text()
    );
}
