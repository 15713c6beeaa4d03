//! Account keys: ES256 (ECDSA P-256 with SHA-256, RFC 7518 §3.4) through ring,
//! their JWK (RFC 7518 §6.2) and its thumbprint (RFC 7638), which the key
//! authorization of every challenge carries (RFC 8555 §8.1).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
use ring::signature::EcdsaKeyPair;
use ring::signature::KeyPair;
use serde_json::Value;
use serde_json::json;

use crate::Error;

/// An account key: an ECDSA P-256 key pair that signs JWS with ES256.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
    jwk: Value,
    thumbprint: String,
}

impl AccountKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::Crypto("cannot generate a P-256 key".to_owned()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER (as [`AccountKey::pkcs8_der`] gives it).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|err| Error::Crypto(format!("not a P-256 PKCS#8 key: {err}")))?;
        let point = pair.public_key().as_ref();
        // ring gives the uncompressed point: 0x04, x, y.
        if point.len() != 65 || point[0] != 0x04 {
            return Err(Error::Crypto(
                "the P-256 public key is not an uncompressed point".to_owned(),
            ));
        }
        let jwk = json!({
            "crv": "P-256",
            "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        let thumbprint = jwk_thumbprint(&jwk)?;
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
            rng,
            jwk,
            thumbprint,
        })
    }

    /// The key pair as PKCS#8 DER, to store it and load it again.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        "ES256"
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 thumbprint of [`AccountKey::jwk`], base64url.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The key authorization of a challenge token (RFC 8555 §8.1):
    /// `token.thumbprint`.
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint)
    }

    /// The ES256 signature of `message`: R and S, 32 bytes each (RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| Error::Crypto("ES256 signing failed".to_owned()))
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("AccountKey")
            .field("alg", &self.alg())
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The RFC 7638 thumbprint of a public JWK: the SHA-256 of its required members
/// (`crv`, `kty`, `x`, `y` for EC; `e`, `kty`, `n` for RSA; `crv`, `kty`, `x` for
/// OKP), in lexicographic order with no whitespace, base64url.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, Error> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Crypto(format!("the JWK has no string member {name:?}")))
    };
    let required: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        other => return Err(Error::Crypto(format!("unsupported JWK kty {other:?}"))),
    };
    // serde_json's map keeps keys sorted (no preserve_order feature here), and the
    // names above are already in order; build the object member by member anyway
    // so the order never depends on a feature flag.
    let mut canonical = String::from("{");
    for (index, name) in required.iter().enumerate() {
        if index > 0 {
            canonical.push(',');
        }
        let value = Value::String(member(name)?.to_owned());
        canonical.push_str(&format!("\"{name}\":{value}"));
    }
    canonical.push('}');
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use ring::signature::ECDSA_P256_SHA256_FIXED;
    use ring::signature::UnparsedPublicKey;

    use super::*;

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn an_ec_thumbprint_hashes_the_canonical_members_only() {
        let key = AccountKey::generate().unwrap();
        let jwk = key.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(key.thumbprint(), URL_SAFE_NO_PAD.encode(digest.as_ref()));
        // Extra members and another member order change nothing.
        let mut noisy = json!({ "use": "sig", "y": jwk["y"], "x": jwk["x"] });
        noisy["kty"] = json!("EC");
        noisy["crv"] = json!("P-256");
        assert_eq!(jwk_thumbprint(&noisy).unwrap(), key.thumbprint());
        assert_eq!(
            key.key_authorization("tok"),
            format!("tok.{}", key.thumbprint())
        );
    }

    #[test]
    fn incomplete_or_unknown_jwks_have_no_thumbprint() {
        assert!(jwk_thumbprint(&json!({ "kty": "EC", "crv": "P-256", "x": "AA" })).is_err());
        assert!(jwk_thumbprint(&json!({ "kty": "oct", "k": "AA" })).is_err());
        assert!(jwk_thumbprint(&json!({ "n": "AA", "e": "AQAB" })).is_err());
    }

    #[test]
    fn a_key_round_trips_through_pkcs8_and_signs_verifiably() {
        let key = AccountKey::generate().unwrap();
        let again = AccountKey::from_pkcs8(key.pkcs8_der()).unwrap();
        assert_eq!(again.jwk(), key.jwk());
        let signature = again.sign(b"message").unwrap();
        assert_eq!(signature.len(), 64);
        let mut point = vec![0x04];
        point.extend(
            URL_SAFE_NO_PAD
                .decode(key.jwk()["x"].as_str().unwrap())
                .unwrap(),
        );
        point.extend(
            URL_SAFE_NO_PAD
                .decode(key.jwk()["y"].as_str().unwrap())
                .unwrap(),
        );
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point);
        public.verify(b"message", &signature).unwrap();
        assert!(public.verify(b"another", &signature).is_err());
        assert!(!format!("{key:?}").contains("pkcs8"));
    }

    #[test]
    fn garbage_is_no_key() {
        assert!(matches!(
            AccountKey::from_pkcs8(b"not a key"),
            Err(Error::Crypto(_))
        ));
    }
}
