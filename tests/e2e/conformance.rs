//! A battery of malformed ACME requests against the running WFE, one table entry
//! per case: each names how the request is broken and the exact HTTP status and
//! problem type the server must answer (RFC 8555 §6.2–§6.7, RFC 7515, the
//! profiles draft, RFC 9773), and every answer must carry a `Replay-Nonce`.
//! Every case runs; the test fails at the end listing each mismatch with the
//! server's answer.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::json;

use crate::certs::rfc3339;
use crate::certs::wall_clock_now;
use crate::flow::RawAccount;
use crate::flow::order_payload;
use crate::harness::DevCa;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::jws::AccountKey;
use crate::jws::Acme;

const MALFORMED: &str = "urn:ietf:params:acme:error:malformed";
const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
const BAD_SIG_ALG: &str = "urn:ietf:params:acme:error:badSignatureAlgorithm";
const UNAUTHORIZED: &str = "urn:ietf:params:acme:error:unauthorized";
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";
const REJECTED_IDENTIFIER: &str = "urn:ietf:params:acme:error:rejectedIdentifier";
const UNSUPPORTED_IDENTIFIER: &str = "urn:ietf:params:acme:error:unsupportedIdentifier";
const BAD_CSR: &str = "urn:ietf:params:acme:error:badCSR";
const ORDER_NOT_READY: &str = "urn:ietf:params:acme:error:orderNotReady";
const INVALID_PROFILE: &str = "urn:ietf:params:acme:error:invalidProfile";
const BAD_REVOCATION_REASON: &str = "urn:ietf:params:acme:error:badRevocationReason";

/// The name of the battery's orders.
const ORDER_NAME: &str = "conformance.example.com";
/// The name of the orders finalized by the CSR cases.
const READY_NAME: &str = "conformance-ready.example.com";
/// The name of the certificate the revocation cases name.
const REVOKE_NAME: &str = "conformance-revoke.example.com";
/// Larger than the WFE's 64 KiB body limit.
const HUGE_PADDING: usize = 70 * 1024;

/// Which resource a case posts to, and what a well-formed request there holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Target {
    /// newAccount, signed with a fresh key's `jwk`.
    NewAccount,
    /// newOrder for [`ORDER_NAME`], signed with the account's `kid`.
    #[default]
    NewOrder,
    /// newOrder with `?x=1` appended to the request URL.
    NewOrderWithQuery,
    /// The finalize URL of a `pending` order.
    FinalizePending,
    /// The finalize URL of a fresh `ready` order for [`READY_NAME`].
    FinalizeReady,
    /// revokeCert of the battery's certificate, signed with the account's `kid`.
    Revoke,
}

/// How the request names its key.
#[derive(Clone, Copy, Debug, Default)]
enum Key {
    /// What the target wants: `jwk` for newAccount, `kid` elsewhere.
    #[default]
    Usual,
    /// A fresh key in `jwk`.
    Jwk,
    /// The account's `kid`.
    Kid,
    /// Both `jwk` and `kid`.
    Both,
    /// Neither.
    Neither,
    /// A well-formed account URL of an account that does not exist.
    UnknownKid,
    /// A `kid` that is not a URL.
    KidNotUrl,
    /// The account URL prefix followed by something other than an ID.
    KidBadId,
    /// A `jwk` with the private key member `d`.
    JwkWithD,
}

#[derive(Clone, Copy, Debug, Default)]
enum Nonce {
    #[default]
    Fresh,
    Missing,
    /// Well-formed base64url the server never issued.
    Unknown,
    /// A nonce already redeemed by an earlier request.
    Replayed,
    Empty,
    NotBase64,
}

/// The `url` header.
#[derive(Clone, Copy, Debug, Default)]
enum Url {
    /// Exactly the request URL.
    #[default]
    Same,
    Missing,
    /// Another resource's URL on this server.
    OtherPath,
    /// This path on another host.
    OtherHost,
    /// The request URL with `?x=1` added.
    AddQuery,
    /// The request URL without its query.
    DropQuery,
}

#[derive(Clone, Debug, Default)]
enum Payload {
    /// The target's well-formed payload.
    #[default]
    Usual,
    Json(Value),
    Raw(&'static [u8]),
    /// The empty payload of a POST-as-GET.
    Empty,
    /// `{"csr": …}` with a CSR for names other than the order's.
    CsrOtherNames,
    /// The usual payload with a member that pushes the body over 64 KiB.
    Huge,
}

#[derive(Clone, Copy, Debug, Default)]
enum Signature {
    #[default]
    Good,
    /// A valid signature by another key.
    OtherKey,
    Truncated,
    Empty,
}

/// The JWS serialization.
#[derive(Clone, Copy, Debug, Default)]
enum Shape {
    #[default]
    Flattened,
    /// `protected.payload.signature` as the body.
    Compact,
    /// The general serialization with a `signatures` array.
    General,
    /// A flattened JWS with an unprotected `header`.
    UnprotectedHeader,
    /// A flattened JWS with a member RFC 7515 does not define.
    ExtraMember,
    /// A flattened JWS without this member.
    Without(&'static str),
    /// An empty body.
    EmptyBody,
    /// A body that is not JSON.
    NotJson,
    /// A GET without a body.
    Get,
}

/// One request: the usual well-formed request to `target` with the named parts
/// broken.
#[derive(Clone, Debug, Default)]
struct Req {
    target: Target,
    key: Key,
    /// Replaces the key's `alg`.
    alg: Option<&'static str>,
    nonce: Nonce,
    url: Url,
    payload: Payload,
    signature: Signature,
    shape: Shape,
    /// `Some("")`: no Content-Type header; `None`: `application/jose+json`.
    content_type: Option<&'static str>,
}

/// One table entry.
struct Case {
    name: &'static str,
    req: Req,
    status: u16,
    /// The problem type; `None` when the request must succeed.
    kind: Option<&'static str>,
}

fn case(name: &'static str, req: Req, status: u16, kind: &'static str) -> Case {
    Case {
        name,
        req,
        status,
        kind: Some(kind),
    }
}

fn accepted(name: &'static str, req: Req, status: u16) -> Case {
    Case {
        name,
        req,
        status,
        kind: None,
    }
}

fn account(req: Req) -> Req {
    Req {
        target: Target::NewAccount,
        ..req
    }
}

fn ids(identifiers: Value) -> Payload {
    Payload::Json(json!({ "identifiers": identifiers }))
}

fn dns(name: &str) -> Value {
    json!([{ "type": "dns", "value": name }])
}

fn with_order_fields(fields: Value) -> Payload {
    let mut payload = order_payload(&[ORDER_NAME]);
    if let (Some(payload), Some(fields)) = (payload.as_object_mut(), fields.as_object()) {
        payload.extend(fields.clone());
    }
    Payload::Json(payload)
}

/// The battery. Where RFC 8555 fixes the answer it is cited; elsewhere the
/// expectation is Basalt's documented behaviour (Boulder's, mostly).
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let r = Req::default;
    let now = wall_clock_now();
    let d = |days: i64| rfc3339(now + days * 86_400);
    let long_label = format!("{}.example.com", "a".repeat(64));
    vec![
        // Controls: the machinery makes well-formed requests.
        accepted("control: newAccount", account(r()), 201),
        accepted("control: newOrder", r(), 201),
        // RFC 8555 §6.2: flattened JSON serialization only, one signature, no
        // unprotected header.
        case("compact serialization", Req { shape: Shape::Compact, ..r() }, 400, MALFORMED),
        case("general serialization with signatures", Req { shape: Shape::General, ..r() }, 400, MALFORMED),
        case("no protected member", Req { shape: Shape::Without("protected"), ..r() }, 400, MALFORMED),
        case("no payload member", Req { shape: Shape::Without("payload"), ..r() }, 400, MALFORMED),
        case("no signature member", Req { shape: Shape::Without("signature"), ..r() }, 400, MALFORMED),
        case("unprotected header member", Req { shape: Shape::UnprotectedHeader, ..r() }, 400, MALFORMED),
        // RFC 7515 §7.2.1: members an implementation does not understand MUST be ignored.
        accepted("extra member is ignored", Req { shape: Shape::ExtraMember, ..r() }, 201),
        // RFC 8555 §6.2: alg MUST NOT be none or a MAC; unsupported → 400 badSignatureAlgorithm.
        case("alg none", Req { alg: Some("none"), ..r() }, 400, BAD_SIG_ALG),
        case("alg HS256", Req { alg: Some("HS256"), ..r() }, 400, BAD_SIG_ALG),
        case("alg RS512", Req { alg: Some("RS512"), ..r() }, 400, BAD_SIG_ALG),
        case("alg unknown", Req { alg: Some("XY999"), ..r() }, 400, BAD_SIG_ALG),
        case("alg empty", Req { alg: Some(""), ..r() }, 400, BAD_SIG_ALG),
        case("alg RS256 with an EC key", Req { alg: Some("RS256"), ..r() }, 400, BAD_SIG_ALG),
        case("alg ES384 with a P-256 key", Req { alg: Some("ES384"), ..r() }, 400, BAD_SIG_ALG),
        case("alg EdDSA with an EC key (newAccount)", account(Req { alg: Some("EdDSA"), ..r() }), 400, BAD_SIG_ALG),
        // RFC 8555 §6.2: jwk and kid are exclusive; newAccount needs jwk, the rest kid.
        case("jwk and kid", Req { key: Key::Both, ..r() }, 400, MALFORMED),
        case("neither jwk nor kid", Req { key: Key::Neither, ..r() }, 400, MALFORMED),
        case("jwk on a kid endpoint", Req { key: Key::Jwk, ..r() }, 400, MALFORMED),
        case("kid on newAccount", account(Req { key: Key::Kid, ..r() }), 400, MALFORMED),
        case("kid of an unknown account", Req { key: Key::UnknownKid, ..r() }, 400, ACCOUNT_DOES_NOT_EXIST),
        case("kid that is not a URL", Req { key: Key::KidNotUrl, ..r() }, 400, MALFORMED),
        case("kid with a non-numeric account ID", Req { key: Key::KidBadId, ..r() }, 400, MALFORMED),
        case("jwk with private member d", account(Req { key: Key::JwkWithD, ..r() }), 400, MALFORMED),
        // Signatures.
        case("signature by another key", Req { signature: Signature::OtherKey, ..r() }, 400, MALFORMED),
        case("signature truncated", Req { signature: Signature::Truncated, ..r() }, 400, MALFORMED),
        case("signature empty", Req { signature: Signature::Empty, ..r() }, 400, MALFORMED),
        case("signature by another key (newAccount)", account(Req { signature: Signature::OtherKey, ..r() }), 400, MALFORMED),
        // RFC 8555 §6.5: a missing or unacceptable nonce is 400 badNonce; §6.5.2: a
        // nonce that is not base64url is rejected as malformed.
        case("nonce missing", Req { nonce: Nonce::Missing, ..r() }, 400, BAD_NONCE),
        case("nonce unknown", Req { nonce: Nonce::Unknown, ..r() }, 400, BAD_NONCE),
        case("nonce replayed", Req { nonce: Nonce::Replayed, ..r() }, 400, BAD_NONCE),
        case("nonce empty", Req { nonce: Nonce::Empty, ..r() }, 400, BAD_NONCE),
        case("nonce not base64url", Req { nonce: Nonce::NotBase64, ..r() }, 400, MALFORMED),
        case("nonce missing (newAccount)", account(Req { nonce: Nonce::Missing, ..r() }), 400, BAD_NONCE),
        // RFC 8555 §6.4: url is required and must equal the request URL, else unauthorized.
        case("url missing", Req { url: Url::Missing, ..r() }, 400, MALFORMED),
        case("url of another resource", Req { url: Url::OtherPath, ..r() }, 403, UNAUTHORIZED),
        case("url on another host", Req { url: Url::OtherHost, ..r() }, 403, UNAUTHORIZED),
        case("url with a query the request lacks", Req { url: Url::AddQuery, ..r() }, 403, UNAUTHORIZED),
        case("url without the request's query", Req { target: Target::NewOrderWithQuery, url: Url::DropQuery, ..r() }, 403, UNAUTHORIZED),
        // RFC 8555 §6.2: Content-Type must be application/jose+json, else 415.
        case("content type missing", Req { content_type: Some(""), ..r() }, 415, MALFORMED),
        case("content type text/plain", Req { content_type: Some("text/plain"), ..r() }, 415, MALFORMED),
        case("content type application/json", Req { content_type: Some("application/json"), ..r() }, 415, MALFORMED),
        // RFC 8555 §6.3: resources other than the directory and newNonce refuse GET.
        case("GET on newOrder", Req { shape: Shape::Get, ..r() }, 405, MALFORMED),
        // Bodies.
        case("body empty", Req { shape: Shape::EmptyBody, ..r() }, 400, MALFORMED),
        case("body not JSON", Req { shape: Shape::NotJson, ..r() }, 400, MALFORMED),
        case("body over 64 KiB", Req { payload: Payload::Huge, ..r() }, 413, MALFORMED),
        case("newOrder payload not JSON", Req { payload: Payload::Raw(b"not json"), ..r() }, 400, MALFORMED),
        case("newOrder payload empty (POST-as-GET)", Req { payload: Payload::Empty, ..r() }, 400, MALFORMED),
        case("newOrder payload without identifiers", Req { payload: Payload::Json(json!({})), ..r() }, 400, MALFORMED),
        // Identifiers (RFC 8555 §7.4, Basalt's identifier policy).
        case("identifiers empty", Req { payload: ids(json!([])), ..r() }, 400, MALFORMED),
        case("identifier uppercase", Req { payload: ids(dns("UPPER.example.com")), ..r() }, 400, REJECTED_IDENTIFIER),
        case("identifier with a trailing dot", Req { payload: ids(dns("dot.example.com.")), ..r() }, 400, MALFORMED),
        case("IP identifier under classic", Req { payload: ids(json!([{ "type": "ip", "value": "127.0.0.1" }])), ..r() }, 400, REJECTED_IDENTIFIER),
        // `*.example.com` is a valid order (dns-01 authorizes it); a `*` anywhere
        // but as the whole leftmost label is not.
        case("wildcard not the whole leftmost label", Req { payload: ids(dns("a*.example.com")), ..r() }, 400, MALFORMED),
        case("identifier label over 63 characters", Req { payload: ids(dns(&long_label)), ..r() }, 400, MALFORMED),
        case("identifier type email", Req { payload: ids(json!([{ "type": "email", "value": "a@example.com" }])), ..r() }, 400, UNSUPPORTED_IDENTIFIER),
        // Profiles and validity (draft-ietf-acme-profiles, RFC 8555 §7.4).
        case("profile unknown", Req { payload: with_order_fields(json!({ "profile": "no-such-profile" })), ..r() }, 400, INVALID_PROFILE),
        case("notAfter beyond the profile", Req { payload: with_order_fields(json!({ "notAfter": d(100) })), ..r() }, 400, MALFORMED),
        case("notAfter beyond shortlived", Req { payload: with_order_fields(json!({ "profile": "shortlived", "notAfter": d(8) })), ..r() }, 400, MALFORMED),
        case("notBefore not RFC 3339", Req { payload: with_order_fields(json!({ "notBefore": "tomorrow" })), ..r() }, 400, MALFORMED),
        case("notAfter before notBefore", Req { payload: with_order_fields(json!({ "notBefore": d(2), "notAfter": d(1) })), ..r() }, 400, MALFORMED),
        // RFC 9773 §5: replaces names a certID.
        case("replaces not a certID", Req { payload: with_order_fields(json!({ "replaces": "not-a-cert-id" })), ..r() }, 400, MALFORMED),
        // Finalize (RFC 8555 §7.4).
        case("finalize of a pending order", Req { target: Target::FinalizePending, ..r() }, 403, ORDER_NOT_READY),
        case("finalize: csr not base64url", Req { target: Target::FinalizeReady, payload: Payload::Json(json!({ "csr": "!!not base64!!" })), ..r() }, 400, MALFORMED),
        case("finalize: csr not a CSR", Req { target: Target::FinalizeReady, payload: Payload::Json(json!({ "csr": URL_SAFE_NO_PAD.encode(b"this is not a CSR") })), ..r() }, 400, BAD_CSR),
        case("finalize: CSR names not the order's", Req { target: Target::FinalizeReady, payload: Payload::CsrOtherNames, ..r() }, 400, BAD_CSR),
        case("finalize: no csr member", Req { target: Target::FinalizeReady, payload: Payload::Json(json!({})), ..r() }, 400, MALFORMED),
        // Revocation (RFC 8555 §7.6, RFC 5280 §5.3.1).
        case("revoke with reason 7 (unassigned)", Req { target: Target::Revoke, payload: Payload::Json(json!({ "reason": 7 })), ..r() }, 400, BAD_REVOCATION_REASON),
        case("revoke with reason 99", Req { target: Target::Revoke, payload: Payload::Json(json!({ "reason": 99 })), ..r() }, 400, BAD_REVOCATION_REASON),
        case("revoke a certificate that is not DER", Req { target: Target::Revoke, payload: Payload::Json(json!({ "certificate": URL_SAFE_NO_PAD.encode(b"not a certificate") })), ..r() }, 400, MALFORMED),
    ]
}

/// What the battery needs from the running CA.
struct Battery {
    acme: Acme,
    account: RawAccount,
    http01: Http01,
    /// The finalize URL of a pending order.
    pending_finalize: String,
    /// The DER of a certificate the account holds.
    certificate: Vec<u8>,
}

/// A request ready to send.
struct Built {
    method: Method,
    url: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// What came back.
struct Outcome {
    status: StatusCode,
    content_type: String,
    nonce: Option<String>,
    text: String,
    json: Value,
}

impl Battery {
    async fn set_up(ca: &DevCa) -> Self {
        let acme = Acme::new(ca).await;
        let http01 = Http01::start(ca.http01_port).await;
        let account = RawAccount::create(&acme).await;
        let pending = account.new_order(&order_payload(&[ORDER_NAME])).await;
        pending.expect_status(StatusCode::CREATED, "a pending order");
        assert_eq!(pending.json["status"], "pending", "{}", pending.text);
        let pending_finalize = pending.json["finalize"]
            .as_str()
            .expect("a finalize URL")
            .to_owned();
        let issued = account.issue(&http01, &[REVOKE_NAME], &json!({})).await;
        Self {
            acme,
            account,
            http01,
            pending_finalize,
            certificate: issued.leaf_der,
        }
    }

    /// A nonce that a successful request has already redeemed.
    async fn used_nonce(&self) -> String {
        let nonce = self.acme.nonce().await;
        let header =
            self.account
                .key
                .header(Some(&self.account.kid), Some(&nonce), &self.account.kid);
        let body = self.account.key.jws(&header, None);
        let response = self.acme.post(&self.account.kid, &body).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "POST-as-GET of the account to use up a nonce"
        );
        nonce
    }

    async fn build(&self, req: &Req) -> Built {
        let new_order = self.acme.url("newOrder");
        let (url, usual_payload) = match req.target {
            Target::NewAccount => (
                self.acme.url("newAccount"),
                json!({ "termsOfServiceAgreed": true }),
            ),
            Target::NewOrder => (new_order, order_payload(&[ORDER_NAME])),
            Target::NewOrderWithQuery => (format!("{new_order}?x=1"), order_payload(&[ORDER_NAME])),
            Target::FinalizePending => (
                self.pending_finalize.clone(),
                json!({ "csr": URL_SAFE_NO_PAD.encode(cert_csr(&[ORDER_NAME]).0) }),
            ),
            Target::FinalizeReady => {
                let (_, ready) = self
                    .account
                    .ready_order(&self.http01, &order_payload(&[READY_NAME]))
                    .await;
                (
                    ready["finalize"]
                        .as_str()
                        .expect("a finalize URL")
                        .to_owned(),
                    json!({ "csr": URL_SAFE_NO_PAD.encode(cert_csr(&[READY_NAME]).0) }),
                )
            }
            Target::Revoke => (
                self.acme.url("revokeCert"),
                json!({ "certificate": URL_SAFE_NO_PAD.encode(&self.certificate), "reason": 4 }),
            ),
        };

        let payload: Vec<u8> = match &req.payload {
            Payload::Usual => usual_payload.to_string().into_bytes(),
            Payload::Json(value) => {
                let mut value = value.clone();
                if req.target == Target::Revoke && value.get("certificate").is_none() {
                    value["certificate"] = usual_payload["certificate"].clone();
                }
                value.to_string().into_bytes()
            }
            Payload::Raw(bytes) => bytes.to_vec(),
            Payload::Empty => Vec::new(),
            Payload::CsrOtherNames => {
                let (csr, _) = cert_csr(&["conformance-other.example.com"]);
                json!({ "csr": URL_SAFE_NO_PAD.encode(csr) })
                    .to_string()
                    .into_bytes()
            }
            Payload::Huge => {
                let mut value = usual_payload;
                value["padding"] = json!("x".repeat(HUGE_PADDING));
                value.to_string().into_bytes()
            }
        };

        let fresh = AccountKey::es256();
        let account_key = &self.account.key;
        let usual_jwk = req.target == Target::NewAccount;
        let (signer, key_header): (&AccountKey, Value) = match req.key {
            Key::Usual if usual_jwk => (&fresh, json!({ "jwk": fresh.jwk() })),
            Key::Usual | Key::Kid => (account_key, json!({ "kid": self.account.kid })),
            Key::Jwk => (&fresh, json!({ "jwk": fresh.jwk() })),
            Key::Both => (
                account_key,
                json!({ "jwk": account_key.jwk(), "kid": self.account.kid }),
            ),
            Key::Neither => (account_key, json!({})),
            Key::UnknownKid => {
                let prefix = self
                    .account
                    .kid
                    .rsplit_once('/')
                    .expect("the account URL has a path")
                    .0;
                (account_key, json!({ "kid": format!("{prefix}/987654321") }))
            }
            Key::KidNotUrl => (account_key, json!({ "kid": "not a url" })),
            Key::KidBadId => {
                let prefix = self.account.kid.rsplit_once('/').expect("a path").0;
                (account_key, json!({ "kid": format!("{prefix}/abc") }))
            }
            Key::JwkWithD => {
                let mut jwk = fresh.jwk();
                jwk["d"] = json!(URL_SAFE_NO_PAD.encode([7_u8; 32]));
                (&fresh, json!({ "jwk": jwk }))
            }
        };

        let mut header = json!({ "alg": req.alg.unwrap_or_else(|| signer.alg()) });
        for (name, value) in key_header.as_object().expect("an object") {
            header[name] = value.clone();
        }
        match req.nonce {
            Nonce::Fresh => header["nonce"] = json!(self.acme.nonce().await),
            Nonce::Missing => {}
            Nonce::Unknown => header["nonce"] = json!(URL_SAFE_NO_PAD.encode([0x5a_u8; 16])),
            Nonce::Replayed => header["nonce"] = json!(self.used_nonce().await),
            Nonce::Empty => header["nonce"] = json!(""),
            Nonce::NotBase64 => header["nonce"] = json!("!!not+base64/url=="),
        }
        let request_url = url.clone();
        match req.url {
            Url::Same => header["url"] = json!(request_url),
            Url::Missing => {}
            Url::OtherPath => header["url"] = json!(self.acme.url("newAccount")),
            Url::OtherHost => {
                let path = request_url
                    .splitn(4, '/')
                    .nth(3)
                    .expect("an absolute URL with a path");
                header["url"] = json!(format!("https://acme.example.net/{path}"));
            }
            Url::AddQuery => header["url"] = json!(format!("{request_url}?x=1")),
            Url::DropQuery => {
                let without = request_url
                    .split_once('?')
                    .map_or(&*request_url, |(u, _)| u);
                header["url"] = json!(without);
            }
        }

        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(&payload);
        let input = format!("{protected}.{payload}");
        let signature = match req.signature {
            Signature::Good => signer.sign(&input),
            Signature::OtherKey => AccountKey::es256().sign(&input),
            Signature::Truncated => {
                let full = URL_SAFE_NO_PAD
                    .decode(signer.sign(&input))
                    .expect("our own signature is base64url");
                URL_SAFE_NO_PAD.encode(&full[..full.len() - 8])
            }
            Signature::Empty => String::new(),
        };
        let mut jws = json!({ "protected": protected, "payload": payload, "signature": signature });
        let mut method = Method::POST;
        let body = match req.shape {
            Shape::Flattened => jws.to_string().into_bytes(),
            Shape::Compact => format!("{input}.{signature}").into_bytes(),
            Shape::General => json!({
                "payload": payload,
                "signatures": [{ "protected": protected, "signature": signature }],
            })
            .to_string()
            .into_bytes(),
            Shape::UnprotectedHeader => {
                jws["header"] = json!({ "kid": "unprotected" });
                jws.to_string().into_bytes()
            }
            Shape::ExtraMember => {
                jws["x-extra"] = json!("ignore me");
                jws.to_string().into_bytes()
            }
            Shape::Without(member) => {
                jws.as_object_mut().expect("an object").remove(member);
                jws.to_string().into_bytes()
            }
            Shape::EmptyBody => Vec::new(),
            Shape::NotJson => b"{this is not json".to_vec(),
            Shape::Get => {
                method = Method::GET;
                Vec::new()
            }
        };
        let content_type = match req.content_type {
            _ if method == Method::GET => None,
            None => Some("application/jose+json"),
            Some("") => None,
            Some(other) => Some(other),
        };
        Built {
            method,
            url,
            content_type,
            body,
        }
    }

    async fn send(&self, built: Built) -> Outcome {
        let mut request = self.acme.http().request(built.method, &built.url);
        if let Some(content_type) = built.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .body(built.body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("send a conformance request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let content_type = header("content-type").unwrap_or_default();
        let nonce = header("replay-nonce").filter(|nonce| !nonce.is_empty());
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Outcome {
            status,
            content_type,
            nonce,
            text,
            json,
        }
    }
}

/// Every way `outcome` differs from what `case` expects.
fn mismatches(case: &Case, outcome: &Outcome) -> Vec<String> {
    let mut wrong = Vec::new();
    if outcome.status.as_u16() != case.status {
        wrong.push(format!(
            "status {} (want {})",
            outcome.status.as_u16(),
            case.status
        ));
    }
    if outcome.nonce.is_none() {
        wrong.push("no Replay-Nonce".to_owned());
    }
    if let Some(kind) = case.kind {
        if outcome.json["type"] != kind {
            wrong.push(format!("type {} (want {kind})", outcome.json["type"]));
        }
        if !outcome.content_type.starts_with("application/problem+json") {
            wrong.push(format!("content type {:?}", outcome.content_type));
        }
        if let Some(status) = outcome.json.get("status")
            && status != &json!(outcome.status.as_u16())
        {
            wrong.push(format!(
                "problem status {status} differs from the HTTP status"
            ));
        }
        // RFC 8555 §6.2: the problem lists the algorithms the server supports.
        let lists_algorithms = outcome.json["algorithms"]
            .as_array()
            .is_some_and(|algorithms| !algorithms.is_empty());
        if kind == BAD_SIG_ALG && !lists_algorithms {
            wrong.push("badSignatureAlgorithm without an algorithms list".to_owned());
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_right_problem() {
    let ca = DevCa::start("conformance");
    let battery = Battery::set_up(&ca).await;
    let cases = cases();
    let mut failures = Vec::new();
    let mut summary = String::new();
    for case in &cases {
        let built = battery.build(&case.req).await;
        let outcome = battery.send(built).await;
        let wrong = mismatches(case, &outcome);
        let verdict = if wrong.is_empty() { "ok  " } else { "FAIL" };
        summary += &format!(
            "{verdict} {:<45} {} {}\n",
            case.name,
            outcome.status.as_u16(),
            outcome.json["type"].as_str().unwrap_or("-")
        );
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n    server: {} {}",
                case.name,
                wrong.join("; "),
                outcome.status.as_u16(),
                outcome.text.chars().take(400).collect::<String>()
            ));
        }
    }
    eprintln!(
        "conformance: {} cases run, {} passed, {} failed\n{summary}",
        cases.len(),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
