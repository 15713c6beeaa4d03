//! Basalt's domain model.
//!
//! The types every service shares (identifiers, accounts, orders, authorizations,
//! challenges, certificates), the one error that crosses process boundaries, the
//! injected [`Clock`], and the contracts each service offers to the others. No
//! transport, database or HTTP code lives here: services talk through these traits,
//! backed in production by gRPC clients and in tests by in-process values.
#![warn(missing_docs)]

mod clock;
mod error;
mod ids;
mod model;
mod service;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, ErrorKind, SubError};
pub use ids::{AccountId, AuthzId, OrderId, Serial};
pub use model::{
    Account, AccountStatus, Authz, AuthzStatus, CertStatus, CertificateRecord, Challenge,
    ChallengeStatus, ChallengeType, Identifier, IdentifierType, IssuedCertificate, NewAccount,
    NewAuthz, NewOrder, Order, OrderStatus, RevocationReason, ValidationRecord,
};
pub use service::{
    AuthzOutcome, CertificateAuthority, IssueRequest, OcspRequestEntry, RegistrationAuthority,
    RevocationSigner, RevokeRequest, Storage, StorageReadOnly,
    ValidateRequest, ValidationAuthority, ValidationResult,
};
