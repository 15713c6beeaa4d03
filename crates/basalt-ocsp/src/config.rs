//! The OCSP responder's configuration file (`basalt ocsp --config ocsp.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use serde::Deserialize;

use crate::ResponderSettings;

/// Everything `basalt ocsp` reads from its TOML file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OcspConfig {
    /// Where the plain-HTTP listener binds (OCSP is served over HTTP, RFC 5019).
    pub listen: SocketAddr,
    /// The issuer certificate whose certificates this responder answers for, PEM or
    /// DER (read with [`crate::load_issuer_cert`]).
    pub issuer_cert: PathBuf,
    /// The responder's mTLS certificate, key and the internal CA, for its gRPC clients.
    pub tls: TlsConfig,
    /// How to reach the storage authority (read-only service).
    pub sa: GrpcClientConfig,
    /// How to reach the CA's revocation signer.
    pub ca: GrpcClientConfig,
    /// The longest time HTTP caches may keep a response (`Cache-Control: max-age`);
    /// shorter when the response's nextUpdate comes sooner.
    #[serde(default = "OcspConfig::default_max_age")]
    pub max_age: ConfigDuration,
}

impl OcspConfig {
    fn default_max_age() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(3600))
    }

    /// The responder settings this config asks for.
    pub fn settings(&self) -> ResponderSettings {
        ResponderSettings {
            max_age: self.max_age.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        listen = "0.0.0.0:4002"
        issuer_cert = "/etc/basalt/issuer.pem"

        [tls]
        cert = "/etc/basalt/ocsp.pem"
        key = "/etc/basalt/ocsp.key"
        ca = "/etc/basalt/internal-ca.pem"

        [sa]
        address = "sa:9095"
        server_name = "sa.basalt"

        [ca]
        address = "ca:9093"
        server_name = "ca.basalt"
        timeout = "5s"
    "#;

    #[test]
    fn example_config_parses_with_defaults() {
        let config: OcspConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert_eq!(config.listen, "0.0.0.0:4002".parse().unwrap());
        assert_eq!(config.issuer_cert, PathBuf::from("/etc/basalt/issuer.pem"));
        assert_eq!(config.sa.server_name, "sa.basalt");
        assert_eq!(config.ca.timeout.0, Duration::from_secs(5));
        assert_eq!(config.settings().max_age, Duration::from_secs(3600));
    }

    #[test]
    fn max_age_can_be_set() {
        let text = format!("max_age = \"10m\"\n{EXAMPLE}");
        let config: OcspConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.settings().max_age, Duration::from_secs(600));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = format!("max_agee = \"10m\"\n{EXAMPLE}");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `max_agee`"), "{err}");
    }
}
