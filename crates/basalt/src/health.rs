//! `basalt health <service> --config FILE`: whether the service that config
//! describes is answering, for container and orchestrator health checks.
//!
//! The probe speaks each service's own protocol on the address it listens on:
//! the standard gRPC health service over mutual TLS (with the service's own
//! certificate, which the health service accepts from any holder of an internal
//! certificate) for the SA, RA, VA, CA and nonce service; `GET /directory` over
//! HTTPS for the WFE, trusting exactly the certificate its config names; and a
//! `GET /` for the OCSP responder. It exits 0 when the service answers, 1 (with
//! the reason on stderr) when it does not, so `HEALTHCHECK`, compose's
//! `healthcheck:` and systemd's `ExecStartPost` can use it as it is.

use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_grpc::GrpcChannel;
use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::danger::ServerCertVerified;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::ServerName;
use rustls::pki_types::UnixTime;
use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The services `basalt health` knows how to probe.
const SERVICES: [&str; 7] = ["sa", "ra", "va", "ca", "wfe", "ocsp", "nonce"];

/// The most of a response head the HTTP probes read.
const MAX_HEAD: usize = 8 * 1024;

/// `basalt health <service> --config FILE`.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// The service to probe: sa, ra, va, ca, wfe, ocsp or nonce (default: the
    /// BASALT_SERVICE environment variable, which the container image's
    /// HEALTHCHECK relies on).
    #[arg(env = "BASALT_SERVICE", value_parser = clap::builder::PossibleValuesParser::new(SERVICES))]
    service: String,
    /// The service's TOML configuration file: the probe connects to the address it
    /// listens on (the loopback address when it listens on all of them).
    #[arg(long, value_name = "FILE", env = "BASALT_CONFIG")]
    config: PathBuf,
    /// How long the service has to answer, e.g. `3s` or `500ms`.
    #[arg(long, default_value = "5s")]
    timeout: ConfigDuration,
}

/// Runs the probe and says what it found.
pub(crate) async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let probe = Probe::from_config(&args.service, &args.config)?;
    let address = probe.address();
    tokio::time::timeout(args.timeout.0, probe.check())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{} at {address} did not answer within {}",
                args.service,
                args.timeout
            )
        })?
        .with_context(|| format!("{} at {address}", args.service))?;
    println!("basalt health: {} at {address}: serving", args.service);
    Ok(())
}

/// How to ask one service whether it is up.
#[derive(Debug)]
enum Probe {
    /// `grpc.health.v1.Health/Check` over mutual TLS.
    Grpc { address: SocketAddr, tls: TlsConfig },
    /// `GET /directory` over HTTPS; the server must present `cert`.
    Https { address: SocketAddr, cert: PathBuf },
    /// `GET /` over plain HTTP.
    Http { address: SocketAddr },
}

impl Probe {
    /// The probe of `service` as the config file at `path` describes it.
    fn from_config(service: &str, path: &Path) -> anyhow::Result<Self> {
        fn grpc(grpc: GrpcServerConfig, tls: TlsConfig) -> Probe {
            Probe::Grpc {
                address: reachable(grpc.listen),
                tls,
            }
        }
        Ok(match service {
            "sa" => {
                let config: basalt_sa::SaConfig = basalt_config::load(path)?;
                grpc(config.grpc, config.tls)
            }
            "ra" => {
                let config: basalt_ra::RaConfig = basalt_config::load(path)?;
                grpc(config.grpc, config.tls)
            }
            "va" => {
                let config: basalt_va::VaConfig = basalt_config::load(path)?;
                grpc(config.grpc, config.tls)
            }
            "ca" => {
                let config: basalt_ca::CaConfig = basalt_config::load(path)?;
                grpc(config.grpc, config.tls)
            }
            "nonce" => {
                let config: basalt_nonce::NonceConfig = basalt_config::load(path)?;
                grpc(config.grpc, config.tls)
            }
            "wfe" => {
                let config: basalt_wfe::WfeConfig = basalt_config::load(path)?;
                Self::Https {
                    address: reachable(config.listen),
                    cert: config.https.cert,
                }
            }
            "ocsp" => {
                let config: basalt_ocsp::OcspConfig = basalt_config::load(path)?;
                Self::Http {
                    address: reachable(config.listen),
                }
            }
            other => anyhow::bail!("no service called {other}"),
        })
    }

    fn address(&self) -> SocketAddr {
        match self {
            Self::Grpc { address, .. } | Self::Https { address, .. } | Self::Http { address } => {
                *address
            }
        }
    }

    async fn check(self) -> anyhow::Result<()> {
        match self {
            Self::Grpc { address, tls } => check_grpc(address, &tls).await,
            Self::Https { address, cert } => {
                let connector = pinned_connector(&cert)?;
                let tcp = connect(address).await?;
                // The name is not checked (the certificate is pinned), but the
                // handshake needs one.
                let name = ServerName::IpAddress(address.ip().into());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake")?;
                expect_status(tls, "/directory", |status| status == 200).await
            }
            Self::Http { address } => {
                let tcp = connect(address).await?;
                // Any answer but a server error: `GET /` carries no OCSP request.
                expect_status(tcp, "/", |status| (200..500).contains(&status)).await
            }
        }
    }
}

/// Where to reach a server listening on `listen` from the same host: the
/// loopback address when it listens on every address.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

async fn connect(address: SocketAddr) -> anyhow::Result<TcpStream> {
    TcpStream::connect(address).await.context("cannot connect")
}

/// Asks the gRPC health service whether the server as a whole is serving. The
/// server's certificate must carry the name of the one in `tls.cert`: both are
/// the same service's.
async fn check_grpc(address: SocketAddr, tls: &TlsConfig) -> anyhow::Result<()> {
    let certs = basalt_grpc::tls::load_certs(&tls.cert)?;
    let server_name = certs
        .first()
        .and_then(|cert| basalt_grpc::tls::dns_names(cert).into_iter().next())
        .with_context(|| format!("no DNS name in the certificate {}", tls.cert.display()))?;
    let peer = GrpcClientConfig {
        address: address.to_string(),
        server_name,
        timeout: ConfigDuration(Duration::from_secs(30)),
    };
    let channel = GrpcChannel::new(&peer, tls)?;
    if channel.check_health("").await? {
        Ok(())
    } else {
        anyhow::bail!("the health service says it is not serving")
    }
}

/// Sends `GET path` and checks the status code of the answer with `ok`.
async fn expect_status<S>(mut stream: S, path: &str, ok: impl Fn(u16) -> bool) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending the request")?;
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !head.windows(2).any(|pair| pair == b"\r\n") {
        let read = stream
            .read(&mut buffer)
            .await
            .context("reading the answer")?;
        anyhow::ensure!(read > 0, "the connection closed without an answer");
        head.extend_from_slice(&buffer[..read]);
        anyhow::ensure!(head.len() <= MAX_HEAD, "no HTTP status line");
    }
    let status = status_code(&head).context("no HTTP status line in the answer")?;
    anyhow::ensure!(ok(status), "GET {path} answered {status}");
    Ok(())
}

/// The status code of an HTTP/1.x response head.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&byte| byte == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    let version = words.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// A TLS connector that accepts exactly the first certificate of the PEM file
/// at `cert` (the one the server's own config names) and checks the handshake's
/// signatures as usual.
fn pinned_connector(cert: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let pinned = basalt_grpc::tls::load_certs(cert)?
        .into_iter()
        .next()
        .with_context(|| format!("no certificate in {}", cert.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        cert: pinned,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Accepts one certificate, byte for byte.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"HTTP/2 200\r\n"), None);
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 20 OK\r\n"), None);
    }

    #[test]
    fn services_listening_everywhere_are_probed_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9090".parse().unwrap()),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:443".parse().unwrap()),
            "[::1]:443".parse().unwrap()
        );
        assert_eq!(
            reachable("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let err = Probe::Http { address }.check().await.unwrap_err();
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }

    #[tokio::test]
    async fn an_http_server_error_is_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut request = [0_u8; 512];
                let _ = conn.read(&mut request).await.unwrap();
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let err = Probe::Http { address }.check().await.unwrap_err();
        assert!(format!("{err:#}").contains("answered 503"), "{err:#}");
        Probe::Http { address }.check().await.unwrap();
        server.await.unwrap();
    }
}
