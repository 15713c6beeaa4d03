//! The registration authority itself.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::CertificateAuthority;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::NewAccount;
use basalt_core::NewAuthz;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderStatus;
use basalt_core::RegistrationAuthority;
use basalt_core::RevokeRequest;
use basalt_core::Storage;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;
use basalt_policy::IdentifierPolicy;
use basalt_policy::check_csr;
use basalt_policy::check_identifier;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing::error;
use tracing::info;
use tracing::warn;

/// The tracing target of audit events: issuance, revocation, validation outcomes and
/// account creation. Their field names are stable.
const AUDIT: &str = "audit";
/// Challenge tokens carry this many random bytes (RFC 8555 §8.3 asks for ≥ 128 bits).
const TOKEN_BYTES: usize = 32;
/// The most contact URLs an account may hold (as Boulder's default).
const MAX_CONTACTS: usize = 10;
/// The longest contact URL accepted.
const MAX_CONTACT_LEN: usize = 320;
/// What is stored on an order, and shown to the subscriber, when the CA fails
/// internally: the real cause stays in the logs.
const FINALIZE_INTERNAL: &str = "error finalizing order";
/// What is stored on a challenge when the VA fails internally.
const VALIDATION_INTERNAL: &str = "error performing validation";

/// How the RA behaves; built from [`crate::RaConfig::settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaSettings {
    /// Which identifiers may be ordered.
    pub policy: IdentifierPolicy,
    /// How long a new authorization stays pending before it expires.
    pub pending_authz_lifetime: Duration,
    /// How long an authorization stays valid after a successful validation.
    pub valid_authz_lifetime: Duration,
    /// How long an order lives (capped by its authorizations' expiry).
    pub order_lifetime: Duration,
    /// The account URL is this prefix followed by the account ID, e.g.
    /// `https://acme.example/acme/acct/`; the VA needs it for CAA `accounturi`.
    pub account_uri_prefix: String,
}

impl RaSettings {
    /// The default lifetimes (7 days pending, 30 days valid, 7 day orders) and
    /// identifier policy, with this account URL prefix.
    pub fn with_defaults(account_uri_prefix: impl Into<String>) -> Self {
        const DAY: u64 = 86_400;
        Self {
            policy: IdentifierPolicy::default(),
            pending_authz_lifetime: Duration::from_secs(7 * DAY),
            valid_authz_lifetime: Duration::from_secs(30 * DAY),
            order_lifetime: Duration::from_secs(7 * DAY),
            account_uri_prefix: account_uri_prefix.into(),
        }
    }
}

/// The registration authority.
///
/// Validation runs in the background: [`RegistrationAuthority::perform_validation`]
/// marks the challenge processing, spawns the VA call on the current tokio runtime
/// and returns; the spawned task records the outcome through the SA.
pub struct Ra {
    inner: Arc<Inner>,
    /// Validations still running; finished ones are pruned on every spawn.
    validations: Mutex<Vec<JoinHandle<()>>>,
}

/// What a background validation needs, shared with it.
struct Inner {
    settings: RaSettings,
    sa: Arc<dyn Storage>,
    va: Arc<dyn ValidationAuthority>,
    ca: Arc<dyn CertificateAuthority>,
    clock: Arc<dyn Clock>,
}

impl Ra {
    /// An RA over these peers.
    pub fn new(
        settings: RaSettings,
        sa: Arc<dyn Storage>,
        va: Arc<dyn ValidationAuthority>,
        ca: Arc<dyn CertificateAuthority>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                sa,
                va,
                ca,
                clock,
            }),
            validations: Mutex::new(Vec::new()),
        }
    }

    /// Waits until every validation started so far (and any started meanwhile) has
    /// recorded its outcome; for tests and graceful shutdown.
    pub async fn wait_for_validations(&self) {
        loop {
            let handles = std::mem::take(
                &mut *self
                    .validations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if let Err(err) = handle.await {
                    error!(error = %err, "validation task failed");
                }
            }
        }
    }

    fn account_uri(&self, id: AccountId) -> String {
        format!("{}{id}", self.inner.settings.account_uri_prefix)
    }

    fn spawn_validation(&self, job: ValidationJob) {
        let inner = Arc::clone(&self.inner);
        let handle = tokio::spawn(inner.validate(job).in_current_span());
        let mut validations = self
            .validations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        validations.retain(|handle| !handle.is_finished());
        validations.push(handle);
    }
}

/// One validation to run in the background.
struct ValidationJob {
    authz: Authz,
    request: ValidateRequest,
}

impl Inner {
    /// Asks the VA and records the outcome; failures are logged, never returned,
    /// since nobody is waiting for them.
    async fn validate(self: Arc<Self>, job: ValidationJob) {
        let ValidationJob { authz, request } = job;
        let kind = request.challenge;
        let result = self.va.validate(request).await;
        let now = self.clock.now();
        let (records, problem) = match result {
            Ok(ValidationResult { records, problem }) => (records, problem),
            Err(err) => {
                warn!(
                    authz_id = %authz.id,
                    error = %err,
                    "the validation authority could not check the challenge"
                );
                let err = if err.is(ErrorKind::Internal) {
                    Error::internal(VALIDATION_INTERNAL)
                } else {
                    err
                };
                (Vec::new(), Some(err))
            }
        };
        let outcome = match problem {
            None => AuthzOutcome {
                status: AuthzStatus::Valid,
                validated_at: now,
                expires: after(now, self.settings.valid_authz_lifetime),
                records,
                error: None,
            },
            Some(problem) => AuthzOutcome {
                status: AuthzStatus::Invalid,
                validated_at: now,
                expires: authz.expires,
                records,
                error: Some(problem),
            },
        };
        let status = outcome.status;
        let problem = outcome.error.as_ref().map(|err| err.kind);
        match self.sa.finalize_authz(authz.id, kind, outcome).await {
            Ok(()) => info!(
                target: AUDIT,
                event = "validation_completed",
                authz_id = %authz.id,
                account_id = %authz.account_id,
                identifier = %authz.identifier,
                challenge = %kind,
                status = %status,
                problem = ?problem,
                "validation completed"
            ),
            Err(err) => error!(
                authz_id = %authz.id,
                status = %status,
                error = %err,
                "cannot record the validation outcome"
            ),
        }
    }
}

#[async_trait]
impl RegistrationAuthority for Ra {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        check_contacts(&account.contacts)?;
        let account = self.inner.sa.new_account(account).await?;
        info!(
            target: AUDIT,
            event = "account_created",
            account_id = %account.id,
            key_thumbprint = %account.key_thumbprint,
            contacts = account.contacts.len(),
            "account created"
        );
        Ok(account)
    }

    async fn new_order(
        &self,
        account_id: AccountId,
        identifiers: Vec<Identifier>,
    ) -> Result<Order, Error> {
        let settings = &self.inner.settings;
        let identifiers = settings.policy.check(&identifiers)?;
        let now = self.inner.clock.now();
        let authz_expires = after(now, settings.pending_authz_lifetime);
        let authzs = identifiers
            .iter()
            .map(|id| new_authz(id, authz_expires))
            .collect::<Result<Vec<_>, _>>()?;
        // An order cannot outlive the authorizations it needs (as Boulder).
        let expires = after(now, settings.order_lifetime).min(authz_expires);
        let order = self
            .inner
            .sa
            .new_order(NewOrder {
                account_id,
                identifiers,
                expires,
                authzs,
            })
            .await?;
        info!(
            target: AUDIT,
            event = "order_created",
            account_id = %account_id,
            order_id = %order.id,
            identifiers = ?identifier_values(&order.identifiers),
            "order created"
        );
        Ok(order)
    }

    async fn perform_validation(&self, id: AuthzId, kind: ChallengeType) -> Result<Authz, Error> {
        let sa = &self.inner.sa;
        let authz = sa.authz(id).await?;
        if authz.status != AuthzStatus::Pending {
            return Err(Error::malformed(format!(
                "authorization is not pending (it is {})",
                authz.status
            )));
        }
        if authz.expires <= self.inner.clock.now() {
            return Err(Error::malformed("authorization has expired"));
        }
        let Some(challenge) = authz.challenge(kind) else {
            return Err(Error::malformed(format!(
                "challenge type {kind} is not offered"
            )));
        };
        match challenge.status {
            ChallengeStatus::Pending => {}
            // A repeated request while the VA works is answered with the current state
            // rather than a second validation.
            ChallengeStatus::Processing => return Ok(authz),
            status => {
                return Err(Error::malformed(format!(
                    "challenge is not pending (it is {status})"
                )));
            }
        }
        let account = sa.account(authz.account_id).await?;
        if account.status != AccountStatus::Valid {
            return Err(Error::unauthorized(format!(
                "account is {}, not valid",
                account.status
            )));
        }
        let request = ValidateRequest {
            identifier: authz.identifier.clone(),
            challenge: kind,
            token: challenge.token.clone(),
            key_authorization: format!("{}.{}", challenge.token, account.key_thumbprint),
            account_uri: self.account_uri(account.id),
        };
        sa.set_challenge_processing(id, kind).await?;
        info!(
            authz_id = %id,
            account_id = %authz.account_id,
            identifier = %authz.identifier,
            challenge = %kind,
            "validation started"
        );
        self.spawn_validation(ValidationJob { authz, request });
        sa.authz(id).await
    }

    async fn finalize_order(&self, id: OrderId, csr_der: Vec<u8>) -> Result<Order, Error> {
        let Inner { sa, ca, clock, .. } = &*self.inner;
        let order = sa.order(id).await?;
        if order.status != OrderStatus::Ready {
            return Err(Error::new(
                ErrorKind::OrderNotReady,
                format!("order is {}, not ready", order.status),
            ));
        }
        if order.expires <= clock.now() {
            return Err(Error::new(ErrorKind::OrderNotReady, "order has expired"));
        }
        // A bad CSR leaves the order ready, so the client can send a better one.
        let csr = check_csr(&csr_der, &order.identifiers).inspect_err(|err| {
            info!(order_id = %id, error = %err, "CSR refused");
        })?;
        sa.set_order_processing(id).await?;
        info!(
            target: AUDIT,
            event = "issuance_requested",
            account_id = %order.account_id,
            order_id = %id,
            names = ?csr.names,
            "issuance requested"
        );
        let issued = ca
            .issue_certificate(IssueRequest {
                csr_der,
                account_id: order.account_id,
                order_id: id,
                identifiers: order.identifiers.clone(),
            })
            .await;
        let certificate = match issued {
            Ok(certificate) => certificate,
            Err(err) => {
                error!(
                    target: AUDIT,
                    event = "issuance_failed",
                    account_id = %order.account_id,
                    order_id = %id,
                    error = %err,
                    "issuance failed"
                );
                let stored = if err.is(ErrorKind::Internal) {
                    Error::internal(FINALIZE_INTERNAL)
                } else {
                    err.clone()
                };
                if let Err(store_err) = sa.set_order_error(id, &stored).await {
                    error!(order_id = %id, error = %store_err, "cannot mark the order invalid");
                }
                return Err(err);
            }
        };
        info!(
            target: AUDIT,
            event = "certificate_issued",
            account_id = %order.account_id,
            order_id = %id,
            serial = %certificate.serial,
            names = ?csr.names,
            "certificate issued"
        );
        sa.finalize_order(id, &certificate.serial)
            .await
            .inspect_err(|err| {
                error!(
                    order_id = %id,
                    serial = %certificate.serial,
                    error = %err,
                    "certificate issued but the order cannot be marked valid"
                );
            })?;
        sa.order(id).await
    }

    async fn revoke_certificate(&self, request: RevokeRequest) -> Result<(), Error> {
        let RevokeRequest {
            serial,
            reason,
            account_id,
        } = request;
        let sa = &self.inner.sa;
        let certificate = sa.certificate(&serial).await.map_err(|err| {
            if err.is(ErrorKind::NotFound) {
                Error::not_found("certificate not found")
            } else {
                err
            }
        })?;
        if certificate.account_id != account_id {
            warn!(
                target: AUDIT,
                event = "revocation_refused",
                serial = %serial,
                account_id = %account_id,
                owner_account_id = %certificate.account_id,
                "revocation refused: the certificate belongs to another account"
            );
            return Err(Error::unauthorized(
                "the certificate was not issued to this account",
            ));
        }
        sa.revoke_certificate(&serial, reason, self.inner.clock.now())
            .await?;
        info!(
            target: AUDIT,
            event = "certificate_revoked",
            serial = %serial,
            account_id = %account_id,
            reason = reason.code(),
            "certificate revoked"
        );
        Ok(())
    }
}

/// `now + lifetime`, saturating instead of overflowing on absurd config values.
fn after(now: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    now.saturating_add(time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX))
}

/// A new authorization for one identifier of an order, with its challenges.
fn new_authz(id: &Identifier, expires: OffsetDateTime) -> Result<NewAuthz, Error> {
    if let Some(base) = id.value.strip_prefix("*.") {
        // Policy refuses wildcards while the VA has no dns-01; never hand one an
        // http-01 challenge, which cannot prove control of a whole zone.
        return Err(Error::new(
            ErrorKind::RejectedIdentifier,
            format!("wildcard names need dns-01, which this CA does not offer yet ({base})"),
        ));
    }
    Ok(NewAuthz {
        identifier: id.clone(),
        wildcard: false,
        expires,
        // The VA only does http-01 for now.
        challenges: vec![Challenge::pending(ChallengeType::Http01, new_token())],
    })
}

/// A challenge token: 256 random bits, base64url without padding (RFC 8555 §8.1).
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn identifier_values(ids: &[Identifier]) -> Vec<&str> {
    ids.iter().map(|id| id.value.as_str()).collect()
}

/// RFC 8555 §7.3: contacts are `mailto:` URLs holding one address, without hfields.
fn check_contacts(contacts: &[String]) -> Result<(), Error> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::new(
            ErrorKind::InvalidContact,
            format!("an account may have at most {MAX_CONTACTS} contacts"),
        ));
    }
    contacts
        .iter()
        .try_for_each(|contact| check_contact(contact))
}

fn check_contact(contact: &str) -> Result<(), Error> {
    let invalid = |why: &str| Error::new(ErrorKind::InvalidContact, why.to_owned());
    if contact.len() > MAX_CONTACT_LEN {
        return Err(invalid("contact URL is too long"));
    }
    let address = match contact.split_at_checked("mailto:".len()) {
        Some((scheme, address)) if scheme.eq_ignore_ascii_case("mailto:") => address,
        _ => {
            return Err(Error::new(
                ErrorKind::UnsupportedContact,
                format!("contact {contact:?} is not a mailto: URL, the only kind supported"),
            ));
        }
    };
    if address.contains('?') {
        return Err(invalid(&format!(
            "contact {contact:?} has a query or hfields, which are not allowed"
        )));
    }
    if address.contains(',') {
        return Err(invalid(&format!(
            "contact {contact:?} must hold exactly one email address"
        )));
    }
    if address.contains('%') {
        return Err(invalid(&format!(
            "contact {contact:?} is percent-encoded, which is not supported"
        )));
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(invalid(&format!(
            "contact {contact:?} is not an email address"
        )));
    };
    if !valid_local_part(local) {
        return Err(invalid(&format!(
            "contact {contact:?} has an invalid mailbox name"
        )));
    }
    // Email domains are case-insensitive; the DNS rules are the identifier rules.
    check_identifier(&Identifier::dns(domain.to_ascii_lowercase())).map_err(|err| {
        invalid(&format!(
            "contact {contact:?} has an invalid domain: {}",
            err.detail
        ))
    })
}

/// An RFC 5322 dot-atom (no quoted strings), as Boulder accepts.
fn valid_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &[u8] = b"!#$&'*+-/=^_`{|}~";
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT_SYMBOLS.contains(&b))
        })
}

#[cfg(test)]
mod tests;
