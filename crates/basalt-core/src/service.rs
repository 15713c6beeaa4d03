//! The contracts each service offers the others.
//!
//! A service holds its peers as `Arc<dyn Trait>`: in production a gRPC client from
//! basalt-grpc, in tests the implementation itself or a fake. The traits are narrow
//! on purpose (Boulder's `sa/proto/subsets.go`): the WFE only ever sees
//! [`StorageReadOnly`].

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::Account;
use crate::AccountId;
use crate::AccountStatus;
use crate::Authz;
use crate::AuthzId;
use crate::AuthzStatus;
use crate::BlockedKey;
use crate::CertStatus;
use crate::CertificateRecord;
use crate::CertificateSummary;
use crate::ChallengeType;
use crate::CrlPlacement;
use crate::EabKey;
use crate::Error;
use crate::Identifier;
use crate::Incident;
use crate::IssuedCertificate;
use crate::NewAccount;
use crate::NewIncident;
use crate::NewOrder;
use crate::Order;
use crate::OrderId;
use crate::RateLimitOverride;
use crate::RevocationReason;
use crate::RevocationStatus;
use crate::RevokedEntry;
use crate::Serial;
use crate::SpkiHash;
use crate::StatusChange;
use crate::ValidationRecord;

/// A certificate and its revocation status by serial, as served for download: only
/// certificates, never precertificates.
#[async_trait]
pub trait CertificateLookup: Send + Sync + 'static {
    /// The certificate with this serial, with its revocation status.
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error>;
}

/// The revocation status of any serial the CA stored a precertificate for: all the
/// OCSP responder needs from the storage authority.
#[async_trait]
pub trait RevocationLookup: Send + Sync + 'static {
    /// The status of `serial`, with its certificate or, when only the precertificate
    /// was stored, its precertificate; [`crate::ErrorKind::NotFound`] for a serial
    /// with neither.
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error>;
    /// The revoked certificates of one CRL shard that expire after `expires_after`,
    /// by serial: those whose [`CrlPlacement`] names `issuer_key_hash` and `shard`.
    async fn revoked_certificates(
        &self,
        issuer_key_hash: &[u8],
        shard: u32,
        expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error>;
    /// The serials whose status was written at or after `since` (whole seconds), in
    /// order of [`StatusChange::changed_at`] then serial, at most `limit` of them:
    /// the feed the OCSP responder and CRL updater follow. A caller polling it
    /// should ask again from a little before the newest `changed_at` it saw, since
    /// writes in flight commit late.
    async fn status_changes(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StatusChange>, Error>;
}

/// Recording what the CA signs, before and after it signs it: all the CA needs
/// from the storage authority (Boulder's certificate-storage subset).
#[async_trait]
pub trait CertificateStore: Send + Sync + 'static {
    /// Records a serial before anything is signed with it; fails if it was ever used.
    async fn add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error>;
    /// Records the linted precertificate before the issuer key signs the certificate,
    /// and gives its serial the status good, so the serial can be revoked even if the
    /// certificate is never stored; `placement` says which issuer signs it and on
    /// which CRL shard it is listed once revoked.
    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error>;
    /// Records an issued certificate and its chain; the serial keeps the status its
    /// precertificate gave it (a revocation in between stands).
    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error>;
}

/// Reads from the storage authority (clients: WFE, RA, OCSP).
#[async_trait]
pub trait StorageReadOnly: CertificateLookup {
    /// The account `id`.
    async fn account(&self, id: AccountId) -> Result<Account, Error>;
    /// The account whose key has this RFC 7638 thumbprint.
    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error>;
    /// The order `id`, its status computed from its authorizations.
    async fn order(&self, id: OrderId) -> Result<Order, Error>;
    /// The authorization `id`.
    async fn authz(&self, id: AuthzId) -> Result<Authz, Error>;
    /// The order that replaces the certificate with this serial (RFC 9773 §5), if
    /// any order not yet invalid does.
    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error>;
    /// The external account binding key `key_id`.
    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error>;
    /// Every external account binding key, newest first.
    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error>;
    /// One page of an account's orders, newest first (RFC 8555 §7.1.2.1).
    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error>;
    /// Whether the key whose DER SubjectPublicKeyInfo has this SHA-256 is on the
    /// blocked-keys list.
    async fn key_blocked(&self, spki_sha256: &SpkiHash) -> Result<bool, Error>;
    /// Order reuse: the account's newest order for exactly these identifiers (in any
    /// order, duplicates ignored) and this profile that is still pending or ready,
    /// not yet expired, replaces nothing and asked for no notBefore/notAfter.
    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error>;
    /// Authorization reuse: the account's authorizations for these identifiers
    /// (authorization identifiers: a wildcard's base name) that are valid and expire
    /// after `valid_until_at_least`, or pending and not yet expired; any order.
    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error>;
    /// The incident, if any, that names this serial (the newest, if several do).
    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error>;
    /// Every incident, newest first.
    async fn incidents(&self) -> Result<Vec<Incident>, Error>;
}

/// Finding certificates by what an operator knows of them: a name, an account, a
/// key (client: `basalt admin`). A trait of its own, beside [`StorageReadOnly`], so
/// that storage fakes that never search need not implement it.
#[async_trait]
pub trait CertificateSearch: Send + Sync + 'static {
    /// The certificates `query` selects, newest first (by notBefore, then serial),
    /// at most [`CertificateQuery::limit`] of them.
    ///
    /// A search by name or by key finds only certificates whose precertificates were
    /// stored since the SA indexes names and keys: earlier ones are not indexed
    /// (a search by account finds them all). [`crate::ErrorKind::Malformed`] for a
    /// name that cannot be searched for.
    async fn search_certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Vec<CertificateSummary>, Error>;
}

/// What a [`CertificateSearch`] looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateQuery {
    /// Which certificates.
    pub selector: CertificateSelector,
    /// Only those neither revoked nor expired (at the SA's now).
    pub active_only: bool,
    /// At most this many: 0 means [`Self::DEFAULT_LIMIT`], more than
    /// [`Self::MAX_LIMIT`] means [`Self::MAX_LIMIT`].
    pub limit: u32,
}

impl CertificateQuery {
    /// How many certificates a search returns when its limit is 0.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The most certificates one search returns.
    pub const MAX_LIMIT: u32 = 1000;

    /// The limit the SA applies: [`Self::limit`] with 0 and values above the cap
    /// replaced.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            limit => limit.min(Self::MAX_LIMIT),
        }
    }
}

/// The one thing a [`CertificateQuery`] selects certificates by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateSelector {
    /// Those issued to this account.
    Account(AccountId),
    /// Those for the key whose DER SubjectPublicKeyInfo has this SHA-256.
    Key(SpkiHash),
    /// Those that name `identifier` (compared as certificates carry names: DNS names
    /// in lowercase, without a trailing dot; IP addresses in their canonical text)
    /// and, with `subdomains`, those that name a DNS name under it
    /// (`www.example.com` and `*.example.com` are under `example.com`).
    Name {
        /// The name or address.
        identifier: Identifier,
        /// Whether names under a DNS name count too.
        subdomains: bool,
    },
}

/// Which page of a list to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// The `next` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
    /// At most this many items (the SA caps it).
    pub size: u32,
}

/// A page of an account's orders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrdersPage {
    /// The orders, newest first.
    pub order_ids: Vec<OrderId>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// New contact URLs.
    pub contacts: Option<Vec<String>>,
    /// New status (deactivation).
    pub status: Option<AccountStatus>,
    /// A new key (rollover, RFC 8555 §7.3.5): its JWK JSON and RFC 7638 thumbprint.
    pub key: Option<(String, String)>,
}

/// The outcome of a validation, to record on an authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzOutcome {
    /// [`AuthzStatus::Valid`] or [`AuthzStatus::Invalid`].
    pub status: AuthzStatus,
    /// When the validation ended.
    pub validated_at: OffsetDateTime,
    /// The authorization's new expiry (a valid authorization lives longer).
    pub expires: OffsetDateTime,
    /// What the validator saw.
    pub records: Vec<ValidationRecord>,
    /// Why it failed.
    pub error: Option<Error>,
}

/// Writes to the storage authority (clients: RA, admin; the CA through
/// [`CertificateStore`]).
#[async_trait]
pub trait Storage: StorageReadOnly + CertificateStore + RevocationLookup {
    /// Creates an account; [`crate::ErrorKind::Conflict`] if the key is taken.
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error>;
    /// Changes an account; [`crate::ErrorKind::Conflict`] if a new key belongs to
    /// another account.
    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error>;
    /// Creates an order and its authorizations in one transaction.
    async fn new_order(&self, order: NewOrder) -> Result<Order, Error>;
    /// Deactivates a pending or valid authorization (RFC 8555 §7.5.2).
    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error>;
    /// Stores a new external account binding key; [`crate::ErrorKind::Conflict`]
    /// if its identifier is taken.
    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error>;
    /// Revokes an external account binding key, so no new account can use it.
    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error>;
    /// Marks a pending challenge as processing; fails if the authorization is not pending.
    ///
    /// `attempt` names the request that starts the validation (random, chosen by the
    /// caller): a repeat with the same `attempt`, after an answer lost to a crash,
    /// succeeds; anyone else finds the challenge no longer pending.
    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        attempt: &str,
    ) -> Result<(), Error>;
    /// Records a validation's outcome on the authorization and its challenge.
    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error>;
    /// Moves a ready order to processing; [`crate::ErrorKind::OrderNotReady`] otherwise.
    ///
    /// `attempt` names the finalize request (random, chosen by the caller): a repeat
    /// with the same `attempt`, after an answer lost to a crash, succeeds; any other
    /// caller of an order already processing gets OrderNotReady.
    async fn set_order_processing(&self, id: OrderId, attempt: &str) -> Result<(), Error>;
    /// Marks a processing order valid with its certificate. A repeat with the serial
    /// the order already has succeeds and changes nothing (the answer to the first call
    /// may have been lost); any other serial on a valid order is
    /// [`crate::ErrorKind::OrderNotReady`].
    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error>;
    /// Marks an order invalid with the reason.
    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error>;
    /// Revokes a certificate, or the serial of a precertificate whose certificate was
    /// never stored; [`crate::ErrorKind::AlreadyRevoked`] if it was.
    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error>;
    /// Puts a key on the blocked-keys list. Blocking a key already blocked succeeds
    /// and keeps the first record (its time, source and comment).
    async fn block_key(&self, key: BlockedKey) -> Result<(), Error>;
    /// Changes the reason of a revoked serial to keyCompromise, keeping its
    /// revocation time (the re-revocation Boulder allows once the key is proved
    /// compromised). [`crate::ErrorKind::AlreadyRevoked`] if its reason is
    /// keyCompromise already, [`crate::ErrorKind::Conflict`] if it is not revoked,
    /// [`crate::ErrorKind::NotFound`] for an unknown serial.
    async fn rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error>;
    /// Declares an incident; [`crate::ErrorKind::Conflict`] if its name is taken,
    /// [`crate::ErrorKind::Malformed`] naming the first serial the CA never used.
    async fn add_incident(&self, incident: NewIncident) -> Result<Incident, Error>;
}

/// Who asks for a revocation, as the WFE authenticated them (RFC 8555 §7.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requester {
    /// The account that signed the request with its key.
    Account(AccountId),
    /// Whoever holds the certificate's private key: the request was signed by the
    /// key whose SubjectPublicKeyInfo (DER) this is.
    CertificateKey(Vec<u8>),
    /// An operator (`basalt admin revoke`), by the name they gave; may use any
    /// reason, and may revoke a serial whose certificate was never stored.
    Operator(String),
}

/// A revocation request that the WFE has authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeRequest {
    /// The certificate to revoke.
    pub serial: Serial,
    /// RFC 5280 reason.
    pub reason: RevocationReason,
    /// Who asks.
    pub requester: Requester,
}

/// A newOrder request as the WFE authenticated and parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    /// The account asking.
    pub account_id: AccountId,
    /// The names requested.
    pub identifiers: Vec<Identifier>,
    /// The profile asked for; `None` means the RA's default profile.
    pub profile: Option<String>,
    /// The requested notBefore.
    pub not_before: Option<OffsetDateTime>,
    /// The requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// The certificate this order replaces (RFC 9773 §5); the WFE resolved the
    /// ARI certID to this serial and checked it names a certificate of ours.
    pub replaces: Option<Serial>,
}

/// The registration authority (clients: WFE, admin).
#[async_trait]
pub trait RegistrationAuthority: Send + Sync + 'static {
    /// Registers an account (RFC 8555 §7.3).
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error>;
    /// Replaces an account's contacts (RFC 8555 §7.3.2).
    async fn update_account_contacts(
        &self,
        id: AccountId,
        contacts: Vec<String>,
    ) -> Result<Account, Error>;
    /// Deactivates an account (RFC 8555 §7.3.6).
    async fn deactivate_account(&self, id: AccountId) -> Result<Account, Error>;
    /// Replaces an account's key (RFC 8555 §7.3.5); the WFE checked both signatures.
    async fn rollover_account_key(
        &self,
        id: AccountId,
        new_key_jwk: String,
        new_key_thumbprint: String,
    ) -> Result<Account, Error>;
    /// Creates an order (RFC 8555 §7.4).
    async fn new_order(&self, request: OrderRequest) -> Result<Order, Error>;
    /// Starts validating a challenge (RFC 8555 §7.5.1); the caller owns the authorization.
    async fn perform_validation(&self, id: AuthzId, kind: ChallengeType) -> Result<Authz, Error>;
    /// Deactivates an authorization (RFC 8555 §7.5.2); the caller owns it.
    async fn deactivate_authz(&self, id: AuthzId) -> Result<Authz, Error>;
    /// Finalizes an order with a CSR (RFC 8555 §7.4); the caller owns the order.
    /// Returns the order as soon as issuance has started (`processing`), or done.
    async fn finalize_order(&self, id: OrderId, csr_der: Vec<u8>) -> Result<Order, Error>;
    /// Revokes a certificate (RFC 8555 §7.6), or a serial for an operator.
    async fn revoke_certificate(&self, request: RevokeRequest) -> Result<(), Error>;
    /// Sets the rate limit of one key (replacing any override it had).
    async fn add_rate_limit_override(&self, limit: RateLimitOverride) -> Result<(), Error>;
    /// Removes the override of `key` under `limit`; [`crate::ErrorKind::NotFound`]
    /// if it has none.
    async fn remove_rate_limit_override(&self, limit: &str, key: &str) -> Result<(), Error>;
    /// Every override in force: from the config and from operators.
    async fn rate_limit_overrides(&self) -> Result<Vec<RateLimitOverride>, Error>;
}

/// What the VA is asked to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateRequest {
    /// The identifier being validated.
    pub identifier: Identifier,
    /// The challenge type.
    pub challenge: ChallengeType,
    /// The challenge token.
    pub token: String,
    /// The expected key authorization (token "." thumbprint).
    pub key_authorization: String,
    /// The account's URL, for CAA `accounturi` (RFC 8657).
    pub account_uri: String,
    /// Whether the authorization is for the wildcard of `identifier`: CAA then
    /// reads `issuewild` (RFC 8659 §4.3).
    pub wildcard: bool,
}

/// What the VA found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationResult {
    /// What the validator saw.
    pub records: Vec<ValidationRecord>,
    /// Why validation failed; `None` on success.
    pub problem: Option<Error>,
}

/// The validation authority (client: RA).
#[async_trait]
pub trait ValidationAuthority: Send + Sync + 'static {
    /// Checks a challenge. Validation failures are in the result; `Err` means the
    /// check could not be made.
    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error>;
    /// Checks CAA again for a name validated a while ago (at finalize): `Ok(None)`
    /// when issuance is allowed, `Ok(Some(problem))` when CAA forbids it or cannot be
    /// read; `Err` means the check could not be made.
    async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error>;
}

/// What the VA is asked to check CAA for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaCheck {
    /// The name; an IP address has no CAA and is always allowed.
    pub identifier: Identifier,
    /// Whether the authorization was for the wildcard of `identifier`.
    pub wildcard: bool,
    /// How the name was validated, for `validationmethods` (RFC 8657).
    pub method: ChallengeType,
    /// The account's URL, for `accounturi` (RFC 8657).
    pub account_uri: String,
}

/// What the CA is asked to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// The CSR, DER; the RA has checked it against the order.
    pub csr_der: Vec<u8>,
    /// The account the certificate is for.
    pub account_id: AccountId,
    /// The order being finalized.
    pub order_id: OrderId,
    /// The names the certificate must carry, as the RA approved them.
    pub identifiers: Vec<Identifier>,
    /// The certificate profile to issue under.
    pub profile: String,
    /// The notBefore the order asked for, within the profile's limits.
    pub not_before: Option<OffsetDateTime>,
    /// The notAfter the order asked for, within the profile's limits.
    pub not_after: Option<OffsetDateTime>,
}

/// The certificate authority (client: RA).
#[async_trait]
pub trait CertificateAuthority: Send + Sync + 'static {
    /// Signs a certificate: serial recorded, linted, precertificate stored, signed,
    /// stored (see DESIGN.md, the issuance flow).
    async fn issue_certificate(&self, request: IssueRequest) -> Result<IssuedCertificate, Error>;
}

/// One certificate's status, for the CA to sign an OCSP response about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequestEntry {
    /// The certificate.
    pub serial: Serial,
    /// Its status, as the response states it.
    pub status: OcspStatus,
    /// When it was revoked; required when `status` is revoked, ignored otherwise.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub reason: Option<RevocationReason>,
    /// Which issuer signed the certificate, and so signs the response: the SHA-1
    /// of the issuer's subjectPublicKey (whatever `hash_algorithm` is).
    pub issuer_key_hash: Vec<u8>,
    /// The hash algorithm of the response's CertID, the request's own (RFC 6960
    /// §4.2.2.3: the response repeats the CertID it answers).
    pub hash_algorithm: CertIdHash,
}

/// The certStatus of an OCSP SingleResponse (RFC 6960 §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked, at the entry's `revoked_at`.
    Revoked,
    /// A serial the issuer is ours for but that Basalt never issued.
    Unknown,
}

impl OcspStatus {
    /// The wire name: `good`, `revoked` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
        }
    }
}

impl From<CertStatus> for OcspStatus {
    fn from(status: CertStatus) -> Self {
        match status {
            CertStatus::Good => Self::Good,
            CertStatus::Revoked => Self::Revoked,
        }
    }
}

impl std::fmt::Display for OcspStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OcspStatus {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value {
            "good" => Ok(Self::Good),
            "revoked" => Ok(Self::Revoked),
            "unknown" => Ok(Self::Unknown),
            _ => Err(Error::malformed(format!("unknown ocsp status {value:?}"))),
        }
    }
}

/// The hash algorithm of an OCSP CertID (RFC 6960 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// id-sha1, what most clients send.
    Sha1,
    /// id-sha256.
    Sha256,
}

impl CertIdHash {
    /// The wire name: `sha1` or `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }
}

impl std::fmt::Display for CertIdHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CertIdHash {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            _ => Err(Error::malformed(format!(
                "unknown certid hash algorithm {value:?}"
            ))),
        }
    }
}

/// One CRL shard for the CA to sign (RFC 5280 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRequest {
    /// The issuer whose CRL it is: the SHA-1 of its subjectPublicKey.
    pub issuer_key_hash: Vec<u8>,
    /// The shard, below the CA's configured shard count; the CA writes the shard's
    /// URL (the one in the CRL distribution points of its certificates) into the
    /// issuingDistributionPoint.
    pub shard: u32,
    /// thisUpdate; the CRL number is derived from it, so later CRLs get greater
    /// numbers. The CA sets nextUpdate from its configured CRL lifetime.
    pub this_update: OffsetDateTime,
    /// The revoked certificates to list.
    pub entries: Vec<RevokedEntry>,
}

/// Revocation signing (client: the OCSP responder and CRL updater).
#[async_trait]
pub trait RevocationSigner: Send + Sync + 'static {
    /// Signs one OCSP response (RFC 6960, DER) per entry, in order.
    async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error>;
    /// Signs one CRL shard (DER).
    async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error>;
}

/// Anti-replay nonces (RFC 8555 §6.5) that every WFE instance can redeem
/// (client: WFE).
#[async_trait]
pub trait Nonces: Send + Sync + 'static {
    /// A fresh nonce.
    async fn new_nonce(&self) -> Result<String, Error>;
    /// `count` fresh nonces (at least one), for a caller that hands them out later.
    async fn new_nonces(&self, count: usize) -> Result<Vec<String>, Error> {
        let mut nonces = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            nonces.push(self.new_nonce().await?);
        }
        Ok(nonces)
    }
    /// Whether `nonce` was issued and not used before; it is used up either way.
    async fn redeem(&self, nonce: &str) -> Result<bool, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_limits_default_and_cap() {
        let query = |limit| CertificateQuery {
            selector: CertificateSelector::Account(AccountId(1)),
            active_only: false,
            limit,
        };
        assert_eq!(query(0).effective_limit(), CertificateQuery::DEFAULT_LIMIT);
        assert_eq!(query(1).effective_limit(), 1);
        assert_eq!(query(1000).effective_limit(), 1000);
        assert_eq!(query(1001).effective_limit(), CertificateQuery::MAX_LIMIT);
        assert_eq!(
            query(u32::MAX).effective_limit(),
            CertificateQuery::MAX_LIMIT
        );
    }
}
