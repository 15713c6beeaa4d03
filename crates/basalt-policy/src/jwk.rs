//! A public key from a certificate or CSR in the form Basalt stores account keys:
//! the RFC 7638 canonical JWK, so the two can be compared.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::oid_registry::OID_NIST_EC_P384;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The canonical JWK (RFC 7638 §3.2: required members only, in lexicographic order,
/// no whitespace) of a DER SubjectPublicKeyInfo holding an ECDSA P-256/P-384 key
/// (uncompressed point) or an RSA key; `None` for any other key or encoding.
pub fn spki_canonical_jwk(spki_der: &[u8]) -> Option<String> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
        let (name, size) = if curve == OID_EC_P256 {
            ("P-256", 32)
        } else if curve == OID_NIST_EC_P384 {
            ("P-384", 48)
        } else {
            return None;
        };
        let point = spki.subject_public_key.data.as_ref();
        if point.len() != 1 + 2 * size || point[0] != 0x04 {
            return None;
        }
        let (x, y) = point[1..].split_at(size);
        return Some(format!(
            r#"{{"crv":"{name}","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        ));
    }
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return None;
        };
        let trim = |bytes: &'_ [u8]| {
            let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
            bytes[start..].to_vec()
        };
        return Some(format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64(&trim(rsa.exponent)),
            b64(&trim(rsa.modulus))
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData;

    use super::*;

    #[test]
    fn an_ec_key_becomes_its_canonical_jwk() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = key.public_key_raw();
        let want = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&raw[1..33]),
            URL_SAFE_NO_PAD.encode(&raw[33..65])
        );
        assert_eq!(
            spki_canonical_jwk(&key.subject_public_key_info()).as_deref(),
            Some(want.as_str())
        );
    }

    #[test]
    fn an_rsa_key_becomes_its_canonical_jwk() {
        let csr = include_bytes!("../testdata/rsa2048.csr.der");
        let info = crate::check_csr(csr, &[basalt_core::Identifier::dns("a.example")]).unwrap();
        let jwk = spki_canonical_jwk(&info.spki_der).unwrap();
        assert!(jwk.starts_with(r#"{"e":"AQAB","kty":"RSA","n":""#), "{jwk}");
        // 2048 bits, no leading zero byte: 256 bytes, 342 base64url characters.
        let n = jwk.trim_end_matches("\"}").rsplit('"').next().unwrap();
        assert_eq!(n.len(), 342);
    }

    #[test]
    fn other_keys_have_none() {
        assert_eq!(spki_canonical_jwk(b"not der"), None);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert_eq!(spki_canonical_jwk(&key.subject_public_key_info()), None);
    }
}
