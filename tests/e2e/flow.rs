//! A raw ACME client on [`Acme`]: an account signing with `kid`, orders with any
//! payload (profiles, validity, `replaces`), http-01 through the test's own
//! responder, finalize, and download.

use std::time::Duration;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use ring::digest;
use serde_json::Value;
use serde_json::json;

use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::pem_certs;
use crate::jws::AccountKey;
use crate::jws::Acme;
use crate::jws::Answer;

/// How long an authorization or an order may take to change state.
const POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// The RFC 7638 thumbprint of a public JWK as [`AccountKey::jwk`] makes it.
pub(crate) fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => json!({ "crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"] }),
        Some("OKP") => json!({ "crv": jwk["crv"], "kty": "OKP", "x": jwk["x"] }),
        other => panic!("no thumbprint for key type {other:?}"),
    };
    // Members in lexicographic order, as RFC 7638 §3.2 wants (whether or not
    // serde_json preserves insertion order).
    let hash = digest::digest(&digest::SHA256, canonical.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}

/// An order payload for `names`: IP addresses become `ip` identifiers, the rest `dns`.
pub(crate) fn order_payload(names: &[&str]) -> Value {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|name| {
            let kind = if name.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "dns"
            };
            json!({ "type": kind, "value": name })
        })
        .collect();
    json!({ "identifiers": identifiers })
}

/// A certificate issued through [`RawAccount::issue`].
pub(crate) struct Issued {
    pub(crate) order_url: String,
    /// The order object once `valid`.
    pub(crate) order: Value,
    pub(crate) chain_pem: String,
    pub(crate) leaf_der: Vec<u8>,
}

/// An account and the client it talks through.
pub(crate) struct RawAccount {
    pub(crate) acme: Acme,
    pub(crate) key: AccountKey,
    pub(crate) kid: String,
}

impl RawAccount {
    /// A new account with a fresh ES256 key.
    pub(crate) async fn create(acme: &Acme) -> Self {
        let key = AccountKey::es256();
        let kid = acme.new_account(&key).await;
        Self {
            acme: acme.clone(),
            key,
            kid,
        }
    }

    /// A `kid`-signed POST of `payload` (`None`: POST-as-GET) to `url`.
    pub(crate) async fn post(&self, url: &str, payload: Option<&Value>) -> Answer {
        self.acme
            .signed(&self.key, Some(&self.kid), url, payload)
            .await
    }

    /// POSTs a newOrder payload.
    pub(crate) async fn new_order(&self, payload: &Value) -> Answer {
        self.post(&self.acme.url("newOrder"), Some(payload)).await
    }

    /// Validates every pending authorization of `order` over http-01.
    pub(crate) async fn authorize(&self, http01: &Http01, order: &Value) {
        let authorizations = order["authorizations"]
            .as_array()
            .unwrap_or_else(|| panic!("an order without authorizations: {order}"));
        for authz_url in authorizations {
            let authz_url = authz_url.as_str().expect("authorization URLs are strings");
            let authz = self.post(authz_url, None).await;
            authz.expect_status(StatusCode::OK, "POST-as-GET authorization");
            match authz.json["status"].as_str() {
                Some("valid") => continue,
                Some("pending") => {}
                other => panic!("authorization {authz_url} is {other:?}: {}", authz.text),
            }
            let challenge = authz.json["challenges"]
                .as_array()
                .and_then(|challenges| challenges.iter().find(|c| c["type"] == "http-01"))
                .unwrap_or_else(|| panic!("no http-01 challenge: {}", authz.text));
            let token = challenge["token"].as_str().expect("a challenge token");
            let url = challenge["url"].as_str().expect("a challenge url");
            http01.insert(token, &format!("{token}.{}", thumbprint(&self.key.jwk())));
            self.post(url, Some(&json!({})))
                .await
                .expect_status(StatusCode::OK, "respond to the challenge");
            let deadline = Instant::now() + POLL_TIMEOUT;
            loop {
                let now = self.post(authz_url, None).await;
                now.expect_status(StatusCode::OK, "POST-as-GET authorization");
                match now.json["status"].as_str() {
                    Some("valid") => break,
                    Some("pending") if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    _ => panic!(
                        "authorization {authz_url} did not become valid: {}; the VA asked for {:?}",
                        now.text,
                        http01.requests()
                    ),
                }
            }
        }
    }

    /// Polls `url` (an order) until its status is not `from`.
    pub(crate) async fn poll_order(&self, url: &str, from: &str) -> Value {
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            let order = self.post(url, None).await;
            order.expect_status(StatusCode::OK, "POST-as-GET order");
            if order.json["status"] != from {
                return order.json;
            }
            assert!(
                Instant::now() < deadline,
                "the order is still {from} after {POLL_TIMEOUT:?}: {}",
                order.text
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A new order from `payload` with every authorization valid; returns its URL
    /// and the `ready` order object.
    pub(crate) async fn ready_order(&self, http01: &Http01, payload: &Value) -> (String, Value) {
        let created = self.new_order(payload).await;
        created.expect_status(StatusCode::CREATED, "new-order");
        let url = created.location();
        if created.json["status"] == "ready" {
            return (url, created.json);
        }
        self.authorize(http01, &created.json).await;
        let order = self.poll_order(&url, "pending").await;
        assert_eq!(order["status"], "ready", "{order}");
        (url, order)
    }

    /// Finalizes a ready order with `csr` and waits for it to be `valid`.
    pub(crate) async fn finalize(&self, order_url: &str, order: &Value, csr: &[u8]) -> Value {
        let finalize = order["finalize"].as_str().expect("a finalize URL");
        let answer = self
            .post(
                finalize,
                Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(csr) })),
            )
            .await;
        answer.expect_status(StatusCode::OK, "finalize");
        let order = if answer.json["status"] == "processing" {
            self.poll_order(order_url, "processing").await
        } else {
            answer.json
        };
        assert_eq!(order["status"], "valid", "{order}");
        order
    }

    /// Orders, validates, finalizes and downloads a certificate for `names`,
    /// with `extra` merged into the newOrder payload (e.g. `profile`).
    pub(crate) async fn issue(&self, http01: &Http01, names: &[&str], extra: &Value) -> Issued {
        let mut payload = order_payload(names);
        if let (Some(payload), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
            payload.extend(extra.clone());
        }
        let (order_url, order) = self.ready_order(http01, &payload).await;
        let (csr, _key) = cert_csr(names);
        let order = self.finalize(&order_url, &order, &csr).await;
        let certificate = order["certificate"]
            .as_str()
            .unwrap_or_else(|| panic!("a valid order without a certificate: {order}"));
        let download = self.post(certificate, None).await;
        download.expect_status(StatusCode::OK, "certificate download");
        let certs = pem_certs(&download.text);
        assert!(
            !certs.is_empty(),
            "no certificate in the download: {}",
            download.text
        );
        Issued {
            order_url,
            order,
            leaf_der: certs[0].clone(),
            chain_pem: download.text,
        }
    }
}
