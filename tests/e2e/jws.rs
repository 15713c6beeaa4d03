//! Hand-made JWS requests against the running WFE (RFC 8555 §6.2–§6.5): each
//! broken request must get the right problem document, and every response a
//! fresh nonce.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
use ring::signature::EcdsaKeyPair;
use ring::signature::KeyPair;
use serde_json::Value;
use serde_json::json;

use crate::harness::DevCa;

const MALFORMED: &str = "urn:ietf:params:acme:error:malformed";
const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
const UNAUTHORIZED: &str = "urn:ietf:params:acme:error:unauthorized";

/// A client for the ACME API and one ES256 account key.
struct Acme {
    http: reqwest::Client,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    new_nonce: String,
    new_account: String,
}

impl Acme {
    async fn new(ca: &DevCa) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(&ca.api_ca).expect("read api-ca.pem");
        let roots = reqwest::Certificate::from_pem_bundle(&pem).expect("parse api-ca.pem");
        let http = reqwest::Client::builder()
            .tls_certs_only(roots)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build the http client");
        let directory: Value = http
            .get(&ca.directory_url)
            .send()
            .await
            .expect("GET directory")
            .error_for_status()
            .expect("directory status")
            .json()
            .await
            .expect("directory JSON");
        let url = |name: &str| {
            directory[name]
                .as_str()
                .unwrap_or_else(|| panic!("directory has no {name}: {directory}"))
                .to_owned()
        };
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("load the P-256 key");
        Self {
            new_nonce: url("newNonce"),
            new_account: url("newAccount"),
            http,
            key,
            rng,
        }
    }

    /// A fresh nonce from `HEAD newNonce`.
    async fn nonce(&self) -> String {
        let response = self
            .http
            .head(&self.new_nonce)
            .send()
            .await
            .expect("HEAD newNonce");
        assert!(
            response.status().is_success(),
            "HEAD newNonce: {}",
            response.status()
        );
        replay_nonce(&response)
    }

    /// The account key as a JWK (RFC 7518 §6.2).
    fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        })
    }

    /// The protected header of a new-account request.
    fn header(&self, nonce: Option<&str>, url: &str) -> Value {
        let mut header = json!({ "alg": "ES256", "jwk": self.jwk(), "url": url });
        if let Some(nonce) = nonce {
            header["nonce"] = json!(nonce);
        }
        header
    }

    fn sign(&self, input: &str) -> String {
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .expect("sign with ES256");
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    }

    /// A flattened JWS of `payload` under `header`.
    fn jws(&self, header: &Value, payload: &Value) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        let signature = self.sign(&format!("{protected}.{payload}"));
        json!({ "protected": protected, "payload": payload, "signature": signature })
    }

    async fn post(&self, url: &str, body: &Value) -> Response {
        self.http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }
}

fn new_account_payload() -> Value {
    json!({ "termsOfServiceAgreed": true })
}

/// The Replay-Nonce every response must carry (RFC 8555 §6.5).
fn replay_nonce(response: &Response) -> String {
    let nonce = response
        .headers()
        .get("replay-nonce")
        .unwrap_or_else(|| {
            panic!(
                "no Replay-Nonce on {} {}",
                response.status(),
                response.url()
            )
        })
        .to_str()
        .expect("Replay-Nonce is ASCII")
        .to_owned();
    assert!(!nonce.is_empty(), "empty Replay-Nonce");
    nonce
}

/// Checks that `response` is a problem document of `kind` with `status`.
async fn expect_problem(response: Response, status: StatusCode, kind: &str) {
    replay_nonce(&response);
    let got_status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("problem body");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type:?} for {body}"
    );
    let problem: Value = serde_json::from_str(&body).expect("problem JSON");
    assert_eq!(problem["type"], kind, "{body}");
    assert_eq!(got_status, status, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_jws_requests_get_problem_documents() {
    let ca = DevCa::start("jws");
    let acme = Acme::new(&ca).await;
    let url = acme.new_account.clone();
    let payload = new_account_payload();

    // Bad base64 in `protected`.
    let mut body = acme.jws(&acme.header(Some(&acme.nonce().await), &url), &payload);
    body["protected"] = json!("!!not*base64url!!");
    expect_problem(
        acme.post(&url, &body).await,
        StatusCode::BAD_REQUEST,
        MALFORMED,
    )
    .await;

    // A signature over a different payload.
    let mut body = acme.jws(&acme.header(Some(&acme.nonce().await), &url), &payload);
    let other = acme.jws(
        &acme.header(Some(&acme.nonce().await), &url),
        &json!({ "termsOfServiceAgreed": false }),
    );
    body["signature"] = other["signature"].clone();
    expect_problem(
        acme.post(&url, &body).await,
        StatusCode::BAD_REQUEST,
        MALFORMED,
    )
    .await;

    // No nonce at all.
    let body = acme.jws(&acme.header(None, &url), &payload);
    expect_problem(
        acme.post(&url, &body).await,
        StatusCode::BAD_REQUEST,
        BAD_NONCE,
    )
    .await;

    // A `url` that is not the one posted to.
    let wrong_url = url.replace("new-account", "new-order");
    assert_ne!(wrong_url, url);
    let body = acme.jws(
        &acme.header(Some(&acme.nonce().await), &wrong_url),
        &payload,
    );
    expect_problem(
        acme.post(&url, &body).await,
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
    )
    .await;

    // A nonce is good exactly once.
    let nonce = acme.nonce().await;
    let body = acme.jws(&acme.header(Some(&nonce), &url), &payload);
    let first = acme.post(&url, &body).await;
    replay_nonce(&first);
    let status = first.status();
    let location = first.headers().get("location").cloned();
    let text = first.text().await.unwrap_or_default();
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "new-account with a fresh nonce: {status} {text}"
    );
    assert!(location.is_some(), "new-account has no Location: {text}");
    let account: Value = serde_json::from_str(&text).expect("account JSON");
    assert_eq!(account["status"], "valid", "{text}");

    let body = acme.jws(&acme.header(Some(&nonce), &url), &payload);
    expect_problem(
        acme.post(&url, &body).await,
        StatusCode::BAD_REQUEST,
        BAD_NONCE,
    )
    .await;

    // The same key with a fresh nonce finds the existing account.
    let body = acme.jws(&acme.header(Some(&acme.nonce().await), &url), &payload);
    let again = acme.post(&url, &body).await;
    replay_nonce(&again);
    assert_eq!(again.status(), StatusCode::OK, "existing account lookup");
    assert_eq!(again.headers().get("location").cloned(), location);
}
