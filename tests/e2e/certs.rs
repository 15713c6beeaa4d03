//! What the tests read out of issued certificates, and wall-clock time: the ARI
//! certID (RFC 9773 §4.1) from a small DER walk, validity dates from openssl, and
//! RFC 3339 timestamps as Unix seconds.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use std::time::UNIX_EPOCH;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::harness::run_ok;

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);
/// The DER of the authorityKeyIdentifier OID, 2.5.29.35.
const AKI_OID: [u8; 3] = [0x55, 0x1d, 0x23];

/// Now, as Unix seconds. The end-to-end tests compare the real CA's real clock
/// with what it put in certificates, so the wall clock is what they need.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(now.as_secs()).expect("seconds fit in i64")
}

/// One DER TLV: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The certificate's serial (the content octets of its INTEGER) and its AKI
/// keyIdentifier.
pub(crate) fn serial_and_aki(cert_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let walk = || -> Option<(Vec<u8>, Vec<u8>)> {
        let (_, cert, _) = tlv(cert_der)?;
        let (_, tbs, _) = tlv(cert)?;
        let (mut tag, mut field, mut rest) = tlv(tbs)?;
        if tag == 0xa0 {
            // [0] EXPLICIT version
            (tag, field, rest) = tlv(rest)?;
        }
        if tag != 0x02 {
            return None;
        }
        let serial = field.to_vec();
        let mut aki = None;
        while !rest.is_empty() {
            let (tag, field, next) = tlv(rest)?;
            rest = next;
            if tag != 0xa3 {
                continue;
            }
            // [3] EXPLICIT Extensions ::= SEQUENCE OF Extension
            let (_, mut extensions, _) = tlv(field)?;
            while !extensions.is_empty() {
                let (_, extension, next) = tlv(extensions)?;
                extensions = next;
                let (_, oid, mut value) = tlv(extension)?;
                if oid != AKI_OID {
                    continue;
                }
                let (mut tag, mut octets, after) = tlv(value)?;
                if tag == 0x01 {
                    // critical BOOLEAN
                    value = after;
                    (tag, octets, _) = tlv(value)?;
                }
                if tag != 0x04 {
                    return None;
                }
                let (_, aki_seq, _) = tlv(octets)?;
                let (tag, key_id, _) = tlv(aki_seq)?;
                if tag == 0x80 {
                    aki = Some(key_id.to_vec());
                }
            }
        }
        Some((serial, aki?))
    };
    walk().expect("the certificate has a serial and an AKI keyIdentifier")
}

/// The ARI certID of a certificate: base64url(AKI keyIdentifier) "." base64url(serial).
pub(crate) fn cert_id(cert_der: &[u8]) -> String {
    let (serial, aki) = serial_and_aki(cert_der);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki),
        URL_SAFE_NO_PAD.encode(serial)
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as RFC 3339 in UTC, e.g. `2026-11-29T11:28:17Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.frac](Z|±HH:MM)` into Unix seconds (the
/// fraction is dropped).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.len() != 6 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// notBefore and notAfter of the PEM certificate in `cert`, as openssl reads them.
pub(crate) fn openssl_dates(cert: &Path) -> (i64, i64) {
    let output = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-startdate", "-enddate"])
            .args(["-dateopt", "iso_8601", "-in"])
            .arg(cert),
        OPENSSL_TIMEOUT,
    );
    let field = |name: &str| {
        output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(parse_timestamp)
            .unwrap_or_else(|| panic!("no {name} in {:?}", output.stdout))
    };
    (field("notBefore="), field("notAfter="))
}

/// The OCSP responder URL in the certificate's AIA extension, empty if none.
pub(crate) fn openssl_ocsp_uri(cert: &Path) -> String {
    run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ocsp_uri", "-in"])
            .arg(cert),
        OPENSSL_TIMEOUT,
    )
    .stdout
    .trim()
    .to_owned()
}

/// The serial as openssl prints it (uppercase hex, no leading zero octet).
pub(crate) fn openssl_serial_hex(cert: &Path) -> String {
    crate::certbot::serial(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for unix in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_timestamp(&rfc3339(unix)), Some(unix), "{unix}");
        }
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            parse_timestamp("2000-02-29 01:00:00.123+01:00"),
            Some(951_782_400)
        );
        assert_eq!(parse_timestamp("2000-02-29 00:00:00"), None);
    }
}
