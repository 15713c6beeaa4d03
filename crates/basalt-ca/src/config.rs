//! The CA service's configuration file (`basalt ca --config ca.toml`).

use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use serde::Deserialize;

use crate::Profile;

/// Everything `basalt ca` reads from its TOML file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Where the CA's gRPC server listens and who may call it (the RA and the
    /// OCSP/CRL updater only).
    pub grpc: GrpcServerConfig,
    /// The CA's own mTLS certificate, key and the internal CA.
    pub tls: TlsConfig,
    /// How to reach the storage authority.
    pub sa: GrpcClientConfig,
    /// The issuer certificate and key that sign subscriber certificates.
    pub issuer: IssuerConfig,
    /// The shape of the certificates the CA issues.
    #[serde(default)]
    pub profile: ProfileConfig,
    /// How OCSP responses are signed.
    #[serde(default)]
    pub ocsp: OcspSigningConfig,
}

/// The issuer's files.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM PKCS#8 (ECDSA P-256/P-384 or RSA).
    pub key: PathBuf,
    /// Further certificates to send after the issuer certificate, PEM, nearest
    /// first (e.g. a cross-signed intermediate). The root is usually left out.
    #[serde(default)]
    pub chain: Vec<PathBuf>,
}

/// The certificate profile ([`Profile`]) as written in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// How long a certificate is valid, counted from its (backdated) notBefore.
    #[serde(default = "ProfileConfig::default_validity")]
    pub validity: ConfigDuration,
    /// How far notBefore is set in the past, to absorb client clock skew.
    #[serde(default = "ProfileConfig::default_backdate")]
    pub backdate: ConfigDuration,
    /// The CRL distribution point URL to put in certificates, if any.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The OCSP responder URL to put in the AIA extension, if any.
    #[serde(default)]
    pub ocsp_url: Option<String>,
}

impl ProfileConfig {
    fn default_validity() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(90 * 86_400))
    }

    fn default_backdate() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(3600))
    }

    /// The profile the CA issues with.
    pub fn to_profile(&self) -> Profile {
        Profile {
            validity: self.validity.0,
            backdate: self.backdate.0,
            crl_url: self.crl_url.clone(),
            ocsp_url: self.ocsp_url.clone(),
        }
    }
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            validity: Self::default_validity(),
            backdate: Self::default_backdate(),
            crl_url: None,
            ocsp_url: None,
        }
    }
}

/// How OCSP responses are signed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OcspSigningConfig {
    /// nextUpdate - thisUpdate of every response.
    #[serde(default = "OcspSigningConfig::default_validity")]
    pub validity: ConfigDuration,
}

impl OcspSigningConfig {
    fn default_validity() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(4 * 86_400))
    }
}

impl Default for OcspSigningConfig {
    fn default() -> Self {
        Self {
            validity: Self::default_validity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [grpc]
        listen = "127.0.0.1:9093"
        allowed_clients = { "basalt.ca.CertificateAuthority" = ["ra.basalt"] }

        [tls]
        cert = "pki/ca.pem"
        key = "pki/ca.key"
        ca = "pki/internal-ca.pem"

        [sa]
        address = "127.0.0.1:9095"
        server_name = "sa.basalt"

        [issuer]
        cert = "pki/intermediate.pem"
        key = "pki/intermediate.key"

        [profile]
        validity = "7d"
        ocsp_url = "http://127.0.0.1:4002/"
    "#;

    #[test]
    fn example_config_parses_with_defaults() {
        let config: CaConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert_eq!(config.issuer.key, PathBuf::from("pki/intermediate.key"));
        assert!(config.issuer.chain.is_empty());
        let profile = config.profile.to_profile();
        assert_eq!(profile.validity, Duration::from_secs(7 * 86_400));
        assert_eq!(profile.backdate, Duration::from_secs(3600));
        assert_eq!(profile.ocsp_url.as_deref(), Some("http://127.0.0.1:4002/"));
        assert_eq!(profile.crl_url, None);
        assert_eq!(config.ocsp.validity.0, Duration::from_secs(4 * 86_400));
    }

    #[test]
    fn missing_sections_take_defaults() {
        let text = EXAMPLE.replace("[profile]", "[unused]");
        let text = text.split("[unused]").next().unwrap_or_default().to_owned();
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        assert_eq!(config.profile, ProfileConfig::default());
        assert_eq!(config.profile.validity.0, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = EXAMPLE.replace("validity = \"7d\"", "validty = \"7d\"");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `validty`"), "{err}");
        let text = format!("{EXAMPLE}\n[ocsp]\nvalidity = \"1d\"\nnonce = true\n");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `nonce`"), "{err}");
    }
}
