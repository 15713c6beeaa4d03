//! The WFE's configuration file (`deploy/config/wfe.toml`).

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
    /// The registration authority.
    pub ra: GrpcClientConfig,
    /// The storage authority (read-only service).
    pub sa: GrpcClientConfig,
    /// What the directory's `meta` advertises.
    #[serde(default)]
    pub directory: DirectoryConfig,
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const EXAMPLE: &str = r#"
        listen = "0.0.0.0:14000"
        base_url = "https://127.0.0.1:14000"

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

        [directory]
        terms_of_service = "https://example.com/tos"
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
    }

    #[test]
    fn directory_is_optional() {
        let text = EXAMPLE
            .replace("[directory]", "")
            .replace(r#"terms_of_service = "https://example.com/tos""#, "");
        let config: WfeConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.directory, DirectoryConfig::default());
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
