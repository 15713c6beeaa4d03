//! Fakes and a JWS client for driving the WFE router in-process.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
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
use basalt_core::CertificateLookup;
use basalt_core::CertificateRecord;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::Incident;
use basalt_core::NewAccount;
use basalt_core::Nonces;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderRequest;
use basalt_core::OrderStatus;
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::RateLimitOverride;
use basalt_core::RegistrationAuthority;
use basalt_core::Requester;
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
use ring::signature::Ed25519KeyPair;
use ring::signature::KeyPair;
use ring::signature::RsaKeyPair;
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
    /// Finalize leaves the order processing (issuance in the background).
    pub finalize_processing: bool,
    /// Validation leaves the challenge processing.
    pub validation_processing: bool,
    /// Overrides the page size the WFE asks for.
    pub orders_page_size: Option<usize>,
    /// Every page request seen.
    pub page_requests: Vec<(AccountId, PageRequest)>,
    /// The SubjectPublicKeyInfo of each certificate, for key-signed revocation.
    pub cert_spkis: HashMap<Serial, Vec<u8>>,
    /// Key rollovers seen: (account, new JWK, new thumbprint).
    pub rollovers: Vec<(AccountId, String, String)>,
    /// Makes the next rollover lose a race to `AccountId`, which takes the key first.
    pub rollover_race: Option<AccountId>,
    /// External account binding keys by identifier.
    pub eab_keys: HashMap<String, EabKey>,
    /// Every new_account request the RA saw.
    pub new_accounts: Vec<NewAccount>,
    /// Every new_order request the RA saw.
    pub order_requests: Vec<OrderRequest>,
    /// Certificates an order already replaces (new_order says alreadyReplaced).
    pub replaced: Vec<Serial>,
    /// Certificate lookups fail as if the SA were unreachable.
    pub certificates_unavailable: bool,
    /// Declared incidents, oldest first, with the serials each names.
    pub incidents: Vec<(Incident, Vec<Serial>)>,
    /// Incident lookups fail as if the SA were unreachable.
    pub incidents_unavailable: bool,
    /// Rate limit overrides, in the order they were set.
    pub overrides: Vec<RateLimitOverride>,
    /// Makes new_account refuse with rateLimited, asking to wait this long.
    pub new_accounts_limited: Option<std::time::Duration>,
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Declares an incident naming `serials`, as `basalt admin incident` would.
    pub fn declare_incident(&mut self, name: &str, url: &str, serials: &[Serial]) -> Incident {
        let incident = Incident {
            id: self.id(),
            name: name.to_owned(),
            url: url.to_owned(),
            created_at: now(),
            serials: serials.len() as u64,
        };
        self.incidents.push((incident.clone(), serials.to_vec()));
        incident
    }
}

/// The identifiers as a set of (type, lowercased value), duplicates ignored.
fn identifier_set(identifiers: &[Identifier]) -> BTreeSet<(String, String)> {
    identifiers
        .iter()
        .map(|i| (format!("{:?}", i.kind), i.value.to_ascii_lowercase()))
        .collect()
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

    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        Ok(self
            .lock()
            .orders
            .values()
            .find(|o| o.replaces.as_ref() == Some(serial))
            .map(|o| o.id))
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        self.lock()
            .eab_keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| missing("eab key"))
    }

    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        Ok(self.lock().eab_keys.values().cloned().collect())
    }

    /// Newest first; the cursor is `"before <id>"` plus characters that need escaping.
    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        let mut state = self.lock();
        state.page_requests.push((account_id, page.clone()));
        let before = match &page.cursor {
            None => i64::MAX,
            Some(cursor) => cursor
                .strip_prefix("before ")
                .and_then(|rest| rest.strip_suffix("&/?"))
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| Error::malformed("bad cursor"))?,
        };
        let size = state.orders_page_size.unwrap_or(page.size as usize);
        let mut ids: Vec<OrderId> = state
            .orders
            .values()
            .filter(|o| o.account_id == account_id && o.id.0 < before)
            .map(|o| o.id)
            .collect();
        ids.sort_by_key(|id| std::cmp::Reverse(id.0));
        let next = (ids.len() > size).then(|| format!("before {}&/?", ids[size - 1].0));
        ids.truncate(size);
        Ok(OrdersPage {
            order_ids: ids,
            next,
        })
    }

    async fn key_blocked(&self, _spki_sha256: &basalt_core::SpkiHash) -> Result<bool, Error> {
        Err(Error::internal("the WFE never reads the blocked-keys list"))
    }

    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error> {
        let wanted = identifier_set(identifiers);
        Ok(self
            .lock()
            .orders
            .values()
            .filter(|o| {
                o.account_id == account_id
                    && identifier_set(&o.identifiers) == wanted
                    && o.profile == profile
                    && matches!(o.status, OrderStatus::Pending | OrderStatus::Ready)
                    && o.expires > now()
                    && o.replaces.is_none()
                    && o.not_before.is_none()
                    && o.not_after.is_none()
            })
            .max_by_key(|o| (o.created_at, o.id.0))
            .cloned())
    }

    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error> {
        let wanted = identifier_set(identifiers);
        let mut authzs: Vec<Authz> = self
            .lock()
            .authzs
            .values()
            .filter(|a| {
                a.account_id == account_id
                    && wanted.contains(&(
                        format!("{:?}", a.identifier.kind),
                        a.identifier.value.to_ascii_lowercase(),
                    ))
                    && match a.status {
                        AuthzStatus::Valid => a.expires > valid_until_at_least,
                        AuthzStatus::Pending => a.expires > now(),
                        _ => false,
                    }
            })
            .cloned()
            .collect();
        authzs.sort_by_key(|a| a.id.0);
        Ok(authzs)
    }

    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error> {
        let state = self.lock();
        if state.incidents_unavailable {
            return Err(Error::unavailable("the SA is unreachable"));
        }
        Ok(state
            .incidents
            .iter()
            .filter(|(_, serials)| serials.contains(serial))
            .map(|(incident, _)| incident)
            .max_by_key(|incident| (incident.created_at, incident.id))
            .cloned())
    }

    async fn incidents(&self) -> Result<Vec<Incident>, Error> {
        let mut incidents: Vec<Incident> = self
            .lock()
            .incidents
            .iter()
            .map(|(incident, _)| incident.clone())
            .collect();
        incidents.sort_by_key(|incident| std::cmp::Reverse((incident.created_at, incident.id)));
        Ok(incidents)
    }
}

#[async_trait]
impl CertificateLookup for Fake {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        let state = self.lock();
        if state.certificates_unavailable {
            return Err(Error::unavailable("the SA is unreachable"));
        }
        state
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
        state.new_accounts.push(account.clone());
        if let Some(wait) = state.new_accounts_limited {
            let mut err = Error::new(
                ErrorKind::RateLimited,
                format!(
                    "too many new accounts from {}",
                    account
                        .remote_ip
                        .map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string())
                ),
            );
            err.retry_after = Some(wait);
            return Err(err);
        }
        let id = AccountId(state.id());
        if let Some(key_id) = &account.eab_key_id {
            let key = state.eab_keys.get_mut(key_id).unwrap();
            assert!(key.account_id.is_none(), "eab key {key_id} bound twice");
            key.account_id = Some(id);
        }
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

    async fn update_account_contacts(
        &self,
        id: AccountId,
        contacts: Vec<String>,
    ) -> Result<Account, Error> {
        let mut state = self.lock();
        let account = state
            .accounts
            .get_mut(&id)
            .ok_or_else(|| missing("account"))?;
        account.contacts = contacts;
        Ok(account.clone())
    }

    async fn deactivate_account(&self, id: AccountId) -> Result<Account, Error> {
        let mut state = self.lock();
        let account = state
            .accounts
            .get_mut(&id)
            .ok_or_else(|| missing("account"))?;
        account.status = AccountStatus::Deactivated;
        Ok(account.clone())
    }

    async fn rollover_account_key(
        &self,
        id: AccountId,
        new_key_jwk: String,
        new_key_thumbprint: String,
    ) -> Result<Account, Error> {
        let mut state = self.lock();
        if let Some(winner) = state.rollover_race.take() {
            let account = state.accounts.get_mut(&winner).unwrap();
            account.key_thumbprint = new_key_thumbprint;
            account.key_jwk = new_key_jwk;
            return Err(Error::conflict("key already in use"));
        }
        if state
            .accounts
            .values()
            .any(|a| a.key_thumbprint == new_key_thumbprint)
        {
            return Err(Error::conflict("key already in use"));
        }
        state
            .rollovers
            .push((id, new_key_jwk.clone(), new_key_thumbprint.clone()));
        let account = state
            .accounts
            .get_mut(&id)
            .ok_or_else(|| missing("account"))?;
        account.key_jwk = new_key_jwk;
        account.key_thumbprint = new_key_thumbprint;
        Ok(account.clone())
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<Authz, Error> {
        let mut state = self.lock();
        let authz = state.authzs.get_mut(&id).ok_or_else(|| missing("authz"))?;
        if !matches!(authz.status, AuthzStatus::Pending | AuthzStatus::Valid) {
            return Err(Error::malformed(format!(
                "authorization is {}",
                authz.status
            )));
        }
        authz.status = AuthzStatus::Deactivated;
        Ok(authz.clone())
    }

    async fn new_order(&self, request: OrderRequest) -> Result<Order, Error> {
        self.lock().order_requests.push(request.clone());
        let OrderRequest {
            account_id,
            identifiers,
            profile,
            not_before,
            not_after,
            replaces,
        } = request;
        if profile.as_deref() == Some("bogus") {
            return Err(Error::new(
                ErrorKind::InvalidProfile,
                "profile \"bogus\" is not offered",
            ));
        }
        if let Some(serial) = &replaces
            && self.lock().replaced.contains(serial)
        {
            return Err(Error::new(
                ErrorKind::AlreadyReplaced,
                format!("certificate {serial} was already replaced"),
            ));
        }
        if identifiers.iter().any(|i| i.value == "limited.example") {
            let mut err = Error::new(
                ErrorKind::RateLimited,
                "too many orders for limited.example",
            );
            // Not whole seconds: clients are told to wait 60, rounded up.
            err.retry_after = Some(std::time::Duration::from_millis(59_250));
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
            profile: profile.unwrap_or_default(),
            not_before,
            not_after,
            replaces,
        };
        state.orders.insert(id, order.clone());
        Ok(order)
    }

    async fn perform_validation(&self, id: AuthzId, kind: ChallengeType) -> Result<Authz, Error> {
        let mut state = self.lock();
        state.validations.push((id, kind));
        let processing = state.validation_processing;
        let authz = state.authzs.get_mut(&id).ok_or_else(|| missing("authz"))?;
        if processing {
            for challenge in &mut authz.challenges {
                if challenge.kind == kind {
                    challenge.status = ChallengeStatus::Processing;
                }
            }
            return Ok(authz.clone());
        }
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
        let processing = state.finalize_processing;
        let serial_bytes = [0x4a, 0x00, 0x00, id.0 as u8];
        let serial = Serial::from_bytes(&serial_bytes)?;
        let order = state.orders.get_mut(&id).ok_or_else(|| missing("order"))?;
        if order.status != OrderStatus::Ready {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order is {}", order.status),
            ));
        }
        if processing {
            order.status = OrderStatus::Processing;
            return Ok(order.clone());
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
        let owner = state
            .certs
            .get(&request.serial)
            .map(|cert| cert.account_id)
            .ok_or_else(|| missing("certificate"))?;
        let allowed = match &request.requester {
            Requester::Account(id) => owner == *id,
            Requester::CertificateKey(spki) => state.cert_spkis.get(&request.serial) == Some(spki),
            Requester::Operator(_) => true,
        };
        if !allowed {
            return Err(Error::unauthorized("not your certificate"));
        }
        let cert = state.certs.get_mut(&request.serial).unwrap();
        if cert.status == CertStatus::Revoked {
            return Err(Error::new(ErrorKind::AlreadyRevoked, "already revoked"));
        }
        cert.status = CertStatus::Revoked;
        state.revocations.push(request);
        Ok(())
    }

    async fn add_rate_limit_override(&self, limit: RateLimitOverride) -> Result<(), Error> {
        let mut state = self.lock();
        state
            .overrides
            .retain(|o| !(o.limit == limit.limit && o.key == limit.key));
        state.overrides.push(limit);
        Ok(())
    }

    async fn remove_rate_limit_override(&self, limit: &str, key: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let before = state.overrides.len();
        state
            .overrides
            .retain(|o| !(o.limit == limit && o.key == key));
        if state.overrides.len() == before {
            return Err(missing("rate limit override"));
        }
        Ok(())
    }

    async fn rate_limit_overrides(&self) -> Result<Vec<RateLimitOverride>, Error> {
        Ok(self.lock().overrides.clone())
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
        Self::with_settings(|settings| settings.terms_of_service = terms_of_service)
    }

    /// The default settings, changed by `change`.
    pub fn settings(change: impl FnOnce(&mut WfeSettings)) -> WfeSettings {
        let mut settings = WfeSettings {
            base_url: format!("{BASE}/"),
            terms_of_service: Some(TOS.to_owned()),
            website: Some("https://acme.test".to_owned()),
            profiles: Default::default(),
            eab_required: false,
            caa_identities: Vec::new(),
            alternate_chains: Vec::new(),
            // Tests change accounts behind the WFE's back and expect it to see that.
            account_cache_ttl: std::time::Duration::ZERO,
        };
        change(&mut settings);
        settings
    }

    pub fn with_settings(change: impl FnOnce(&mut WfeSettings)) -> Self {
        let fake = Arc::new(Fake::default());
        let wfe = Arc::new(Wfe::new(
            Self::settings(change),
            fake.clone(),
            fake.clone(),
            Arc::new(FixedClock::new(now())),
        ));
        let router = basalt_wfe::router(wfe.clone());
        Self { router, fake, wfe }
    }

    /// A WFE over `fake` that takes its nonces from `nonces`.
    pub fn with_nonces(fake: Arc<Fake>, nonces: Arc<dyn Nonces>) -> Self {
        let wfe = Arc::new(
            Wfe::with_nonces(Self::settings(|_| {}), fake.clone(), fake.clone(), nonces)
                .with_clock(Arc::new(FixedClock::new(now()))),
        );
        let router = basalt_wfe::router(wfe.clone());
        Self { router, fake, wfe }
    }

    /// The same app, its requests coming from `addr` as if over a TCP connection.
    pub fn with_client_address(mut self, addr: SocketAddr) -> Self {
        self.router = self.router.layer(MockConnectInfo(addr));
        self
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

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// An account key (ECDSA, Ed25519 or RSA) that signs flattened JWS.
pub struct TestKey {
    pair: Pair,
    rng: SystemRandom,
    pub alg: &'static str,
    pub jwk: Value,
    pub kid: Option<String>,
}

impl TestKey {
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::ecdsa_from_pkcs8(alg, "ES256", "P-256", pkcs8.as_ref())
    }

    pub fn es384() -> Self {
        let rng = SystemRandom::new();
        let alg = &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::ecdsa_from_pkcs8(alg, "ES384", "P-384", pkcs8.as_ref())
    }

    /// A P-256 key from PKCS#8 DER (e.g. an rcgen certificate key).
    pub fn p256_from_pkcs8(pkcs8: &[u8]) -> Self {
        Self::ecdsa_from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            "ES256",
            "P-256",
            pkcs8,
        )
    }

    fn ecdsa_from_pkcs8(
        alg: &'static EcdsaSigningAlgorithm,
        name: &'static str,
        crv: &str,
        pkcs8: &[u8],
    ) -> Self {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng).unwrap();
        let point = pair.public_key().as_ref();
        let half = (point.len() - 1) / 2;
        let jwk = json!({
            "kty": "EC",
            "crv": crv,
            "x": URL_SAFE_NO_PAD.encode(&point[1..1 + half]),
            "y": URL_SAFE_NO_PAD.encode(&point[1 + half..]),
        });
        Self {
            pair: Pair::Ecdsa(pair),
            rng,
            alg: name,
            jwk,
            kid: None,
        }
    }

    pub fn ed25519() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        });
        Self {
            pair: Pair::Ed25519(pair),
            rng,
            alg: "EdDSA",
            jwk,
            kid: None,
        }
    }

    /// The 2048-bit RSA key in tests/data/rsa2048.pem.
    pub fn rs256() -> Self {
        let pem = include_str!("../data/rsa2048.pem");
        let der = rcgen::KeyPair::from_pem(pem).unwrap().serialize_der();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let components: ring::signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        });
        Self {
            pair: Pair::Rsa(pair),
            rng: SystemRandom::new(),
            alg: "RS256",
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
        let sig = match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign(&self.rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Pair::Ed25519(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
        };
        URL_SAFE_NO_PAD.encode(sig)
    }

    /// A flattened JWS of `payload` signed with the `jwk` header and no nonce, as the
    /// inner JWS of a key change.
    pub fn sign_inner(&self, url: &str, payload: &Value) -> String {
        let header = json!({"alg": self.alg, "jwk": self.jwk, "url": url});
        self.sign(&header, &payload.to_string())
    }
}
