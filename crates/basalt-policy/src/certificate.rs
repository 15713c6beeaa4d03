//! Facts about an issued certificate that revocation needs (RFC 8555 §7.6).

use basalt_core::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// The SubjectPublicKeyInfo of a DER certificate, as its DER bytes.
///
/// A revocation signed by the certificate's key is authorized when the key that
/// signed it has exactly these bytes. Anything that is not one DER certificate
/// (garbage, trailing data) is [`basalt_core::ErrorKind::Malformed`].
pub fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, Error> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::malformed("certificate is not a valid DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            "certificate has trailing data after its DER encoding",
        ));
    }
    Ok(cert.public_key().raw.to_vec())
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
        }
    }
}
