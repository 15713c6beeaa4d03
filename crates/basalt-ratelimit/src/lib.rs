//! Basalt's rate limits: GCRA token buckets, kept in the RA's memory or in a Redis
//! that every RA shares.
//!
//! # Model
//!
//! Each request the RA limits spends from one or more buckets, each named by a
//! [`LimitName`] and a key (an IP address, an account, a registered domain…); the
//! [`Transaction`] builders spell the keys. A bucket follows the generic cell rate
//! algorithm: with `count` requests per `period` and room for `burst` at once, the
//! emission interval is `T = period / count` and the bucket stores one number,
//! its theoretical arrival time (TAT, unix nanoseconds). A request of cost `c` at
//! `now` moves the TAT to `max(TAT, now) + c·T` and is allowed while that is at
//! most `T·burst` past `now`; otherwise the subscriber may retry once it would be.
//! Buckets are stored with an expiry of the TAT minus now, so idle ones vanish.
//! All times come from the caller's `now`, never from a clock in here.
//!
//! [`Limiter::spend`] spends from a batch of buckets all or nothing: under Redis
//! one Lua script does the whole batch atomically, however many RAs there are; in
//! memory one lock covers it. [`Limiter::check`] decides without spending, and
//! [`Limiter::refund`] gives back what a spend took when the request failed for
//! another reason.
//!
//! # Which limit applies
//!
//! A runtime override (set with the admin tool) beats an override in the config
//! file, which beats the limit's configured rate, which defaults to Let's
//! Encrypt's published limits ([`LimitName::default_rate`]). Runtime overrides
//! live in the store: under Redis every RA shares them and they survive RA
//! restarts as long as Redis persists its data; in memory they last until the RA
//! restarts. An override meant to last belongs in the config file.
//!
//! # Failing open
//!
//! Rate limits protect the CA's capacity and keep one subscriber from crowding out
//! the rest; they are not a security boundary. So when the store cannot answer
//! (Redis down, slow past `redis_timeout`, answering garbage), requests are
//! allowed, as Boulder does, and an audit warning (`rate_limit_unavailable`) says
//! so. The alternative, refusing every issuance while Redis is away, would turn a
//! cache outage into a CA outage. Denials are audit events too (`rate_limited`).

#![warn(missing_docs)]

mod config;
mod gcra;
mod limit;
mod memory;
mod redis;
mod resp;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::RateLimit;
use basalt_core::RateLimitOverride;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::memory::MemoryStore;
use crate::redis::RedisStore;
use crate::redis::Target;
use crate::store::Bucket;
use crate::store::Mode;
use crate::store::Store;
use crate::store::Verdict;

pub use crate::config::{Backend, LimitConfig, OverrideConfig, RateLimitsConfig};
pub use crate::limit::{LimitName, Transaction};

/// Enforces the rate limits. Cheap to clone: clones share the limits and the
/// store.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// `false`: nothing is ever limited.
    enabled: bool,
    /// The rate of every enabled limit; a disabled limit is absent.
    limits: BTreeMap<LimitName, RateLimit>,
    /// The config file's overrides, by limit and key.
    config_overrides: BTreeMap<(LimitName, String), RateLimitOverride>,
    /// The same, in the config file's order, for listing.
    config_order: Vec<(LimitName, String)>,
    store: Store,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("enabled", &self.inner.enabled)
            .field("backend", &self.inner.store.backend())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// Builds the limiter from its config, without I/O (Redis is connected on first
    /// use). The error names the offending field, e.g.
    /// `rate_limits.limits.new_orders_per_account.count: must be at least 1`.
    pub fn new(config: &RateLimitsConfig) -> Result<Self, String> {
        let mut limits = BTreeMap::new();
        for limit in LimitName::ALL {
            let block = config.limits.get(&limit).copied().unwrap_or_default();
            let rate = block.rate(limit);
            config::check_rate(&format!("rate_limits.limits.{limit}"), &rate)?;
            if block.enabled {
                limits.insert(limit, rate);
            }
        }
        let mut config_overrides = BTreeMap::new();
        let mut config_order = Vec::new();
        for (index, entry) in config.overrides.iter().enumerate() {
            let path = format!("rate_limits.overrides[{index}]");
            let key = entry
                .limit
                .canonical_key(&entry.key)
                .map_err(|why| format!("{path}.key: {why}"))?;
            let rate = entry.rate();
            config::check_rate(&path, &rate)?;
            let id = (entry.limit, key.clone());
            if config_overrides.contains_key(&id) {
                return Err(format!(
                    "{path}: a second override of {} for key {key}",
                    entry.limit
                ));
            }
            config_overrides.insert(
                id.clone(),
                RateLimitOverride {
                    limit: entry.limit.as_str().to_owned(),
                    key,
                    rate,
                    comment: entry.comment.clone(),
                },
            );
            config_order.push(id);
        }
        if config.key_prefix.is_empty() {
            return Err("rate_limits.key_prefix: must not be empty".to_owned());
        }
        if config.redis_timeout.0.is_zero() {
            return Err("rate_limits.redis_timeout: must be more than 0".to_owned());
        }
        let store = match config.backend {
            Backend::Memory => Store::Memory(MemoryStore::default()),
            Backend::Redis => {
                let url = config.redis_url.as_deref().ok_or_else(|| {
                    "rate_limits.redis_url: required when backend = \"redis\"".to_owned()
                })?;
                let target =
                    Target::parse(url).map_err(|why| format!("rate_limits.redis_url: {why}"))?;
                Store::Redis(RedisStore::new(
                    target,
                    config.redis_timeout.0,
                    &config.key_prefix,
                ))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                enabled: config.enabled,
                limits,
                config_overrides,
                config_order,
                store,
            }),
        })
    }

    /// The rate `limit` has from the config (before overrides), or `None` when it
    /// is disabled (or every limit is).
    pub fn rate(&self, limit: LimitName) -> Option<RateLimit> {
        if !self.inner.enabled {
            return None;
        }
        self.inner.limits.get(&limit).copied()
    }

    /// Spends from every bucket of `transactions`, or from none if any would go
    /// over its limit.
    ///
    /// A denial is an [`ErrorKind::RateLimited`] error whose `retry_after` says when
    /// the request would be allowed, with a detail naming the limit and the key; when
    /// several buckets deny, the one with the longest wait is reported. Disabled
    /// limits are skipped. If the store cannot answer, the request is allowed (see
    /// the crate docs) and an audit warning logged.
    pub async fn spend(
        &self,
        transactions: &[Transaction],
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.decide(Mode::Spend, transactions, now).await
    }

    /// The decision [`Self::spend`] would make, spending nothing.
    pub async fn check(
        &self,
        transactions: &[Transaction],
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.decide(Mode::Check, transactions, now).await
    }

    /// Gives back what [`Self::spend`] took, for a request that then failed: each
    /// bucket's TAT moves back by cost × emission interval, never before `now`.
    /// Best effort: a store failure is logged, not returned.
    pub async fn refund(&self, transactions: &[Transaction], now: OffsetDateTime) {
        let buckets = self.buckets(transactions);
        if buckets.is_empty() {
            return;
        }
        if let Err(err) = self
            .inner
            .store
            .apply(Mode::Refund, &buckets, now.unix_timestamp_nanos())
            .await
        {
            self.unavailable(Mode::Refund, &buckets, &err);
        }
    }

    /// Adds or replaces a runtime override. The limit must exist, the key must be
    /// one the limit uses (it is stored in the builders' spelling: lowercased,
    /// addresses canonical, a DNS name reduced to its registered domain for
    /// `certificates_per_domain`…), and count, burst and period must be positive.
    pub async fn add_override(&self, entry: RateLimitOverride) -> Result<(), Error> {
        let limit: LimitName = entry.limit.parse()?;
        let key = limit
            .canonical_key(&entry.key)
            .map_err(|why| Error::malformed(format!("key: {why}")))?;
        config::check_rate("rate", &entry.rate)
            .map_err(|why| Error::malformed(why.trim_start_matches("rate.").to_owned()))?;
        let entry = RateLimitOverride {
            limit: limit.as_str().to_owned(),
            key,
            ..entry
        };
        self.inner
            .store
            .set_override(limit, &entry)
            .await
            .map_err(|err| store_unavailable(&err))?;
        tracing::info!(
            target: "audit",
            event = "rate_limit_override_added",
            limit = limit.as_str(),
            key = %entry.key,
            count = entry.rate.count,
            period = %ConfigDuration(entry.rate.period),
            burst = entry.rate.burst,
            comment = %entry.comment,
            "rate limit override added"
        );
        Ok(())
    }

    /// Removes a runtime override: [`ErrorKind::NotFound`] if there is none, and
    /// [`ErrorKind::Conflict`] if the override comes from the config file.
    pub async fn remove_override(&self, limit: &str, key: &str) -> Result<(), Error> {
        let limit: LimitName = limit.parse()?;
        let key = limit
            .canonical_key(key)
            .map_err(|why| Error::malformed(format!("key: {why}")))?;
        let removed = self
            .inner
            .store
            .remove_override(limit, &key)
            .await
            .map_err(|err| store_unavailable(&err))?;
        if !removed {
            if self
                .inner
                .config_overrides
                .contains_key(&(limit, key.clone()))
            {
                return Err(Error::conflict(format!(
                    "the override of {limit} for {key} is defined in the RA's config; edit it there"
                )));
            }
            return Err(Error::not_found(format!(
                "no runtime override of {limit} for {key}"
            )));
        }
        tracing::info!(
            target: "audit",
            event = "rate_limit_override_removed",
            limit = limit.as_str(),
            key = %key,
            "rate limit override removed"
        );
        Ok(())
    }

    /// Every override: the config file's, in its order, then the runtime ones,
    /// sorted by limit and key.
    pub async fn overrides(&self) -> Result<Vec<RateLimitOverride>, Error> {
        let runtime = self
            .inner
            .store
            .overrides()
            .await
            .map_err(|err| store_unavailable(&err))?;
        let mut all: Vec<RateLimitOverride> = self
            .inner
            .config_order
            .iter()
            .filter_map(|id| self.inner.config_overrides.get(id).cloned())
            .collect();
        all.extend(runtime);
        Ok(all)
    }

    /// The buckets of `transactions` that are limited: disabled limits left out,
    /// repeated buckets merged (their costs added), each with its config rate.
    fn buckets(&self, transactions: &[Transaction]) -> Vec<Bucket> {
        if !self.inner.enabled {
            return Vec::new();
        }
        let mut buckets: Vec<Bucket> = Vec::with_capacity(transactions.len());
        for transaction in transactions {
            let Some(&rate) = self.inner.limits.get(&transaction.limit) else {
                continue;
            };
            if let Some(bucket) = buckets
                .iter_mut()
                .find(|b| b.limit == transaction.limit && b.key == transaction.key)
            {
                bucket.cost = bucket.cost.saturating_add(transaction.cost);
                continue;
            }
            let rate = self
                .inner
                .config_overrides
                .get(&(transaction.limit, transaction.key.clone()))
                .map_or(rate, |entry| entry.rate);
            buckets.push(Bucket {
                limit: transaction.limit,
                key: transaction.key.clone(),
                cost: transaction.cost,
                rate,
            });
        }
        buckets
    }

    /// Spends or checks, turning the worst denial into the error.
    async fn decide(
        &self,
        mode: Mode,
        transactions: &[Transaction],
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let buckets = self.buckets(transactions);
        if buckets.is_empty() {
            return Ok(());
        }
        let verdicts = match self
            .inner
            .store
            .apply(mode, &buckets, now.unix_timestamp_nanos())
            .await
        {
            Ok(verdicts) => verdicts,
            Err(err) => {
                self.unavailable(mode, &buckets, &err);
                return Ok(());
            }
        };
        let mut worst: Option<(&Bucket, Verdict)> = None;
        for (bucket, verdict) in buckets.iter().zip(verdicts) {
            if verdict.allowed {
                continue;
            }
            tracing::info!(
                target: "audit",
                event = "rate_limited",
                operation = mode.as_str(),
                limit = bucket.limit.as_str(),
                key = %bucket.key,
                cost = bucket.cost,
                retry_after_seconds = seconds_up(verdict.retry_after),
                "request over its rate limit"
            );
            if worst.is_none_or(|(_, w)| verdict.retry_after > w.retry_after) {
                worst = Some((bucket, verdict));
            }
        }
        match worst {
            None => Ok(()),
            Some((bucket, verdict)) => Err(denial(bucket, &verdict, now)),
        }
    }

    /// Logs that the store could not answer and the request goes through.
    fn unavailable(&self, mode: Mode, buckets: &[Bucket], err: &store::StoreError) {
        let limits: Vec<&str> = buckets.iter().map(|b| b.limit.as_str()).collect();
        let keys: Vec<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
        tracing::warn!(
            target: "audit",
            event = "rate_limit_unavailable",
            operation = mode.as_str(),
            backend = self.inner.store.backend(),
            limit = %limits.join(","),
            key = %keys.join(","),
            error = %err,
            "rate limit store unavailable; allowing the request"
        );
    }
}

/// The error for a denied bucket.
fn denial(bucket: &Bucket, verdict: &Verdict, now: OffsetDateTime) -> Error {
    let rate = &verdict.rate;
    let when = retry_time(now, verdict.retry_after);
    let detail = format!(
        "{}: {} per {} allowed ({}); retry after {when}",
        bucket.limit.describe(&bucket.key),
        rate.count,
        ConfigDuration(rate.period),
        bucket.limit,
    );
    Error {
        retry_after: Some(verdict.retry_after),
        ..Error::new(ErrorKind::RateLimited, detail)
    }
}

/// `now + wait`, rounded up to the second, in RFC 3339.
fn retry_time(now: OffsetDateTime, wait: Duration) -> String {
    let at = time::Duration::try_from(wait)
        .ok()
        .and_then(|wait| now.checked_add(wait))
        .and_then(|at| match at.nanosecond() {
            0 => Some(at),
            _ => at
                .replace_nanosecond(0)
                .ok()?
                .checked_add(time::Duration::SECOND),
        });
    match at.and_then(|at| at.format(&Rfc3339).ok()) {
        Some(text) => text,
        None => format!("{} seconds", seconds_up(wait)),
    }
}

/// Whole seconds, rounded up.
fn seconds_up(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The error for an admin operation the store could not carry out.
fn store_unavailable(err: &store::StoreError) -> Error {
    tracing::warn!(error = %err, "rate limit store unavailable");
    Error::unavailable(format!("the rate limit store is unavailable: {err}"))
}

#[cfg(test)]
mod tests;
