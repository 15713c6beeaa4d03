//! Every `basalt admin` command against a running `basalt dev`, each checked by
//! what it prints and, where it changes something, by what the SA, the RA or the
//! OCSP responder then says:
//!
//! - `certs` by name (exactly, and with `--subdomains`), by account, by key (hash
//!   and PEM file), `--active`, and a name it refuses;
//! - `order show` of an issued order, and of an order that does not exist;
//! - `revoke-key`: the key's unexpired certificates revoked for keyCompromise (the
//!   SA, `certs` and OCSP agree), the key blocked, another key's certificate left
//!   alone; run again, it finds nothing to revoke and succeeds;
//! - `block-key`, `revoke`, `incident add`/`list`, `eab create`/`list`/`revoke`,
//!   `rate-limit add`/`list`/`remove`.
//!
//! `revocation.rs`, `eab.rs`, `rate_limits.rs`, `incident.rs` and `weak_keys.rs`
//! check what those commands do to ACME clients in depth.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use basalt_core::CertStatus;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::SpkiHash;
use basalt_core::StorageReadOnly;
use reqwest::StatusCode;
use ring::digest;

use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::CmdOutput;
use crate::harness::DevCa;
use crate::harness::random_u64;
use crate::instant_acme::Http01;
use crate::instant_acme::pem_certs;
use crate::instant_acme::write_pem;
use crate::jws::Acme;
use crate::ocsp::CertIdHash;
use crate::ocsp::Target;
use crate::ocsp::status_becomes;
use crate::rate_limits::account_id;
use crate::revocation::admin_sa;
use crate::revocation::serial_of;
use crate::steps::Steps;

/// How long after `revoke-key` OCSP may still say good.
const OCSP_WITHIN: Duration = Duration::from_secs(10);

/// Runs `basalt admin ARGS…`.
fn admin(ca: &DevCa, args: &[&str]) -> CmdOutput {
    tokio::task::block_in_place(|| ca.admin(args))
}

/// Runs `basalt admin ARGS…`; its stdout, or a panic with its output unless it
/// succeeds.
fn admin_ok(ca: &DevCa, args: &[&str]) -> String {
    let output = admin(ca, args);
    assert!(
        output.status.success(),
        "basalt admin {} failed ({}): {}",
        args.join(" "),
        output.status,
        output.text()
    );
    output.stdout
}

/// Runs `basalt admin ARGS…`; its stderr, or a panic with its output if it
/// succeeds.
fn admin_fails(ca: &DevCa, args: &[&str]) -> String {
    let output = admin(ca, args);
    assert!(
        !output.status.success(),
        "basalt admin {} should have failed: {}",
        args.join(" "),
        output.text()
    );
    output.stderr
}

/// One line of `basalt admin certs`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CertLine {
    serial: String,
    account: String,
    not_after: String,
    status: String,
    names: String,
}

/// The lines `basalt admin certs ARGS…` prints, in its order.
fn certs(ca: &DevCa, args: &[&str]) -> Vec<CertLine> {
    let mut argv = vec!["certs"];
    argv.extend_from_slice(args);
    admin_ok(ca, &argv)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [serial, account, not_after, status, names] = fields[..] else {
                panic!("certs printed {line:?}, not five tab-separated fields");
            };
            CertLine {
                serial: serial.to_owned(),
                account: account.to_owned(),
                not_after: not_after.to_owned(),
                status: status.to_owned(),
                names: names.to_owned(),
            }
        })
        .collect()
}

/// The serials of `lines`, checked to be newest first (by notAfter: every
/// certificate here has the same lifetime, so that is notBefore's order) and
/// sorted for comparing.
fn serials(lines: &[CertLine]) -> Vec<String> {
    let order: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| (line.not_after.as_str(), line.serial.as_str()))
        .collect();
    let mut newest_first = order.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, newest_first, "certs does not list newest first");
    let mut serials: Vec<String> = lines.iter().map(|line| line.serial.clone()).collect();
    serials.sort();
    serials
}

/// The given serials, sorted as [`serials`] returns them.
fn sorted(serials: &[&Issued]) -> Vec<String> {
    let mut serials: Vec<String> = serials.iter().map(|cert| cert.serial.clone()).collect();
    serials.sort();
    serials
}

/// The SHA-256 of `key`'s SubjectPublicKeyInfo, in hex, as the CA names keys.
fn key_hash(key: &rcgen::KeyPair) -> String {
    let spki = rcgen::PublicKeyData::subject_public_key_info(key);
    digest::digest(&digest::SHA256, &spki)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A certificate issued for this test.
#[derive(Clone, Debug)]
struct Issued {
    /// Its order's ID.
    order_id: String,
    /// Its serial, as Basalt prints serials.
    serial: String,
    /// The leaf, PEM.
    cert: PathBuf,
    /// The intermediate that issued it, PEM.
    issuer: PathBuf,
}

/// Orders a certificate for `names` through `account`, finalizes it with a CSR
/// for `key`, downloads it and writes the leaf and its issuer into `dir`.
async fn issue(
    account: &RawAccount,
    http01: &Http01,
    dir: &Path,
    names: &[&str],
    key: &rcgen::KeyPair,
) -> Issued {
    let (order_url, order) = account.ready_order(http01, &order_payload(names)).await;
    let mut params = rcgen::CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("CSR params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(key).expect("serialize the CSR");
    let order = account.finalize(&order_url, &order, csr.der()).await;
    let certificate = order["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("a valid order without a certificate: {order}"));
    let download = account.post(certificate, None).await;
    download.expect_status(StatusCode::OK, "certificate download");
    let chain = pem_certs(&download.text);
    assert!(chain.len() >= 2, "no issuer in {}", download.text);
    let cert = dir.join(format!("{}.pem", names[0]));
    let issuer = dir.join(format!("{}.issuer.pem", names[0]));
    write_pem(&cert, &chain[0]);
    write_pem(&issuer, &chain[1]);
    Issued {
        order_id: order_url
            .rsplit('/')
            .next()
            .expect("an order URL")
            .to_owned(),
        serial: serial_of(&chain[0]).to_string(),
        cert,
        issuer,
    }
}

/// The three certificates of the test: two of one key for a name and a name under
/// it, one of another key for another name under it, all of one account.
struct Fixture {
    ca: Arc<DevCa>,
    account_id: String,
    base: String,
    key: String,
    other_key: String,
    apex: Issued,
    www: Issued,
    mail: Issued,
}

/// `certs` by name, with and without `--subdomains`, by account, and by key as a
/// hash and as a PEM file; a bad name is refused, an unknown one finds nothing.
fn search(f: &Fixture) {
    let ca = &f.ca;
    let apex = certs(ca, &["--name", &f.base]);
    assert_eq!(apex.len(), 1, "{apex:?}");
    assert_eq!(
        (
            apex[0].serial.as_str(),
            apex[0].account.as_str(),
            apex[0].status.as_str(),
            apex[0].names.as_str()
        ),
        (
            f.apex.serial.as_str(),
            f.account_id.as_str(),
            "good",
            f.base.as_str()
        )
    );
    assert!(
        apex[0].not_after.ends_with('Z') && apex[0].not_after.contains('T'),
        "notAfter {:?} is not RFC 3339",
        apex[0].not_after
    );
    assert_eq!(
        certs(ca, &["--name", &f.base.to_uppercase()]),
        apex,
        "names are compared in lowercase"
    );

    let all = sorted(&[&f.apex, &f.www, &f.mail]);
    let under = certs(ca, &["--name", &f.base, "--subdomains"]);
    assert_eq!(serials(&under), all);
    let www = format!("www.{}", f.base);
    let only_www = certs(ca, &["--name", &www]);
    assert_eq!(serials(&only_www), sorted(&[&f.www]));
    assert_eq!(only_www[0].names, www);

    assert_eq!(serials(&certs(ca, &["--account", &f.account_id])), all);
    assert_eq!(
        serials(&certs(ca, &["--account", &f.account_id, "--limit", "1"])).len(),
        1
    );

    let of_key = sorted(&[&f.apex, &f.www]);
    assert_eq!(serials(&certs(ca, &["--key-hash", &f.key])), of_key);
    let cert_file = f.apex.cert.to_str().expect("a UTF-8 path");
    assert_eq!(serials(&certs(ca, &["--key-file", cert_file])), of_key);
    assert_eq!(
        serials(&certs(ca, &["--key-hash", &f.other_key])),
        sorted(&[&f.mail])
    );

    let nothing = admin(ca, &["certs", "--name", "nothing.admin.example.net"]);
    assert!(nothing.status.success(), "{}", nothing.text());
    assert_eq!(nothing.stdout, "");
    assert!(
        nothing.stderr.contains("no certificate found"),
        "{}",
        nothing.text()
    );
    let refused = admin_fails(ca, &["certs", "--name", "a..example"]);
    assert!(refused.contains("is not a DNS name"), "{refused}");
    let two = admin_fails(ca, &["certs", "--name", &f.base, "--account", "1"]);
    assert!(two.contains("cannot be used with"), "{two}");
}

/// `order show` of the apex certificate's order, and of an order that does not
/// exist.
fn order_show(f: &Fixture) {
    let ca = &f.ca;
    let shown = admin_ok(ca, &["order", "show", &f.apex.order_id]);
    let lines: Vec<&str> = shown.lines().collect();
    for expected in [
        format!("order\t{}", f.apex.order_id),
        format!("account\t{}", f.account_id),
        "status\tvalid".to_owned(),
        "profile\tclassic".to_owned(),
        format!("identifiers\t{}", f.base),
        format!("certificate\t{}", f.apex.serial),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "no {expected:?} in:\n{shown}"
        );
    }
    let authz: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("authz\t"))
        .collect();
    assert_eq!(authz.len(), 1, "{shown}");
    let fields: Vec<&str> = authz[0].split('\t').collect();
    assert_eq!(fields[2..4], [f.base.as_str(), "valid"], "{shown}");
    let authz_id = fields[1];
    assert!(
        lines.iter().any(|line| line.starts_with(&format!(
            "challenge\t{authz_id}\thttp-01\tvalid\tvalidated "
        ))),
        "no valid http-01 challenge in:\n{shown}"
    );
    assert!(!shown.contains("\nerror\t"), "{shown}");

    let missing = admin_fails(ca, &["order", "show", "1"]);
    assert!(missing.contains("no order has ID 1"), "{missing}");
}

/// `revoke-key` revokes the key's two certificates for keyCompromise and blocks
/// the key; `certs`, the SA and OCSP then say so; the other key's certificate is
/// left alone; a second run finds nothing to revoke.
async fn revoke_key(f: Arc<Fixture>) {
    let ca = &f.ca;
    let done = admin_ok(ca, &["revoke-key", "--key-hash", &f.key, "--by", "alice"]);
    let revoked_at = Instant::now();
    let lines: Vec<&str> = done.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("blocked spki_sha256: {}", f.key).as_str()),
        "{done}"
    );
    for (cert, name) in [
        (&f.apex, f.base.clone()),
        (&f.www, format!("www.{}", f.base)),
    ] {
        let line = format!(
            "revoked serial {} (account {}, {name}), reason keyCompromise (1), by alice",
            cert.serial, f.account_id
        );
        assert!(lines.contains(&line.as_str()), "no {line:?} in:\n{done}");
    }
    assert_eq!(
        lines.last().copied(),
        Some(format!("key {}: 2 certificates revoked, 0 failed", f.key).as_str()),
        "{done}"
    );

    let listed = certs(ca, &["--key-hash", &f.key]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|line| line.status == "revoked:keyCompromise"),
        "{listed:?}"
    );
    let active = admin(ca, &["certs", "--key-hash", &f.key, "--active"]);
    assert!(active.status.success(), "{}", active.text());
    assert_eq!(active.stdout, "", "revoked certificates are not active");
    let mail = certs(ca, &["--name", &format!("mail.{}", f.base)]);
    assert_eq!(
        mail[0].status, "good",
        "another key's certificate: {mail:?}"
    );

    let sa = admin_sa(ca);
    for cert in [&f.apex, &f.www] {
        let status = sa
            .revocation_status(&cert.serial.parse().expect("a serial"))
            .await
            .expect("the SA's status");
        assert_eq!(
            (status.status, status.revocation_reason),
            (CertStatus::Revoked, Some(RevocationReason::KeyCompromise)),
            "{status:?}"
        );
    }
    let hash: SpkiHash = f.key.parse().expect("a key hash");
    assert!(
        sa.key_blocked(&hash).await.expect("key_blocked"),
        "revoke-key left the key unblocked"
    );
    let (answer, _) = tokio::task::block_in_place(|| {
        status_becomes(
            ca,
            &f.apex.issuer,
            Target::Cert(&f.apex.cert),
            CertIdHash::Sha1,
            "revoked",
            revoked_at,
            OCSP_WITHIN,
        )
    });
    assert_eq!(
        answer.reason.as_deref(),
        Some("keyCompromise"),
        "{}",
        answer.text
    );

    let again = admin_ok(ca, &["revoke-key", "--key-hash", &f.key, "--by", "alice"]);
    assert!(
        again.contains(&format!(
            "no unexpired, unrevoked certificate has key {}",
            f.key
        )),
        "{again}"
    );
}

/// `block-key` by hash and by certificate names the same key, and the SA then has
/// it blocked.
async fn block_key(f: Arc<Fixture>) {
    let ca = &f.ca;
    let done = admin_ok(
        ca,
        &[
            "block-key",
            "--spki-sha256",
            &f.other_key,
            "--comment",
            "e2e",
        ],
    );
    assert_eq!(done.trim(), format!("blocked spki_sha256: {}", f.other_key));
    let cert_file = f.mail.cert.to_str().expect("a UTF-8 path");
    let again = admin_ok(ca, &["block-key", "--cert", cert_file]);
    assert_eq!(again.trim(), done.trim());
    let hash: SpkiHash = f.other_key.parse().expect("a key hash");
    assert!(admin_sa(ca).key_blocked(&hash).await.expect("key_blocked"));
}

/// `revoke` by serial, then `certs` shows the reason.
fn revoke(f: &Fixture) {
    let ca = &f.ca;
    let done = admin_ok(
        ca,
        &[
            "revoke",
            "--serial",
            &f.mail.serial,
            "--reason",
            "superseded",
            "--by",
            "bob",
        ],
    );
    assert_eq!(
        done.trim(),
        format!(
            "revoked serial {} (certificate), reason superseded (4), by bob",
            f.mail.serial
        )
    );
    let mail = certs(ca, &["--name", &format!("mail.{}", f.base)]);
    assert_eq!(mail[0].status, "revoked:superseded", "{mail:?}");
}

/// `incident add` names a serial; `incident list` shows it.
fn incident(f: &Fixture) {
    let ca = &f.ca;
    let name = format!("e2e-admin-{:x}", random_u64());
    let url = "https://status.example/e2e-admin";
    let declared = admin_ok(
        ca,
        &[
            "incident",
            "add",
            "--name",
            &name,
            "--url",
            url,
            "--serial",
            &f.apex.serial,
        ],
    );
    assert!(
        declared.starts_with(&format!("declared incident {name} (id "))
            && declared.contains("naming 1 serial, explained at"),
        "{declared}"
    );
    let listed = admin_ok(ca, &["incident", "list"]);
    assert!(
        listed
            .lines()
            .any(|line| line.contains(&format!("\t{name}\t"))
                && line.ends_with(&format!("\t1 serials\t{url}"))),
        "incident list lacks {name}:\n{listed}"
    );
}

/// `eab create`, `list` and `revoke`.
fn eab(f: &Fixture) {
    let ca = &f.ca;
    let created = admin_ok(ca, &["eab", "create", "--comment", "e2e-admin"]);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name:?} in {created:?}"))
    };
    let key_id = field("key_id:");
    assert!(!field("hmac_key:").is_empty());
    let line_of = |key_id: &str| {
        admin_ok(ca, &["eab", "list"])
            .lines()
            .find(|line| line.starts_with(&format!("{key_id}\t")))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("eab list lacks {key_id}"))
    };
    let line = line_of(&key_id);
    assert!(
        line.contains("\tunused\t") && line.ends_with("\te2e-admin"),
        "{line}"
    );
    let revoked = admin_ok(ca, &["eab", "revoke", &key_id]);
    assert_eq!(revoked.trim(), format!("revoked {key_id}"));
    assert!(line_of(&key_id).contains("\trevoked\t"));
}

/// `rate-limit add`, `list` and `remove`, for the test's account.
fn rate_limit(f: &Fixture) {
    let ca = &f.ca;
    let id = &f.account_id;
    let limit = "new_orders_per_account";
    let added = admin_ok(
        ca,
        &[
            "rate-limit",
            "add",
            "--limit",
            limit,
            "--key",
            id,
            "--count",
            "100",
            "--period",
            "3h",
            "--burst",
            "10",
            "--comment",
            "e2e-admin",
        ],
    );
    assert_eq!(
        added.trim(),
        format!("{limit} for key {id}: now 100 per 3h, burst 10")
    );
    let line = format!("{limit}\t{id}\t100/3h\t10\te2e-admin");
    let listed = admin_ok(ca, &["rate-limit", "list"]);
    assert!(
        listed.lines().any(|l| l == line),
        "no {line:?} in:\n{listed}"
    );
    let removed = admin_ok(ca, &["rate-limit", "remove", "--limit", limit, "--key", id]);
    assert_eq!(
        removed.trim(),
        format!("{limit} for key {id}: override removed, the default applies")
    );
    let listed = admin_ok(ca, &["rate-limit", "list"]);
    assert!(!listed.lines().any(|l| l == line), "{listed}");
    let again = admin_fails(ca, &["rate-limit", "remove", "--limit", limit, "--key", id]);
    assert!(
        again.contains(&format!("{limit} has no override for key {id}")),
        "{again}"
    );
}

// Multi-threaded: the steps call `basalt admin` with `block_in_place`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_command() {
    let ca = Arc::new(DevCa::start("admin"));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let account = RawAccount::create(&acme).await;
    let dir = ca.client_dir("admin");
    let base = format!("{:x}.admin.example.com", random_u64());
    let key = rcgen::KeyPair::generate().expect("a key");
    let other_key = rcgen::KeyPair::generate().expect("a key");
    let apex = issue(&account, &http01, &dir, &[&base], &key).await;
    let www = issue(&account, &http01, &dir, &[&format!("www.{base}")], &key).await;
    let mail = issue(
        &account,
        &http01,
        &dir,
        &[&format!("mail.{base}")],
        &other_key,
    )
    .await;
    let fixture = Arc::new(Fixture {
        ca: ca.clone(),
        account_id: account_id(&account.kid),
        base,
        key: key_hash(&key),
        other_key: key_hash(&other_key),
        apex,
        www,
        mail,
    });

    let mut steps = Steps::default();
    // Before anything is revoked: the searches expect every certificate good.
    steps.run("certs", || search(&fixture));
    steps.run("order show", || order_show(&fixture));
    steps
        .run_async("revoke-key", revoke_key(fixture.clone()))
        .await;
    steps
        .run_async("block-key", block_key(fixture.clone()))
        .await;
    steps.run("revoke", || revoke(&fixture));
    steps.run("incident add, list", || incident(&fixture));
    steps.run("eab create, list, revoke", || eab(&fixture));
    steps.run("rate-limit add, list, remove", || rate_limit(&fixture));
    steps.finish();
}
