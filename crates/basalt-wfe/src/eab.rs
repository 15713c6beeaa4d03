//! External account binding (RFC 8555 §7.3.4): a newAccount request proves that
//! its sender holds a MAC key the operator handed out, by MACing the account key.
//!
//! The binding is a flattened JWS whose protected header carries an HMAC `alg`
//! (HS256, HS384 or HS512), the key identifier as `kid`, the newAccount URL as
//! `url` and no `nonce`; its payload is the account's JWK. A key binds one account
//! only; the SA records the binding when the RA creates the account.

use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::ErrorKind;
use ring::hmac;
use serde::Deserialize;
use serde_json::Value;

use crate::Wfe;
use crate::jws::Flattened;
use crate::jws::Jwk;
use crate::jws::decode_b64url;

/// The MAC algorithms a binding may use (RFC 8555 §7.3.4, RFC 7518 §3.2).
pub(crate) const EAB_ALGORITHMS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// The detail of every refusal that could tell whether a key exists or is used.
const UNUSABLE_KEY: &str = "external account binding key is unknown, revoked or already used";

/// The protected header of a binding.
#[derive(Deserialize)]
struct Protected {
    alg: String,
    kid: Option<String>,
    url: Option<String>,
    nonce: Option<Value>,
    jwk: Option<Value>,
    crit: Option<Value>,
}

/// A binding whose structure was checked, its MAC not yet.
#[derive(Debug)]
pub(crate) struct Binding {
    /// The EAB key identifier.
    pub(crate) key_id: String,
    algorithm: hmac::Algorithm,
    signing_input: String,
    mac: Vec<u8>,
}

fn malformed(why: &str) -> Error {
    Error::malformed(format!("the external account binding is invalid: {why}"))
}

impl Binding {
    /// Parses a binding and checks that it binds `account_key` for `url`.
    pub(crate) fn parse(value: &Value, account_key: &Jwk, url: &str) -> Result<Self, Error> {
        let jws = Flattened::from_value(value.clone())
            .map_err(|why| malformed(&format!("it is not a flattened JWS: {why}")))?;
        let header = decode_b64url(
            "the external account binding protected header",
            &jws.protected,
        )?;
        let header: Protected = serde_json::from_slice(&header)
            .map_err(|err| malformed(&format!("its protected header is invalid: {err}")))?;
        let algorithm = match header.alg.as_str() {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            other => {
                return Err(Error::new(
                    ErrorKind::BadSignatureAlgorithm,
                    format!(
                        "external account binding algorithm {other:?} is not supported; use one of {}",
                        EAB_ALGORITHMS.join(", ")
                    ),
                ));
            }
        };
        if header.crit.is_some() {
            return Err(malformed("crit header parameters are not supported"));
        }
        if header.nonce.is_some() {
            return Err(malformed("its protected header must not carry a nonce"));
        }
        if header.jwk.is_some() {
            return Err(malformed(
                "its protected header must name the MAC key with kid, not carry a jwk",
            ));
        }
        let key_id = match header.kid {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(malformed("its protected header has no kid")),
        };
        if header.url.as_deref() != Some(url) {
            return Err(malformed(&format!(
                "its url must be the newAccount url {url:?}"
            )));
        }
        let payload = decode_b64url("the external account binding payload", &jws.payload)?;
        let bound: Value = serde_json::from_slice(&payload)
            .map_err(|_| malformed("its payload is not the account key as a JWK"))?;
        let bound = Jwk::from_value(&bound).map_err(|err| {
            malformed(&format!("its payload is not a usable JWK: {}", err.detail))
        })?;
        if bound.thumbprint() != account_key.thumbprint() {
            return Err(malformed(
                "its payload is not the key that signed the request",
            ));
        }
        let mac = decode_b64url("the external account binding signature", &jws.signature)?;
        Ok(Self {
            key_id,
            algorithm,
            signing_input: format!("{}.{}", jws.protected, jws.payload),
            mac,
        })
    }

    /// Checks the MAC in constant time with the operator's key.
    pub(crate) fn verify(&self, key: &EabKey) -> Result<(), Error> {
        let key = hmac::Key::new(self.algorithm, &key.hmac_key);
        hmac::verify(&key, self.signing_input.as_bytes(), &self.mac)
            .map_err(|_| Error::unauthorized("the external account binding MAC does not verify"))
    }
}

impl Wfe {
    /// Checks a newAccount's external account binding against the SA's key, and
    /// returns the key identifier to bind the account to.
    pub(crate) async fn check_binding(
        &self,
        value: &Value,
        account_key: &Jwk,
        url: &str,
    ) -> Result<String, Error> {
        let binding = Binding::parse(value, account_key, url)?;
        let key = match self.sa.eab_key(&binding.key_id).await {
            Ok(key) => key,
            Err(err) if err.is(ErrorKind::NotFound) => {
                return Err(Error::unauthorized(UNUSABLE_KEY));
            }
            Err(err) => return Err(err),
        };
        // The MAC first, so only the key's holder learns whether it is still usable.
        binding.verify(&key)?;
        if key.revoked || key.account_id.is_some() {
            return Err(Error::unauthorized(UNUSABLE_KEY));
        }
        Ok(binding.key_id)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    const URL: &str = "https://acme.test/acme/new-account";

    fn account_key() -> (Jwk, Value) {
        let x = URL_SAFE_NO_PAD.encode([0x11; 32]);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        (Jwk::from_value(&jwk).unwrap(), jwk)
    }

    fn bind(header: &Value, payload: &Value, key: &[u8], alg: hmac::Algorithm) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        let tag = hmac::sign(
            &hmac::Key::new(alg, key),
            format!("{protected}.{payload}").as_bytes(),
        );
        json!({"protected": protected, "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(tag.as_ref())})
    }

    fn eab_key(hmac_key: &[u8]) -> EabKey {
        EabKey {
            key_id: "kid-1".into(),
            hmac_key: hmac_key.to_vec(),
            comment: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked: false,
            account_id: None,
        }
    }

    #[test]
    fn every_hmac_algorithm_verifies() {
        let (key, jwk) = account_key();
        for (name, alg) in [
            ("HS256", hmac::HMAC_SHA256),
            ("HS384", hmac::HMAC_SHA384),
            ("HS512", hmac::HMAC_SHA512),
        ] {
            let value = bind(
                &json!({"alg": name, "kid": "kid-1", "url": URL}),
                &jwk,
                &[7; 32],
                alg,
            );
            let binding = Binding::parse(&value, &key, URL).unwrap();
            assert_eq!(binding.key_id, "kid-1");
            binding.verify(&eab_key(&[7; 32])).unwrap();
            let err = binding.verify(&eab_key(&[8; 32])).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized, "{name}");
        }
        // A MAC made with another hash of the same name does not verify.
        let value = bind(
            &json!({"alg": "HS512", "kid": "kid-1", "url": URL}),
            &jwk,
            &[7; 32],
            hmac::HMAC_SHA256,
        );
        let binding = Binding::parse(&value, &key, URL).unwrap();
        assert!(binding.verify(&eab_key(&[7; 32])).is_err());
    }

    #[test]
    fn structural_refusals() {
        let (key, jwk) = account_key();
        let ok = json!({"alg": "HS256", "kid": "kid-1", "url": URL});
        let cases = [
            (
                json!({"alg": "ES256", "kid": "kid-1", "url": URL}),
                ErrorKind::BadSignatureAlgorithm,
            ),
            (
                json!({"alg": "none", "kid": "kid-1", "url": URL}),
                ErrorKind::BadSignatureAlgorithm,
            ),
            (json!({"alg": "HS256", "url": URL}), ErrorKind::Malformed),
            (
                json!({"alg": "HS256", "kid": "", "url": URL}),
                ErrorKind::Malformed,
            ),
            (
                json!({"alg": "HS256", "kid": "kid-1"}),
                ErrorKind::Malformed,
            ),
            (
                json!({"alg": "HS256", "kid": "kid-1", "url": "https://other/"}),
                ErrorKind::Malformed,
            ),
            (
                json!({"alg": "HS256", "kid": "kid-1", "url": URL, "nonce": "n"}),
                ErrorKind::Malformed,
            ),
            (
                json!({"alg": "HS256", "kid": "kid-1", "url": URL, "crit": ["x"]}),
                ErrorKind::Malformed,
            ),
            (
                json!({"alg": "HS256", "kid": "kid-1", "url": URL, "jwk": jwk}),
                ErrorKind::Malformed,
            ),
        ];
        for (header, kind) in cases {
            let value = bind(&header, &jwk, &[7; 32], hmac::HMAC_SHA256);
            let err = Binding::parse(&value, &key, URL).unwrap_err();
            assert_eq!(err.kind, kind, "{header}");
        }
        let other =
            json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([0x22; 32])});
        let value = bind(&ok, &other, &[7; 32], hmac::HMAC_SHA256);
        let err = Binding::parse(&value, &key, URL).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        assert!(err.detail.contains("not the key"), "{}", err.detail);
        for bad in [
            json!("x"),
            json!({"protected": "e30", "payload": "", "signature": "", "header": {}}),
            json!({"payload": "", "signatures": []}),
        ] {
            let err = Binding::parse(&bad, &key, URL).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Malformed);
        }
        // RFC 7515 §7.2.1: members the binding does not define are ignored.
        let mut extra = bind(&ok, &jwk, &[7; 32], hmac::HMAC_SHA256);
        extra["x-extra"] = json!({"anything": 1});
        let binding = Binding::parse(&extra, &key, URL).unwrap();
        binding.verify(&eab_key(&[7; 32])).unwrap();
    }
}
