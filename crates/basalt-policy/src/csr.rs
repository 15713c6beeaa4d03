//! Whether a CSR may finalize an order (RFC 8555 §7.4, Boulder's `csr.VerifyCSR`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;

use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::oid_registry::OID_NIST_EC_P384;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::oid_registry::OID_PKCS1_SHA1WITHRSA;
use x509_parser::oid_registry::OID_SHA1_WITH_RSA;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::key::check_rsa_key;

/// How many mismatched names to spell out in an error.
const DETAIL_NAMES: usize = 10;

/// What the RA learns from a CSR that matches its order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrInfo {
    /// The names the CSR asks for (SANs and common names), lowercase, sorted and
    /// deduplicated: DNS names and canonical IP addresses.
    pub names: Vec<String>,
    /// The same names as identifiers, sorted; equal to the order's identifiers.
    pub identifiers: Vec<Identifier>,
    /// The CSR's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

impl CsrInfo {
    /// Whether the CSR asks for any IP identifier.
    pub fn has_ip_identifiers(&self) -> bool {
        self.identifiers
            .iter()
            .any(|id| id.kind == IdentifierType::Ip)
    }
}

/// Checks a CSR against the identifiers of the order it finalizes.
///
/// The CSR must be one DER `CertificationRequest` whose self-signature verifies (not
/// with SHA-1), and the names it asks for (DNS and IP SANs of its extension request,
/// plus its common names, compared in lowercase) must be exactly the order's
/// identifiers: a missing or an extra name is [`ErrorKind::BadCsr`] naming them.
/// Other SAN types are refused. The key must be ECDSA on P-256 or P-384, or an RSA key
/// that passes [`check_rsa_key`] ([`ErrorKind::BadPublicKey`] otherwise). The key is
/// checked before the signature, so a weak key is refused as such.
pub fn check_csr(csr_der: &[u8], order_identifiers: &[Identifier]) -> Result<CsrInfo, Error> {
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|_| bad_csr("CSR is not a valid DER certification request"))?;
    if !rest.is_empty() {
        return Err(bad_csr("CSR has trailing data after its DER encoding"));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 {
        return Err(bad_csr("CSR version must be 1"));
    }
    check_public_key(&info.subject_pki)?;
    let sig_alg = &csr.signature_algorithm.algorithm;
    if *sig_alg == OID_PKCS1_SHA1WITHRSA || *sig_alg == OID_SHA1_WITH_RSA {
        return Err(bad_csr("CSR is signed with SHA-1, which is not accepted"));
    }
    csr.verify_signature().map_err(|err| match err {
        X509Error::SignatureUnsupportedAlgorithm => {
            bad_csr("CSR signature algorithm is not supported")
        }
        _ => bad_csr("CSR signature does not verify"),
    })?;

    let requested = requested_identifiers(&csr)?;
    let wanted: BTreeSet<Identifier> = order_identifiers
        .iter()
        .map(|id| Identifier {
            kind: id.kind,
            value: id.value.to_ascii_lowercase(),
        })
        .collect();
    let missing: Vec<&str> = wanted
        .difference(&requested)
        .map(|id| id.value.as_str())
        .collect();
    let extra: Vec<&str> = requested
        .difference(&wanted)
        .map(|id| id.value.as_str())
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing from the CSR: {}", list(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("not in the order: {}", list(&extra)));
        }
        return Err(bad_csr(&format!(
            "CSR names do not match the order ({})",
            parts.join("; ")
        )));
    }

    let identifiers: Vec<Identifier> = requested.into_iter().collect();
    let mut names: Vec<String> = identifiers.iter().map(|id| id.value.clone()).collect();
    names.sort();
    names.dedup();
    Ok(CsrInfo {
        names,
        identifiers,
        spki_der: info.subject_pki.raw.to_vec(),
    })
}

fn bad_csr(detail: &str) -> Error {
    Error::new(ErrorKind::BadCsr, detail)
}

fn bad_key(detail: &str) -> Error {
    Error::new(ErrorKind::BadPublicKey, detail)
}

/// A bounded, quoted list of names for an error detail.
fn list(names: &[&str]) -> String {
    let mut shown: Vec<String> = names
        .iter()
        .take(DETAIL_NAMES)
        .map(|name| format!("{name:?}"))
        .collect();
    if names.len() > DETAIL_NAMES {
        shown.push(format!("and {} more", names.len() - DETAIL_NAMES));
    }
    shown.join(", ")
}

fn check_public_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), Error> {
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.as_oid().ok());
        return match curve {
            Some(curve) if curve == OID_EC_P256 || curve == OID_NIST_EC_P384 => Ok(()),
            _ => Err(bad_key("ECDSA keys must be on the P-256 or P-384 curve")),
        };
    }
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(bad_key("the RSA public key cannot be parsed"));
        };
        return check_rsa_key(rsa.modulus, rsa.exponent);
    }
    Err(bad_key(
        "the public key must be ECDSA (P-256 or P-384) or RSA (2048, 3072 or 4096 bits)",
    ))
}

/// The DNS and IP identifiers a CSR asks for: SANs from every extension request,
/// plus the subject's common names.
fn requested_identifiers(
    csr: &X509CertificationRequest<'_>,
) -> Result<BTreeSet<Identifier>, Error> {
    let info = &csr.certification_request_info;
    let mut names = BTreeSet::new();
    for attribute in info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
            continue;
        };
        for extension in &request.extensions {
            match extension.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        names.insert(general_name(name)?);
                    }
                }
                ParsedExtension::ParseError { .. } => {
                    return Err(bad_csr("CSR has an extension that cannot be parsed"));
                }
                _ => {}
            }
        }
    }
    for cn in info.subject.iter_common_name() {
        let value = cn
            .as_str()
            .map_err(|_| bad_csr("CSR common name is not a string"))?;
        names.insert(match value.parse::<IpAddr>() {
            Ok(ip) => Identifier::ip(ip.to_string()),
            Err(_) => Identifier::dns(value.to_ascii_lowercase()),
        });
    }
    Ok(names)
}

fn general_name(name: &GeneralName<'_>) -> Result<Identifier, Error> {
    Ok(match name {
        GeneralName::DNSName(dns) => Identifier::dns(dns.to_ascii_lowercase()),
        GeneralName::IPAddress(bytes) => {
            let ip = if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                IpAddr::V4(Ipv4Addr::from(v4))
            } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                IpAddr::V6(Ipv6Addr::from(v6))
            } else {
                return Err(bad_csr("CSR has an IP address SAN of the wrong length"));
            };
            Identifier::ip(ip.to_string())
        }
        _ => {
            return Err(bad_csr(
                "CSR subject alternative names may only be DNS names and IP addresses",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateParams;
    use rcgen::DistinguishedName;
    use rcgen::DnType;
    use rcgen::KeyPair;
    use rcgen::PublicKeyData;
    use rcgen::SanType;

    use super::*;

    /// A CSR for `sans` with no subject, or with `cn` as its common name.
    fn csr_with(key: &KeyPair, sans: &[&str], cn: Option<&str>) -> Vec<u8> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn csr(sans: &[&str]) -> Vec<u8> {
        csr_with(&KeyPair::generate().unwrap(), sans, None)
    }

    fn order(names: &[&str]) -> Vec<Identifier> {
        names.iter().copied().map(Identifier::dns).collect()
    }

    #[test]
    fn matching_csr_is_accepted() {
        let key = KeyPair::generate().unwrap();
        let der = csr_with(&key, &["b.example", "a.example"], Some("a.example"));
        let info = check_csr(&der, &order(&["a.example", "b.example"])).unwrap();
        assert_eq!(info.names, vec!["a.example", "b.example"]);
        assert_eq!(info.identifiers, order(&["a.example", "b.example"]));
        assert_eq!(info.spki_der, key.subject_public_key_info());
        assert!(!info.has_ip_identifiers());
    }

    #[test]
    fn names_compare_in_lowercase_and_cn_counts() {
        let key = KeyPair::generate().unwrap();
        // Only a common name, in uppercase: still the order's one name.
        let der = csr_with(&key, &[], Some("WWW.Example.COM"));
        let info = check_csr(&der, &order(&["www.example.com"])).unwrap();
        assert_eq!(info.names, vec!["www.example.com"]);
        let der = csr_with(&key, &["A.example"], None);
        check_csr(&der, &order(&["a.example"])).unwrap();
    }

    #[test]
    fn extra_name_is_refused() {
        let err =
            check_csr(&csr(&["a.example", "evil.example"]), &order(&["a.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr);
        assert!(
            err.detail.contains("not in the order: \"evil.example\""),
            "{}",
            err.detail
        );
        assert!(!err.detail.contains("missing"), "{}", err.detail);
    }

    #[test]
    fn extra_common_name_is_refused() {
        let key = KeyPair::generate().unwrap();
        let der = csr_with(&key, &["a.example"], Some("cn.example"));
        let err = check_csr(&der, &order(&["a.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr);
        assert!(err.detail.contains("\"cn.example\""), "{}", err.detail);
    }

    #[test]
    fn missing_name_is_refused() {
        let err = check_csr(&csr(&["a.example"]), &order(&["a.example", "b.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr);
        assert!(
            err.detail.contains("missing from the CSR: \"b.example\""),
            "{}",
            err.detail
        );
    }

    #[test]
    fn ip_sans_are_identifiers() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .subject_alt_names
            .push(SanType::IpAddress("2001:db8::1".parse().unwrap()));
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let ids = vec![Identifier::dns("a.example"), Identifier::ip("2001:db8::1")];
        let info = check_csr(&der, &ids).unwrap();
        assert!(info.has_ip_identifiers());
        // The same CSR does not match a DNS-only order.
        let err = check_csr(&der, &order(&["a.example"])).unwrap_err();
        assert!(err.detail.contains("\"2001:db8::1\""), "{}", err.detail);
    }

    #[test]
    fn email_san_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("a@a.example".try_into().unwrap()));
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let err = check_csr(&der, &order(&["a.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr);
    }

    #[test]
    fn bad_signature_is_refused() {
        let mut der = csr(&["a.example"]);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let err = check_csr(&der, &order(&["a.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr);
        assert!(err.detail.contains("signature"), "{}", err.detail);
    }

    #[test]
    fn garbage_is_refused() {
        for garbage in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"not a csr at all",
            &[0xff; 64],
        ] {
            let err = check_csr(garbage, &order(&["a.example"])).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadCsr, "{garbage:?}");
        }
        let mut der = csr(&["a.example"]);
        der.push(0);
        let err = check_csr(&der, &order(&["a.example"])).unwrap_err();
        assert!(err.detail.contains("trailing"), "{}", err.detail);
        // Every truncation is an error, never a panic.
        let der = csr(&["a.example"]);
        for len in 0..der.len() {
            assert!(check_csr(&der[..len], &order(&["a.example"])).is_err());
        }
    }

    #[test]
    fn key_types() {
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        check_csr(
            &csr_with(&p384, &["a.example"], None),
            &order(&["a.example"]),
        )
        .unwrap();
        let ed25519 = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = check_csr(
            &csr_with(&ed25519, &["a.example"], None),
            &order(&["a.example"]),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPublicKey);
    }

    #[test]
    fn rsa_keys_go_through_the_key_check() {
        // `openssl req -new` for a.example with an `openssl genrsa 2048` key.
        let der = include_bytes!("../testdata/rsa2048.csr.der");
        let info = check_csr(der, &order(&["a.example"])).unwrap();
        assert_eq!(info.names, vec!["a.example"]);

        // The same CSR with its modulus made divisible by 3 (same length, so the DER
        // still parses): the key is refused before the signature is looked at.
        let (_, csr) = X509CertificationRequest::from_der(der).unwrap();
        let Ok(PublicKey::RSA(rsa)) = csr.certification_request_info.subject_pki.parsed() else {
            panic!("the test CSR has an RSA key");
        };
        let modulus = num_bigint::BigUint::from_bytes_be(rsa.modulus);
        let weak = &modulus - (&modulus % 3u32);
        let mut weak_be = vec![0];
        weak_be.extend(weak.to_bytes_be());
        assert_eq!(weak_be.len(), rsa.modulus.len());
        let at = der
            .windows(rsa.modulus.len())
            .position(|window| window == rsa.modulus)
            .unwrap();
        let mut weak_der = der.to_vec();
        weak_der[at..at + weak_be.len()].copy_from_slice(&weak_be);
        let err = check_csr(&weak_der, &order(&["a.example"])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPublicKey);
        assert!(err.detail.contains("small prime"), "{}", err.detail);
    }
}
