//! RFC 8555 §6.7 problem documents: the one place a [`basalt_core::Error`] becomes
//! what an ACME client sees.

use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::SubError;
use serde::Serialize;
use tracing::debug;
use tracing::error;

use crate::jws::SUPPORTED_ALGORITHMS;

/// The media type of a problem document (RFC 7807).
pub(crate) const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The detail shown instead of an internal error's own message.
const INTERNAL_DETAIL: &str = "the server experienced an internal error";

/// The detail shown when a peer service is unreachable.
const UNAVAILABLE_DETAIL: &str = "the service is temporarily unavailable";

/// How long a client is asked to wait after a 503 (a peer service unreachable)
/// when the error does not say.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// An RFC 8555 problem document (RFC 7807 with ACME's `subproblems`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Problem {
    /// `urn:ietf:params:acme:error:<x>`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// A message for the subscriber.
    pub(crate) detail: String,
    /// The HTTP status code.
    pub(crate) status: u16,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subproblems: Vec<Subproblem>,
    /// The algorithms the server accepts, with `badSignatureAlgorithm` (RFC 8555 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) algorithms: Option<Vec<&'static str>>,
    /// When the client may try again; sent as `Retry-After`, not in the body.
    #[serde(skip)]
    pub(crate) retry_after: Option<Duration>,
}

/// A problem with one identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Subproblem {
    /// `urn:ietf:params:acme:error:<x>`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// A message for the subscriber.
    pub(crate) detail: String,
    /// The identifier the problem is about.
    pub(crate) identifier: Identifier,
}

/// The problem type suffix and HTTP status of each kind, and whether its detail may be
/// shown. No `_` arm on purpose: a new [`ErrorKind`] fails to compile until mapped.
fn classify(kind: ErrorKind) -> (&'static str, StatusCode, Option<&'static str>) {
    let bad = StatusCode::BAD_REQUEST;
    match kind {
        ErrorKind::AccountDoesNotExist => ("accountDoesNotExist", bad, None),
        ErrorKind::AlreadyReplaced => ("alreadyReplaced", StatusCode::CONFLICT, None),
        ErrorKind::AlreadyRevoked => ("alreadyRevoked", bad, None),
        ErrorKind::BadCsr => ("badCSR", bad, None),
        ErrorKind::BadNonce => ("badNonce", bad, None),
        ErrorKind::BadPublicKey => ("badPublicKey", bad, None),
        ErrorKind::BadRevocationReason => ("badRevocationReason", bad, None),
        ErrorKind::BadSignatureAlgorithm => ("badSignatureAlgorithm", bad, None),
        ErrorKind::Caa => ("caa", StatusCode::FORBIDDEN, None),
        // RFC 8555 has no conflict type; Boulder sends malformed with 409 as well.
        ErrorKind::Conflict => ("malformed", StatusCode::CONFLICT, None),
        ErrorKind::Connection => ("connection", bad, None),
        ErrorKind::Dns => ("dns", bad, None),
        ErrorKind::ExternalAccountRequired => {
            ("externalAccountRequired", StatusCode::FORBIDDEN, None)
        }
        ErrorKind::IncorrectResponse => ("incorrectResponse", StatusCode::FORBIDDEN, None),
        ErrorKind::Internal => (
            "serverInternal",
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(INTERNAL_DETAIL),
        ),
        ErrorKind::InvalidContact => ("invalidContact", bad, None),
        ErrorKind::InvalidProfile => ("invalidProfile", bad, None),
        ErrorKind::Malformed => ("malformed", bad, None),
        ErrorKind::NotFound => ("malformed", StatusCode::NOT_FOUND, None),
        ErrorKind::OrderNotReady => ("orderNotReady", StatusCode::FORBIDDEN, None),
        ErrorKind::RateLimited => ("rateLimited", StatusCode::TOO_MANY_REQUESTS, None),
        ErrorKind::RejectedIdentifier => ("rejectedIdentifier", bad, None),
        ErrorKind::Tls => ("tls", bad, None),
        ErrorKind::Unauthorized => ("unauthorized", StatusCode::FORBIDDEN, None),
        ErrorKind::Unavailable => (
            "serverInternal",
            StatusCode::SERVICE_UNAVAILABLE,
            Some(UNAVAILABLE_DETAIL),
        ),
        ErrorKind::UnsupportedContact => ("unsupportedContact", bad, None),
        ErrorKind::UnsupportedIdentifier => ("unsupportedIdentifier", bad, None),
    }
}

fn urn(suffix: &str) -> String {
    format!("urn:ietf:params:acme:error:{suffix}")
}

/// The problem document for `err`. Internal details never leave the server: they are
/// logged here and replaced with a generic message.
pub(crate) fn problem(err: &Error) -> Problem {
    let (suffix, status, generic) = classify(err.kind);
    let detail = match generic {
        Some(generic) => {
            error!(kind = ?err.kind, detail = %err.detail, "request failed inside the server");
            generic.to_owned()
        }
        None => {
            debug!(kind = ?err.kind, detail = %err.detail, "request refused");
            err.detail.clone()
        }
    };
    let algorithms =
        (err.kind == ErrorKind::BadSignatureAlgorithm).then(|| SUPPORTED_ALGORITHMS.to_vec());
    Problem {
        kind: urn(suffix),
        detail,
        status: status.as_u16(),
        subproblems: err.subproblems.iter().map(subproblem).collect(),
        algorithms,
        retry_after: err
            .retry_after
            .or_else(|| (err.kind == ErrorKind::Unavailable).then_some(UNAVAILABLE_RETRY_AFTER)),
    }
}

fn subproblem(sub: &SubError) -> Subproblem {
    let (suffix, _, generic) = classify(sub.kind);
    Subproblem {
        kind: urn(suffix),
        detail: generic.map_or_else(|| sub.detail.clone(), str::to_owned),
        identifier: sub.identifier.clone(),
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match serde_json::to_vec(&self) {
            Ok(body) => body,
            Err(err) => {
                error!(error = %err, "cannot serialize a problem document");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(retry_after) = self.retry_after {
            // Round up so a client never retries before the limit allows.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A handler or extractor failure: rendered as a problem document.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(&self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [(ErrorKind, &str, u16); 27] = [
        (ErrorKind::AccountDoesNotExist, "accountDoesNotExist", 400),
        (ErrorKind::AlreadyReplaced, "alreadyReplaced", 409),
        (ErrorKind::AlreadyRevoked, "alreadyRevoked", 400),
        (ErrorKind::BadCsr, "badCSR", 400),
        (ErrorKind::BadNonce, "badNonce", 400),
        (ErrorKind::BadPublicKey, "badPublicKey", 400),
        (ErrorKind::BadRevocationReason, "badRevocationReason", 400),
        (
            ErrorKind::BadSignatureAlgorithm,
            "badSignatureAlgorithm",
            400,
        ),
        (ErrorKind::Caa, "caa", 403),
        (ErrorKind::Conflict, "malformed", 409),
        (ErrorKind::Connection, "connection", 400),
        (ErrorKind::Dns, "dns", 400),
        (
            ErrorKind::ExternalAccountRequired,
            "externalAccountRequired",
            403,
        ),
        (ErrorKind::IncorrectResponse, "incorrectResponse", 403),
        (ErrorKind::Internal, "serverInternal", 500),
        (ErrorKind::InvalidContact, "invalidContact", 400),
        (ErrorKind::InvalidProfile, "invalidProfile", 400),
        (ErrorKind::Malformed, "malformed", 400),
        (ErrorKind::NotFound, "malformed", 404),
        (ErrorKind::OrderNotReady, "orderNotReady", 403),
        (ErrorKind::RateLimited, "rateLimited", 429),
        (ErrorKind::RejectedIdentifier, "rejectedIdentifier", 400),
        (ErrorKind::Tls, "tls", 400),
        (ErrorKind::Unauthorized, "unauthorized", 403),
        (ErrorKind::Unavailable, "serverInternal", 503),
        (ErrorKind::UnsupportedContact, "unsupportedContact", 400),
        (
            ErrorKind::UnsupportedIdentifier,
            "unsupportedIdentifier",
            400,
        ),
    ];

    #[test]
    fn every_kind_maps_to_its_problem_type_and_status() {
        for (kind, suffix, status) in ALL_KINDS {
            let problem = problem(&Error::new(kind, "secret detail"));
            assert_eq!(
                problem.kind,
                format!("urn:ietf:params:acme:error:{suffix}"),
                "{kind:?}"
            );
            assert_eq!(problem.status, status, "{kind:?}");
            let hidden = matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable);
            assert_eq!(problem.detail == "secret detail", !hidden, "{kind:?}");
        }
    }

    #[test]
    fn subproblems_carry_their_identifier() {
        let err = Error::new(ErrorKind::RejectedIdentifier, "some names are refused")
            .with_subproblems(vec![
                SubError {
                    identifier: Identifier::dns("bad.example"),
                    kind: ErrorKind::RejectedIdentifier,
                    detail: "policy forbids it".into(),
                },
                SubError {
                    identifier: Identifier::dns("odd.example"),
                    kind: ErrorKind::Internal,
                    detail: "db down".into(),
                },
            ]);
        let json = serde_json::to_value(problem(&err)).unwrap();
        let subs = json["subproblems"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(
            subs[0]["type"],
            "urn:ietf:params:acme:error:rejectedIdentifier"
        );
        assert_eq!(subs[0]["identifier"]["value"], "bad.example");
        assert_eq!(subs[0]["identifier"]["type"], "dns");
        assert_eq!(subs[0]["detail"], "policy forbids it");
        assert_eq!(subs[1]["detail"], INTERNAL_DETAIL);
    }

    #[test]
    fn rate_limits_send_retry_after() {
        let mut err = Error::new(ErrorKind::RateLimited, "too many orders");
        err.retry_after = Some(Duration::from_millis(2500));
        let response = ApiError(err).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
    }

    #[test]
    fn unavailable_sends_retry_after() {
        let response = ApiError(Error::unavailable("sa unreachable")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        // An error that says how long to wait keeps its own delay.
        let mut err = Error::unavailable("draining");
        err.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            ApiError(err).into_response().headers()[header::RETRY_AFTER],
            "30"
        );
        // Other failures, even internal ones, do not invite a retry.
        for err in [Error::internal("bug"), Error::malformed("bad")] {
            let response = ApiError(err).into_response();
            assert!(response.headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn bad_signature_algorithm_lists_the_accepted_ones() {
        let json =
            serde_json::to_value(problem(&Error::new(ErrorKind::BadSignatureAlgorithm, "no")))
                .unwrap();
        assert_eq!(
            json["algorithms"],
            serde_json::json!(["ES256", "ES384", "RS256", "EdDSA"])
        );
        let json = serde_json::to_value(problem(&Error::malformed("no"))).unwrap();
        assert!(json.get("algorithms").is_none());
    }
}
