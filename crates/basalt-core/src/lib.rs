//! Basalt's domain model.
//!
//! The types every service shares (identifiers, accounts, orders, authorizations,
//! challenges, certificates), the one error that crosses process boundaries, the
//! injected [`Clock`], and the contracts each service offers to the others. No
//! transport, database or HTTP code lives here: services talk through these traits,
//! backed in production by gRPC clients and in tests by in-process values.
#![warn(missing_docs)]

/// Implements `as_str`, `Display` and `FromStr` for a unit enum from one table of
/// wire names, so the RFC strings are written once.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name RFC 8555 gives this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::Error;

            fn from_str(s: &str) -> Result<Self, $crate::Error> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err($crate::Error::malformed(format!(
                        "{s:?} is not a valid {}",
                        stringify!($ty)
                    ))),
                }
            }
        }
    };
}

mod clock;
mod error;
mod ids;
mod model;
mod service;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, ErrorKind, SubError};
pub use ids::{AccountId, AuthzId, OrderId, Serial, SpkiHash};
pub use model::{
    Account, AccountStatus, Authz, AuthzStatus, BlockedKey, BlockedKeySource, CertStatus,
    CertificateRecord, CertificateSummary, Challenge, ChallengeStatus, ChallengeType, CrlPlacement,
    EabKey, Identifier, IdentifierType, Incident, IssuedCertificate, NewAccount, NewAuthz,
    NewIncident, NewOrder, Order, OrderStatus, PerspectiveOutcome, RateLimit, RateLimitOverride,
    RevocationReason, RevocationStatus, RevokedEntry, StatusChange, ValidationRecord,
};
pub use service::{
    AccountUpdate, AuthzOutcome, CaaCheck, CertIdHash, CertificateAuthority, CertificateLookup,
    CertificateQuery, CertificateSearch, CertificateSelector, CertificateStore, CrlRequest,
    IssueRequest, Nonces, OcspRequestEntry, OcspStatus, OrderRequest, OrdersPage, PageRequest,
    RegistrationAuthority, Requester, RevocationLookup, RevocationSigner, RevokeRequest, Storage,
    StorageReadOnly, ValidateRequest, ValidationAuthority, ValidationResult,
};
