//! A gRPC server over mutual TLS 1.3 with a per-service allow-list of client names.
//!
//! Connections are accepted and TLS-terminated here rather than by tonic, so the
//! protocol version is ours to pin and each connection carries the verified peer's
//! names ([`PeerIdentity`]) into every request it makes. [`Guarded`] wraps each
//! gRPC service and refuses a call, with a log line, when the caller's name is not
//! on that service's list. The standard `grpc.health.v1.Health` service answers any
//! client with a certificate from the internal CA.
//!
//! [`Guarded`] also observes every call: it runs it inside a span that continues
//! the caller's trace (the `traceparent` header), and counts and times it in the
//! `grpc_server_*` metrics, by service, method and status code.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::Connected;
use tower::Service;
use tracing::Instrument;
use tracing::Span;

use crate::tls;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The health service's name; any authenticated client may call it.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Who is at the other end of a connection, as its verified certificate says.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    /// The DNS SANs of the client certificate.
    pub names: Arc<Vec<String>>,
    /// The client's address.
    pub remote: SocketAddr,
}

/// A TLS connection that tells tonic who the peer is.
struct TlsConn {
    stream: TlsStream<TcpStream>,
    peer: PeerIdentity,
}

impl Connected for TlsConn {
    type ConnectInfo = PeerIdentity;

    fn connect_info(&self) -> PeerIdentity {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Which client names may call which gRPC service.
#[derive(Clone, Debug, Default)]
pub struct AllowList(Arc<BTreeMap<String, BTreeSet<String>>>);

impl AllowList {
    /// From the `[grpc.allowed_clients]` table.
    pub fn new(allowed: &BTreeMap<String, Vec<String>>) -> Self {
        Self(Arc::new(
            allowed
                .iter()
                .map(|(service, names)| {
                    let names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
                    (service.clone(), names)
                })
                .collect(),
        ))
    }

    /// Whether a client known by `names` may call `service`.
    pub fn allows(&self, service: &str, names: &[String]) -> bool {
        if service == HEALTH_SERVICE {
            return !names.is_empty();
        }
        self.0
            .get(service)
            .is_some_and(|allowed| names.iter().any(|name| allowed.contains(name)))
    }
}

/// A gRPC service behind an allow-list.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    allow: AllowList,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let started = Instant::now();
        let peer = req.extensions().get::<PeerIdentity>().cloned();
        let allowed = peer
            .as_ref()
            .is_some_and(|peer| self.allow.allows(S::NAME, &peer.names));
        // The label holds only methods the service has: a refused caller's or an
        // unknown method's path would let any client make up label values.
        let method = if allowed {
            method_name(req.uri().path()).to_owned()
        } else {
            REFUSED_METHOD.to_owned()
        };
        // Health checks come every few seconds from probes: counted, not traced.
        let span = if S::NAME == HEALTH_SERVICE {
            Span::none()
        } else {
            // Few fields: the span's name is on every log line of the call.
            let span = tracing::info_span!(
                "grpc",
                otel.name = %format_args!("{}/{method}", S::NAME),
                otel.kind = "server",
                rpc.grpc.status_code = tracing::field::Empty,
            );
            basalt_telemetry::trace::set_remote_parent(&span, req.headers());
            span
        };
        let mut record = CallRecord::new({
            let span = span.clone();
            move |code| {
                span.record("rpc.grpc.status_code", code as i32);
                let method = if code == Code::Unimplemented {
                    UNKNOWN_METHOD
                } else {
                    &method
                };
                basalt_telemetry::metrics::grpc_server_request(
                    S::NAME,
                    method,
                    code_name(code),
                    started.elapsed(),
                );
            }
        });
        if !allowed {
            let (names, remote) = peer
                .map(|p| (p.names.join(","), p.remote.to_string()))
                .unwrap_or_default();
            tracing::warn!(
                parent: &span,
                service = S::NAME,
                path = req.uri().path(),
                client_names = %names,
                client_addr = %remote,
                "grpc call refused: client not on the allow-list"
            );
            let status = tonic::Status::permission_denied(format!(
                "client {names:?} may not call {}",
                S::NAME
            ));
            record.finish(status.code());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // Take the service that was polled ready and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // Dropped before it answers (the caller gave up): recorded as cancelled.
            let response = inner.call(req).instrument(span).await?;
            Ok(observe(response, record))
        })
    }
}

/// What to do once a call's status code is known (record it), done once: by
/// [`CallRecord::finish`], or with `Canceled` when the call is dropped first.
pub(crate) struct CallRecord(Option<Box<dyn FnOnce(Code) + Send>>);

impl CallRecord {
    /// Calls `record` with the call's status code, once.
    pub(crate) fn new(record: impl FnOnce(Code) + Send + 'static) -> Self {
        Self(Some(Box::new(record)))
    }

    /// The call ended with `code`; later calls do nothing.
    pub(crate) fn finish(&mut self, code: Code) {
        if let Some(record) = self.0.take() {
            record(code);
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // Dropped before its status was known: one side gave up on the call.
        self.finish(Code::Cancelled);
    }
}

/// `response`, with `record` finished once its gRPC status code is known: at
/// once when its headers carry it (an error answered with headers only), else
/// when the trailers arrive at the end of the body, or when the body ends or is
/// dropped without them.
pub(crate) fn observe(
    response: http::Response<Body>,
    mut record: CallRecord,
) -> http::Response<Body> {
    if let Some(code) = status_code(response.headers()) {
        record.finish(code);
        return response;
    }
    response.map(|inner| Body::new(Observed { inner, record }))
}

/// The gRPC status code in `headers` (or trailers), if they carry one.
fn status_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|code| Code::from_bytes(code.as_bytes()))
}

/// The `method` label of calls refused by the allow-list.
const REFUSED_METHOD: &str = "refused";

/// The `method` label of calls to a method the service does not have.
const UNKNOWN_METHOD: &str = "unknown";

/// The method part of a gRPC path, `/package.Service/Method`.
pub(crate) fn method_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// The status code as gRPC names it in its specification (and as Prometheus
/// exporters of other gRPC implementations label it).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A response body that reports the call's status code from its trailers.
struct Observed {
    inner: Body,
    record: CallRecord,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_code(trailers).unwrap_or(Code::Unknown);
                    self.record.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.record.finish(status.code()),
            // Ended without a status: not a gRPC answer.
            Poll::Ready(None) => self.record.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A bound gRPC server, ready to have services added and to serve.
pub struct GrpcServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    allow: AllowList,
    routes: tonic::service::RoutesBuilder,
    services: Vec<&'static str>,
    /// How long in-flight calls may take to finish once the server is asked to
    /// stop; a peer that keeps its connection open cannot hold the process up
    /// longer.
    drain_timeout: Duration,
}

impl GrpcServer {
    /// Binds the listen address and loads the TLS material.
    pub async fn bind(grpc: &GrpcServerConfig, tls: &TlsConfig) -> Result<Self, Error> {
        let acceptor = TlsAcceptor::from(tls::server_config(tls)?);
        let listener = TcpListener::bind(grpc.listen)
            .await
            .map_err(|err| Error::internal(format!("cannot listen on {}: {err}", grpc.listen)))?;
        Ok(Self {
            listener,
            acceptor,
            allow: AllowList::new(&grpc.allowed_clients),
            routes: Routes::builder(),
            services: Vec::new(),
            drain_timeout: grpc.drain_timeout.0,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|err| Error::internal(format!("listener address: {err}")))
    }

    /// Adds a gRPC service behind the allow-list.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        self.routes.add_service(Guarded {
            inner: service,
            allow: self.allow.clone(),
        });
        self
    }

    /// Serves until `shutdown` completes, then stops accepting calls, reports
    /// every service as not serving to health checks, and lets the calls in flight
    /// finish for up to `[grpc] drain_timeout`.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let (reporter, health) = tonic_health::server::health_reporter();
        for service in &self.services {
            reporter
                .set_service_status(*service, tonic_health::ServingStatus::Serving)
                .await;
        }
        let mut routes = self.routes;
        routes.add_service(Guarded {
            inner: health,
            allow: self.allow.clone(),
        });

        let (tx, rx) = mpsc::channel::<Result<TlsConn, io::Error>>(64);
        let accept = tokio::spawn(accept_loop(self.listener, self.acceptor, tx));
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let services = self.services;
        let signal = async move {
            shutdown.await;
            for service in services {
                reporter
                    .set_service_status(service, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            let _ = stopping_tx.send(());
        };
        let serve = tonic::transport::Server::builder().serve_with_incoming_shutdown(
            routes.routes(),
            ReceiverStream::new(rx),
            signal,
        );
        let drain_timeout = self.drain_timeout;
        let drain_deadline = async move {
            match stopping_rx.await {
                Ok(()) => tokio::time::sleep(drain_timeout).await,
                Err(_) => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            result = serve => result.map_err(|err| Error::internal(format!("grpc server: {err}"))),
            () = drain_deadline => {
                tracing::warn!(timeout = ?drain_timeout, "calls still open after the drain timeout; stopping anyway");
                Ok(())
            }
        };
        accept.abort();
        result
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Result<TlsConn, io::Error>>,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without it each answer's trailers wait on the peer's delayed ACK (40 ms).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(client_addr = %remote, error = %err, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::warn!(client_addr = %remote, error = %err, "grpc tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(client_addr = %remote, "grpc tls handshake timed out");
                    return;
                }
            };
            let names = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| tls::dns_names(cert))
                .unwrap_or_default();
            let peer = PeerIdentity {
                names: Arc::new(names),
                remote,
            };
            // The server has stopped if the receiver is gone; nothing to do then.
            let _ = tx.send(Ok(TlsConn { stream, peer })).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_names_per_service() {
        let mut table = BTreeMap::new();
        table.insert(
            "basalt.ca.CertificateAuthority".to_owned(),
            vec!["RA".to_owned()],
        );
        let allow = AllowList::new(&table);
        let ra = vec!["ra".to_owned()];
        let wfe = vec!["wfe".to_owned()];
        assert!(allow.allows("basalt.ca.CertificateAuthority", &ra));
        assert!(!allow.allows("basalt.ca.CertificateAuthority", &wfe));
        assert!(!allow.allows("basalt.ca.RevocationSigner", &ra));
        assert!(allow.allows(HEALTH_SERVICE, &wfe));
        assert!(!allow.allows(HEALTH_SERVICE, &[]));
    }
}
