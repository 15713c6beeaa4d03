//! The `[rate_limits]` block of the RA's config.

use std::collections::BTreeMap;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_core::RateLimit;
use serde::Deserialize;

use crate::LimitName;

/// The longest period a limit may have. Longer buckets would outlive any sensible
/// policy, and the Redis script's arithmetic (IEEE doubles) stays exact to the
/// nanosecond only for offsets up to about 104 days; ten years keeps it within a
/// few tens of nanoseconds.
pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(3650 * 86_400);

/// `[rate_limits]`: which limits apply and where their buckets are kept.
///
/// Every field has a default, so a config without the block gets Let's Encrypt's
/// published limits kept in process.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Whether any limit is checked at all; `false` suits a private lab.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where the buckets and runtime overrides are kept.
    #[serde(default)]
    pub backend: Backend,
    /// `redis://[[user]:password@]host[:port][/db]`; required when `backend = "redis"`.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Bounds every Redis operation, connecting included. A store that does not
    /// answer in time lets the request through (see the crate docs).
    #[serde(default = "RateLimitsConfig::default_redis_timeout")]
    pub redis_timeout: ConfigDuration,
    /// Prefix of every Redis key: buckets are `<prefix>:rl:<limit>:<key>`, runtime
    /// overrides the hash `<prefix>:rl:overrides`.
    #[serde(default = "RateLimitsConfig::default_key_prefix")]
    pub key_prefix: String,
    /// Changes to the default limits, by limit name.
    #[serde(default)]
    pub limits: BTreeMap<LimitName, LimitConfig>,
    /// Different limits for particular keys (a big hosting provider's account, a
    /// shared NAT's address); runtime overrides set through the admin tool take
    /// precedence over these.
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
}

impl RateLimitsConfig {
    fn default_redis_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_millis(250))
    }

    fn default_key_prefix() -> String {
        "basalt".to_owned()
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: Backend::default(),
            redis_url: None,
            redis_timeout: Self::default_redis_timeout(),
            key_prefix: Self::default_key_prefix(),
            limits: BTreeMap::new(),
            overrides: Vec::new(),
        }
    }
}

/// Where buckets and runtime overrides are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In the RA's memory: right for `basalt dev` and a single RA. Buckets and
    /// runtime overrides are lost when the RA restarts.
    #[default]
    Memory,
    /// In a Redis that every RA shares.
    Redis,
}

/// `[rate_limits.limits.<name>]`: one limit's parameters. A field left out keeps
/// the limit's default, except `burst`, which defaults to the resulting `count`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Requests allowed per `period` on average.
    #[serde(default)]
    pub count: Option<u32>,
    /// The period `count` is measured over.
    #[serde(default)]
    pub period: Option<ConfigDuration>,
    /// The most requests allowed at once.
    #[serde(default)]
    pub burst: Option<u32>,
    /// `false` turns the limit off.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// `[[rate_limits.overrides]]`: a different limit for one key.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// The limit overridden.
    pub limit: LimitName,
    /// The bucket key, as the limit spells it: an account ID, an IP address, an
    /// IPv6 `/48` network, a registered domain, an identifier-set hash, or
    /// `<account id>:<identifier>`.
    pub key: String,
    /// Requests allowed per `period` on average.
    pub count: u32,
    /// The period `count` is measured over.
    pub period: ConfigDuration,
    /// The most requests allowed at once; defaults to `count`.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Why, for the operators who come later.
    #[serde(default)]
    pub comment: String,
}

fn default_true() -> bool {
    true
}

/// Checks a rate's fields, naming the offending one under `path`.
pub(crate) fn check_rate(path: &str, rate: &RateLimit) -> Result<(), String> {
    if rate.count < 1 {
        return Err(format!("{path}.count: must be at least 1"));
    }
    if rate.burst < 1 {
        return Err(format!("{path}.burst: must be at least 1"));
    }
    if rate.period.is_zero() {
        return Err(format!("{path}.period: must be more than 0"));
    }
    if rate.period > MAX_PERIOD {
        return Err(format!(
            "{path}.period: must be at most {}",
            ConfigDuration(MAX_PERIOD)
        ));
    }
    Ok(())
}

impl Default for LimitConfig {
    /// The limit's defaults, enabled.
    fn default() -> Self {
        Self {
            count: None,
            period: None,
            burst: None,
            enabled: true,
        }
    }
}

impl LimitConfig {
    /// The rate this block sets for `limit`, over the limit's defaults.
    pub(crate) fn rate(&self, limit: LimitName) -> RateLimit {
        let default = limit.default_rate();
        let count = self.count.unwrap_or(default.count);
        RateLimit {
            count,
            period: self.period.map_or(default.period, |period| period.0),
            burst: match (self.burst, self.count) {
                (Some(burst), _) => burst,
                (None, Some(_)) => count,
                (None, None) => default.burst,
            },
        }
    }
}

impl OverrideConfig {
    /// The rate this override sets.
    pub(crate) fn rate(&self) -> RateLimit {
        RateLimit {
            count: self.count,
            period: self.period.0,
            burst: self.burst.unwrap_or(self.count),
        }
    }
}
