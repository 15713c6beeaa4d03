//! The audit log as an auditor reads it: `basalt dev` has every service append its
//! audit events to `DIR/audit/<service>.jsonl`, one JSON object per line. After a
//! certificate is issued and revoked through instant-acme, the RA's file holds a
//! `certificate_issued` event with the certificate's serial, names, account and
//! profile, and a `certificate_revoked` event with its serial, reason, method and
//! requester; every line of every file has `timestamp`, `service` and `event`.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use instant_acme::RetryPolicy;
use instant_acme::RevocationReason;
use instant_acme::RevocationRequest;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

use crate::certs::parse_timestamp;
use crate::certs::wall_clock_now;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::new_account;
use crate::instant_acme::pem_certs;
use crate::instant_acme::ready_order;
use crate::rate_limits::account_id;
use crate::revocation::serial_of;

/// How long the audit events may take to reach the file after the request.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long instant-acme polls an order for its certificate.
const POLL_TIMEOUT: Duration = Duration::from_secs(90);

/// Every line of a JSON-lines file, parsed; panics naming the line that is not a
/// JSON object.
fn json_lines(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|err| {
                panic!(
                    "{} line {}: not JSON ({err}): {line}",
                    path.display(),
                    index + 1
                )
            });
            assert!(
                value.is_object(),
                "{} line {}: not an object: {line}",
                path.display(),
                index + 1
            );
            value
        })
        .collect()
}

/// A field as text, whether the log wrote it as a string or a number.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A hex serial without leading zeros, in lowercase, for comparison.
pub(crate) fn normal_serial(hex: &str) -> String {
    hex.trim_start_matches("0x")
        .replace(':', "")
        .to_ascii_lowercase()
        .trim_start_matches('0')
        .to_owned()
}

/// The events `event` for `serial` in the audit log at `path`, waiting up to
/// [`AUDIT_TIMEOUT`] for one.
pub(crate) fn events_for(path: &Path, event: &str, serial: &str) -> Vec<Value> {
    let deadline = Instant::now() + AUDIT_TIMEOUT;
    loop {
        let found: Vec<Value> = json_lines(path)
            .into_iter()
            .filter(|line| {
                line["event"] == event && normal_serial(&text(&line["serial"])) == serial
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} event for serial {serial} in {} within {AUDIT_TIMEOUT:?}:\n{}",
            path.display(),
            fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `field` (an array of strings, or a string listing them) names `name`.
fn names_include(field: &Value, name: &str) -> bool {
    match field {
        Value::Array(items) => items.iter().any(|item| text(item) == name),
        Value::String(list) => list
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .any(|part| part == name),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_and_revocation_are_audited_as_json_lines() {
    let ca = Arc::new(DevCa::start("audit"));
    ca.wait_for_stdout_line(
        &format!(
            "Audit events (JSON lines, one file per service): {}",
            ca.data_dir.join("audit").display()
        ),
        Duration::from_secs(5),
    );
    let http01 = Http01::start(ca.http01_port).await;
    let tag = format!("{:x}", random_u64());
    let names = [
        format!("audit-one-{tag}.example.com"),
        format!("audit-two-{tag}.example.com"),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let started = wall_clock_now();

    let (account, _) = new_account(&ca, &[]).await;
    let account_id = account_id(account.id());
    let mut order = ready_order(&account, &http01, &names).await;
    let (csr, _) = cert_csr(&names);
    order.finalize_csr(&csr).await.expect("finalize");
    let chain = order
        .poll_certificate(&RetryPolicy::new().timeout(POLL_TIMEOUT))
        .await
        .expect("poll the certificate");
    let leaf = pem_certs(&chain).into_iter().next().expect("a leaf");
    account
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(leaf.clone()),
            reason: Some(RevocationReason::Superseded),
        })
        .await
        .expect("revoke the certificate");
    let serial = normal_serial(&serial_of(&leaf).to_string());

    let ra_log = ca.data_dir.join("audit").join("ra.jsonl");
    let issued = events_for(&ra_log, "certificate_issued", &serial);
    assert_eq!(issued.len(), 1, "one issuance, one event: {issued:?}");
    let issued = &issued[0];
    for name in &names {
        assert!(
            names_include(&issued["names"], name),
            "certificate_issued does not name {name}: {issued}"
        );
    }
    assert_eq!(text(&issued["account_id"]), account_id, "{issued}");
    assert_eq!(issued["profile"], "classic", "{issued}");

    let revoked = events_for(&ra_log, "certificate_revoked", &serial);
    assert_eq!(revoked.len(), 1, "one revocation, one event: {revoked:?}");
    let revoked = &revoked[0];
    assert_eq!(revoked["reason"], "superseded", "{revoked}");
    assert_eq!(revoked["reason_code"], 4, "{revoked}");
    assert_eq!(revoked["method"], "account", "{revoked}");
    assert_eq!(
        revoked["requester"],
        format!("account:{account_id}"),
        "{revoked}"
    );

    // Every line of every service's file has the fields a reader relies on.
    let ended = wall_clock_now();
    let mut files = 0;
    for entry in fs::read_dir(ca.data_dir.join("audit")).expect("read the audit directory") {
        let path = entry.expect("a directory entry").path();
        files += 1;
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl"),
            "{}",
            path.display()
        );
        for line in json_lines(&path) {
            let at = line["timestamp"]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or_else(|| panic!("{}: no RFC 3339 timestamp: {line}", path.display()));
            assert!(
                started - 300 <= at && at <= ended + 60,
                "{}: timestamp {at} far from the test's run: {line}",
                path.display()
            );
            let service = line["service"].as_str().unwrap_or_default();
            // A remote VA (`va-remote-N`) is a VA.
            assert!(
                !service.is_empty() && stem.starts_with(service),
                "{}: service {service:?}: {line}",
                path.display()
            );
            assert!(
                line.get("event").is_some(),
                "{}: no event field: {line}",
                path.display()
            );
        }
    }
    assert!(files > 0, "no audit files");
}
