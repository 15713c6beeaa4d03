//! The VA's configuration file (`basalt va --config va.toml`).

use std::net::SocketAddr;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use serde::Deserialize;

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
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaConfig {
    /// Where the VA's gRPC server listens and who may call it.
    pub grpc: GrpcServerConfig,
    /// The VA's mTLS identity.
    pub tls: TlsConfig,
    /// How names are resolved.
    #[serde(default)]
    pub dns: DnsConfig,
    /// http-01 (RFC 8555 §8.3).
    #[serde(default)]
    pub http01: Http01Config,
    /// tls-alpn-01 (RFC 8737); not validated yet.
    #[serde(default)]
    pub tlsalpn01: TlsAlpn01Config,
    /// Allow connections to loopback, private, link-local and other reserved
    /// addresses. Off by default: only a lab whose validated hosts live on a
    /// private network (`basalt dev`, tests) should turn it on.
    #[serde(default)]
    pub allow_private_addresses: bool,
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

/// tls-alpn-01 validation (`[tlsalpn01]`), coming in a later issue.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsAlpn01Config {
    /// The port the TLS handshake goes to (RFC 8737 says 443).
    #[serde(default = "TlsAlpn01Config::default_port")]
    pub port: u16,
}

impl TlsAlpn01Config {
    fn default_port() -> u16 {
        443
    }
}

impl Default for TlsAlpn01Config {
    fn default() -> Self {
        Self {
            port: Self::default_port(),
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
    "#;

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
