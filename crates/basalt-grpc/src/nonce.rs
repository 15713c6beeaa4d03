//! The nonce service over gRPC: [`NonceClient`] for the WFEs, [`nonce_server`] to
//! serve any [`Nonces`] store.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::Error;
use basalt_core::Nonces;
use basalt_proto::nonce as pb;
use basalt_proto::nonce::nonce_client::NonceClient as PbNonceClient;
use basalt_proto::nonce::nonce_server::NonceServer;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::GrpcChannel;
use crate::status::StatusExt;
use crate::status::to_status;

/// Calls the nonce service.
#[derive(Clone, Debug)]
pub struct NonceClient(GrpcChannel);

impl NonceClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self(channel)
    }

    fn client(&self) -> PbNonceClient<crate::client::ObservedChannel> {
        PbNonceClient::new(self.0.channel.clone())
    }
}

#[async_trait]
impl Nonces for NonceClient {
    async fn new_nonce(&self) -> Result<String, Error> {
        let request = self.0.request(pb::NewNonceRequest {});
        Ok(self.client().new_nonce(request).await.map_status()?.nonce)
    }

    async fn redeem(&self, nonce: &str) -> Result<bool, Error> {
        let request = self.0.request(pb::RedeemNonceRequest {
            nonce: nonce.to_owned(),
        });
        Ok(self.client().redeem(request).await.map_status()?.valid)
    }
}

/// Serves a [`Nonces`] store over gRPC.
pub struct NonceService<T>(Arc<T>);

#[async_trait]
impl<T: Nonces> pb::nonce_server::Nonce for NonceService<T> {
    async fn new_nonce(
        &self,
        _request: Request<pb::NewNonceRequest>,
    ) -> Result<Response<pb::NewNonceResponse>, Status> {
        let nonce = self.0.new_nonce().await.map_err(to_status)?;
        Ok(Response::new(pb::NewNonceResponse { nonce }))
    }

    async fn redeem(
        &self,
        request: Request<pb::RedeemNonceRequest>,
    ) -> Result<Response<pb::RedeemNonceResponse>, Status> {
        let valid = self
            .0
            .redeem(&request.into_inner().nonce)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RedeemNonceResponse { valid }))
    }
}

/// The tonic service for a nonce store, ready for [`crate::GrpcServer::add_service`].
pub fn nonce_server<T: Nonces>(nonces: Arc<T>) -> NonceServer<NonceService<T>> {
    NonceServer::new(NonceService(nonces))
}
