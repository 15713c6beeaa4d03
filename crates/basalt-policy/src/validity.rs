//! Which certificate validity windows an order may ask for (RFC 8555 §7.4
//! `notBefore` and `notAfter`).

use std::time::Duration;

use basalt_core::Error;
use time::OffsetDateTime;

/// How far in the past a requested `notBefore` may lie.
pub const MAX_BACKDATE: Duration = Duration::from_secs(3600);

/// The limits a requested validity window is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidityLimits {
    /// The current time.
    pub now: OffsetDateTime,
    /// The latest acceptable `notBefore`: the order's expiry.
    pub latest_not_before: OffsetDateTime,
    /// The longest certificate lifetime the profile allows.
    pub max_validity: Duration,
}

impl ValidityLimits {
    /// Checks a requested window; absent fields are always acceptable (the CA then
    /// uses the profile's default window).
    ///
    /// `notBefore` may lie at most [`MAX_BACKDATE`] in the past and no later than
    /// [`ValidityLimits::latest_not_before`]; `notAfter` must be later than
    /// `notBefore` (or than now, without one), and the span from `notBefore` (or
    /// now) to `notAfter` no longer than [`ValidityLimits::max_validity`]. Every
    /// violation is [`basalt_core::ErrorKind::Malformed`], its detail naming the limit.
    pub fn check(
        &self,
        not_before: Option<OffsetDateTime>,
        not_after: Option<OffsetDateTime>,
    ) -> Result<(), Error> {
        if let Some(not_before) = not_before {
            let earliest = self.now.saturating_sub(signed(MAX_BACKDATE));
            if not_before < earliest {
                return Err(Error::malformed(format!(
                    "notBefore may be at most {} in the past",
                    human(MAX_BACKDATE)
                )));
            }
            if not_before > self.latest_not_before {
                return Err(Error::malformed(
                    "notBefore must not be later than the order's expiry",
                ));
            }
        }
        let Some(not_after) = not_after else {
            return Ok(());
        };
        let (start, start_name) = match not_before {
            Some(not_before) => (not_before, "notBefore"),
            None => (self.now, "the current time"),
        };
        if not_after <= start {
            return Err(Error::malformed(format!(
                "notAfter must be later than {start_name}"
            )));
        }
        // Both lie within `OffsetDateTime`'s range, so the difference fits.
        let span = not_after - start;
        if span > signed(self.max_validity) {
            return Err(Error::malformed(format!(
                "the requested validity is longer than this profile's limit of {}",
                human(self.max_validity)
            )));
        }
        Ok(())
    }
}

/// `d` as a signed duration, saturating on absurd config values.
fn signed(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// `90d`, `160h`, `30m` or `45s`: the config file's notation.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::ErrorKind;
    use time::Duration as Span;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
    }

    fn limits() -> ValidityLimits {
        ValidityLimits {
            now: now(),
            latest_not_before: now() + Span::days(7),
            max_validity: Duration::from_secs(90 * 86_400),
        }
    }

    #[test]
    fn windows_within_the_limits_are_accepted() {
        let n = now();
        let cases = [
            (None, None),
            (Some(n), None),
            (None, Some(n + Span::days(90))),
            (Some(n - Span::hours(1)), Some(n + Span::days(89))),
            (Some(n + Span::days(7)), Some(n + Span::days(97))),
            (
                Some(n + Span::days(1)),
                Some(n + Span::days(1) + Span::seconds(1)),
            ),
            (None, Some(n + Span::seconds(1))),
        ];
        for (not_before, not_after) in cases {
            limits()
                .check(not_before, not_after)
                .unwrap_or_else(|err| panic!("{not_before:?} {not_after:?}: {err}"));
        }
    }

    #[test]
    fn each_violation_names_its_limit() {
        let n = now();
        let cases = [
            (
                Some(n - Span::hours(1) - Span::seconds(1)),
                None,
                "notBefore may be at most 1h in the past",
            ),
            (
                Some(n + Span::days(7) + Span::seconds(1)),
                None,
                "notBefore must not be later than the order's expiry",
            ),
            (
                Some(n + Span::days(1)),
                Some(n + Span::days(1)),
                "notAfter must be later than notBefore",
            ),
            (
                Some(n + Span::days(2)),
                Some(n + Span::days(1)),
                "notAfter must be later than notBefore",
            ),
            (
                None,
                Some(n),
                "notAfter must be later than the current time",
            ),
            (
                None,
                Some(n - Span::days(1)),
                "notAfter must be later than the current time",
            ),
            (
                None,
                Some(n + Span::days(90) + Span::seconds(1)),
                "the requested validity is longer than this profile's limit of 90d",
            ),
            (
                Some(n + Span::days(1)),
                Some(n + Span::days(91) + Span::seconds(1)),
                "the requested validity is longer than this profile's limit of 90d",
            ),
            (
                Some(OffsetDateTime::UNIX_EPOCH),
                Some(n),
                "notBefore may be at most 1h in the past",
            ),
        ];
        for (not_before, not_after, detail) in cases {
            let err = limits().check(not_before, not_after).unwrap_err();
            assert_eq!(
                err.kind,
                ErrorKind::Malformed,
                "{not_before:?} {not_after:?}"
            );
            assert_eq!(err.detail, detail, "{not_before:?} {not_after:?}");
        }
    }

    #[test]
    fn extreme_timestamps_are_errors_not_panics() {
        let unlimited = ValidityLimits {
            max_validity: Duration::MAX,
            ..limits()
        };
        let max = time::PrimitiveDateTime::MAX.assume_utc();
        let min = time::PrimitiveDateTime::MIN.assume_utc();
        assert!(unlimited.check(Some(min), Some(max)).is_err());
        assert!(unlimited.check(None, Some(min)).is_err());
        unlimited.check(None, Some(max)).unwrap();
        let err = limits().check(None, Some(max)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn durations_are_shown_in_config_notation() {
        assert_eq!(human(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(human(Duration::from_secs(160 * 3600)), "160h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(human(Duration::from_secs(61)), "61s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
    }
}
