//! Just enough DER (X.690) to read a certificate's serial number, names and key
//! identifiers (RFC 5280 §4.1, §4.2.1.1, §4.2.1.2) and to write a public key as a
//! SubjectPublicKeyInfo (RFC 5280 §4.1.2.7, RFC 5480, RFC 8017 §A.1.1, RFC 8410 §4).

use basalt_core::Error;
use basalt_core::Serial;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OBJECT_IDENTIFIER: u8 = 0x06;

/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1), contents only.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1, 1.2.840.10045.3.1.7 (RFC 5480 §2.1.1.1).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34 (RFC 5480 §2.1.1.1).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 §A.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-Ed25519, 1.3.101.112 (RFC 8410 §3).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A named curve of an EC SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NamedCurve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
}
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

/// Appends one tag-length-value with a minimal (DER) length.
fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        // Fits the short form, so the cast cannot truncate.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let octets = &bytes[skip..];
        // At most size_of::<usize>() octets, far below 0x7f.
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(octets);
    }
    out.extend_from_slice(contents);
}

fn tlv_vec(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    write_tlv(&mut out, tag, contents);
    out
}

/// Appends a non-negative INTEGER from big-endian magnitude bytes: leading zeros
/// dropped, one zero octet added when the top bit is set (X.690 §8.3).
fn write_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[first..];
    let mut contents = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(magnitude);
    write_tlv(out, INTEGER, &contents);
}

/// SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }, where the
/// AlgorithmIdentifier is SEQUENCE { OID, parameters } and `parameters` is complete
/// DER (or empty when absent).
fn spki(algorithm_oid: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
    let mut algorithm = tlv_vec(OBJECT_IDENTIFIER, algorithm_oid);
    algorithm.extend_from_slice(parameters);
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut body = tlv_vec(SEQUENCE, &algorithm);
    write_tlv(&mut body, BIT_STRING, &bits);
    tlv_vec(SEQUENCE, &body)
}

/// The SubjectPublicKeyInfo of an EC key (RFC 5480): `id-ecPublicKey` with the named
/// curve, and the uncompressed point `04 || x || y`.
pub(crate) fn ec_spki(curve: NamedCurve, x: &[u8], y: &[u8]) -> Vec<u8> {
    let oid = match curve {
        NamedCurve::P256 => OID_P256,
        NamedCurve::P384 => OID_P384,
    };
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    spki(OID_EC_PUBLIC_KEY, &tlv_vec(OBJECT_IDENTIFIER, oid), &point)
}

/// The SubjectPublicKeyInfo of an RSA key (RFC 8017 §A.1.1): `rsaEncryption` with
/// NULL parameters, and RSAPublicKey ::= SEQUENCE { modulus, publicExponent }.
pub(crate) fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut integers = Vec::with_capacity(n.len() + e.len() + 12);
    write_unsigned_integer(&mut integers, n);
    write_unsigned_integer(&mut integers, e);
    let key = tlv_vec(SEQUENCE, &integers);
    spki(OID_RSA_ENCRYPTION, &[NULL, 0x00], &key)
}

/// The SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 §4): `id-Ed25519` without
/// parameters, and the 32 key bytes.
pub(crate) fn ed25519_spki(x: &[u8]) -> Vec<u8> {
    spki(OID_ED25519, &[], x)
}

#[cfg(test)]
mod tests {
    use rcgen::KeyPair;
    use rcgen::PublicKeyData;
    use ring::signature::RsaKeyPair;
    use ring::signature::RsaPublicKeyComponents;

    use super::*;

    #[test]
    fn lengths_and_integers_are_minimal() {
        assert_eq!(tlv_vec(0x04, &[7; 3]), vec![0x04, 3, 7, 7, 7]);
        let long = tlv_vec(0x04, &[0; 0x80]);
        assert_eq!(&long[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(long.len(), 3 + 0x80);
        let longer = tlv_vec(0x04, &[0; 0x1234]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x12, 0x34]);
        let int = |bytes: &[u8]| {
            let mut out = Vec::new();
            write_unsigned_integer(&mut out, bytes);
            out
        };
        assert_eq!(int(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(int(&[0x00, 0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(int(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(int(&[0x00, 0xff, 0x01]), vec![0x02, 0x03, 0x00, 0xff, 0x01]);
        assert_eq!(int(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(int(&[0, 0]), vec![0x02, 0x01, 0x00]);
    }

    /// The encoder against rcgen's (yasna's) SubjectPublicKeyInfo for the same keys.
    #[test]
    fn spki_matches_rcgen() {
        for (alg, curve, half) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, NamedCurve::P256, 32),
            (&rcgen::PKCS_ECDSA_P384_SHA384, NamedCurve::P384, 48),
        ] {
            let pair = KeyPair::generate_for(alg).unwrap();
            let point = pair.public_key_raw();
            assert_eq!(point.len(), 1 + 2 * half);
            let ours = ec_spki(curve, &point[1..=half], &point[1 + half..]);
            assert_eq!(ours, pair.subject_public_key_info(), "{curve:?}");
        }
        let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert_eq!(
            ed25519_spki(pair.public_key_raw()),
            pair.subject_public_key_info()
        );
        assert_eq!(
            &ed25519_spki(&[0xaa; 32])[..12],
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
            ]
        );
    }

    #[test]
    fn rsa_spki_matches_rcgen() {
        let pem = include_str!("../tests/data/rsa2048.pem");
        let pair = KeyPair::from_pem(pem).unwrap();
        let der = pair.serialize_der();
        let ring_pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let components: RsaPublicKeyComponents<Vec<u8>> = ring_pair.public().into();
        let expected = pair.subject_public_key_info();
        assert_eq!(rsa_spki(&components.n, &components.e), expected);
        // Redundant leading zeros in the input change nothing.
        let mut padded = vec![0, 0];
        padded.extend_from_slice(&components.n);
        assert_eq!(rsa_spki(&padded, &[0, 1, 0, 1]), expected);
        // The well-known shape of a 2048-bit key with exponent 65537.
        assert_eq!(
            &expected[..24],
            &[
                0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00
            ]
        );
        assert!(expected.ends_with(&[0x02, 0x03, 0x01, 0x00, 0x01]));
    }

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
