//! The VA's configuration file (`basalt va --config va.toml`).

use std::net::SocketAddr;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use serde::Deserialize;

use crate::perspectives::DEFAULT_MIN_REGIONS;
use crate::perspectives::RemoteConfig;
use crate::perspectives::check_regions;
use crate::pool::RemotePoolConfig;

/// The whole configuration of the validation authority.
///
/// ```toml
/// allow_private_addresses = false
///
/// [grpc]
/// listen = "0.0.0.0:9092"
/// allowed_clients = { "basalt.va.Validation" = ["ra.basalt"] }
///
/// [tls]
/// cert = "va.pem"
/// key = "va.key"
/// ca = "internal-ca.pem"
///
/// [dns]
/// resolver = "127.0.0.1:8053"   # omit to use /etc/resolv.conf
/// timeout = "5s"
/// attempts = 2
///
/// [http01]
/// port = 80
/// https_port = 443
/// timeout = "10s"
///
/// [tlsalpn01]
/// port = 443
/// timeout = "10s"
///
/// [caa]
/// issuer_domains = ["ca.example.net"]
///
/// # Multi-perspective validation: every remote VA to ask after a local success.
/// remote_timeout = "15s"
/// [[remote]]
/// name = "remote-1"
/// region = "eu-west"
/// address = "va-remote-1.internal:9092"
/// server_name = "va-remote-1"
///
/// # …and every address a name resolves to, all in one region.
/// [[remote_pool]]
/// region = "us-east"
/// address = "va-remote.us-east.internal:9092"
/// server_name = "va-remote"
/// refresh = "30s"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaConfig {
    /// Where the VA's gRPC server listens and who may call it.
    pub grpc: GrpcServerConfig,
    /// The VA's mTLS identity.
    pub tls: TlsConfig,
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// How names are resolved.
    #[serde(default)]
    pub dns: DnsConfig,
    /// http-01 (RFC 8555 §8.3).
    #[serde(default)]
    pub http01: Http01Config,
    /// tls-alpn-01 (RFC 8737, RFC 8738).
    #[serde(default)]
    pub tlsalpn01: TlsAlpn01Config,
    /// CAA (RFC 8659): the names under which this CA may be authorized.
    pub caa: CaaConfig,
    /// The remote perspectives a primary VA asks after validating locally; none for
    /// a remote VA itself, or a VA without multi-perspective validation.
    #[serde(default)]
    pub remote: Vec<RemoteConfig>,
    /// Pools of interchangeable remote VAs, each one DNS name whose every address
    /// is a perspective (`docker compose --scale`, a Kubernetes headless Service);
    /// see [`crate::RemotePool`].
    #[serde(default)]
    pub remote_pool: Vec<RemotePoolConfig>,
    /// How many distinct regions the remote successes must span: 2 unless told,
    /// at least 1. Production keeps 2 (the Baseline Requirements ask for
    /// perspectives in separate places, and one region is one route an attacker
    /// can hijack for every perspective at once); only a lab whose remote VAs all
    /// run on one site, such as docker-compose.yml on one host, sets 1. The
    /// regions of `remote` and `remote_pool` must be able to meet it.
    #[serde(default = "VaConfig::default_remote_min_regions")]
    pub remote_min_regions: usize,
    /// How long a remote perspective has to answer.
    #[serde(default = "VaConfig::default_remote_timeout")]
    pub remote_timeout: ConfigDuration,
    /// Allow connections to loopback, private, link-local and other reserved
    /// addresses. Off by default: only a lab whose validated hosts live on a
    /// private network (`basalt dev`, tests) should turn it on.
    #[serde(default)]
    pub allow_private_addresses: bool,
}

impl VaConfig {
    fn default_remote_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(15))
    }

    fn default_remote_min_regions() -> usize {
        DEFAULT_MIN_REGIONS
    }

    /// The checks the VA makes on its config at start beyond what parsing does:
    /// each `[[remote_pool]]` well formed, `remote_min_regions` at least 1 and met
    /// by the regions configured. The message names the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (index, pool) in self.remote_pool.iter().enumerate() {
            pool.validate(index)?;
        }
        let regions = self
            .remote
            .iter()
            .map(|remote| remote.region.as_str())
            .chain(self.remote_pool.iter().map(|pool| pool.region.as_str()));
        check_regions(regions, self.remote_min_regions)
    }
}

/// `[caa]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaaConfig {
    /// The issuer domain names (RFC 8659 §4.2) that identify this CA in `issue` and
    /// `issuewild` records; at least one.
    pub issuer_domains: Vec<String>,
}

/// The DNS resolver the VA uses (`[dns]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `ip:port` of a recursive resolver; when absent, the system's
    /// configuration (`/etc/resolv.conf`) is used.
    #[serde(default)]
    pub resolver: Option<String>,
    /// The time allowed for one query to one server.
    #[serde(default = "DnsConfig::default_timeout")]
    pub timeout: ConfigDuration,
    /// How many times a query is tried before it fails.
    #[serde(default = "DnsConfig::default_attempts")]
    pub attempts: u8,
    /// Validate DNSSEC (`dnssec = true`) against the root trust anchor: an
    /// answer that fails validation fails the lookup, as a DNS error. Off by
    /// default: the upstream resolver must then pass RRSIG, DNSKEY and DS
    /// records through, and most validate already.
    #[serde(default)]
    pub dnssec: bool,
}

impl DnsConfig {
    fn default_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(5))
    }

    fn default_attempts() -> u8 {
        2
    }

    /// The configured upstream resolver, parsed; `None` means the system's.
    pub fn upstream(&self) -> Result<Option<SocketAddr>, Error> {
        self.resolver
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    Error::internal(format!(
                        "invalid dns.resolver {text:?}: expected an ip:port such as \"127.0.0.1:53\" or \"[::1]:53\""
                    ))
                })
            })
            .transpose()
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            resolver: None,
            timeout: Self::default_timeout(),
            attempts: Self::default_attempts(),
            dnssec: false,
        }
    }
}

/// http-01 validation (`[http01]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Http01Config {
    /// The port of the first request (RFC 8555 §8.3 says 80; tests and labs
    /// change it). Redirects may go to this port or to `https_port`.
    #[serde(default = "Http01Config::default_port")]
    pub port: u16,
    /// The port an `https://` redirect target without an explicit port is
    /// fetched on, and the only other port a redirect may name.
    #[serde(default = "Http01Config::default_https_port")]
    pub https_port: u16,
    /// The time allowed for the whole validation, redirects included.
    #[serde(default = "Http01Config::default_timeout")]
    pub timeout: ConfigDuration,
}

impl Http01Config {
    fn default_port() -> u16 {
        80
    }

    fn default_https_port() -> u16 {
        443
    }

    fn default_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(10))
    }
}

impl Default for Http01Config {
    fn default() -> Self {
        Self {
            port: Self::default_port(),
            https_port: Self::default_https_port(),
            timeout: Self::default_timeout(),
        }
    }
}

/// tls-alpn-01 validation (`[tlsalpn01]`): a TLS handshake offering only
/// `acme-tls/1`, whose certificate must name the identifier and carry the
/// acmeIdentifier extension (RFC 8737).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsAlpn01Config {
    /// The port the TLS handshake goes to (RFC 8737 says 443).
    #[serde(default = "TlsAlpn01Config::default_port")]
    pub port: u16,
    /// The time allowed for the whole validation: lookup, connection and
    /// handshake.
    #[serde(default = "TlsAlpn01Config::default_timeout")]
    pub timeout: ConfigDuration,
}

impl TlsAlpn01Config {
    fn default_port() -> u16 {
        443
    }

    fn default_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(10))
    }
}

impl Default for TlsAlpn01Config {
    fn default() -> Self {
        Self {
            port: Self::default_port(),
            timeout: Self::default_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [grpc]
        listen = "127.0.0.1:9092"
        allowed_clients = { "basalt.va.Validation" = ["ra.basalt"] }

        [tls]
        cert = "va.pem"
        key = "va.key"
        ca = "ca.pem"

        [caa]
        issuer_domains = ["basalt.example"]
    "#;

    #[test]
    fn caa_identity_and_remotes() {
        let without_caa =
            MINIMAL.replace("[caa]\n        issuer_domains = [\"basalt.example\"]", "");
        let err = basalt_config::parse::<VaConfig>(&without_caa).unwrap_err();
        assert!(err.contains("missing field `caa`"), "{err}");

        let config: VaConfig = basalt_config::parse(MINIMAL).unwrap();
        assert_eq!(config.caa.issuer_domains, ["basalt.example"]);
        assert!(config.remote.is_empty());
        assert_eq!(config.remote_timeout.0, Duration::from_secs(15));

        let text = format!(
            "remote_timeout = \"5s\"\n{MINIMAL}\n[[remote]]\nname = \"r1\"\nregion = \"east\"\n\
             address = \"127.0.0.1:9100\"\nserver_name = \"va-remote-1\"\n"
        );
        let config: VaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.remote_timeout.0, Duration::from_secs(5));
        assert_eq!(
            config.remote,
            [RemoteConfig {
                name: "r1".into(),
                region: "east".into(),
                address: "127.0.0.1:9100".into(),
                server_name: "va-remote-1".into(),
            }]
        );
        let typo = text.replace("server_name", "servername");
        let err = basalt_config::parse::<VaConfig>(&typo).unwrap_err();
        assert!(err.contains("servername"), "{err}");
    }

    #[test]
    fn remote_pools_and_the_regions_they_must_span() {
        let config: VaConfig = basalt_config::parse(MINIMAL).unwrap();
        assert!(config.remote_pool.is_empty());
        assert_eq!(config.remote_min_regions, 2);
        config.validate().unwrap();

        let pool = "\n[[remote_pool]]\nregion = \"lab\"\naddress = \"va-remote:9092\"\n\
                    server_name = \"va-remote\"\n";
        // One pool is one region: refused unless the lab says one region will do.
        let one_region: VaConfig = basalt_config::parse(&format!("{MINIMAL}{pool}")).unwrap();
        assert_eq!(
            one_region.remote_pool,
            [RemotePoolConfig {
                name: None,
                region: "lab".into(),
                address: "va-remote:9092".into(),
                server_name: "va-remote".into(),
                refresh: ConfigDuration(Duration::from_secs(30)),
            }]
        );
        let err = one_region.validate().unwrap_err();
        assert!(err.contains("remote_min_regions = 2"), "{err}");
        let lab: VaConfig =
            basalt_config::parse(&format!("remote_min_regions = 1\n{MINIMAL}{pool}")).unwrap();
        lab.validate().unwrap();
        // A pool and a fixed remote elsewhere span two regions.
        let remote = "\n[[remote]]\nname = \"far\"\nregion = \"far\"\n\
                      address = \"far.example:9092\"\nserver_name = \"far\"\n";
        let mixed: VaConfig = basalt_config::parse(&format!("{MINIMAL}{pool}{remote}")).unwrap();
        mixed.validate().unwrap();

        let zero: VaConfig =
            basalt_config::parse(&format!("remote_min_regions = 0\n{MINIMAL}")).unwrap();
        let err = zero.validate().unwrap_err();
        assert!(err.starts_with("remote_min_regions = 0"), "{err}");
        let bad_refresh = lab.remote_pool[0].clone();
        let bad = VaConfig {
            remote_pool: vec![
                lab.remote_pool[0].clone(),
                RemotePoolConfig {
                    refresh: ConfigDuration(Duration::ZERO),
                    ..bad_refresh
                },
            ],
            ..lab.clone()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.starts_with("remote_pool[1].refresh"), "{err}");
        let typo = format!("{MINIMAL}{pool}servername = \"x\"\n");
        let err = basalt_config::parse::<VaConfig>(&typo).unwrap_err();
        assert!(err.contains("unknown field `servername`"), "{err}");
    }

    #[test]
    fn defaults_are_safe() {
        let config: VaConfig = basalt_config::parse(MINIMAL).unwrap();
        assert!(!config.allow_private_addresses);
        assert_eq!(config.dns, DnsConfig::default());
        assert_eq!(config.dns.upstream().unwrap(), None);
        assert_eq!(config.dns.timeout.0, Duration::from_secs(5));
        assert_eq!(config.dns.attempts, 2);
        assert_eq!(config.http01.port, 80);
        assert_eq!(config.http01.https_port, 443);
        assert_eq!(config.http01.timeout.0, Duration::from_secs(10));
        assert_eq!(config.tlsalpn01.port, 443);
        assert_eq!(config.tlsalpn01.timeout.0, Duration::from_secs(10));
        assert_eq!(config.tlsalpn01, TlsAlpn01Config::default());
    }

    #[test]
    fn full_example_parses() {
        let text = format!(
            "allow_private_addresses = true\n{MINIMAL}\n{}",
            r#"
            [dns]
            resolver = "[::1]:8053"
            timeout = "750ms"
            attempts = 3

            [http01]
            port = 5002
            https_port = 5001
            timeout = "3s"

            [tlsalpn01]
            port = 5001
            timeout = "4s"
            "#
        );
        let config: VaConfig = basalt_config::parse(&text).unwrap();
        assert!(config.allow_private_addresses);
        assert_eq!(
            config.dns.upstream().unwrap(),
            Some("[::1]:8053".parse().unwrap())
        );
        assert_eq!(config.dns.timeout.0, Duration::from_millis(750));
        assert_eq!(config.dns.attempts, 3);
        assert_eq!(config.http01.port, 5002);
        assert_eq!(config.http01.https_port, 5001);
        assert_eq!(config.http01.timeout.0, Duration::from_secs(3));
        assert_eq!(config.tlsalpn01.port, 5001);
        assert_eq!(config.tlsalpn01.timeout.0, Duration::from_secs(4));
    }

    #[test]
    fn tlsalpn01_timeout_alone_keeps_the_default_port() {
        let text = format!("{MINIMAL}\n[tlsalpn01]\ntimeout = \"2500ms\"\n");
        let config: VaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.tlsalpn01.port, 443);
        assert_eq!(config.tlsalpn01.timeout.0, Duration::from_millis(2500));

        let text = format!("{MINIMAL}\n[tlsalpn01]\ntimeuot = \"2s\"\n");
        let err = basalt_config::parse::<VaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `timeuot`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = format!("{MINIMAL}\n[http01]\nprot = 80\n");
        let err = basalt_config::parse::<VaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `prot`"), "{err}");

        let text = format!("allow_private = true\n{MINIMAL}");
        let err = basalt_config::parse::<VaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `allow_private`"), "{err}");
    }

    #[test]
    fn dnssec_is_off_unless_asked_for() {
        let config: VaConfig = basalt_config::parse(MINIMAL).unwrap();
        assert!(!config.dns.dnssec);

        let text = format!("{MINIMAL}\n[dns]\ndnssec = true\n");
        let config: VaConfig = basalt_config::parse(&text).unwrap();
        assert!(config.dns.dnssec);
        assert_eq!(config.dns.attempts, 2);
    }

    #[test]
    fn bad_resolver_names_the_field() {
        for bad in ["dns.example:53", "127.0.0.1", "1.2.3.4:99999"] {
            let dns = DnsConfig {
                resolver: Some(bad.into()),
                ..DnsConfig::default()
            };
            let err = dns.upstream().unwrap_err();
            assert!(err.detail.contains("dns.resolver"), "{err}");
            assert!(err.detail.contains(bad), "{err}");
        }
    }
}
