//! Hand-made JWS requests against the running WFE (RFC 8555 §6.2–§6.5, §7.3.5,
//! §7.5.2, §7.6): each broken request must get the right problem document and
//! every response a fresh nonce; EdDSA account keys, key change to a key that is
//! taken, authorization deactivation, asynchronous finalize and revocation
//! signed by the certificate's own key.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use ring::rand::SystemRandom;
use ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
use ring::signature::EcdsaKeyPair;
use ring::signature::Ed25519KeyPair;
use ring::signature::KeyPair;
use serde_json::Value;
use serde_json::json;

use crate::certbot::ocsp_status_becomes;
use crate::harness::DevCa;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::new_account;
use crate::instant_acme::pem_certs;
use crate::instant_acme::ready_order;
use crate::instant_acme::write_pem;
use crate::steps::Steps;

pub(crate) const MALFORMED: &str = "urn:ietf:params:acme:error:malformed";
pub(crate) const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
pub(crate) const UNAUTHORIZED: &str = "urn:ietf:params:acme:error:unauthorized";
pub(crate) const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// How long a raw client waits for an order to leave `processing`.
const PROCESSING_TIMEOUT: Duration = Duration::from_secs(60);

/// An account (or certificate) key that signs JWS: ES256 or EdDSA (RFC 8037).
pub(crate) enum AccountKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl AccountKey {
    /// A fresh P-256 key.
    pub(crate) fn es256() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("generate a P-256 key");
        Self::es256_from_pkcs8(pkcs8.as_ref())
    }

    /// A P-256 key from its PKCS#8 DER (instant-acme's and rcgen's format).
    pub(crate) fn es256_from_pkcs8(pkcs8: &[u8]) -> Self {
        Self::Es256(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                &SystemRandom::new(),
            )
            .expect("load a P-256 PKCS#8 key"),
        )
    }

    /// A fresh Ed25519 key.
    pub(crate) fn ed25519() -> Self {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate an Ed25519 key");
        Self::EdDsa(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("load the Ed25519 key"))
    }

    /// The JWS `alg` of this key.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    /// The public key as a JWK (RFC 7518 §6.2, RFC 8037 §2).
    pub(crate) fn jwk(&self) -> Value {
        match self {
            Self::Es256(key) => {
                let point = key.public_key().as_ref();
                assert_eq!(point.len(), 65, "an uncompressed P-256 point");
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..]),
                })
            }
            Self::EdDsa(key) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
            }),
        }
    }

    /// The signature of `input`, base64url.
    pub(crate) fn sign(&self, input: &str) -> String {
        let signature = match self {
            Self::Es256(key) => key
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("sign with ES256")
                .as_ref()
                .to_vec(),
            Self::EdDsa(key) => key.sign(input.as_bytes()).as_ref().to_vec(),
        };
        URL_SAFE_NO_PAD.encode(signature)
    }

    /// A protected header naming the key by `jwk`, or by `kid` when given.
    pub(crate) fn header(&self, kid: Option<&str>, nonce: Option<&str>, url: &str) -> Value {
        let mut header = json!({ "alg": self.alg(), "url": url });
        match kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.jwk(),
        }
        if let Some(nonce) = nonce {
            header["nonce"] = json!(nonce);
        }
        header
    }

    /// A flattened JWS of `payload` (`None`: the empty payload of POST-as-GET).
    pub(crate) fn jws(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = payload.map_or_else(String::new, |p| URL_SAFE_NO_PAD.encode(p.to_string()));
        let signature = self.sign(&format!("{protected}.{payload}"));
        json!({ "protected": protected, "payload": payload, "signature": signature })
    }
}

/// A response read in full.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    /// The body as JSON, `Null` if it is not JSON.
    pub(crate) json: Value,
}

impl Answer {
    /// A header's value, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// The `Location` header, which must be there.
    pub(crate) fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location on {}: {}", self.status, self.text))
    }

    /// Panics unless the answer has `status`.
    pub(crate) fn expect_status(&self, status: StatusCode, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        self
    }

    /// Panics unless the answer is a problem document of `kind` with `status`.
    pub(crate) fn expect_problem(&self, status: StatusCode, kind: &str, what: &str) {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{what}: content type {content_type:?} for {} {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.json["type"], kind,
            "{what}: {} {}",
            self.status, self.text
        );
        assert_eq!(self.status, status, "{what}: {}", self.text);
    }

    /// The `rel="next"` target of a `Link` header, if any.
    pub(crate) fn link_next(&self) -> Option<String> {
        self.headers.get_all("link").iter().find_map(|value| {
            let value = value.to_str().ok()?;
            value.split(',').find_map(|link| {
                let (target, params) = link.split_once(';')?;
                let is_next = params
                    .split(';')
                    .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
                is_next.then(|| {
                    target
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned()
                })
            })
        })
    }
}

/// Reads `response` in full and checks it carries a fresh nonce (RFC 8555 §6.5).
pub(crate) async fn answer(response: Response) -> Answer {
    replay_nonce(&response);
    read(response).await
}

/// Reads the answer to a plain GET of the directory or renewal information in
/// full: a success carries no nonce (a nonce costs the WFE a call to the nonce
/// service, and RFC 8555 asks for one on POST answers), an error does.
pub(crate) async fn answer_get(response: Response) -> Answer {
    if response.status().is_success() {
        assert!(
            response.headers().get("replay-nonce").is_none(),
            "a Replay-Nonce on GET {}",
            response.url()
        );
    } else {
        replay_nonce(&response);
    }
    read(response).await
}

async fn read(response: Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the response body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// A client for the ACME API, trusting `DIR/pki/api-ca.pem`.
#[derive(Clone)]
pub(crate) struct Acme {
    http: reqwest::Client,
    directory: Arc<Value>,
}

impl Acme {
    pub(crate) async fn new(ca: &DevCa) -> Self {
        Self::with_pooling(ca, true).await
    }

    /// A client that opens a new connection for every request (no idle
    /// connections are kept), so a load balancer sees each request on its own.
    pub(crate) async fn without_connection_reuse(ca: &DevCa) -> Self {
        Self::with_pooling(ca, false).await
    }

    async fn with_pooling(ca: &DevCa, pooling: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(&ca.api_ca).expect("read api-ca.pem");
        let roots = reqwest::Certificate::from_pem_bundle(&pem).expect("parse api-ca.pem");
        let mut builder = reqwest::Client::builder()
            .tls_certs_only(roots)
            .timeout(Duration::from_secs(30));
        if !pooling {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().expect("build the http client");
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
        Self {
            http,
            directory: Arc::new(directory),
        }
    }

    /// The HTTP client, for requests that are not ACME JWS POSTs.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The directory object as fetched.
    pub(crate) fn directory(&self) -> &Value {
        &self.directory
    }

    /// The directory entry `name`, which must exist.
    pub(crate) fn url(&self, name: &str) -> String {
        self.directory[name]
            .as_str()
            .unwrap_or_else(|| panic!("the directory has no {name}: {}", self.directory))
            .to_owned()
    }

    /// A fresh nonce from `HEAD newNonce`.
    pub(crate) async fn nonce(&self) -> String {
        let response = self
            .http
            .head(self.url("newNonce"))
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

    /// POSTs a JWS as `application/jose+json`.
    pub(crate) async fn post(&self, url: &str, body: &Value) -> Response {
        self.http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    /// Signs `payload` (`None`: POST-as-GET) for `url` with `key`, named by `kid`
    /// or shown as `jwk`, with a fresh nonce, and POSTs it.
    pub(crate) async fn signed(
        &self,
        key: &AccountKey,
        kid: Option<&str>,
        url: &str,
        payload: Option<&Value>,
    ) -> Answer {
        let header = key.header(kid, Some(&self.nonce().await), url);
        answer(self.post(url, &key.jws(&header, payload)).await).await
    }

    /// Creates an account for `key`; returns its URL.
    pub(crate) async fn new_account(&self, key: &AccountKey) -> String {
        let created = self
            .signed(
                key,
                None,
                &self.url("newAccount"),
                Some(&new_account_payload()),
            )
            .await;
        created.expect_status(StatusCode::CREATED, "new-account");
        assert_eq!(created.json["status"], "valid", "{}", created.text);
        created.location()
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

fn identifiers(names: &[&str]) -> Value {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|name| json!({ "type": "dns", "value": name }))
        .collect();
    json!({ "identifiers": identifiers })
}

async fn broken_jws_requests_get_problem_documents(acme: Acme) {
    let key = AccountKey::es256();
    let url = acme.url("newAccount");
    let payload = new_account_payload();
    let header = |nonce: &str, url: &str| key.header(None, Some(nonce), url);

    // Bad base64 in `protected`.
    let mut body = key.jws(&header(&acme.nonce().await, &url), Some(&payload));
    body["protected"] = json!("!!not*base64url!!");
    answer(acme.post(&url, &body).await).await.expect_problem(
        StatusCode::BAD_REQUEST,
        MALFORMED,
        "bad base64 in protected",
    );

    // A signature over a different payload.
    let mut body = key.jws(&header(&acme.nonce().await, &url), Some(&payload));
    let other = key.jws(
        &header(&acme.nonce().await, &url),
        Some(&json!({ "termsOfServiceAgreed": false })),
    );
    body["signature"] = other["signature"].clone();
    answer(acme.post(&url, &body).await).await.expect_problem(
        StatusCode::BAD_REQUEST,
        MALFORMED,
        "a signature over another payload",
    );

    // No nonce at all.
    let body = key.jws(&key.header(None, None, &url), Some(&payload));
    answer(acme.post(&url, &body).await).await.expect_problem(
        StatusCode::BAD_REQUEST,
        BAD_NONCE,
        "no nonce",
    );

    // A `url` that is not the one posted to.
    let wrong_url = url.replace("new-account", "new-order");
    assert_ne!(wrong_url, url);
    let body = key.jws(&header(&acme.nonce().await, &wrong_url), Some(&payload));
    answer(acme.post(&url, &body).await).await.expect_problem(
        StatusCode::FORBIDDEN,
        UNAUTHORIZED,
        "a url header that is not the request's",
    );

    // A nonce is good exactly once.
    let nonce = acme.nonce().await;
    let body = key.jws(&header(&nonce, &url), Some(&payload));
    let first = answer(acme.post(&url, &body).await).await;
    assert!(
        first.status == StatusCode::CREATED || first.status == StatusCode::OK,
        "new-account with a fresh nonce: {} {}",
        first.status,
        first.text
    );
    let location = first.location();
    assert_eq!(first.json["status"], "valid", "{}", first.text);

    let body = key.jws(&header(&nonce, &url), Some(&payload));
    answer(acme.post(&url, &body).await).await.expect_problem(
        StatusCode::BAD_REQUEST,
        BAD_NONCE,
        "a nonce used twice",
    );

    // The same key with a fresh nonce finds the existing account.
    let again = acme.signed(&key, None, &url, Some(&payload)).await;
    again.expect_status(StatusCode::OK, "existing account lookup");
    assert_eq!(again.location(), location);
}

/// An Ed25519 account key (RFC 8037) creates an account and signs `kid` requests.
async fn eddsa_account(acme: Acme) {
    let key = AccountKey::ed25519();
    let account = acme.new_account(&key).await;

    let fetched = acme.signed(&key, Some(&account), &account, None).await;
    fetched.expect_status(StatusCode::OK, "POST-as-GET of an EdDSA account");
    assert_eq!(fetched.json["status"], "valid", "{}", fetched.text);

    let order = acme
        .signed(
            &key,
            Some(&account),
            &acme.url("newOrder"),
            Some(&identifiers(&["eddsa.example.com"])),
        )
        .await;
    order.expect_status(StatusCode::CREATED, "new-order signed with EdDSA");
    assert_eq!(order.json["status"], "pending", "{}", order.text);

    let again = acme
        .signed(
            &key,
            None,
            &acme.url("newAccount"),
            Some(&new_account_payload()),
        )
        .await;
    again.expect_status(StatusCode::OK, "existing EdDSA account lookup");
    assert_eq!(again.location(), account);
}

/// RFC 8555 §7.3.5: a key change to a key that another account holds is a 409
/// with that account's URL, and the account keeps its old key.
async fn key_change_to_a_taken_key(acme: Acme) {
    let old = AccountKey::es256();
    let taken = AccountKey::es256();
    let account = acme.new_account(&old).await;
    let holder = acme.new_account(&taken).await;
    assert_ne!(account, holder);

    let url = acme.url("keyChange");
    let inner = taken.jws(
        &taken.header(None, None, &url),
        Some(&json!({ "account": account, "oldKey": old.jwk() })),
    );
    let refused = acme.signed(&old, Some(&account), &url, Some(&inner)).await;
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "key change to a taken key: {}",
        refused.text
    );
    assert_eq!(
        refused.header("location").as_deref(),
        Some(holder.as_str()),
        "the 409 must name the account holding the key: {}",
        refused.text
    );

    acme.signed(&old, Some(&account), &account, None)
        .await
        .expect_status(StatusCode::OK, "the old key after a refused key change");
}

/// RFC 8555 §7.5.2: the client deactivates a pending authorization.
async fn authz_deactivation(acme: Acme) {
    let key = AccountKey::es256();
    let account = acme.new_account(&key).await;
    let order = acme
        .signed(
            &key,
            Some(&account),
            &acme.url("newOrder"),
            Some(&identifiers(&["deactivate.example.com"])),
        )
        .await;
    order.expect_status(StatusCode::CREATED, "new-order");
    let authz = order.json["authorizations"][0]
        .as_str()
        .unwrap_or_else(|| panic!("an order without authorizations: {}", order.text))
        .to_owned();

    let before = acme.signed(&key, Some(&account), &authz, None).await;
    before.expect_status(StatusCode::OK, "POST-as-GET authz");
    assert_eq!(before.json["status"], "pending", "{}", before.text);

    let stranger = AccountKey::es256();
    let stranger_account = acme.new_account(&stranger).await;
    let deactivate = json!({ "status": "deactivated" });
    let refused = acme
        .signed(
            &stranger,
            Some(&stranger_account),
            &authz,
            Some(&deactivate),
        )
        .await;
    assert!(
        refused.status.is_client_error(),
        "another account deactivated the authorization: {} {}",
        refused.status,
        refused.text
    );

    let deactivated = acme
        .signed(&key, Some(&account), &authz, Some(&deactivate))
        .await;
    deactivated.expect_status(StatusCode::OK, "authz deactivation");
    assert_eq!(
        deactivated.json["status"], "deactivated",
        "{}",
        deactivated.text
    );

    let after = acme.signed(&key, Some(&account), &authz, None).await;
    after.expect_status(StatusCode::OK, "POST-as-GET authz after deactivation");
    assert_eq!(after.json["status"], "deactivated", "{}", after.text);

    let order_after = acme
        .signed(&key, Some(&account), &order.location(), None)
        .await;
    order_after.expect_status(StatusCode::OK, "POST-as-GET order");
    assert_ne!(
        order_after.json["status"], "ready",
        "an order with a deactivated authorization became ready: {}",
        order_after.text
    );
}

/// A certificate issued by a raw finalize, and what went wrong on the way that
/// did not stop the issuance.
struct RawIssued {
    chain_pem: String,
    cert_key_pkcs8: Vec<u8>,
    retry_after_problems: Vec<String>,
}

/// Finalizes a ready order by hand: the answer is `processing`, since the lab's
/// RA answers at once (`--issuance-wait 0s`), and every `processing` answer
/// carries `Retry-After` (RFC 8555 §7.4) until the order is `valid`.
async fn raw_finalize(acme: Acme, ca: Arc<DevCa>, http01: Http01) -> RawIssued {
    let names = ["raw-finalize.example.com"];
    let (account, key_pkcs8) = new_account(&ca, &[]).await;
    let order = ready_order(&account, &http01, &names).await;
    let (order_url, state) = order.into_parts();
    let key = AccountKey::es256_from_pkcs8(&key_pkcs8);
    let kid = account.id().to_owned();
    let (csr, cert_key_pkcs8) = cert_csr(&names);

    let finalized = acme
        .signed(
            &key,
            Some(&kid),
            &state.finalize,
            Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(&csr) })),
        )
        .await;
    finalized.expect_status(StatusCode::OK, "finalize");
    let first_status = finalized.json["status"].clone();
    // The RA reads the order back while the CA is still at work (signing, and
    // several SA writes of its own), so this is the polling path.
    assert_eq!(
        first_status, "processing",
        "finalize answered {first_status}: {}",
        finalized.text
    );

    let mut retry_after_problems = Vec::new();
    let deadline = Instant::now() + PROCESSING_TIMEOUT;
    let mut last = finalized;
    while last.json["status"] == "processing" {
        let wait = match last.header("retry-after") {
            Some(value) => match value.trim().parse::<u64>() {
                Ok(seconds) => Duration::from_secs(seconds),
                // An HTTP-date is allowed too (RFC 9110 §10.2.3).
                Err(_) if value.contains("GMT") => Duration::from_secs(1),
                Err(_) => {
                    retry_after_problems.push(format!("unparsable Retry-After {value:?}"));
                    Duration::from_secs(1)
                }
            },
            None => {
                retry_after_problems.push(format!(
                    "a processing order without Retry-After: {}",
                    last.text
                ));
                Duration::from_secs(1)
            }
        };
        assert!(
            Instant::now() < deadline,
            "the order is still processing after {PROCESSING_TIMEOUT:?}: {}",
            last.text
        );
        tokio::time::sleep(wait.clamp(Duration::from_millis(100), Duration::from_secs(5))).await;
        last = acme.signed(&key, Some(&kid), &order_url, None).await;
        last.expect_status(StatusCode::OK, "POST-as-GET order while processing");
    }
    assert_eq!(last.json["status"], "valid", "{}", last.text);
    let certificate = last.json["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("a valid order without a certificate: {}", last.text))
        .to_owned();
    let download = acme.signed(&key, Some(&kid), &certificate, None).await;
    download.expect_status(StatusCode::OK, "certificate download");
    assert_eq!(
        pem_certs(&download.text).len(),
        2,
        "leaf + intermediate: {}",
        download.text
    );
    RawIssued {
        chain_pem: download.text,
        cert_key_pkcs8,
        retry_after_problems,
    }
}

/// RFC 8555 §7.6: a revocation signed by the certificate's own key (`jwk`).
async fn revoke_with_certificate_key(acme: Acme, ca: Arc<DevCa>, issued: RawIssued) {
    let certs = pem_certs(&issued.chain_pem);
    let url = acme.url("revokeCert");
    let payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(&certs[0]), "reason": 1 });

    let stranger = AccountKey::es256();
    acme.signed(&stranger, None, &url, Some(&payload))
        .await
        .expect_problem(
            StatusCode::FORBIDDEN,
            UNAUTHORIZED,
            "revocation signed by an unrelated key",
        );

    let key = AccountKey::es256_from_pkcs8(&issued.cert_key_pkcs8);
    let revoked = acme.signed(&key, None, &url, Some(&payload)).await;
    revoked.expect_status(StatusCode::OK, "revocation signed by the certificate's key");

    let dir = ca.client_dir("raw-revoke");
    let leaf = dir.join("leaf.pem");
    let issuer = dir.join("issuer.pem");
    write_pem(&leaf, &certs[0]);
    write_pem(&issuer, &certs[1]);
    tokio::task::block_in_place(|| ocsp_status_becomes(&ca, &issuer, &leaf, "revoked"));

    acme.signed(&key, None, &url, Some(&payload))
        .await
        .expect_problem(
            StatusCode::BAD_REQUEST,
            "urn:ietf:params:acme:error:alreadyRevoked",
            "a second revocation",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_jws_requests_against_the_wfe() {
    // The RA answers finalize before the issuance ends (the old behaviour), so the
    // raw finalize below meets `processing`, `Retry-After` and polling.
    let ca = Arc::new(
        DevCa::builder("jws")
            .arg("--issuance-wait")
            .arg("0s")
            .start(),
    );
    let acme = Acme::new(&ca).await;
    let http01 = Http01::start(ca.http01_port).await;
    let mut steps = Steps::default();

    steps
        .run_async(
            "broken JWS requests get problem documents",
            broken_jws_requests_get_problem_documents(acme.clone()),
        )
        .await;
    steps
        .run_async("EdDSA (Ed25519) account key", eddsa_account(acme.clone()))
        .await;
    steps
        .run_async(
            "key change to a key another account holds",
            key_change_to_a_taken_key(acme.clone()),
        )
        .await;
    steps
        .run_async(
            "authorization deactivation",
            authz_deactivation(acme.clone()),
        )
        .await;
    let issued = steps
        .run_async(
            "raw finalize",
            raw_finalize(acme.clone(), ca.clone(), http01.clone()),
        )
        .await;
    match issued {
        Some(issued) => {
            steps.run("processing orders carry Retry-After", || {
                assert!(
                    issued.retry_after_problems.is_empty(),
                    "{}",
                    issued.retry_after_problems.join("\n")
                );
            });
            steps
                .run_async(
                    "revocation signed by the certificate's key",
                    revoke_with_certificate_key(acme.clone(), ca.clone(), issued),
                )
                .await;
        }
        None => steps.skipped("revocation signed by the certificate's key", "raw finalize"),
    }
    steps.finish();
}
