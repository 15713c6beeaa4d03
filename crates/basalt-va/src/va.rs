//! The validation authority: the [`ValidationAuthority`] the RA calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::CaaCheck;
use basalt_core::ChallengeType;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::IdentifierType;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;

use crate::caa::CaaChecker;
use crate::config::VaConfig;
use crate::dns::DnsResolver;
use crate::dns::Lookup;
use crate::dns01::Dns01;
use crate::http01::Http01;
use crate::tlsalpn01::TlsAlpn01;

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
    /// The port of the tls-alpn-01 handshake (443 in production).
    pub tlsalpn01_port: u16,
    /// The time allowed for a whole tls-alpn-01 validation.
    pub tlsalpn01_timeout: Duration,
    /// The names that identify this CA in CAA records.
    pub caa_issuer_domains: Vec<String>,
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
            tlsalpn01_port: config.tlsalpn01.port,
            tlsalpn01_timeout: config.tlsalpn01.timeout.0,
            caa_issuer_domains: config.caa.issuer_domains.clone(),
            allow_private_addresses: config.allow_private_addresses,
        }
    }

    /// Production values (ports 80 and 443, ten seconds, public addresses only)
    /// for a CA named `issuer_domain` in CAA records.
    pub fn production(issuer_domain: &str) -> Self {
        Self {
            http01_port: 80,
            https_port: 443,
            http01_timeout: Duration::from_secs(10),
            tlsalpn01_port: 443,
            tlsalpn01_timeout: Duration::from_secs(10),
            caa_issuer_domains: vec![issuer_domain.to_owned()],
            allow_private_addresses: false,
        }
    }
}

/// Validates challenges (RFC 8555 §8, RFC 8737, RFC 8738) and, once a challenge is
/// met for a DNS name, checks that CAA lets this CA issue for it (RFC 8659): as
/// Boulder does, CAA is checked at validation time.
pub struct Va {
    http01: Http01,
    dns01: Dns01,
    tlsalpn01: TlsAlpn01,
    caa: CaaChecker,
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
            lookup.clone(),
            settings.http01_port,
            settings.https_port,
            settings.http01_timeout,
            settings.allow_private_addresses,
        )?;
        let tlsalpn01 = TlsAlpn01::new(
            lookup.clone(),
            settings.tlsalpn01_port,
            settings.tlsalpn01_timeout,
            settings.allow_private_addresses,
        )?;
        let caa = CaaChecker::new(lookup.clone(), &settings.caa_issuer_domains)
            .map_err(|err| Error::internal(format!("caa.issuer_domains: {}", err.detail)))?;
        Ok(Self {
            http01,
            dns01: Dns01::new(lookup),
            tlsalpn01,
            caa,
            clock,
        })
    }

    /// The VA `config` describes, with a [`DnsResolver`] built from `[dns]`.
    pub fn from_config(config: &VaConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let lookup = Arc::new(DnsResolver::from_config(&config.dns)?);
        Self::new(VaSettings::from_config(config), lookup, clock)
    }

    async fn check_challenge(&self, request: &ValidateRequest) -> Result<ValidationResult, Error> {
        // The RA offers only challenges that fit the identifier; a request that does
        // not fit is refused here too, so no other caller can bypass the rule.
        if request.wildcard && request.challenge != ChallengeType::Dns01 {
            return Ok(refused(format!(
                "a wildcard is validated with dns-01 only, not {}",
                request.challenge
            )));
        }
        match request.challenge {
            ChallengeType::Http01 => {
                self.http01
                    .validate(
                        &request.identifier,
                        &request.token,
                        &request.key_authorization,
                    )
                    .await
            }
            ChallengeType::Dns01 => {
                self.dns01
                    .validate(&request.identifier, &request.key_authorization)
                    .await
            }
            ChallengeType::TlsAlpn01 => {
                self.tlsalpn01
                    .validate(&request.identifier, &request.key_authorization)
                    .await
            }
        }
    }
}

fn refused(detail: String) -> ValidationResult {
    ValidationResult {
        records: Vec::new(),
        problem: Some(Error::malformed(detail)),
    }
}

#[async_trait]
impl ValidationAuthority for Va {
    async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error> {
        if request.identifier.kind != IdentifierType::Dns {
            return Ok(None);
        }
        let checked = self
            .caa
            .check(
                &request.identifier.value,
                request.wildcard,
                &request.account_uri,
                request.method,
            )
            .await;
        match checked {
            Ok(()) => Ok(None),
            Err(err) if err.is(ErrorKind::Internal) => Err(err),
            Err(problem) => Ok(Some(problem)),
        }
    }

    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error> {
        let started = self.clock.now();
        let mut result = self.check_challenge(&request).await?;
        if result.problem.is_none() && request.identifier.kind == IdentifierType::Dns {
            let caa = self
                .caa
                .check(
                    &request.identifier.value,
                    request.wildcard,
                    &request.account_uri,
                    request.challenge,
                )
                .await;
            if let Err(problem) = caa {
                result.problem = Some(problem);
            }
        }
        let elapsed = self.clock.now() - started;
        let outcome = if result.problem.is_none() {
            "valid"
        } else {
            "invalid"
        };
        let seconds = Duration::try_from(elapsed).unwrap_or_default();
        basalt_telemetry::metrics::validation(request.challenge.as_str(), outcome, seconds);
        match &result.problem {
            None => tracing::info!(
                identifier = %request.identifier,
                challenge = %request.challenge,
                wildcard = request.wildcard,
                hops = result.records.len(),
                ?elapsed,
                "validation succeeded"
            ),
            Some(problem) => tracing::info!(
                identifier = %request.identifier,
                challenge = %request.challenge,
                wildcard = request.wildcard,
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

    /// Resolves every name to 127.0.0.1, with no TXT records anywhere and the
    /// given CAA set at example.com.
    #[derive(Default)]
    struct Localhost {
        caa: Vec<crate::CaaRecord>,
    }

    #[async_trait]
    impl Lookup for Localhost {
        async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, Error> {
            Ok(vec!["127.0.0.1".parse().unwrap()])
        }

        async fn lookup_txt(&self, _name: &str) -> Result<Vec<String>, Error> {
            Ok(Vec::new())
        }

        async fn lookup_caa(&self, name: &str) -> Result<Vec<crate::CaaRecord>, Error> {
            Ok(if name == "example.com" {
                self.caa.clone()
            } else {
                Vec::new()
            })
        }
    }

    fn localhost() -> Arc<Localhost> {
        Arc::new(Localhost::default())
    }

    fn settings(http01_port: u16, allow_private_addresses: bool) -> VaSettings {
        VaSettings {
            http01_port,
            allow_private_addresses,
            ..VaSettings::production("basalt.example")
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
            wildcard: false,
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
        let va = Va::new(settings(port, true), localhost(), clock()).unwrap();

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
    async fn production_settings_refuse_private_addresses() {
        let port = serve("token.thumbprint").await;
        let va = Va::new(settings(port, false), localhost(), clock()).unwrap();
        let result = va
            .validate(request(ChallengeType::Http01, "token.thumbprint"))
            .await
            .unwrap();
        assert_eq!(result.problem.unwrap().kind, ErrorKind::Dns);
    }

    /// A met challenge still fails when CAA names only another CA; CAA is not read
    /// for a challenge that failed, nor for an IP address.
    #[tokio::test]
    async fn caa_is_checked_after_the_challenge() {
        let port = serve("token.thumbprint").await;
        let record = |value: &str| crate::CaaRecord {
            critical: false,
            tag: "issue".into(),
            value: value.into(),
        };
        let other_ca = Arc::new(Localhost {
            caa: vec![record("other-ca.example")],
        });
        let va = Va::new(settings(port, true), other_ca, clock()).unwrap();
        let problem = va
            .validate(request(ChallengeType::Http01, "token.thumbprint"))
            .await
            .unwrap()
            .problem
            .unwrap();
        assert_eq!(problem.kind, ErrorKind::Caa);

        let wrong = va
            .validate(request(ChallengeType::Http01, "token.other"))
            .await
            .unwrap();
        assert_eq!(wrong.problem.unwrap().kind, ErrorKind::IncorrectResponse);

        let ip = ValidateRequest {
            identifier: Identifier::ip("127.0.0.1"),
            ..request(ChallengeType::Http01, "token.thumbprint")
        };
        assert_eq!(va.validate(ip).await.unwrap().problem, None);

        let ours = Arc::new(Localhost {
            caa: vec![record("basalt.example")],
        });
        let va = Va::new(settings(port, true), ours, clock()).unwrap();
        let result = va
            .validate(request(ChallengeType::Http01, "token.thumbprint"))
            .await
            .unwrap();
        assert_eq!(result.problem, None);
    }

    #[tokio::test]
    async fn a_wildcard_is_validated_only_by_dns_01() {
        let port = serve("token.thumbprint").await;
        let va = Va::new(settings(port, true), localhost(), clock()).unwrap();
        for kind in [ChallengeType::Http01, ChallengeType::TlsAlpn01] {
            let wildcard = ValidateRequest {
                wildcard: true,
                ..request(kind, "token.thumbprint")
            };
            let result = va.validate(wildcard).await.unwrap();
            let problem = result.problem.unwrap();
            assert_eq!(problem.kind, ErrorKind::Malformed);
            assert!(problem.detail.contains("dns-01 only"), "{problem}");
            assert!(result.records.is_empty());
        }
        // dns-01 is tried (and finds no TXT record here).
        let wildcard = ValidateRequest {
            wildcard: true,
            ..request(ChallengeType::Dns01, "token.thumbprint")
        };
        let problem = va.validate(wildcard).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
    }

    /// One slow host holds up nobody: 50 validations against a server that never
    /// answers all end, as timeouts, within the timeout and a small margin.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn validations_do_not_wait_for_each_other() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts every connection and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let timeout = Duration::from_secs(1);
        let va = Arc::new(
            Va::new(
                VaSettings {
                    http01_timeout: timeout,
                    ..settings(port, true)
                },
                localhost(),
                clock(),
            )
            .unwrap(),
        );
        let started = std::time::Instant::now();
        let mut all = tokio::task::JoinSet::new();
        for i in 0..50 {
            let va = va.clone();
            all.spawn(async move {
                let request = ValidateRequest {
                    identifier: Identifier::dns(format!("host-{i}.example.com")),
                    ..request(ChallengeType::Http01, "token.thumbprint")
                };
                va.validate(request).await.unwrap()
            });
        }
        let mut finished = 0;
        while let Some(result) = all.join_next().await {
            let problem = result.unwrap().problem.unwrap();
            assert_eq!(problem.kind, ErrorKind::Connection, "{problem}");
            finished += 1;
        }
        let took = started.elapsed();
        assert_eq!(finished, 50);
        assert!(
            took < timeout + Duration::from_millis(1500),
            "50 validations took {took:?} with a {timeout:?} timeout"
        );
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
            [tlsalpn01]
            port = 5003
            timeout = "3s"
            [caa]
            issuer_domains = ["basalt.example"]
        "#;
        let config: VaConfig = basalt_config::parse(text).unwrap();
        let settings = VaSettings::from_config(&config);
        assert_eq!(
            settings,
            VaSettings {
                http01_port: 5002,
                https_port: 5001,
                http01_timeout: Duration::from_secs(2),
                tlsalpn01_port: 5003,
                tlsalpn01_timeout: Duration::from_secs(3),
                caa_issuer_domains: vec!["basalt.example".into()],
                allow_private_addresses: true,
            }
        );
        assert!(Va::from_config(&config, clock()).is_ok());

        let mut bad = config.clone();
        bad.dns.resolver = Some("resolver.example:53".into());
        let err = Va::from_config(&bad, clock()).err().unwrap();
        assert!(err.detail.contains("dns.resolver"), "{err}");

        let mut bad = config;
        bad.caa.issuer_domains.clear();
        let err = Va::from_config(&bad, clock()).err().unwrap();
        assert!(err.detail.starts_with("caa.issuer_domains"), "{err}");
    }
}
