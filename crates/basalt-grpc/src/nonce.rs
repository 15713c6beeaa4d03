//! The nonce service over gRPC: [`NonceClient`] for the WFEs, [`nonce_server`] to
//! serve any [`Nonces`] store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;
use std::time::Instant;

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

/// The most nonces one `NewNonce` call hands out.
pub const MAX_NONCE_BATCH: u32 = 100;

/// How many nonces a [`NonceClient`] fetches at a time.
const PREFETCH: u32 = 32;

/// How long a fetched nonce may wait in a [`NonceClient`] before it is handed out;
/// older ones are dropped (the service forgets nonces after an hour, or sooner when
/// many are outstanding).
const PREFETCH_MAX_AGE: Duration = Duration::from_secs(60);

/// Calls the nonce service.
///
/// Nonces are fetched [`PREFETCH`] at a time and handed out from memory, so an
/// ACME answer costs no call to the service: one call in 32 instead of one in
/// every answer. Redeeming is always a call, so a nonce is still good exactly
/// once whichever WFE it reaches.
#[derive(Clone, Debug)]
pub struct NonceClient {
    channel: GrpcChannel,
    prefetched: Arc<Prefetched>,
}

#[derive(Debug, Default)]
struct Prefetched {
    /// Fetched nonces and when they arrived, oldest first.
    nonces: Mutex<VecDeque<(String, Instant)>>,
    /// Held while fetching, so concurrent callers on an empty pool wait for one call.
    fetching: tokio::sync::Mutex<()>,
}

impl Prefetched {
    /// The oldest nonce young enough to hand out, dropping any older ones.
    fn take(&self) -> Option<String> {
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((nonce, fetched)) = nonces.pop_front() {
            if fetched.elapsed() < PREFETCH_MAX_AGE {
                return Some(nonce);
            }
        }
        None
    }

    fn keep(&self, fetched: impl IntoIterator<Item = String>) {
        let now = Instant::now();
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        nonces.extend(fetched.into_iter().map(|nonce| (nonce, now)));
    }
}

impl NonceClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            channel,
            prefetched: Arc::default(),
        }
    }

    fn client(&self) -> PbNonceClient<crate::client::ObservedChannel> {
        PbNonceClient::new(self.channel.channel.clone())
    }

    /// Up to `count` nonces in one call (one from a server that predates batches).
    async fn fetch(&self, count: u32) -> Result<Vec<String>, Error> {
        let request = self.channel.request(pb::NewNonceRequest { count });
        let response = self.client().new_nonce(request).await.map_status()?;
        let mut nonces = Vec::with_capacity(1 + response.more.len());
        nonces.push(response.nonce);
        nonces.extend(response.more);
        Ok(nonces)
    }
}

#[async_trait]
impl Nonces for NonceClient {
    async fn new_nonce(&self) -> Result<String, Error> {
        if let Some(nonce) = self.prefetched.take() {
            return Ok(nonce);
        }
        let _fetching = self.prefetched.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(nonce) = self.prefetched.take() {
            return Ok(nonce);
        }
        let mut nonces = self.fetch(PREFETCH).await?.into_iter();
        let first = nonces
            .next()
            .ok_or_else(|| Error::internal("the nonce service answered with no nonce"))?;
        self.prefetched.keep(nonces);
        Ok(first)
    }

    async fn new_nonces(&self, count: usize) -> Result<Vec<String>, Error> {
        let count = u32::try_from(count).unwrap_or(MAX_NONCE_BATCH);
        self.fetch(count).await
    }

    async fn redeem(&self, nonce: &str) -> Result<bool, Error> {
        let request = self.channel.request(pb::RedeemNonceRequest {
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
        request: Request<pb::NewNonceRequest>,
    ) -> Result<Response<pb::NewNonceResponse>, Status> {
        let count = request.into_inner().count.clamp(1, MAX_NONCE_BATCH);
        let mut nonces = self
            .0
            .new_nonces(count as usize)
            .await
            .map_err(to_status)?
            .into_iter();
        let nonce = nonces
            .next()
            .ok_or_else(|| Status::internal("the nonce store issued no nonce"))?;
        Ok(Response::new(pb::NewNonceResponse {
            nonce,
            more: nonces.collect(),
        }))
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
