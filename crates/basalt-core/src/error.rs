//! The one error that crosses process boundaries.
//!
//! Every RPC returns [`Error`]; basalt-grpc carries it whole across gRPC and the WFE
//! turns it into an RFC 8555 problem document in exactly one place. Its kinds follow
//! the ACME error types (RFC 8555 §6.7) plus the few internal conditions a service
//! must tell apart.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::Serialize;

use crate::Identifier;

/// What went wrong, in terms a caller can act on.
///
/// Deliberately not `#[non_exhaustive]`: the WFE's mapping to problem documents
/// matches every kind, so adding one fails to compile until it is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ErrorKind {
    /// The request named an account that does not exist.
    AccountDoesNotExist,
    /// The certificate an order `replaces` was already replaced (RFC 9773 §5).
    AlreadyReplaced,
    /// The certificate was already revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable.
    BadCsr,
    /// The anti-replay nonce was missing, unknown or used.
    BadNonce,
    /// The public key is unacceptable.
    BadPublicKey,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The JWS signature algorithm is not supported.
    BadSignatureAlgorithm,
    /// CAA records forbid issuance.
    Caa,
    /// The request conflicts with the current state (e.g. a key held by another account).
    Conflict,
    /// The validation server could not be reached.
    Connection,
    /// A DNS lookup failed during validation.
    Dns,
    /// The server requires external account binding (RFC 8555 §7.3.4).
    ExternalAccountRequired,
    /// The response to a challenge was wrong.
    IncorrectResponse,
    /// Something failed inside Basalt; the detail stays in the logs.
    Internal,
    /// A contact URL is invalid.
    InvalidContact,
    /// The order names a profile the server does not offer (draft-ietf-acme-profiles).
    InvalidProfile,
    /// The request was malformed.
    Malformed,
    /// The requested resource does not exist.
    NotFound,
    /// The order is not in a state that allows the request.
    OrderNotReady,
    /// A rate limit was exceeded.
    RateLimited,
    /// Policy forbids issuance for the identifier.
    RejectedIdentifier,
    /// A TLS error occurred during validation.
    Tls,
    /// The client is not allowed to do this.
    Unauthorized,
    /// A peer service could not be reached.
    Unavailable,
    /// The contact URL scheme is not supported.
    UnsupportedContact,
    /// The identifier type is not supported.
    UnsupportedIdentifier,
}

wire_names!(ErrorKind {
    AccountDoesNotExist => "accountDoesNotExist",
    AlreadyReplaced => "alreadyReplaced",
    AlreadyRevoked => "alreadyRevoked",
    BadCsr => "badCSR",
    BadNonce => "badNonce",
    BadPublicKey => "badPublicKey",
    BadRevocationReason => "badRevocationReason",
    BadSignatureAlgorithm => "badSignatureAlgorithm",
    Caa => "caa",
    Conflict => "conflict",
    Connection => "connection",
    Dns => "dns",
    ExternalAccountRequired => "externalAccountRequired",
    IncorrectResponse => "incorrectResponse",
    Internal => "internal",
    InvalidContact => "invalidContact",
    InvalidProfile => "invalidProfile",
    Malformed => "malformed",
    NotFound => "notFound",
    OrderNotReady => "orderNotReady",
    RateLimited => "rateLimited",
    RejectedIdentifier => "rejectedIdentifier",
    Tls => "tls",
    Unauthorized => "unauthorized",
    Unavailable => "unavailable",
    UnsupportedContact => "unsupportedContact",
    UnsupportedIdentifier => "unsupportedIdentifier",
});

/// A problem with one identifier of a request (RFC 8555 §6.7.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubError {
    /// The identifier the problem is about.
    pub identifier: Identifier,
    /// What went wrong with it.
    pub kind: ErrorKind,
    /// A message for the subscriber.
    pub detail: String,
}

/// The cross-service error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A message for the subscriber, unless `kind` is [`ErrorKind::Internal`].
    pub detail: String,
    /// Per-identifier problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<SubError>,
    /// When the client may try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            subproblems: Vec::new(),
            retry_after: None,
        }
    }

    /// Adds per-identifier problems.
    pub fn with_subproblems(mut self, subproblems: Vec<SubError>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// [`ErrorKind::Malformed`].
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, detail)
    }

    /// [`ErrorKind::NotFound`].
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// [`ErrorKind::Internal`].
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }

    /// [`ErrorKind::Unauthorized`].
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, detail)
    }

    /// [`ErrorKind::Conflict`].
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail)
    }

    /// [`ErrorKind::Unavailable`].
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, detail)
    }

    /// Whether the error is of `kind`.
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

impl TryFrom<String> for ErrorKind {
    type Error = Error;

    fn try_from(name: String) -> Result<Self, Error> {
        name.parse()
    }
}

impl From<ErrorKind> for &'static str {
    fn from(kind: ErrorKind) -> Self {
        kind.as_str()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips_through_json() {
        let err =
            Error::new(ErrorKind::RejectedIdentifier, "no").with_subproblems(vec![SubError {
                identifier: Identifier::dns("a.example"),
                kind: ErrorKind::RejectedIdentifier,
                detail: "blocked".into(),
            }]);
        let json = serde_json::to_string(&err).unwrap();
        assert!(json.contains("\"rejectedIdentifier\""), "{json}");
        assert_eq!(serde_json::from_str::<Error>(&json).unwrap(), err);
    }
}
