//! The generic cell rate algorithm (GCRA), in integer nanoseconds.
//!
//! A bucket is one number, its theoretical arrival time (TAT): the time at which
//! it would be empty again had every request so far been spaced exactly one
//! emission interval `T = period / count` apart. A request of cost `c` at `now`
//! moves it to `max(TAT, now) + c·T` and is allowed while that stays within the
//! burst tolerance `T·burst` of `now`. The Redis script (`redis.lua`) performs the
//! same arithmetic; the tests hold both to the same results.

use std::time::Duration;

use basalt_core::RateLimit;

/// A rate in the units the algorithm works in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    /// The emission interval `T`, in nanoseconds (at least 1).
    pub(crate) interval: i128,
    /// The burst tolerance `T·burst`, in nanoseconds.
    pub(crate) tolerance: i128,
}

impl Rate {
    /// The rate of a limit. `count` and `burst` of 0 are refused by the config and
    /// the override checks; they are treated as 1 here rather than dividing by zero.
    pub(crate) fn of(limit: &RateLimit) -> Self {
        let interval = (limit.period.as_nanos() / u128::from(limit.count.max(1))).max(1);
        let interval = i128::try_from(interval).unwrap_or(i128::MAX);
        Self {
            interval,
            tolerance: interval.saturating_mul(i128::from(limit.burst.max(1))),
        }
    }
}

/// What a spend would do to one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether the request fits.
    pub(crate) allowed: bool,
    /// The bucket's TAT if the request is spent.
    pub(crate) new_tat: i128,
    /// How long until the request would fit (zero when allowed), in nanoseconds.
    pub(crate) retry_after: i128,
}

/// Decides a request of `cost` at `now` against a bucket whose stored TAT is `tat`
/// (`None` for a bucket never used or expired).
pub(crate) fn decide(tat: Option<i128>, now: i128, rate: Rate, cost: u32) -> Decision {
    let start = tat.map_or(now, |tat| tat.max(now));
    let new_tat = start.saturating_add(rate.interval.saturating_mul(i128::from(cost)));
    let earliest = new_tat.saturating_sub(rate.tolerance);
    Decision {
        allowed: earliest <= now,
        new_tat,
        retry_after: (earliest - now).max(0),
    }
}

/// The TAT after giving back `cost` requests at `now`: it moves back by `cost·T`,
/// but never before `now`, so a refund cannot add room beyond the burst.
pub(crate) fn refund(tat: Option<i128>, now: i128, rate: Rate, cost: u32) -> i128 {
    let tat = tat.map_or(now, |tat| tat.max(now));
    tat.saturating_sub(rate.interval.saturating_mul(i128::from(cost)))
        .max(now)
}

/// A nanosecond count as a [`Duration`], saturating.
pub(crate) fn duration(nanos: i128) -> Duration {
    let nanos = u128::try_from(nanos).unwrap_or(0);
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, subsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i128 = 3_600_000_000_000;
    /// 2026-11-29T18:05:11Z.
    const NOW: i128 = 1_795_975_511_000_000_000;

    fn three_per_3h() -> Rate {
        Rate::of(&RateLimit {
            count: 3,
            period: Duration::from_secs(3 * 3600),
            burst: 3,
        })
    }

    #[test]
    fn the_interval_is_period_over_count() {
        let rate = three_per_3h();
        assert_eq!(rate.interval, HOUR);
        assert_eq!(rate.tolerance, 3 * HOUR);
        let odd = Rate::of(&RateLimit {
            count: 7,
            period: Duration::from_secs(3600),
            burst: 2,
        });
        assert_eq!(odd.interval, HOUR / 7);
        assert_eq!(odd.tolerance, HOUR / 7 * 2);
    }

    #[test]
    fn a_burst_fits_and_the_next_waits_one_interval() {
        let rate = three_per_3h();
        let mut tat = None;
        for n in 1..=3 {
            let decision = decide(tat, NOW, rate, 1);
            assert!(decision.allowed, "request {n}");
            assert_eq!(decision.new_tat, NOW + n * HOUR);
            assert_eq!(decision.retry_after, 0);
            tat = Some(decision.new_tat);
        }
        let denied = decide(tat, NOW, rate, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, HOUR);
        let early = decide(tat, NOW + HOUR - 1, rate, 1);
        assert!(!early.allowed);
        assert_eq!(early.retry_after, 1);
        let on_time = decide(tat, NOW + HOUR, rate, 1);
        assert!(on_time.allowed);
        assert_eq!(on_time.new_tat, NOW + 4 * HOUR);
    }

    #[test]
    fn an_idle_bucket_starts_from_now() {
        let rate = three_per_3h();
        let decision = decide(Some(NOW - 10 * HOUR), NOW, rate, 2);
        assert!(decision.allowed);
        assert_eq!(decision.new_tat, NOW + 2 * HOUR);
    }

    #[test]
    fn a_cost_above_the_burst_never_fits() {
        let rate = three_per_3h();
        let decision = decide(None, NOW, rate, 4);
        assert!(!decision.allowed);
        assert_eq!(decision.retry_after, HOUR);
    }

    #[test]
    fn refunds_move_back_but_not_before_now() {
        let rate = three_per_3h();
        assert_eq!(refund(Some(NOW + 3 * HOUR), NOW, rate, 1), NOW + 2 * HOUR);
        assert_eq!(refund(Some(NOW + HOUR), NOW, rate, 5), NOW);
        assert_eq!(refund(Some(NOW - HOUR), NOW, rate, 1), NOW);
        assert_eq!(refund(None, NOW, rate, 1), NOW);
    }

    #[test]
    fn durations_convert_exactly() {
        assert_eq!(duration(HOUR + 5), Duration::new(3600, 5));
        assert_eq!(duration(-1), Duration::ZERO);
    }
}
