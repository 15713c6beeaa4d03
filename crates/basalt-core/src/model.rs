//! The ACME objects (RFC 8555 §7.1) as Basalt stores and passes them between services.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::Serialize;
use time::OffsetDateTime;

use crate::AccountId;
use crate::AuthzId;
use crate::Error;
use crate::OrderId;
use crate::Serial;
use crate::SpkiHash;

/// The type of an identifier (RFC 8555 §9.7.7, RFC 8738).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierType {
    /// A DNS name.
    Dns,
    /// An IP address (RFC 8738).
    Ip,
}

/// A name a certificate is requested for (RFC 8555 §7.1.3 `identifiers`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// The name or address.
    pub value: String,
}

impl Identifier {
    /// A DNS identifier.
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Dns,
            value: value.into(),
        }
    }

    /// An IP identifier.
    pub fn ip(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Ip,
            value: value.into(),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// RFC 8555 §7.1.6 account status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Deactivated by its holder.
    Deactivated,
    /// Revoked by the server.
    Revoked,
    /// In use.
    Valid,
}

wire_names!(AccountStatus { Deactivated => "deactivated", Revoked => "revoked", Valid => "valid" });

/// RFC 8555 §7.1.6 order status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Failed, or an authorization failed or expired.
    Invalid,
    /// Some authorization is still pending.
    Pending,
    /// The CA is issuing the certificate.
    Processing,
    /// Every authorization is valid: the order can be finalized.
    Ready,
    /// The certificate is issued.
    Valid,
}

wire_names!(OrderStatus {
    Invalid => "invalid",
    Pending => "pending",
    Processing => "processing",
    Ready => "ready",
    Valid => "valid",
});

/// RFC 8555 §7.1.6 authorization status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthzStatus {
    /// Deactivated by the client.
    Deactivated,
    /// Past its expiry.
    Expired,
    /// Its challenge failed.
    Invalid,
    /// Waiting for a challenge to be answered.
    Pending,
    /// Revoked by the server.
    Revoked,
    /// A challenge succeeded.
    Valid,
}

wire_names!(AuthzStatus {
    Deactivated => "deactivated",
    Expired => "expired",
    Invalid => "invalid",
    Pending => "pending",
    Revoked => "revoked",
    Valid => "valid",
});

/// RFC 8555 §7.1.6 challenge status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// The validation failed.
    Invalid,
    /// Not yet answered.
    Pending,
    /// The client asked for validation; it is under way.
    Processing,
    /// The validation succeeded.
    Valid,
}

wire_names!(ChallengeStatus {
    Invalid => "invalid",
    Pending => "pending",
    Processing => "processing",
    Valid => "valid",
});

/// A challenge type (RFC 8555 §8, RFC 8737).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChallengeType {
    /// RFC 8555 §8.4.
    #[serde(rename = "dns-01")]
    Dns01,
    /// RFC 8555 §8.3.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

wire_names!(ChallengeType {
    Dns01 => "dns-01",
    Http01 => "http-01",
    TlsAlpn01 => "tls-alpn-01",
});

/// An ACME account (RFC 8555 §7.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Chosen by the SA.
    pub id: AccountId,
    /// The account's public key as a JWK (RFC 7517), in JSON.
    pub key_jwk: String,
    /// The key's RFC 7638 thumbprint (base64url of SHA-256): the lookup key and the
    /// suffix of every key authorization.
    pub key_thumbprint: String,
    /// Contact URLs (`mailto:`).
    pub contacts: Vec<String>,
    /// Its status.
    pub status: AccountStatus,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// What the SA needs to create an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// See [`Account::key_jwk`].
    pub key_jwk: String,
    /// See [`Account::key_thumbprint`].
    pub key_thumbprint: String,
    /// See [`Account::contacts`].
    pub contacts: Vec<String>,
    /// The external account binding key the registration used (RFC 8555 §7.3.4);
    /// the SA binds it to the new account in the same transaction.
    pub eab_key_id: Option<String>,
    /// The address the request came from, for the new-accounts rate limits; the SA
    /// does not store it.
    pub remote_ip: Option<IpAddr>,
}

/// An external account binding key (RFC 8555 §7.3.4): the MAC key an operator
/// hands a subscriber out of band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EabKey {
    /// The key identifier the client sends as the inner JWS `kid`.
    pub key_id: String,
    /// The HMAC key (at least 256 bits).
    pub hmac_key: Vec<u8>,
    /// The operator's note (who it is for).
    pub comment: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Whether the operator revoked it.
    pub revoked: bool,
    /// The account it was used for; a key binds one account only.
    pub account_id: Option<AccountId>,
}

/// How a key came onto the blocked-keys list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockedKeySource {
    /// An operator blocked it (`basalt admin block-key`).
    Admin,
    /// Someone proved it compromised: they revoked a certificate with a request
    /// signed by the certificate's own key (RFC 8555 §7.6).
    KeyCompromise,
}

wire_names!(BlockedKeySource { Admin => "admin", KeyCompromise => "key-compromise" });

/// A public key refused everywhere: as an account key (new account, key change) and
/// in a CSR, because it is known compromised or otherwise banned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedKey {
    /// The SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub spki_sha256: SpkiHash,
    /// When it was blocked.
    pub added_at: OffsetDateTime,
    /// Who blocked it.
    pub source: BlockedKeySource,
    /// Why, in the operator's words (may be empty).
    pub comment: String,
}

/// What a validator saw while validating (RFC 8555 §8.3, Boulder's
/// `ValidationRecord`), kept for audit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRecord {
    /// The URL fetched (http-01), one record per hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The name looked up.
    pub hostname: String,
    /// The port connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Every address the name resolved to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses_resolved: Vec<IpAddr>,
    /// The address connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_used: Option<IpAddr>,
    /// With multi-perspective validation, on the primary's first record: what each
    /// remote perspective found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perspectives: Vec<PerspectiveOutcome>,
}

/// What one remote perspective found in multi-perspective validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerspectiveOutcome {
    /// The perspective's name.
    pub perspective: String,
    /// Its region.
    pub region: String,
    /// Whether it validated the challenge (and CAA).
    pub succeeded: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A challenge of an authorization (RFC 8555 §7.1.5, §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Its type; unique within its authorization.
    pub kind: ChallengeType,
    /// The random token (base64url, 128 bits or more).
    pub token: String,
    /// Its status.
    pub status: ChallengeStatus,
    /// When it was validated.
    pub validated: Option<OffsetDateTime>,
    /// Why it failed.
    pub error: Option<Error>,
    /// What the validator saw.
    pub validation_records: Vec<ValidationRecord>,
}

impl Challenge {
    /// A new, pending challenge.
    pub fn pending(kind: ChallengeType, token: String) -> Self {
        Self {
            kind,
            token,
            status: ChallengeStatus::Pending,
            validated: None,
            error: None,
            validation_records: Vec::new(),
        }
    }
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authz {
    /// Chosen by the SA.
    pub id: AuthzId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// What it authorizes (without any `*.` prefix).
    pub identifier: Identifier,
    /// Its status, with expiry taken into account.
    pub status: AuthzStatus,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// Whether it was created for a wildcard name.
    pub wildcard: bool,
    /// Its challenges.
    pub challenges: Vec<Challenge>,
}

impl Authz {
    /// The challenge of type `kind`, if the authorization offers it.
    pub fn challenge(&self, kind: ChallengeType) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.kind == kind)
    }
}

/// An authorization to create with a new order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuthz {
    /// What it authorizes.
    pub identifier: Identifier,
    /// Whether it was created for a wildcard name.
    pub wildcard: bool,
    /// When it expires if it stays pending.
    pub expires: OffsetDateTime,
    /// Its challenges, all pending.
    pub challenges: Vec<Challenge>,
}

/// An order (RFC 8555 §7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Chosen by the SA.
    pub id: OrderId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The names requested, sorted.
    pub identifiers: Vec<Identifier>,
    /// Its status, computed from its authorizations and its own progress.
    pub status: OrderStatus,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// Its authorizations, one per identifier.
    pub authz_ids: Vec<AuthzId>,
    /// Why it became invalid.
    pub error: Option<Error>,
    /// The certificate, once issued.
    pub certificate_serial: Option<Serial>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// The certificate profile it asked for (draft-ietf-acme-profiles).
    pub profile: String,
    /// The requested notBefore (RFC 8555 §7.4).
    pub not_before: Option<OffsetDateTime>,
    /// The requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// The certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<Serial>,
}

/// An order to create, with authorizations for the identifiers that need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The names requested.
    pub identifiers: Vec<Identifier>,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// The authorizations to create with it.
    pub authzs: Vec<NewAuthz>,
    /// See [`Order::profile`].
    pub profile: String,
    /// See [`Order::not_before`].
    pub not_before: Option<OffsetDateTime>,
    /// See [`Order::not_after`].
    pub not_after: Option<OffsetDateTime>,
    /// See [`Order::replaces`].
    pub replaces: Option<Serial>,
    /// Existing authorizations of the same account to link to the order instead of
    /// creating new ones (authorization reuse); each must still be pending or valid
    /// and unexpired when the order is stored.
    pub reused_authz_ids: Vec<AuthzId>,
}

/// A certificate's revocation status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked,
}

wire_names!(CertStatus { Good => "good", Revoked => "revoked" });

/// RFC 5280 §5.3.1 CRL reason codes that a subscriber may use (RFC 8555 §7.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum RevocationReason {
    /// 0
    Unspecified,
    /// 1
    KeyCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 9
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [Self; 6] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::PrivilegeWithdrawn => 9,
        }
    }

    /// The RFC 5280 §5.3.1 name of the reason, as ACME clients spell it
    /// (`keyCompromise`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = Error;

    /// The reason named as in RFC 5280 §5.3.1 (`keyCompromise`); names are
    /// case-sensitive, and reasons that are not for subscribers are refused.
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|reason| reason.as_str()).collect();
                Error::new(
                    crate::ErrorKind::BadRevocationReason,
                    format!(
                        "{s:?} is not a revocation reason; use one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

impl From<RevocationReason> for u8 {
    fn from(reason: RevocationReason) -> Self {
        reason.code()
    }
}

impl TryFrom<u8> for RevocationReason {
    type Error = Error;

    /// Codes 2 (cACompromise), 6 (certificateHold), 8 (removeFromCRL) and 10
    /// (aACompromise) are not for subscribers; 7 is unused (RFC 5280).
    fn try_from(code: u8) -> Result<Self, Error> {
        Ok(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            9 => Self::PrivilegeWithdrawn,
            _ => {
                return Err(Error::new(
                    crate::ErrorKind::BadRevocationReason,
                    format!("revocation reason {code} is not allowed"),
                ));
            }
        })
    }
}

/// A certificate as the SA keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Its serial.
    pub serial: Serial,
    /// The account it was issued to.
    pub account_id: AccountId,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The issuer chain up to (not including) the root, DER, nearest first.
    pub chain: Vec<Vec<u8>>,
    /// notBefore.
    pub issued_at: OffsetDateTime,
    /// notAfter.
    pub expires_at: OffsetDateTime,
    /// Revocation status.
    pub status: CertStatus,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub revocation_reason: Option<RevocationReason>,
}

impl CertificateRecord {
    /// The suggested renewal window (RFC 9773 §4.2) at `now`: (start, end).
    ///
    /// A certificate valid for L = notAfter − notBefore is to be renewed between
    /// notBefore + 2L/3 and notBefore + 3L/4 (days 60 to 67½ of a 90-day
    /// certificate), leaving a quarter of its life to renew in should anything go
    /// wrong. A revoked certificate, or one named in an operator's incident, gets a
    /// window that has already passed: the client is to renew at once.
    pub fn renewal_window(
        &self,
        in_incident: bool,
        now: OffsetDateTime,
    ) -> (OffsetDateTime, OffsetDateTime) {
        if self.status == CertStatus::Revoked || in_incident {
            return (
                now - time::Duration::hours(2),
                now - time::Duration::hours(1),
            );
        }
        let not_before = self.issued_at;
        let lifetime = (self.expires_at - not_before).whole_seconds().max(0);
        (
            not_before + time::Duration::seconds(lifetime * 2 / 3),
            not_before + time::Duration::seconds(lifetime * 3 / 4),
        )
    }
}

/// A certificate as an operator's search finds it (`basalt admin certs`): enough to
/// tell it apart and act on it, without its DER.
///
/// Every serial the CA stored a precertificate for is one, whether or not its
/// certificate was stored: the issuer key may have signed it either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Its serial.
    pub serial: Serial,
    /// The account it was issued to.
    pub account_id: AccountId,
    /// The DNS names and IP addresses it is for, sorted; empty when the SA cannot
    /// read them from what it stored.
    pub names: Vec<Identifier>,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// Revocation status.
    pub status: CertStatus,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub revocation_reason: Option<RevocationReason>,
}

/// An operator-declared incident (`basalt admin incident`): the certificates it
/// names are to be renewed at once, so their renewal window (RFC 9773) moves to now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// Chosen by the SA.
    pub id: i64,
    /// The operator's short name for it, e.g. `2026-11-cps-mismatch`; unique.
    pub name: String,
    /// A page that explains it, served as the ARI `explanationURL`; may be empty.
    pub url: String,
    /// When it was declared.
    pub created_at: OffsetDateTime,
    /// How many serials it names.
    pub serials: u64,
}

/// An incident to declare, with the serials it affects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIncident {
    /// See [`Incident::name`].
    pub name: String,
    /// See [`Incident::url`].
    pub url: String,
    /// The affected serials; each must be one the CA used.
    pub serials: Vec<Serial>,
}

/// A rate limit's parameters (a GCRA token bucket): `count` requests per `period`,
/// with room for a burst of up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `period` on average.
    pub count: u32,
    /// The period `count` is measured over.
    pub period: std::time::Duration,
    /// The most requests allowed at once (the bucket's size).
    pub burst: u32,
}

/// A rate limit changed for one key (an account, an IP, a domain, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitOverride {
    /// The limit's name, e.g. `new_orders_per_account`.
    pub limit: String,
    /// The bucket key the override is for, as the limit spells it (an account ID, an
    /// IP address, a registered domain, …).
    pub key: String,
    /// The limit that applies to that key instead of the default.
    pub rate: RateLimit,
    /// Why, in the operator's words.
    pub comment: String,
}

/// The revocation status of a serial the CA signed something with, and what it
/// signed: the certificate or, when the certificate was never stored (the CA died
/// between the precertificate and the certificate), the precertificate. Either way
/// the serial has a status and can be revoked, so OCSP and CRLs answer for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationStatus {
    /// The serial.
    pub serial: Serial,
    /// The certificate, DER; the precertificate (a linting certificate, not signed
    /// by the issuer) when [`Self::precertificate`] is true.
    pub der: Vec<u8>,
    /// Whether only the precertificate is stored.
    pub precertificate: bool,
    /// notAfter.
    pub expires_at: OffsetDateTime,
    /// Revocation status.
    pub status: CertStatus,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub revocation_reason: Option<RevocationReason>,
}

/// Where a certificate's revocation is published: which issuer signed it (the SHA-1
/// of the issuer's subjectPublicKey, the key hash OCSP CertIDs carry) and which CRL
/// shard its CRL distribution point names. The CA says so when it stores the
/// precertificate; the SA keeps it beside the serial's status.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrlPlacement {
    /// SHA-1 of the issuer's subjectPublicKey (20 bytes).
    pub issuer_key_hash: Vec<u8>,
    /// The shard of the issuer's CRL the certificate is listed on once revoked;
    /// `None` when the certificate carries no CRL distribution point.
    pub shard: Option<u32>,
}

/// One revoked, unexpired certificate as its CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The serial.
    pub serial: Serial,
    /// When it was revoked (the CRL entry's revocationDate).
    pub revoked_at: OffsetDateTime,
    /// Why; [`RevocationReason::Unspecified`] gets no reasonCode extension.
    pub reason: RevocationReason,
}

/// A serial whose status was set or changed (stored as good with its
/// precertificate, revoked, or re-revoked for another reason), as the SA reports
/// them in order of `changed_at`: what the OCSP responder and CRL updater follow to
/// drop stale responses and regenerate shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// The serial.
    pub serial: Serial,
    /// Its status now.
    pub status: CertStatus,
    /// When the status was last written (whole seconds, as stored).
    pub changed_at: OffsetDateTime,
    /// Its issuer and CRL shard; `None` for serials stored before placements were
    /// recorded.
    pub placement: Option<CrlPlacement>,
}

/// A certificate the CA has just signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Its serial.
    pub serial: Serial,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The issuer chain, DER, nearest first.
    pub chain: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for kind in [
            ChallengeType::Dns01,
            ChallengeType::Http01,
            ChallengeType::TlsAlpn01,
        ] {
            assert_eq!(kind.as_str().parse::<ChallengeType>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("http-02".parse::<ChallengeType>().is_err());
        assert_eq!("ready".parse::<OrderStatus>().unwrap(), OrderStatus::Ready);
    }

    #[test]
    fn revocation_reasons_follow_rfc5280() {
        for code in [0, 1, 3, 4, 5, 9] {
            assert_eq!(RevocationReason::try_from(code).unwrap().code(), code);
        }
        for code in [2, 6, 7, 8, 10, 11] {
            let err = RevocationReason::try_from(code).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRevocationReason);
        }
    }

    #[test]
    fn revocation_reasons_have_their_rfc5280_names() {
        for reason in RevocationReason::ALL {
            assert_eq!(reason.as_str().parse::<RevocationReason>().unwrap(), reason);
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!(
            "keyCompromise".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        for bad in ["", "keycompromise", "cACompromise", "certificateHold", "1"] {
            let err = bad.parse::<RevocationReason>().unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRevocationReason, "{bad:?}");
            assert!(err.detail.contains("keyCompromise"), "{err}");
        }
    }

    #[test]
    fn identifier_json_uses_type() {
        let json = serde_json::to_string(&Identifier::dns("a.example")).unwrap();
        assert_eq!(json, r#"{"type":"dns","value":"a.example"}"#);
    }
}
