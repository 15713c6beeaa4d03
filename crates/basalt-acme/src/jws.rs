//! The flattened JWS of every ACME POST (RFC 8555 §6.2, RFC 7515 §7.2.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use serde_json::json;

use crate::AccountKey;
use crate::Error;

/// How a JWS names the key that signed it (RFC 8555 §6.2): by the key itself,
/// for newAccount (and revocation by certificate key), or by the account URL.
#[derive(Clone, Copy, Debug)]
pub enum Signer<'a> {
    /// A `jwk` header member.
    Jwk,
    /// A `kid` header member: the account URL.
    Kid(&'a str),
}

/// Signs `payload` for `url` with `key`: a flattened JWS with the protected
/// header `alg`, `nonce`, `url` and `jwk` or `kid`. `None` is the empty payload
/// of a POST-as-GET (RFC 8555 §6.3).
pub fn sign(
    key: &AccountKey,
    signer: Signer<'_>,
    nonce: &str,
    url: &str,
    payload: Option<&Value>,
) -> Result<Value, Error> {
    let mut header = json!({ "alg": key.alg(), "nonce": nonce, "url": url });
    match signer {
        Signer::Jwk => header["jwk"] = key.jwk().clone(),
        Signer::Kid(kid) => header["kid"] = json!(kid),
    }
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = payload.map_or_else(String::new, |payload| {
        URL_SAFE_NO_PAD.encode(payload.to_string())
    });
    let signature = key.sign(format!("{protected}.{payload}").as_bytes())?;
    Ok(json!({
        "protected": protected,
        "payload": payload,
        "signature": URL_SAFE_NO_PAD.encode(signature),
    }))
}

#[cfg(test)]
mod tests {
    use ring::signature::ECDSA_P256_SHA256_FIXED;
    use ring::signature::UnparsedPublicKey;

    use super::*;

    fn decode(part: &Value) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part.as_str().unwrap()).unwrap()
    }

    /// Checks `jws`'s signature against `key`'s JWK, as a server would.
    fn verify(key: &AccountKey, jws: &Value) {
        let jwk = key.jwk();
        let mut point = vec![0x04];
        point.extend(decode(&jwk["x"]));
        point.extend(decode(&jwk["y"]));
        let input = format!(
            "{}.{}",
            jws["protected"].as_str().unwrap(),
            jws["payload"].as_str().unwrap()
        );
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &decode(&jws["signature"]))
            .expect("the signature verifies");
    }

    #[test]
    fn a_jwk_signed_request_has_the_rfc_8555_shape() {
        let key = AccountKey::generate().unwrap();
        let payload = json!({ "termsOfServiceAgreed": true });
        let jws = sign(
            &key,
            Signer::Jwk,
            "n0nce",
            "https://ca/new-acct",
            Some(&payload),
        )
        .unwrap();
        let members: Vec<&String> = jws.as_object().unwrap().keys().collect();
        assert_eq!(members, ["payload", "protected", "signature"]);
        let header: Value = serde_json::from_slice(&decode(&jws["protected"])).unwrap();
        assert_eq!(
            header,
            json!({
                "alg": "ES256",
                "nonce": "n0nce",
                "url": "https://ca/new-acct",
                "jwk": key.jwk(),
            })
        );
        let body: Value = serde_json::from_slice(&decode(&jws["payload"])).unwrap();
        assert_eq!(body, payload);
        assert_eq!(decode(&jws["signature"]).len(), 64);
        verify(&key, &jws);
    }

    #[test]
    fn a_post_as_get_names_the_account_and_has_an_empty_payload() {
        let key = AccountKey::generate().unwrap();
        let jws = sign(
            &key,
            Signer::Kid("https://ca/acct/7"),
            "n1",
            "https://ca/order/1",
            None,
        )
        .unwrap();
        assert_eq!(jws["payload"], "");
        let header: Value = serde_json::from_slice(&decode(&jws["protected"])).unwrap();
        assert_eq!(header["kid"], "https://ca/acct/7");
        assert!(header.get("jwk").is_none());
        verify(&key, &jws);
    }
}
