//! Fakes and a JWS client for driving the WFE router in-process.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::Request;
use axum::http::StatusCode;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzStatus;
use basalt_core::CertStatus;
use basalt_core::CertificateRecord;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::NewAccount;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderStatus;
use basalt_core::RegistrationAuthority;
use basalt_core::RevokeRequest;
use basalt_core::Serial;
use basalt_core::StorageReadOnly;
use basalt_wfe::Wfe;
use basalt_wfe::WfeSettings;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use ring::signature::EcdsaSigningAlgorithm;
use ring::signature::KeyPair;
use serde_json::Value;
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceExt;

pub const BASE: &str = "https://acme.test:14000";
pub const TOS: &str = "https://acme.test/tos";

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
}

/// A minimal DER certificate shape holding `serial` (enough for the WFE's walker).
pub fn fake_cert_der(serial: &[u8]) -> Vec<u8> {
    let mut tbs = vec![0x02, serial.len() as u8];
    tbs.extend_from_slice(serial);
    tbs.extend_from_slice(&[0x05, 0x00]);
    let mut inner = vec![0x30, tbs.len() as u8];
    inner.extend_from_slice(&tbs);
    let mut der = vec![0x30, inner.len() as u8];
    der.extend_from_slice(&inner);
    der
}

#[derive(Default)]
pub struct State {
    next_id: i64,
    pub accounts: HashMap<AccountId, Account>,
    pub orders: HashMap<OrderId, Order>,
    pub authzs: HashMap<AuthzId, Authz>,
    pub certs: HashMap<Serial, CertificateRecord>,
    pub validations: Vec<(AuthzId, ChallengeType)>,
    pub revocations: Vec<RevokeRequest>,
    pub finalized_csrs: Vec<Vec<u8>>,
    /// Makes the next new_account lose a race: it stores the account, then says Conflict.
    pub lose_next_race: bool,
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// An RA and read-only SA over one in-memory state.
#[derive(Default)]
pub struct Fake {
    pub state: Mutex<State>,
}

impl Fake {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn missing(what: &str) -> Error {
    Error::not_found(format!("{what} not found"))
}

#[async_trait]
impl StorageReadOnly for Fake {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        self.lock()
            .accounts
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("account"))
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        self.lock()
            .accounts
            .values()
            .find(|a| a.key_thumbprint == key_thumbprint)
            .cloned()
            .ok_or_else(|| missing("account"))
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        self.lock()
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("order"))
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        self.lock()
            .authzs
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("authz"))
    }

    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        self.lock()
            .certs
            .get(serial)
            .cloned()
            .ok_or_else(|| missing("certificate"))
    }
}

#[async_trait]
impl RegistrationAuthority for Fake {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        let mut state = self.lock();
        let id = AccountId(state.id());
        let account = Account {
            id,
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            status: AccountStatus::Valid,
            created_at: now(),
        };
        state.accounts.insert(id, account.clone());
        if std::mem::take(&mut state.lose_next_race) {
            return Err(Error::conflict("key already registered"));
        }
        Ok(account)
    }

    async fn new_order(
        &self,
        account_id: AccountId,
        identifiers: Vec<Identifier>,
    ) -> Result<Order, Error> {
        if identifiers.iter().any(|i| i.value == "limited.example") {
            let mut err = Error::new(
                ErrorKind::RateLimited,
                "too many orders for limited.example",
            );
            err.retry_after = Some(std::time::Duration::from_secs(60));
            return Err(err);
        }
        if identifiers.iter().any(|i| i.value == "broken.example") {
            return Err(Error::internal("database password is hunter2"));
        }
        let mut state = self.lock();
        let mut authz_ids = Vec::new();
        for identifier in &identifiers {
            let id = AuthzId(state.id());
            let (value, wildcard) = match identifier.value.strip_prefix("*.") {
                Some(base) => (base.to_owned(), true),
                None => (identifier.value.clone(), false),
            };
            let challenges = [ChallengeType::Http01, ChallengeType::Dns01]
                .into_iter()
                .map(|kind| Challenge::pending(kind, format!("token-{}-{kind}", id.0)))
                .collect();
            state.authzs.insert(
                id,
                Authz {
                    id,
                    account_id,
                    identifier: Identifier {
                        kind: identifier.kind,
                        value,
                    },
                    status: AuthzStatus::Pending,
                    expires: now() + time::Duration::days(7),
                    wildcard,
                    challenges,
                },
            );
            authz_ids.push(id);
        }
        let id = OrderId(state.id());
        let order = Order {
            id,
            account_id,
            identifiers,
            status: OrderStatus::Pending,
            expires: now() + time::Duration::days(7),
            authz_ids,
            error: None,
            certificate_serial: None,
            created_at: now(),
        };
        state.orders.insert(id, order.clone());
        Ok(order)
    }

    async fn perform_validation(&self, id: AuthzId, kind: ChallengeType) -> Result<Authz, Error> {
        let mut state = self.lock();
        state.validations.push((id, kind));
        let authz = state.authzs.get_mut(&id).ok_or_else(|| missing("authz"))?;
        authz.status = AuthzStatus::Valid;
        for challenge in &mut authz.challenges {
            if challenge.kind == kind {
                challenge.status = ChallengeStatus::Valid;
                challenge.validated = Some(now());
            }
        }
        let authz = authz.clone();
        let valid: Vec<AuthzId> = state
            .authzs
            .values()
            .filter(|a| a.status == AuthzStatus::Valid)
            .map(|a| a.id)
            .collect();
        for order in state.orders.values_mut() {
            if order.status == OrderStatus::Pending
                && order.authz_ids.iter().all(|a| valid.contains(a))
            {
                order.status = OrderStatus::Ready;
            }
        }
        Ok(authz)
    }

    async fn finalize_order(&self, id: OrderId, csr_der: Vec<u8>) -> Result<Order, Error> {
        let mut state = self.lock();
        state.finalized_csrs.push(csr_der);
        let serial_bytes = [0x4a, 0x00, 0x00, id.0 as u8];
        let serial = Serial::from_bytes(&serial_bytes)?;
        let order = state.orders.get_mut(&id).ok_or_else(|| missing("order"))?;
        if order.status != OrderStatus::Ready {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order is {}", order.status),
            ));
        }
        order.status = OrderStatus::Valid;
        order.certificate_serial = Some(serial.clone());
        let order = order.clone();
        state.certs.insert(
            serial.clone(),
            CertificateRecord {
                serial,
                account_id: order.account_id,
                der: fake_cert_der(&serial_bytes),
                chain: vec![vec![0x30, 0x00]],
                issued_at: now(),
                expires_at: now() + time::Duration::days(90),
                status: CertStatus::Good,
                revoked_at: None,
                revocation_reason: None,
            },
        );
        Ok(order)
    }

    async fn revoke_certificate(&self, request: RevokeRequest) -> Result<(), Error> {
        let mut state = self.lock();
        let cert = state
            .certs
            .get_mut(&request.serial)
            .ok_or_else(|| missing("certificate"))?;
        if cert.account_id != request.account_id {
            return Err(Error::unauthorized("not your certificate"));
        }
        if cert.status == CertStatus::Revoked {
            return Err(Error::new(ErrorKind::AlreadyRevoked, "already revoked"));
        }
        cert.status = CertStatus::Revoked;
        state.revocations.push(request);
        Ok(())
    }
}

/// A router over fresh fakes.
pub struct TestApp {
    pub router: Router,
    pub fake: Arc<Fake>,
    pub wfe: Arc<Wfe>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an RFC 8555 problem of `kind` with `status`, carrying a nonce.
    pub fn assert_problem(&self, kind: &str, status: u16) -> Value {
        let body = String::from_utf8_lossy(&self.body).into_owned();
        assert_eq!(self.status.as_u16(), status, "{body}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{body}"
        );
        assert!(
            self.header("replay-nonce").is_some_and(|n| !n.is_empty()),
            "no nonce: {body}"
        );
        let json = self.json();
        assert_eq!(
            json["type"],
            format!("urn:ietf:params:acme:error:{kind}"),
            "{body}"
        );
        assert_eq!(json["status"], status, "{body}");
        assert!(
            json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        json
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with_tos(Some(TOS.to_owned()))
    }

    pub fn with_tos(terms_of_service: Option<String>) -> Self {
        let fake = Arc::new(Fake::default());
        let settings = WfeSettings {
            base_url: format!("{BASE}/"),
            terms_of_service,
            website: Some("https://acme.test".to_owned()),
        };
        let wfe = Arc::new(Wfe::new(
            settings,
            fake.clone(),
            fake.clone(),
            Arc::new(FixedClock::new(now())),
        ));
        let router = basalt_wfe::router(wfe.clone());
        Self { router, fake, wfe }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn nonce(&self) -> String {
        let reply = self
            .send(
                Request::builder()
                    .method(Method::HEAD)
                    .uri("/acme/new-nonce")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.header("replay-nonce").unwrap().to_owned()
    }

    /// POSTs `body` as application/jose+json.
    pub async fn post_raw(&self, path: &str, body: String) -> Reply {
        self.send(
            Request::post(path)
                .header("content-type", "application/jose+json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// POSTs `payload` signed by `key` (kid if it has an account) with a fresh nonce.
    pub async fn post(&self, key: &TestKey, path: &str, payload: &str) -> Reply {
        let nonce = self.nonce().await;
        let body = key.sign(&key.header(&format!("{BASE}{path}"), Some(&nonce)), payload);
        self.post_raw(path, body).await
    }

    /// Registers `key`, remembering its account URL.
    pub async fn register(&self, key: &mut TestKey) -> Reply {
        let payload =
            json!({"termsOfServiceAgreed": true, "contact": ["mailto:admin@example.com"]});
        let reply = self
            .post(key, "/acme/new-account", &payload.to_string())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        key.kid = Some(reply.header("location").unwrap().to_owned());
        reply
    }
}

/// An ECDSA account key that signs flattened JWS.
pub struct TestKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    alg: &'static str,
    pub jwk: Value,
    pub kid: Option<String>,
}

impl TestKey {
    pub fn es256() -> Self {
        Self::generate(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            "ES256",
            "P-256",
        )
    }

    pub fn es384() -> Self {
        Self::generate(
            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            "ES384",
            "P-384",
        )
    }

    fn generate(alg: &'static EcdsaSigningAlgorithm, name: &'static str, crv: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let half = (point.len() - 1) / 2;
        let jwk = json!({
            "kty": "EC",
            "crv": crv,
            "x": URL_SAFE_NO_PAD.encode(&point[1..1 + half]),
            "y": URL_SAFE_NO_PAD.encode(&point[1 + half..]),
        });
        Self {
            pair,
            rng,
            alg: name,
            jwk,
            kid: None,
        }
    }

    /// The protected header this key would normally send.
    pub fn header(&self, url: &str, nonce: Option<&str>) -> Value {
        let mut header = json!({"alg": self.alg, "url": url});
        match &self.kid {
            Some(kid) => header["kid"] = kid.clone().into(),
            None => header["jwk"] = self.jwk.clone(),
        }
        if let Some(nonce) = nonce {
            header["nonce"] = nonce.into();
        }
        header
    }

    /// A flattened JWS of `payload` under `header`.
    pub fn sign(&self, header: &Value, payload: &str) -> String {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signature = self.signature(&format!("{protected}.{payload}"));
        json!({"protected": protected, "payload": payload, "signature": signature}).to_string()
    }

    pub fn signature(&self, input: &str) -> String {
        let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    }
}
