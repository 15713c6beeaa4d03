//! The public HTTPS listener: axum-server over rustls with the ring provider, TLS 1.2
//! and 1.3, HTTP/2 and HTTP/1.1.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::Server;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use basalt_core::Error;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use tracing::info;

/// Builds the listener's TLS configuration from PEM files: the chain (leaf first) and
/// its key (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn tls_config(cert_pem: &Path, key_pem: &Path) -> Result<ServerConfig, Error> {
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| {
            Error::internal(format!(
                "cannot read certificates from {}: {err}",
                cert_pem.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::internal(format!(
            "no certificate found in {}",
            cert_pem.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|err| {
        Error::internal(format!(
            "cannot read a private key from {}: {err}",
            key_pem.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| Error::internal(format!("invalid TLS protocol versions: {err}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| Error::internal(format!("unusable HTTPS certificate or key: {err}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `router` over HTTPS on `listen` until `shutdown` completes, then stops
/// accepting connections and lets in-flight requests finish for up to
/// `drain_timeout`. Handlers see each request's TCP peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_https(
    listen: SocketAddr,
    cert_pem: &Path,
    key_pem: &Path,
    router: Router,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let config = RustlsConfig::from_config(Arc::new(tls_config(cert_pem, key_pem)?));
    info!(%listen, "acme https listener starting");
    run(
        axum_server::bind(listen).acceptor(acceptor(config)),
        router,
        drain_timeout,
        shutdown,
    )
    .await
}

/// Like [`serve_https`], on a listener the caller already bound (e.g. to port 0 in
/// tests and the `basalt dev` launcher).
pub async fn serve_https_on(
    listener: std::net::TcpListener,
    cert_pem: &Path,
    key_pem: &Path,
    router: Router,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let config = RustlsConfig::from_config(Arc::new(tls_config(cert_pem, key_pem)?));
    let listen = listener
        .local_addr()
        .map_err(|err| Error::internal(format!("listener has no address: {err}")))?;
    let server = axum_server::from_tcp(listener)
        .map_err(|err| Error::internal(format!("cannot use listener {listen}: {err}")))?
        .acceptor(acceptor(config));
    info!(%listen, "acme https listener starting");
    run(server, router, drain_timeout, shutdown).await
}

/// TLS over TCP with `TCP_NODELAY`: small answers go out at once instead of waiting
/// on the client's delayed ACK.
fn acceptor(config: RustlsConfig) -> RustlsAcceptor<NoDelayAcceptor> {
    RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new())
}

async fn run(
    server: Server<SocketAddr, RustlsAcceptor<NoDelayAcceptor>>,
    router: Router,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let handle = Handle::new();
    // Each connection's peer address reaches the handlers as
    // `ConnectInfo<SocketAddr>` (newAccount's `remote_ip`).
    let serving = server
        .handle(handle.clone())
        .serve(router.into_make_service_with_connect_info::<SocketAddr>());
    tokio::pin!(serving);
    tokio::pin!(shutdown);
    let failed = |err: std::io::Error| Error::internal(format!("https server failed: {err}"));
    tokio::select! {
        result = &mut serving => return result.map_err(failed),
        () = &mut shutdown => {
            info!("acme https listener shutting down");
            handle.graceful_shutdown(Some(drain_timeout));
        }
    }
    serving.await.map_err(failed)
}
