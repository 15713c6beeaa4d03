//! instant-acme against `basalt dev`: a two-name certificate through http-01
//! served by the test itself, finalize answered `valid` with the certificate URL
//! (the RA waits for the issuance), then the account's life: contacts, its orders
//! list, key rollover, revocation and deactivation.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use instant_acme::Account;
use instant_acme::AuthorizationStatus;
use instant_acme::ChallengeType;
use instant_acme::Identifier;
use instant_acme::NewAccount;
use instant_acme::NewOrder;
use instant_acme::Order;
use instant_acme::OrderStatus;
use instant_acme::RetryPolicy;
use instant_acme::RevocationReason;
use instant_acme::RevocationRequest;
use reqwest::StatusCode;
use rustls::pki_types::CertificateDer;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;

use crate::certbot::ocsp_status_becomes;
use crate::harness::DevCa;
use crate::harness::run_ok;
use crate::jws::ACCOUNT_DOES_NOT_EXIST;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::jws::UNAUTHORIZED;
use crate::steps::Steps;

const NAMES: [&str; 2] = ["ia-one.example.com", "ia-two.example.com"];
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long instant-acme polls an order before giving up.
const POLL_TIMEOUT: Duration = Duration::from_secs(90);
/// The most `Link: rel="next"` pages of an orders list the test follows.
const MAX_PAGES: usize = 50;

/// A tiny HTTP server answering http-01 challenges (RFC 8555 §8.3) on
/// 127.0.0.1, where the VA connects for every name.
#[derive(Clone)]
pub(crate) struct Http01 {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    /// Every path the VA asked for, for failure messages.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Http01 {
    /// Listens on 127.0.0.1:`port` for as long as the test's runtime lives.
    pub(crate) async fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|err| panic!("bind the http-01 responder on port {port}: {err}"));
        let http01 = Self {
            tokens: Arc::default(),
            requests: Arc::default(),
        };
        let server = http01.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move { server.answer(stream).await });
            }
        });
        http01
    }

    /// Serves `key_authorization` at `/.well-known/acme-challenge/<token>`.
    pub(crate) fn insert(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .expect("tokens lock")
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    /// The paths asked for so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    async fn answer(&self, mut stream: TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0_u8; 1024];
        let read = async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .is_err()
        {
            return;
        }
        let head = String::from_utf8_lossy(&head);
        let path = head
            .lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        self.requests
            .lock()
            .expect("requests lock")
            .push(path.clone());
        let body = path
            .strip_prefix("/.well-known/acme-challenge/")
            .and_then(|token| self.tokens.lock().expect("tokens lock").get(token).cloned());
        let response = match body {
            Some(body) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned(),
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// A new instant-acme account (ES256, instant-acme's default) on `ca`; returns it
/// with its key's PKCS#8 DER.
pub(crate) async fn new_account(ca: &DevCa, contact: &[&str]) -> (Account, Vec<u8>) {
    try_new_account(ca, contact)
        .await
        .expect("instant-acme creates an account")
}

/// [`new_account`] for callers that expect the server to fail now and then (a
/// crash test), so a failure is an error to record rather than a panic.
pub(crate) async fn try_new_account(
    ca: &DevCa,
    contact: &[&str],
) -> Result<(Account, Vec<u8>), instant_acme::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (account, credentials) = Account::builder_with_root(&ca.api_ca)
        .expect("an instant-acme client trusting api-ca.pem")
        .create(
            &NewAccount {
                contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            ca.directory_url.clone(),
            None,
        )
        .await?;
    let key = credentials.private_key().secret_pkcs8_der().to_vec();
    Ok((account, key))
}

/// A new order for `names`, with every pending authorization validated over
/// http-01 through `http01`, polled until `ready`.
pub(crate) async fn ready_order(account: &Account, http01: &Http01, names: &[&str]) -> Order {
    let policy = RetryPolicy::new().timeout(POLL_TIMEOUT);
    try_ready_order(account, http01, names, &policy)
        .await
        .unwrap_or_else(|err| panic!("{err}; the VA asked for {:?}", http01.requests()))
}

/// [`ready_order`] that polls with `policy` and returns what went wrong instead of
/// panicking, for callers that expect the server to fail now and then.
pub(crate) async fn try_ready_order(
    account: &Account,
    http01: &Http01,
    names: &[&str],
    policy: &RetryPolicy,
) -> Result<Order, String> {
    let identifiers: Vec<Identifier> = names
        .iter()
        .map(|name| Identifier::Dns((*name).to_owned()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|err| format!("new-order: {err}"))?;
    let authorizations = order.state().authorizations.len();
    if authorizations != names.len() {
        return Err(format!(
            "{authorizations} authorizations for {} names",
            names.len()
        ));
    }
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|err| format!("fetch an authorization: {err}"))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization {} is {other:?}", authz.url())),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or("the authorization offers no http-01 challenge")?;
        http01.insert(&challenge.token, challenge.key_authorization().as_str());
        challenge
            .set_ready()
            .await
            .map_err(|err| format!("respond to the challenge: {err}"))?;
    }
    let status = order
        .poll_ready(policy)
        .await
        .map_err(|err| format!("the order did not become ready: {err}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("the order is {status:?}: {:?}", order.state()));
    }
    Ok(order)
}

/// A CSR for `names` (no subject) and its fresh P-256 key as PKCS#8 DER.
pub(crate) fn cert_csr(names: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("generate a certificate key");
    let mut params = rcgen::CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("CSR params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).expect("serialize the CSR");
    (csr.der().to_vec(), key.serialize_der())
}

/// The DER of every certificate in a PEM bundle, in order.
pub(crate) fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .expect("an END CERTIFICATE marker");
        let b64: String = body[..end].split_whitespace().collect();
        certs.push(STANDARD.decode(b64).expect("PEM base64"));
        rest = &body[end..];
    }
    certs
}

/// Writes one DER certificate to `path` as PEM.
pub(crate) fn write_pem(path: &Path, der: &[u8]) {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    fs::write(path, pem).expect("write a PEM file");
}

/// `openssl verify` of `leaf` against the CA's root, with `chain` as the
/// untrusted intermediates; and the SAN must hold every name.
pub(crate) fn verify_chain(ca: &DevCa, chain: &Path, leaf: &Path, names: &[&str]) {
    let verify = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(ca.pki("root.pem"))
            .arg("-untrusted")
            .arg(chain)
            .arg(leaf),
        OPENSSL_TIMEOUT,
    );
    assert!(
        verify.stdout.trim_end().ends_with(": OK"),
        "openssl verify: {}",
        verify.text()
    );
    let san = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(leaf),
        OPENSSL_TIMEOUT,
    );
    for name in names {
        assert!(
            san.stdout.contains(&format!("DNS:{name}")),
            "{name} missing from SAN: {}",
            san.stdout
        );
    }
}

/// The account, the order and the certificate of the first step.
struct Issued {
    account: Account,
    key_pkcs8: Vec<u8>,
    order_url: String,
    chain_pem: String,
}

async fn issue(ca: Arc<DevCa>, http01: Http01) -> Issued {
    let (account, key_pkcs8) = new_account(&ca, &["mailto:instant-acme@example.com"]).await;
    let mut order = ready_order(&account, &http01, &NAMES).await;
    let (csr, _cert_key) = cert_csr(&NAMES);
    order.finalize_csr(&csr).await.expect("finalize");
    // The RA waits up to its `issuance_wait` (5 s unless set) for the CA, which
    // issues in well under a second: no `processing`, no polling.
    let state = order.state();
    assert_eq!(
        state.status,
        OrderStatus::Valid,
        "finalize answered {state:?}"
    );
    assert!(
        state.certificate.is_some(),
        "a valid order without a certificate URL: {state:?}"
    );
    let policy = RetryPolicy::new().timeout(POLL_TIMEOUT);
    let chain_pem = order
        .poll_certificate(&policy)
        .await
        .expect("poll the certificate");
    let certs = pem_certs(&chain_pem);
    assert_eq!(certs.len(), 2, "leaf + intermediate: {chain_pem}");

    let dir = ca.client_dir("instant-acme");
    let chain = dir.join("chain.pem");
    let leaf = dir.join("leaf.pem");
    fs::write(&chain, &chain_pem).expect("write the chain");
    write_pem(&leaf, &certs[0]);
    tokio::task::block_in_place(|| verify_chain(&ca, &chain, &leaf, &NAMES));
    Issued {
        account,
        key_pkcs8,
        order_url: order.url().to_owned(),
        chain_pem,
    }
}

async fn update_contacts(acme: Acme, account: Account, key_pkcs8: Vec<u8>) {
    account
        .update_contacts(&["mailto:changed@example.com"])
        .await
        .expect("update the account's contacts");
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    let fetched = acme
        .signed(&key, Some(account.id()), account.id(), None)
        .await;
    fetched.expect_status(StatusCode::OK, "POST-as-GET account");
    assert_eq!(
        fetched.json["contact"],
        json!(["mailto:changed@example.com"]),
        "{}",
        fetched.text
    );
}

/// The account object's `orders` list (RFC 8555 §7.1.2.1), every page of it,
/// holds the order.
async fn orders_list(acme: Acme, account: Account, key_pkcs8: Vec<u8>, order_url: String) {
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    let fetched = acme
        .signed(&key, Some(account.id()), account.id(), None)
        .await;
    fetched.expect_status(StatusCode::OK, "POST-as-GET account");
    let mut next = Some(
        fetched.json["orders"]
            .as_str()
            .unwrap_or_else(|| panic!("the account has no orders URL: {}", fetched.text))
            .to_owned(),
    );
    let mut seen = HashSet::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        assert!(pages <= MAX_PAGES, "more than {MAX_PAGES} pages of orders");
        let page = acme.signed(&key, Some(account.id()), &url, None).await;
        page.expect_status(StatusCode::OK, "POST-as-GET orders list");
        let orders = page.json["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("no orders array: {}", page.text));
        for order in orders {
            let order = order.as_str().expect("order URLs are strings").to_owned();
            assert!(seen.insert(order.clone()), "{order} listed twice");
        }
        next = page.link_next();
    }
    assert!(
        seen.contains(&order_url),
        "the orders list misses {order_url}: {seen:?}"
    );

    // Another account may not read this list.
    let stranger = AccountKey::es256();
    let stranger_account = acme.new_account(&stranger).await;
    let orders_url = fetched.json["orders"].as_str().unwrap_or_default();
    let refused = acme
        .signed(&stranger, Some(&stranger_account), orders_url, None)
        .await;
    assert!(
        refused.status.is_client_error(),
        "another account read the orders list: {} {}",
        refused.status,
        refused.text
    );
}

/// RFC 8555 §7.3.5 through instant-acme: afterwards only the new key works.
/// Returns the rolled account and its new key.
async fn key_rollover(acme: Acme, account: Account, old_pkcs8: Vec<u8>) -> (Account, Vec<u8>) {
    let mut rolled = account.clone();
    let credentials = rolled.update_key().await.expect("key rollover");
    let new_pkcs8 = credentials.private_key().secret_pkcs8_der().to_vec();
    assert_eq!(rolled.id(), account.id(), "the account URL stays");
    let old = AccountKey::es256_from_pkcs8(&old_pkcs8);
    let new = AccountKey::es256_from_pkcs8(&new_pkcs8);

    let with_old = acme
        .signed(&old, Some(account.id()), account.id(), None)
        .await;
    assert!(
        with_old.status.is_client_error(),
        "the old key still works after rollover: {} {}",
        with_old.status,
        with_old.text
    );
    let with_new = acme
        .signed(&new, Some(account.id()), account.id(), None)
        .await;
    with_new.expect_status(StatusCode::OK, "the new key after rollover");
    assert_eq!(with_new.json["status"], "valid", "{}", with_new.text);

    let lookup = json!({ "onlyReturnExisting": true });
    acme.signed(&old, None, &acme.url("newAccount"), Some(&lookup))
        .await
        .expect_problem(
            StatusCode::BAD_REQUEST,
            ACCOUNT_DOES_NOT_EXIST,
            "account lookup by the old key",
        );
    let found = acme
        .signed(&new, None, &acme.url("newAccount"), Some(&lookup))
        .await;
    found.expect_status(StatusCode::OK, "account lookup by the new key");
    assert_eq!(found.location(), account.id());

    let mut order = rolled
        .new_order(&NewOrder::new(&[Identifier::Dns(
            "rolled.example.com".to_owned(),
        )]))
        .await
        .expect("a new order signed with the new key");
    assert_eq!(order.state().status, OrderStatus::Pending);
    (rolled, new_pkcs8)
}

async fn revoke(ca: Arc<DevCa>, account: Account, chain_pem: String) {
    let certs = pem_certs(&chain_pem);
    let leaf = CertificateDer::from(certs[0].clone());
    account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: Some(RevocationReason::Superseded),
        })
        .await
        .expect("revoke the certificate");

    let dir = ca.client_dir("instant-acme-revoke");
    let leaf_pem = dir.join("leaf.pem");
    let issuer = dir.join("issuer.pem");
    write_pem(&leaf_pem, &certs[0]);
    write_pem(&issuer, &certs[1]);
    tokio::task::block_in_place(|| ocsp_status_becomes(&ca, &issuer, &leaf_pem, "revoked"));

    let again = account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: None,
        })
        .await;
    match again {
        Err(instant_acme::Error::Api(problem)) => assert_eq!(
            problem.r#type.as_deref(),
            Some("urn:ietf:params:acme:error:alreadyRevoked"),
            "{problem:?}"
        ),
        other => panic!("a second revocation answered {other:?}"),
    }
}

/// RFC 8555 §7.3.6: after deactivation the account's key is refused.
async fn deactivate(acme: Acme, account: Account, key_pkcs8: Vec<u8>) {
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    // instant-acme ignores the server's answer here, so the checks below matter.
    account
        .clone()
        .deactivate()
        .await
        .expect("deactivate the account");
    let refused = account
        .new_order(&NewOrder::new(&[Identifier::Dns(
            "after-deactivation.example.com".to_owned(),
        )]))
        .await;
    match refused {
        Err(instant_acme::Error::Api(problem)) => {
            assert_eq!(problem.r#type.as_deref(), Some(UNAUTHORIZED), "{problem:?}")
        }
        Err(other) => panic!("new-order by a deactivated account failed oddly: {other}"),
        Ok(order) => panic!("a deactivated account created order {}", order.url()),
    }
    acme.signed(&key, Some(account.id()), account.id(), None)
        .await
        // RFC 8555 §7.3.6: 401, not the 403 of other unauthorized requests.
        .expect_problem(
            StatusCode::UNAUTHORIZED,
            UNAUTHORIZED,
            "POST-as-GET of a deactivated account",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_issues_and_manages_the_account() {
    let ca = Arc::new(DevCa::start("instant-acme"));
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let mut steps = Steps::default();

    let Some(issued) = steps
        .run_async("issue a two-name certificate", issue(ca.clone(), http01))
        .await
    else {
        for step in [
            "update contacts",
            "orders list",
            "key rollover",
            "revoke",
            "deactivate",
        ] {
            steps.skipped(step, "issuance");
        }
        steps.finish();
        return;
    };
    let mut account = issued.account.clone();
    let mut key = issued.key_pkcs8.clone();

    steps
        .run_async(
            "update contacts",
            update_contacts(acme.clone(), account.clone(), key.clone()),
        )
        .await;
    steps
        .run_async(
            "orders list",
            orders_list(
                acme.clone(),
                account.clone(),
                key.clone(),
                issued.order_url.clone(),
            ),
        )
        .await;
    if let Some((rolled, new_key)) = steps
        .run_async(
            "key rollover",
            key_rollover(acme.clone(), account.clone(), key.clone()),
        )
        .await
    {
        account = rolled;
        key = new_key;
    }
    steps
        .run_async(
            "revoke",
            revoke(ca.clone(), account.clone(), issued.chain_pem.clone()),
        )
        .await;
    steps
        .run_async("deactivate", deactivate(acme.clone(), account, key))
        .await;
    steps.finish();
}
