//! The RA's config file (`basalt ra --config ra.toml`).

use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_policy::IdentifierPolicy;
use serde::Deserialize;

use crate::RaSettings;

const DAY: Duration = Duration::from_secs(86_400);

/// The RA's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RaConfig {
    /// `[grpc]`: where the RA's gRPC server listens and who may call it.
    pub grpc: GrpcServerConfig,
    /// `[tls]`: the RA's mTLS identity.
    pub tls: TlsConfig,
    /// `[sa]`: the storage authority.
    pub sa: GrpcClientConfig,
    /// `[va]`: the validation authority.
    pub va: GrpcClientConfig,
    /// `[ca]`: the certificate authority.
    pub ca: GrpcClientConfig,
    /// The account URL is this prefix followed by the account ID (it must match the
    /// WFE's), e.g. `https://acme.example/acme/acct/`.
    pub account_uri_prefix: String,
    /// `[lifetimes]`: how long authorizations and orders live.
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    /// `[policy]`: which identifiers may be ordered.
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// How long authorizations and orders live.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LifetimesConfig {
    /// A new authorization's lifetime while pending (default `"7d"`).
    #[serde(default = "LifetimesConfig::default_pending_authz")]
    pub pending_authz: ConfigDuration,
    /// An authorization's lifetime once validated (default `"30d"`).
    #[serde(default = "LifetimesConfig::default_valid_authz")]
    pub valid_authz: ConfigDuration,
    /// An order's lifetime (default `"7d"`).
    #[serde(default = "LifetimesConfig::default_order")]
    pub order: ConfigDuration,
}

impl LifetimesConfig {
    fn default_pending_authz() -> ConfigDuration {
        ConfigDuration(7 * DAY)
    }

    fn default_valid_authz() -> ConfigDuration {
        ConfigDuration(30 * DAY)
    }

    fn default_order() -> ConfigDuration {
        ConfigDuration(7 * DAY)
    }
}

impl Default for LifetimesConfig {
    fn default() -> Self {
        Self {
            pending_authz: Self::default_pending_authz(),
            valid_authz: Self::default_valid_authz(),
            order: Self::default_order(),
        }
    }
}

/// Which identifiers may be ordered.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Whether IP identifiers (RFC 8738) may be ordered (default `false`).
    #[serde(default)]
    pub allow_ip_identifiers: bool,
    /// The most distinct identifiers one order may hold (default 100).
    #[serde(default = "PolicyConfig::default_max_names")]
    pub max_names: usize,
}

impl PolicyConfig {
    fn default_max_names() -> usize {
        IdentifierPolicy::default().max_names
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            allow_ip_identifiers: false,
            max_names: Self::default_max_names(),
        }
    }
}

impl RaConfig {
    /// The RA's settings from this config.
    pub fn settings(&self) -> RaSettings {
        RaSettings {
            policy: IdentifierPolicy {
                allow_ip_identifiers: self.policy.allow_ip_identifiers,
                max_names: self.policy.max_names,
            },
            pending_authz_lifetime: self.lifetimes.pending_authz.0,
            valid_authz_lifetime: self.lifetimes.valid_authz.0,
            order_lifetime: self.lifetimes.order.0,
            account_uri_prefix: self.account_uri_prefix.clone(),
        }
    }

    /// Checks the values serde cannot: non-zero lifetimes and name limit, and an
    /// account URL prefix that is an HTTP(S) URL ending in `/`. The message names the
    /// field.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [
            ("lifetimes.pending_authz", self.lifetimes.pending_authz),
            ("lifetimes.valid_authz", self.lifetimes.valid_authz),
            ("lifetimes.order", self.lifetimes.order),
        ] {
            if value.0.is_zero() {
                return Err(format!("{field} must be longer than zero"));
            }
        }
        if self.policy.max_names == 0 {
            return Err("policy.max_names must be at least 1".to_owned());
        }
        let prefix = &self.account_uri_prefix;
        if !(prefix.starts_with("https://") || prefix.starts_with("http://"))
            || !prefix.ends_with('/')
        {
            return Err(format!(
                "account_uri_prefix must be an http(s) URL ending in \"/\", not {prefix:?}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        account_uri_prefix = "https://acme.example/acme/acct/"

        [grpc]
        listen = "127.0.0.1:9094"
        [grpc.allowed_clients]
        "basalt.ra.RegistrationAuthority" = ["wfe.basalt", "admin.basalt"]

        [tls]
        cert = "/etc/basalt/ra.pem"
        key = "/etc/basalt/ra.key"
        ca = "/etc/basalt/internal-ca.pem"

        [sa]
        address = "127.0.0.1:9095"
        server_name = "sa.basalt"

        [va]
        address = "127.0.0.1:9092"
        server_name = "va.basalt"
        timeout = "90s"

        [ca]
        address = "127.0.0.1:9093"
        server_name = "ca.basalt"
    "#;

    #[test]
    fn example_parses_with_defaults() {
        let config: RaConfig = basalt_config::parse(EXAMPLE).unwrap();
        config.validate().unwrap();
        assert_eq!(config.va.timeout.0, Duration::from_secs(90));
        assert_eq!(config.lifetimes, LifetimesConfig::default());
        assert_eq!(config.policy, PolicyConfig::default());
        let settings = config.settings();
        assert_eq!(
            settings,
            RaSettings::with_defaults("https://acme.example/acme/acct/")
        );
        assert_eq!(settings.valid_authz_lifetime, 30 * DAY);
        assert!(!settings.policy.allow_ip_identifiers);
        assert_eq!(settings.policy.max_names, 100);
    }

    #[test]
    fn lifetimes_and_policy_can_be_set() {
        let text = format!(
            "{EXAMPLE}
            [lifetimes]
            valid_authz = \"8h\"
            [policy]
            allow_ip_identifiers = true
            "
        );
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        let settings = config.settings();
        assert_eq!(settings.valid_authz_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(settings.pending_authz_lifetime, 7 * DAY);
        assert!(settings.policy.allow_ip_identifiers);
        assert_eq!(settings.policy.max_names, 100);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = format!("{EXAMPLE}\n[policy]\nmax_name = 5\n");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `max_name`"), "{err}");
        let text = EXAMPLE.replace("account_uri_prefix", "account_url_prefix");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("account_url_prefix"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let text = format!("{EXAMPLE}\n[lifetimes]\norder = \"0s\"\n");
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        assert!(config.validate().unwrap_err().contains("lifetimes.order"));
        let text = EXAMPLE.replace("/acme/acct/\"", "/acme/acct\"");
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("account_uri_prefix")
        );
    }
}
