//! Facts about an issued certificate that revocation needs (RFC 8555 §7.6).

use std::net::IpAddr;

use basalt_core::Error;
use basalt_core::Identifier;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The SubjectPublicKeyInfo of a DER certificate, as its DER bytes.
///
/// A revocation signed by the certificate's key is authorized when the key that
/// signed it has exactly these bytes. Anything that is not one DER certificate
/// (garbage, trailing data) is [`basalt_core::ErrorKind::Malformed`].
pub fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(parse(der)?.public_key().raw.to_vec())
}

/// The identifiers a DER certificate is for: its subjectAltName DNS names
/// (lowercased) and IP addresses, sorted and deduplicated.
///
/// Revocation by an account that holds authorizations for every one of them needs
/// them; a certificate without any is [`basalt_core::ErrorKind::Malformed`].
pub fn certificate_names(der: &[u8]) -> Result<Vec<Identifier>, Error> {
    let cert = parse(der)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| Error::malformed("certificate has an invalid subjectAltName"))?;
    let mut names = Vec::new();
    for name in san.iter().flat_map(|san| &san.value.general_names) {
        match name {
            GeneralName::DNSName(dns) => names.push(Identifier::dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => {
                let ip = if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                    IpAddr::from(octets)
                } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                    IpAddr::from(octets)
                } else {
                    return Err(Error::malformed(
                        "certificate has an IP address of the wrong length",
                    ));
                };
                names.push(Identifier::ip(ip.to_string()));
            }
            _ => {}
        }
    }
    if names.is_empty() {
        return Err(Error::malformed(
            "certificate names no DNS name or IP address",
        ));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// One DER certificate, with nothing after it.
fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::malformed("certificate is not a valid DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            "certificate has trailing data after its DER encoding",
        ));
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use basalt_core::ErrorKind;
    use rcgen::CertificateParams;
    use rcgen::KeyPair;
    use rcgen::PKCS_ECDSA_P384_SHA384;
    use rcgen::PublicKeyData;

    use super::*;

    fn self_signed(key: &KeyPair) -> Vec<u8> {
        CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(key)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn spki_is_the_subject_key() {
        let key = KeyPair::generate().unwrap();
        let der = self_signed(&key);
        let spki = certificate_spki(&der).unwrap();
        assert_eq!(spki, key.subject_public_key_info());

        let other = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        assert_ne!(spki, other.subject_public_key_info());
        assert_eq!(
            certificate_spki(&self_signed(&other)).unwrap(),
            other.subject_public_key_info()
        );
    }

    #[test]
    fn names_are_the_subject_alternative_names() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            "B.example".to_owned(),
            "a.example".to_owned(),
            "*.a.example".to_owned(),
            "a.example".to_owned(),
        ])
        .unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("192.0.2.7".parse().unwrap()));
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("2001:db8::1".parse().unwrap()));
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let names = certificate_names(&der).unwrap();
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            vec![
                Identifier::dns("*.a.example"),
                Identifier::dns("a.example"),
                Identifier::dns("b.example"),
                Identifier::ip("192.0.2.7"),
                Identifier::ip("2001:db8::1"),
            ],
            "{shown:?}"
        );

        let bare = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = certificate_names(bare.der()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn garbage_is_malformed() {
        let key = KeyPair::generate().unwrap();
        let mut trailing = self_signed(&key);
        trailing.push(0);
        let truncated = &trailing[..trailing.len() / 2];
        for der in [
            &b""[..],
            b"garbage",
            b"\x30\x03\x02\x01\x01",
            truncated,
            &trailing,
        ] {
            let err = certificate_spki(der).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Malformed, "{der:?}");
            let err = certificate_names(der).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Malformed, "{der:?}");
        }
    }
}
