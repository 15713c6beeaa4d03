//! What can go wrong talking to an ACME server: the server's own problem documents
//! (RFC 7807, RFC 8555 §6.7) kept whole, and the client's transport and protocol
//! failures beside them.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::Serialize;

use crate::types::Identifier;

/// The problem type of a nonce the server refused (RFC 8555 §6.5); the client
/// retries such a request once with a fresh nonce.
pub const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";

/// An RFC 7807 problem document as an ACME server sends it (RFC 8555 §6.7), with
/// the subproblems of §6.7.1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type, e.g. `urn:ietf:params:acme:error:rateLimited`;
    /// `about:blank` when the document names none (RFC 7807 §4.2).
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    /// A short summary of the problem type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What went wrong with this request, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The HTTP status code the server gave in the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The identifier a subproblem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// One problem per identifier when several went wrong (RFC 8555 §6.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Self>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// Reads a problem document; `None` if `body` is not one (not JSON, or JSON
    /// that is not an object).
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        if !value.is_object() {
            return None;
        }
        serde_json::from_value(value).ok()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for sub in &self.subproblems {
            write!(f, " [")?;
            if let Some(identifier) = &sub.identifier {
                write!(f, "{}: ", identifier.value)?;
            }
            write!(f, "{sub}]")?;
        }
        Ok(())
    }
}

/// An ACME client error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a problem document.
    #[error("{url}: HTTP {status}: {problem}")]
    Problem {
        /// The URL of the request.
        url: String,
        /// The response's HTTP status.
        status: u16,
        /// The problem document (boxed: it is large, and errors are rare).
        problem: Box<Problem>,
        /// The response's `Retry-After`, if it had one (e.g. with `rateLimited`).
        retry_after: Option<Duration>,
    },
    /// An authorization or order reached a final state other than the one the
    /// caller waited for (e.g. `invalid`), with the problem the server recorded.
    #[error("{object} {url} is {status}{}", problem_suffix(.problem.as_deref()))]
    Failed {
        /// `authorization` or `order`.
        object: &'static str,
        /// The object's URL.
        url: String,
        /// The state it reached.
        status: String,
        /// The error of the object (or of its failed challenge), if the server gave one.
        problem: Option<Box<Problem>>,
    },
    /// Polling gave up: the object was still being worked on at the deadline.
    #[error("{object} {url} still {status} after {waited:?}")]
    Timeout {
        /// `authorization` or `order`.
        object: &'static str,
        /// The object's URL.
        url: String,
        /// Its state at the last poll.
        status: String,
        /// How long the client polled.
        waited: Duration,
    },
    /// The request did not complete: connection, TLS, timeout or body errors.
    /// Its message holds reqwest's whole chain of causes.
    #[error("{}", transport_message(.url, .error))]
    Transport {
        /// The URL of the request.
        url: String,
        /// What reqwest reported.
        error: reqwest::Error,
    },
    /// An error status with no problem document.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL of the request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A response that breaks RFC 8555: a missing header, a body that is not the
    /// expected object, a missing challenge.
    #[error("{0}")]
    Protocol(String),
    /// A key, signature or CSR could not be made.
    #[error("{0}")]
    Crypto(String),
    /// The client was set up wrongly: an unreadable CA bundle, a bad option.
    #[error("{0}")]
    Config(String),
}

/// reqwest's error and its causes, `: `-separated (reqwest's own message names
/// only the outermost), with the URL in front unless reqwest named it.
fn transport_message(url: &str, error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    if message.contains(url) {
        message
    } else {
        format!("{url}: {message}")
    }
}

fn problem_suffix(problem: Option<&Problem>) -> String {
    problem.map_or_else(String::new, |problem| format!(": {problem}"))
}

impl Error {
    /// The problem document behind this error, if the server sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem { problem, .. } => Some(problem),
            Self::Failed { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// A short, stable label of what kind of error this is, for counting failures
    /// by kind: the problem type URN for a problem document (a failed object's
    /// with its name in front, e.g. `authorization invalid:
    /// urn:ietf:params:acme:error:connection`), `timeout: order`, `transport:
    /// connect`, `http 502`, `protocol`, `crypto` or `config`.
    pub fn label(&self) -> String {
        match self {
            Self::Problem { problem, .. } => problem.kind.clone(),
            Self::Failed {
                object,
                status,
                problem,
                ..
            } => match problem {
                Some(problem) => format!("{object} {status}: {}", problem.kind),
                None => format!("{object} {status}"),
            },
            Self::Timeout { object, .. } => format!("timeout: {object}"),
            Self::Transport { error, .. } => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connect"
                } else if error.is_body() {
                    "body"
                } else if error.is_decode() {
                    "decode"
                } else if error.is_request() {
                    "request"
                } else {
                    "other"
                };
                format!("transport: {kind}")
            }
            Self::Status { status, .. } => format!("http {status}"),
            Self::Protocol(_) => "protocol".to_owned(),
            Self::Crypto(_) => "crypto".to_owned(),
            Self::Config(_) => "config".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_parses_with_subproblems() {
        let body = br#"{
            "type": "urn:ietf:params:acme:error:malformed",
            "detail": "Some of the identifiers requested were rejected",
            "status": 400,
            "subproblems": [
                {
                    "type": "urn:ietf:params:acme:error:malformed",
                    "detail": "Invalid underscore in DNS name \"_example.org\"",
                    "identifier": { "type": "dns", "value": "_example.org" }
                },
                {
                    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                    "detail": "This CA will not issue for \"example.net\"",
                    "identifier": { "type": "dns", "value": "example.net" }
                }
            ]
        }"#;
        let problem = Problem::from_json(body).unwrap();
        assert_eq!(problem.kind, "urn:ietf:params:acme:error:malformed");
        assert_eq!(problem.status, Some(400));
        assert_eq!(problem.subproblems.len(), 2);
        assert_eq!(
            problem.subproblems[1].identifier,
            Some(Identifier::dns("example.net"))
        );
        let text = problem.to_string();
        assert!(
            text.starts_with("urn:ietf:params:acme:error:malformed: Some of the identifiers"),
            "{text}"
        );
        assert!(
            text.contains("[example.net: urn:ietf:params:acme:error:rejectedIdentifier"),
            "{text}"
        );
    }

    #[test]
    fn a_problem_without_a_type_is_about_blank() {
        let problem = Problem::from_json(br#"{"detail": "no type"}"#).unwrap();
        assert_eq!(problem.kind, "about:blank");
        assert_eq!(problem.detail.as_deref(), Some("no type"));
    }

    #[test]
    fn bodies_that_are_no_problem_documents_are_refused() {
        assert_eq!(Problem::from_json(b"<html>502 Bad Gateway</html>"), None);
        assert_eq!(Problem::from_json(b"[1, 2]"), None);
        assert_eq!(Problem::from_json(br#"{"type": 7}"#), None);
        assert_eq!(Problem::from_json(b""), None);
    }

    #[test]
    fn labels_name_the_kind_of_error() {
        let problem = Problem {
            kind: "urn:ietf:params:acme:error:rateLimited".to_owned(),
            ..Problem::default()
        };
        let err = Error::Problem {
            url: "https://ca/new-order".to_owned(),
            status: 429,
            problem: Box::new(problem.clone()),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(err.label(), "urn:ietf:params:acme:error:rateLimited");
        assert_eq!(err.problem(), Some(&problem));

        let failed = Error::Failed {
            object: "authorization",
            url: "https://ca/authz/1".to_owned(),
            status: "invalid".to_owned(),
            problem: Some(Box::new(Problem {
                kind: "urn:ietf:params:acme:error:connection".to_owned(),
                ..Problem::default()
            })),
        };
        assert_eq!(
            failed.label(),
            "authorization invalid: urn:ietf:params:acme:error:connection"
        );
        assert!(
            failed
                .to_string()
                .ends_with("is invalid: urn:ietf:params:acme:error:connection"),
            "{failed}"
        );

        let timeout = Error::Timeout {
            object: "order",
            url: "https://ca/order/1".to_owned(),
            status: "processing".to_owned(),
            waited: Duration::from_secs(60),
        };
        assert_eq!(timeout.label(), "timeout: order");
        let status = Error::Status {
            url: "https://ca/".to_owned(),
            status: 502,
            body: String::new(),
        };
        assert_eq!(status.label(), "http 502");
        assert_eq!(status.problem(), None);
        assert_eq!(Error::Protocol("x".to_owned()).label(), "protocol");
    }
}
