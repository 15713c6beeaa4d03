//! Just enough DER (X.690) to read a certificate's serial number, names and key
//! identifiers (RFC 5280 §4.1, §4.2.1.1, §4.2.1.2). Writing a public key as a
//! SubjectPublicKeyInfo is [`basalt_policy::ec_spki`] and its siblings.

use basalt_core::Error;
use basalt_core::Serial;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OBJECT_IDENTIFIER: u8 = 0x06;

/// `[0] EXPLICIT Version` in TBSCertificate.
const VERSION_TAG: u8 = 0xa0;
/// `[3] EXPLICIT Extensions` in TBSCertificate.
const EXTENSIONS_TAG: u8 = 0xa3;
/// `[0] IMPLICIT KeyIdentifier` in AuthorityKeyIdentifier.
const KEY_IDENTIFIER_TAG: u8 = 0x80;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// id-ce-authorityKeyIdentifier, 2.5.29.35 (RFC 5280 §4.2.1.1).
const OID_AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
/// id-ce-subjectKeyIdentifier, 2.5.29.14 (RFC 5280 §4.2.1.2).
const OID_SUBJECT_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x0e];

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

/// The TBSCertificate of a DER certificate from its serial on: (serial contents,
/// the fields after it).
fn tbs_from_serial(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (tag, certificate, rest) = tlv(der)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(invalid());
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return Err(invalid());
    }
    let (mut tag, mut serial, mut rest) = tlv(tbs)?;
    if tag == VERSION_TAG {
        (tag, serial, rest) = tlv(rest)?;
    }
    if tag != INTEGER {
        return Err(invalid());
    }
    Ok((serial, rest))
}

/// The serial number of a DER certificate.
pub(crate) fn certificate_serial(der: &[u8]) -> Result<Serial, Error> {
    let (serial, _) = tbs_from_serial(der)?;
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        return Err(Error::malformed(
            "certificate serial number is not positive",
        ));
    }
    Serial::from_bytes(serial)
}

/// The contents of a DER certificate's extensions list (`SEQUENCE OF Extension`),
/// if it has one.
fn extensions(der: &[u8]) -> Result<Option<&[u8]>, Error> {
    let (_, mut fields) = tbs_from_serial(der)?;
    // signature, issuer, validity, subject, subjectPublicKeyInfo, then the optional
    // [1] issuerUniqueID, [2] subjectUniqueID and [3] extensions.
    let mut extensions = None;
    while !fields.is_empty() {
        let (tag, contents, rest) = tlv(fields)?;
        if tag == EXTENSIONS_TAG {
            extensions = Some(contents);
        }
        fields = rest;
    }
    let Some(extensions) = extensions else {
        return Ok(None);
    };
    let (tag, list, rest) = tlv(extensions)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(invalid());
    }
    Ok(Some(list))
}

/// The contents of the `extnValue` OCTET STRING of the extension `oid` of a DER
/// certificate, if it has one.
fn extension_value<'a>(der: &'a [u8], oid: &[u8]) -> Result<Option<&'a [u8]>, Error> {
    let Some(mut list) = extensions(der)? else {
        return Ok(None);
    };
    while !list.is_empty() {
        let (tag, extension, rest) = tlv(list)?;
        list = rest;
        if tag != SEQUENCE {
            return Err(invalid());
        }
        let (tag, id, rest) = tlv(extension)?;
        if tag != OBJECT_IDENTIFIER {
            return Err(invalid());
        }
        if id != oid {
            continue;
        }
        let (mut tag, mut value, mut after) = tlv(rest)?;
        if tag == BOOLEAN {
            (tag, value, after) = tlv(after)?;
        }
        if tag != OCTET_STRING || !after.is_empty() {
            return Err(invalid());
        }
        return Ok(Some(value));
    }
    Ok(None)
}

/// The `keyIdentifier` of a DER certificate's authority key identifier extension
/// (RFC 5280 §4.2.1.1), if it has one.
pub(crate) fn authority_key_identifier(der: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let Some(value) = extension_value(der, OID_AUTHORITY_KEY_IDENTIFIER)? else {
        return Ok(None);
    };
    let (tag, aki, after) = tlv(value)?;
    if tag != SEQUENCE || !after.is_empty() {
        return Err(invalid());
    }
    if aki.is_empty() {
        return Ok(None);
    }
    let (tag, key_id, _) = tlv(aki)?;
    Ok((tag == KEY_IDENTIFIER_TAG).then(|| key_id.to_vec()))
}

/// The key identifier of a DER certificate's subject key identifier extension
/// (RFC 5280 §4.2.1.2), if it has one.
pub(crate) fn subject_key_identifier(der: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let Some(value) = extension_value(der, OID_SUBJECT_KEY_IDENTIFIER)? else {
        return Ok(None);
    };
    let (tag, key_id, after) = tlv(value)?;
    if tag != OCTET_STRING || !after.is_empty() {
        return Err(invalid());
    }
    Ok(Some(key_id.to_vec()))
}

/// The issuer and subject names of a DER certificate (RFC 5280 §4.1.2.4,
/// §4.1.2.6), as the contents of their `Name` SEQUENCEs: equal names from one CA
/// are equal bytes.
pub(crate) fn issuer_and_subject(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    fn next(fields: &[u8]) -> Result<(&[u8], &[u8]), Error> {
        let (tag, contents, rest) = tlv(fields)?;
        if tag != SEQUENCE {
            return Err(invalid());
        }
        Ok((contents, rest))
    }
    let (_, fields) = tbs_from_serial(der)?;
    let (_signature, fields) = next(fields)?;
    let (issuer, fields) = next(fields)?;
    let (_validity, fields) = next(fields)?;
    let (subject, _) = next(fields)?;
    Ok((issuer, subject))
}

#[cfg(test)]
mod tests {
    use rcgen::KeyPair;

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
    fn reads_the_authority_key_identifier() {
        let aki = vec![0xa5; 20];
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(aki.clone());
        let issuer = rcgen::Issuer::new(ca, KeyPair::generate().unwrap());
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x80, 0x01]));
        params.use_authority_key_identifier_extension = true;
        let der = params
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap()
            .der()
            .to_vec();
        assert_eq!(authority_key_identifier(&der).unwrap(), Some(aki));
        assert_eq!(certificate_serial(&der).unwrap().to_string(), "8001");
        // Self-signed without the extension (rcgen still writes SANs).
        params.use_authority_key_identifier_extension = false;
        let der = params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec();
        assert_eq!(authority_key_identifier(&der).unwrap(), None);
        // Truncations fail cleanly.
        for len in 0..der.len() {
            assert!(authority_key_identifier(&der[..len]).is_err(), "{len}");
        }
        // A v1 shape without extensions has none.
        let v1 = [0x30, 0x07, 0x30, 0x05, 0x02, 0x03, 0x01, 0x02, 0x03];
        assert_eq!(authority_key_identifier(&v1).unwrap(), None);
    }

    #[test]
    fn reads_names_and_the_subject_key_identifier() {
        let ski = vec![0x5c; 20];
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Issuer CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(ski.clone());
        let ca_key = KeyPair::generate().unwrap();
        let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
        assert_eq!(subject_key_identifier(&ca_der).unwrap(), Some(ski.clone()));
        let (issuer, subject) = issuer_and_subject(&ca_der).unwrap();
        assert_eq!(issuer, subject);
        // The Name holds the common name's bytes.
        assert!(subject.windows(9).any(|w| w == b"Issuer CA"));

        let issuer_ca = rcgen::Issuer::new(ca, ca_key);
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "leaf");
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&KeyPair::generate().unwrap(), &issuer_ca)
            .unwrap()
            .der()
            .to_vec();
        let (leaf_issuer, leaf_subject) = issuer_and_subject(&leaf).unwrap();
        assert_eq!(leaf_issuer, subject);
        assert_ne!(leaf_subject, subject);
        assert_eq!(authority_key_identifier(&leaf).unwrap(), Some(ski));
        // rcgen gives end-entity certificates no subject key identifier.
        assert_eq!(subject_key_identifier(&leaf).unwrap(), None);
        for len in 0..leaf.len() {
            assert!(issuer_and_subject(&leaf[..len]).is_err(), "{len}");
            assert!(subject_key_identifier(&leaf[..len]).is_err(), "{len}");
        }
        // A v1 shape with nothing after the serial has no names.
        let v1 = [0x30, 0x07, 0x30, 0x05, 0x02, 0x03, 0x01, 0x02, 0x03];
        assert!(issuer_and_subject(&v1).is_err());
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
