//! gRPC channels over mutual TLS 1.3, with a deadline on every call.
//!
//! Every call made through a [`GrpcChannel`] carries the trace context of the
//! span it is made in (`traceparent`), so the callee's span joins the caller's
//! trace, and is counted and timed in the `grpc_client_*` metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::body::Body;
use tonic::transport::Channel;
use tonic::transport::Endpoint;
use tower::Service;

use crate::server::CallRecord;
use crate::server::code_name;
use crate::server::observe;
use crate::tls;

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to one peer service; cheap to clone.
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    pub(crate) channel: ObservedChannel,
    pub(crate) timeout: Duration,
}

impl GrpcChannel {
    /// A lazily connecting channel to the peer in `config`, authenticated with `tls`.
    /// The peer must present a certificate for `config.server_name`.
    pub fn new(config: &GrpcClientConfig, tls: &TlsConfig) -> Result<Self, Error> {
        let connector = TlsConnector::from(tls::client_config(tls)?);
        let server_name = ServerName::try_from(config.server_name.clone()).map_err(|err| {
            Error::internal(format!(
                "invalid server_name {:?}: {err}",
                config.server_name
            ))
        })?;
        let address = Arc::new(config.address.clone());
        let endpoint = Endpoint::from_shared(format!("http://{}", config.address))
            .map_err(|err| Error::internal(format!("invalid address {:?}: {err}", config.address)))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.timeout.0);
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let address = address.clone();
            async move {
                let tcp = TcpStream::connect(address.as_str()).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }));
        Ok(Self {
            channel: ObservedChannel(channel),
            timeout: config.timeout.0,
        })
    }

    /// A request carrying this channel's deadline (sent as `grpc-timeout`, so the
    /// server stops working on it when the client has given up).
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Asks the peer's standard health service whether it is serving `service`
    /// (empty: the server as a whole).
    pub async fn check_health(&self, service: &str) -> Result<bool, Error> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;

        let response = HealthClient::new(self.channel.clone())
            .check(self.request(HealthCheckRequest {
                service: service.to_owned(),
            }))
            .await
            .map_err(crate::status::from_status)?;
        Ok(response.into_inner().status == ServingStatus::Serving as i32)
    }
}

/// A tonic channel whose calls carry the current trace context and are recorded
/// in the client metrics.
#[derive(Clone, Debug)]
pub(crate) struct ObservedChannel(Channel);

impl Service<http::Request<Body>> for ObservedChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let started = Instant::now();
        // `package.Service/Method`: the path, which names both.
        let method = request.uri().path().trim_start_matches('/').to_owned();
        basalt_telemetry::trace::inject(&tracing::Span::current(), request.headers_mut());
        let mut record = CallRecord::new(move |code| {
            basalt_telemetry::metrics::grpc_client_request(
                &method,
                code_name(code),
                started.elapsed(),
            );
        });
        let call = self.0.call(request);
        // Dropped before the answer (the deadline passed): recorded as cancelled.
        Box::pin(async move {
            match call.await {
                Ok(response) => Ok(observe(response, record)),
                Err(err) => {
                    // The call never reached the peer (no connection).
                    record.finish(Code::Unavailable);
                    Err(err)
                }
            }
        })
    }
}
