//! The client against a fake ACME server over plain HTTP: nonce reuse, the
//! `badNonce` retry, JWS headers, polling and errors.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::State;
use axum::http::HeaderMap as AxumHeaders;
use axum::http::StatusCode as AxumStatus;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::routing::head;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::*;
use crate::Identifier;
use crate::OrderStatus;

/// What the fake server hands out and has seen.
#[derive(Default)]
struct Fake {
    base: String,
    next_nonce: u64,
    /// Nonces handed out and not yet used.
    live: HashSet<String>,
    /// `HEAD /new-nonce` requests.
    new_nonce_calls: usize,
    /// Every JWS POST: path, protected header.
    posts: Vec<(String, Value)>,
    /// How many POSTs to refuse with badNonce although their nonce is good.
    refuse_nonces: usize,
    /// Statuses the order answers with, one per poll (the last one repeats).
    order_statuses: Vec<&'static str>,
    /// Statuses the authorization answers with, one per poll.
    authz_statuses: Vec<&'static str>,
}

type Shared = Arc<Mutex<Fake>>;

impl Fake {
    fn nonce(&mut self) -> String {
        self.next_nonce += 1;
        let nonce = format!("nonce-{}", self.next_nonce);
        self.live.insert(nonce.clone());
        nonce
    }
}

fn reply(fake: &mut Fake, status: AxumStatus, content_type: &str, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("replay-nonce", fake.nonce())
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Checks the JWS of a POST to `uri`: its nonce must be live and its `url` the
/// request's; records it. `Err` is the badNonce answer.
fn accept(fake: &mut Fake, uri: &Uri, body: &str) -> Result<Value, Box<Response>> {
    let jws: Value = serde_json::from_str(body).unwrap();
    let protected = URL_SAFE_NO_PAD
        .decode(jws["protected"].as_str().unwrap())
        .unwrap();
    let header: Value = serde_json::from_slice(&protected).unwrap();
    assert_eq!(header["url"], format!("{}{}", fake.base, uri.path()));
    assert_eq!(header["alg"], "ES256");
    fake.posts.push((uri.path().to_owned(), header.clone()));
    let nonce = header["nonce"].as_str().unwrap().to_owned();
    let good = fake.live.remove(&nonce);
    if !good || fake.refuse_nonces > 0 {
        fake.refuse_nonces = fake.refuse_nonces.saturating_sub(1);
        return Err(Box::new(reply(
            fake,
            AxumStatus::BAD_REQUEST,
            "application/problem+json",
            json!({ "type": BAD_NONCE, "detail": "try again", "status": 400 }),
        )));
    }
    let payload = jws["payload"].as_str().unwrap();
    Ok(if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    })
}

async fn directory(State(fake): State<Shared>) -> Response {
    let mut fake = fake.lock().unwrap();
    let base = fake.base.clone();
    let body = json!({
        "newNonce": format!("{base}/new-nonce"),
        "newAccount": format!("{base}/new-acct"),
        "newOrder": format!("{base}/new-order"),
        "revokeCert": format!("{base}/revoke-cert"),
    });
    reply(&mut fake, AxumStatus::OK, "application/json", body)
}

async fn new_nonce(State(fake): State<Shared>) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.new_nonce_calls += 1;
    let nonce = fake.nonce();
    Response::builder()
        .status(AxumStatus::OK)
        .header("replay-nonce", nonce)
        .body(Body::empty())
        .unwrap()
}

async fn new_account(State(fake): State<Shared>, uri: Uri, body: String) -> Response {
    let mut fake = fake.lock().unwrap();
    let payload = match accept(&mut fake, &uri, &body) {
        Ok(payload) => payload,
        Err(refused) => return *refused,
    };
    assert_eq!(payload["termsOfServiceAgreed"], true);
    let mut response = reply(
        &mut fake,
        AxumStatus::CREATED,
        "application/json",
        json!({ "status": "valid" }),
    );
    let location = format!("{}/acct/1", fake.base);
    response
        .headers_mut()
        .insert("location", location.parse().unwrap());
    response
}

fn order_json(base: &str, status: &str) -> Value {
    json!({
        "status": status,
        "identifiers": [{ "type": "dns", "value": "a.example" }],
        "authorizations": [format!("{base}/authz/1")],
        "finalize": format!("{base}/order/1/finalize"),
        "error": { "type": "urn:ietf:params:acme:error:badCSR" },
    })
}

async fn order(
    State(fake): State<Shared>,
    Path(_id): Path<String>,
    uri: Uri,
    body: String,
) -> Response {
    let mut fake = fake.lock().unwrap();
    if let Err(refused) = accept(&mut fake, &uri, &body) {
        return *refused;
    }
    let status = if fake.order_statuses.len() > 1 {
        fake.order_statuses.remove(0)
    } else {
        fake.order_statuses[0]
    };
    let body = order_json(&fake.base, status);
    let mut response = reply(&mut fake, AxumStatus::OK, "application/json", body);
    response
        .headers_mut()
        .insert("retry-after", "0".parse().unwrap());
    response
}

async fn authz(
    State(fake): State<Shared>,
    Path(_id): Path<String>,
    uri: Uri,
    body: String,
) -> Response {
    let mut fake = fake.lock().unwrap();
    if let Err(refused) = accept(&mut fake, &uri, &body) {
        return *refused;
    }
    let status = if fake.authz_statuses.len() > 1 {
        fake.authz_statuses.remove(0)
    } else {
        fake.authz_statuses[0]
    };
    let body = json!({
        "status": status,
        "identifier": { "type": "dns", "value": "a.example" },
        "challenges": [{
            "type": "http-01",
            "url": format!("{}/chall/1", fake.base),
            "status": if status == "invalid" { "invalid" } else { "pending" },
            "token": "tok",
            "error": { "type": "urn:ietf:params:acme:error:connection", "detail": "refused" },
        }],
    });
    reply(&mut fake, AxumStatus::OK, "application/json", body)
}

async fn not_json(_headers: AxumHeaders) -> Response {
    Response::builder()
        .status(AxumStatus::BAD_GATEWAY)
        .body(Body::from("<html>bad gateway</html>"))
        .unwrap()
}

/// Starts the fake server; returns its state and directory URL.
async fn start(fake: Fake) -> (Shared, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared = Arc::new(Mutex::new(Fake {
        base: base.clone(),
        ..fake
    }));
    let router = Router::new()
        .route("/directory", get(directory))
        .route("/new-nonce", head(new_nonce))
        .route("/new-acct", post(new_account))
        .route("/order/{id}", post(order))
        .route("/authz/{id}", post(authz))
        .route("/broken", post(not_json))
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (shared, format!("{base}/directory"))
}

fn fast_polling() -> ClientOptions {
    ClientOptions {
        poll: PollPolicy {
            default_interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    }
}

async fn account(fake: Fake) -> (Shared, Account) {
    let (shared, url) = start(fake).await;
    let client = Client::new(&url, fast_polling()).await.unwrap();
    let terms = NewAccount {
        terms_of_service_agreed: true,
        ..NewAccount::default()
    };
    let account = client
        .new_account(AccountKey::generate().unwrap(), &terms)
        .await
        .unwrap();
    (shared, account)
}

#[tokio::test]
async fn nonces_are_reused_and_a_bad_nonce_is_retried_once() {
    let (shared, account) = account(Fake {
        refuse_nonces: 1,
        order_statuses: vec!["valid"],
        ..Fake::default()
    })
    .await;
    assert!(account.url().ends_with("/acct/1"));
    for _ in 0..3 {
        account
            .order(&format!("{}/order/1", shared.lock().unwrap().base))
            .await
            .unwrap();
    }
    let fake = shared.lock().unwrap();
    // No newNonce at all: every nonce came from a response (the directory's, the
    // badNonce answer's, then each reply's).
    assert_eq!(fake.new_nonce_calls, 0);
    let paths: Vec<&str> = fake.posts.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        ["/new-acct", "/new-acct", "/order/1", "/order/1", "/order/1"]
    );
    // newAccount shows its key; the others name the account.
    for (path, header) in &fake.posts {
        if path == "/new-acct" {
            assert_eq!(header["jwk"], *account.key().jwk());
            assert!(header.get("kid").is_none());
        } else {
            assert_eq!(header["kid"], account.url());
            assert!(header.get("jwk").is_none());
        }
    }
    let nonces: HashSet<&str> = fake
        .posts
        .iter()
        .map(|(_, header)| header["nonce"].as_str().unwrap())
        .collect();
    assert_eq!(nonces.len(), 5, "no nonce was sent twice");
}

#[tokio::test]
async fn an_empty_pool_asks_new_nonce() {
    let (shared, url) = start(Fake {
        order_statuses: vec!["valid"],
        ..Fake::default()
    })
    .await;
    let client = Client::new(&url, fast_polling()).await.unwrap();
    // Drop the directory's nonce so the pool is empty.
    while client.nonces().pop().is_some() {}
    let base = shared.lock().unwrap().base.clone();
    let account = client.account(AccountKey::generate().unwrap(), format!("{base}/acct/9"));
    account.order(&format!("{base}/order/1")).await.unwrap();
    account.order(&format!("{base}/order/1")).await.unwrap();
    assert_eq!(shared.lock().unwrap().new_nonce_calls, 1);
}

#[tokio::test]
async fn a_second_bad_nonce_is_an_error() {
    let (shared, url) = start(Fake {
        refuse_nonces: 2,
        ..Fake::default()
    })
    .await;
    let client = Client::new(&url, fast_polling()).await.unwrap();
    let terms = NewAccount {
        terms_of_service_agreed: true,
        ..NewAccount::default()
    };
    let err = client
        .new_account(AccountKey::generate().unwrap(), &terms)
        .await
        .unwrap_err();
    assert_eq!(err.label(), BAD_NONCE);
    assert!(matches!(err, Error::Problem { status: 400, .. }), "{err}");
    assert_eq!(shared.lock().unwrap().posts.len(), 2);
}

#[tokio::test]
async fn polling_follows_an_order_to_valid() {
    let (shared, account) = account(Fake {
        order_statuses: vec!["processing", "processing", "valid"],
        ..Fake::default()
    })
    .await;
    let url = format!("{}/order/1", shared.lock().unwrap().base);
    let order = account.poll_order(&url, OrderStatus::Valid).await.unwrap();
    assert_eq!(order.status, OrderStatus::Valid);
    assert_eq!(order.url, url);
    assert_eq!(order.identifiers, [Identifier::dns("a.example")]);
    let polls = shared
        .lock()
        .unwrap()
        .posts
        .iter()
        .filter(|(path, _)| path == "/order/1")
        .count();
    assert_eq!(polls, 3);
}

#[tokio::test]
async fn polling_for_ready_stops_at_any_later_state() {
    let (shared, account) = account(Fake {
        order_statuses: vec!["pending", "processing"],
        ..Fake::default()
    })
    .await;
    let url = format!("{}/order/1", shared.lock().unwrap().base);
    let order = account.poll_order(&url, OrderStatus::Ready).await.unwrap();
    assert_eq!(order.status, OrderStatus::Processing);
}

#[tokio::test]
async fn an_invalid_order_fails_with_its_error() {
    let (shared, account) = account(Fake {
        order_statuses: vec!["invalid"],
        ..Fake::default()
    })
    .await;
    let url = format!("{}/order/1", shared.lock().unwrap().base);
    let err = account
        .poll_order(&url, OrderStatus::Valid)
        .await
        .unwrap_err();
    assert_eq!(
        err.label(),
        "order invalid: urn:ietf:params:acme:error:badCSR"
    );
}

#[tokio::test]
async fn an_invalid_authorization_fails_with_its_challenge_error() {
    let (shared, account) = account(Fake {
        authz_statuses: vec!["pending", "invalid"],
        ..Fake::default()
    })
    .await;
    let url = format!("{}/authz/1", shared.lock().unwrap().base);
    let err = account.poll_authorization(&url).await.unwrap_err();
    assert_eq!(
        err.label(),
        "authorization invalid: urn:ietf:params:acme:error:connection"
    );
    assert_eq!(err.problem().unwrap().detail.as_deref(), Some("refused"));
}

#[tokio::test]
async fn polling_gives_up_at_its_timeout() {
    let (shared, url) = start(Fake {
        authz_statuses: vec!["pending"],
        ..Fake::default()
    })
    .await;
    let options = ClientOptions {
        poll: PollPolicy {
            default_interval: Duration::from_millis(10),
            max_interval: Duration::from_millis(10),
            timeout: Duration::from_millis(100),
        },
        ..ClientOptions::default()
    };
    let client = Client::new(&url, options).await.unwrap();
    let account = client.account(AccountKey::generate().unwrap(), "acct".to_owned());
    let authz_url = format!("{}/authz/1", shared.lock().unwrap().base);
    let started = Instant::now();
    let err = account.poll_authorization(&authz_url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { object: "authorization", status, .. } if status == "pending"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    let polls = shared.lock().unwrap().posts.len();
    assert!(polls >= 5, "{polls} polls in 100 ms at 10 ms intervals");
}

#[tokio::test]
async fn an_error_without_a_problem_document_keeps_its_status() {
    let (shared, account) = account(Fake::default()).await;
    let url = format!("{}/broken", shared.lock().unwrap().base);
    let err = account.order(&url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Status { status: 502, body, .. } if body.contains("bad gateway")),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Client::new(
        &format!("http://127.0.0.1:{port}/directory"),
        ClientOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.label(), "transport: connect");
    // The whole chain of causes, the URL once.
    let message = err.to_string();
    assert!(message.contains("refused"), "{message}");
    assert_eq!(
        message.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "{message}"
    );
}

#[tokio::test]
async fn a_bundle_without_certificates_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = ClientOptions {
        roots: Roots::Pem(b"no certificates here".to_vec()),
        ..ClientOptions::default()
    };
    let err = Client::new("https://127.0.0.1:1/directory", options)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn retry_after_is_capped_and_defaulted() {
    let policy = PollPolicy {
        default_interval: Duration::from_millis(250),
        max_interval: Duration::from_secs(2),
        timeout: Duration::from_secs(60),
    };
    assert_eq!(policy.delay(None), Duration::from_millis(250));
    assert_eq!(
        policy.delay(Some(Duration::from_secs(1))),
        Duration::from_secs(1)
    );
    assert_eq!(
        policy.delay(Some(Duration::from_secs(3600))),
        Duration::from_secs(2)
    );
    assert_eq!(policy.delay(Some(Duration::ZERO)), Duration::ZERO);
}
