//! The validation authority over gRPC: [`VaClient`] for the RA, [`va_server`] to
//! serve any [`ValidationAuthority`].

use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::CaaCheck;
use basalt_core::Error;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;
use basalt_proto::required;
use basalt_proto::va as pb;
use basalt_proto::va::validation_client::ValidationClient;
use basalt_proto::va::validation_server::ValidationServer;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::GrpcChannel;
use crate::status::StatusExt;
use crate::status::to_status;

/// Calls a VA.
#[derive(Clone, Debug)]
pub struct VaClient(GrpcChannel);

impl VaClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self(channel)
    }
}

#[async_trait]
impl ValidationAuthority for VaClient {
    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error> {
        let request = self.0.request(pb::ValidateRequest {
            identifier: Some(request.identifier.into()),
            challenge_type: request.challenge.as_str().to_owned(),
            token: request.token,
            key_authorization: request.key_authorization,
            account_uri: request.account_uri,
            wildcard: request.wildcard,
        });
        let response = ValidationClient::new(self.0.channel.clone())
            .validate(request)
            .await
            .map_status()?;
        Ok(ValidationResult {
            records: basalt_proto::try_vec(response.records)?,
            problem: response.problem.map(Error::try_from).transpose()?,
        })
    }

    async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error> {
        let request = self.0.request(pb::CheckCaaRequest {
            identifier: Some(request.identifier.into()),
            validation_method: request.method.as_str().to_owned(),
            account_uri: request.account_uri,
            wildcard: request.wildcard,
        });
        let response = ValidationClient::new(self.0.channel.clone())
            .check_caa(request)
            .await
            .map_status()?;
        response.problem.map(Error::try_from).transpose()
    }
}

/// Serves a [`ValidationAuthority`] over gRPC.
pub struct VaService<T>(Arc<T>);

#[async_trait]
impl<T: ValidationAuthority> pb::validation_server::Validation for VaService<T> {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let request = request.into_inner();
        let parsed = (|| {
            Ok::<_, Error>(ValidateRequest {
                identifier: required(request.identifier, "identifier")?.try_into()?,
                challenge: basalt_proto::parse_field(&request.challenge_type, "challenge_type")?,
                token: request.token,
                key_authorization: request.key_authorization,
                account_uri: request.account_uri,
                wildcard: request.wildcard,
            })
        })()
        .map_err(to_status)?;
        let result = self.0.validate(parsed).await.map_err(to_status)?;
        Ok(Response::new(pb::ValidateResponse {
            records: basalt_proto::to_vec(result.records),
            problem: result.problem.map(Into::into),
            perspective: String::new(),
            region: String::new(),
        }))
    }

    async fn check_caa(
        &self,
        request: Request<pb::CheckCaaRequest>,
    ) -> Result<Response<pb::CheckCaaResponse>, Status> {
        let request = request.into_inner();
        let parsed = (|| {
            Ok::<_, Error>(CaaCheck {
                identifier: required(request.identifier, "identifier")?.try_into()?,
                method: basalt_proto::parse_field(&request.validation_method, "validation_method")?,
                account_uri: request.account_uri,
                wildcard: request.wildcard,
            })
        })()
        .map_err(to_status)?;
        let problem = self.0.check_caa(parsed).await.map_err(to_status)?;
        Ok(Response::new(pb::CheckCaaResponse {
            problem: problem.map(Into::into),
            perspective: String::new(),
        }))
    }
}

/// The tonic service for a VA, ready for [`crate::GrpcServer::add_service`].
pub fn va_server<T: ValidationAuthority>(va: Arc<T>) -> ValidationServer<VaService<T>> {
    ValidationServer::new(VaService(va))
}
