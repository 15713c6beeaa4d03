//! The WFE's configuration file (`deploy/config/wfe.toml`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use serde::Deserialize;

/// Configuration of `basalt wfe`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WfeConfig {
    /// The address the ACME HTTPS server listens on.
    pub listen: SocketAddr,
    /// The public base URL of the ACME server, without a trailing slash
    /// (e.g. `https://acme.example:14000`); every URL the WFE hands out starts with it.
    pub base_url: String,
    /// The certificate and key of the public HTTPS listener.
    pub https: HttpsConfig,
    /// Mutual TLS towards the RA and the SA.
    pub tls: TlsConfig,
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// How long requests in flight may take to finish once the service is asked
    /// to stop (SIGTERM); past that it stops anyway (default `"5s"`).
    #[serde(default = "basalt_config::default_drain_timeout")]
    pub drain_timeout: basalt_config::ConfigDuration,
    /// The registration authority.
    pub ra: GrpcClientConfig,
    /// The storage authority (read-only service).
    pub sa: GrpcClientConfig,
    /// The shared nonce service (`basalt nonce`); when absent the WFE keeps its
    /// own nonces in process, which only works for a single WFE.
    #[serde(default)]
    pub nonce: Option<GrpcClientConfig>,
    /// How long an account read from the SA answers later requests signed by it
    /// (default `"5s"`; `"0s"` reads it for every request). A change made through
    /// another WFE or `basalt admin` takes up to this long to be seen here.
    #[serde(default = "default_account_cache_ttl")]
    pub account_cache_ttl: basalt_config::ConfigDuration,
    /// What the directory's `meta` advertises.
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// External account binding (RFC 8555 §7.3.4).
    #[serde(default)]
    pub eab: EabConfig,
    /// Alternate issuer chains (RFC 8555 §7.4.2): PEM files, each an intermediate
    /// (e.g. cross-signed by another root) optionally followed by the certificates
    /// above it, nearest first. A certificate is offered every chain whose first
    /// certificate has its issuer's name and key identifier. Read at start-up.
    #[serde(default)]
    pub alternate_chains: Vec<PathBuf>,
}

fn default_account_cache_ttl() -> basalt_config::ConfigDuration {
    basalt_config::ConfigDuration(std::time::Duration::from_secs(5))
}

/// The public HTTPS listener's certificate.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The directory's `meta` object (RFC 8555 §7.1.1).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The terms of service URL; when set, new accounts must agree to them.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// The CA's website.
    #[serde(default)]
    pub website: Option<String>,
    /// The certificate profiles offered (draft-ietf-acme-profiles): name →
    /// description, advertised as `meta.profiles` when not empty. The RA decides
    /// which names it accepts; keep both lists in step.
    #[serde(default)]
    pub profiles: BTreeMap<String, String>,
    /// The domain names CAA records name to authorize this CA (RFC 8659),
    /// advertised as `meta.caaIdentities` when not empty.
    #[serde(default)]
    pub caa_identities: Vec<String>,
}

/// External account binding (RFC 8555 §7.3.4).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EabConfig {
    /// Whether every new account must be bound to an external account key
    /// (advertised as `meta.externalAccountRequired`). A binding a client sends
    /// anyway is always checked.
    #[serde(default)]
    pub required: bool,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const EXAMPLE: &str = r#"
        listen = "0.0.0.0:14000"
        base_url = "https://127.0.0.1:14000"
        alternate_chains = ["/etc/basalt/intermediate-x2.pem"]

        [https]
        cert = "/etc/basalt/wfe-https.pem"
        key = "/etc/basalt/wfe-https.key"

        [tls]
        cert = "/etc/basalt/wfe.pem"
        key = "/etc/basalt/wfe.key"
        ca = "/etc/basalt/internal-ca.pem"

        [ra]
        address = "127.0.0.1:9094"
        server_name = "ra.basalt"

        [sa]
        address = "127.0.0.1:9095"
        server_name = "sa.basalt"
        timeout = "5s"

        [nonce]
        address = "127.0.0.1:9096"
        server_name = "nonce.basalt"

        [directory]
        terms_of_service = "https://example.com/tos"
        caa_identities = ["acme.example.net"]

        [directory.profiles]
        classic = "the 90-day profile"
        shortlived = "6-day certificates"

        [eab]
        required = true
    "#;

    #[test]
    fn parses_an_example() {
        let config: WfeConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert_eq!(config.listen, "0.0.0.0:14000".parse().unwrap());
        assert_eq!(config.https.key, PathBuf::from("/etc/basalt/wfe-https.key"));
        assert_eq!(config.ra.server_name, "ra.basalt");
        assert_eq!(config.sa.timeout.0, Duration::from_secs(5));
        assert_eq!(
            config.directory.terms_of_service.as_deref(),
            Some("https://example.com/tos")
        );
        assert_eq!(config.directory.website, None);
        assert_eq!(
            config.nonce.as_ref().map(|n| n.server_name.as_str()),
            Some("nonce.basalt")
        );
        assert_eq!(
            config.directory.profiles.keys().collect::<Vec<_>>(),
            ["classic", "shortlived"]
        );
        assert_eq!(
            config.directory.profiles["shortlived"],
            "6-day certificates"
        );
        assert!(config.eab.required);
        assert_eq!(config.directory.caa_identities, ["acme.example.net"]);
        assert_eq!(
            config.alternate_chains,
            [PathBuf::from("/etc/basalt/intermediate-x2.pem")]
        );
    }

    #[test]
    fn eab_and_nonce_are_optional() {
        let start = EXAMPLE.find("[nonce]").unwrap();
        let text = &EXAMPLE[..start];
        let config: WfeConfig = basalt_config::parse(text).unwrap();
        assert_eq!(config.nonce, None);
        assert_eq!(config.eab, EabConfig::default());
        assert!(!config.eab.required);
        assert!(config.directory.profiles.is_empty());
        let text = EXAMPLE.replace("required = true", "requried = true");
        let err = basalt_config::parse::<WfeConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `requried`"), "{err}");
    }

    #[test]
    fn directory_is_optional() {
        let start = EXAMPLE.find("[directory]").unwrap();
        let end = EXAMPLE.find("[eab]").unwrap();
        let text = format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        let config: WfeConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.directory, DirectoryConfig::default());
        assert!(config.directory.caa_identities.is_empty());
        let text = text.replace(
            "alternate_chains = [\"/etc/basalt/intermediate-x2.pem\"]",
            "",
        );
        let config: WfeConfig = basalt_config::parse(&text).unwrap();
        assert!(config.alternate_chains.is_empty());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = EXAMPLE.replace("website", "x").replace(
            "[directory]",
            "[directory]\nwebsight = \"https://example.com\"",
        );
        let err = basalt_config::parse::<WfeConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `websight`"), "{err}");
        let text = format!("extra = 1\n{EXAMPLE}");
        assert!(basalt_config::parse::<WfeConfig>(&text).is_err());
    }
}
