//! Buckets and runtime overrides in the RA's memory.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use basalt_core::RateLimitOverride;

use crate::LimitName;
use crate::gcra;
use crate::gcra::Rate;
use crate::store::Bucket;
use crate::store::Mode;
use crate::store::Verdict;

/// How many buckets may be kept before the first sweep of idle ones.
const FIRST_SWEEP: usize = 4096;

/// The in-process store. One lock covers a whole batch, so a spend across several
/// buckets is all or nothing.
#[derive(Default)]
pub(crate) struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// TATs (unix nanoseconds) by `<limit>:<key>`; a TAT at or before now is the
    /// same as no entry, so such entries are swept away.
    buckets: HashMap<String, i128>,
    /// Runtime overrides by limit and key.
    overrides: BTreeMap<(LimitName, String), RateLimitOverride>,
    /// Sweep idle buckets once there are this many.
    sweep_at: usize,
}

impl MemoryStore {
    /// Applies `mode` to every bucket under one lock.
    pub(crate) fn apply(&self, mode: Mode, buckets: &[Bucket], now: i128) -> Vec<Verdict> {
        // The lock guards plain data that every step leaves consistent, so a
        // panic elsewhere while it was held leaves nothing half-done.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut verdicts = Vec::with_capacity(buckets.len());
        let mut writes = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let field = bucket.override_field();
            let limit = state
                .overrides
                .get(&(bucket.limit, bucket.key.clone()))
                .map_or(bucket.rate, |entry| entry.rate);
            let rate = Rate::of(&limit);
            let tat = state.buckets.get(&field).copied();
            let verdict = match mode {
                Mode::Spend | Mode::Check => {
                    let decision = gcra::decide(tat, now, rate, bucket.cost);
                    writes.push((field, decision.new_tat));
                    Verdict {
                        allowed: decision.allowed,
                        retry_after: gcra::duration(decision.retry_after),
                        rate: limit,
                    }
                }
                Mode::Refund => {
                    writes.push((field, gcra::refund(tat, now, rate, bucket.cost)));
                    Verdict {
                        allowed: true,
                        retry_after: Duration::ZERO,
                        rate: limit,
                    }
                }
            };
            verdicts.push(verdict);
        }
        let write = match mode {
            Mode::Spend => verdicts.iter().all(|verdict| verdict.allowed),
            Mode::Check => false,
            Mode::Refund => true,
        };
        if write {
            for (field, tat) in writes {
                if tat > now {
                    state.buckets.insert(field, tat);
                } else {
                    state.buckets.remove(&field);
                }
            }
            state.sweep(now);
        }
        verdicts
    }

    /// Adds or replaces a runtime override.
    pub(crate) fn set_override(&self, limit: LimitName, entry: &RateLimitOverride) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .overrides
            .insert((limit, entry.key.clone()), entry.clone());
    }

    /// Removes a runtime override; whether there was one.
    pub(crate) fn remove_override(&self, limit: LimitName, key: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.overrides.remove(&(limit, key.to_owned())).is_some()
    }

    /// Every runtime override, sorted by limit and key.
    pub(crate) fn overrides(&self) -> Vec<RateLimitOverride> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.overrides.values().cloned().collect()
    }

    /// How many buckets are kept, for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.buckets.len()
    }
}

impl State {
    /// Forgets idle buckets once the map has doubled since the last sweep, so the
    /// cost stays proportional to the writes.
    fn sweep(&mut self, now: i128) {
        if self.buckets.len() < self.sweep_at.max(FIRST_SWEEP) {
            return;
        }
        self.buckets.retain(|_, tat| *tat > now);
        self.sweep_at = self.buckets.len() * 2;
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::RateLimit;

    use super::*;

    #[test]
    fn idle_buckets_are_swept() {
        let store = MemoryStore::default();
        let rate = RateLimit {
            count: 1,
            period: Duration::from_secs(1),
            burst: 1,
        };
        let now = 1_000_000_000_000;
        for n in 0..FIRST_SWEEP - 1 {
            let bucket = Bucket {
                limit: LimitName::NewOrdersPerAccount,
                key: n.to_string(),
                cost: 1,
                rate,
            };
            store.apply(Mode::Spend, &[bucket], now);
        }
        assert_eq!(store.len(), FIRST_SWEEP - 1);
        let later = now + 2_000_000_000;
        let bucket = Bucket {
            limit: LimitName::NewOrdersPerAccount,
            key: "last".to_owned(),
            cost: 1,
            rate,
        };
        store.apply(Mode::Spend, &[bucket], later);
        assert_eq!(store.len(), 1);
    }
}
