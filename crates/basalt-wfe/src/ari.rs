//! ACME Renewal Information (RFC 9773): certificate identifiers.
//!
//! A certificate is named by its ARI certID, `base64url(AKI keyIdentifier) "."
//! base64url(serial)`, where the serial is the content octets of the certificate's
//! DER INTEGER (so it may start with a 0x00). The suggested window itself is
//! [`CertificateRecord::renewal_window`], shared with the RA: days 60 to 67½ of a
//! 90-day certificate, or a window already past for a certificate that is revoked
//! or named in an operator's incident, which tells the client to renew at once
//! (RFC 9773 §4.2).

use basalt_core::CertificateRecord;
use basalt_core::Error;
use basalt_core::Serial;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::der::authority_key_identifier;
use crate::der::certificate_serial;
use crate::jws::decode_b64url;

/// The `Retry-After` of a renewal information response: clients check again in
/// six hours (RFC 9773 §4.3 suggests at least that).
pub(crate) const RENEWAL_INFO_RETRY_AFTER_SECONDS: u64 = 6 * 60 * 60;

/// The longest serial accepted: 20 octets (RFC 5280 §4.1.2.2) and a leading zero.
const MAX_SERIAL_CONTENT_LEN: usize = 21;

/// A parsed ARI certID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertId {
    /// The issuer's key identifier, as in the certificate's AKI extension.
    pub(crate) key_identifier: Vec<u8>,
    /// The certificate's serial.
    pub(crate) serial: Serial,
}

impl CertId {
    /// Parses a certID strictly: two non-empty unpadded base64url parts, and a
    /// serial that is a positive, minimally encoded DER INTEGER.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::malformed(format!("certID {text:?} is invalid: {why}"));
        let Some((aki, serial)) = text.split_once('.') else {
            return Err(invalid("it must be two base64url parts joined by a dot"));
        };
        if aki.is_empty() || serial.is_empty() || serial.contains('.') {
            return Err(invalid("it must be two base64url parts joined by a dot"));
        }
        let key_identifier = decode_b64url("the certID key identifier", aki)?;
        let serial = decode_b64url("the certID serial", serial)?;
        match serial.as_slice() {
            [] => return Err(invalid("the serial is empty")),
            [first, ..] if first & 0x80 != 0 => {
                return Err(invalid("the serial is negative"));
            }
            [0, second, ..] if second & 0x80 == 0 => {
                return Err(invalid("the serial is not minimally encoded"));
            }
            [0] => return Err(invalid("the serial is zero")),
            bytes if bytes.len() > MAX_SERIAL_CONTENT_LEN => {
                return Err(invalid("the serial is longer than 20 octets"));
            }
            _ => {}
        }
        let serial = Serial::from_bytes(&serial).map_err(|err| invalid(&err.detail))?;
        Ok(Self {
            key_identifier,
            serial,
        })
    }

    /// The certID of a certificate, from its DER: the keyIdentifier of its
    /// authority key identifier extension and its serial. A certificate without
    /// that extension has no certID.
    pub(crate) fn of_certificate(der: &[u8]) -> Result<Self, Error> {
        let serial = certificate_serial(der)?;
        let Some(key_identifier) = authority_key_identifier(der)? else {
            return Err(Error::malformed(
                "the certificate has no authority key identifier, so no certID",
            ));
        };
        Ok(Self {
            key_identifier,
            serial,
        })
    }

    /// Whether `record` is the certificate this certID names: its authority key
    /// identifier matches (the serial was what found it).
    pub(crate) fn names(&self, record: &CertificateRecord) -> Result<bool, Error> {
        if record.serial != self.serial {
            return Ok(false);
        }
        let aki = authority_key_identifier(&record.der).map_err(|err| {
            Error::internal(format!(
                "certificate {} is stored unparsable: {}",
                record.serial, err.detail
            ))
        })?;
        Ok(aki.as_deref() == Some(self.key_identifier.as_slice()))
    }
}

impl std::fmt::Display for CertId {
    /// The canonical text of this certID (the serial without a sign octet when
    /// none is needed, with one otherwise).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.serial.as_bytes();
        let mut serial = Vec::with_capacity(bytes.len() + 1);
        if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            serial.push(0);
        }
        serial.extend_from_slice(bytes);
        write!(
            f,
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.key_identifier),
            URL_SAFE_NO_PAD.encode(serial)
        )
    }
}

#[cfg(test)]
mod tests {
    use basalt_core::AccountId;
    use basalt_core::CertStatus;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::Duration;
    use time::OffsetDateTime;

    use super::*;

    fn record(lifetime: Duration, status: CertStatus) -> CertificateRecord {
        let issued_at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        CertificateRecord {
            serial: Serial::from_bytes(&[1]).unwrap(),
            account_id: AccountId(1),
            der: Vec::new(),
            chain: Vec::new(),
            issued_at,
            expires_at: issued_at + lifetime,
            status,
            revoked_at: None,
            revocation_reason: None,
        }
    }

    #[test]
    fn parses_the_rfc_9773_example() {
        // RFC 9773 §4.1: keyIdentifier 69:88:5b:6b:87:46:40:41:e1:b3:7b:84:7b:a0:ae:2c:de:01:c8:d4
        // and serial 00:87:65:43:21.
        let id = CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(
            id.key_identifier,
            [
                0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0,
                0xae, 0x2c, 0xde, 0x01, 0xc8, 0xd4
            ]
        );
        assert_eq!(id.serial.to_string(), "87654321");
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    #[test]
    fn refuses_garbage() {
        let long = URL_SAFE_NO_PAD.encode([0x11; 22]);
        for bad in [
            "",
            ".",
            "aYhb",
            "aYhb.",
            ".AQ",
            "aYhb.AQ.AQ",
            "aYhb=.AQ",
            "aYhb.AQ==",
            "aY+b.AQ",
            "aYhb.AA",
            "aYhb.gA",
            "aYhb.AAE",
            &format!("aYhb.{long}"),
        ] {
            let err = CertId::parse(bad).unwrap_err();
            assert_eq!(err.kind, basalt_core::ErrorKind::Malformed, "{bad:?}");
        }
        CertId::parse(&format!("aYhb.{}", URL_SAFE_NO_PAD.encode([0x11; 20]))).unwrap();
        let mut high = vec![0u8];
        high.extend_from_slice(&[0x91; 20]);
        let id = CertId::parse(&format!("aYhb.{}", URL_SAFE_NO_PAD.encode(&high))).unwrap();
        assert_eq!(id.serial.as_bytes(), &[0x91; 20]);
    }

    /// The shared window (basalt-core) is the one this module documents.
    #[test]
    fn window_is_two_thirds_to_three_quarters() {
        let cert = record(Duration::days(90), CertStatus::Good);
        let now = cert.issued_at;
        let (start, end) = cert.renewal_window(false, now);
        assert_eq!(start - cert.issued_at, Duration::days(60));
        assert_eq!(end - cert.issued_at, Duration::hours(90 * 18));
        let now = cert.issued_at + Duration::days(3);
        for (cert, in_incident) in [
            (record(Duration::days(90), CertStatus::Revoked), false),
            (record(Duration::days(90), CertStatus::Good), true),
        ] {
            let (start, end) = cert.renewal_window(in_incident, now);
            assert_eq!(start, now - Duration::hours(2));
            assert_eq!(end, now - Duration::hours(1));
        }
    }
}
