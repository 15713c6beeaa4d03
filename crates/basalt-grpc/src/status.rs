//! Carries [`basalt_core::Error`] across gRPC whole.
//!
//! The status code comes from the kind (so generic gRPC tooling sees something
//! sensible) and the error itself travels as JSON in the binary metadata key
//! `basalt-error-bin` (quickwit's `qw-error-bin`, Boulder's `errortype` trailer).
//! A status without that key did not come from a Basalt service: a transport
//! failure becomes [`ErrorKind::Unavailable`], anything else [`ErrorKind::Internal`].

use basalt_core::Error;
use basalt_core::ErrorKind;
use tonic::Code;
use tonic::Status;
use tonic::metadata::MetadataValue;

const ERROR_KEY: &str = "basalt-error-bin";

/// Encodes an error as a gRPC status.
pub fn to_status(err: Error) -> Status {
    let code = code(err.kind);
    let mut status = Status::new(code, err.detail.clone());
    match serde_json::to_vec(&err) {
        Ok(json) => {
            status
                .metadata_mut()
                .insert_bin(ERROR_KEY, MetadataValue::from_bytes(&json));
        }
        Err(json_err) => tracing::error!(error = %json_err, "cannot encode error for grpc"),
    }
    status
}

/// Rebuilds the error a peer sent.
pub fn from_status(status: Status) -> Error {
    let carried = status
        .metadata()
        .get_bin(ERROR_KEY)
        .and_then(|value| value.to_bytes().ok())
        .and_then(|bytes| serde_json::from_slice::<Error>(&bytes).ok());
    if let Some(err) = carried {
        return err;
    }
    // A status built locally from a transport failure carries its cause as a
    // source; one sent by a peer never does.
    let local_failure = std::error::Error::source(&status).is_some();
    match status.code() {
        Code::Unknown if local_failure => {
            Error::unavailable(format!("peer service unreachable: {}", status.message()))
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            Error::unavailable(format!("peer service unavailable: {}", status.message()))
        }
        code => Error::internal(format!("grpc call failed: {code:?}: {}", status.message())),
    }
}

/// The gRPC code for each kind; no `_` arm, so a new kind must be placed here.
fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::AccountDoesNotExist | ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyReplaced | ErrorKind::AlreadyRevoked | ErrorKind::Conflict => {
            Code::AlreadyExists
        }
        ErrorKind::BadCsr
        | ErrorKind::BadNonce
        | ErrorKind::BadPublicKey
        | ErrorKind::BadRevocationReason
        | ErrorKind::BadSignatureAlgorithm
        | ErrorKind::InvalidContact
        | ErrorKind::InvalidProfile
        | ErrorKind::Malformed
        | ErrorKind::RejectedIdentifier
        | ErrorKind::UnsupportedContact
        | ErrorKind::UnsupportedIdentifier => Code::InvalidArgument,
        ErrorKind::Caa
        | ErrorKind::Connection
        | ErrorKind::Dns
        | ErrorKind::IncorrectResponse
        | ErrorKind::OrderNotReady
        | ErrorKind::Tls => Code::FailedPrecondition,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::RateLimited => Code::ResourceExhausted,
        ErrorKind::ExternalAccountRequired | ErrorKind::Unauthorized => Code::PermissionDenied,
        ErrorKind::Unavailable => Code::Unavailable,
    }
}

/// What a server adapter's RPC returns.
pub(crate) type GrpcResult<T> = Result<tonic::Response<T>, Status>;

/// Answers an RPC with a domain value converted to its message, or the error.
pub(crate) fn reply<T, P: From<T>>(result: Result<T, Error>) -> GrpcResult<P> {
    result
        .map(|value| tonic::Response::new(P::from(value)))
        .map_err(to_status)
}

/// Answers an RPC that returns nothing.
pub(crate) fn empty(result: Result<(), Error>) -> GrpcResult<basalt_proto::types::Empty> {
    result
        .map(|()| tonic::Response::new(basalt_proto::types::Empty {}))
        .map_err(to_status)
}

/// Converts a peer's status into [`Error`] for `?`.
pub(crate) trait StatusExt<T> {
    fn map_status(self) -> Result<T, Error>;
}

impl<T> StatusExt<T> for Result<tonic::Response<T>, Status> {
    fn map_status(self) -> Result<T, Error> {
        self.map(tonic::Response::into_inner).map_err(from_status)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use basalt_core::Identifier;
    use basalt_core::SubError;

    use super::*;

    #[test]
    fn errors_cross_whole() {
        let mut err =
            Error::new(ErrorKind::RateLimited, "too many").with_subproblems(vec![SubError {
                identifier: Identifier::dns("a.example"),
                kind: ErrorKind::RateLimited,
                detail: "slow down".into(),
            }]);
        err.retry_after = Some(Duration::from_secs(60));
        let status = to_status(err.clone());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(from_status(status), err);
    }

    #[test]
    fn foreign_statuses_become_internal_or_unavailable() {
        let err = from_status(Status::unavailable("connection refused"));
        assert_eq!(err.kind, ErrorKind::Unavailable);
        let err = from_status(Status::permission_denied("not on the allow-list"));
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.detail.contains("not on the allow-list"));
    }
}
