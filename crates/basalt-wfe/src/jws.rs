//! Request authentication (RFC 8555 §6.2–6.5): flattened JWS (RFC 7515), account
//! keys as JWKs (RFC 7517) and their thumbprints (RFC 7638).
//!
//! [`Jws`] is an axum extractor: a handler that takes it only runs for a request whose
//! signature verified, whose nonce was fresh and whose `url` matched; any failure is
//! rejected with a problem document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::OriginalUri;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountStatus;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_policy::NamedCurve;
use basalt_policy::ec_spki;
use basalt_policy::ed25519_spki;
use basalt_policy::rsa_spki;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::agreement;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Map;
use serde_json::Value;

use crate::Wfe;
use crate::problem::problem;

/// The `alg` values Basalt accepts, as listed in `badSignatureAlgorithm` problems.
pub(crate) const SUPPORTED_ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// The media type every ACME POST must carry (RFC 8555 §6.2).
pub(crate) const JOSE_CONTENT_TYPE: &str = "application/jose+json";

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus accepted, in bits.
const MAX_RSA_BITS: usize = 4096;

/// The largest RSA public exponent accepted (2^32, as Boulder's key policy).
const MAX_RSA_EXPONENT: u64 = 1 << 32;

/// The length of an Ed25519 public key (RFC 8032 §5.1.5).
const ED25519_KEY_LEN: usize = 32;

/// Decodes base64url without padding, strictly (RFC 7515 §2): padding, other
/// alphabets and non-canonical trailing bits are errors.
pub(crate) fn decode_b64url(field: &str, text: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Error::malformed(format!("{field} is not valid unpadded base64url")))
}

/// A JWS signature algorithm Basalt verifies (RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519 (RFC 8037 §3.1).
    EdDsa,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    fn parse(alg: &str) -> Result<Self, Error> {
        match alg {
            "ES256" => Ok(Self::Es256),
            "ES384" => Ok(Self::Es384),
            "RS256" => Ok(Self::Rs256),
            "EdDSA" => Ok(Self::EdDsa),
            _ => Err(Error::new(
                ErrorKind::BadSignatureAlgorithm,
                format!("JWS signature algorithm {alg:?} is not supported"),
            )),
        }
    }
}

/// An elliptic curve of an EC JWK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    fn named(self) -> NamedCurve {
        match self {
            Self::P256 => NamedCurve::P256,
            Self::P384 => NamedCurve::P384,
        }
    }
}

/// The uncompressed SEC 1 point `04 || x || y`.
fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// Checks that a point lies on its curve. ring offers no direct check, but its ECDH
/// validates the peer's point (coordinates below p, on the curve) before using it.
fn check_on_curve(curve: Curve, x: &[u8], y: &[u8]) -> Result<(), Error> {
    let alg = match curve {
        Curve::P256 => &agreement::ECDH_P256,
        Curve::P384 => &agreement::ECDH_P384,
    };
    let rng = SystemRandom::new();
    let private = agreement::EphemeralPrivateKey::generate(alg, &rng)
        .map_err(|_| Error::internal("cannot generate an ephemeral ecdh key"))?;
    let peer = agreement::UnparsedPublicKey::new(alg, uncompressed_point(x, y));
    agreement::agree_ephemeral(private, &peer, |_| ())
        .map_err(|_| bad_key(format!("the {} point is not on the curve", curve.name())))
}

/// An account's public key, parsed from a JWK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Jwk {
    /// An ECDSA key.
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    /// An RSA key.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An Ed25519 key (RFC 8037 §2).
    Ed25519 { x: Vec<u8> },
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::malformed(format!("jwk has no string member {name:?}")))
}

fn bad_key(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadPublicKey, detail)
}

/// Big-endian bytes without leading zeros.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_len(bytes: &[u8]) -> usize {
    let bytes = strip_zeros(bytes);
    match bytes.first() {
        Some(top) => bytes.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// Checks an RSA public exponent: odd, at least 3, at most 2^32.
fn check_rsa_exponent(e: &[u8]) -> Result<(), Error> {
    let e = strip_zeros(e);
    let value = if e.len() > 8 {
        u64::MAX
    } else {
        e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    if value < 3 || value % 2 == 0 || value > MAX_RSA_EXPONENT {
        return Err(bad_key(
            "the RSA public exponent must be odd, at least 3 and at most 2^32",
        ));
    }
    Ok(())
}

impl Jwk {
    /// Parses a public JWK from a request, refusing private key material and keys
    /// Basalt does not accept (key policy: RSA 2048–4096 bits with a sane exponent,
    /// P-256/P-384 points on their curve, Ed25519).
    pub(crate) fn from_value(value: &Value) -> Result<Self, Error> {
        let key = Self::parse(value)?;
        if let Self::Ec { curve, x, y } = &key {
            check_on_curve(*curve, x, y)?;
        }
        Ok(key)
    }

    /// Parses a JWK, checking everything but that an EC point is on its curve.
    fn parse(value: &Value) -> Result<Self, Error> {
        let Some(jwk) = value.as_object() else {
            return Err(Error::malformed("jwk is not a JSON object"));
        };
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(Error::malformed(format!(
                "jwk contains the private key member {private:?}"
            )));
        }
        match member(jwk, "kty")? {
            "EC" => {
                let curve = match member(jwk, "crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    other => return Err(bad_key(format!("EC curve {other:?} is not supported"))),
                };
                let x = decode_b64url("jwk x", member(jwk, "x")?)?;
                let y = decode_b64url("jwk y", member(jwk, "y")?)?;
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(bad_key(format!(
                        "{} coordinates must be {len} bytes long",
                        curve.name()
                    )));
                }
                Ok(Self::Ec { curve, x, y })
            }
            "RSA" => {
                let n = decode_b64url("jwk n", member(jwk, "n")?)?;
                let e = decode_b64url("jwk e", member(jwk, "e")?)?;
                let bits = bit_len(&n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(bad_key(format!(
                        "RSA modulus is {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                    )));
                }
                check_rsa_exponent(&e)?;
                Ok(Self::Rsa { n, e })
            }
            "OKP" => {
                match member(jwk, "crv")? {
                    "Ed25519" => {}
                    other => return Err(bad_key(format!("OKP curve {other:?} is not supported"))),
                }
                let x = decode_b64url("jwk x", member(jwk, "x")?)?;
                if x.len() != ED25519_KEY_LEN {
                    return Err(bad_key(format!(
                        "Ed25519 keys must be {ED25519_KEY_LEN} bytes long"
                    )));
                }
                Ok(Self::Ed25519 { x })
            }
            other => Err(bad_key(format!("key type {other:?} is not supported"))),
        }
    }

    /// Parses a JWK from JSON text (an account's stored key, checked when it was
    /// registered, so its point is not checked again on every request).
    pub(crate) fn from_json(text: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Error::malformed(format!("jwk is not valid JSON: {err}")))?;
        Self::parse(&value)
    }

    /// The JWK with only its required members in lexicographic order and no
    /// whitespace: the thumbprint input of RFC 7638 §3.2, and how Basalt stores keys.
    pub(crate) fn canonical_json(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        // Every value is a fixed name or base64url text, so none needs JSON escaping.
        match self {
            Self::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64(x),
                b64(y)
            ),
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// The key as a DER SubjectPublicKeyInfo, as it appears in a certificate.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        match self {
            Self::Ec { curve, x, y } => ec_spki(curve.named(), x, y),
            Self::Rsa { n, e } => rsa_spki(n, e),
            Self::Ed25519 { x } => ed25519_spki(x),
        }
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256(canonical JSON)).
    pub(crate) fn thumbprint(&self) -> String {
        let hash = digest::digest(&digest::SHA256, self.canonical_json().as_bytes());
        URL_SAFE_NO_PAD.encode(hash.as_ref())
    }

    /// Checks that `alg` fits this key and that `signature` signs `message`.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> Result<(), Error> {
        let verified = match (alg, self) {
            (
                Algorithm::Es256,
                Self::Ec {
                    curve: Curve::P256,
                    x,
                    y,
                },
            )
            | (
                Algorithm::Es384,
                Self::Ec {
                    curve: Curve::P384,
                    x,
                    y,
                },
            ) => {
                let params = match alg {
                    Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => &signature::ECDSA_P256_SHA256_FIXED,
                };
                signature::UnparsedPublicKey::new(params, uncompressed_point(x, y))
                    .verify(message, sig)
            }
            (Algorithm::Rs256, Self::Rsa { n, e }) => signature::RsaPublicKeyComponents {
                n: strip_zeros(n),
                e: strip_zeros(e),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig),
            (Algorithm::EdDsa, Self::Ed25519 { x }) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig)
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::BadSignatureAlgorithm,
                    format!(
                        "JWS signature algorithm {} does not fit the key type",
                        alg.name()
                    ),
                ));
            }
        };
        verified.map_err(|_| Error::malformed("JWS verification error"))
    }
}

/// The flattened JSON serialization (RFC 7515 §7.2.2); unprotected headers and the
/// general serialization are refused (RFC 8555 §6.2).
#[derive(Deserialize)]
pub(crate) struct Flattened {
    pub(crate) protected: String,
    pub(crate) payload: String,
    pub(crate) signature: String,
}

impl Flattened {
    /// Takes a flattened JWS from JSON. Members RFC 7515 does not define are
    /// ignored (§7.2.1 says they MUST be); `signatures` (the general serialization)
    /// and an unprotected `header` are refused, as RFC 8555 §6.2 requires. The
    /// error is the reason, for the caller to wrap.
    pub(crate) fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(members) = value else {
            return Err("it is not a JSON object".to_owned());
        };
        if members.contains_key("signatures") {
            return Err(
                "the general serialization (signatures) is not accepted; send one flattened JWS"
                    .to_owned(),
            );
        }
        if members.contains_key("header") {
            return Err(
                "an unprotected header member is not accepted; every header parameter must be protected"
                    .to_owned(),
            );
        }
        serde_json::from_value(Value::Object(members)).map_err(|err| err.to_string())
    }

    /// Takes a flattened JWS from a request body.
    pub(crate) fn from_slice(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body).map_err(|err| err.to_string())?;
        Self::from_value(value)
    }
}

/// The protected header members ACME uses (RFC 8555 §6.2–6.4).
#[derive(Deserialize)]
struct Protected {
    alg: String,
    jwk: Option<Value>,
    kid: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    crit: Option<Value>,
}

/// Who signed a request.
#[derive(Clone, Debug)]
pub(crate) enum Signer {
    /// A key given in the `jwk` header (newAccount, revokeCert by certificate key).
    Key(Jwk),
    /// An existing, valid account named by `kid`.
    Account(Account),
}

/// A verified ACME request: its payload and its signer.
#[derive(Clone, Debug)]
pub(crate) struct Jws {
    /// The decoded payload; empty for POST-as-GET (RFC 8555 §6.3).
    pub(crate) payload: Vec<u8>,
    /// Who signed it.
    pub(crate) signer: Signer,
    /// Its `url` header (equal to the request URL).
    pub(crate) url: String,
}

impl Jws {
    /// The signing account; the request must have used `kid`.
    pub(crate) fn account(&self) -> Result<&Account, Error> {
        match &self.signer {
            Signer::Account(account) => Ok(account),
            Signer::Key(_) => Err(Error::malformed(
                "this request must be signed with a kid, not a jwk",
            )),
        }
    }

    /// Whether this is a POST-as-GET (empty payload).
    pub(crate) fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Refuses anything but a POST-as-GET.
    pub(crate) fn require_post_as_get(&self) -> Result<(), Error> {
        if self.is_post_as_get() {
            return Ok(());
        }
        Err(Error::malformed(
            "this resource only accepts POST-as-GET (an empty payload)",
        ))
    }

    /// The payload as JSON.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.payload)
            .map_err(|err| Error::malformed(format!("request payload is invalid: {err}")))
    }
}

/// A flattened JWS taken apart, its signature not yet checked.
struct Parsed {
    /// `protected.payload`, what the signature covers.
    signing_input: String,
    header: Protected,
    alg: Algorithm,
    url: String,
    payload: Vec<u8>,
    sig: Vec<u8>,
}

impl Parsed {
    /// Decodes a flattened JWS; `label` names it in error details.
    fn decode(body: &[u8], label: &str) -> Result<Self, Error> {
        let jws = Flattened::from_slice(body)
            .map_err(|why| Error::malformed(format!("{label} is not a flattened JWS: {why}")))?;
        let protected_bytes = decode_b64url(&format!("{label} protected header"), &jws.protected)?;
        let payload = decode_b64url(&format!("{label} payload"), &jws.payload)?;
        let sig = decode_b64url(&format!("{label} signature"), &jws.signature)?;
        let header: Protected = serde_json::from_slice(&protected_bytes).map_err(|err| {
            Error::malformed(format!("{label} protected header is invalid: {err}"))
        })?;
        if header.crit.is_some() {
            return Err(Error::malformed(format!(
                "{label} crit header parameters are not supported"
            )));
        }
        let alg = Algorithm::parse(&header.alg)?;
        let Some(url) = header.url.clone() else {
            return Err(Error::malformed(format!(
                "{label} protected header has no url"
            )));
        };
        Ok(Self {
            signing_input: format!("{}.{}", jws.protected, jws.payload),
            header,
            alg,
            url,
            payload,
            sig,
        })
    }

    fn verify_with(&self, key: &Jwk) -> Result<(), Error> {
        key.verify(self.alg, self.signing_input.as_bytes(), &self.sig)
    }
}

/// The inner JWS of a key change (RFC 8555 §7.3.5), verified with its own `jwk`.
#[derive(Clone, Debug)]
pub(crate) struct InnerJws {
    /// The new key, which signed it.
    pub(crate) key: Jwk,
    /// Its `url` header.
    pub(crate) url: String,
    /// Its decoded payload (the keyChange object).
    pub(crate) payload: Vec<u8>,
}

/// Verifies the inner JWS of a key change: flattened, signed with a `jwk` (the new
/// key), never a `kid`. Its `nonce`, if any, is ignored and not redeemed; the outer
/// JWS already carried one.
pub(crate) fn verify_inner_jws(body: &[u8]) -> Result<InnerJws, Error> {
    const LABEL: &str = "key-change inner JWS";
    let parsed = Parsed::decode(body, LABEL)?;
    if parsed.header.kid.is_some() {
        return Err(Error::malformed(format!(
            "the {LABEL} must be signed with the new key in jwk, not with a kid"
        )));
    }
    let Some(jwk) = &parsed.header.jwk else {
        return Err(Error::malformed(format!(
            "the {LABEL} must carry the new key in jwk"
        )));
    };
    let key = Jwk::from_value(jwk)?;
    parsed.verify_with(&key).map_err(|err| {
        if err.is(ErrorKind::Malformed) {
            Error::malformed(format!(
                "the {LABEL} signature does not verify with its jwk"
            ))
        } else {
            err
        }
    })?;
    Ok(InnerJws {
        key,
        url: parsed.url,
        payload: parsed.payload,
    })
}

impl Wfe {
    /// Authenticates a POST to `path_and_query` (RFC 8555 §6.2–6.4): the checks run in
    /// the order Boulder uses, the nonce being redeemed only after the signature
    /// verified. The `url` header must match the request URL including its query.
    pub(crate) async fn verify_jws(
        &self,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Jws, Rejection> {
        let parsed = Parsed::decode(body, "JWS")?;
        let (key, signer) = match (&parsed.header.jwk, &parsed.header.kid) {
            (Some(jwk), None) => {
                let key = Jwk::from_value(jwk)?;
                (key.clone(), Signer::Key(key))
            }
            (None, Some(kid)) => {
                let account = self.account_for_kid(kid).await?;
                let key = Jwk::from_json(&account.key_jwk).map_err(|err| {
                    Error::internal(format!(
                        "account {} has an unusable stored key: {}",
                        account.id, err.detail
                    ))
                })?;
                (key, Signer::Account(account))
            }
            (Some(_), Some(_)) => {
                return Err(Error::malformed(
                    "JWS protected header must not carry both jwk and kid",
                )
                .into());
            }
            (None, None) => {
                return Err(
                    Error::malformed("JWS protected header must carry either jwk or kid").into(),
                );
            }
        };
        parsed.verify_with(&key)?;
        let Some(nonce) = &parsed.header.nonce else {
            return Err(
                Error::new(ErrorKind::BadNonce, "JWS protected header has no nonce").into(),
            );
        };
        // RFC 8555 §6.5.2: a nonce that is not base64url is malformed, not merely
        // unknown; it is not worth asking the nonce service about.
        if decode_b64url("JWS nonce", nonce).is_err() {
            return Err(Error::malformed(format!(
                "JWS nonce {nonce:?} is not valid unpadded base64url"
            ))
            .into());
        }
        if !self.nonces.redeem(nonce).await? {
            return Err(Error::new(
                ErrorKind::BadNonce,
                format!("JWS has an invalid anti-replay nonce {nonce:?}"),
            )
            .into());
        }
        let expected = self.url(path_and_query);
        if parsed.url != expected {
            return Err(Error::unauthorized(format!(
                "JWS header url {:?} does not match the request url {expected:?}",
                parsed.url
            ))
            .into());
        }
        Ok(Jws {
            payload: parsed.payload,
            signer,
            url: parsed.url,
        })
    }

    /// The account ID a `kid` names. As in Boulder, a `kid` that is not one of this
    /// server's account URLs, or whose account ID is not a positive integer, is
    /// malformed; only a well-formed one can name an account that does not exist.
    fn account_id_of_kid(&self, kid: &str) -> Result<AccountId, Error> {
        let prefix = self.url("/acme/acct/");
        let Some(id) = kid.strip_prefix(&prefix) else {
            return Err(Error::malformed(format!(
                "JWS kid {kid:?} is not an account URL of this server ({prefix}<id>)"
            )));
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::malformed(format!(
                "JWS kid {kid:?} does not end in a numeric account ID"
            )));
        }
        id.parse().map_err(|_| {
            Error::malformed(format!(
                "JWS kid {kid:?} does not end in a positive account ID"
            ))
        })
    }

    /// The valid account a `kid` names.
    async fn account_for_kid(&self, kid: &str) -> Result<Account, Rejection> {
        let id = self.account_id_of_kid(kid)?;
        if let Some(account) = self.accounts.get(id) {
            return Ok(account);
        }
        let account = match self.sa.account(id).await {
            Ok(account) => account,
            Err(err) if err.is(ErrorKind::NotFound) => {
                return Err(Error::new(
                    ErrorKind::AccountDoesNotExist,
                    format!("account {kid:?} does not exist"),
                )
                .into());
            }
            Err(err) => return Err(err.into()),
        };
        if account.status != AccountStatus::Valid {
            // RFC 8555 §7.3.6: a deactivated account's key authorizes nothing, and
            // the answer is 401, not the 403 other `unauthorized` problems get.
            return Err(Rejection {
                error: Error::unauthorized(format!("account {} is {}", account.id, account.status)),
                status: Some(StatusCode::UNAUTHORIZED),
            });
        }
        self.accounts.put(&account);
        Ok(account)
    }
}

/// Why a JWS was refused, and the HTTP status when it is not the kind's usual one.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) error: Error,
    pub(crate) status: Option<StatusCode>,
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl Rejection {
    pub(crate) fn into_response(self) -> Response {
        match self.status {
            Some(status) => problem_with_status(&self.error, status),
            None => problem(&self.error).into_response(),
        }
    }
}

/// Whether the request's Content-Type is `application/jose+json`.
fn is_jose(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(JOSE_CONTENT_TYPE))
}

/// A problem response with a status other than its kind's usual one.
pub(crate) fn problem_with_status(err: &Error, status: StatusCode) -> Response {
    let mut problem = problem(err);
    problem.status = status.as_u16();
    problem.into_response()
}

impl FromRequest<Arc<Wfe>> for Jws {
    type Rejection = Response;

    async fn from_request(request: Request, wfe: &Arc<Wfe>) -> Result<Self, Response> {
        if !is_jose(&request) {
            return Err(problem_with_status(
                &Error::malformed(format!(
                    "ACME requests must have Content-Type {JOSE_CONTENT_TYPE}"
                )),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
        let uri = match request.extensions().get::<OriginalUri>() {
            Some(OriginalUri(uri)) => uri,
            None => request.uri(),
        };
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let body = Bytes::from_request(request, wfe)
            .await
            .map_err(|rejection| {
                problem_with_status(
                    &Error::malformed(format!("cannot read the request body: {rejection}")),
                    rejection.status(),
                )
            })?;
        wfe.verify_jws(&path, &body)
            .await
            .map_err(Rejection::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1.
    #[test]
    fn rfc7638_thumbprint_vector() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = Jwk::from_value(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(
            key.canonical_json()
                .starts_with(r#"{"e":"AQAB","kty":"RSA","n":"0vx7"#)
        );
    }

    /// The signing input of RFC 7515 Appendix A.2 and A.3.
    const RFC7515_INPUT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

    fn check_vector(key: Value, alg: Algorithm, input: &str, sig: &str) {
        let key = Jwk::from_value(&key).unwrap();
        let sig = decode_b64url("sig", sig).unwrap();
        key.verify(alg, input.as_bytes(), &sig).unwrap();
        let mut tampered = sig.clone();
        tampered[10] ^= 1;
        let err = key.verify(alg, input.as_bytes(), &tampered).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        let err = key.verify(alg, b"other input", &sig).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    /// RFC 7515 Appendix A.2 (RS256).
    #[test]
    fn rfc7515_rs256_vector() {
        let key = serde_json::json!({
            "kty": "RSA",
            "e": "AQAB",
            "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
        });
        let sig = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
        check_vector(key, Algorithm::Rs256, RFC7515_INPUT, sig);
    }

    /// RFC 7515 Appendix A.3 (ES256).
    #[test]
    fn rfc7515_es256_vector() {
        let key = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        let input = RFC7515_INPUT.replacen("eyJhbGciOiJSUzI1NiJ9", "eyJhbGciOiJFUzI1NiJ9", 1);
        let sig = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        check_vector(key, Algorithm::Es256, &input, sig);
    }

    /// A P-256 key pair and its JWK coordinates.
    fn p256() -> (signature::EcdsaKeyPair, Vec<u8>, Vec<u8>) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = signature::KeyPair::public_key(&pair).as_ref().to_vec();
        (pair, point[1..33].to_vec(), point[33..].to_vec())
    }

    #[test]
    fn ec_canonical_json_orders_members() {
        let (_, x, y) = p256();
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let jwk = serde_json::json!({"y": y, "x": x, "kty": "EC", "crv": "P-256", "use": "sig"});
        let key = Jwk::from_value(&jwk).unwrap();
        assert_eq!(
            key.canonical_json(),
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
        );
        assert_eq!(Jwk::from_json(&key.canonical_json()).unwrap(), key);
    }

    #[test]
    fn private_and_unsupported_keys_are_refused() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let private = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": x, "d": x});
        assert_eq!(
            Jwk::from_value(&private).unwrap_err().kind,
            ErrorKind::Malformed
        );
        let short = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AQ", "y": x});
        assert_eq!(
            Jwk::from_value(&short).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
        let curve = serde_json::json!({"kty": "EC", "crv": "P-521", "x": x, "y": x});
        assert_eq!(
            Jwk::from_value(&curve).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
        let oct = serde_json::json!({"kty": "oct"});
        assert_eq!(
            Jwk::from_value(&oct).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
        let small_rsa = serde_json::json!({
            "kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128])
        });
        assert_eq!(
            Jwk::from_value(&small_rsa).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
        let padded = serde_json::json!({"kty": "EC", "crv": "P-256", "x": format!("{x}="), "y": x});
        assert_eq!(
            Jwk::from_value(&padded).unwrap_err().kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn strict_base64url() {
        assert_eq!(decode_b64url("f", "AQAB").unwrap(), vec![1, 0, 1]);
        assert_eq!(decode_b64url("f", "").unwrap(), Vec::<u8>::new());
        for bad in ["AQ==", "AQ+/", "A Q", "A", "AR"] {
            assert!(decode_b64url("f", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ecdsa_signatures_verify() {
        use ring::rand::SystemRandom;
        use ring::signature::EcdsaKeyPair;
        use ring::signature::KeyPair;

        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let point = pair.public_key().as_ref();
        let key = Jwk::Ec {
            curve: Curve::P256,
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        };
        let sig = pair.sign(&rng, b"message").unwrap();
        key.verify(Algorithm::Es256, b"message", sig.as_ref())
            .unwrap();
        let err = key
            .verify(Algorithm::Es256, b"massage", sig.as_ref())
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        let err = key
            .verify(Algorithm::Rs256, b"message", sig.as_ref())
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadSignatureAlgorithm);
        let err = key
            .verify(Algorithm::Es384, b"message", sig.as_ref())
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadSignatureAlgorithm);
    }

    #[test]
    fn points_off_the_curve_are_bad_public_keys() {
        let (_, x, y) = p256();
        let mut bad_y = y.clone();
        bad_y[31] ^= 1;
        let jwk = |x: &[u8], y: &[u8]| {
            serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
        };
        Jwk::from_value(&jwk(&x, &y)).unwrap();
        for (x, y) in [
            (&x, &bad_y),
            (&vec![0u8; 32], &vec![0u8; 32]),
            (&vec![0xff; 32], &y),
        ] {
            let err = Jwk::from_value(&jwk(x, y)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadPublicKey, "{}", err.detail);
        }
    }

    #[test]
    fn rsa_key_policy() {
        let rsa = |bits: usize, e: &[u8]| {
            let mut n = vec![0xffu8; bits / 8];
            n[0] = 0x80;
            serde_json::json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
        };
        for bits in [2048, 3072, 4096] {
            Jwk::from_value(&rsa(bits, &[1, 0, 1])).unwrap();
        }
        Jwk::from_value(&rsa(2048, &[3])).unwrap();
        Jwk::from_value(&rsa(2048, &[0, 0, 0, 0xff, 0xff, 0xff, 0xff])).unwrap();
        let refused: [(usize, &[u8]); 7] = [
            (1024, &[1, 0, 1]),
            (2040, &[1, 0, 1]),
            (4104, &[1, 0, 1]),
            (2048, &[1]),
            (2048, &[0]),
            (2048, &[1, 0, 0]),
            (2048, &[1, 0, 0, 0, 1]),
        ];
        for (bits, e) in refused {
            assert_eq!(
                Jwk::from_value(&rsa(bits, e)).unwrap_err().kind,
                ErrorKind::BadPublicKey,
                "{bits} {e:?}"
            );
        }
    }

    /// RFC 8037 Appendix A.1–A.4: the Ed25519 key, its thumbprint and a signature.
    #[test]
    fn rfc8037_ed25519_vectors() {
        let key = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        });
        let parsed = Jwk::from_value(&key).unwrap();
        assert_eq!(
            parsed.canonical_json(),
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
        );
        assert_eq!(
            parsed.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        check_vector(
            key,
            Algorithm::EdDsa,
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
        );
        let err = parsed.verify(Algorithm::Es256, b"x", &[0; 64]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadSignatureAlgorithm);
        let short = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "AQID"});
        assert_eq!(
            Jwk::from_value(&short).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
        let x448 = serde_json::json!({"kty": "OKP", "crv": "Ed448", "x": "AQID"});
        assert_eq!(
            Jwk::from_value(&x448).unwrap_err().kind,
            ErrorKind::BadPublicKey
        );
    }

    #[test]
    fn inner_jws_must_use_jwk() {
        let (pair, x, y) = p256();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&x), "y": URL_SAFE_NO_PAD.encode(&y)});
        let sign = |header: Value, payload: &str| {
            let protected = URL_SAFE_NO_PAD.encode(header.to_string());
            let payload = URL_SAFE_NO_PAD.encode(payload);
            let input = format!("{protected}.{payload}");
            let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            serde_json::json!({"protected": protected, "payload": payload,
                "signature": URL_SAFE_NO_PAD.encode(sig.as_ref())})
            .to_string()
        };
        let body = sign(
            serde_json::json!({"alg": "ES256", "jwk": jwk, "url": "u", "nonce": "ignored"}),
            "{}",
        );
        let inner = verify_inner_jws(body.as_bytes()).unwrap();
        assert_eq!(inner.url, "u");
        assert_eq!(inner.payload, b"{}");
        assert_eq!(inner.key, Jwk::from_value(&jwk).unwrap());
        for header in [
            serde_json::json!({"alg": "ES256", "kid": "k", "url": "u"}),
            serde_json::json!({"alg": "ES256", "url": "u"}),
            serde_json::json!({"alg": "ES256", "jwk": jwk}),
        ] {
            let err = verify_inner_jws(sign(header, "{}").as_bytes()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Malformed, "{}", err.detail);
            assert!(err.detail.contains("inner JWS"), "{}", err.detail);
        }
        let mut tampered: Value = serde_json::from_str(&body).unwrap();
        tampered["payload"] = "e30".into();
        tampered["signature"] = URL_SAFE_NO_PAD.encode([1u8; 64]).into();
        let err = verify_inner_jws(tampered.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn four_algorithms() {
        for alg in SUPPORTED_ALGORITHMS {
            Algorithm::parse(alg).unwrap();
        }
        for alg in [
            "none", "HS256", "RS512", "ES512", "Ed25519", "eddsa", "es256", "",
        ] {
            assert_eq!(
                Algorithm::parse(alg).unwrap_err().kind,
                ErrorKind::BadSignatureAlgorithm
            );
        }
    }
}
