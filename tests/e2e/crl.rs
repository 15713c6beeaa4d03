//! The sharded CRLs of `basalt dev` (RFC 5280 §5), read with openssl:
//!
//! - every certificate names, as its CRL distribution point, shard `serial mod 4`
//!   of its intermediate under the OCSP responder's URL, for the ECDSA and the
//!   RSA intermediate alike;
//! - every shard of both intermediates is served as `application/pkix-crl`,
//!   `openssl crl -verify` accepts it under its intermediate, and its
//!   issuingDistributionPoint names the URL it was fetched from;
//! - after revokeCert the serial is on its shard, with its reason, within ten
//!   seconds (the responder regenerates a shard a second after it sees the
//!   revocation; its period is minutes), and on no other shard;
//! - with `--crl-period 2s`, the CRL number of a shard grows with each of three
//!   successive updates.

use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;

use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::harness::run;
use crate::harness::run_ok;
use crate::instant_acme::Http01;
use crate::instant_acme::pem_certs;
use crate::instant_acme::write_pem;
use crate::jws::Acme;
use crate::revocation::serial_of;

/// The CRL shards of each intermediate of `basalt dev`.
const SHARDS: u32 = 4;
/// The intermediates of `basalt dev`, by the names their URLs use.
const ISSUERS: [&str; 2] = ["ecdsa", "rsa"];
/// How long one `openssl` run may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon after the revokeCert answer the serial must be on its shard: the
/// responder's delay (1s), the status feed's interval (1s), and margin.
const REVOKED_WITHIN: Duration = Duration::from_secs(10);
/// The shortest time between two fetches of one poll.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a shard may answer 503 (not generated yet) after `basalt dev` is ready.
const FIRST_GENERATION_WITHIN: Duration = Duration::from_secs(20);

/// A plain-HTTP client for the responder.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build the http client")
}

/// One CRL shard as fetched, and as `openssl crl` read it.
#[derive(Debug)]
struct Crl {
    /// Where it was fetched from.
    url: String,
    der: Vec<u8>,
    etag: String,
    cache_control: String,
    /// Its cRLNumber.
    number: u128,
    /// thisUpdate, Unix seconds.
    this_update: i64,
    /// The URIs of its issuingDistributionPoint.
    idp: Vec<String>,
    /// Whether the issuingDistributionPoint says onlyContainsUserCerts.
    only_user_certs: bool,
    /// Each revoked serial (uppercase hex, no leading zeros) with the reason
    /// openssl prints, if any.
    revoked: Vec<(String, Option<String>)>,
    /// Everything `openssl crl -text` printed.
    text: String,
}

impl Crl {
    /// The reason the CRL lists `serial` for (`Some(None)`: listed without one).
    fn entry(&self, serial_hex: &str) -> Option<Option<&str>> {
        let serial = plain_hex(serial_hex);
        self.revoked
            .iter()
            .find(|(listed, _)| *listed == serial)
            .map(|(_, reason)| reason.as_deref())
    }
}

/// Hex in uppercase without leading zeros, as serials are compared.
fn plain_hex(hex: &str) -> String {
    let upper = hex.trim().to_ascii_uppercase();
    let trimmed = upper.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// GETs `url` once: the status, and the body and headers of a 200.
async fn get(
    http: &reqwest::Client,
    url: &str,
) -> (StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
    let response = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|err| panic!("GET {url}: body: {err}"))
        .to_vec();
    (status, body, headers)
}

/// Fetches the shard at `url` (waiting out the 503s before its first
/// generation), checks its HTTP headers, verifies it with `openssl crl -verify`
/// under `issuer_pem`, and reads it with `openssl crl -text`.
async fn fetch(http: &reqwest::Client, url: &str, issuer_pem: &Path, dir: &Path) -> Crl {
    let deadline = Instant::now() + FIRST_GENERATION_WITHIN;
    let (der, headers) = loop {
        let (status, body, headers) = get(http, url).await;
        match status {
            StatusCode::OK => break (body, headers),
            StatusCode::SERVICE_UNAVAILABLE if Instant::now() < deadline => {
                assert!(
                    headers.contains_key("retry-after"),
                    "503 without Retry-After"
                );
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            other => panic!("GET {url}: {other}: {}", String::from_utf8_lossy(&body)),
        }
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("GET {url}: no {name} header"))
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/pkix-crl", "{url}");
    assert!(header("last-modified").ends_with(" GMT"), "{url}");
    let crl = Crl {
        url: url.to_owned(),
        etag: header("etag"),
        cache_control: header("cache-control"),
        ..tokio::task::block_in_place(|| openssl_read(&der, issuer_pem, dir))
    };
    assert!(
        crl.cache_control.starts_with("public, max-age="),
        "{url}: Cache-Control {:?}",
        crl.cache_control
    );
    Crl { der, ..crl }
}

/// Runs `openssl crl -verify` and `openssl crl -text` on `der`; panics unless the
/// signature verifies under `issuer_pem`. The url, ETag and caching fields are
/// left empty.
fn openssl_read(der: &[u8], issuer_pem: &Path, dir: &Path) -> Crl {
    let path = dir.join(format!("shard-{:x}.crl", random_u64()));
    fs::write(&path, der).expect("write the CRL");
    let verify = run(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&path)
            .arg("-CAfile")
            .arg(issuer_pem)
            .args(["-verify", "-noout"]),
        OPENSSL_TIMEOUT,
    );
    assert!(
        verify.status.success() && verify.text().lines().any(|line| line.trim() == "verify OK"),
        "openssl crl -verify refused {} under {}:\n{}",
        path.display(),
        issuer_pem.display(),
        verify.text()
    );
    let text = run_ok(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&path)
            .args(["-noout", "-text"]),
        OPENSSL_TIMEOUT,
    )
    .stdout;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let after = |label: &str| {
        lines
            .iter()
            .position(|line| line.starts_with(label))
            .and_then(|index| lines.get(index + 1).copied())
    };
    let number = after("X509v3 CRL Number")
        .and_then(parse_number)
        .unwrap_or_else(|| panic!("no CRL number:\n{text}"));
    let this_update = lines
        .iter()
        .find_map(|line| line.strip_prefix("Last Update:"))
        .and_then(|time| openssl_time(time.trim()))
        .unwrap_or_else(|| panic!("no Last Update:\n{text}"));
    // OpenSSL 3.0 prints the scope on the URI's line: `URI:…   Only User Certificates`.
    let idp = lines
        .iter()
        .filter_map(|line| line.strip_prefix("URI:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut revoked: Vec<(String, Option<String>)> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(serial) = line.strip_prefix("Serial Number:") {
            revoked.push((plain_hex(serial), None));
        } else if line.starts_with("X509v3 CRL Reason Code")
            && let (Some(last), Some(reason)) = (revoked.last_mut(), lines.get(index + 1))
        {
            last.1 = Some((*reason).to_owned());
        }
    }
    Crl {
        url: String::new(),
        der: Vec::new(),
        etag: String::new(),
        cache_control: String::new(),
        number,
        this_update,
        idp,
        only_user_certs: text.contains("Only User Certificates"),
        revoked,
        text,
    }
}

/// A CRL number as openssl prints it: decimal, or `0x` hex when large.
fn parse_number(text: &str) -> Option<u128> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(&hex.replace(':', ""), 16).ok(),
        None => text.parse().ok(),
    }
}

/// A time as `openssl` prints ASN.1 times, `Nov 29 19:00:00 2025 GMT`, in Unix
/// seconds.
fn openssl_time(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let [month, day, clock, year, "GMT"] = text.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|name| *name == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let year: u32 = year.parse().ok()?;
    crate::certs::parse_timestamp(&format!("{year:04}-{month:02}-{day:02}T{clock}Z"))
}

/// The shard a certificate with this serial is on: the serial mod 4, i.e. its
/// last octet mod 4.
fn shard_of(serial: &basalt_core::Serial) -> u32 {
    let last = serial.as_bytes().last().copied().unwrap_or(0);
    u32::from(last) % SHARDS
}

/// The CRL distribution point URIs of the certificate at `cert` (PEM).
fn crl_distribution_points(cert: &Path) -> Vec<String> {
    let output = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    output
        .stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("URI:"))
        .map(str::to_owned)
        .collect()
}

/// An issued certificate on disk, with what the CRLs say about it.
struct Leaf {
    /// The leaf, PEM.
    cert: PathBuf,
    der: Vec<u8>,
    /// `ecdsa` or `rsa`: the intermediate that issued it.
    issuer: &'static str,
    serial: basalt_core::Serial,
    shard: u32,
}

/// Orders and downloads a certificate for a fresh name, with an RSA key when
/// `issuer` is `rsa` (a P-256 one otherwise); checks that the intermediate
/// `issuer` signed it and that its CRL distribution point is its shard's URL.
async fn issue(
    ca: &DevCa,
    account: &RawAccount,
    http01: &Http01,
    dir: &Path,
    issuer: &'static str,
) -> Leaf {
    let name = format!("{issuer}-{:x}.crl.example.com", random_u64());
    let csr = if issuer == "rsa" {
        tokio::task::block_in_place(|| crate::ocsp::rsa_csr(dir, &name))
    } else {
        crate::instant_acme::cert_csr(&[&name]).0
    };
    let (order_url, order) = account.ready_order(http01, &order_payload(&[&name])).await;
    let order = account.finalize(&order_url, &order, &csr).await;
    let download = order["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("a valid order without a certificate: {order}"));
    let download = account.post(download, None).await;
    download.expect_status(StatusCode::OK, "certificate download");
    let chain = pem_certs(&download.text);
    let intermediate = pem_certs(
        &fs::read_to_string(ca.pki(&format!("intermediate-{issuer}.pem")))
            .expect("read the intermediate"),
    );
    assert!(
        chain.len() >= 2 && intermediate.first() == chain.get(1),
        "{name} was not issued by the {issuer} intermediate:\n{}",
        download.text
    );
    let cert = dir.join(format!("{name}.pem"));
    write_pem(&cert, &chain[0]);
    let serial = serial_of(&chain[0]);
    let shard = shard_of(&serial);
    let points = tokio::task::block_in_place(|| crl_distribution_points(&cert));
    assert_eq!(
        points,
        [ca.crl_url(issuer, shard)],
        "the CRL distribution point of {name} (serial {serial})"
    );
    Leaf {
        cert,
        der: chain[0].clone(),
        issuer,
        serial,
        shard,
    }
}

/// Fetches every shard of every intermediate and checks each.
async fn every_shard(ca: &DevCa, http: &reqwest::Client, dir: &Path) -> Vec<Vec<Crl>> {
    let mut all = Vec::new();
    for issuer in ISSUERS {
        let issuer_pem = ca.pki(&format!("intermediate-{issuer}.pem"));
        let mut shards = Vec::new();
        for shard in 0..SHARDS {
            let url = ca.crl_url(issuer, shard);
            let crl = fetch(http, &url, &issuer_pem, dir).await;
            assert_eq!(
                crl.idp,
                std::slice::from_ref(&url),
                "the issuingDistributionPoint of {url}:\n{}",
                crl.text
            );
            assert!(crl.only_user_certs, "{url}:\n{}", crl.text);
            shards.push(crl);
        }
        all.push(shards);
    }
    all
}

/// Polls the shard of `leaf` until it lists its serial; panics unless it does
/// within [`REVOKED_WITHIN`] of `since`. Returns that CRL and how long it took.
async fn becomes_listed(
    http: &reqwest::Client,
    ca: &DevCa,
    leaf: &Leaf,
    dir: &Path,
    since: Instant,
) -> (Crl, Duration) {
    let url = ca.crl_url(leaf.issuer, leaf.shard);
    let issuer_pem = ca.pki(&format!("intermediate-{}.pem", leaf.issuer));
    let serial = leaf.serial.to_string();
    let mut fetched = 0;
    loop {
        let started = Instant::now();
        let crl = fetch(http, &url, &issuer_pem, dir).await;
        fetched += 1;
        let elapsed = since.elapsed();
        if crl.entry(&serial).is_some() {
            assert!(
                elapsed <= REVOKED_WITHIN,
                "{url} listed {serial} only {elapsed:?} after the revokeCert answer \
                 (allowed {REVOKED_WITHIN:?}, {fetched} fetches)"
            );
            return (crl, elapsed);
        }
        assert!(
            elapsed < REVOKED_WITHIN,
            "{url} did not list {serial} within {REVOKED_WITHIN:?} of the revokeCert \
             answer ({fetched} fetches); the last CRL:\n{}",
            crl.text
        );
        tokio::time::sleep(POLL_INTERVAL.saturating_sub(started.elapsed())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_verifies_and_a_revocation_reaches_its_shard_within_seconds() {
    let ca = DevCa::start("crl");
    let dir = ca.client_dir("crl");
    let http = http_client();
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = RawAccount::create(&acme).await;

    // Certificates of both intermediates, each naming its shard.
    let mut leaves = Vec::new();
    for issuer in ["ecdsa", "ecdsa", "ecdsa", "rsa"] {
        leaves.push(issue(&ca, &account, &http01, &dir, issuer).await);
    }
    for leaf in &leaves {
        println!(
            "crl: {} serial {} is on shard {} of {}",
            leaf.cert.display(),
            leaf.serial,
            leaf.shard,
            leaf.issuer
        );
    }

    // Every shard verifies under its intermediate and names itself.
    let before = every_shard(&ca, &http, &dir).await;
    for leaf in &leaves {
        let issuer = ISSUERS
            .iter()
            .position(|name| *name == leaf.issuer)
            .unwrap();
        let crl = &before[issuer][leaf.shard as usize];
        assert_eq!(
            crl.entry(&leaf.serial.to_string()),
            None,
            "{} lists {} before any revocation",
            crl.url,
            leaf.serial
        );
    }
    // A cache revalidating a shard gets 304; a shard beyond the count is 404.
    let shard = &before[0][0];
    let revalidated = http
        .get(&shard.url)
        .header("if-none-match", &shard.etag)
        .send()
        .await
        .expect("a conditional GET");
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    let (status, _, _) = get(&http, &ca.crl_url("ecdsa", SHARDS)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Revoked by the account, for superseded.
    let leaf = &leaves[0];
    let payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(&leaf.der), "reason": 4 });
    account
        .post(&acme.url("revokeCert"), Some(&payload))
        .await
        .expect_status(StatusCode::OK, "revokeCert by the account");
    let answered = Instant::now();
    let (after, took) = becomes_listed(&http, &ca, leaf, &dir, answered).await;
    println!(
        "crl: {} listed {} {took:?} after the revokeCert answer",
        after.url, leaf.serial
    );
    assert_eq!(
        after.entry(&leaf.serial.to_string()),
        Some(Some("Superseded")),
        "the reason code:\n{}",
        after.text
    );
    let issuer = ISSUERS
        .iter()
        .position(|name| *name == leaf.issuer)
        .unwrap();
    let earlier = &before[issuer][leaf.shard as usize];
    assert!(
        after.number > earlier.number,
        "the CRL number went from {} to {}",
        earlier.number,
        after.number
    );
    assert!(after.this_update >= earlier.this_update);
    assert_ne!(after.etag, earlier.etag);

    // On its own shard only; the others still verify.
    let now = every_shard(&ca, &http, &dir).await;
    for (index, shards) in now.iter().enumerate() {
        for (shard, crl) in shards.iter().enumerate() {
            let own = ISSUERS[index] == leaf.issuer && shard as u32 == leaf.shard;
            assert_eq!(
                crl.entry(&leaf.serial.to_string()).is_some(),
                own,
                "{}:\n{}",
                crl.url,
                crl.text
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_numbers_grow_with_each_update() {
    let ca = DevCa::builder("crl-period")
        .arg("--crl-period")
        .arg("2s")
        .start();
    let dir = ca.client_dir("crl-period");
    let http = http_client();
    for issuer in ISSUERS {
        let url = ca.crl_url(issuer, 0);
        let issuer_pem = ca.pki(&format!("intermediate-{issuer}.pem"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut updates: Vec<Crl> = Vec::new();
        while updates.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "{url} was updated {} times in 30s with --crl-period 2s",
                updates.len().saturating_sub(1)
            );
            let crl = fetch(&http, &url, &issuer_pem, &dir).await;
            match updates.last() {
                Some(last) if last.der == crl.der => {}
                Some(last) => {
                    assert!(
                        crl.number > last.number,
                        "{url}: CRL number {} after {}",
                        crl.number,
                        last.number
                    );
                    assert!(crl.this_update >= last.this_update, "{url}");
                    updates.push(crl);
                }
                None => updates.push(crl),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let numbers: Vec<u128> = updates.iter().map(|crl| crl.number).collect();
        println!("crl: {url} numbers across three updates: {numbers:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers_and_serials_parse_as_openssl_prints_them() {
        assert_eq!(
            parse_number("1764442800123456789"),
            Some(1_764_442_800_123_456_789)
        );
        assert_eq!(parse_number("0x0100"), Some(256));
        assert_eq!(parse_number("0x01:00"), Some(256));
        assert_eq!(parse_number("twelve"), None);
        assert_eq!(plain_hex("00ab"), "AB");
        assert_eq!(plain_hex("0"), "0");
        assert_eq!(
            shard_of(&"0103".parse().unwrap()),
            3,
            "the last octet decides the shard"
        );
        assert_eq!(shard_of(&"ff04".parse().unwrap()), 0);
        assert_eq!(
            openssl_time("Mar  1 12:00:00 2025 GMT"),
            crate::certs::parse_timestamp("2025-03-01T12:00:00Z")
        );
    }
}
