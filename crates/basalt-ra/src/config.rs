//! The RA's config file (`basalt ra --config ra.toml`).

use std::collections::BTreeMap;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_policy::IdentifierPolicy;
use basalt_policy::check_domain_rule;
use basalt_ratelimit::Limiter;
use basalt_ratelimit::RateLimitsConfig;
use serde::Deserialize;

use crate::CLASSIC;
use crate::ProfileSettings;
use crate::RaSettings;
use crate::ra::DEFAULT_ISSUANCE_WAIT;
use crate::ra::DEFAULT_VALIDATION_WAIT;
use crate::ra::MAX_PROFILE_NAME_LEN;
use crate::ra::MAX_REQUEST_WAIT;
use crate::ra::valid_profile_name;

const DAY: Duration = Duration::from_secs(86_400);
/// The deadline a WFE gives its calls to the RA unless its `[ra] timeout` says
/// otherwise (`GrpcClientConfig`'s default); the waits are bounded well below it.
const CALLER_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The RA's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RaConfig {
    /// `[grpc]`: where the RA's gRPC server listens and who may call it.
    pub grpc: GrpcServerConfig,
    /// `[tls]`: the RA's mTLS identity.
    pub tls: TlsConfig,
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// `[sa]`: the storage authority.
    pub sa: GrpcClientConfig,
    /// `[va]`: the validation authority.
    pub va: GrpcClientConfig,
    /// `[ca]`: the certificate authority.
    pub ca: GrpcClientConfig,
    /// The account URL is this prefix followed by the account ID (it must match the
    /// WFE's), e.g. `https://acme.example/acme/acct/`.
    pub account_uri_prefix: String,
    /// `[lifetimes]`: how long authorizations and orders live, unless a profile says
    /// otherwise.
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    /// The profile of orders that name none (default `"classic"`); it must be one of
    /// [`RaConfig::profiles`].
    #[serde(default = "RaConfig::default_profile_name")]
    pub default_profile: String,
    /// `[profiles.<name>]`: the certificate profiles offered (draft-ietf-acme-profiles).
    /// Without any, one profile [`CLASSIC`] exists: 90 days, DNS names only.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// At finalize, CAA is checked again for every name validated longer ago than
    /// this (default `"7h"`, Boulder's; the Baseline Requirements allow 8 hours).
    #[serde(default = "RaConfig::default_caa_recheck_after")]
    pub caa_recheck_after: ConfigDuration,
    /// How long a finalize request waits for the issuance it started (default
    /// `"5s"`, at most `"10s"`): a CA that signs within it is answered with the
    /// order `valid` and its certificate URL, a slower one with `processing`, and
    /// the client polls while the issuance goes on. `"0s"` always answers
    /// `processing`. Keep it within `[grpc] drain_timeout`, so that a request
    /// waiting when the RA is asked to stop still gets its answer.
    #[serde(default = "RaConfig::default_issuance_wait")]
    pub issuance_wait: ConfigDuration,
    /// How long a challenge response waits for the validation it started (default
    /// `"1s"`, the `Retry-After` the WFE gives while a validation runs; at most
    /// `"10s"`): a validation done within it is answered finished, a slower one
    /// (several perspectives across the Internet take about a second or more) with
    /// the challenge `processing`, and the client polls. `"0s"` answers at once.
    #[serde(default = "RaConfig::default_validation_wait")]
    pub validation_wait: ConfigDuration,
    /// `[identifiers]`: the CA-wide identifier rules, applied under every profile.
    #[serde(default)]
    pub identifiers: IdentifiersConfig,
    /// `[rate_limits]`: the rate limits and where their counters live (in this
    /// process by default).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
}

/// The CA-wide identifier rules, `[identifiers]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentifiersConfig {
    /// Whether a DNS name's top-level domain must be in the public suffix list
    /// (default `true`); a private or lab CA that issues for `.example`, `.test` or
    /// `.internal` names turns it off.
    #[serde(default = "IdentifiersConfig::default_require_known_tld")]
    pub require_known_tld: bool,
    /// Whether IP identifiers in reserved ranges (private, loopback, link-local,
    /// documentation, …) may be ordered under profiles that allow IPs (default
    /// `false`).
    #[serde(default)]
    pub allow_reserved_ips: bool,
    /// When not empty, every DNS name must be one of these names or under one, e.g.
    /// `["corp.example"]` (default empty: any name).
    #[serde(default)]
    pub allow: Vec<String>,
    /// DNS names refused with every name under them; wins over `allow` (default
    /// empty).
    #[serde(default)]
    pub block: Vec<String>,
}

impl IdentifiersConfig {
    fn default_require_known_tld() -> bool {
        true
    }

    /// Checks that every `allow` and `block` entry is a lowercase DNS name without a
    /// wildcard; the message names the field.
    fn validate(&self) -> Result<(), String> {
        for (field, entries) in [("allow", &self.allow), ("block", &self.block)] {
            for (index, entry) in entries.iter().enumerate() {
                check_domain_rule(entry)
                    .map_err(|err| format!("identifiers.{field}[{index}]: {err}"))?;
            }
        }
        Ok(())
    }
}

impl Default for IdentifiersConfig {
    fn default() -> Self {
        Self {
            require_known_tld: Self::default_require_known_tld(),
            allow_reserved_ips: false,
            allow: Vec::new(),
            block: Vec::new(),
        }
    }
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
    /// A valid authorization is reused for a new order only while at least this
    /// much of its life remains (default `"1d"`).
    #[serde(default = "LifetimesConfig::default_authz_reuse_min_remaining")]
    pub authz_reuse_min_remaining: ConfigDuration,
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

    fn default_authz_reuse_min_remaining() -> ConfigDuration {
        ConfigDuration(DAY)
    }
}

impl Default for LifetimesConfig {
    fn default() -> Self {
        Self {
            pending_authz: Self::default_pending_authz(),
            valid_authz: Self::default_valid_authz(),
            order: Self::default_order(),
            authz_reuse_min_remaining: Self::default_authz_reuse_min_remaining(),
        }
    }
}

/// One certificate profile, `[profiles.<name>]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The longest certificate lifetime an order may ask for with `notBefore` and
    /// `notAfter` (the CA's profile decides the default window).
    pub validity: ConfigDuration,
    /// Whether IP identifiers (RFC 8738) may be ordered (default `false`).
    #[serde(default)]
    pub allow_ip_identifiers: bool,
    /// The most distinct identifiers one order may hold (default 100).
    #[serde(default = "ProfileConfig::default_max_names")]
    pub max_names: usize,
    /// A new authorization's lifetime while pending (default: `[lifetimes]`).
    #[serde(default)]
    pub pending_authz: Option<ConfigDuration>,
    /// An order's lifetime (default: `[lifetimes]`).
    #[serde(default)]
    pub order: Option<ConfigDuration>,
    /// How long after its validation an authorization counts for this profile's
    /// orders, e.g. `"8h"` for a profile that wants fresh proof of control (default
    /// and maximum: `[lifetimes] valid_authz`, which sets when it expires).
    #[serde(default)]
    pub valid_authz: Option<ConfigDuration>,
}

impl ProfileConfig {
    fn default_max_names() -> usize {
        IdentifierPolicy::default().max_names
    }

    /// The profile that exists when the config defines none.
    fn classic() -> Self {
        Self {
            validity: ConfigDuration(90 * DAY),
            allow_ip_identifiers: false,
            max_names: Self::default_max_names(),
            pending_authz: None,
            order: None,
            valid_authz: None,
        }
    }

    fn settings(
        &self,
        lifetimes: &LifetimesConfig,
        identifiers: &IdentifiersConfig,
    ) -> ProfileSettings {
        ProfileSettings {
            policy: IdentifierPolicy {
                allow_ip_identifiers: self.allow_ip_identifiers,
                max_names: self.max_names,
                require_known_tld: identifiers.require_known_tld,
                allow_reserved_ips: identifiers.allow_reserved_ips,
                allow: identifiers.allow.clone(),
                block: identifiers.block.clone(),
            },
            validity: self.validity.0,
            pending_authz_lifetime: self.pending_authz.unwrap_or(lifetimes.pending_authz).0,
            order_lifetime: self.order.unwrap_or(lifetimes.order).0,
            valid_authz_lifetime: self.valid_authz.unwrap_or(lifetimes.valid_authz).0,
        }
    }
}

impl RaConfig {
    fn default_caa_recheck_after() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(7 * 3600))
    }

    fn default_issuance_wait() -> ConfigDuration {
        ConfigDuration(DEFAULT_ISSUANCE_WAIT)
    }

    fn default_validation_wait() -> ConfigDuration {
        ConfigDuration(DEFAULT_VALIDATION_WAIT)
    }

    fn default_profile_name() -> String {
        CLASSIC.to_owned()
    }

    /// The profiles as configured, or the [`CLASSIC`] one if there are none.
    fn effective_profiles(&self) -> BTreeMap<String, ProfileConfig> {
        if self.profiles.is_empty() {
            BTreeMap::from([(CLASSIC.to_owned(), ProfileConfig::classic())])
        } else {
            self.profiles.clone()
        }
    }

    /// The RA's settings from this config.
    pub fn settings(&self) -> RaSettings {
        RaSettings {
            default_profile: self.default_profile.clone(),
            profiles: self
                .effective_profiles()
                .iter()
                .map(|(name, profile)| {
                    (
                        name.clone(),
                        profile.settings(&self.lifetimes, &self.identifiers),
                    )
                })
                .collect(),
            valid_authz_lifetime: self.lifetimes.valid_authz.0,
            authz_reuse_min_remaining: self.lifetimes.authz_reuse_min_remaining.0,
            caa_recheck_after: self.caa_recheck_after.0,
            account_uri_prefix: self.account_uri_prefix.clone(),
            issuance_wait: self.issuance_wait.0,
            validation_wait: self.validation_wait.0,
        }
    }

    /// Checks the values serde cannot: non-zero lifetimes, validities and name
    /// limits, profile names, a default profile that is defined, an account URL
    /// prefix that is an HTTP(S) URL ending in `/`, `[identifiers]` lists of valid
    /// lowercase names, and waits well within the WFE's deadline. The message names
    /// the field.
    pub fn validate(&self) -> Result<(), String> {
        self.identifiers.validate()?;
        Limiter::new(&self.rate_limits)?;
        // The WFE's config is not ours to read, so the bound is a third of its
        // default deadline: the request does more than wait (SA reads and writes, a
        // CAA recheck at finalize), and a WFE that gave up first would answer the
        // client with an error for an issuance that goes on.
        for (field, wait) in [
            ("issuance_wait", self.issuance_wait),
            ("validation_wait", self.validation_wait),
        ] {
            if wait.0 > MAX_REQUEST_WAIT {
                return Err(format!(
                    "{field} must be at most {}, well below the WFE's [ra] timeout ({} unless \
                     set), not {wait}",
                    ConfigDuration(MAX_REQUEST_WAIT),
                    ConfigDuration(CALLER_DEFAULT_TIMEOUT),
                ));
            }
        }
        let mut durations = vec![
            (
                "lifetimes.pending_authz".to_owned(),
                self.lifetimes.pending_authz,
            ),
            (
                "lifetimes.valid_authz".to_owned(),
                self.lifetimes.valid_authz,
            ),
            ("lifetimes.order".to_owned(), self.lifetimes.order),
        ];
        let profiles = self.effective_profiles();
        for (name, profile) in &profiles {
            if !valid_profile_name(name) {
                return Err(format!(
                    "profile name {name:?} must be 1 to {MAX_PROFILE_NAME_LEN} ASCII letters, \
                     digits, '-', '_' or '.'"
                ));
            }
            if profile.max_names == 0 {
                return Err(format!("profiles.{name}.max_names must be at least 1"));
            }
            if let Some(valid_authz) = profile.valid_authz
                && valid_authz.0 > self.lifetimes.valid_authz.0
            {
                return Err(format!(
                    "profiles.{name}.valid_authz must not be longer than lifetimes.valid_authz \
                     (which sets when an authorization expires)"
                ));
            }
            durations.push((format!("profiles.{name}.validity"), profile.validity));
            for (field, value) in [
                ("pending_authz", profile.pending_authz),
                ("order", profile.order),
                ("valid_authz", profile.valid_authz),
            ] {
                if let Some(value) = value {
                    durations.push((format!("profiles.{name}.{field}"), value));
                }
            }
        }
        if let Some((field, _)) = durations.iter().find(|(_, value)| value.0.is_zero()) {
            return Err(format!("{field} must be longer than zero"));
        }
        if !profiles.contains_key(&self.default_profile) {
            let offered: Vec<&str> = profiles.keys().map(String::as_str).collect();
            return Err(format!(
                "default_profile {:?} is not defined in [profiles] (defined: {})",
                self.default_profile,
                offered.join(", ")
            ));
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
        assert_eq!(config.default_profile, "classic");
        assert!(config.profiles.is_empty());
        let settings = config.settings();
        // The config's identifier rules are a public CA's, stricter than the bare
        // policy's defaults; everything else is as in `RaSettings::with_defaults`.
        let mut expected = RaSettings::with_defaults("https://acme.example/acme/acct/");
        for profile in expected.profiles.values_mut() {
            profile.policy.require_known_tld = true;
            profile.policy.allow_reserved_ips = false;
        }
        assert_eq!(settings, expected);
        assert_eq!(config.identifiers, IdentifiersConfig::default());
        // Old configs keep working: one profile, 90 days, DNS names only.
        assert_eq!(settings.profile_names(), vec!["classic"]);
        let classic = &settings.profiles[CLASSIC];
        assert_eq!(classic.validity, 90 * DAY);
        assert!(!classic.policy.allow_ip_identifiers);
        assert_eq!(classic.policy.max_names, 100);
        assert_eq!(classic.pending_authz_lifetime, 7 * DAY);
        assert_eq!(classic.order_lifetime, 7 * DAY);
        assert_eq!(settings.valid_authz_lifetime, 30 * DAY);
        assert_eq!(settings.issuance_wait, Duration::from_secs(5));
        assert_eq!(settings.validation_wait, Duration::from_secs(1));
    }

    #[test]
    fn waits_are_read_and_bounded_well_below_the_callers_deadline() {
        let config: RaConfig = basalt_config::parse(&format!(
            "issuance_wait = \"0s\"\nvalidation_wait = \"10s\"\n{EXAMPLE}"
        ))
        .unwrap();
        config.validate().unwrap();
        let settings = config.settings();
        assert_eq!(settings.issuance_wait, Duration::ZERO);
        assert_eq!(settings.validation_wait, Duration::from_secs(10));
        let config: RaConfig =
            basalt_config::parse(&format!("validation_wait = \"250ms\"\n{EXAMPLE}")).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.settings().validation_wait,
            Duration::from_millis(250)
        );
        // The bound follows the WFE's default deadline for its calls to the RA.
        let client: GrpcClientConfig =
            basalt_config::parse("address = \"ra:9091\"\nserver_name = \"ra\"").unwrap();
        assert_eq!(client.timeout.0, CALLER_DEFAULT_TIMEOUT);
        assert!(3 * MAX_REQUEST_WAIT <= CALLER_DEFAULT_TIMEOUT);
    }

    const PROFILES: &str = r#"
        [lifetimes]
        pending_authz = "2d"
        valid_authz = "8h"

        [profiles.tlsserver]
        validity = "90d"

        [profiles.shortlived]
        validity = "160h"
        allow_ip_identifiers = true
        max_names = 25
        pending_authz = "7h"
        order = "6h"
        valid_authz = "1h"
    "#;

    #[test]
    fn profiles_fall_back_to_the_lifetimes() {
        let config: RaConfig = basalt_config::parse(&format!(
            "default_profile = \"tlsserver\"\n{EXAMPLE}{PROFILES}"
        ))
        .unwrap();
        config.validate().unwrap();
        let settings = config.settings();
        assert_eq!(settings.default_profile, "tlsserver");
        assert_eq!(settings.profile_names(), vec!["shortlived", "tlsserver"]);
        assert_eq!(settings.valid_authz_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(
            settings.profiles["tlsserver"],
            ProfileSettings {
                policy: IdentifierPolicy {
                    allow_ip_identifiers: false,
                    max_names: 100,
                    require_known_tld: true,
                    allow_reserved_ips: false,
                    allow: Vec::new(),
                    block: Vec::new(),
                },
                validity: 90 * DAY,
                pending_authz_lifetime: 2 * DAY,
                order_lifetime: 7 * DAY,
                valid_authz_lifetime: Duration::from_secs(8 * 3600),
            }
        );
        assert_eq!(
            settings.profiles["shortlived"],
            ProfileSettings {
                policy: IdentifierPolicy {
                    allow_ip_identifiers: true,
                    max_names: 25,
                    require_known_tld: true,
                    allow_reserved_ips: false,
                    allow: Vec::new(),
                    block: Vec::new(),
                },
                validity: Duration::from_secs(160 * 3600),
                pending_authz_lifetime: Duration::from_secs(7 * 3600),
                order_lifetime: Duration::from_secs(6 * 3600),
                valid_authz_lifetime: Duration::from_secs(3600),
            }
        );
        assert_eq!(settings.authz_reuse_min_remaining, DAY);
    }

    #[test]
    fn a_profile_cannot_keep_authorizations_longer_than_they_live() {
        let text = format!(
            "{EXAMPLE}\n[lifetimes]\nvalid_authz = \"8h\"\n\n\
             [profiles.classic]\nvalidity = \"90d\"\nvalid_authz = \"9h\"\n"
        );
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        let err = config.validate().unwrap_err();
        assert!(
            err.starts_with("profiles.classic.valid_authz must not be longer"),
            "{err}"
        );
    }

    #[test]
    fn rate_limit_errors_name_their_field() {
        let text = format!("{EXAMPLE}\n[rate_limits]\nbackend = \"redis\"\n");
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        let err = config.validate().unwrap_err();
        assert!(err.contains("rate_limits.redis_url"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = format!("{EXAMPLE}\n[profiles.classic]\nvalidity = \"1d\"\nmax_name = 5\n");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `max_name`"), "{err}");
        // The old `[policy]` block is gone: its settings are per profile now.
        let text = format!("{EXAMPLE}\n[policy]\nmax_names = 5\n");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `policy`"), "{err}");
        let text = EXAMPLE.replace("account_uri_prefix", "account_url_prefix");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("account_url_prefix"), "{err}");
        // A profile needs its validity.
        let text = format!("{EXAMPLE}\n[profiles.classic]\nmax_names = 5\n");
        let err = basalt_config::parse::<RaConfig>(&text).unwrap_err();
        assert!(err.contains("validity"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_field() {
        // Top-level keys go before the example's tables, tables after them.
        let check = |extra: &str, expected: &str| {
            let text = if extra.starts_with('[') {
                format!("{EXAMPLE}\n{extra}")
            } else {
                format!("{extra}\n{EXAMPLE}")
            };
            let config: RaConfig =
                basalt_config::parse(&text).unwrap_or_else(|err| panic!("{extra}: {err}"));
            let err = config.validate().unwrap_err();
            assert!(err.contains(expected), "{extra}: {err}");
        };
        check(
            "[lifetimes]\norder = \"0s\"",
            "lifetimes.order must be longer than zero",
        );
        check(
            "[profiles.short]\nvalidity = \"0s\"",
            "profiles.short.validity must be longer than zero",
        );
        check(
            "[profiles.classic]\nvalidity = \"1d\"\npending_authz = \"0s\"",
            "profiles.classic.pending_authz must be longer than zero",
        );
        check(
            "[profiles.classic]\nvalidity = \"1d\"\nmax_names = 0",
            "profiles.classic.max_names must be at least 1",
        );
        check(
            "default_profile = \"shortlived\"",
            "default_profile \"shortlived\" is not defined in [profiles] (defined: classic)",
        );
        // Defining profiles replaces the implicit classic one.
        check(
            "[profiles.tlsserver]\nvalidity = \"90d\"",
            "default_profile \"classic\" is not defined in [profiles] (defined: tlsserver)",
        );
        check(
            "[profiles.\"two words\"]\nvalidity = \"1d\"",
            "profile name \"two words\" must be",
        );
        check(
            "issuance_wait = \"11s\"",
            "issuance_wait must be at most 10s, well below the WFE's [ra] timeout (30s unless \
             set), not 11s",
        );
        check(
            "validation_wait = \"10001ms\"",
            "validation_wait must be at most 10s, well below the WFE's [ra] timeout (30s \
             unless set), not 10001ms",
        );
        check(
            "issuance_wait = \"1m\"",
            "issuance_wait must be at most 10s",
        );
        let text = EXAMPLE.replace("/acme/acct/\"", "/acme/acct\"");
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("account_uri_prefix")
        );
    }

    #[test]
    fn identifier_rules_reach_every_profile() {
        let text = format!(
            "{EXAMPLE}{PROFILES}\n[identifiers]\nrequire_known_tld = false\n\
             allow_reserved_ips = true\nallow = [\"corp.example\"]\nblock = [\"bad.corp.example\"]\n"
        );
        let config: RaConfig = basalt_config::parse(&text).unwrap();
        let config = RaConfig {
            default_profile: "tlsserver".to_owned(),
            ..config
        };
        config.validate().unwrap();
        let settings = config.settings();
        for name in ["tlsserver", "shortlived"] {
            let policy = &settings.profiles[name].policy;
            assert!(!policy.require_known_tld, "{name}");
            assert!(policy.allow_reserved_ips, "{name}");
            assert_eq!(policy.allow, vec!["corp.example".to_owned()], "{name}");
            assert_eq!(policy.block, vec!["bad.corp.example".to_owned()], "{name}");
        }
        let shortlived = &settings.profiles["shortlived"].policy;
        let err = shortlived
            .check(&[basalt_core::Identifier::dns("www.other.example")])
            .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::RejectedIdentifier);
        assert!(
            err.subproblems[0]
                .detail
                .contains("not under an allowed domain"),
            "{}",
            err.detail
        );
        let ip = [basalt_core::Identifier::ip("127.0.0.1")];
        assert_eq!(shortlived.check(&ip).unwrap(), ip.to_vec());
    }

    #[test]
    fn identifier_lists_are_validated() {
        let check = |table: &str, expected: &str| {
            let config: RaConfig =
                basalt_config::parse(&format!("{EXAMPLE}\n[identifiers]\n{table}\n")).unwrap();
            let err = config.validate().unwrap_err();
            assert!(err.contains(expected), "{table}: {err}");
        };
        check(
            "allow = [\"corp.example\", \"Corp.example\"]",
            "identifiers.allow[1]: \"Corp.example\" is not a valid DNS name",
        );
        check(
            "block = [\"*.bad.example\"]",
            "identifiers.block[0]: \"*.bad.example\" must be a name without \"*.\"",
        );
        check(
            "block = [\"bad..example\"]",
            "identifiers.block[0]: \"bad..example\" is not a valid DNS name: DNS name has an empty label",
        );
        let err = basalt_config::parse::<RaConfig>(&format!(
            "{EXAMPLE}\n[identifiers]\nallowed = [\"corp.example\"]\n"
        ))
        .unwrap_err();
        assert!(err.contains("unknown field `allowed`"), "{err}");
    }
}
