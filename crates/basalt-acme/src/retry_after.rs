//! `Retry-After` (RFC 9110 §10.2.3): a number of seconds or an HTTP date, which
//! ACME servers send while an object is being worked on (RFC 8555 §7.4, §8.2)
//! and with `rateLimited` (§6.6).

use std::time::Duration;

use time::Date;
use time::Month;
use time::OffsetDateTime;
use time::Time;

/// How long `value` asks the client to wait, as seen at `now`: `delay-seconds`,
/// or an HTTP date in any of the three formats of RFC 9110 §5.6.7 (a date in the
/// past is no wait). `None` if the value is neither.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value, now.year())?;
    let wait = at - now;
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// An HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete
/// RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`, its two-digit year read as
/// RFC 9110 says, relative to `this_year`) or asctime (`Sun Nov  6 08:49:37 1994`).
fn parse_http_date(value: &str, this_year: i32) -> Option<OffsetDateTime> {
    let tokens: Vec<&str> = value
        .split([' ', ',', '-'])
        .filter(|token| !token.is_empty())
        .collect();
    let weekday = tokens.first()?;
    if !weekday.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let (day, month, year, clock) = match tokens.as_slice() {
        [_, day, month, year, clock, "GMT"] => {
            let year = match year.len() {
                4 => number(year)?,
                2 => {
                    // RFC 9110 §5.6.7: a two-digit year more than 50 years
                    // ahead is in the past century.
                    let year = this_year - this_year.rem_euclid(100) + number::<i32>(year)?;
                    if year > this_year + 50 {
                        year - 100
                    } else {
                        year
                    }
                }
                _ => return None,
            };
            (*day, *month, year, *clock)
        }
        [_, month, day, clock, year] if year.len() == 4 => (*day, *month, number(year)?, *clock),
        _ => return None,
    };
    let month = match month {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    };
    let date = Date::from_calendar_date(year, month, number(day)?).ok()?;
    let mut parts = clock.split(':');
    let (Some(hour), Some(minute), Some(second), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if hour.len() != 2 || minute.len() != 2 || second.len() != 2 {
        return None;
    }
    let time = Time::from_hms(number(hour)?, number(minute)?, number(second)?).ok()?;
    Some(date.with_time(time).assume_utc())
}

/// A number of only ASCII digits (no sign).
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(1994-11-06 08:49:07 UTC);

    #[test]
    fn seconds() {
        assert_eq!(parse_retry_after("0", NOW), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 3 ", NOW), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", NOW),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn the_three_http_date_formats() {
        let thirty = Some(Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW),
            thirty
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", NOW),
            thirty
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", NOW), thirty);
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", NOW),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn two_digit_years_more_than_fifty_years_ahead_are_in_the_past() {
        let now = datetime!(2030-01-01 00:00:00 UTC);
        let at = |text| parse_http_date(text, now.year()).unwrap().year();
        assert_eq!(at("Monday, 01-Jan-35 00:00:00 GMT"), 2035);
        assert_eq!(at("Monday, 01-Jan-80 00:00:00 GMT"), 2080);
        assert_eq!(at("Monday, 01-Jan-81 00:00:00 GMT"), 1981);
    }

    #[test]
    fn anything_else_is_not_a_retry_after() {
        for value in [
            "",
            "-1",
            "1.5",
            "+3",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:60:00 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_retry_after(value, NOW), None, "{value:?}");
        }
    }
}
