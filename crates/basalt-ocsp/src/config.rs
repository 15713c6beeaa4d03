//! The OCSP responder's configuration file (`basalt ocsp --config ocsp.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use serde::Deserialize;

use crate::ResponderIssuer;
use crate::ResponderSettings;
use crate::load_issuer_cert;
use crate::responder::check_issuer_path;

/// Everything `basalt ocsp` reads from its TOML file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OcspConfig {
    /// Where the plain-HTTP listener binds (OCSP is served over HTTP, RFC 5019).
    pub listen: SocketAddr,
    /// The issuers whose certificates this responder answers for (`[[issuers]]`), at
    /// least one.
    pub issuers: Vec<IssuerConfig>,
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
    /// How many signed responses to keep in memory and serve again while the
    /// certificate's status is unchanged (the oldest make room); 0 has the CA sign
    /// every answer.
    #[serde(default = "OcspConfig::default_cache_size")]
    pub cache_size: usize,
}

/// One issuer (`[[issuers]]`): its certificate, and where to publish it.
///
/// A cross-signed copy of an issuer (same subject name and key) is the same issuer
/// for OCSP, so one entry answers for both; a second entry is needed only to serve
/// the other certificate at its own `path`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer certificate, PEM or DER (read with [`crate::load_issuer_cert`]).
    pub cert: PathBuf,
    /// The HTTP path (e.g. `/issuers/ecdsa.der`) at which the certificate is served
    /// as DER, for the caIssuers URL in the certificates it signs (RFC 5280
    /// §4.2.2.1). Not served when absent.
    #[serde(default)]
    pub path: Option<String>,
}

impl OcspConfig {
    fn default_max_age() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(3600))
    }

    /// 100 000 responses: some tens of MB with ECDSA signatures, enough to keep the
    /// active certificates of a private hierarchy.
    fn default_cache_size() -> usize {
        100_000
    }

    /// Checks what serde cannot: there is at least one issuer, and every issuer
    /// `path` is a plain absolute path (ASCII letters, digits, `-._~/`, no `..`)
    /// that no other issuer uses. The message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuers.is_empty() {
            return Err("issuers must list at least one [[issuers]] table".into());
        }
        for (index, issuer) in self.issuers.iter().enumerate() {
            let Some(path) = &issuer.path else {
                continue;
            };
            check_issuer_path(path)
                .map_err(|problem| format!("issuers[{index}].path {problem}"))?;
            let earlier = self.issuers[..index]
                .iter()
                .position(|other| other.path.as_ref() == Some(path));
            if let Some(earlier) = earlier {
                return Err(format!(
                    "issuers[{index}].path {path:?} is already issuers[{earlier}].path"
                ));
            }
        }
        Ok(())
    }

    /// Reads every issuer certificate, in config order; the error names the field
    /// whose file cannot be read.
    pub fn load_issuers(&self) -> Result<Vec<ResponderIssuer>, Error> {
        self.issuers
            .iter()
            .enumerate()
            .map(|(index, issuer)| {
                let cert_der = load_issuer_cert(&issuer.cert).map_err(|err| {
                    Error::internal(format!("issuers[{index}].cert: {}", err.detail))
                })?;
                Ok(ResponderIssuer {
                    cert_der,
                    path: issuer.path.clone(),
                })
            })
            .collect()
    }

    /// The responder settings this config asks for.
    pub fn settings(&self) -> ResponderSettings {
        ResponderSettings {
            max_age: self.max_age.0,
            cache_size: self.cache_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        listen = "0.0.0.0:4002"

        [[issuers]]
        cert = "/etc/basalt/intermediate-ecdsa.pem"
        path = "/issuers/ecdsa.der"

        [[issuers]]
        cert = "/etc/basalt/intermediate-rsa.pem"

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
        config.validate().unwrap();
        assert_eq!(config.listen, "0.0.0.0:4002".parse().unwrap());
        assert_eq!(
            config.issuers,
            vec![
                IssuerConfig {
                    cert: PathBuf::from("/etc/basalt/intermediate-ecdsa.pem"),
                    path: Some("/issuers/ecdsa.der".to_owned()),
                },
                IssuerConfig {
                    cert: PathBuf::from("/etc/basalt/intermediate-rsa.pem"),
                    path: None,
                },
            ]
        );
        assert_eq!(config.sa.server_name, "sa.basalt");
        assert_eq!(config.ca.timeout.0, Duration::from_secs(5));
        assert_eq!(config.settings().max_age, Duration::from_secs(3600));
        assert_eq!(config.settings().cache_size, 100_000);
    }

    #[test]
    fn cache_size_can_be_set() {
        let text = format!("cache_size = 0\n{EXAMPLE}");
        let config: OcspConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.settings().cache_size, 0);
        let text = format!("cache_size = -1\n{EXAMPLE}");
        assert!(basalt_config::parse::<OcspConfig>(&text).is_err());
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
        let text = EXAMPLE.replace("path = ", "url = ");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `url`"), "{err}");
    }

    #[test]
    fn the_old_single_issuer_field_is_rejected() {
        let text = format!("issuer_cert = \"/etc/basalt/issuer.pem\"\n{EXAMPLE}");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `issuer_cert`"), "{err}");
        let without = EXAMPLE.replace("[[issuers]]", "[[unused]]");
        let err = basalt_config::parse::<OcspConfig>(&without).unwrap_err();
        assert!(err.contains("unused"), "{err}");
    }

    #[test]
    fn the_deploy_config_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/ocsp.toml");
        let config: OcspConfig = basalt_config::load(&path).unwrap();
        config.validate().unwrap();
    }

    /// A config with these `[[issuers]]` tables and the example's other blocks.
    fn with_issuers(issuers: &str) -> OcspConfig {
        let rest = EXAMPLE.split_once("[tls]").map(|(_, rest)| rest).unwrap();
        let text = format!("listen = \"0.0.0.0:4002\"\n{issuers}\n[tls]{rest}");
        basalt_config::parse(&text).unwrap_or_else(|err| panic!("{issuers}: {err}"))
    }

    #[test]
    fn issuers_must_not_be_empty() {
        let config = with_issuers("issuers = []");
        assert_eq!(
            config.validate().unwrap_err(),
            "issuers must list at least one [[issuers]] table"
        );
    }

    #[test]
    fn validate_names_the_bad_path() {
        for (path, problem) in [
            ("issuers/a.der", "must start with '/'"),
            ("/", "must name a file, not '/'"),
            ("/issuers/é.der", "may hold only ASCII"),
            ("/issuers/a.der?x=1", "may hold only ASCII"),
            ("/issuers/a.der#x", "may hold only ASCII"),
            ("/issuers/{name}", "may hold only ASCII"),
            ("/issuers/*", "may hold only ASCII"),
            ("/issuers/a%2eder", "may hold only ASCII"),
            ("/issuers/../a.der", "must not contain '..'"),
            ("/issuers//a.der", "must not contain empty or '.' segments"),
            ("/issuers/./a.der", "must not contain empty or '.' segments"),
            ("/issuers/a.der/", "must not contain empty or '.' segments"),
        ] {
            let config = with_issuers(&format!(
                "[[issuers]]\ncert = \"a.pem\"\n[[issuers]]\ncert = \"b.pem\"\npath = {path:?}"
            ));
            let err = config.validate().unwrap_err();
            assert!(err.starts_with("issuers[1].path "), "{path}: {err}");
            assert!(err.contains(problem), "{path}: {err}");
        }
    }

    #[test]
    fn paths_must_not_collide() {
        let config = with_issuers(
            "[[issuers]]\ncert = \"a.pem\"\npath = \"/a.der\"\n\
             [[issuers]]\ncert = \"b.pem\"\n\
             [[issuers]]\ncert = \"c.pem\"\npath = \"/a.der\"",
        );
        assert_eq!(
            config.validate().unwrap_err(),
            "issuers[2].path \"/a.der\" is already issuers[0].path"
        );
    }

    #[test]
    fn the_same_certificate_may_be_listed_twice() {
        // A cross-signed copy: the same issuer, served at two paths.
        let config = with_issuers(
            "[[issuers]]\ncert = \"a.pem\"\npath = \"/a.der\"\n\
             [[issuers]]\ncert = \"a-cross.pem\"\npath = \"/a-cross.der\"",
        );
        config.validate().unwrap();
    }

    #[test]
    fn load_issuers_names_the_unreadable_file() {
        let dir = std::env::temp_dir().join(format!("basalt-ocsp-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = dir.join("issuer.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        let missing = dir.join("missing.pem");
        let issuers = format!(
            "[[issuers]]\ncert = {:?}\npath = \"/i.der\"\n[[issuers]]\ncert = {:?}",
            pem.display().to_string(),
            missing.display().to_string()
        );
        let mut config = with_issuers(&issuers);
        let err = config.load_issuers().unwrap_err();
        assert!(err.detail.starts_with("issuers[1].cert: "), "{err}");
        assert!(err.detail.contains("missing.pem"), "{err}");

        config.issuers.pop();
        let loaded = config.load_issuers().unwrap();
        assert_eq!(
            loaded,
            vec![ResponderIssuer {
                cert_der: cert.der().to_vec(),
                path: Some("/i.der".to_owned()),
            }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
