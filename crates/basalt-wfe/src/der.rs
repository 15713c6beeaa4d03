//! Just enough DER (X.690) to read a certificate's serial number (RFC 5280 §4.1).

use basalt_core::Error;
use basalt_core::Serial;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version` in TBSCertificate.
const VERSION_TAG: u8 = 0xa0;

fn invalid() -> Error {
    Error::malformed("certificate is not valid DER")
}

/// Splits one tag-length-value off `input`: (tag, contents, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
    let (&tag, input) = input.split_first().ok_or_else(invalid)?;
    // High-tag-number form never appears where we look.
    if tag & 0x1f == 0x1f {
        return Err(invalid());
    }
    let (&first, mut input) = input.split_first().ok_or_else(invalid)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // 0x80 is BER's indefinite length, which DER forbids; more than four length
        // octets would describe more than any certificate holds.
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 {
            return Err(invalid());
        }
        let (bytes, rest) = input.split_at_checked(octets).ok_or_else(invalid)?;
        input = rest;
        if bytes[0] == 0 {
            return Err(invalid()); // not minimal
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err(invalid()); // not minimal
        }
        len
    };
    let (contents, rest) = input.split_at_checked(len).ok_or_else(invalid)?;
    Ok((tag, contents, rest))
}

/// The serial number of a DER certificate.
pub(crate) fn certificate_serial(der: &[u8]) -> Result<Serial, Error> {
    let (tag, certificate, rest) = tlv(der)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(invalid());
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return Err(invalid());
    }
    let (mut tag, mut serial, rest) = tlv(tbs)?;
    if tag == VERSION_TAG {
        (tag, serial, _) = tlv(rest)?;
    }
    if tag != INTEGER {
        return Err(invalid());
    }
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        return Err(Error::malformed(
            "certificate serial number is not positive",
        ));
    }
    Serial::from_bytes(serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 certificate's first bytes with a long-form length, and a v1 one without
    /// a version; only the structure up to the serial matters.
    #[test]
    fn reads_the_serial() {
        let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x03, 0x00, 0x9a, 0xbc];
        tbs.extend_from_slice(&[0x05, 0x00].repeat(100));
        let mut der = vec![
            0x30,
            0x81,
            (tbs.len() + 3) as u8,
            0x30,
            0x81,
            tbs.len() as u8,
        ];
        der.extend_from_slice(&tbs);
        assert_eq!(certificate_serial(&der).unwrap().to_string(), "9abc");

        let v1 = [0x30, 0x07, 0x30, 0x05, 0x02, 0x03, 0x01, 0x02, 0x03];
        assert_eq!(certificate_serial(&v1).unwrap().to_string(), "010203");
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        let cases: [&[u8]; 9] = [
            &[],
            &[0x30],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01],
            &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x80],
            &[0x30, 0x05, 0x30, 0x03, 0x04, 0x01, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01, 0x00],
            &[0x31, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01],
        ];
        for der in cases {
            assert!(certificate_serial(der).is_err(), "{der:02x?} was accepted");
        }
    }
}
