//! Certificate requests for finalize (RFC 8555 §7.4) and the PEM chains a
//! certificate download returns (§7.4.2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::CertificateParams;
use rcgen::DistinguishedName;
use rcgen::KeyPair;
use rcgen::PKCS_ECDSA_P256_SHA256;

use crate::Error;

/// A CSR and the key it was made with.
#[derive(Debug)]
pub struct CertificateRequest {
    /// The CSR, DER.
    pub der: Vec<u8>,
    /// The certificate's private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl CertificateRequest {
    /// A CSR for `names` (DNS names, or IP addresses in text form) under a fresh
    /// ECDSA P-256 key, with an empty subject: the names are in the
    /// subjectAltName extension only, which is where RFC 8555 §7.4 looks.
    pub fn p256(names: &[String]) -> Result<Self, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|err| Error::Crypto(format!("cannot generate a P-256 key: {err}")))?;
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|err| Error::Config(format!("names {names:?}: {err}")))?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|err| Error::Crypto(format!("cannot sign the CSR: {err}")))?;
        Ok(Self {
            der: csr.der().to_vec(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The DER of every `CERTIFICATE` block in a PEM chain, in order (the end-entity
/// certificate first, RFC 8555 §7.4.2). Fails if a block is not base64 or is not
/// closed, or if there is none.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or_else(|| Error::Protocol("a PEM certificate block is not closed".to_owned()))?;
        let base64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|err| Error::Protocol(format!("a PEM certificate is not base64: {err}")))?;
        certificates.push(der);
        rest = &body[end + END.len()..];
    }
    if certificates.is_empty() {
        return Err(Error::Protocol(
            "the certificate chain holds no PEM certificate".to_owned(),
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateSigningRequestParams;
    use rcgen::SanType;
    use rustls::pki_types::CertificateSigningRequestDer;

    use super::*;

    #[test]
    fn a_csr_names_its_identifiers_in_the_san_only() {
        let names = vec!["a.example.com".to_owned(), "192.0.2.7".to_owned()];
        let request = CertificateRequest::p256(&names).unwrap();
        assert!(request.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let parsed = CertificateSigningRequestParams::from_der(
            &CertificateSigningRequestDer::from(request.der),
        )
        .unwrap();
        let sans = &parsed.params.subject_alt_names;
        assert_eq!(sans.len(), 2);
        assert!(matches!(&sans[0], SanType::DnsName(name) if name.as_str() == "a.example.com"));
        assert!(
            matches!(&sans[1], SanType::IpAddress(ip) if *ip == "192.0.2.7".parse::<std::net::IpAddr>().unwrap())
        );
        assert_eq!(parsed.params.distinguished_name.iter().count(), 0);
    }

    #[test]
    fn a_name_that_is_no_ia5_string_is_refused() {
        let err = CertificateRequest::p256(&["bücher.example".to_owned()]).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[test]
    fn pem_chains_split_into_certificates() {
        let one = STANDARD.encode(b"first certificate");
        let two = STANDARD.encode(b"second");
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n{}\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\r\n{two}\r\n-----END CERTIFICATE-----\r\n",
            &one[..8],
            &one[8..]
        );
        assert_eq!(
            pem_certificates(&pem).unwrap(),
            vec![b"first certificate".to_vec(), b"second".to_vec()]
        );
    }

    #[test]
    fn broken_pem_is_refused() {
        assert!(pem_certificates("").is_err());
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")
                .is_err()
        );
    }
}
