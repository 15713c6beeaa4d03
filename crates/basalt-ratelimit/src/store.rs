//! What the limiter asks of a store, and the two stores.

use std::time::Duration;

use basalt_core::RateLimit;
use basalt_core::RateLimitOverride;

use crate::LimitName;
use crate::memory::MemoryStore;
use crate::redis::RedisStore;

/// What to do with a batch of buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Decide, and spend from every bucket if every one allows.
    Spend,
    /// Decide, spending nothing.
    Check,
    /// Give back.
    Refund,
}

impl Mode {
    /// The name the Redis script and the logs use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Spend => "spend",
            Self::Check => "check",
            Self::Refund => "refund",
        }
    }
}

/// One bucket of a batch; no two in a batch have the same limit and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// The limit.
    pub(crate) limit: LimitName,
    /// The (canonical) key.
    pub(crate) key: String,
    /// The requests to spend or give back.
    pub(crate) cost: u32,
    /// The rate from the config (a config override, or the limit's rate); a
    /// runtime override in the store replaces it.
    pub(crate) rate: RateLimit,
}

impl Bucket {
    /// The name of the bucket's runtime override: `<limit>:<key>`. Limit names
    /// hold no `:`, so the first one separates them.
    pub(crate) fn override_field(&self) -> String {
        override_field(self.limit, &self.key)
    }
}

/// `<limit>:<key>`, the name of a runtime override.
pub(crate) fn override_field(limit: LimitName, key: &str) -> String {
    format!("{limit}:{key}")
}

/// What a store decided for one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Whether the request fits (always true for a refund).
    pub(crate) allowed: bool,
    /// How long until it would fit.
    pub(crate) retry_after: Duration,
    /// The rate applied: the bucket's, or a runtime override's.
    pub(crate) rate: RateLimit,
}

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Reading or writing the connection failed.
    #[error("redis i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The store did not answer within the timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The store answered something that is not what was asked for.
    #[error("redis protocol: {0}")]
    Protocol(String),
    /// The store answered with an error.
    #[error("redis replied: {0}")]
    Server(String),
}

/// Where buckets and runtime overrides live.
pub(crate) enum Store {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis.
    Redis(RedisStore),
}

impl Store {
    /// Applies `mode` to every bucket at once (unix nanoseconds `now`), with one
    /// verdict per bucket in order.
    pub(crate) async fn apply(
        &self,
        mode: Mode,
        buckets: &[Bucket],
        now: i128,
    ) -> Result<Vec<Verdict>, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.apply(mode, buckets, now)),
            Self::Redis(store) => store.apply(mode, buckets, now).await,
        }
    }

    /// Adds or replaces a runtime override (its key already canonical).
    pub(crate) async fn set_override(
        &self,
        limit: LimitName,
        entry: &RateLimitOverride,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(store) => {
                store.set_override(limit, entry);
                Ok(())
            }
            Self::Redis(store) => store.set_override(limit, entry).await,
        }
    }

    /// Removes a runtime override; whether there was one.
    pub(crate) async fn remove_override(
        &self,
        limit: LimitName,
        key: &str,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.remove_override(limit, key)),
            Self::Redis(store) => store.remove_override(limit, key).await,
        }
    }

    /// Every runtime override, sorted by limit and key.
    pub(crate) async fn overrides(&self) -> Result<Vec<RateLimitOverride>, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.overrides()),
            Self::Redis(store) => store.overrides().await,
        }
    }

    /// The backend's name, for logs.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }
}
