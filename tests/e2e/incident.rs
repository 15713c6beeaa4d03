//! An operator's incident (`basalt admin incident add`) moves the ACME renewal
//! window (RFC 9773 §4.2) of the certificates it names into the past, with its
//! page as `explanationURL`, and leaves every other certificate's window alone;
//! `incident list` shows it. Serials come from `--serial` or from a file.

use std::sync::Arc;

use serde_json::json;

use crate::acme_api::renewal_info;
use crate::acme_api::window;
use crate::certs::cert_id;
use crate::certs::wall_clock_now;
use crate::flow::RawAccount;
use crate::harness::CmdOutput;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::jws::Acme;
use crate::revocation::serial_of;

const URL: &str = "https://example.test/x";

/// Runs `basalt admin ARGS…`.
fn admin(ca: &DevCa, args: &[&str]) -> CmdOutput {
    tokio::task::block_in_place(|| ca.admin(args))
}

/// Checks that the certificate's renewal window has passed (`past`) or has not.
async fn assert_window(acme: &Acme, leaf_der: &[u8], past: bool, what: &str) -> serde_json::Value {
    let info = renewal_info(acme, &cert_id(leaf_der)).await;
    let (_, end) = window(&info);
    assert_eq!(
        end < wall_clock_now(),
        past,
        "{what}: the renewal window ends {end}: {}",
        info.text
    );
    info.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_asks_for_renewal_at_once() {
    let ca = Arc::new(DevCa::start("incident"));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = RawAccount::create(&acme).await;
    let tag = format!("{:x}", random_u64());
    let first = account
        .issue(
            &http01,
            &[&format!("incident-a-{tag}.example.com")],
            &json!({}),
        )
        .await
        .leaf_der;
    let second = account
        .issue(
            &http01,
            &[&format!("incident-b-{tag}.example.com")],
            &json!({}),
        )
        .await
        .leaf_der;
    let before = assert_window(&acme, &first, false, "before the incident").await;
    assert!(
        before
            .get("explanationURL")
            .is_none_or(|url| url.is_null() || url == ""),
        "an explanationURL before any incident: {before}"
    );

    let name = format!("e2e-incident-{tag}");
    let serial = serial_of(&first).to_string();
    let added = admin(
        &ca,
        &[
            "incident", "add", "--name", &name, "--url", URL, "--serial", &serial,
        ],
    );
    assert!(added.status.success(), "incident add: {}", added.text());
    assert!(
        added
            .stdout
            .contains(&format!("declared incident {name} (id ")),
        "{}",
        added.text()
    );
    let during = assert_window(&acme, &first, true, "a certificate named by the incident").await;
    assert_eq!(during["explanationURL"], URL, "{during}");
    assert_window(
        &acme,
        &second,
        false,
        "a certificate the incident does not name",
    )
    .await;

    // A file of serials: comments, blank lines and colon-separated hex.
    let second_serial = serial_of(&second);
    let colons: Vec<String> = second_serial
        .as_bytes()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    let file = ca.client_dir("incident").join("serials.txt");
    std::fs::write(
        &file,
        format!(
            "# the second batch\n\n{}  # one certificate\n",
            colons.join(":")
        ),
    )
    .expect("write the serials file");
    let file_name = format!("{name}-file");
    let from_file = admin(
        &ca,
        &[
            "incident",
            "add",
            "--name",
            &file_name,
            "--serials-file",
            file.to_str().expect("a UTF-8 path"),
        ],
    );
    assert!(from_file.status.success(), "{}", from_file.text());
    assert_window(
        &acme,
        &second,
        true,
        "a certificate named in a serials file",
    )
    .await;

    let listed = admin(&ca, &["incident", "list"]);
    assert!(listed.status.success(), "{}", listed.text());
    for (incident, url) in [(&name, URL), (&file_name, "")] {
        let line = listed
            .stdout
            .lines()
            .find(|line| line.split('\t').nth(1) == Some(incident.as_str()))
            .unwrap_or_else(|| panic!("incident list lacks {incident}:\n{}", listed.stdout));
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.get(3), Some(&"1 serials"), "{line}");
        assert_eq!(fields.get(4).copied().unwrap_or_default(), url, "{line}");
    }

    // A name used already, and a serial the CA never used, are refused.
    let again = admin(
        &ca,
        &["incident", "add", "--name", &name, "--serial", &serial],
    );
    assert!(!again.status.success(), "a second {name}: {}", again.text());
    let unknown = admin(
        &ca,
        &[
            "incident",
            "add",
            "--name",
            &format!("{name}-unknown"),
            "--serial",
            "0x7f",
        ],
    );
    assert!(!unknown.status.success(), "{}", unknown.text());
    assert!(unknown.stderr.contains("7f"), "{}", unknown.text());
}
