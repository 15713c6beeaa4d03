//! The OCSP responder's configuration file (`basalt ocsp --config ocsp.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use serde::Deserialize;

use crate::CrlIssuer;
use crate::CrlSettings;
use crate::FeedSettings;
use crate::MAX_CRL_DELAY;
use crate::MAX_CRL_PERIOD;
use crate::MAX_CRL_SHARDS;
use crate::ResponderIssuer;
use crate::ResponderSettings;
use crate::crl::check_crl_path;
use crate::crl::path_clash;
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
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// How long requests in flight may take to finish once the service is asked
    /// to stop (SIGTERM); past that it stops anyway (default `"5s"`).
    #[serde(default = "basalt_config::default_drain_timeout")]
    pub drain_timeout: ConfigDuration,
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
    /// Whether to have the CA sign a response (SHA-1 CertID, what clients send)
    /// for each new certificate as soon as the status feed reports it, so that
    /// even the first request about it is answered from the cache (default
    /// `true`). Every responder instance does so: with several, the CA signs as
    /// many responses per certificate.
    #[serde(default = "OcspConfig::default_presign")]
    pub presign: bool,
    /// CRL generation (`[crl]`) for the issuers with a `crl_path`; without it no
    /// CRLs are generated or served.
    #[serde(default)]
    pub crl: Option<CrlConfig>,
    /// How the responder follows the SA's status changes (`[status_feed]`).
    #[serde(default)]
    pub status_feed: StatusFeedConfig,
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
    /// The HTTP directory (e.g. `/crl/intermediate-ecdsa/`) under which the
    /// issuer's CRL shards are served, `{crl_path}{shard}.crl`: the path of the CA's
    /// `crl_url_base` for this issuer. Needs a `[crl]` table. No CRLs for this
    /// issuer when absent.
    #[serde(default)]
    pub crl_path: Option<String>,
}

/// CRL generation (`[crl]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrlConfig {
    /// How many shards each issuer's CRL is split into: must equal the CA's
    /// `crl.shards`, 1 to [`MAX_CRL_SHARDS`] (default 1).
    #[serde(default = "CrlConfig::default_shards")]
    pub shards: u32,
    /// How often every shard is regenerated, above 0 and at most a day (default
    /// 1h); keep it well under the CA's `crl.lifetime`.
    #[serde(default = "CrlConfig::default_period")]
    pub period: ConfigDuration,
    /// How soon after a revocation its shard is regenerated, at most a minute
    /// (default 1s): revocations within that time share one regeneration.
    #[serde(default = "CrlConfig::default_delay")]
    pub delay: ConfigDuration,
}

/// How the status feed polls the SA (`[status_feed]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusFeedConfig {
    /// Time between two polls of the SA's status changes, above 0 (default 1s).
    #[serde(default = "StatusFeedConfig::default_interval")]
    pub interval: ConfigDuration,
    /// How long after its last successful poll the feed is still trusted, longer
    /// than `interval` (default 10s): past it the responder reads the SA on every
    /// request again.
    #[serde(default = "StatusFeedConfig::default_max_staleness")]
    pub max_staleness: ConfigDuration,
}

impl CrlConfig {
    fn default_shards() -> u32 {
        1
    }

    fn default_period() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(3600))
    }

    fn default_delay() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(1))
    }

    /// Checks the bounds of each field; the message names it.
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CRL_SHARDS).contains(&self.shards) {
            return Err(format!(
                "crl.shards must be 1 to {MAX_CRL_SHARDS} (the CA's crl.shards)"
            ));
        }
        if self.period.0.is_zero() || self.period.0 > MAX_CRL_PERIOD {
            return Err("crl.period must be above 0 and at most 1d".into());
        }
        if self.delay.0 > MAX_CRL_DELAY {
            return Err("crl.delay must be at most 1m".into());
        }
        Ok(())
    }
}

impl Default for CrlConfig {
    fn default() -> Self {
        Self {
            shards: Self::default_shards(),
            period: Self::default_period(),
            delay: Self::default_delay(),
        }
    }
}

impl StatusFeedConfig {
    fn default_interval() -> ConfigDuration {
        ConfigDuration(FeedSettings::default().interval)
    }

    fn default_max_staleness() -> ConfigDuration {
        ConfigDuration(FeedSettings::default().max_staleness)
    }

    /// Checks that `interval` is above 0 and `max_staleness` exceeds it.
    fn validate(&self) -> Result<(), String> {
        if self.interval.0.is_zero() {
            return Err("status_feed.interval must be above 0".into());
        }
        if self.max_staleness <= self.interval {
            return Err("status_feed.max_staleness must exceed status_feed.interval".into());
        }
        Ok(())
    }
}

impl Default for StatusFeedConfig {
    fn default() -> Self {
        Self {
            interval: Self::default_interval(),
            max_staleness: Self::default_max_staleness(),
        }
    }
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

    fn default_presign() -> bool {
        true
    }

    /// Checks what serde cannot: there is at least one issuer; every issuer
    /// `path` is a plain absolute path (ASCII letters, digits, `-._~/`, no `..`)
    /// that no other issuer uses; every `crl_path` is such a path ending with '/',
    /// neither another issuer's `crl_path` nor inside or around one, with no
    /// `path` inside it; `crl_path` is used only with a `[crl]` table, and a `[crl]`
    /// table only with some `crl_path`; `[crl]` and `[status_feed]` are within
    /// their bounds. The message names the field.
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
        self.validate_crl()?;
        self.status_feed.validate()
    }

    /// The `[crl]` and `crl_path` part of [`OcspConfig::validate`].
    fn validate_crl(&self) -> Result<(), String> {
        for (index, issuer) in self.issuers.iter().enumerate() {
            let Some(crl_path) = &issuer.crl_path else {
                continue;
            };
            if self.crl.is_none() {
                return Err(format!(
                    "issuers[{index}].crl_path needs a [crl] table (with the CA's crl.shards); \
                     without one no CRLs are generated"
                ));
            }
            check_crl_path(crl_path)
                .map_err(|problem| format!("issuers[{index}].crl_path {problem}"))?;
            for (other, earlier) in self.issuers[..index].iter().enumerate() {
                let Some(earlier) = &earlier.crl_path else {
                    continue;
                };
                if earlier == crl_path {
                    return Err(format!(
                        "issuers[{index}].crl_path {crl_path:?} is already issuers[{other}].crl_path"
                    ));
                }
                if path_clash(earlier, crl_path).is_some() {
                    return Err(format!(
                        "issuers[{index}].crl_path {crl_path:?} and issuers[{other}].crl_path \
                         {earlier:?} lie one inside the other"
                    ));
                }
            }
            for (other, served) in self.issuers.iter().enumerate() {
                if let Some(path) = &served.path
                    && path.starts_with(crl_path.as_str())
                {
                    return Err(format!(
                        "issuers[{other}].path {path:?} is inside issuers[{index}].crl_path \
                         {crl_path:?}"
                    ));
                }
            }
        }
        if let Some(crl) = &self.crl {
            crl.validate()?;
            if self.issuers.iter().all(|issuer| issuer.crl_path.is_none()) {
                return Err(
                    "crl: no [[issuers]] table has a crl_path, so no CRL would be generated".into(),
                );
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

    /// The issuers with a `crl_path`, from `loaded`, the issuers
    /// [`OcspConfig::load_issuers`] read from this config (in its order).
    pub fn crl_issuers(&self, loaded: &[ResponderIssuer]) -> Vec<CrlIssuer> {
        self.issuers
            .iter()
            .zip(loaded)
            .filter_map(|(issuer, loaded)| {
                Some(CrlIssuer {
                    cert_der: loaded.cert_der.clone(),
                    crl_path: issuer.crl_path.clone()?,
                })
            })
            .collect()
    }

    /// The CRL settings `[crl]` asks for; `None` without one (no CRLs).
    pub fn crl_settings(&self) -> Option<CrlSettings> {
        self.crl.as_ref().map(|crl| CrlSettings {
            shards: crl.shards,
            period: crl.period.0,
            delay: crl.delay.0,
        })
    }

    /// The status feed settings `[status_feed]` asks for.
    pub fn feed_settings(&self) -> FeedSettings {
        FeedSettings {
            interval: self.status_feed.interval.0,
            max_staleness: self.status_feed.max_staleness.0,
        }
    }

    /// The responder settings this config asks for.
    pub fn settings(&self) -> ResponderSettings {
        ResponderSettings {
            max_age: self.max_age.0,
            cache_size: self.cache_size,
            presign: self.presign,
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
                    crl_path: None,
                },
                IssuerConfig {
                    cert: PathBuf::from("/etc/basalt/intermediate-rsa.pem"),
                    path: None,
                    crl_path: None,
                },
            ]
        );
        assert_eq!(config.sa.server_name, "sa.basalt");
        assert_eq!(config.ca.timeout.0, Duration::from_secs(5));
        assert_eq!(config.settings().max_age, Duration::from_secs(3600));
        assert_eq!(config.settings().cache_size, 100_000);
        assert_eq!(config.crl, None);
        assert_eq!(config.crl_settings(), None);
        assert_eq!(config.feed_settings(), FeedSettings::default());
        assert_eq!(config.status_feed, StatusFeedConfig::default());
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
    fn presigning_can_be_turned_off() {
        let config: OcspConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert!(config.settings().presign);
        let text = format!("presign = false\n{EXAMPLE}");
        let config: OcspConfig = basalt_config::parse(&text).unwrap();
        assert!(!config.settings().presign);
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

    /// A config with these `[[issuers]]` tables, then `tables` (e.g. `[crl]`), and
    /// the example's other blocks.
    fn with_crl(issuers: &str, tables: &str) -> OcspConfig {
        with_issuers(&format!("{issuers}\n{tables}"))
    }

    const CRL_ISSUERS: &str = "[[issuers]]\ncert = \"a.pem\"\npath = \"/issuers/a.der\"\n\
                               crl_path = \"/crl/a/\"\n\
                               [[issuers]]\ncert = \"b.pem\"\ncrl_path = \"/crl/b/\"\n\
                               [[issuers]]\ncert = \"c.pem\"";

    const ONE_ISSUER: &str = "[[issuers]]\ncert = \"a.pem\"";

    #[test]
    fn crl_tables_parse_with_defaults() {
        let config = with_crl(CRL_ISSUERS, "[crl]\nshards = 4");
        config.validate().unwrap();
        assert_eq!(
            config.crl_settings(),
            Some(CrlSettings {
                shards: 4,
                period: Duration::from_secs(3600),
                delay: Duration::from_secs(1),
            })
        );
        assert_eq!(config.issuers[0].crl_path.as_deref(), Some("/crl/a/"));
        assert_eq!(config.issuers[2].crl_path, None);

        let config = with_crl(
            CRL_ISSUERS,
            "[crl]\nshards = 128\nperiod = \"10m\"\ndelay = \"500ms\"\n\
             [status_feed]\ninterval = \"2s\"\nmax_staleness = \"30s\"",
        );
        config.validate().unwrap();
        assert_eq!(
            config.crl_settings(),
            Some(CrlSettings {
                shards: 128,
                period: Duration::from_secs(600),
                delay: Duration::from_millis(500),
            })
        );
        assert_eq!(
            config.feed_settings(),
            FeedSettings {
                interval: Duration::from_secs(2),
                max_staleness: Duration::from_secs(30),
            }
        );
        let config = with_crl(CRL_ISSUERS, "[crl]");
        assert_eq!(config.crl_settings().unwrap().shards, 1);
    }

    #[test]
    fn crl_issuers_pair_each_crl_path_with_its_certificate() {
        let config = with_crl(CRL_ISSUERS, "[crl]\nshards = 2");
        let loaded: Vec<ResponderIssuer> = (1u8..=3)
            .map(|tag| ResponderIssuer {
                cert_der: vec![tag],
                path: None,
            })
            .collect();
        assert_eq!(
            config.crl_issuers(&loaded),
            vec![
                CrlIssuer {
                    cert_der: vec![1],
                    crl_path: "/crl/a/".to_owned(),
                },
                CrlIssuer {
                    cert_der: vec![2],
                    crl_path: "/crl/b/".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn crl_and_status_feed_reject_unknown_fields() {
        let text = format!("{EXAMPLE}\n[crl]\nshard = 4");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `shard`"), "{err}");
        let text = format!("{EXAMPLE}\n[status_feed]\nperiod = \"1s\"");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `period`"), "{err}");
        let text = format!("{EXAMPLE}\n[crl]\nshards = -1");
        assert!(basalt_config::parse::<OcspConfig>(&text).is_err());
        let text = format!("{EXAMPLE}\n[crl]\nperiod = \"soon\"");
        let err = basalt_config::parse::<OcspConfig>(&text).unwrap_err();
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn crl_bounds_are_checked() {
        for (table, message) in [
            (
                "shards = 0",
                "crl.shards must be 1 to 1000 (the CA's crl.shards)",
            ),
            (
                "shards = 1001",
                "crl.shards must be 1 to 1000 (the CA's crl.shards)",
            ),
            (
                "period = \"0s\"",
                "crl.period must be above 0 and at most 1d",
            ),
            (
                "period = \"25h\"",
                "crl.period must be above 0 and at most 1d",
            ),
            ("delay = \"61s\"", "crl.delay must be at most 1m"),
        ] {
            let config = with_crl(CRL_ISSUERS, &format!("[crl]\n{table}"));
            assert_eq!(config.validate().unwrap_err(), message, "{table}");
        }
        for table in [
            "shards = 1000",
            "period = \"1d\"",
            "delay = \"1m\"",
            "delay = \"0s\"",
        ] {
            let config = with_crl(CRL_ISSUERS, &format!("[crl]\n{table}"));
            config
                .validate()
                .unwrap_or_else(|err| panic!("{table}: {err}"));
        }
    }

    #[test]
    fn status_feed_bounds_are_checked() {
        for (table, message) in [
            ("interval = \"0s\"", "status_feed.interval must be above 0"),
            (
                "interval = \"10s\"",
                "status_feed.max_staleness must exceed status_feed.interval",
            ),
            (
                "interval = \"5s\"\nmax_staleness = \"4s\"",
                "status_feed.max_staleness must exceed status_feed.interval",
            ),
        ] {
            let config = with_crl(ONE_ISSUER, &format!("[status_feed]\n{table}"));
            assert_eq!(config.validate().unwrap_err(), message, "{table}");
        }
        let config = with_crl(ONE_ISSUER, "[status_feed]\nmax_staleness = \"2s\"");
        config.validate().unwrap();
        assert_eq!(config.feed_settings().max_staleness, Duration::from_secs(2));
    }

    #[test]
    fn crl_path_needs_a_crl_table_and_the_other_way_round() {
        let config = with_crl(CRL_ISSUERS, "");
        assert_eq!(
            config.validate().unwrap_err(),
            "issuers[0].crl_path needs a [crl] table (with the CA's crl.shards); without one \
             no CRLs are generated"
        );
        let config = with_crl("[[issuers]]\ncert = \"a.pem\"", "[crl]\nshards = 4");
        assert_eq!(
            config.validate().unwrap_err(),
            "crl: no [[issuers]] table has a crl_path, so no CRL would be generated"
        );
    }

    #[test]
    fn validate_names_the_bad_crl_path() {
        for (crl_path, problem) in [
            ("/crl/a", "must end with '/'"),
            ("/crl/a.crl", "must end with '/'"),
            ("/", "must not be '/' (where OCSP requests are posted)"),
            ("crl/a/", "must start with '/'"),
            ("/crl/{shard}/", "may hold only ASCII"),
            ("/crl/*/", "may hold only ASCII"),
            ("/crl/a b/", "may hold only ASCII"),
            ("/crl/../a/", "must not contain '..'"),
            ("/crl//a/", "must not contain empty or '.' segments"),
            ("/crl/./", "must not contain empty or '.' segments"),
            ("/crl/a//", "must not contain empty or '.' segments"),
        ] {
            let config = with_crl(
                &format!(
                    "[[issuers]]\ncert = \"a.pem\"\n[[issuers]]\ncert = \"b.pem\"\n\
                     crl_path = {crl_path:?}"
                ),
                "[crl]",
            );
            let err = config.validate().unwrap_err();
            assert!(err.starts_with("issuers[1].crl_path "), "{crl_path}: {err}");
            assert!(err.contains(problem), "{crl_path}: {err}");
        }
    }

    #[test]
    fn crl_paths_must_not_collide() {
        let config = with_crl(
            "[[issuers]]\ncert = \"a.pem\"\ncrl_path = \"/crl/\"\n\
             [[issuers]]\ncert = \"b.pem\"\ncrl_path = \"/crl/\"",
            "[crl]",
        );
        assert_eq!(
            config.validate().unwrap_err(),
            "issuers[1].crl_path \"/crl/\" is already issuers[0].crl_path"
        );
        for (first, second) in [("/crl/", "/crl/b/"), ("/crl/b/", "/crl/")] {
            let config = with_crl(
                &format!(
                    "[[issuers]]\ncert = \"a.pem\"\ncrl_path = {first:?}\n\
                     [[issuers]]\ncert = \"b.pem\"\ncrl_path = {second:?}"
                ),
                "[crl]",
            );
            assert_eq!(
                config.validate().unwrap_err(),
                format!(
                    "issuers[1].crl_path {second:?} and issuers[0].crl_path {first:?} lie one \
                     inside the other"
                )
            );
        }
        // An issuer certificate served inside a CRL directory, by the same issuer
        // or a later one.
        for issuers in [
            "[[issuers]]\ncert = \"a.pem\"\npath = \"/crl/a.der\"\ncrl_path = \"/crl/\"",
            "[[issuers]]\ncert = \"b.pem\"\ncrl_path = \"/crl/\"\n\
             [[issuers]]\ncert = \"a.pem\"\npath = \"/crl/a.der\"",
        ] {
            let config = with_crl(issuers, "[crl]");
            let err = config.validate().unwrap_err();
            assert!(
                err.ends_with(".path \"/crl/a.der\" is inside issuers[0].crl_path \"/crl/\""),
                "{err}"
            );
        }
        // Siblings, and an issuer path beside (not inside) a CRL directory, are fine.
        let config = with_crl(
            "[[issuers]]\ncert = \"a.pem\"\npath = \"/crl\"\ncrl_path = \"/crl/a/\"\n\
             [[issuers]]\ncert = \"b.pem\"\npath = \"/crl/a.der\"\ncrl_path = \"/crl/ab/\"",
            "[crl]",
        );
        config.validate().unwrap();
    }
}
