//! The RA against in-memory fakes of the SA, VA and CA.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use basalt_core::BlockedKey;
use basalt_core::BlockedKeySource;
use basalt_core::CertStatus;
use basalt_core::CertificateLookup;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::CrlPlacement;
use basalt_core::EabKey;
use basalt_core::FixedClock;
use basalt_core::Incident;
use basalt_core::IssuedCertificate;
use basalt_core::NewIncident;
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::Requester;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevocationStatus;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::StatusChange;
use basalt_core::StorageReadOnly;
use basalt_core::ValidationRecord;
use rcgen::CertificateParams;
use rcgen::DistinguishedName;
use rcgen::KeyPair;
use rcgen::PublicKeyData;
use tokio::sync::Notify;

use super::*;

/// Just enough of an SA: maps behind one lock, order status computed from the
/// order's own progress and then from its authorizations.
#[derive(Default)]
struct FakeSa {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: i64,
    accounts: HashMap<AccountId, Account>,
    orders: HashMap<OrderId, Order>,
    authzs: HashMap<AuthzId, Authz>,
    certificates: HashMap<Serial, CertificateRecord>,
    eab_keys: Vec<EabKey>,
    /// Makes `replacement_order` answer `None`, as if another order claimed the
    /// certificate between the RA's check and its `new_order`.
    hide_replacements: bool,
    /// Every `NewAccount` the SA was asked to store, as it arrived.
    new_accounts: Vec<NewAccount>,
    /// The blocked-keys list.
    blocked_keys: HashMap<SpkiHash, BlockedKey>,
    /// What `key_blocked` answers instead of looking, when set.
    key_blocked_error: Option<Error>,
    /// Incidents, oldest first, with their serials.
    incidents: Vec<(Incident, Vec<Serial>)>,
    /// Makes `new_order` refuse any reused authorization, as if it had been
    /// deactivated since the RA read it.
    refuse_reuse: bool,
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn order_status(&self, order: &Order) -> OrderStatus {
        if matches!(
            order.status,
            OrderStatus::Invalid | OrderStatus::Processing | OrderStatus::Valid
        ) {
            return order.status;
        }
        let statuses: Vec<AuthzStatus> = order
            .authz_ids
            .iter()
            .map(|id| self.authzs[id].status)
            .collect();
        if statuses.iter().all(|s| *s == AuthzStatus::Valid) {
            OrderStatus::Ready
        } else if statuses.contains(&AuthzStatus::Pending)
            && statuses
                .iter()
                .all(|s| matches!(s, AuthzStatus::Pending | AuthzStatus::Valid))
        {
            OrderStatus::Pending
        } else {
            OrderStatus::Invalid
        }
    }
}

impl FakeSa {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn add_certificate_for(&self, account_id: AccountId, serial: &str) -> Serial {
        self.add_certificate_with(account_id, serial, vec![0x30])
    }

    fn add_certificate_with(&self, account_id: AccountId, serial: &str, der: Vec<u8>) -> Serial {
        let serial: Serial = serial.parse().unwrap();
        let at = t0();
        self.lock().certificates.insert(
            serial.clone(),
            CertificateRecord {
                serial: serial.clone(),
                account_id,
                der,
                chain: Vec::new(),
                issued_at: at,
                expires_at: at + time::Duration::days(90),
                status: CertStatus::Good,
                revoked_at: None,
                revocation_reason: None,
            },
        );
        serial
    }
}

#[async_trait]
impl StorageReadOnly for FakeSa {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        self.lock()
            .accounts
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::AccountDoesNotExist, "no such account"))
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        self.lock()
            .accounts
            .values()
            .find(|a| a.key_thumbprint == key_thumbprint)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::AccountDoesNotExist, "no such account"))
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        let state = self.lock();
        let mut order = state
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("no such order"))?;
        order.status = state.order_status(&order);
        Ok(order)
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        self.lock()
            .authzs
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("no such authorization"))
    }

    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        let state = self.lock();
        if state.hide_replacements {
            return Ok(None);
        }
        Ok(state
            .orders
            .values()
            .find(|o| {
                o.replaces.as_ref() == Some(serial) && state.order_status(o) != OrderStatus::Invalid
            })
            .map(|o| o.id))
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        self.lock()
            .eab_keys
            .iter()
            .find(|k| k.key_id == key_id)
            .cloned()
            .ok_or_else(|| Error::not_found("no such key"))
    }

    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        Ok(self.lock().eab_keys.iter().rev().cloned().collect())
    }

    async fn orders_for_account(
        &self,
        _account_id: AccountId,
        _page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        Err(Error::internal("the RA never lists orders"))
    }

    async fn key_blocked(&self, spki_sha256: &SpkiHash) -> Result<bool, Error> {
        let state = self.lock();
        if let Some(err) = &state.key_blocked_error {
            return Err(err.clone());
        }
        Ok(state.blocked_keys.contains_key(spki_sha256))
    }

    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error> {
        let state = self.lock();
        let mut wanted = identifiers.to_vec();
        wanted.sort();
        wanted.dedup();
        Ok(state
            .orders
            .values()
            .filter(|o| {
                o.account_id == account_id
                    && o.identifiers == wanted
                    && o.profile == profile
                    && o.replaces.is_none()
                    && o.not_before.is_none()
                    && o.not_after.is_none()
                    && o.expires > t0()
                    && matches!(
                        state.order_status(o),
                        OrderStatus::Pending | OrderStatus::Ready
                    )
            })
            .max_by_key(|o| o.id.0)
            .map(|o| Order {
                status: state.order_status(o),
                ..o.clone()
            }))
    }

    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error> {
        Ok(self
            .lock()
            .authzs
            .values()
            .filter(|a| {
                a.account_id == account_id
                    && identifiers.contains(&a.identifier)
                    && match a.status {
                        AuthzStatus::Valid => a.expires > valid_until_at_least,
                        AuthzStatus::Pending => a.expires > t0(),
                        _ => false,
                    }
            })
            .cloned()
            .collect())
    }

    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error> {
        Ok(self
            .lock()
            .incidents
            .iter()
            .rev()
            .find(|(_, serials)| serials.contains(serial))
            .map(|(incident, _)| incident.clone()))
    }

    async fn incidents(&self) -> Result<Vec<Incident>, Error> {
        Ok(self
            .lock()
            .incidents
            .iter()
            .rev()
            .map(|(incident, _)| incident.clone())
            .collect())
    }
}

#[async_trait]
impl RevocationLookup for FakeSa {
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error> {
        let state = self.lock();
        let certificate = state
            .certificates
            .get(serial)
            .ok_or_else(|| Error::not_found("no such serial in the fake"))?;
        Ok(RevocationStatus {
            serial: serial.clone(),
            der: certificate.der.clone(),
            precertificate: false,
            expires_at: certificate.expires_at,
            status: certificate.status,
            revoked_at: certificate.revoked_at,
            revocation_reason: certificate.revocation_reason,
        })
    }

    /// The fake's certificates carry no CRL placement (the RA never stores
    /// precertificates), so no shard lists any of them.
    async fn revoked_certificates(
        &self,
        _issuer_key_hash: &[u8],
        _shard: u32,
        _expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        Ok(Vec::new())
    }

    async fn status_changes(
        &self,
        _since: OffsetDateTime,
        _limit: u32,
    ) -> Result<Vec<StatusChange>, Error> {
        Err(Error::internal(
            "the RA never follows the status-change feed",
        ))
    }
}

#[async_trait]
impl CertificateLookup for FakeSa {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        self.lock()
            .certificates
            .get(serial)
            .cloned()
            .ok_or_else(|| Error::not_found("no such serial in the fake"))
    }
}

#[async_trait]
impl Storage for FakeSa {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        let mut state = self.lock();
        state.new_accounts.push(account.clone());
        if state
            .accounts
            .values()
            .any(|a| a.key_thumbprint == account.key_thumbprint)
        {
            return Err(Error::conflict("key in use"));
        }
        let account_eab = account.eab_key_id;
        let account = Account {
            id: AccountId(state.id()),
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            status: AccountStatus::Valid,
            created_at: t0(),
        };
        if let Some(key_id) = &account_eab {
            let key = state
                .eab_keys
                .iter_mut()
                .find(|k| k.key_id == *key_id && !k.revoked && k.account_id.is_none())
                .ok_or_else(|| Error::unauthorized("unusable key"))?;
            key.account_id = Some(account.id);
        }
        state.accounts.insert(account.id, account.clone());
        Ok(account)
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error> {
        let mut state = self.lock();
        if let Some((_, thumbprint)) = &update.key
            && state
                .accounts
                .values()
                .any(|a| a.id != id && a.key_thumbprint == *thumbprint)
        {
            return Err(Error::conflict("key in use by another account"));
        }
        let account = state
            .accounts
            .get_mut(&id)
            .ok_or_else(|| Error::new(ErrorKind::AccountDoesNotExist, "no such account"))?;
        if let Some(contacts) = update.contacts {
            account.contacts = contacts;
        }
        if let Some(status) = update.status {
            account.status = status;
        }
        if let Some((jwk, thumbprint)) = update.key {
            account.key_jwk = jwk;
            account.key_thumbprint = thumbprint;
        }
        Ok(account.clone())
    }

    async fn new_order(&self, order: NewOrder) -> Result<Order, Error> {
        let mut state = self.lock();
        if let Some(serial) = &order.replaces
            && state.orders.values().any(|o| {
                o.replaces.as_ref() == Some(serial) && state.order_status(o) != OrderStatus::Invalid
            })
        {
            return Err(Error::new(
                ErrorKind::AlreadyReplaced,
                "replaced already (the fake SA's check)",
            ));
        }
        let mut authz_ids = Vec::new();
        if state.refuse_reuse && !order.reused_authz_ids.is_empty() {
            return Err(Error::conflict("authorization can no longer be reused"));
        }
        for id in &order.reused_authz_ids {
            let reusable = state.authzs.get(id).is_some_and(|a| {
                a.account_id == order.account_id
                    && matches!(a.status, AuthzStatus::Pending | AuthzStatus::Valid)
            });
            if !reusable {
                return Err(Error::conflict(format!(
                    "authorization {id} can no longer be reused"
                )));
            }
            authz_ids.push(*id);
        }
        for authz in order.authzs {
            let id = AuthzId(state.id());
            authz_ids.push(id);
            state.authzs.insert(
                id,
                Authz {
                    id,
                    account_id: order.account_id,
                    identifier: authz.identifier,
                    status: AuthzStatus::Pending,
                    expires: authz.expires,
                    wildcard: authz.wildcard,
                    challenges: authz.challenges,
                },
            );
        }
        let order = Order {
            id: OrderId(state.id()),
            account_id: order.account_id,
            identifiers: order.identifiers,
            status: OrderStatus::Pending,
            expires: order.expires,
            authz_ids,
            error: None,
            certificate_serial: None,
            created_at: t0(),
            profile: order.profile,
            not_before: order.not_before,
            not_after: order.not_after,
            replaces: order.replaces,
        };
        state.orders.insert(order.id, order.clone());
        Ok(order)
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        let mut state = self.lock();
        let authz = state
            .authzs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("no such authorization"))?;
        if !matches!(authz.status, AuthzStatus::Pending | AuthzStatus::Valid) {
            return Err(Error::malformed("authorization is not pending or valid"));
        }
        authz.status = AuthzStatus::Deactivated;
        Ok(())
    }

    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        let mut state = self.lock();
        if state.eab_keys.iter().any(|k| k.key_id == key.key_id) {
            return Err(Error::conflict("key id taken"));
        }
        state.eab_keys.push(key);
        Ok(())
    }

    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let key = state
            .eab_keys
            .iter_mut()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| Error::not_found("no such key"))?;
        key.revoked = true;
        Ok(())
    }

    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        _attempt: &str,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let authz = state
            .authzs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("no such authorization"))?;
        if authz.status != AuthzStatus::Pending {
            return Err(Error::malformed("authorization is not pending"));
        }
        let challenge = authz
            .challenges
            .iter_mut()
            .find(|c| c.kind == kind)
            .ok_or_else(|| Error::malformed("no such challenge"))?;
        challenge.status = ChallengeStatus::Processing;
        Ok(())
    }

    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let authz = state
            .authzs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("no such authorization"))?;
        authz.status = outcome.status;
        authz.expires = outcome.expires;
        let challenge = authz
            .challenges
            .iter_mut()
            .find(|c| c.kind == kind)
            .ok_or_else(|| Error::malformed("no such challenge"))?;
        challenge.status = match outcome.status {
            AuthzStatus::Valid => ChallengeStatus::Valid,
            _ => ChallengeStatus::Invalid,
        };
        challenge.validated = Some(outcome.validated_at);
        challenge.error = outcome.error;
        challenge.validation_records = outcome.records;
        Ok(())
    }

    async fn set_order_processing(&self, id: OrderId, _attempt: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let order = state
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("no such order"))?;
        if state.order_status(&order) != OrderStatus::Ready {
            return Err(Error::new(ErrorKind::OrderNotReady, "not ready"));
        }
        if let Some(order) = state.orders.get_mut(&id) {
            order.status = OrderStatus::Processing;
        }
        Ok(())
    }

    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        let mut state = self.lock();
        let order = state
            .orders
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("no such order"))?;
        if order.status != OrderStatus::Processing {
            return Err(Error::new(ErrorKind::OrderNotReady, "not processing"));
        }
        order.status = OrderStatus::Valid;
        order.certificate_serial = Some(serial.clone());
        Ok(())
    }

    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        let mut state = self.lock();
        let order = state
            .orders
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("no such order"))?;
        order.status = OrderStatus::Invalid;
        order.error = Some(error.clone());
        Ok(())
    }

    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let certificate = state
            .certificates
            .get_mut(serial)
            .ok_or_else(|| Error::not_found("no such serial"))?;
        if certificate.status == CertStatus::Revoked {
            return Err(Error::new(ErrorKind::AlreadyRevoked, "already revoked"));
        }
        certificate.status = CertStatus::Revoked;
        certificate.revoked_at = Some(revoked_at);
        certificate.revocation_reason = Some(reason);
        Ok(())
    }

    async fn block_key(&self, key: BlockedKey) -> Result<(), Error> {
        self.lock()
            .blocked_keys
            .entry(key.spki_sha256)
            .or_insert(key);
        Ok(())
    }

    async fn rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error> {
        let mut state = self.lock();
        let certificate = state
            .certificates
            .get_mut(serial)
            .ok_or_else(|| Error::not_found("no such serial"))?;
        match certificate.revocation_reason {
            _ if certificate.status != CertStatus::Revoked => Err(Error::conflict("not revoked")),
            Some(RevocationReason::KeyCompromise) => Err(Error::new(
                ErrorKind::AlreadyRevoked,
                "already keyCompromise",
            )),
            _ => {
                certificate.revocation_reason = Some(RevocationReason::KeyCompromise);
                Ok(())
            }
        }
    }

    async fn add_incident(&self, incident: NewIncident) -> Result<Incident, Error> {
        let mut state = self.lock();
        let id = state.id();
        let stored = Incident {
            id,
            name: incident.name,
            url: incident.url,
            created_at: t0(),
            serials: incident.serials.len() as u64,
        };
        state.incidents.push((stored.clone(), incident.serials));
        Ok(stored)
    }
}

#[async_trait]
impl CertificateStore for FakeSa {
    async fn add_serial(
        &self,
        _serial: &Serial,
        _account_id: AccountId,
        _created_at: OffsetDateTime,
        _expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        Err(Error::internal("the RA never adds serials"))
    }

    async fn add_precertificate(
        &self,
        _serial: &Serial,
        _der: &[u8],
        _account_id: AccountId,
        _issued_at: OffsetDateTime,
        _placement: &CrlPlacement,
    ) -> Result<(), Error> {
        Err(Error::internal("the RA never adds precertificates"))
    }

    async fn add_certificate(&self, _certificate: &CertificateRecord) -> Result<(), Error> {
        Err(Error::internal("the RA never adds certificates"))
    }
}

/// A VA that answers every request with the same, configurable result, after a
/// configurable delay.
struct FakeVa {
    result: Mutex<Result<ValidationResult, Error>>,
    /// How long each validation takes (none unless set).
    delay: Mutex<Duration>,
    requests: Mutex<Vec<ValidateRequest>>,
    /// What CAA rechecks answer, and the names they were asked about.
    caa: Mutex<Option<Error>>,
    caa_checks: Mutex<Vec<CaaCheck>>,
}

impl FakeVa {
    fn set(&self, result: Result<ValidationResult, Error>) {
        *self.result.lock().unwrap() = result;
    }

    fn set_caa(&self, problem: Option<Error>) {
        *self.caa.lock().unwrap() = problem;
    }
}

#[async_trait]
impl ValidationAuthority for FakeVa {
    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error> {
        self.requests.lock().unwrap().push(request);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.result.lock().unwrap().clone()
    }

    async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error> {
        self.caa_checks.lock().unwrap().push(request);
        Ok(self.caa.lock().unwrap().clone())
    }
}

/// A CA that returns a fixed certificate (or error) and records its calls; it
/// answers after `delay`, and when `gate` is set only once the gate is notified.
struct FakeCa {
    result: Mutex<Result<IssuedCertificate, Error>>,
    calls: Mutex<Vec<IssueRequest>>,
    gate: Mutex<Option<Arc<Notify>>>,
    /// How long each issuance takes (none unless set).
    delay: Mutex<Duration>,
}

impl FakeCa {
    /// Holds every issuance until the returned gate is notified.
    fn hold(&self) -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        *self.gate.lock().unwrap() = Some(gate.clone());
        gate
    }
}

#[async_trait]
impl CertificateAuthority for FakeCa {
    async fn issue_certificate(&self, request: IssueRequest) -> Result<IssuedCertificate, Error> {
        self.calls.lock().unwrap().push(request);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.result.lock().unwrap().clone()
    }
}

/// 2030-01-01T00:00:00Z, when every test starts.
fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
}

const PREFIX: &str = "https://acme.example/acme/acct/";
const THUMBPRINT: &str = "thumbprint-of-account-key";

struct Harness {
    ra: Ra,
    sa: Arc<FakeSa>,
    va: Arc<FakeVa>,
    ca: Arc<FakeCa>,
    clock: FixedClock,
}

fn harness() -> Harness {
    harness_with(RaSettings::with_defaults(PREFIX))
}

fn harness_with(settings: RaSettings) -> Harness {
    let sa = Arc::new(FakeSa::default());
    let va = Arc::new(FakeVa {
        result: Mutex::new(Ok(ValidationResult {
            records: vec![ValidationRecord {
                url: Some("http://a.example/.well-known/acme-challenge/x".into()),
                hostname: "a.example".into(),
                port: Some(80),
                addresses_resolved: vec!["192.0.2.1".parse().unwrap()],
                address_used: Some("192.0.2.1".parse().unwrap()),
                perspectives: Vec::new(),
            }],
            problem: None,
        })),
        delay: Mutex::new(Duration::ZERO),
        requests: Mutex::new(Vec::new()),
        caa: Mutex::new(None),
        caa_checks: Mutex::new(Vec::new()),
    });
    let ca = Arc::new(FakeCa {
        result: Mutex::new(Ok(IssuedCertificate {
            serial: "7f01020304050607".parse().unwrap(),
            der: vec![0x30, 0x00],
            chain: vec![vec![0x30, 0x01]],
        })),
        calls: Mutex::new(Vec::new()),
        gate: Mutex::new(None),
        delay: Mutex::new(Duration::ZERO),
    });
    let clock = FixedClock::new(t0());
    let ra = Ra::new(
        settings,
        sa.clone(),
        va.clone(),
        ca.clone(),
        Arc::new(clock.clone()),
    );
    Harness {
        ra,
        sa,
        va,
        ca,
        clock,
    }
}

impl Harness {
    /// After a refused finalize: nothing was signed, the order is still ready, and
    /// a CSR for another key finalizes it (the quick fake CA issues within the
    /// wait, so the answer is the valid order).
    async fn assert_finalizable_with_another_key(&self, order: OrderId) {
        assert!(
            self.ca.calls.lock().unwrap().is_empty(),
            "nothing is signed"
        );
        assert_eq!(
            self.sa.order(order).await.unwrap().status,
            OrderStatus::Ready
        );
        let finalized = self
            .ra
            .finalize_order(order, csr(&["a.example"]))
            .await
            .unwrap();
        assert_eq!(finalized.status, OrderStatus::Valid);
    }

    async fn account(&self, thumbprint: &str) -> Account {
        self.ra
            .new_account(NewAccount {
                key_jwk: fresh_jwk(),
                key_thumbprint: thumbprint.into(),
                contacts: vec!["mailto:admin@a.example".into()],
                eab_key_id: None,
                remote_ip: None,
            })
            .await
            .unwrap()
    }

    async fn order(&self, account: &Account, names: &[&str]) -> Order {
        self.ra
            .new_order(order_request(account.id, names))
            .await
            .unwrap()
    }

    /// Validates every pending authorization of `order` (others were reused valid)
    /// and waits for the outcomes.
    async fn validate_all(&self, order: &Order) {
        for id in &order.authz_ids {
            if self.sa.authz(*id).await.unwrap().status != AuthzStatus::Pending {
                continue;
            }
            self.ra
                .perform_validation(*id, ChallengeType::Http01)
                .await
                .unwrap();
        }
        self.ra.wait_for_background_work().await;
    }

    async fn ready_order(&self, names: &[&str]) -> Order {
        let account = self.account(THUMBPRINT).await;
        self.validated_order(&account, names).await
    }

    /// A new order of `account` for `names`, validated: ready.
    async fn validated_order(&self, account: &Account, names: &[&str]) -> Order {
        let order = self.order(account, names).await;
        self.validate_all(&order).await;
        let order = self.sa.order(order.id).await.unwrap();
        assert_eq!(order.status, OrderStatus::Ready);
        order
    }
}

/// A request for these DNS names under the default profile, with no window.
fn order_request(account_id: AccountId, names: &[&str]) -> OrderRequest {
    OrderRequest {
        account_id,
        identifiers: names.iter().copied().map(Identifier::dns).collect(),
        profile: None,
        not_before: None,
        not_after: None,
        replaces: None,
    }
}

fn csr(names: &[&str]) -> Vec<u8> {
    csr_for(&KeyPair::generate().unwrap(), names)
}

/// A CSR for these DNS names with `key`.
fn csr_for(key: &KeyPair, names: &[&str]) -> Vec<u8> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.serialize_request(key).unwrap().der().to_vec()
}

/// The canonical JWK of `key`, as the WFE passes account keys.
fn jwk_of(key: &KeyPair) -> String {
    spki_canonical_jwk(&key.subject_public_key_info()).unwrap()
}

/// The JWK of a fresh P-256 key.
fn fresh_jwk() -> String {
    jwk_of(&KeyPair::generate().unwrap())
}

#[tokio::test]
async fn new_order_creates_one_authz_per_identifier_with_every_challenge() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h
        .order(&account, &["b.example", "a.example", "b.example"])
        .await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(
        order.identifiers,
        vec![Identifier::dns("a.example"), Identifier::dns("b.example")]
    );
    let now = h.clock.now();
    assert_eq!(order.expires, now + time::Duration::days(7));
    assert_eq!(order.authz_ids.len(), 2);
    let mut tokens = Vec::new();
    for (id, identifier) in order.authz_ids.iter().zip(&order.identifiers) {
        let authz = h.sa.authz(*id).await.unwrap();
        assert_eq!(&authz.identifier, identifier);
        assert_eq!(authz.account_id, account.id);
        assert_eq!(authz.status, AuthzStatus::Pending);
        assert_eq!(authz.expires, now + time::Duration::days(7));
        assert!(!authz.wildcard);
        let kinds: Vec<ChallengeType> = authz.challenges.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01
            ]
        );
        for challenge in &authz.challenges {
            assert_eq!(challenge.status, ChallengeStatus::Pending);
            let token = URL_SAFE_NO_PAD.decode(&challenge.token).unwrap();
            assert!(token.len() * 8 >= 128, "token {:?}", challenge.token);
            assert!(!challenge.token.contains('='));
            tokens.push(challenge.token.clone());
        }
    }
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), tokens.len(), "tokens must be random");
}

/// A wildcard is authorized on its base name by dns-01 alone; an IP address by
/// http-01 or tls-alpn-01, never dns-01 (RFC 8738 §7).
#[tokio::test]
async fn challenges_follow_the_identifier() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["*.a.example"]).await;
    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(authz.identifier, Identifier::dns("a.example"));
    assert!(authz.wildcard);
    let kinds: Vec<ChallengeType> = authz.challenges.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChallengeType::Dns01]);
    assert_eq!(
        h.ra.perform_validation(authz.id, ChallengeType::Http01)
            .await
            .unwrap_err()
            .detail,
        "challenge type http-01 is not offered"
    );
}

#[tokio::test]
async fn bad_identifiers_give_one_error_with_subproblems() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let ids = vec![
        Identifier::dns("ok.example"),
        Identifier::dns("Upper.example"),
        Identifier::dns("*.example"),
        Identifier::dns("no_underscore.example"),
    ];
    let request = OrderRequest {
        identifiers: ids,
        ..order_request(account.id, &[])
    };
    let err = h.ra.new_order(request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    let bad: Vec<&str> = err
        .subproblems
        .iter()
        .map(|p| p.identifier.value.as_str())
        .collect();
    assert_eq!(
        bad,
        vec!["*.example", "Upper.example", "no_underscore.example"]
    );
    assert!(h.sa.lock().orders.is_empty(), "no order may be stored");
}

#[tokio::test]
async fn successful_validation_makes_the_order_ready() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let authz_id = order.authz_ids[0];
    let returned =
        h.ra.perform_validation(authz_id, ChallengeType::Http01)
            .await
            .unwrap();
    // The answer is read from the SA once the quick fake VA's outcome is recorded.
    assert_eq!(returned.status, AuthzStatus::Valid, "{returned:?}");
    assert_eq!(
        returned.challenges[0].status,
        ChallengeStatus::Valid,
        "{returned:?}"
    );
    h.ra.wait_for_background_work().await;

    let authz = h.sa.authz(authz_id).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Valid);
    assert_eq!(authz.expires, h.clock.now() + time::Duration::days(30));
    let challenge = &authz.challenges[0];
    assert_eq!(challenge.status, ChallengeStatus::Valid);
    assert_eq!(challenge.validated, Some(h.clock.now()));
    assert_eq!(challenge.validation_records.len(), 1);

    let requests = h.va.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.identifier, Identifier::dns("a.example"));
    assert_eq!(request.challenge, ChallengeType::Http01);
    assert_eq!(request.token, challenge.token);
    assert_eq!(
        request.key_authorization,
        format!("{}.{THUMBPRINT}", challenge.token)
    );
    assert_eq!(request.account_uri, format!("{PREFIX}{}", account.id));

    let order = h.sa.order(order.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Ready);

    // Now valid: a second attempt is refused and the VA is not asked again.
    let err =
        h.ra.perform_validation(authz_id, ChallengeType::Http01)
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.detail.contains("not pending"), "{}", err.detail);
    assert_eq!(h.va.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn validation_failure_makes_the_authz_invalid() {
    let h = harness();
    let problem = Error::new(
        ErrorKind::IncorrectResponse,
        "the key authorization differs",
    );
    h.va.set(Ok(ValidationResult {
        records: Vec::new(),
        problem: Some(problem.clone()),
    }));
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let before = h.sa.authz(order.authz_ids[0]).await.unwrap();
    h.validate_all(&order).await;

    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Invalid);
    assert_eq!(
        authz.expires, before.expires,
        "an invalid authz keeps its expiry"
    );
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Invalid);
    assert_eq!(authz.challenges[0].error, Some(problem));
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
}

#[tokio::test]
async fn va_errors_become_invalid_outcomes() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;

    h.va.set(Err(Error::new(ErrorKind::Connection, "connection refused")));
    let order = h.order(&account, &["a.example"]).await;
    h.validate_all(&order).await;
    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Invalid);
    let error = authz.challenges[0].error.clone().unwrap();
    assert_eq!(error.kind, ErrorKind::Connection);
    assert_eq!(error.detail, "connection refused");

    // Internal details stay in the logs.
    h.va.set(Err(Error::internal("resolver pool exhausted at 10.0.0.3")));
    let order = h.order(&account, &["b.example"]).await;
    h.validate_all(&order).await;
    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    let error = authz.challenges[0].error.clone().unwrap();
    assert_eq!(error.kind, ErrorKind::Internal);
    assert_eq!(error.detail, VALIDATION_INTERNAL);
}

#[tokio::test]
async fn perform_validation_checks_the_challenge_and_expiry() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let id = order.authz_ids[0];
    h.clock.advance(time::Duration::days(8));
    let err =
        h.ra.perform_validation(id, ChallengeType::Http01)
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.detail.contains("expired"), "{}", err.detail);
    assert!(h.va.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn repeated_validation_while_processing_starts_no_second_check() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let id = order.authz_ids[0];
    // As if an earlier request had started a validation that is still running.
    h.sa.set_challenge_processing(id, ChallengeType::Http01, "attempt")
        .await
        .unwrap();
    let authz =
        h.ra.perform_validation(id, ChallengeType::Http01)
            .await
            .unwrap();
    h.ra.wait_for_background_work().await;
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Processing);
    assert!(h.va.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn finalize_of_a_pending_order_is_not_ready() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OrderNotReady);
    assert!(err.detail.contains("pending"), "{}", err.detail);
    assert!(h.ca.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn finalize_with_mismatched_csr_is_bad_csr_and_keeps_the_order_ready() {
    let h = harness();
    let order = h.ready_order(&["a.example", "b.example"]).await;
    for names in [&["a.example"][..], &["a.example", "b.example", "c.example"]] {
        let err = h.ra.finalize_order(order.id, csr(names)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr, "{names:?}");
    }
    let err =
        h.ra.finalize_order(order.id, b"garbage".to_vec())
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadCsr);
    assert!(
        h.ca.calls.lock().unwrap().is_empty(),
        "the CA must not be called"
    );
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Ready
    );
}

/// A CSR for the account's own key is refused, and the order stays ready.
#[tokio::test]
async fn the_account_key_cannot_be_certified() {
    let h = harness();
    let key = KeyPair::generate().unwrap();
    let account_jwk = spki_canonical_jwk(&key.subject_public_key_info()).unwrap();
    let account =
        h.ra.new_account(NewAccount {
            key_jwk: account_jwk,
            key_thumbprint: THUMBPRINT.into(),
            contacts: Vec::new(),
            eab_key_id: None,
            remote_ip: None,
        })
        .await
        .unwrap();
    let order = h.order(&account, &["a.example"]).await;
    h.validate_all(&order).await;
    let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    let same_key = params.serialize_request(&key).unwrap().der().to_vec();
    let err = h.ra.finalize_order(order.id, same_key).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadCsr);
    assert!(err.detail.contains("account key"), "{err}");
    h.assert_finalizable_with_another_key(order.id).await;
}

/// A name validated over 7 hours ago has its CAA checked again at finalize; a
/// refusal is a `caa` problem naming it, and the order stays ready.
#[tokio::test]
async fn finalize_rechecks_caa_for_old_validations() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example", "b.example"]).await;
    h.validate_all(&order).await;
    // Fresh validations: no recheck.
    h.va.set_caa(Some(Error::new(ErrorKind::Caa, "CAA names another CA")));
    h.clock.advance(time::Duration::hours(6));
    let fresh = h.order(&account, &["c.example"]).await;
    h.validate_all(&fresh).await;
    h.ra.finalize_order(fresh.id, csr(&["c.example"]))
        .await
        .unwrap();
    assert!(h.va.caa_checks.lock().unwrap().is_empty());

    // Eight hours after the first order's validations: both names are rechecked.
    h.clock.advance(time::Duration::hours(2));
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example", "b.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Caa);
    let refused: Vec<&str> = err
        .subproblems
        .iter()
        .map(|sub| sub.identifier.value.as_str())
        .collect();
    assert_eq!(refused, ["a.example", "b.example"]);
    let checks = h.va.caa_checks.lock().unwrap().clone();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].method, ChallengeType::Http01);
    assert!(
        checks[0]
            .account_uri
            .ends_with(&order.account_id.to_string())
    );
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Ready
    );

    // CAA allows again: the order is finalized.
    h.va.set_caa(None);
    let finalized =
        h.ra.finalize_order(order.id, csr(&["a.example", "b.example"]))
            .await
            .unwrap();
    assert_eq!(finalized.status, OrderStatus::Valid);
}

/// The CA has not answered when `issuance_wait` runs out: finalize answers
/// `processing` then, and the issuance completes in the background.
#[tokio::test(start_paused = true)]
async fn finalize_returns_processing_then_issues_in_the_background() {
    let h = harness();
    let order = h.ready_order(&["a.example", "b.example"]).await;
    let der = csr(&["b.example", "a.example"]);
    let gate = h.ca.hold();
    let (finalized, elapsed) = timed(h.ra.finalize_order(order.id, der.clone())).await;
    assert!(elapsed >= DEFAULT_ISSUANCE_WAIT);
    assert_eq!(finalized.status, OrderStatus::Processing);
    assert_eq!(finalized.certificate_serial, None);
    // While the CA works, the order stays processing and cannot be finalized again.
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example", "b.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OrderNotReady);
    assert!(err.detail.contains("processing"), "{}", err.detail);

    gate.notify_one();
    h.ra.wait_for_background_work().await;
    let done = h.sa.order(order.id).await.unwrap();
    assert_eq!(done.status, OrderStatus::Valid);
    assert_eq!(
        done.certificate_serial,
        Some("7f01020304050607".parse().unwrap())
    );
    let calls = h.ca.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![IssueRequest {
            csr_der: der,
            account_id: order.account_id,
            order_id: order.id,
            identifiers: order.identifiers.clone(),
            profile: CLASSIC.to_owned(),
            not_before: None,
            not_after: None,
        }]
    );
    // A valid order cannot be finalized again.
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example", "b.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OrderNotReady);
    assert_eq!(h.ca.calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn ca_error_makes_the_order_invalid_in_the_background_without_leaking_details() {
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    *h.ca.result.lock().unwrap() = Err(Error::internal("HSM session closed: slot 3"));
    let gate = h.ca.hold();
    let finalized =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap();
    assert_eq!(finalized.status, OrderStatus::Processing);
    gate.notify_one();
    h.ra.wait_for_background_work().await;
    let order = h.sa.order(order.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Invalid);
    assert_eq!(order.error, Some(Error::internal(FINALIZE_INTERNAL)));
    assert_eq!(order.certificate_serial, None);

    // A non-internal CA error is stored as it is; a quick one is the answer.
    let h = harness();
    let order = h.ready_order(&["a.example"]).await;
    let cause = Error::new(ErrorKind::BadCsr, "lint failed: name too long");
    *h.ca.result.lock().unwrap() = Err(cause.clone());
    let finalized =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap();
    assert_eq!(finalized.status, OrderStatus::Invalid);
    assert_eq!(finalized.error, Some(cause.clone()));
    h.ra.wait_for_background_work().await;
    let order = h.sa.order(order.id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Invalid);
    assert_eq!(order.error, Some(cause));
}

/// The common case: the CA answers within `issuance_wait`, and finalize answers
/// with the valid order and its certificate as soon as the CA has answered.
#[tokio::test(start_paused = true)]
async fn finalize_answers_valid_when_the_ca_is_quick() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.validated_order(&account, &["a.example"]).await;
    let (finalized, elapsed) = timed(h.ra.finalize_order(order.id, csr(&["a.example"]))).await;
    assert_eq!(elapsed, Duration::ZERO);
    assert_eq!(finalized.status, OrderStatus::Valid);
    assert_eq!(
        finalized.certificate_serial,
        Some("7f01020304050607".parse().unwrap())
    );

    // A CA slower than that but within the wait: the answer comes when it does.
    let order = h.validated_order(&account, &["b.example"]).await;
    *h.ca.delay.lock().unwrap() = Duration::from_secs(3);
    let (finalized, elapsed) = timed(h.ra.finalize_order(order.id, csr(&["b.example"]))).await;
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < DEFAULT_ISSUANCE_WAIT,
        "{elapsed:?}"
    );
    assert_eq!(finalized.status, OrderStatus::Valid);
    assert_eq!(h.ca.calls.lock().unwrap().len(), 2);
}

/// A CA slower than `issuance_wait`: `processing` when the wait runs out, and
/// the certificate once the CA answers, with no request waiting any more.
#[tokio::test(start_paused = true)]
async fn finalize_answers_processing_when_the_ca_is_slower_than_the_wait() {
    let mut settings = RaSettings::with_defaults(PREFIX);
    settings.issuance_wait = Duration::from_secs(2);
    let h = harness_with(settings);
    let order = h.ready_order(&["a.example"]).await;
    *h.ca.delay.lock().unwrap() = Duration::from_secs(3);
    let started = tokio::time::Instant::now();
    let finalized =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(finalized.status, OrderStatus::Processing);
    assert_eq!(finalized.certificate_serial, None);
    h.ra.wait_for_background_work().await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    let done = h.sa.order(order.id).await.unwrap();
    assert_eq!(done.status, OrderStatus::Valid);
    assert!(done.certificate_serial.is_some());
}

/// `issuance_wait = 0s` is the old behaviour: `processing` at once, even from a
/// CA that would answer at once.
#[tokio::test(start_paused = true)]
async fn a_zero_issuance_wait_answers_processing_at_once() {
    let mut settings = RaSettings::with_defaults(PREFIX);
    settings.issuance_wait = Duration::ZERO;
    let h = harness_with(settings);
    let order = h.ready_order(&["a.example"]).await;
    let finalized =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap();
    assert_eq!(finalized.status, OrderStatus::Processing);
    h.ra.wait_for_background_work().await;
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Valid
    );
}

/// A finalize request dropped while it waits (its caller's deadline passed) takes
/// only its wait with it: the issuance completes. Other requests are served while
/// one waits, and a wait ends when its issuance does.
#[tokio::test(start_paused = true)]
async fn a_dropped_finalize_leaves_the_issuance_running() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.validated_order(&account, &["a.example"]).await;
    let other = h.validated_order(&account, &["b.example"]).await;
    let gate = h.ca.hold();
    let dropped = tokio::time::timeout(
        Duration::from_secs(1),
        h.ra.finalize_order(order.id, csr(&["a.example"])),
    )
    .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Processing
    );
    let started = tokio::time::Instant::now();
    let meanwhile = async {
        h.account("another-account").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        gate.notify_waiters();
    };
    let (waiting, ()) = tokio::join!(
        h.ra.finalize_order(other.id, csr(&["b.example"])),
        meanwhile
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < DEFAULT_ISSUANCE_WAIT,
        "{elapsed:?}"
    );
    assert_eq!(waiting.unwrap().status, OrderStatus::Valid);
    h.ra.wait_for_background_work().await;
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Valid
    );
    assert_eq!(h.ca.calls.lock().unwrap().len(), 2);
}

/// What `call` returned, and how long it took (on the paused clock).
async fn timed<T>(call: impl Future<Output = Result<T, Error>>) -> (T, Duration) {
    let started = tokio::time::Instant::now();
    let answer = call.await.unwrap();
    (answer, started.elapsed())
}

/// A quick validation is answered finished: the challenge and the authorization
/// valid, or invalid with the VA's problem.
#[tokio::test(start_paused = true)]
async fn a_quick_validation_is_answered_finished() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let (authz, elapsed) =
        timed(h.ra.perform_validation(order.authz_ids[0], ChallengeType::Http01)).await;
    assert_eq!(elapsed, Duration::ZERO);
    assert_eq!(authz.status, AuthzStatus::Valid);
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Valid);

    let problem = Error::new(ErrorKind::Unauthorized, "404 at the token's URL");
    h.va.set(Ok(ValidationResult {
        records: Vec::new(),
        problem: Some(problem.clone()),
    }));
    *h.va.delay.lock().unwrap() = Duration::from_millis(600);
    let order = h.order(&account, &["b.example"]).await;
    let (authz, elapsed) =
        timed(h.ra.perform_validation(order.authz_ids[0], ChallengeType::Http01)).await;
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < DEFAULT_VALIDATION_WAIT,
        "{elapsed:?}"
    );
    assert_eq!(authz.status, AuthzStatus::Invalid);
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Invalid);
    assert_eq!(authz.challenges[0].error, Some(problem));
}

/// A VA slower than `validation_wait`: the challenge is answered `processing`
/// when the wait runs out, and the outcome is recorded once the VA answers.
#[tokio::test(start_paused = true)]
async fn a_slow_validation_is_answered_processing_then_recorded() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    *h.va.delay.lock().unwrap() = Duration::from_secs(3);
    let (authz, elapsed) =
        timed(h.ra.perform_validation(order.authz_ids[0], ChallengeType::Http01)).await;
    assert!(
        elapsed >= DEFAULT_VALIDATION_WAIT && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(authz.status, AuthzStatus::Pending);
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Processing);
    h.ra.wait_for_background_work().await;
    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(authz.status, AuthzStatus::Valid);
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Valid);

    // With no wait, processing at once, however quick the VA.
    let mut settings = RaSettings::with_defaults(PREFIX);
    settings.validation_wait = Duration::ZERO;
    let h = harness_with(settings);
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    let authz =
        h.ra.perform_validation(order.authz_ids[0], ChallengeType::Http01)
            .await
            .unwrap();
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Processing);
    h.ra.wait_for_background_work().await;
    assert_eq!(
        h.sa.authz(order.authz_ids[0]).await.unwrap().status,
        AuthzStatus::Valid
    );
}

#[tokio::test]
async fn revocation_checks_the_owner_and_passes_already_revoked_through() {
    let h = harness();
    let owner = h.account("owner").await;
    let other = h.account("other").await;
    let der = certificate_for(&KeyPair::generate().unwrap());
    let serial = h.sa.add_certificate_with(owner.id, "0a0b0c0d0e0f1011", der);

    let err =
        h.ra.revoke_certificate(RevokeRequest {
            serial: serial.clone(),
            reason: RevocationReason::KeyCompromise,
            requester: Requester::Account(other.id),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(
        err.detail,
        "the certificate was issued to another account, and this account does not hold valid \
         authorizations for all of its names"
    );
    assert_eq!(
        h.sa.certificate(&serial).await.unwrap().status,
        CertStatus::Good
    );

    let request = RevokeRequest {
        serial: serial.clone(),
        reason: RevocationReason::Superseded,
        requester: Requester::Account(owner.id),
    };
    h.ra.revoke_certificate(request.clone()).await.unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(record.status, CertStatus::Revoked);
    assert_eq!(record.revoked_at, Some(h.clock.now()));
    assert_eq!(record.revocation_reason, Some(RevocationReason::Superseded));

    let err = h.ra.revoke_certificate(request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyRevoked);
}

#[tokio::test]
async fn revoking_an_unknown_serial_is_not_found() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let err =
        h.ra.revoke_certificate(RevokeRequest {
            serial: "01".parse().unwrap(),
            reason: RevocationReason::Unspecified,
            requester: Requester::Account(account.id),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.detail, "certificate not found");
}

#[tokio::test]
async fn new_account_checks_contacts() {
    let h = harness();
    let new = |contacts: &[&str]| NewAccount {
        key_jwk: fresh_jwk(),
        key_thumbprint: format!("key-{}", contacts.join("|")),
        contacts: contacts.iter().map(|c| c.to_string()).collect(),
        eab_key_id: None,
        remote_ip: None,
    };
    for good in [
        &[][..],
        &["mailto:admin@a.example"],
        &[
            "mailto:first.last+tag@Mail.Example.com",
            "MAILTO:b@a.example",
        ],
    ] {
        h.ra.new_account(new(good)).await.unwrap();
    }
    let cases = [
        ("https://a.example/contact", ErrorKind::UnsupportedContact),
        ("tel:+15555550100", ErrorKind::UnsupportedContact),
        ("admin@a.example", ErrorKind::UnsupportedContact),
        (
            "mailto:admin@a.example?subject=hi",
            ErrorKind::InvalidContact,
        ),
        ("mailto:a@a.example,b@a.example", ErrorKind::InvalidContact),
        ("mailto:a%40b@a.example", ErrorKind::InvalidContact),
        ("mailto:", ErrorKind::InvalidContact),
        ("mailto:admin", ErrorKind::InvalidContact),
        ("mailto:@a.example", ErrorKind::InvalidContact),
        ("mailto:a..b@a.example", ErrorKind::InvalidContact),
        ("mailto:a b@a.example", ErrorKind::InvalidContact),
        ("mailto:admin@localhost", ErrorKind::InvalidContact),
        ("mailto:admin@a..example", ErrorKind::InvalidContact),
        ("mailto:admin@192.0.2.1", ErrorKind::InvalidContact),
    ];
    for (contact, kind) in cases {
        let err = h.ra.new_account(new(&[contact])).await.unwrap_err();
        assert_eq!(err.kind, kind, "{contact:?}: {err}");
    }
    let many: Vec<String> = (0..11).map(|i| format!("mailto:a{i}@a.example")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = h.ra.new_account(new(&many)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidContact);
    // Only the valid accounts were stored.
    assert_eq!(h.sa.lock().accounts.len(), 3);
}

#[tokio::test]
async fn orders_do_not_outlive_their_authorizations() {
    let mut settings = RaSettings::with_defaults(PREFIX);
    let classic = settings.profiles.get_mut(CLASSIC).unwrap();
    classic.order_lifetime = Duration::from_secs(30 * 86_400);
    classic.pending_authz_lifetime = Duration::from_secs(86_400);
    let h = harness();
    let ra = Ra::new(
        settings,
        h.sa.clone(),
        h.va.clone(),
        h.ca.clone(),
        Arc::new(h.clock.clone()),
    );
    let account = h.account(THUMBPRINT).await;
    let order = ra
        .new_order(order_request(account.id, &["a.example"]))
        .await
        .unwrap();
    assert_eq!(order.expires, h.clock.now() + time::Duration::days(1));
}

/// A certificate for `key`, DER (self-signed: the RA only reads its key).
fn certificate_for(key: &KeyPair) -> Vec<u8> {
    CertificateParams::new(vec!["a.example".to_owned()])
        .unwrap()
        .self_signed(key)
        .unwrap()
        .der()
        .to_vec()
}

#[tokio::test]
async fn key_signed_revocation_needs_the_certificate_key() {
    let h = harness();
    let owner = h.account("owner").await;
    let key = KeyPair::generate().unwrap();
    let serial =
        h.sa.add_certificate_with(owner.id, "0a0b0c0d0e0f1011", certificate_for(&key));
    let request = |spki: Vec<u8>, reason| RevokeRequest {
        serial: serial.clone(),
        reason,
        requester: Requester::CertificateKey(spki),
    };

    let stranger = KeyPair::generate().unwrap();
    for spki in [stranger.subject_public_key_info(), Vec::new()] {
        let err =
            h.ra.revoke_certificate(request(spki, RevocationReason::KeyCompromise))
                .await
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert_eq!(
            err.detail,
            "the request was not signed by the certificate's key"
        );
    }
    assert_eq!(
        h.sa.certificate(&serial).await.unwrap().status,
        CertStatus::Good
    );

    // The right key may revoke whatever reason it gives; as Boulder, the recorded
    // reason is keyCompromise.
    h.ra.revoke_certificate(request(
        key.subject_public_key_info(),
        RevocationReason::Superseded,
    ))
    .await
    .unwrap();
    let record = h.sa.certificate(&serial).await.unwrap();
    assert_eq!(record.status, CertStatus::Revoked);
    assert_eq!(record.revoked_at, Some(h.clock.now()));
    assert_eq!(
        record.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
}

#[tokio::test]
async fn key_signed_revocation_of_an_unreadable_stored_certificate_is_internal() {
    let h = harness();
    let owner = h.account("owner").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    let key = KeyPair::generate().unwrap();
    let err =
        h.ra.revoke_certificate(RevokeRequest {
            serial,
            reason: RevocationReason::KeyCompromise,
            requester: Requester::CertificateKey(key.subject_public_key_info()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
}

#[tokio::test]
async fn update_contacts_checks_them_and_the_account() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let contacts = vec![
        "mailto:new@a.example".to_owned(),
        "mailto:other@b.example".to_owned(),
    ];
    let updated =
        h.ra.update_account_contacts(account.id, contacts.clone())
            .await
            .unwrap();
    assert_eq!(updated.contacts, contacts);
    assert_eq!(h.sa.account(account.id).await.unwrap().contacts, contacts);

    // Emptying the list is allowed.
    let updated =
        h.ra.update_account_contacts(account.id, Vec::new())
            .await
            .unwrap();
    assert!(updated.contacts.is_empty());

    for (contact, kind) in [
        ("tel:+15555550100", ErrorKind::UnsupportedContact),
        ("mailto:admin@localhost", ErrorKind::InvalidContact),
    ] {
        let err =
            h.ra.update_account_contacts(account.id, vec![contact.to_owned()])
                .await
                .unwrap_err();
        assert_eq!(err.kind, kind, "{contact}");
    }
    assert!(h.sa.account(account.id).await.unwrap().contacts.is_empty());

    h.ra.deactivate_account(account.id).await.unwrap();
    let err =
        h.ra.update_account_contacts(account.id, contacts)
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.detail, "account is deactivated");
    assert!(h.sa.account(account.id).await.unwrap().contacts.is_empty());
}

#[tokio::test]
async fn deactivate_account_only_once() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let other = h.account("other").await;
    let deactivated = h.ra.deactivate_account(account.id).await.unwrap();
    assert_eq!(deactivated.status, AccountStatus::Deactivated);
    assert_eq!(
        h.sa.account(account.id).await.unwrap().status,
        AccountStatus::Deactivated
    );
    assert_eq!(
        h.sa.account(other.id).await.unwrap().status,
        AccountStatus::Valid
    );
    let err = h.ra.deactivate_account(account.id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.detail, "account is deactivated");

    let err = h.ra.deactivate_account(AccountId(999)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccountDoesNotExist);
}

#[tokio::test]
async fn rollover_replaces_the_key_and_passes_conflicts_through() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let other = h.account("other").await;

    let new_jwk = fresh_jwk();
    let rolled =
        h.ra.rollover_account_key(account.id, new_jwk.clone(), "new-thumbprint".into())
            .await
            .unwrap();
    assert_eq!(rolled.key_thumbprint, "new-thumbprint");
    assert_eq!(rolled.key_jwk, new_jwk);
    let stored = h.sa.account_by_key("new-thumbprint").await.unwrap();
    assert_eq!(stored.id, account.id);
    assert!(h.sa.account_by_key(THUMBPRINT).await.is_err());

    // The key of another account: the SA's Conflict comes back unchanged.
    let err =
        h.ra.rollover_account_key(account.id, fresh_jwk(), other.key_thumbprint.clone())
            .await
            .unwrap_err();
    assert_eq!(err, Error::conflict("key in use by another account"));
    assert_eq!(
        h.sa.account(account.id).await.unwrap().key_thumbprint,
        "new-thumbprint"
    );

    let err =
        h.ra.rollover_account_key(account.id, fresh_jwk(), "new-thumbprint".into())
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);

    h.ra.deactivate_account(other.id).await.unwrap();
    let err =
        h.ra.rollover_account_key(other.id, fresh_jwk(), "third".into())
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(
        h.sa.account(other.id).await.unwrap().key_thumbprint,
        "other"
    );
}

#[tokio::test]
async fn deactivate_authz_returns_the_stored_authz() {
    let h = harness();
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example", "b.example"]).await;
    let id = order.authz_ids[0];
    let authz = h.ra.deactivate_authz(id).await.unwrap();
    assert_eq!(authz.id, id);
    assert_eq!(authz.status, AuthzStatus::Deactivated);
    assert_eq!(
        h.sa.authz(id).await.unwrap().status,
        AuthzStatus::Deactivated
    );
    assert_eq!(
        h.sa.authz(order.authz_ids[1]).await.unwrap().status,
        AuthzStatus::Pending
    );
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Invalid
    );
    // The SA's refusal passes through.
    let err = h.ra.deactivate_authz(id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    let err = h.ra.deactivate_authz(AuthzId(999)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

/// `classic` (the default) and `shortlived`: 160h certificates, IP identifiers, at
/// most 2 names, 7h pending authorizations and 6h orders.
fn two_profiles() -> RaSettings {
    let mut settings = RaSettings::with_defaults(PREFIX);
    settings.profiles.insert(
        "shortlived".to_owned(),
        ProfileSettings {
            policy: IdentifierPolicy {
                allow_ip_identifiers: true,
                max_names: 2,
                ..IdentifierPolicy::default()
            },
            validity: Duration::from_secs(160 * 3600),
            pending_authz_lifetime: Duration::from_secs(7 * 3600),
            order_lifetime: Duration::from_secs(6 * 3600),
            valid_authz_lifetime: Duration::from_secs(30 * DAY),
        },
    );
    settings
}

fn in_profile(account_id: AccountId, names: &[&str], profile: &str) -> OrderRequest {
    OrderRequest {
        profile: Some(profile.to_owned()),
        ..order_request(account_id, names)
    }
}

#[tokio::test]
async fn orders_get_the_default_profile_or_the_one_they_name() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    assert_eq!(order.profile, "classic");
    assert_eq!(h.sa.lock().orders[&order.id].profile, "classic");

    let now = h.clock.now();
    let order =
        h.ra.new_order(in_profile(account.id, &["a.example"], "shortlived"))
            .await
            .unwrap();
    assert_eq!(order.profile, "shortlived");
    // The profile's lifetimes: a 6h order, 7h pending authorizations.
    assert_eq!(order.expires, now + time::Duration::hours(6));
    let authz = h.sa.authz(order.authz_ids[0]).await.unwrap();
    assert_eq!(authz.expires, now + time::Duration::hours(7));

    // Another default profile.
    let mut settings = two_profiles();
    settings.default_profile = "shortlived".to_owned();
    let h = harness_with(settings);
    let account = h.account(THUMBPRINT).await;
    let order = h.order(&account, &["a.example"]).await;
    assert_eq!(order.profile, "shortlived");
}

#[tokio::test]
async fn an_unknown_profile_is_refused_with_the_offered_names() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let cases = [
        (
            "gold",
            "profile gold is not offered (offered: classic, shortlived)",
        ),
        (
            "",
            "profile \"\" is not offered (offered: classic, shortlived)",
        ),
        (
            "Classic\n",
            "profile \"Classic\\n\" is not offered (offered: classic, shortlived)",
        ),
    ];
    for (name, detail) in cases {
        let err =
            h.ra.new_order(in_profile(account.id, &["a.example"], name))
                .await
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidProfile, "{name:?}");
        assert_eq!(err.detail, detail);
    }
    let long = "x".repeat(10_000);
    let err =
        h.ra.new_order(in_profile(account.id, &["a.example"], &long))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidProfile);
    assert!(err.detail.len() < 200, "{}", err.detail);
    assert!(h.sa.lock().orders.is_empty(), "no order may be stored");
}

#[tokio::test]
async fn identifier_policy_is_per_profile() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let ip = |profile: Option<&str>| OrderRequest {
        identifiers: vec![Identifier::dns("a.example"), Identifier::ip("192.0.2.1")],
        profile: profile.map(str::to_owned),
        ..order_request(account.id, &[])
    };
    let err = h.ra.new_order(ip(None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    assert_eq!(err.subproblems.len(), 1);
    assert_eq!(err.subproblems[0].identifier, Identifier::ip("192.0.2.1"));
    let err = h.ra.new_order(ip(Some("classic"))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    assert!(h.sa.lock().orders.is_empty());

    let order = h.ra.new_order(ip(Some("shortlived"))).await.unwrap();
    assert!(order.identifiers.contains(&Identifier::ip("192.0.2.1")));
    for id in &order.authz_ids {
        let authz = h.sa.authz(*id).await.unwrap();
        if authz.identifier.kind == IdentifierType::Ip {
            let kinds: Vec<ChallengeType> = authz.challenges.iter().map(|c| c.kind).collect();
            assert_eq!(kinds, [ChallengeType::Http01, ChallengeType::TlsAlpn01]);
        }
    }

    // max_names is the profile's too: 2 for shortlived, 100 for classic.
    let three = ["a.example", "b.example", "c.example"];
    let err =
        h.ra.new_order(in_profile(account.id, &three, "shortlived"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(
        err.detail.contains("at most 2 identifiers"),
        "{}",
        err.detail
    );
    h.ra.new_order(order_request(account.id, &three))
        .await
        .unwrap();
}

fn window(
    account_id: AccountId,
    profile: &str,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
) -> OrderRequest {
    OrderRequest {
        not_before,
        not_after,
        ..in_profile(account_id, &["a.example"], profile)
    }
}

#[tokio::test]
async fn a_requested_window_within_the_profile_is_stored() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let now = h.clock.now();
    let hours = time::Duration::hours;
    let cases = [
        (
            "classic",
            Some(now - hours(1)),
            Some(now + time::Duration::days(89)),
        ),
        ("classic", Some(now + time::Duration::days(7)), None),
        ("classic", None, Some(now + time::Duration::days(90))),
        ("shortlived", Some(now + hours(6)), Some(now + hours(166))),
        ("shortlived", None, Some(now + hours(160))),
        ("shortlived", None, None),
    ];
    for (profile, not_before, not_after) in cases {
        let order =
            h.ra.new_order(window(account.id, profile, not_before, not_after))
                .await
                .unwrap_or_else(|err| panic!("{profile} {not_before:?} {not_after:?}: {err}"));
        assert_eq!(order.not_before, not_before);
        assert_eq!(order.not_after, not_after);
        let stored = h.sa.order(order.id).await.unwrap();
        assert_eq!(
            (stored.not_before, stored.not_after),
            (not_before, not_after)
        );
    }
}

#[tokio::test]
async fn each_kind_of_window_violation_is_refused() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let now = h.clock.now();
    let hours = time::Duration::hours;
    let second = time::Duration::SECOND;
    let cases = [
        (
            "classic",
            Some(now - hours(1) - second),
            None,
            "notBefore may be at most 1h in the past",
        ),
        (
            "classic",
            Some(now + time::Duration::days(7) + second),
            None,
            "notBefore must not be later than the order's expiry",
        ),
        // The shortlived order lives 6h.
        (
            "shortlived",
            Some(now + hours(6) + second),
            None,
            "notBefore must not be later than the order's expiry",
        ),
        (
            "classic",
            Some(now + hours(2)),
            Some(now + hours(1)),
            "notAfter must be later than notBefore",
        ),
        (
            "classic",
            None,
            Some(now),
            "notAfter must be later than the current time",
        ),
        (
            "classic",
            None,
            Some(now + time::Duration::days(90) + second),
            "the requested validity is longer than this profile's limit of 90d",
        ),
        (
            "shortlived",
            Some(now + hours(1)),
            Some(now + hours(161) + second),
            "the requested validity is longer than this profile's limit of 160h",
        ),
    ];
    for (profile, not_before, not_after, detail) in cases {
        let err =
            h.ra.new_order(window(account.id, profile, not_before, not_after))
                .await
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{detail}");
        assert_eq!(err.detail, detail);
    }
    assert!(h.sa.lock().orders.is_empty(), "no order may be stored");
}

#[tokio::test]
async fn finalize_sends_the_profile_and_window_to_the_ca() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let now = h.clock.now();
    let not_before = Some(now + time::Duration::hours(1));
    let not_after = Some(now + time::Duration::hours(100));
    let order =
        h.ra.new_order(window(account.id, "shortlived", not_before, not_after))
            .await
            .unwrap();
    h.validate_all(&order).await;
    let der = csr(&["a.example"]);
    h.ra.finalize_order(order.id, der.clone()).await.unwrap();
    h.ra.wait_for_background_work().await;
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Valid
    );
    let calls = h.ca.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![IssueRequest {
            csr_der: der,
            account_id: account.id,
            order_id: order.id,
            identifiers: vec![Identifier::dns("a.example")],
            profile: "shortlived".to_owned(),
            not_before,
            not_after,
        }]
    );
}

#[tokio::test]
async fn finalize_refuses_a_passed_not_after_and_a_withdrawn_profile() {
    let h = harness_with(two_profiles());
    let account = h.account(THUMBPRINT).await;
    let not_after = Some(h.clock.now() + time::Duration::hours(2));
    let order =
        h.ra.new_order(window(account.id, "classic", None, not_after))
            .await
            .unwrap();
    h.validate_all(&order).await;
    h.clock.advance(time::Duration::hours(2));
    let err =
        h.ra.finalize_order(order.id, csr(&["a.example"]))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert_eq!(err.detail, "the order's notAfter has passed");

    // An RA restarted without the order's profile.
    let order =
        h.ra.new_order(in_profile(account.id, &["a.example"], "shortlived"))
            .await
            .unwrap();
    h.validate_all(&order).await;
    let ra = Ra::new(
        RaSettings::with_defaults(PREFIX),
        h.sa.clone(),
        h.va.clone(),
        h.ca.clone(),
        Arc::new(h.clock.clone()),
    );
    let err = ra
        .finalize_order(order.id, csr(&["a.example"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidProfile);
    assert_eq!(err.detail, "profile shortlived is no longer offered");
    assert!(h.ca.calls.lock().unwrap().is_empty());
    assert_eq!(
        h.sa.order(order.id).await.unwrap().status,
        OrderStatus::Ready
    );
}

fn replacing(account_id: AccountId, serial: &Serial) -> OrderRequest {
    OrderRequest {
        replaces: Some(serial.clone()),
        ..order_request(account_id, &["a.example"])
    }
}

#[tokio::test]
async fn the_owner_may_replace_a_certificate_once() {
    let h = harness();
    let owner = h.account("owner").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    let order = h.ra.new_order(replacing(owner.id, &serial)).await.unwrap();
    assert_eq!(order.replaces, Some(serial.clone()));
    assert_eq!(
        h.sa.replacement_order(&serial).await.unwrap(),
        Some(order.id)
    );

    let err =
        h.ra.new_order(replacing(owner.id, &serial))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyReplaced);
    assert_eq!(
        err.detail,
        format!(
            "certificate {serial} was already replaced by order {}",
            order.id
        )
    );

    // Once the replacing order is invalid, another may replace the certificate.
    h.ra.deactivate_authz(order.authz_ids[0]).await.unwrap();
    let again = h.ra.new_order(replacing(owner.id, &serial)).await.unwrap();
    assert_eq!(again.replaces, Some(serial));
}

#[tokio::test]
async fn the_sas_already_replaced_passes_through() {
    let h = harness();
    let owner = h.account("owner").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    h.ra.new_order(replacing(owner.id, &serial)).await.unwrap();
    h.sa.lock().hide_replacements = true;
    let err =
        h.ra.new_order(replacing(owner.id, &serial))
            .await
            .unwrap_err();
    assert_eq!(
        err,
        Error::new(
            ErrorKind::AlreadyReplaced,
            "replaced already (the fake SA's check)"
        )
    );
    assert_eq!(h.sa.lock().orders.len(), 1);
}

#[tokio::test]
async fn only_the_owner_may_replace_a_known_certificate() {
    let h = harness();
    let owner = h.account("owner").await;
    let other = h.account("other").await;
    let serial = h.sa.add_certificate_for(owner.id, "0a0b0c0d0e0f1011");
    let err =
        h.ra.new_order(replacing(other.id, &serial))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(
        err.detail,
        "the replaced certificate was issued to another account"
    );

    let unknown: Serial = "0102".parse().unwrap();
    let err =
        h.ra.new_order(replacing(owner.id, &unknown))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert_eq!(
        err.detail,
        format!("the replaced certificate {unknown} is unknown")
    );
    assert!(h.sa.lock().orders.is_empty(), "no order may be stored");
}

#[tokio::test]
async fn the_eab_key_id_reaches_the_sa() {
    let h = harness();
    h.sa.add_eab_key(EabKey {
        key_id: "kid-1".to_owned(),
        hmac_key: vec![7; 32],
        comment: "for a test".to_owned(),
        created_at: t0(),
        revoked: false,
        account_id: None,
    })
    .await
    .unwrap();
    let account =
        h.ra.new_account(NewAccount {
            key_jwk: fresh_jwk(),
            key_thumbprint: THUMBPRINT.into(),
            contacts: Vec::new(),
            eab_key_id: Some("kid-1".to_owned()),
            remote_ip: None,
        })
        .await
        .unwrap();
    assert_eq!(
        h.sa.lock()
            .new_accounts
            .last()
            .unwrap()
            .eab_key_id
            .as_deref(),
        Some("kid-1")
    );
    assert_eq!(
        h.sa.eab_key("kid-1").await.unwrap().account_id,
        Some(account.id)
    );
    // The SA's refusal (the key is bound already) passes through.
    let err =
        h.ra.new_account(NewAccount {
            key_jwk: fresh_jwk(),
            key_thumbprint: "second".into(),
            contacts: Vec::new(),
            eab_key_id: Some("kid-1".to_owned()),
            remote_ip: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err, Error::unauthorized("unusable key"));
}

#[tokio::test]
async fn background_sa_writes_wait_out_an_unavailable_sa() {
    use std::sync::atomic::AtomicU32;
    use std::sync::atomic::Ordering;

    // Unavailable twice, then the SA is back: the write goes through.
    let calls = AtomicU32::new(0);
    sa_write_with_patience("test", Duration::from_secs(5), || async {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(Error::unavailable("sa restarting")),
            _ => Ok(()),
        }
    })
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Any other failure is final at once.
    let calls = AtomicU32::new(0);
    let err = sa_write_with_patience("test", Duration::from_secs(5), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(Error::malformed("order is valid"))
    })
    .await
    .unwrap_err();
    assert_eq!(
        (err.kind, calls.load(Ordering::SeqCst)),
        (ErrorKind::Malformed, 1)
    );

    // Patience runs out: the last unavailable comes back.
    let calls = AtomicU32::new(0);
    let started = std::time::Instant::now();
    let err = sa_write_with_patience("test", Duration::from_millis(700), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(Error::unavailable("sa down"))
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    // Tries at 0, 200 ms and 600 ms; the next wait (800 ms) would pass the deadline.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() < Duration::from_secs(2));
}

mod blocked_keys;
mod policy;
