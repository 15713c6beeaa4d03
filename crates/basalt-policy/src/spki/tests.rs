use basalt_core::Identifier;
use rcgen::KeyPair;
use rcgen::PublicKeyData;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::*;
use crate::check_csr;
use crate::spki_canonical_jwk;

/// The SubjectPublicKeyInfo of the RSA key (`openssl genrsa 2048`, exponent 65537) in
/// this crate's test CSR, as openssl wrote it.
fn openssl_rsa_spki() -> Vec<u8> {
    let csr = include_bytes!("../../testdata/rsa2048.csr.der");
    check_csr(csr, &[Identifier::dns("a.example")])
        .unwrap()
        .spki_der
}

#[test]
fn long_contents_get_long_form_lengths() {
    assert_eq!(tlv(0x04, &[7; 3]), vec![0x04, 3, 7, 7, 7]);
    let long = tlv(0x04, &[0; 0x80]);
    assert_eq!(&long[..3], &[0x04, 0x81, 0x80]);
    assert_eq!(long.len(), 3 + 0x80);
    let longer = tlv(0x04, &[0; 0x1234]);
    assert_eq!(&longer[..4], &[0x04, 0x82, 0x12, 0x34]);
}

#[test]
fn integers_are_minimal() {
    let int = unsigned_integer;
    assert_eq!(int(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 0x01, 0x00, 0x01]);
    assert_eq!(int(&[0x00, 0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
    assert_eq!(int(&[0, 0x7f]), vec![0x02, 0x01, 0x7f]);
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

/// The encoder against openssl's SubjectPublicKeyInfo for the same RSA key (rcgen
/// cannot make RSA keys with ring).
#[test]
fn rsa_spki_matches_openssl() {
    let expected = openssl_rsa_spki();
    let (_, parsed) = SubjectPublicKeyInfo::from_der(&expected).unwrap();
    let Ok(PublicKey::RSA(key)) = parsed.parsed() else {
        panic!("the test CSR's key is not RSA");
    };
    assert_eq!(rsa_spki(key.modulus, key.exponent), expected);
    // Redundant leading zeros in the input change nothing.
    let mut padded = vec![0, 0];
    padded.extend_from_slice(key.modulus);
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

/// A JWK made from a certificate's key gives back that very SubjectPublicKeyInfo.
#[test]
fn jwks_become_the_spki_a_certificate_carries() {
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
    ] {
        let key = KeyPair::generate_for(alg).unwrap();
        let spki = key.subject_public_key_info();
        let jwk = spki_canonical_jwk(&spki).unwrap();
        assert_eq!(jwk_spki(&jwk).unwrap(), spki, "{jwk}");
    }
    let spki = openssl_rsa_spki();
    let jwk = spki_canonical_jwk(&spki).unwrap();
    assert_eq!(jwk_spki(&jwk).unwrap(), spki);

    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let raw = key.public_key_raw();
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(raw)
    );
    assert_eq!(jwk_spki(&jwk).unwrap(), key.subject_public_key_info());
}

/// Member order, extra members and a non-minimal modulus change nothing.
#[test]
fn the_spki_depends_on_the_key_only() {
    let a = jwk_spki(r#"{"kty":"RSA","n":"AMWp","e":"AQAB","alg":"RS256"}"#).unwrap();
    let b = jwk_spki(r#"{"e":"AQAB","kty":"RSA","n":"xak"}"#).unwrap();
    assert_eq!(a, b);
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE {
    // INTEGER 0x00c5a9, INTEGER 65537 } } }
    let want = [
        &[0x30, 0x1e, 0x30, 0x0d, 0x06, 0x09][..],
        OID_RSA_ENCRYPTION,
        &[0x05, 0x00, 0x03, 0x0d, 0x00, 0x30, 0x0a],
        &[0x02, 0x03, 0x00, 0xc5, 0xa9],
        &[0x02, 0x03, 0x01, 0x00, 0x01],
    ]
    .concat();
    assert_eq!(a, want);
}

#[test]
fn unreadable_jwks_are_bad_public_keys() {
    let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
    for jwk in [
        "not json".to_owned(),
        "{}".to_owned(),
        r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_owned(),
        format!(r#"{{"kty":"EC","crv":"P-521","x":"{x}","y":"{x}"}}"#),
        format!(r#"{{"kty":"EC","crv":"P-384","x":"{x}","y":"{x}"}}"#),
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}"}}"#),
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"!!"}}"#),
        r#"{"kty":"RSA","e":"AQAB"}"#.to_owned(),
        r#"{"kty":"OKP","crv":"Ed25519","x":"AQID"}"#.to_owned(),
        format!(r#"{{"kty":"OKP","crv":"X25519","x":"{x}"}}"#),
    ] {
        let err = jwk_spki(&jwk).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPublicKey, "{jwk}");
        assert!(
            err.detail.starts_with("the account key cannot be read: "),
            "{err}"
        );
    }
}
