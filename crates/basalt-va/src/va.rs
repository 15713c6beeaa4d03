//! The validation authority: the [`ValidationAuthority`] the RA calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;

use crate::config::VaConfig;
use crate::dns::DnsResolver;
use crate::dns::Lookup;
use crate::http01::Http01;

/// The parts of [`VaConfig`] that validation itself uses (no gRPC or mTLS), so
/// tests and the `basalt dev` launcher can build a [`Va`] directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaSettings {
    /// The port of the first http-01 request (80 in production).
    pub http01_port: u16,
    /// The port an `https://` redirect target without a port is fetched on,
    /// and the only other port a redirect may name (443 in production).
    pub https_port: u16,
    /// The time allowed for a whole http-01 validation, redirects included.
    pub http01_timeout: Duration,
    /// Connect to reserved (loopback, private…) addresses too.
    pub allow_private_addresses: bool,
}

impl VaSettings {
    /// The settings `config` describes.
    pub fn from_config(config: &VaConfig) -> Self {
        Self {
            http01_port: config.http01.port,
            https_port: config.http01.https_port,
            http01_timeout: config.http01.timeout.0,
            allow_private_addresses: config.allow_private_addresses,
        }
    }
}

impl Default for VaSettings {
    /// Production values: ports 80 and 443, ten seconds, public addresses only.
    fn default() -> Self {
        Self {
            http01_port: 80,
            https_port: 443,
            http01_timeout: Duration::from_secs(10),
            allow_private_addresses: false,
        }
    }
}

/// Validates challenges (RFC 8555 §8). Only http-01 is implemented; dns-01 and
/// tls-alpn-01 come in a later issue and are refused with a clear problem.
pub struct Va {
    http01: Http01,
    clock: Arc<dyn Clock>,
}

impl Va {
    /// A VA that resolves names with `lookup`.
    pub fn new(
        settings: VaSettings,
        lookup: Arc<dyn Lookup>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let http01 = Http01::new(
            lookup,
            settings.http01_port,
            settings.https_port,
            settings.http01_timeout,
            settings.allow_private_addresses,
        )?;
        Ok(Self { http01, clock })
    }

    /// The VA `config` describes, with a [`DnsResolver`] built from `[dns]`.
    pub fn from_config(config: &VaConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let lookup = Arc::new(DnsResolver::from_config(&config.dns)?);
        Self::new(VaSettings::from_config(config), lookup, clock)
    }
}

#[async_trait]
impl ValidationAuthority for Va {
    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error> {
        let started = self.clock.now();
        let result = match request.challenge {
            ChallengeType::Http01 => {
                self.http01
                    .validate(
                        &request.identifier,
                        &request.token,
                        &request.key_authorization,
                    )
                    .await?
            }
            // TODO(#5): dns-01 and tls-alpn-01 validation.
            kind @ (ChallengeType::Dns01 | ChallengeType::TlsAlpn01) => ValidationResult {
                records: Vec::new(),
                problem: Some(Error::malformed(format!(
                    "challenge type {kind} is not supported by this validation authority"
                ))),
            },
        };
        let elapsed = self.clock.now() - started;
        match &result.problem {
            None => tracing::info!(
                identifier = %request.identifier,
                challenge = %request.challenge,
                hops = result.records.len(),
                ?elapsed,
                "validation succeeded"
            ),
            Some(problem) => tracing::info!(
                identifier = %request.identifier,
                challenge = %request.challenge,
                hops = result.records.len(),
                kind = ?problem.kind,
                detail = %problem.detail,
                ?elapsed,
                "validation failed"
            ),
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use basalt_core::ErrorKind;
    use basalt_core::FixedClock;
    use basalt_core::Identifier;
    use time::OffsetDateTime;
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// Resolves every name to 127.0.0.1.
    struct Localhost;

    #[async_trait]
    impl Lookup for Localhost {
        async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, Error> {
            Ok(vec!["127.0.0.1".parse().unwrap()])
        }
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH))
    }

    fn request(challenge: ChallengeType, key_authorization: &str) -> ValidateRequest {
        ValidateRequest {
            identifier: Identifier::dns("example.com"),
            challenge,
            token: "token".into(),
            key_authorization: key_authorization.into(),
            account_uri: "https://acme.example/acct/1".into(),
        }
    }

    /// Serves `body` to every request, one request per connection.
    async fn serve(body: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http01_is_validated() {
        let port = serve("token.thumbprint\n").await;
        let settings = VaSettings {
            http01_port: port,
            allow_private_addresses: true,
            ..VaSettings::default()
        };
        let va = Va::new(settings, Arc::new(Localhost), clock()).unwrap();

        let ok = va
            .validate(request(ChallengeType::Http01, "token.thumbprint"))
            .await
            .unwrap();
        assert_eq!(ok.problem, None);
        assert_eq!(ok.records.len(), 1);

        let wrong = va
            .validate(request(ChallengeType::Http01, "token.other"))
            .await
            .unwrap();
        assert_eq!(wrong.problem.unwrap().kind, ErrorKind::IncorrectResponse);
    }

    #[tokio::test]
    async fn default_settings_refuse_private_addresses() {
        let port = serve("token.thumbprint").await;
        let settings = VaSettings {
            http01_port: port,
            ..VaSettings::default()
        };
        let va = Va::new(settings, Arc::new(Localhost), clock()).unwrap();
        let result = va
            .validate(request(ChallengeType::Http01, "token.thumbprint"))
            .await
            .unwrap();
        assert_eq!(result.problem.unwrap().kind, ErrorKind::Dns);
    }

    #[tokio::test]
    async fn other_challenge_types_are_refused_clearly() {
        let va = Va::new(VaSettings::default(), Arc::new(Localhost), clock()).unwrap();
        for (kind, name) in [
            (ChallengeType::Dns01, "dns-01"),
            (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        ] {
            let result = va
                .validate(request(kind, "token.thumbprint"))
                .await
                .unwrap();
            let problem = result.problem.unwrap();
            assert_eq!(problem.kind, ErrorKind::Malformed);
            assert_eq!(
                problem.detail,
                format!("challenge type {name} is not supported by this validation authority")
            );
            assert!(result.records.is_empty());
        }
    }

    #[tokio::test]
    async fn built_from_config() {
        let text = r#"
            allow_private_addresses = true
            [grpc]
            listen = "127.0.0.1:9092"
            allowed_clients = {}
            [tls]
            cert = "va.pem"
            key = "va.key"
            ca = "ca.pem"
            [dns]
            resolver = "127.0.0.1:8053"
            [http01]
            port = 5002
            https_port = 5001
            timeout = "2s"
        "#;
        let config: VaConfig = basalt_config::parse(text).unwrap();
        let settings = VaSettings::from_config(&config);
        assert_eq!(
            settings,
            VaSettings {
                http01_port: 5002,
                https_port: 5001,
                http01_timeout: Duration::from_secs(2),
                allow_private_addresses: true,
            }
        );
        assert!(Va::from_config(&config, clock()).is_ok());

        let mut bad = config;
        bad.dns.resolver = Some("resolver.example:53".into());
        let err = Va::from_config(&bad, clock()).err().unwrap();
        assert!(err.detail.contains("dns.resolver"), "{err}");
    }
}
