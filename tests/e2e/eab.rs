//! External account binding (RFC 8555 §7.3.4) with `basalt dev --eab-required`:
//! keys made by `basalt admin eab create`, certbot binding an account with one,
//! and the keys that must not bind another: used, revoked, or a wrong MAC.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use ring::hmac;
use serde_json::Value;
use serde_json::json;
use tokio::task::block_in_place;

use crate::certbot::certbot;
use crate::harness::DevCa;
use crate::harness::run_fails;
use crate::harness::run_ok;
use crate::instant_acme::verify_chain;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::jws::Answer;
use crate::jws::UNAUTHORIZED;
use crate::steps::Steps;

const EXTERNAL_ACCOUNT_REQUIRED: &str = "urn:ietf:params:acme:error:externalAccountRequired";
const DOMAIN: &str = "eab.example.com";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// A key from `basalt admin eab create`.
#[derive(Clone, Debug)]
struct EabKey {
    key_id: String,
    /// base64url, as handed to the subscriber.
    hmac_key: String,
}

fn create_key(ca: &DevCa, comment: &str) -> EabKey {
    let output = ca.admin(&["eab", "create", "--comment", comment]);
    assert!(
        output.status.success(),
        "basalt admin eab create: {}",
        output.text()
    );
    let field = |name: &str| {
        output
            .stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name:?} line in {:?}", output.stdout))
    };
    let key = EabKey {
        key_id: field("key_id:"),
        hmac_key: field("hmac_key:"),
    };
    let hmac = URL_SAFE_NO_PAD
        .decode(&key.hmac_key)
        .unwrap_or_else(|err| panic!("hmac_key {:?} is not base64url: {err}", key.hmac_key));
    assert!(hmac.len() >= 32, "a {}-byte HMAC key", hmac.len());
    key
}

/// The line of `basalt admin eab list` that shows `key_id`.
fn list_line(ca: &DevCa, key_id: &str) -> String {
    let output = ca.admin(&["eab", "list"]);
    assert!(
        output.status.success(),
        "basalt admin eab list: {}",
        output.text()
    );
    output
        .stdout
        .lines()
        .find(|line| line.contains(key_id))
        .unwrap_or_else(|| panic!("eab list does not show {key_id}: {}", output.stdout))
        .to_owned()
}

/// The binding JWS for `account_jwk` (RFC 8555 §7.3.4), MACed with `hmac_key`.
fn binding(key: &EabKey, hmac_key: &[u8], account_jwk: &Value, url: &str) -> Value {
    let protected = URL_SAFE_NO_PAD
        .encode(json!({ "alg": "HS256", "kid": key.key_id, "url": url }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(account_jwk.to_string());
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, hmac_key),
        format!("{protected}.{payload}").as_bytes(),
    );
    json!({ "protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(mac) })
}

/// A newAccount for a fresh key, with `binding` if given.
async fn new_account(acme: &Acme, key: &AccountKey, binding: Option<Value>) -> Answer {
    let mut payload = json!({ "termsOfServiceAgreed": true });
    if let Some(binding) = binding {
        payload["externalAccountBinding"] = binding;
    }
    acme.signed(key, None, &acme.url("newAccount"), Some(&payload))
        .await
}

/// A newAccount for a fresh key bound with `key`.
async fn bound_account(acme: &Acme, key: &EabKey) -> (AccountKey, Value, Answer) {
    let account_key = AccountKey::es256();
    let hmac = URL_SAFE_NO_PAD.decode(&key.hmac_key).expect("base64url");
    let binding = binding(key, &hmac, &account_key.jwk(), &acme.url("newAccount"));
    let answer = new_account(acme, &account_key, Some(binding.clone())).await;
    (account_key, binding, answer)
}

fn certbot_with_key(
    ca: &DevCa,
    dir: &Path,
    subcommand: &str,
    key: &EabKey,
) -> std::process::Command {
    let mut cmd = certbot(ca, dir, subcommand);
    cmd.args(["--agree-tos", "--register-unsafely-without-email"])
        .args(["--eab-kid", &key.key_id])
        .args(["--eab-hmac-key", &key.hmac_key]);
    cmd
}

async fn refused_without_binding(acme: Acme) {
    assert_eq!(
        acme.directory()["meta"]["externalAccountRequired"],
        true,
        "meta: {}",
        acme.directory()
    );
    new_account(&acme, &AccountKey::es256(), None)
        .await
        .expect_problem(
            StatusCode::FORBIDDEN,
            EXTERNAL_ACCOUNT_REQUIRED,
            "newAccount without externalAccountBinding",
        );
}

/// certbot registers with the key and gets a certificate; `eab list` shows the
/// key bound.
fn certbot_issues(ca: &DevCa, key: &EabKey) {
    let dir = ca.client_dir("certbot-eab");
    run_ok(
        certbot_with_key(ca, &dir, "certonly", key)
            .arg("--standalone")
            .args(["--http-01-port", &ca.http01_port.to_string()])
            .args(["--http-01-address", "127.0.0.1"])
            .args(["-d", DOMAIN]),
        CLIENT_TIMEOUT,
    );
    let live = dir.join("config/live").join(DOMAIN);
    verify_chain(
        ca,
        &live.join("chain.pem"),
        &live.join("cert.pem"),
        &[DOMAIN],
    );
    let line = list_line(ca, &key.key_id);
    assert!(
        line.contains("bound") && line.contains("certbot-eab"),
        "eab list after certbot registered with {}: {line:?}",
        key.key_id
    );
}

/// The key that bound certbot's account binds no other: certbot and a raw
/// request are both refused.
async fn used_key_refused(acme: Acme, ca: Arc<DevCa>, key: EabKey) {
    let (_, _, answer) = bound_account(&acme, &key).await;
    answer.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "a second account with a used EAB key",
    );
    let dir = ca.client_dir("certbot-eab-again");
    let refused = block_in_place(|| {
        run_fails(
            &mut certbot_with_key(&ca, &dir, "register", &key),
            CLIENT_TIMEOUT,
        )
    });
    let log = std::fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default();
    assert!(
        refused.text().contains(UNAUTHORIZED) || log.contains(UNAUTHORIZED),
        "certbot register with a used key failed for another reason: {}\n--- certbot log ---\n{log}",
        refused.text()
    );
}

async fn revoked_key_refused(acme: Acme, ca: Arc<DevCa>) {
    let key = block_in_place(|| create_key(&ca, "to-revoke"));
    let revoked = block_in_place(|| ca.admin(&["eab", "revoke", &key.key_id]));
    assert!(revoked.status.success(), "eab revoke: {}", revoked.text());
    let line = block_in_place(|| list_line(&ca, &key.key_id));
    assert!(line.contains("revoked"), "eab list after revoke: {line:?}");
    let (_, _, answer) = bound_account(&acme, &key).await;
    answer.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "newAccount with a revoked EAB key",
    );
}

async fn wrong_mac_refused(acme: Acme, ca: Arc<DevCa>) {
    let key = block_in_place(|| create_key(&ca, "wrong-mac"));
    let account_key = AccountKey::es256();
    let binding = binding(
        &key,
        &[0x42; 32],
        &account_key.jwk(),
        &acme.url("newAccount"),
    );
    new_account(&acme, &account_key, Some(binding))
        .await
        .expect_problem(
            StatusCode::FORBIDDEN,
            UNAUTHORIZED,
            "newAccount with a binding MACed by another key",
        );
    // The failed attempt did not use the key up.
    let line = block_in_place(|| list_line(&ca, &key.key_id));
    assert!(
        line.contains("unused"),
        "eab list after a bad MAC: {line:?}"
    );
}

/// RFC 8555 §7.3.4: the account the CA returns MUST include the binding as sent.
async fn account_echoes_binding(acme: Acme, ca: Arc<DevCa>) {
    let key = block_in_place(|| create_key(&ca, "raw-client"));
    let (_, binding, answer) = bound_account(&acme, &key).await;
    answer.expect_status(StatusCode::CREATED, "newAccount with a fresh EAB key");
    assert_eq!(answer.json["status"], "valid", "{}", answer.text);
    assert_eq!(
        answer.json["externalAccountBinding"], binding,
        "the account object must carry the binding: {}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_required_and_single_use() {
    let ca = Arc::new(DevCa::builder("eab").arg("--eab-required").start());
    let acme = Acme::new(&ca).await;
    let mut steps = Steps::default();

    steps
        .run_async(
            "newAccount without a binding is refused",
            refused_without_binding(acme.clone()),
        )
        .await;
    let key = steps.run("basalt admin eab create", || create_key(&ca, "certbot-eab"));
    match key {
        Some(key) => {
            let issued = steps.run("certbot with --eab-kid/--eab-hmac-key issues", || {
                certbot_issues(&ca, &key);
            });
            if issued.is_some() {
                steps
                    .run_async(
                        "a used key binds no second account",
                        used_key_refused(acme.clone(), ca.clone(), key),
                    )
                    .await;
            } else {
                steps.skipped("a used key binds no second account", "certbot issues");
            }
        }
        None => {
            steps.skipped("certbot issues", "eab create");
            steps.skipped("a used key binds no second account", "eab create");
        }
    }
    steps
        .run_async(
            "a revoked key is refused",
            revoked_key_refused(acme.clone(), ca.clone()),
        )
        .await;
    steps
        .run_async(
            "a binding with a wrong MAC is refused",
            wrong_mac_refused(acme.clone(), ca.clone()),
        )
        .await;
    steps
        .run_async(
            "the account carries its binding",
            account_echoes_binding(acme.clone(), ca.clone()),
        )
        .await;
    steps.finish();
}
