use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::http::StatusCode;
use basalt_core::AccountId;
use basalt_core::CertIdHash;
use basalt_core::CertStatus;
use basalt_core::CertificateRecord;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::FixedClock;
use basalt_core::OcspRequestEntry;
use basalt_core::OcspStatus;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevocationSigner;
use basalt_core::RevocationStatus;
use basalt_core::Serial;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::Decode;
use der::asn1::Any;
use der::asn1::BitString;
use der::asn1::Null;
use der::asn1::ObjectIdentifier;
use der::asn1::OctetString;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::DnType;
use rcgen::IsCa;
use rcgen::KeyPair;
use ring::digest;
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::BasicOcspResponse;
use x509_ocsp::CertId;
use x509_ocsp::OcspRequest;
use x509_ocsp::ResponderId;
use x509_ocsp::ResponseData;
use x509_ocsp::SingleResponse;
use x509_ocsp::TbsRequest;
use x509_ocsp::Version;

use super::*;
use crate::ResponderIssuer;
use crate::ResponderSettings;

mod crl;
mod feed;
mod issuers;

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// 2025-03-01 was a Saturday.
const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

/// A CA certificate and its key, made with rcgen.
struct TestIssuer {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

impl TestIssuer {
    fn new(cn: &str) -> Self {
        Self::with_key(cn, KeyPair::generate().unwrap())
    }

    /// A self-signed CA certificate named `cn` for `key`.
    fn with_key(cn: &str, key: KeyPair) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { params, key, der }
    }

    /// A leaf certificate with `serial`, signed by this issuer, with an
    /// authorityKeyIdentifier as the CA writes one.
    fn leaf(&self, serial: &Serial) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
        params.use_authority_key_identifier_extension = true;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        params.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    /// The SHA-1 of the issuer's subjectPublicKey: how the CA knows this issuer.
    fn key_hash(&self) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, self.key.public_key_raw())
            .as_ref()
            .to_vec()
    }

    /// This issuer as the responder takes it, served at `path`.
    fn responder_issuer(&self, path: Option<&str>) -> ResponderIssuer {
        ResponderIssuer {
            cert_der: self.der.clone(),
            path: path.map(str::to_owned),
        }
    }

    /// A CertID about `serial` with hashes of this issuer, computed as the CA does:
    /// over the raw subject bytes x509-parser finds, and the rcgen public key.
    fn cert_id(&self, serial: &Serial, algorithm: &'static digest::Algorithm) -> CertId {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.der).unwrap();
        let name = cert.subject().as_raw();
        let key = self.key.public_key_raw();
        assert_eq!(key, cert.public_key().subject_public_key.data.as_ref());
        let oid = if algorithm == &digest::SHA256 {
            ID_SHA256
        } else {
            ID_SHA1
        };
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(digest::digest(algorithm, name).as_ref()).unwrap(),
            issuer_key_hash: OctetString::new(digest::digest(algorithm, key).as_ref()).unwrap(),
            serial_number: SerialNumber::new(serial.as_bytes()).unwrap(),
        }
    }
}

fn request_der(cert_ids: Vec<CertId>) -> Vec<u8> {
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: cert_ids
                .into_iter()
                .map(|req_cert| x509_ocsp::Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: None,
        },
        optional_signature: None,
    };
    Encode::to_der(&request).unwrap()
}

/// A storage that knows certificates and precertificates whose certificate was
/// never stored, and can be told to fail.
#[derive(Default)]
struct FakeSa {
    /// Behind a lock so that a test can revoke a certificate between requests.
    certificates: Mutex<HashMap<Serial, CertificateRecord>>,
    precertificates: HashMap<Serial, RevocationStatus>,
    fail: bool,
    lookups: Mutex<Vec<Serial>>,
}

#[async_trait]
impl RevocationLookup for FakeSa {
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error> {
        self.lookups.lock().unwrap().push(serial.clone());
        if self.fail {
            return Err(Error::unavailable("database is down"));
        }
        if let Some(record) = self.certificates.lock().unwrap().get(serial) {
            return Ok(RevocationStatus {
                serial: record.serial.clone(),
                der: record.der.clone(),
                precertificate: false,
                expires_at: record.expires_at,
                status: record.status,
                revoked_at: record.revoked_at,
                revocation_reason: record.revocation_reason,
            });
        }
        self.precertificates
            .get(serial)
            .cloned()
            .ok_or_else(|| Error::not_found("no such serial"))
    }

    /// The responder never lists revoked certificates: the CRL updater does.
    async fn revoked_certificates(
        &self,
        _issuer_key_hash: &[u8],
        _shard: u32,
        _expires_after: OffsetDateTime,
    ) -> Result<Vec<basalt_core::RevokedEntry>, Error> {
        Err(Error::internal(
            "the responder lists no revoked certificates",
        ))
    }

    /// No changes: these responders are built without a status feed.
    async fn status_changes(
        &self,
        _since: OffsetDateTime,
        _limit: u32,
    ) -> Result<Vec<basalt_core::StatusChange>, Error> {
        Ok(Vec::new())
    }
}

/// How the fake CA answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SignerMode {
    /// A valid response, valid for this long.
    Valid(Duration),
    /// An error.
    Fail,
    /// Bytes that are not an OCSPResponse.
    Garbage,
    /// A valid response about serial ff, whatever was asked.
    WrongSerial,
}

/// A CA that builds a real (but unsigned: dummy signature bytes) basic response,
/// and records what it was asked.
struct FakeSigner {
    mode: SignerMode,
    clock: FixedClock,
    entries: Mutex<Vec<OcspRequestEntry>>,
    responses: Mutex<Vec<Vec<u8>>>,
}

impl FakeSigner {
    fn new(mode: SignerMode, clock: FixedClock) -> Self {
        Self {
            mode,
            clock,
            entries: Mutex::default(),
            responses: Mutex::default(),
        }
    }
}

fn generalized(at: OffsetDateTime) -> x509_ocsp::OcspGeneralizedTime {
    let seconds = u64::try_from(at.unix_timestamp()).unwrap();
    der::DateTime::from_unix_duration(Duration::from_secs(seconds))
        .unwrap()
        .into()
}

#[async_trait]
impl RevocationSigner for FakeSigner {
    async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
        self.entries.lock().unwrap().extend(entries.iter().cloned());
        let validity = match self.mode {
            SignerMode::Valid(validity) => validity,
            SignerMode::Fail => return Err(Error::unavailable("hsm is busy")),
            SignerMode::Garbage => return Ok(vec![b"not der".to_vec()]),
            SignerMode::WrongSerial => Duration::from_secs(3600),
        };
        let wrong: Serial = "ff".parse().unwrap();
        let now = self.clock.now();
        let responses = entries
            .iter()
            .map(|entry| {
                let (oid, hash_len) = match entry.hash_algorithm {
                    CertIdHash::Sha1 => (ID_SHA1, 20),
                    CertIdHash::Sha256 => (ID_SHA256, 32),
                };
                let single = SingleResponse {
                    cert_id: CertId {
                        hash_algorithm: AlgorithmIdentifierOwned {
                            oid,
                            parameters: Some(Any::from(Null)),
                        },
                        issuer_name_hash: OctetString::new(vec![1u8; hash_len]).unwrap(),
                        issuer_key_hash: OctetString::new(vec![2u8; hash_len]).unwrap(),
                        serial_number: SerialNumber::new(if self.mode == SignerMode::WrongSerial {
                            wrong.as_bytes()
                        } else {
                            entry.serial.as_bytes()
                        })
                        .unwrap(),
                    },
                    cert_status: match entry.status {
                        OcspStatus::Good => x509_ocsp::CertStatus::good(),
                        OcspStatus::Unknown => x509_ocsp::CertStatus::unknown(),
                        OcspStatus::Revoked => {
                            x509_ocsp::CertStatus::revoked(x509_ocsp::RevokedInfo {
                                revocation_time: generalized(entry.revoked_at.unwrap()),
                                revocation_reason: None,
                            })
                        }
                    },
                    this_update: generalized(now),
                    next_update: Some(generalized(now + validity)),
                    single_extensions: None,
                };
                let basic = BasicOcspResponse {
                    tbs_response_data: ResponseData {
                        version: Version::V1,
                        responder_id: ResponderId::ByKey(OctetString::new([2u8; 20]).unwrap()),
                        produced_at: generalized(now),
                        responses: vec![single],
                        response_extensions: None,
                    },
                    signature_algorithm: AlgorithmIdentifierOwned {
                        oid: ECDSA_WITH_SHA256,
                        parameters: None,
                    },
                    signature: BitString::from_bytes(&[0x30, 0x00]).unwrap(),
                    certs: None,
                };
                Encode::to_der(&OcspResponse::successful(basic).unwrap()).unwrap()
            })
            .collect::<Vec<_>>();
        self.responses
            .lock()
            .unwrap()
            .extend(responses.iter().cloned());
        Ok(responses)
    }

    /// The responder never has CRLs signed: the CRL updater does.
    async fn generate_crl(&self, _request: basalt_core::CrlRequest) -> Result<Vec<u8>, Error> {
        Err(Error::internal("the responder signs no CRLs"))
    }
}

/// A responder for `issuer` over a fake SA and a fake CA.
struct Harness {
    issuer: TestIssuer,
    sa: Arc<FakeSa>,
    signer: Arc<FakeSigner>,
    router: Router,
}

fn good_record(issuer: &TestIssuer, serial: &Serial) -> CertificateRecord {
    CertificateRecord {
        serial: serial.clone(),
        account_id: AccountId(7),
        der: issuer.leaf(serial),
        chain: vec![issuer.der.clone()],
        issued_at: NOW - time::Duration::days(1),
        expires_at: NOW + time::Duration::days(89),
        status: CertStatus::Good,
        revoked_at: None,
        revocation_reason: None,
    }
}

/// A fake SA holding `records`, a fake CA answering as `mode`, and the router of a
/// responder for `issuers` over them.
fn build(
    issuers: Vec<ResponderIssuer>,
    records: Vec<CertificateRecord>,
    sa_fails: bool,
    mode: SignerMode,
) -> (Arc<FakeSa>, Arc<FakeSigner>, Router) {
    let sa = FakeSa {
        certificates: Mutex::new(records.into_iter().map(|r| (r.serial.clone(), r)).collect()),
        fail: sa_fails,
        ..FakeSa::default()
    };
    build_over(issuers, sa, mode)
}

/// The router of a responder for `issuers` over `sa` and a fake CA answering as
/// `mode`.
fn build_over(
    issuers: Vec<ResponderIssuer>,
    sa: FakeSa,
    mode: SignerMode,
) -> (Arc<FakeSa>, Arc<FakeSigner>, Router) {
    let clock = FixedClock::new(NOW);
    let sa = Arc::new(sa);
    let signer = Arc::new(FakeSigner::new(mode, clock.clone()));
    let responder = Responder::new(
        issuers,
        sa.clone(),
        signer.clone(),
        Arc::new(clock),
        ResponderSettings {
            max_age: Duration::from_secs(3600),
            cache_size: 1000,
            presign: false,
        },
    )
    .unwrap();
    (sa, signer, router(Arc::new(responder), None))
}

fn harness_with(
    issuer: TestIssuer,
    records: Vec<CertificateRecord>,
    sa_fails: bool,
    mode: SignerMode,
) -> Harness {
    let (sa, signer, router) = build(vec![issuer.responder_issuer(None)], records, sa_fails, mode);
    Harness {
        issuer,
        sa,
        signer,
        router,
    }
}

fn serial(hex: &str) -> Serial {
    hex.parse().unwrap()
}

/// A responder that knows one good certificate, serial 0a0b0c0d.
fn harness() -> Harness {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let record = good_record(&issuer, &serial("0a0b0c0d"));
    harness_with(
        issuer,
        vec![record],
        false,
        SignerMode::Valid(Duration::from_secs(4 * 86_400)),
    )
}

async fn post(router: &Router, body: Vec<u8>) -> Response {
    let request = Request::post("/")
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(request).await.unwrap()
}

async fn get(router: &Router, path: &str) -> Response {
    let request = Request::get(path).body(Body::empty()).unwrap();
    router.clone().oneshot(request).await.unwrap()
}

async fn body(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

fn header_of(response: &Response, name: HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Checks an error response and returns its OCSP status.
async fn failed_status(response: Response) -> OcspResponseStatus {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CONTENT_TYPE), OCSP_RESPONSE);
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-store");
    assert!(response.headers().get(header::ETAG).is_none());
    let der = body(response).await;
    let decoded = OcspResponse::from_der(&der).unwrap();
    assert!(decoded.response_bytes.is_none());
    decoded.response_status
}

/// Checks a successful response: exactly the CA's bytes, with the caching headers.
async fn assert_signed(harness: &Harness, response: Response, max_age: u64, expires: &str) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CONTENT_TYPE), OCSP_RESPONSE);
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        format!("max-age={max_age}, public, no-transform, must-revalidate")
    );
    assert_eq!(
        header_of(&response, header::LAST_MODIFIED),
        "Sat, 01 Mar 2025 12:00:00 GMT"
    );
    assert_eq!(header_of(&response, header::EXPIRES), expires);
    let etag = header_of(&response, header::ETAG).to_owned();
    let der = body(response).await;
    let signed = harness.signer.responses.lock().unwrap().last().cloned();
    assert_eq!(Some(&der), signed.as_ref(), "not the CA's bytes");
    let hex: String = digest::digest(&digest::SHA256, &der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(etag, format!("\"{hex}\""));
}

fn good_request(harness: &Harness) -> Vec<u8> {
    request_der(vec![
        harness
            .issuer
            .cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY),
    ])
}

#[tokio::test]
async fn post_good_returns_signed_response_with_cache_headers() {
    let harness = harness();
    let response = post(&harness.router, good_request(&harness)).await;
    assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    let entries = harness.signer.entries.lock().unwrap().clone();
    assert_eq!(
        entries,
        vec![OcspRequestEntry {
            serial: serial("0a0b0c0d"),
            status: OcspStatus::Good,
            revoked_at: None,
            reason: None,
            issuer_key_hash: harness.issuer.key_hash(),
            hash_algorithm: CertIdHash::Sha1,
        }]
    );
}

#[tokio::test]
async fn post_to_a_path_is_answered_too() {
    let harness = harness();
    let request = Request::post("/ocsp")
        .body(Body::from(good_request(&harness)))
        .unwrap();
    let response = harness.router.clone().oneshot(request).await.unwrap();
    assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
}

#[tokio::test]
async fn max_age_stops_at_next_update() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let record = good_record(&issuer, &serial("0a0b0c0d"));
    let harness = harness_with(
        issuer,
        vec![record],
        false,
        SignerMode::Valid(Duration::from_secs(600)),
    );
    let response = post(&harness.router, good_request(&harness)).await;
    assert_signed(&harness, response, 600, "Sat, 01 Mar 2025 12:10:00 GMT").await;
}

/// Finds a serial whose request encodes to base64 with `/` or `+` and padding, so
/// the escaping cases below are real.
fn awkward_request(issuer: &TestIssuer) -> (Serial, Vec<u8>, String) {
    for n in 1u32..5000 {
        let serial = Serial::from_bytes(&(0x0100_0000 + n).to_be_bytes()).unwrap();
        let der = request_der(vec![
            issuer.cert_id(&serial, &digest::SHA1_FOR_LEGACY_USE_ONLY),
        ]);
        let encoded = STANDARD.encode(&der);
        if encoded.contains('/') && encoded.contains('+') && encoded.ends_with('=') {
            return (serial, der, encoded);
        }
    }
    panic!("no serial gives an awkward base64 encoding");
}

#[tokio::test]
async fn get_accepts_plain_escaped_and_url_safe_base64() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let (serial, der, encoded) = awkward_request(&issuer);
    let record = good_record(&issuer, &serial);
    let harness = harness_with(
        issuer,
        vec![record],
        false,
        SignerMode::Valid(Duration::from_secs(4 * 86_400)),
    );
    let escaped = encoded
        .replace('/', "%2F")
        .replace('+', "%2b")
        .replace('=', "%3D");
    let url_safe = URL_SAFE_NO_PAD.encode(&der);
    let spaced = encoded.replace('+', "%20");
    for path in [&encoded, &escaped, &url_safe, &spaced] {
        let response = get(&harness.router, &format!("/{path}")).await;
        assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    }
    let lookups = harness.sa.lookups.lock().unwrap().clone();
    assert_eq!(lookups, vec![serial; 4]);
}

#[tokio::test]
async fn revoked_status_reaches_the_signer() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let revoked_at = NOW - time::Duration::hours(3);
    let record = CertificateRecord {
        status: CertStatus::Revoked,
        revoked_at: Some(revoked_at),
        revocation_reason: Some(RevocationReason::KeyCompromise),
        ..good_record(&issuer, &serial("0a0b0c0d"))
    };
    let harness = harness_with(
        issuer,
        vec![record],
        false,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    let response = post(&harness.router, good_request(&harness)).await;
    assert_signed(&harness, response, 3600, "Sun, 02 Mar 2025 12:00:00 GMT").await;
    let entries = harness.signer.entries.lock().unwrap().clone();
    assert_eq!(
        entries,
        vec![OcspRequestEntry {
            serial: serial("0a0b0c0d"),
            status: OcspStatus::Revoked,
            revoked_at: Some(revoked_at),
            reason: Some(RevocationReason::KeyCompromise),
            issuer_key_hash: harness.issuer.key_hash(),
            hash_algorithm: CertIdHash::Sha1,
        }]
    );
}

/// The CA died after storing a precertificate: the serial has no certificate, only
/// the linting certificate (the issuer's TBS under another key's signature), and
/// is answered for with its status, good or revoked, from the issuer its TBS
/// names. A precertificate naming another issuer is not.
#[tokio::test]
async fn a_serial_with_only_a_precertificate_is_answered_for() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let other = TestIssuer::new("Someone Else");
    let linting = |issuer: &TestIssuer, serial: &Serial| {
        let mut der = issuer.leaf(serial);
        // Another signature over the same TBS: not the issuer's.
        let last = der.last_mut().unwrap();
        *last ^= 0xff;
        der
    };
    let revoked_at = NOW - time::Duration::minutes(5);
    let precertificate = |der: Vec<u8>, serial: &Serial, revoked: bool| RevocationStatus {
        serial: serial.clone(),
        der,
        precertificate: true,
        expires_at: NOW + time::Duration::days(90),
        status: if revoked {
            CertStatus::Revoked
        } else {
            CertStatus::Good
        },
        revoked_at: revoked.then_some(revoked_at),
        revocation_reason: revoked.then_some(RevocationReason::KeyCompromise),
    };
    let (good, revoked, foreign) = (serial("0e01"), serial("0e02"), serial("0e03"));
    let sa = FakeSa {
        precertificates: [
            precertificate(linting(&issuer, &good), &good, false),
            precertificate(linting(&issuer, &revoked), &revoked, true),
            precertificate(linting(&other, &foreign), &foreign, false),
        ]
        .into_iter()
        .map(|status| (status.serial.clone(), status))
        .collect(),
        ..FakeSa::default()
    };
    let (sa, signer, router) = build_over(
        vec![issuer.responder_issuer(None)],
        sa,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    let harness = Harness {
        issuer,
        sa,
        signer,
        router,
    };
    for serial in [&good, &revoked] {
        let cert_id = harness
            .issuer
            .cert_id(serial, &digest::SHA1_FOR_LEGACY_USE_ONLY);
        let response = post(&harness.router, request_der(vec![cert_id])).await;
        assert_signed(&harness, response, 3600, "Sun, 02 Mar 2025 12:00:00 GMT").await;
    }
    let entries = harness.signer.entries.lock().unwrap().clone();
    let entry = |serial: &Serial, revoked: bool| OcspRequestEntry {
        serial: serial.clone(),
        status: if revoked {
            OcspStatus::Revoked
        } else {
            OcspStatus::Good
        },
        revoked_at: revoked.then_some(revoked_at),
        reason: revoked.then_some(RevocationReason::KeyCompromise),
        issuer_key_hash: harness.issuer.key_hash(),
        hash_algorithm: CertIdHash::Sha1,
    };
    assert_eq!(entries, vec![entry(&good, false), entry(&revoked, true)]);

    let cert_id = harness
        .issuer
        .cert_id(&foreign, &digest::SHA1_FOR_LEGACY_USE_ONLY);
    let response = post(&harness.router, request_der(vec![cert_id])).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::Unauthorized
    );
    assert_eq!(harness.signer.entries.lock().unwrap().len(), 2);
}

/// RFC 6960 §2.2: a serial Basalt never issued, under one of its issuers, gets a
/// signed response whose certStatus is unknown.
#[tokio::test]
async fn unknown_serial_is_answered_unknown() {
    let harness = harness();
    for algorithm in [&digest::SHA1_FOR_LEGACY_USE_ONLY, &digest::SHA256] {
        let request = request_der(vec![harness.issuer.cert_id(&serial("7777"), algorithm)]);
        let response = post(&harness.router, request).await;
        assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    }
    assert_eq!(*harness.sa.lookups.lock().unwrap(), vec![serial("7777"); 2]);
    let entries = harness.signer.entries.lock().unwrap().clone();
    let unknown = |hash_algorithm| OcspRequestEntry {
        serial: serial("7777"),
        status: OcspStatus::Unknown,
        revoked_at: None,
        reason: None,
        issuer_key_hash: harness.issuer.key_hash(),
        hash_algorithm,
    };
    assert_eq!(
        entries,
        vec![unknown(CertIdHash::Sha1), unknown(CertIdHash::Sha256)]
    );
    let signed = harness.signer.responses.lock().unwrap()[0].clone();
    assert_eq!(
        single_response(&signed).cert_status,
        x509_ocsp::CertStatus::unknown()
    );
}

/// The one SingleResponse of a DER OCSPResponse.
fn single_response(der: &[u8]) -> SingleResponse {
    let response = OcspResponse::from_der(der).unwrap();
    let bytes = response.response_bytes.unwrap();
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    basic.tbs_response_data.responses[0].clone()
}

#[tokio::test]
async fn another_issuers_certid_is_unauthorized_without_lookup() {
    let harness = harness();
    let other = TestIssuer::new("Someone Else");
    for (name_from, key_from) in [
        (&other, &other),
        (&harness.issuer, &other),
        (&other, &harness.issuer),
    ] {
        let mut cert_id = harness
            .issuer
            .cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
        let name = name_from.cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
        let key = key_from.cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
        cert_id.issuer_name_hash = name.issuer_name_hash;
        cert_id.issuer_key_hash = key.issuer_key_hash;
        let response = post(&harness.router, request_der(vec![cert_id])).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::Unauthorized
        );
    }
    assert!(harness.sa.lookups.lock().unwrap().is_empty());
}

#[tokio::test]
async fn certificate_of_another_issuer_is_unauthorized() {
    // The SA knows the serial, but the certificate there was issued by someone else.
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let other = TestIssuer::new("Someone Else");
    let record = good_record(&other, &serial("0a0b0c0d"));
    let harness = harness_with(
        issuer,
        vec![record],
        false,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    let response = post(&harness.router, good_request(&harness)).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::Unauthorized
    );
    assert!(harness.signer.entries.lock().unwrap().is_empty());
}

/// A SHA-256 CertID is answered with a SHA-256 CertID, by the same issuer; with
/// another issuer's SHA-256 hashes the answer is unauthorized.
#[tokio::test]
async fn sha256_certids_are_answered_in_sha256() {
    let harness = harness();
    let cert_id = harness.issuer.cert_id(&serial("0a0b0c0d"), &digest::SHA256);
    assert_eq!(cert_id.issuer_key_hash.as_bytes().len(), 32);
    let response = post(&harness.router, request_der(vec![cert_id])).await;
    assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    let entries = harness.signer.entries.lock().unwrap().clone();
    assert_eq!(
        entries,
        vec![OcspRequestEntry {
            serial: serial("0a0b0c0d"),
            status: OcspStatus::Good,
            revoked_at: None,
            reason: None,
            // The issuer is still named by its SHA-1 key hash; the CertID's
            // algorithm travels on its own.
            issuer_key_hash: harness.issuer.key_hash(),
            hash_algorithm: CertIdHash::Sha256,
        }]
    );
    let signed = harness.signer.responses.lock().unwrap()[0].clone();
    assert_eq!(
        single_response(&signed).cert_id.hash_algorithm.oid,
        ID_SHA256
    );

    let other = TestIssuer::new("Someone Else");
    let cert_id = other.cert_id(&serial("0a0b0c0d"), &digest::SHA256);
    let response = post(&harness.router, request_der(vec![cert_id])).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::Unauthorized
    );
    assert_eq!(
        *harness.sa.lookups.lock().unwrap(),
        vec![serial("0a0b0c0d")]
    );
}

/// The SHA-1 and SHA-256 answers about one certificate are different responses
/// (each repeats its request's CertID), cached apart.
#[tokio::test]
async fn sha1_and_sha256_answers_are_cached_apart() {
    let harness = harness();
    for _ in 0..2 {
        for algorithm in [&digest::SHA1_FOR_LEGACY_USE_ONLY, &digest::SHA256] {
            let cert_id = harness.issuer.cert_id(&serial("0a0b0c0d"), algorithm);
            let response = post(&harness.router, request_der(vec![cert_id])).await;
            let der = body(response).await;
            let oid = single_response(&der).cert_id.hash_algorithm.oid;
            let expected = if algorithm == &digest::SHA256 {
                ID_SHA256
            } else {
                ID_SHA1
            };
            assert_eq!(oid, expected);
        }
    }
    let algorithms: Vec<_> = harness
        .signer
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|entry| entry.hash_algorithm)
        .collect();
    assert_eq!(algorithms, vec![CertIdHash::Sha1, CertIdHash::Sha256]);
}

#[tokio::test]
async fn unsupported_hash_algorithm_is_malformed() {
    let harness = harness();
    let mut cert_id = harness
        .issuer
        .cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
    cert_id.hash_algorithm.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5"); // md5
    let response = post(&harness.router, request_der(vec![cert_id])).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::MalformedRequest
    );
}

#[tokio::test]
async fn garbage_and_multi_certificate_requests_are_malformed() {
    let harness = harness();
    let one = harness
        .issuer
        .cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
    let mut truncated = good_request(&harness);
    truncated.pop();
    for body in [
        b"hello".to_vec(),
        Vec::new(),
        truncated,
        request_der(vec![]),
        request_der(vec![one.clone(), one]),
    ] {
        let response = post(&harness.router, body).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::MalformedRequest
        );
    }
    assert!(harness.sa.lookups.lock().unwrap().is_empty());
}

#[tokio::test]
async fn oversized_body_is_malformed() {
    let harness = harness();
    let response = post(&harness.router, vec![0x30; MAX_REQUEST_LEN + 1]).await;
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::MalformedRequest
    );
}

#[tokio::test]
async fn bad_get_paths_are_malformed() {
    let harness = harness();
    let long = "A".repeat(4 * MAX_REQUEST_LEN + 4);
    for path in [
        "/",
        "/not%20base64!",
        "/%zz",
        "/%4",
        "/aGVsbG8=",
        "/MFQw%2",
        &format!("/{long}"),
    ] {
        let response = get(&harness.router, path).await;
        assert_eq!(
            failed_status(response).await,
            OcspResponseStatus::MalformedRequest,
            "{path}"
        );
    }
}

#[tokio::test]
async fn sa_failure_is_try_later() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let harness = harness_with(
        issuer,
        vec![],
        true,
        SignerMode::Valid(Duration::from_secs(86_400)),
    );
    let response = post(&harness.router, good_request(&harness)).await;
    assert_eq!(failed_status(response).await, OcspResponseStatus::TryLater);
    assert!(harness.signer.entries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn signer_failure_or_unusable_response_is_try_later() {
    for mode in [
        SignerMode::Fail,
        SignerMode::Garbage,
        SignerMode::WrongSerial,
    ] {
        let issuer = TestIssuer::new("Basalt Test Issuer");
        let record = good_record(&issuer, &serial("0a0b0c0d"));
        let harness = harness_with(issuer, vec![record], false, mode);
        let response = post(&harness.router, good_request(&harness)).await;
        assert_eq!(failed_status(response).await, OcspResponseStatus::TryLater);
        assert_eq!(harness.signer.entries.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn serves_over_tcp_until_shutdown() {
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;

    let harness = harness();
    let request = good_request(&harness);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = Duration::from_secs(5);
    let server = tokio::spawn(serve_on(listener, harness.router.clone(), drain, async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: ocsp.test\r\nContent-Type: application/ocsp-request\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let signed = harness.signer.responses.lock().unwrap()[0].clone();
    assert!(reply.ends_with(&signed));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let metrics = basalt_telemetry::metrics::render();
    assert!(
        metrics.contains("basalt_ocsp_responses_total{status=\"successful\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_still_running_after_the_drain_timeout_does_not_hold_up_the_stop() {
    use tokio::io::AsyncWriteExt;

    let never = axum::routing::get(std::future::pending::<()>);
    let router = Router::new().route("/slow", never);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = Duration::from_millis(200);
    let server = tokio::spawn(serve_on(listener, router, drain, async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: ocsp.test\r\n\r\n")
        .await
        .unwrap();
    // The request reaches its handler, which never answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the listener stops after its drain timeout")
        .unwrap()
        .unwrap();
    assert!(stopping.elapsed() >= drain, "{:?}", stopping.elapsed());
}

#[test]
fn failure_bodies_are_the_rfc_encodings() {
    for (status, code) in [
        (OcspResponseStatus::MalformedRequest, 1),
        (OcspResponseStatus::InternalError, 2),
        (OcspResponseStatus::TryLater, 3),
        (OcspResponseStatus::Unauthorized, 6),
    ] {
        assert_eq!(status_only(status), vec![0x30, 0x03, 0x0a, 0x01, code]);
    }
}

#[test]
fn http_dates_are_imf_fixdate() {
    assert_eq!(
        http_date(datetime!(1994-11-06 08:49:37 UTC)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        http_date(datetime!(2025-01-01 00:00:00 +02:00)),
        "Tue, 31 Dec 2024 22:00:00 GMT"
    );
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode(b"a%2Fb%2bc%3d").unwrap(), b"a/b+c=");
    assert_eq!(percent_decode(b"plain").unwrap(), b"plain");
    for bad in [&b"%"[..], b"%2", b"%g0", b"x%2x"] {
        assert!(percent_decode(bad).is_none(), "{bad:?}");
    }
}

/// Pre-signed responses: repeated requests about an unchanged certificate are
/// served from the cache (the SA is still asked every time), by POST and GET.
#[tokio::test]
async fn an_unchanged_certificate_is_signed_once() {
    let harness = harness();
    let first = body(post(&harness.router, good_request(&harness)).await).await;
    let second = body(post(&harness.router, good_request(&harness)).await).await;
    let encoded = STANDARD.encode(good_request(&harness));
    let response = get(&harness.router, &format!("/{encoded}")).await;
    assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    assert_eq!(first, second);
    assert_eq!(harness.signer.entries.lock().unwrap().len(), 1);
    assert_eq!(harness.sa.lookups.lock().unwrap().len(), 3);
}

/// A revocation is answered on the very next request, newly signed, and that
/// answer is then cached in turn.
#[tokio::test]
async fn a_revocation_is_signed_at_the_next_request() {
    let harness = harness();
    let response = post(&harness.router, good_request(&harness)).await;
    let der = body(response).await;
    assert_eq!(
        single_response(&der).cert_status,
        x509_ocsp::CertStatus::good()
    );

    let revoked_at = NOW - time::Duration::minutes(1);
    {
        let mut certificates = harness.sa.certificates.lock().unwrap();
        let record = certificates.get_mut(&serial("0a0b0c0d")).unwrap();
        record.status = CertStatus::Revoked;
        record.revoked_at = Some(revoked_at);
        record.revocation_reason = Some(RevocationReason::KeyCompromise);
    }
    for _ in 0..2 {
        let response = post(&harness.router, good_request(&harness)).await;
        let der = body(response).await;
        let x509_ocsp::CertStatus::Revoked(info) = single_response(&der).cert_status else {
            panic!("not revoked");
        };
        assert_eq!(info.revocation_time, generalized(revoked_at));
    }
    let statuses: Vec<_> = harness
        .signer
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|entry| (entry.status, entry.reason))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (OcspStatus::Good, None),
            (OcspStatus::Revoked, Some(RevocationReason::KeyCompromise)),
        ]
    );
}

/// A cached response is served until half way from its thisUpdate to its
/// nextUpdate, then signed anew.
#[tokio::test]
async fn a_response_due_for_refresh_is_signed_anew() {
    let harness = harness(); // responses valid for 4 days
    let first = body(post(&harness.router, good_request(&harness)).await).await;
    harness
        .signer
        .clock
        .advance(time::Duration::days(2) - time::Duration::seconds(1));
    let response = post(&harness.router, good_request(&harness)).await;
    assert_eq!(
        header_of(&response, header::LAST_MODIFIED),
        "Sat, 01 Mar 2025 12:00:00 GMT"
    );
    // max-age still stops at the nextUpdate of the cached response: a day past.
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        "max-age=3600, public, no-transform, must-revalidate"
    );
    assert_eq!(body(response).await, first);
    assert_eq!(harness.signer.entries.lock().unwrap().len(), 1);

    harness.signer.clock.advance(time::Duration::seconds(1));
    let response = post(&harness.router, good_request(&harness)).await;
    assert_eq!(
        header_of(&response, header::LAST_MODIFIED),
        "Mon, 03 Mar 2025 12:00:00 GMT"
    );
    let second = body(response).await;
    assert_ne!(second, first);
    assert_eq!(harness.signer.entries.lock().unwrap().len(), 2);
    assert_eq!(
        harness.signer.responses.lock().unwrap().last(),
        Some(&second)
    );
}

/// Failures are not cached: the next request asks the CA again.
#[tokio::test]
async fn failed_signatures_are_not_cached() {
    let issuer = TestIssuer::new("Basalt Test Issuer");
    let record = good_record(&issuer, &serial("0a0b0c0d"));
    let harness = harness_with(issuer, vec![record], false, SignerMode::Garbage);
    for _ in 0..2 {
        let response = post(&harness.router, good_request(&harness)).await;
        assert_eq!(failed_status(response).await, OcspResponseStatus::TryLater);
    }
    assert_eq!(harness.signer.entries.lock().unwrap().len(), 2);
}

/// A GET revalidation with the response's ETag gets 304 and no body; another
/// tag gets the response.
#[tokio::test]
async fn if_none_match_gets_not_modified() {
    let harness = harness();
    let path = format!("/{}", STANDARD.encode(good_request(&harness)));
    let response = get(&harness.router, &path).await;
    let etag = header_of(&response, header::ETAG).to_owned();
    let conditional = |tags: String| {
        Request::get(&path)
            .header(header::IF_NONE_MATCH, tags)
            .body(Body::empty())
            .unwrap()
    };
    for tags in [etag.clone(), format!("\"other\", W/{etag}"), "*".to_owned()] {
        let response = harness
            .router
            .clone()
            .oneshot(conditional(tags.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tags}");
        assert_eq!(header_of(&response, header::ETAG), etag);
        assert!(header_of(&response, header::CACHE_CONTROL).starts_with("max-age="));
        assert!(body(response).await.is_empty());
    }
    let response = harness
        .router
        .clone()
        .oneshot(conditional("\"other\"".to_owned()))
        .await
        .unwrap();
    assert_signed(&harness, response, 3600, "Wed, 05 Mar 2025 12:00:00 GMT").await;
    // Errors are never 304.
    let response = harness
        .router
        .clone()
        .oneshot(
            Request::get("/aGVsbG8=")
                .header(header::IF_NONE_MATCH, "*")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        failed_status(response).await,
        OcspResponseStatus::MalformedRequest
    );
}

/// An OCSPRequest with the given request extensions and signature.
fn request_with(
    cert_ids: Vec<CertId>,
    request_extensions: Option<Vec<x509_cert::ext::Extension>>,
    optional_signature: Option<x509_ocsp::Signature>,
) -> Vec<u8> {
    let mut request = OcspRequest::from_der(&request_der(cert_ids)).unwrap();
    request.tbs_request.request_extensions = request_extensions;
    request.optional_signature = optional_signature;
    Encode::to_der(&request).unwrap()
}

/// A garbled or unusual request battery: each case gets a well-formed OCSP
/// response with the expected status, always with HTTP 200 (never a 500).
#[tokio::test]
async fn garbled_request_battery() {
    let harness = harness();
    let good_id = || {
        harness
            .issuer
            .cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY)
    };
    let good = request_der(vec![good_id()]);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0x00, 0x00]);
    let mut wrong_tag = good.clone();
    wrong_tag[0] = 0x31; // SET instead of SEQUENCE
    let mut md5 = good_id();
    md5.hash_algorithm.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
    let mut long_hashes = good_id();
    long_hashes.issuer_name_hash = OctetString::new([0u8; 32]).unwrap();
    long_hashes.issuer_key_hash = OctetString::new([0u8; 32]).unwrap();
    let mut short_key_hash = good_id();
    short_key_hash.issuer_key_hash = OctetString::new([0u8; 19]).unwrap();
    let other = TestIssuer::new("Someone Else");
    let foreign = other.cert_id(&serial("0a0b0c0d"), &digest::SHA1_FOR_LEGACY_USE_ONLY);
    // RFC 8954 nonce: the request is answered as without it. The nonce is not
    // echoed: responses are pre-signed and shared, so they cannot carry it.
    let nonce = x509_cert::ext::Extension {
        extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
        critical: false,
        extn_value: OctetString::new(
            Encode::to_der(&OctetString::new([7u8; 32]).unwrap()).unwrap(),
        )
        .unwrap(),
    };
    let with_nonce = request_with(vec![good_id()], Some(vec![nonce]), None);
    // A signed request (RFC 6960 §4.1.2): the responder requires no signature,
    // so it checks none and answers as for an unsigned request.
    let signature = x509_ocsp::Signature {
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        },
        signature: BitString::from_bytes(&[0x30, 0x00]).unwrap(),
        certs: None,
    };
    let signed_request = request_with(vec![good_id()], None, Some(signature));
    let (_, _, slashed) = awkward_request(&harness.issuer);
    assert!(slashed.contains('/'));

    use OcspResponseStatus::MalformedRequest as Malformed;
    use OcspResponseStatus::Successful;
    use OcspResponseStatus::Unauthorized;
    let post_as = |body: Vec<u8>, content_type: &str| {
        Request::post("/")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let post_der = |body: Vec<u8>| post_as(body, "application/ocsp-request");
    let get_path = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let cases: Vec<(&str, Request<Body>, OcspResponseStatus)> = vec![
        ("empty body", post_der(Vec::new()), Malformed),
        ("truncated der", post_der(truncated), Malformed),
        ("trailing garbage", post_der(trailing), Malformed),
        ("wrong outer tag", post_der(wrong_tag), Malformed),
        (
            "not der at all",
            post_der(b"GET / HTTP/1.1".to_vec()),
            Malformed,
        ),
        ("zero certids", post_der(request_der(vec![])), Malformed),
        (
            "two certids",
            post_der(request_der(vec![good_id(), good_id()])),
            Malformed,
        ),
        ("md5 certid", post_der(request_der(vec![md5])), Malformed),
        (
            "sha-1 certid with 32-byte hashes",
            post_der(request_der(vec![long_hashes])),
            Malformed,
        ),
        (
            "19-byte key hash",
            post_der(request_der(vec![short_key_hash])),
            Malformed,
        ),
        (
            "huge body",
            post_der(vec![0x30; MAX_REQUEST_LEN + 1]),
            Malformed,
        ),
        (
            "base64 text posted",
            post_der(STANDARD.encode(&good).into_bytes()),
            Malformed,
        ),
        (
            "unknown issuer",
            post_der(request_der(vec![foreign])),
            Unauthorized,
        ),
        ("nonce extension", post_der(with_nonce), Successful),
        ("signed request", post_der(signed_request), Successful),
        // Content-Type is not checked: the DER body describes itself, and
        // refusing a mislabelled but valid request would only fail the client.
        (
            "wrong content type",
            post_as(good.clone(), "text/plain"),
            Successful,
        ),
        (
            "bad base64 in get",
            get_path("/MFQw!!!!".to_owned()),
            Malformed,
        ),
        (
            "get of a non-request",
            get_path(format!("/{}", STANDARD.encode(b"\x30\x00"))),
            Malformed,
        ),
        (
            "get with a slash inside base64",
            get_path(format!("/{slashed}")),
            Successful,
        ),
        ("get of /", get_path("/".to_owned()), Malformed),
    ];
    assert!(cases.len() >= 15);
    for (name, request, expected) in cases {
        let response = harness.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            OCSP_RESPONSE,
            "{name}"
        );
        let der = body(response).await;
        let decoded = OcspResponse::from_der(&der).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(decoded.response_status, expected, "{name}");
        assert_eq!(
            decoded.response_bytes.is_some(),
            expected == Successful,
            "{name}"
        );
        if expected == Successful {
            let basic =
                BasicOcspResponse::from_der(decoded.response_bytes.unwrap().response.as_bytes())
                    .unwrap();
            assert!(basic.tbs_response_data.nonce().is_none(), "{name}");
        }
    }
}
