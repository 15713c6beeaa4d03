//! The registration authority itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::AccountUpdate;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::AuthzStatus;
use basalt_core::CaaCheck;
use basalt_core::CertificateAuthority;
use basalt_core::CertificateRecord;
use basalt_core::Challenge;
use basalt_core::ChallengeStatus;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::IssueRequest;
use basalt_core::NewAccount;
use basalt_core::NewAuthz;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderRequest;
use basalt_core::OrderStatus;
use basalt_core::RateLimitOverride;
use basalt_core::RegistrationAuthority;
use basalt_core::RevokeRequest;
use basalt_core::Serial;
use basalt_core::Storage;
use basalt_core::SubError;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;
use basalt_policy::IdentifierPolicy;
use basalt_policy::ValidityLimits;
use basalt_policy::check_csr;
use basalt_policy::check_identifier;
use basalt_policy::jwk_spki;
use basalt_policy::spki_canonical_jwk;
use basalt_ratelimit::Limiter;
use basalt_ratelimit::Transaction;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing::debug;
use tracing::error;
use tracing::info;
use tracing::warn;

use basalt_policy::spki_sha256;

/// The tracing target of audit events: issuance, revocation, validation outcomes and
/// account changes. Their field names are stable.
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
/// Seconds in a day.
const DAY: u64 = 86_400;
/// How long a background task keeps retrying an SA write that failed as
/// `unavailable` (an SA restarting, a database failing over) before it gives up and
/// leaves the order to the SA's maintenance pass.
const SA_WRITE_PATIENCE: Duration = Duration::from_secs(60);
/// The first wait between those retries; each later one doubles, up to the cap.
const SA_WRITE_FIRST_WAIT: Duration = Duration::from_millis(200);
const SA_WRITE_MAX_WAIT: Duration = Duration::from_secs(5);
/// How long a request a client waits on (starting a validation, finalize) retries
/// its SA write while the SA is unavailable.
const REQUEST_SA_PATIENCE: Duration = Duration::from_secs(10);
/// How long finalize waits for its issuance unless the config says otherwise: a
/// CA signs in well under a second, so the common answer is the valid order, and
/// the bound leaves most of the caller's deadline (the WFE's `[ra] timeout`, 30 s
/// unless set) to the rest of the request.
pub(crate) const DEFAULT_ISSUANCE_WAIT: Duration = Duration::from_secs(5);
/// How long a challenge response waits for its validation unless the config says
/// otherwise: as long as the `Retry-After` the WFE gives a client that finds the
/// validation unfinished, so a validation done within it is answered at once and a
/// slower one (several perspectives across the Internet take about a second or
/// more) costs the client no more time than its first poll would have.
pub(crate) const DEFAULT_VALIDATION_WAIT: Duration = Duration::from_secs(1);
/// The longest either wait may be: a third of the deadline the WFE gives its calls
/// to the RA by default, which must stay well above the wait.
pub(crate) const MAX_REQUEST_WAIT: Duration = Duration::from_secs(10);

/// Runs an SA write from a background task until it succeeds, fails for good, or
/// `patience` runs out. Only `unavailable` is retried: it is what a restarting SA or a
/// lost database connection answers, and every write retried here is safe to repeat.
async fn sa_write_with_patience<F, Fut>(
    what: &'static str,
    patience: Duration,
    mut write: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut wait = SA_WRITE_FIRST_WAIT;
    loop {
        match write().await {
            Err(err) if err.is(ErrorKind::Unavailable) => {
                if tokio::time::Instant::now() + wait > deadline {
                    return Err(err);
                }
                warn!(what, error = %err, retry_in = ?wait, "storage unavailable; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(SA_WRITE_MAX_WAIT);
            }
            result => return result,
        }
    }
}

/// The profile that exists when the config defines none, and the default
/// `default_profile`.
pub const CLASSIC: &str = "classic";
/// The longest profile name.
pub(crate) const MAX_PROFILE_NAME_LEN: usize = 64;

/// How the RA behaves; built from [`crate::RaConfig::settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaSettings {
    /// The profile of orders that name none; a key of [`RaSettings::profiles`].
    pub default_profile: String,
    /// The certificate profiles offered (draft-ietf-acme-profiles), by name.
    pub profiles: BTreeMap<String, ProfileSettings>,
    /// How long an authorization stays valid after a successful validation.
    pub valid_authz_lifetime: Duration,
    /// A valid authorization is reused for a new order only while at least this
    /// much of its life remains.
    pub authz_reuse_min_remaining: Duration,
    /// At finalize, CAA is checked again for names validated longer ago than this.
    pub caa_recheck_after: Duration,
    /// The account URL is this prefix followed by the account ID, e.g.
    /// `https://acme.example/acme/acct/`; the VA needs it for CAA `accounturi`.
    pub account_uri_prefix: String,
    /// How long finalize waits for the issuance it started before it answers: the
    /// order as it stands then, `valid` if the CA was quick enough, else
    /// `processing` (the issuance goes on). Zero answers at once.
    pub issuance_wait: Duration,
    /// How long a challenge response waits for the validation it started before it
    /// answers with the authorization as it stands then. Zero answers at once.
    pub validation_wait: Duration,
}

/// What one certificate profile allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Which identifiers may be ordered.
    pub policy: IdentifierPolicy,
    /// The longest certificate lifetime an order may ask for.
    pub validity: Duration,
    /// How long a new authorization stays pending before it expires.
    pub pending_authz_lifetime: Duration,
    /// How long an order lives (capped by its authorizations' expiry).
    pub order_lifetime: Duration,
    /// How long after its validation an authorization counts for this profile's
    /// orders (at most the RA's `valid_authz_lifetime`, which sets its expiry).
    pub valid_authz_lifetime: Duration,
}

impl ProfileSettings {
    /// The [`CLASSIC`] profile: 90 day certificates for up to 100 DNS names, 7 day
    /// pending authorizations and orders.
    pub fn classic() -> Self {
        Self {
            policy: IdentifierPolicy::default(),
            validity: Duration::from_secs(90 * DAY),
            pending_authz_lifetime: Duration::from_secs(7 * DAY),
            order_lifetime: Duration::from_secs(7 * DAY),
            valid_authz_lifetime: Duration::from_secs(30 * DAY),
        }
    }
}

impl RaSettings {
    /// One profile, [`ProfileSettings::classic`], authorizations valid for 30
    /// days, and the config's default waits, with this account URL prefix.
    pub fn with_defaults(account_uri_prefix: impl Into<String>) -> Self {
        Self {
            default_profile: CLASSIC.to_owned(),
            profiles: BTreeMap::from([(CLASSIC.to_owned(), ProfileSettings::classic())]),
            valid_authz_lifetime: Duration::from_secs(30 * DAY),
            authz_reuse_min_remaining: Duration::from_secs(DAY),
            caa_recheck_after: Duration::from_secs(7 * 3600),
            account_uri_prefix: account_uri_prefix.into(),
            issuance_wait: DEFAULT_ISSUANCE_WAIT,
            validation_wait: DEFAULT_VALIDATION_WAIT,
        }
    }

    /// The names of the profiles offered, sorted (for the directory's `meta.profiles`).
    pub fn profile_names(&self) -> Vec<&str> {
        self.profiles.keys().map(String::as_str).collect()
    }

    /// The profile an order asks for: the default one for `None`;
    /// [`ErrorKind::InvalidProfile`] for one not offered.
    fn profile(&self, name: Option<&str>) -> Result<(&str, &ProfileSettings), Error> {
        let name = name.unwrap_or(&self.default_profile);
        match self.profiles.get_key_value(name) {
            Some((name, profile)) => Ok((name, profile)),
            None => Err(Error::new(
                ErrorKind::InvalidProfile,
                format!(
                    "profile {} is not offered (offered: {})",
                    shown_profile_name(name),
                    self.profile_names().join(", ")
                ),
            )),
        }
    }
}

/// A requested profile name for an error message: quoted and escaped if it is not
/// a plain name, and cut short if it is long.
fn shown_profile_name(name: &str) -> String {
    let mut shown: String = name.chars().take(MAX_PROFILE_NAME_LEN).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    if valid_profile_name(&shown) {
        shown
    } else {
        format!("{shown:?}")
    }
}

/// Profile names appear in the directory and in orders: 1 to
/// [`MAX_PROFILE_NAME_LEN`] ASCII letters, digits, `-`, `_` or `.`.
pub(crate) fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The registration authority.
///
/// Validation and issuance run in the background:
/// [`RegistrationAuthority::perform_validation`] marks the challenge processing and
/// [`RegistrationAuthority::finalize_order`] marks the order processing, each spawns
/// the VA or CA call on the current tokio runtime, waits for it up to
/// [`RaSettings::validation_wait`] or [`RaSettings::issuance_wait`], and answers
/// with the state the SA then holds; the spawned task records the outcome through
/// the SA whether or not the request is still waiting.
/// [`Ra::wait_for_background_work`] awaits them all.
pub struct Ra {
    inner: Arc<Inner>,
    /// Validations and issuances still running; finished ones are pruned on every
    /// spawn.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What a background validation or issuance needs, shared with it.
struct Inner {
    settings: RaSettings,
    sa: Arc<dyn Storage>,
    va: Arc<dyn ValidationAuthority>,
    ca: Arc<dyn CertificateAuthority>,
    clock: Arc<dyn Clock>,
    /// The rate limits; `None` checks none.
    limiter: Option<Limiter>,
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
                limiter: None,
            }),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// This RA, with rate limits.
    pub fn with_limiter(self, limiter: Limiter) -> Self {
        let Inner {
            settings,
            sa,
            va,
            ca,
            clock,
            ..
        } = &*self.inner;
        Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                sa: Arc::clone(sa),
                va: Arc::clone(va),
                ca: Arc::clone(ca),
                clock: Arc::clone(clock),
                limiter: Some(limiter),
            }),
            tasks: self.tasks,
        }
    }

    /// Waits until every validation and issuance started so far (and any started
    /// meanwhile) has recorded its outcome; for tests and graceful shutdown.
    pub async fn wait_for_background_work(&self) {
        loop {
            let handles =
                std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if let Err(err) = handle.await {
                    error!(error = %err, "background task failed");
                }
            }
        }
    }

    fn account_uri(&self, id: AccountId) -> String {
        format!("{}{id}", self.inner.settings.account_uri_prefix)
    }

    /// Runs `task` on the current runtime and tracks it for
    /// [`Ra::wait_for_background_work`]; what it returns resolves once the task is
    /// over, however it ended (see [`finished_within`]).
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> Finished {
        let (over, finished) = oneshot::channel();
        let task = async move {
            // Nothing is ever sent: dropping the sender with the task, whether it
            // returns, panics or is cancelled, is the signal.
            let _over: oneshot::Sender<Infallible> = over;
            task.await;
        };
        let handle = tokio::spawn(task.in_current_span());
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|handle| !handle.is_finished());
        tasks.push(handle);
        finished
    }

    /// The account `id`, which must be valid ([`ErrorKind::Unauthorized`] otherwise).
    async fn valid_account(&self, id: AccountId) -> Result<Account, Error> {
        let account = self.inner.sa.account(id).await?;
        if account.status != AccountStatus::Valid {
            return Err(Error::unauthorized(format!(
                "account is {}",
                account.status
            )));
        }
        Ok(account)
    }

    /// Refuses a key on the blocked-keys list with [`ErrorKind::BadPublicKey`].
    async fn check_not_blocked(&self, spki_der: &[u8], offered_as: KeyUse) -> Result<(), Error> {
        let hash = spki_sha256(spki_der);
        if !self.inner.sa.key_blocked(&hash).await? {
            return Ok(());
        }
        warn!(
            target: AUDIT,
            event = "blocked_key_refused",
            spki_sha256 = %hash,
            offered_as = offered_as.as_str(),
            "a blocked key was refused"
        );
        Err(Error::new(ErrorKind::BadPublicKey, offered_as.refusal()))
    }

    /// Refuses an account key (a JWK) on the blocked-keys list, or one that cannot be
    /// read, with [`ErrorKind::BadPublicKey`].
    async fn check_account_key_not_blocked(&self, jwk: &str) -> Result<(), Error> {
        let spki = jwk_spki(jwk)?;
        self.check_not_blocked(&spki, KeyUse::Account).await
    }

    /// An order may replace (RFC 9773 §5) only a certificate issued to its own
    /// account and not replaced already; returns that certificate.
    async fn check_replaces(
        &self,
        account_id: AccountId,
        serial: &Serial,
    ) -> Result<CertificateRecord, Error> {
        let sa = &self.inner.sa;
        let certificate = sa.certificate(serial).await.map_err(|err| {
            if err.is(ErrorKind::NotFound) {
                Error::malformed(format!("the replaced certificate {serial} is unknown"))
            } else {
                err
            }
        })?;
        if certificate.account_id != account_id {
            warn!(
                account_id = %account_id,
                owner_account_id = %certificate.account_id,
                serial = %serial,
                "replacement refused: the certificate belongs to another account"
            );
            return Err(Error::unauthorized(
                "the replaced certificate was issued to another account",
            ));
        }
        if let Some(order_id) = sa.replacement_order(serial).await? {
            return Err(Error::new(
                ErrorKind::AlreadyReplaced,
                format!("certificate {serial} was already replaced by order {order_id}"),
            ));
        }
        Ok(certificate)
    }

    /// Whether the certificate an order replaces is inside its ARI renewal window
    /// (RFC 9773), which has begun for a revoked certificate or one named in an
    /// incident: such a renewal is exempt from the new-order rate limits.
    async fn in_renewal_window(&self, certificate: &CertificateRecord) -> Result<bool, Error> {
        let in_incident = self
            .inner
            .sa
            .incident_for_serial(&certificate.serial)
            .await?
            .is_some();
        let now = self.inner.clock.now();
        let (start, _) = certificate.renewal_window(in_incident, now);
        Ok(start <= now)
    }
}

/// Resolves once a task [`Ra::spawn`] started is over.
type Finished = oneshot::Receiver<Infallible>;

/// Waits up to `bound` for a background task to be over; whether it was.
///
/// The caller holds no lock and no transaction meanwhile (each SA call is a
/// transaction of its own), and a bound that runs out is no error: the request
/// answers with the state as it stands and the task goes on. Should the request
/// itself be dropped (its caller's deadline passed), so is only this wait.
async fn finished_within(finished: Finished, bound: Duration) -> bool {
    // The sender is only ever dropped, so the receiver ends with `Err(RecvError)`.
    tokio::time::timeout(bound, finished).await.is_ok()
}

/// Where a key was offered, for a refusal's wording and the audit log.
#[derive(Clone, Copy, Debug)]
enum KeyUse {
    /// As an account key (new account, key change).
    Account,
    /// In a CSR, to be certified.
    Csr,
}

impl KeyUse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Csr => "csr",
        }
    }

    /// What the subscriber is told when the key is blocked.
    fn refusal(self) -> &'static str {
        match self {
            Self::Account => {
                "the account key is blocked (known compromised or banned); use another key"
            }
            Self::Csr => {
                "the CSR's public key is blocked (known compromised or banned); certify another key"
            }
        }
    }
}

/// One validation to run in the background.
struct ValidationJob {
    authz: Authz,
    request: ValidateRequest,
}

impl Inner {
    /// Asks the VA and records the outcome; failures are logged, never returned:
    /// the client learns the outcome from the SA, and the request that started the
    /// validation may have answered already.
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
        let (perspectives_succeeded, perspectives) = outcome
            .records
            .first()
            .map(|record| {
                let succeeded = record.perspectives.iter().filter(|p| p.succeeded).count();
                (succeeded, record.perspectives.len())
            })
            .unwrap_or_default();
        if status == AuthzStatus::Invalid {
            let failed = Transaction::failed_authorization(authz.account_id, &authz.identifier);
            // Spent, not checked: the failure happened whatever the limit says.
            if let Err(err) = self.spend_limits(std::slice::from_ref(&failed)).await
                && !err.is(ErrorKind::RateLimited)
            {
                warn!(authz_id = %authz.id, error = %err, "cannot count a failed validation");
            }
        }
        let recorded = sa_write_with_patience("finalize_authz", SA_WRITE_PATIENCE, || {
            self.sa.finalize_authz(authz.id, kind, outcome.clone())
        })
        .await;
        match recorded {
            Ok(()) => info!(
                target: AUDIT,
                event = "validation_completed",
                authz_id = %authz.id,
                account_id = %authz.account_id,
                identifier = %authz.identifier,
                wildcard = authz.wildcard,
                challenge = %kind,
                status = %status,
                problem = problem.map(ErrorKind::as_str),
                perspectives,
                perspectives_succeeded,
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

/// One issuance to run in the background.
struct IssuanceJob {
    order: Order,
    request: IssueRequest,
    names: Vec<String>,
}

impl Inner {
    /// Asks the CA and marks the order valid or invalid; failures are logged, never
    /// returned: the client learns the outcome from the SA, and the finalize
    /// request may have answered already.
    async fn issue(self: Arc<Self>, job: IssuanceJob) {
        let IssuanceJob {
            order,
            request,
            names,
        } = job;
        let id = order.id;
        let certificate = match self.ca.issue_certificate(request).await {
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
                // The order's error is final; "temporarily unavailable" would tell the
                // subscriber to wait for an order that will never be issued.
                let stored = if err.is(ErrorKind::Internal) || err.is(ErrorKind::Unavailable) {
                    Error::internal(FINALIZE_INTERNAL)
                } else {
                    err
                };
                let marked = sa_write_with_patience("set_order_error", SA_WRITE_PATIENCE, || {
                    self.sa.set_order_error(id, &stored)
                })
                .await;
                if let Err(store_err) = marked {
                    error!(order_id = %id, error = %store_err, "cannot mark the order invalid");
                }
                self.refund_limits(&limits::certificate_transactions(&order.identifiers))
                    .await;
                return;
            }
        };
        info!(
            target: AUDIT,
            event = "certificate_issued",
            account_id = %order.account_id,
            order_id = %id,
            serial = %certificate.serial,
            names = %names.join(","),
            profile = %order.profile,
            "certificate issued"
        );
        let finalized = sa_write_with_patience("finalize_order", SA_WRITE_PATIENCE, || {
            self.sa.finalize_order(id, &certificate.serial)
        })
        .await;
        if let Err(err) = finalized {
            error!(
                order_id = %id,
                serial = %certificate.serial,
                error = %err,
                "certificate issued but the order cannot be marked valid"
            );
        }
    }
}

#[async_trait]
impl RegistrationAuthority for Ra {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        check_contacts(&account.contacts)?;
        self.check_account_key_not_blocked(&account.key_jwk).await?;
        let limits = limits::new_account_transactions(account.remote_ip);
        self.inner.spend_limits(&limits).await?;
        let account = match self.inner.sa.new_account(account).await {
            Ok(account) => account,
            Err(err) => {
                self.inner.refund_limits(&limits).await;
                return Err(err);
            }
        };
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

    async fn update_account_contacts(
        &self,
        id: AccountId,
        contacts: Vec<String>,
    ) -> Result<Account, Error> {
        self.valid_account(id).await?;
        check_contacts(&contacts)?;
        let update = AccountUpdate {
            contacts: Some(contacts),
            ..AccountUpdate::default()
        };
        let account = self.inner.sa.update_account(id, update).await?;
        info!(
            target: AUDIT,
            event = "account_updated",
            account_id = %id,
            contacts = account.contacts.len(),
            "account contacts updated"
        );
        Ok(account)
    }

    async fn deactivate_account(&self, id: AccountId) -> Result<Account, Error> {
        self.valid_account(id).await?;
        let update = AccountUpdate {
            status: Some(AccountStatus::Deactivated),
            ..AccountUpdate::default()
        };
        let account = self.inner.sa.update_account(id, update).await?;
        info!(
            target: AUDIT,
            event = "account_deactivated",
            account_id = %id,
            "account deactivated"
        );
        Ok(account)
    }

    async fn rollover_account_key(
        &self,
        id: AccountId,
        new_key_jwk: String,
        new_key_thumbprint: String,
    ) -> Result<Account, Error> {
        let old = self.valid_account(id).await?;
        if old.key_thumbprint == new_key_thumbprint {
            return Err(Error::malformed("the new key is the same as the old key"));
        }
        self.check_account_key_not_blocked(&new_key_jwk).await?;
        let update = AccountUpdate {
            key: Some((new_key_jwk, new_key_thumbprint)),
            ..AccountUpdate::default()
        };
        // A Conflict (the key belongs to another account) passes through: the WFE
        // answers it with 409 and that account's URL.
        let account = self.inner.sa.update_account(id, update).await?;
        info!(
            target: AUDIT,
            event = "account_key_rolled_over",
            account_id = %id,
            old_key_thumbprint = %old.key_thumbprint,
            new_key_thumbprint = %account.key_thumbprint,
            "account key rolled over"
        );
        Ok(account)
    }

    async fn new_order(&self, request: OrderRequest) -> Result<Order, Error> {
        let OrderRequest {
            account_id,
            identifiers,
            profile,
            not_before,
            not_after,
            replaces,
        } = request;
        let (profile_name, profile) = self.inner.settings.profile(profile.as_deref())?;
        let identifiers = profile.policy.check(&identifiers)?;
        let now = self.inner.clock.now();
        let authz_expires = after(now, profile.pending_authz_lifetime);
        // An order cannot outlive the authorizations it needs (as Boulder).
        let expires = after(now, profile.order_lifetime).min(authz_expires);
        ValidityLimits {
            now,
            latest_not_before: expires,
            max_validity: profile.validity,
        }
        .check(not_before, not_after)?;
        let replaced = match &replaces {
            Some(serial) => Some(self.check_replaces(account_id, serial).await?),
            None => None,
        };
        // The same request again gets the same order, costing nothing (as Boulder).
        if replaces.is_none() && not_before.is_none() && not_after.is_none() {
            let sa = &self.inner.sa;
            if let Some(order) = sa
                .reusable_order(account_id, &identifiers, profile_name)
                .await?
            {
                info!(
                    target: AUDIT,
                    event = "order_reused",
                    account_id = %account_id,
                    order_id = %order.id,
                    identifiers = %identifier_list(&order.identifiers),
                    profile = %order.profile,
                    "an identical pending order was returned"
                );
                return Ok(order);
            }
        }
        let ari_renewal = match &replaced {
            Some(certificate) => self.in_renewal_window(certificate).await?,
            None => false,
        };
        let limits = if ari_renewal {
            Vec::new()
        } else {
            self.inner
                .check_limits(&limits::failed_validation_transactions(
                    account_id,
                    &identifiers,
                ))
                .await?;
            limits::new_order_transactions(account_id, &identifiers)
        };
        self.inner.spend_limits(&limits).await?;
        let stored = self
            .store_order(
                NewOrder {
                    account_id,
                    identifiers,
                    expires,
                    authzs: Vec::new(),
                    profile: profile_name.to_owned(),
                    not_before,
                    not_after,
                    replaces,
                    reused_authz_ids: Vec::new(),
                },
                profile,
            )
            .await;
        let (order, reused) = match stored {
            Ok(stored) => stored,
            Err(err) => {
                self.inner.refund_limits(&limits).await;
                return Err(err);
            }
        };
        info!(
            target: AUDIT,
            event = "order_created",
            account_id = %account_id,
            order_id = %order.id,
            identifiers = %identifier_list(&order.identifiers),
            profile = %order.profile,
            not_before = order.not_before.map(rfc3339),
            not_after = order.not_after.map(rfc3339),
            replaces = order.replaces.as_ref().map(ToString::to_string),
            ari_renewal,
            reused_authzs = reused,
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
            wildcard: authz.wildcard,
        };
        // This request's own name, as at finalize: a repeat after the SA's answer
        // was lost is recognised, and the challenge is not left processing with no
        // validation behind it.
        let attempt = new_token();
        sa_write_with_patience("set_challenge_processing", REQUEST_SA_PATIENCE, || {
            sa.set_challenge_processing(id, kind, &attempt)
        })
        .await?;
        info!(
            authz_id = %id,
            account_id = %authz.account_id,
            identifier = %authz.identifier,
            challenge = %kind,
            "validation started"
        );
        let inner = Arc::clone(&self.inner);
        let validated = self.spawn(inner.validate(ValidationJob { authz, request }));
        // A quick validation is answered finished, sparing the client a poll; a
        // slow one is answered processing and the client polls.
        let wait = self.inner.settings.validation_wait;
        if !wait.is_zero() && !finished_within(validated, wait).await {
            debug!(
                authz_id = %id,
                waited = ?wait,
                "validation still running; answering with the challenge processing"
            );
        }
        sa.authz(id).await
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<Authz, Error> {
        let sa = &self.inner.sa;
        sa.deactivate_authz(id).await?;
        let authz = sa.authz(id).await?;
        info!(
            target: AUDIT,
            event = "authz_deactivated",
            authz_id = %id,
            account_id = %authz.account_id,
            identifier = %authz.identifier,
            "authorization deactivated"
        );
        Ok(authz)
    }

    async fn finalize_order(&self, id: OrderId, csr_der: Vec<u8>) -> Result<Order, Error> {
        let Inner { sa, clock, .. } = &*self.inner;
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
        if !self.inner.settings.profiles.contains_key(&order.profile) {
            return Err(Error::new(
                ErrorKind::InvalidProfile,
                format!(
                    "profile {} is no longer offered",
                    shown_profile_name(&order.profile)
                ),
            ));
        }
        if order
            .not_after
            .is_some_and(|not_after| not_after <= clock.now())
        {
            return Err(Error::malformed("the order's notAfter has passed"));
        }
        // A bad CSR leaves the order ready, so the client can send a better one.
        let csr = check_csr(&csr_der, &order.identifiers).inspect_err(|err| {
            info!(order_id = %id, error = %err, "CSR refused");
        })?;
        self.check_not_blocked(&csr.spki_der, KeyUse::Csr).await?;
        // The certificate's key must not be the account's (Boulder refuses it too):
        // whoever holds the one would hold the other.
        let account = sa.account(order.account_id).await?;
        if spki_canonical_jwk(&csr.spki_der).as_deref() == Some(account.key_jwk.as_str()) {
            return Err(Error::new(
                ErrorKind::BadCsr,
                "the CSR's public key is the account key; certify a key of its own",
            ));
        }
        self.recheck_caa(&order).await?;
        // This request's own name: should the SA's answer be lost (the SA restarts
        // after its commit), the repeat is recognised as this request rather than
        // refused as a second finalize, and no order is left processing with no
        // issuance behind it.
        let attempt = new_token();
        sa_write_with_patience("set_order_processing", REQUEST_SA_PATIENCE, || {
            sa.set_order_processing(id, &attempt)
        })
        .await?;
        info!(
            target: AUDIT,
            event = "issuance_requested",
            account_id = %order.account_id,
            order_id = %id,
            names = %csr.names.join(","),
            profile = %order.profile,
            "issuance requested"
        );
        let request = IssueRequest {
            csr_der,
            account_id: order.account_id,
            order_id: id,
            identifiers: order.identifiers.clone(),
            profile: order.profile.clone(),
            not_before: order.not_before,
            not_after: order.not_after,
        };
        let inner = Arc::clone(&self.inner);
        let issued = self.spawn(inner.issue(IssuanceJob {
            order,
            request,
            names: csr.names,
        }));
        // The issuance runs in a task of its own, so it completes even when this
        // request stops waiting (or is dropped); the answer is the order as the SA
        // then holds it: valid or invalid if the CA was quick, else processing.
        let wait = self.inner.settings.issuance_wait;
        if !wait.is_zero() && !finished_within(issued, wait).await {
            info!(
                order_id = %id,
                waited = ?wait,
                "issuance still running; answering with the order processing"
            );
        }
        sa.order(id).await
    }

    async fn revoke_certificate(&self, request: RevokeRequest) -> Result<(), Error> {
        self.revoke(request).await
    }

    // The limiter writes the audit events of override changes.
    async fn add_rate_limit_override(&self, limit: RateLimitOverride) -> Result<(), Error> {
        self.inner.add_override(limit).await
    }

    async fn remove_rate_limit_override(&self, limit: &str, key: &str) -> Result<(), Error> {
        self.inner.remove_override(limit, key).await
    }

    async fn rate_limit_overrides(&self) -> Result<Vec<RateLimitOverride>, Error> {
        self.inner.overrides().await
    }
}

/// `now + lifetime`, saturating instead of overflowing on absurd config values.
fn after(now: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    now.saturating_add(time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX))
}

/// A time for the audit log.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `now - lifetime`, saturating.
fn before(now: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    now.saturating_sub(time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX))
}

impl Ra {
    /// CAA again, for every name of `order` validated longer ago than
    /// `caa_recheck_after` (CA/Browser Forum Baseline Requirements §3.2.2.8: CAA is
    /// checked within 8 hours of issuance). A refusal leaves the order ready, with a
    /// `caa` problem naming each refused name.
    async fn recheck_caa(&self, order: &Order) -> Result<(), Error> {
        let Inner {
            sa,
            va,
            clock,
            settings,
            ..
        } = &*self.inner;
        let now = clock.now();
        let recheck_after =
            time::Duration::try_from(settings.caa_recheck_after).unwrap_or(time::Duration::MAX);
        let mut refused = Vec::new();
        for authz_id in &order.authz_ids {
            let authz = sa.authz(*authz_id).await?;
            let Some((method, validated)) = authz.challenges.iter().find_map(|c| {
                (c.status == ChallengeStatus::Valid).then_some((c.kind, c.validated?))
            }) else {
                continue;
            };
            if now - validated < recheck_after {
                continue;
            }
            let check = CaaCheck {
                identifier: authz.identifier.clone(),
                wildcard: authz.wildcard,
                method,
                account_uri: self.account_uri(order.account_id),
            };
            let problem = va.check_caa(check).await?;
            info!(
                target: AUDIT,
                event = "caa_rechecked",
                order_id = %order.id,
                account_id = %order.account_id,
                identifier = %authz.identifier,
                wildcard = authz.wildcard,
                method = %method,
                validated = rfc3339(validated),
                allowed = problem.is_none(),
                problem = problem.as_ref().map(|problem| problem.detail.clone()),
                "CAA rechecked at finalize"
            );
            if let Some(problem) = problem {
                refused.push(SubError {
                    identifier: authz.identifier.clone(),
                    kind: problem.kind,
                    detail: problem.detail,
                });
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        let names = refused
            .iter()
            .map(|sub| sub.identifier.value.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Err(
            Error::new(ErrorKind::Caa, format!("CAA forbids issuance for {names}"))
                .with_subproblems(refused),
        )
    }
}

/// A new authorization for one identifier of an order, with the challenges that can
/// prove it: a wildcard only by dns-01 (the authorization is for the base name), a DNS
/// name by http-01, dns-01 or tls-alpn-01, an IP address (RFC 8738) by http-01 or
/// tls-alpn-01.
fn new_authz(id: &Identifier, expires: OffsetDateTime) -> NewAuthz {
    let pending = |kinds: &[ChallengeType]| {
        kinds
            .iter()
            .map(|kind| Challenge::pending(*kind, new_token()))
            .collect::<Vec<_>>()
    };
    let (identifier, wildcard, challenges) = match id.kind {
        IdentifierType::Dns => match id.value.strip_prefix("*.") {
            Some(base) => (
                Identifier::dns(base),
                true,
                pending(&[ChallengeType::Dns01]),
            ),
            None => (
                id.clone(),
                false,
                pending(&[
                    ChallengeType::Http01,
                    ChallengeType::Dns01,
                    ChallengeType::TlsAlpn01,
                ]),
            ),
        },
        IdentifierType::Ip => (
            id.clone(),
            false,
            pending(&[ChallengeType::Http01, ChallengeType::TlsAlpn01]),
        ),
    };
    NewAuthz {
        identifier,
        wildcard,
        expires,
        challenges,
    }
}

/// A challenge token: 256 random bits, base64url without padding (RFC 8555 §8.1).
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Identifiers for the audit log: their values joined by commas (no DNS name or
/// IP address holds one).
fn identifier_list(ids: &[Identifier]) -> String {
    ids.iter()
        .map(|id| id.value.as_str())
        .collect::<Vec<_>>()
        .join(",")
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

mod limits;
mod reuse;
mod revoke;

#[cfg(test)]
mod tests;
