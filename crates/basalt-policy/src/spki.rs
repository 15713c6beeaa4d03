//! A public key written as the DER SubjectPublicKeyInfo a certificate for it would
//! carry (RFC 5280 §4.1.2.7): RFC 5480 for EC keys, RFC 8017 §A.1.1 for RSA, RFC 8410
//! §4 for Ed25519. This is the reverse of [`spki_canonical_jwk`](crate::spki_canonical_jwk):
//! the WFE names the key that signed a revocation request the way the certificate names
//! it, and the RA names an account key on the blocked-keys list the way it names a
//! certificate's key.

use basalt_core::Error;
use basalt_core::ErrorKind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

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

/// A named curve of an EC SubjectPublicKeyInfo (RFC 5480 §2.1.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedCurve {
    /// secp256r1, JWK `P-256`.
    P256,
    /// secp384r1, JWK `P-384`.
    P384,
}

impl NamedCurve {
    /// The length in bytes of one coordinate of a point on the curve.
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// The SubjectPublicKeyInfo of an EC key (RFC 5480): `id-ecPublicKey` with the named
/// curve, and the uncompressed point `04 || x || y`. The coordinates are written as
/// given; checking their length and the point is the caller's business.
pub fn ec_spki(curve: NamedCurve, x: &[u8], y: &[u8]) -> Vec<u8> {
    let oid = match curve {
        NamedCurve::P256 => OID_P256,
        NamedCurve::P384 => OID_P384,
    };
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    spki(OID_EC_PUBLIC_KEY, &tlv(OBJECT_IDENTIFIER, oid), &point)
}

/// The SubjectPublicKeyInfo of an RSA key (RFC 8017 §A.1.1): `rsaEncryption` with
/// NULL parameters, and RSAPublicKey ::= SEQUENCE { modulus, publicExponent }, from
/// the big-endian magnitudes `n` and `e` (leading zero octets are ignored).
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut integers = unsigned_integer(n);
    integers.extend(unsigned_integer(e));
    spki(OID_RSA_ENCRYPTION, &[NULL, 0x00], &tlv(SEQUENCE, &integers))
}

/// The SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 §4): `id-Ed25519` without
/// parameters, and the key bytes `x` as given.
pub fn ed25519_spki(x: &[u8]) -> Vec<u8> {
    spki(OID_ED25519, &[], x)
}

/// The members of a public JWK (RFC 7517 §4, RFC 7518 §6) that name the key.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The DER SubjectPublicKeyInfo of an account key given as a public JWK: an EC key on
/// P-256 or P-384, an RSA key, or an Ed25519 key, as the WFE accepts them. Members
/// other than the key's own are ignored. Anything else is [`ErrorKind::BadPublicKey`].
pub fn jwk_spki(jwk: &str) -> Result<Vec<u8>, Error> {
    let unsupported = |why: &str| {
        Error::new(
            ErrorKind::BadPublicKey,
            format!("the account key cannot be read: {why}"),
        )
    };
    let jwk: Jwk = serde_json::from_str(jwk).map_err(|_| unsupported("not a JWK"))?;
    let member = |value: &Option<String>, name: &str| {
        let value = value
            .as_deref()
            .ok_or_else(|| unsupported(&format!("no {name:?} member")))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| unsupported(&format!("{name:?} is not base64url")))
    };
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some(name @ ("P-256" | "P-384"))) => {
            let curve = if name == "P-256" {
                NamedCurve::P256
            } else {
                NamedCurve::P384
            };
            let size = curve.coordinate_len();
            let (x, y) = (member(&jwk.x, "x")?, member(&jwk.y, "y")?);
            if x.len() != size || y.len() != size {
                return Err(unsupported(&format!(
                    "{name} coordinates have {size} bytes"
                )));
            }
            Ok(ec_spki(curve, &x, &y))
        }
        ("RSA", _) => {
            let (n, e) = (member(&jwk.n, "n")?, member(&jwk.e, "e")?);
            Ok(rsa_spki(&n, &e))
        }
        ("OKP", Some("Ed25519")) => {
            let x = member(&jwk.x, "x")?;
            if x.len() != 32 {
                return Err(unsupported("Ed25519 keys have 32 bytes"));
            }
            Ok(ed25519_spki(&x))
        }
        (kty, crv) => Err(unsupported(&format!(
            "key type {kty:?}{} is not supported",
            crv.map(|crv| format!(" on {crv:?}")).unwrap_or_default()
        ))),
    }
}

/// SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }, where the
/// AlgorithmIdentifier is SEQUENCE { OID, parameters } and `parameters` is complete
/// DER (or empty when absent).
fn spki(algorithm_oid: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
    let mut algorithm = tlv(OBJECT_IDENTIFIER, algorithm_oid);
    algorithm.extend_from_slice(parameters);
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut body = tlv(SEQUENCE, &algorithm);
    body.extend(tlv(BIT_STRING, &bits));
    tlv(SEQUENCE, &body)
}

/// A non-negative INTEGER from big-endian magnitude bytes: leading zeros dropped, one
/// zero octet added when the top bit is set (X.690 §8.3).
fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
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
    tlv(INTEGER, &contents)
}

/// One tag-length-value with a minimal (DER) length (X.690 §8.1.3, §10.1).
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
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
    out
}

#[cfg(test)]
mod tests;
