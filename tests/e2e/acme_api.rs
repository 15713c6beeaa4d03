//! The ACME resources and rules beyond RFC 8555's basic flow, against one running
//! CA: the directory's `meta`, newNonce, certificate profiles
//! (draft-ietf-acme-profiles), a requested validity window, and ACME Renewal
//! Information (RFC 9773) with `replaces`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::json;

use crate::certs::cert_id;
use crate::certs::openssl_dates;
use crate::certs::openssl_ocsp_uri;
use crate::certs::openssl_serial_hex;
use crate::certs::parse_timestamp;
use crate::certs::rfc3339;
use crate::certs::serial_and_aki;
use crate::certs::wall_clock_now;
use crate::flow::Issued;
use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::run_ok;
use crate::instant_acme::Http01;
use crate::instant_acme::write_pem;
use crate::jws::Acme;
use crate::jws::Answer;
use crate::jws::UNAUTHORIZED;
use crate::jws::answer;
use crate::jws::answer_get;
use crate::steps::Steps;

const REJECTED_IDENTIFIER: &str = "urn:ietf:params:acme:error:rejectedIdentifier";
const ALREADY_REPLACED: &str = "urn:ietf:params:acme:error:alreadyReplaced";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// The profiles `basalt dev` offers, with their lifetimes.
const PROFILES: [(&str, i64); 3] = [
    ("classic", 90 * DAY),
    ("modern", 45 * DAY),
    ("shortlived", 160 * HOUR),
];

/// Writes the leaf of `issued` to `DIR/<name>.pem` for openssl.
fn leaf_file(ca: &DevCa, issued: &Issued, name: &str) -> PathBuf {
    let path = ca.client_dir("api-certs").join(format!("{name}.pem"));
    write_pem(&path, &issued.leaf_der);
    path
}

/// Asserts that the certificate's validity (RFC 5280: both ends included) is
/// exactly `lifetime` seconds, as openssl reads it.
fn assert_lifetime(cert: &std::path::Path, lifetime: i64, what: &str) {
    let (not_before, not_after) = openssl_dates(cert);
    let span = not_after - not_before + 1;
    assert_eq!(
        span,
        lifetime,
        "{what}: notBefore {} notAfter {} span {span}s, want {lifetime}s",
        rfc3339(not_before),
        rfc3339(not_after)
    );
}

fn directory_meta(acme: Acme, ca: Arc<DevCa>) {
    let directory = acme.directory();
    let base = ca
        .directory_url
        .strip_suffix("/directory")
        .expect("the directory URL ends in /directory");
    for resource in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
        "renewalInfo",
    ] {
        let url = directory[resource]
            .as_str()
            .unwrap_or_else(|| panic!("the directory has no {resource}: {directory}"));
        assert!(
            url.starts_with(&format!("{base}/")),
            "{resource} {url:?} is not under {base}: {directory}"
        );
    }
    let profiles = directory["meta"]["profiles"]
        .as_object()
        .unwrap_or_else(|| panic!("no meta.profiles object: {directory}"));
    let mut names: Vec<&str> = profiles.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["classic", "modern", "shortlived"],
        "meta.profiles: {directory}"
    );
    for (name, description) in profiles {
        assert!(
            description.as_str().is_some_and(|d| !d.trim().is_empty()),
            "profile {name} has no description: {directory}"
        );
    }
    assert!(
        matches!(
            directory["meta"].get("externalAccountRequired"),
            None | Some(Value::Bool(false))
        ),
        "externalAccountRequired without --eab-required: {directory}"
    );
}

/// RFC 8555 §7.2: HEAD → 200, GET → 204, each with a fresh nonce, `no-store`
/// and a `Link` to the directory (§7.1).
async fn new_nonce(acme: Acme, ca: Arc<DevCa>) {
    let url = acme.url("newNonce");
    let index = format!("<{}>;rel=\"index\"", ca.directory_url);
    let mut nonces = Vec::new();
    for (method, status) in [
        (reqwest::Method::HEAD, StatusCode::OK),
        (reqwest::Method::GET, StatusCode::NO_CONTENT),
    ] {
        let response = acme
            .http()
            .request(method.clone(), &url)
            .send()
            .await
            .expect("newNonce");
        let got = answer(response).await;
        assert_eq!(got.status, status, "{method} newNonce: {}", got.text);
        assert!(got.text.is_empty(), "{method} newNonce has a body");
        let cache = got.header("cache-control").unwrap_or_default();
        assert!(
            cache.split(',').any(|d| d.trim() == "no-store"),
            "{method} newNonce Cache-Control {cache:?}"
        );
        let links: Vec<String> = got
            .headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok().map(|v| v.replace(' ', "")))
            .collect();
        assert!(
            links.iter().any(|l| l.split(',').any(|l| l == index)),
            "{method} newNonce Link {links:?}, want {index}"
        );
        nonces.push(got.header("replay-nonce").expect("a nonce"));
    }
    assert_ne!(
        nonces[0], nonces[1],
        "newNonce handed out the same nonce twice"
    );
}

/// RFC 8555 §6.3: the server MUST allow POST-as-GET for the directory and
/// newNonce as well as GET.
async fn post_as_get_directory_and_nonce(acme: Acme, ca: Arc<DevCa>) {
    let account = RawAccount::create(&acme).await;
    let mut wrong = Vec::new();
    let directory = account.post(&ca.directory_url, None).await;
    if directory.status != StatusCode::OK || !directory.json["newOrder"].is_string() {
        wrong.push(format!(
            "POST-as-GET directory: {} {}",
            directory.status, directory.text
        ));
    }
    let nonce = account.post(&acme.url("newNonce"), None).await;
    if nonce.status != StatusCode::OK && nonce.status != StatusCode::NO_CONTENT {
        wrong.push(format!(
            "POST-as-GET newNonce: {} {}",
            nonce.status, nonce.text
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A certificate from each profile is exactly as long as the profile says; the
/// order shows its profile, `classic` when none was asked for; every one names
/// the OCSP responder.
async fn profiles(acme: Acme, ca: Arc<DevCa>, http01: Http01) -> (RawAccount, Issued) {
    let account = RawAccount::create(&acme).await;
    let mut classic = None;
    for (profile, lifetime) in PROFILES {
        let name = format!("{profile}.profiles.example.com");
        let extra = if profile == "classic" {
            json!({})
        } else {
            json!({ "profile": profile })
        };
        let issued = account.issue(&http01, &[&name], &extra).await;
        assert_eq!(
            issued.order["profile"], profile,
            "the order's profile: {}",
            issued.order
        );
        let file = leaf_file(&ca, &issued, profile);
        assert_lifetime(&file, lifetime, profile);
        let ocsp = openssl_ocsp_uri(&file);
        assert!(
            !ocsp.is_empty(),
            "a {profile} certificate names no OCSP URL"
        );
        if profile == "classic" {
            classic = Some(issued);
        }
    }
    (account, classic.expect("the classic certificate"))
}

/// IP identifiers (RFC 8738) are refused under classic and modern and allowed
/// under shortlived, where a certificate for one is issued.
async fn ip_identifiers(acme: Acme, ca: Arc<DevCa>, http01: Http01) {
    let account = RawAccount::create(&acme).await;
    let ip = order_payload(&["127.0.0.1"]);
    for profile in ["classic", "modern"] {
        let mut payload = ip.clone();
        payload["profile"] = json!(profile);
        account.new_order(&payload).await.expect_problem(
            StatusCode::BAD_REQUEST,
            REJECTED_IDENTIFIER,
            &format!("an IP identifier under {profile}"),
        );
    }
    let mut payload = ip;
    payload["profile"] = json!("shortlived");
    let created = account.new_order(&payload).await;
    created.expect_status(StatusCode::CREATED, "an IP identifier under shortlived");
    assert_eq!(
        created.json["identifiers"],
        json!([{ "type": "ip", "value": "127.0.0.1" }]),
        "{}",
        created.text
    );
    let authz_url = created.json["authorizations"][0]
        .as_str()
        .expect("an authorization");
    let authz = account.post(authz_url, None).await;
    assert_eq!(
        authz.json["identifier"],
        json!({ "type": "ip", "value": "127.0.0.1" }),
        "{}",
        authz.text
    );

    let issued = account
        .issue(&http01, &["127.0.0.1"], &json!({ "profile": "shortlived" }))
        .await;
    let file = leaf_file(&ca, &issued, "ip");
    let san = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&file),
        OPENSSL_TIMEOUT,
    );
    assert!(
        san.stdout.contains("IP Address:127.0.0.1"),
        "SAN of the IP certificate: {}",
        san.stdout
    );
    assert_lifetime(&file, 160 * HOUR, "the IP certificate");
}

/// RFC 8555 §7.4: a requested notBefore/notAfter within the profile is what the
/// order shows and what the certificate carries.
async fn requested_validity(acme: Acme, ca: Arc<DevCa>, http01: Http01) {
    let account = RawAccount::create(&acme).await;
    let not_before = wall_clock_now() - 60;
    let not_after = not_before + 10 * DAY;
    let extra = json!({ "notBefore": rfc3339(not_before), "notAfter": rfc3339(not_after) });
    let issued = account
        .issue(&http01, &["validity.example.com"], &extra)
        .await;
    for (field, want) in [("notBefore", not_before), ("notAfter", not_after)] {
        let shown = issued.order[field].as_str().and_then(parse_timestamp);
        assert_eq!(shown, Some(want), "the order's {field}: {}", issued.order);
    }
    let (cert_not_before, cert_not_after) = openssl_dates(&leaf_file(&ca, &issued, "validity"));
    assert_eq!(
        (rfc3339(cert_not_before), rfc3339(cert_not_after)),
        (rfc3339(not_before), rfc3339(not_after)),
        "the certificate's validity"
    );
}

/// GET `renewalInfo/<certID>`.
pub(crate) async fn renewal_info(acme: &Acme, cert_id: &str) -> Answer {
    let url = format!("{}/{cert_id}", acme.url("renewalInfo"));
    answer_get(acme.http().get(&url).send().await.expect("GET renewalInfo")).await
}

/// The suggested window of a 200 renewalInfo answer, as Unix seconds.
pub(crate) fn window(info: &Answer) -> (i64, i64) {
    info.expect_status(StatusCode::OK, "renewalInfo");
    let at = |field: &str| {
        info.json["suggestedWindow"][field]
            .as_str()
            .and_then(parse_timestamp)
            .unwrap_or_else(|| panic!("suggestedWindow.{field}: {}", info.text))
    };
    let (start, end) = (at("start"), at("end"));
    assert!(
        start < end,
        "the window ends before it starts: {}",
        info.text
    );
    (start, end)
}

/// RFC 9773 §4.2: a certificate's renewal window lies inside its validity, with
/// `Retry-After`; an unknown certificate is 404.
async fn ari_window(acme: Acme, ca: Arc<DevCa>, issued: Arc<Issued>) {
    let file = leaf_file(&ca, &issued, "ari");
    let (serial, _) = serial_and_aki(&issued.leaf_der);
    let hex: String = serial
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(
        hex,
        openssl_serial_hex(&file),
        "the DER walk read the serial"
    );

    let id = cert_id(&issued.leaf_der);
    let info = renewal_info(&acme, &id).await;
    let (start, end) = window(&info);
    let (not_before, not_after) = openssl_dates(&file);
    assert!(
        not_before <= start && end <= not_after,
        "window {}..{} outside the validity {}..{}",
        rfc3339(start),
        rfc3339(end),
        rfc3339(not_before),
        rfc3339(not_after)
    );
    assert!(
        end > wall_clock_now(),
        "a fresh certificate's window has passed: {}",
        info.text
    );
    let retry_after = info.header("retry-after").unwrap_or_default();
    let retry_ok =
        retry_after.trim().parse::<u64>().is_ok_and(|s| s > 0) || retry_after.contains("GMT");
    assert!(retry_ok, "renewalInfo Retry-After {retry_after:?}");

    let (_, aki) = serial_and_aki(&issued.leaf_der);
    let unknown = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki),
        URL_SAFE_NO_PAD.encode([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x01])
    );
    let missing = renewal_info(&acme, &unknown).await;
    assert_eq!(
        missing.status,
        StatusCode::NOT_FOUND,
        "renewalInfo of an unknown certificate: {}",
        missing.text
    );
}

/// RFC 9773 §5: `replaces` names the account's own certificate, once.
async fn ari_replaces(acme: Acme, owner: Arc<RawAccount>, issued: Arc<Issued>) {
    let id = cert_id(&issued.leaf_der);
    let names: Vec<Value> = issued.order["identifiers"]
        .as_array()
        .expect("identifiers")
        .clone();
    let payload = json!({ "identifiers": names, "replaces": id });

    let stranger = RawAccount::create(&acme).await;
    stranger.new_order(&payload).await.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "replacing another account's certificate",
    );

    let first = owner.new_order(&payload).await;
    first.expect_status(StatusCode::CREATED, "the first replacement order");
    // `ready` when the RA reuses the account's valid authorization for the names.
    assert!(
        first.json["status"] == "pending" || first.json["status"] == "ready",
        "{}",
        first.text
    );
    let mut wrong = Vec::new();
    // RFC 9773 §5: the server reflects `replaces` in the order object.
    if first.json["replaces"] != id {
        wrong.push(format!(
            "the replacement order does not show replaces {id:?}: {}",
            first.text
        ));
    }
    let second = owner.new_order(&payload).await;
    if second.status != StatusCode::CONFLICT || second.json["type"] != ALREADY_REPLACED {
        wrong.push(format!(
            "a second order replacing the same certificate: {} {} (want 409 {ALREADY_REPLACED})",
            second.status, second.text
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// RFC 9773 §4.2: a revoked certificate's window has already passed.
async fn ari_revoked(acme: Acme, owner: Arc<RawAccount>, issued: Arc<Issued>) {
    let revoked = owner
        .post(
            &acme.url("revokeCert"),
            Some(&json!({ "certificate": URL_SAFE_NO_PAD.encode(&issued.leaf_der), "reason": 4 })),
        )
        .await;
    revoked.expect_status(StatusCode::OK, "revocation");
    let info = renewal_info(&acme, &cert_id(&issued.leaf_der)).await;
    let (_, end) = window(&info);
    assert!(
        end < wall_clock_now(),
        "a revoked certificate's window is not in the past: {}",
        info.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_nonces_profiles_validity_and_renewal_info() {
    let ca = Arc::new(DevCa::start("api"));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let mut steps = Steps::default();

    steps.run("directory meta", || {
        directory_meta(acme.clone(), ca.clone())
    });
    steps
        .run_async("newNonce HEAD and GET", new_nonce(acme.clone(), ca.clone()))
        .await;
    steps
        .run_async(
            "POST-as-GET directory and newNonce",
            post_as_get_directory_and_nonce(acme.clone(), ca.clone()),
        )
        .await;
    let classic = steps
        .run_async(
            "profiles: classic 90d (default), modern 45d, shortlived 160h",
            profiles(acme.clone(), ca.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "IP identifiers only under shortlived",
            ip_identifiers(acme.clone(), ca.clone(), http01.clone()),
        )
        .await;
    steps
        .run_async(
            "notBefore/notAfter honoured",
            requested_validity(acme.clone(), ca.clone(), http01.clone()),
        )
        .await;
    match classic {
        Some((owner, issued)) => {
            let (owner, issued) = (Arc::new(owner), Arc::new(issued));
            steps
                .run_async(
                    "ARI window of a certificate",
                    ari_window(acme.clone(), ca.clone(), issued.clone()),
                )
                .await;
            steps
                .run_async(
                    "ARI replaces and alreadyReplaced",
                    ari_replaces(acme.clone(), owner.clone(), issued.clone()),
                )
                .await;
            steps
                .run_async(
                    "ARI window of a revoked certificate",
                    ari_revoked(acme.clone(), owner, issued),
                )
                .await;
        }
        None => {
            for step in ["ARI window", "ARI replaces", "ARI revoked"] {
                steps.skipped(step, "profiles");
            }
        }
    }
    steps.finish();
}
