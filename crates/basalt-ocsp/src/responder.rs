//! The protocol logic: decode a request, check that it asks about one of our issuers, look
//! the serial up in the SA and serve a response signed for that status: the cached
//! one while it is still right and fresh, or one the CA signs anew.
//!
//! While the responder follows a current status feed ([`Responder::follow`]), a
//! cached response known to state the SA's status is served without the SA read.
//! The feed's listener has the responses of every serial whose status changes
//! checked against the SA again at their next request (see [`crate::cache`]),
//! and those now stating the wrong status (a revocation) signed anew at once; a
//! background task has responses nearing their refresh point signed again before
//! anyone asks. So the answers clients get are pre-signed. When the feed falls
//! behind, every request reads the SA again.
//!
//! A serial the SA does not know, under one of our issuers, is answered `unknown`
//! (RFC 6960 §2.2); a CertID naming another issuer is `unauthorized` without any
//! lookup. CertIDs hashed with SHA-1 or SHA-256 are answered in their own algorithm.
//!
//! A serial is answered for as soon as its precertificate is stored: the CA may die
//! before it stores the certificate, and the serial must stay revocable and known to
//! OCSP all the same. The SA then returns the precertificate, a linting certificate
//! with the very TBS the issuer would have signed, so its issuer name and authority
//! key identifier say which issuer it belongs to; its signature is not the issuer's
//! and is never checked here.

use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::Weak;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderValue;
use basalt_core::CertIdHash;
use basalt_core::CertStatus;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::OcspRequestEntry;
use basalt_core::OcspStatus;
use basalt_core::RevocationLookup;
use basalt_core::RevocationSigner;
use basalt_core::Serial;
use der::Decode;
use der::DecodePem;
use der::Encode;
use der::asn1::ObjectIdentifier;
use der::asn1::OctetString;
use ring::digest;
use time::OffsetDateTime;
use tracing::debug;
use tracing::error;
use tracing::warn;
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_ocsp::BasicOcspResponse;
use x509_ocsp::CertId;
use x509_ocsp::OcspGeneralizedTime;
use x509_ocsp::OcspRequest;
use x509_ocsp::OcspResponse;
use x509_ocsp::OcspResponseStatus;

use crate::cache::CacheKey;
use crate::cache::ResponseCache;
use crate::cache::SignedFor;
use crate::feed::FeedEvent;
use crate::feed::StatusFeed;
use crate::http::etag;
use crate::http::http_date;

/// id-sha1 (RFC 3279 §2.2.1).
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754 §2.2).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

/// How the responder tells HTTP caches to keep its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponderSettings {
    /// The longest `Cache-Control: max-age` sent; a response whose nextUpdate comes
    /// sooner gets the time left until then (RFC 5019 §6.2).
    pub max_age: Duration,
    /// How many signed responses the responder keeps in memory (the oldest make
    /// room); 0 keeps none and has the CA sign every answer.
    pub cache_size: usize,
    /// Whether a response about each new certificate the status feed reports is
    /// signed at once, before anyone asks (SHA-1 CertID).
    pub presign: bool,
}

/// One issuer the responder answers for, as given to [`Responder::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponderIssuer {
    /// The issuer certificate, DER.
    pub cert_der: Vec<u8>,
    /// The HTTP path at which [`crate::router`] serves `cert_der` (the caIssuers
    /// URL of RFC 5280 §4.2.2.1), if any. It must pass the checks of
    /// [`crate::OcspConfig::validate`] and differ from every other issuer's path.
    pub path: Option<String>,
}

/// Answers OCSP requests about the certificates of its issuers.
pub struct Responder {
    issuers: Vec<Issuer>,
    sa: Arc<dyn RevocationLookup>,
    signer: Arc<dyn RevocationSigner>,
    clock: Arc<dyn Clock>,
    settings: ResponderSettings,
    cache: ResponseCache,
    /// The status feed, once [`Responder::follow`] was called.
    feed: OnceLock<Arc<StatusFeed>>,
}

/// How often the refresher looks for responses nearing their refresh point.
const REFRESH_SCAN: Duration = Duration::from_secs(10);

/// How long before its refresh point the refresher signs a response again.
const REFRESH_LEAD: Duration = Duration::from_secs(60);

/// The most responses signed again per scan, so that a burst of them (after a
/// restart, say) does not crowd the CA out.
const REFRESH_BATCH: usize = 500;

/// One issuer: what a CertID must carry to be about it (RFC 6960 §4.1.1), what the
/// certificates it signed name as their issuer, and its certificate for download.
struct Issuer {
    /// The issuer certificate, DER.
    cert_der: Vec<u8>,
    /// Where the certificate is served over HTTP.
    path: Option<String>,
    /// The DER of the issuer's subject name, to match the issuer field of the
    /// certificates the SA returns.
    name_der: Vec<u8>,
    /// The issuer's subjectKeyIdentifier, to match the authorityKeyIdentifier of
    /// those certificates when both are present: two issuers may share a name.
    key_id: Option<Vec<u8>>,
    sha1_name: Vec<u8>,
    /// Also the key hash the CA knows this issuer by
    /// ([`OcspRequestEntry::issuer_key_hash`]).
    sha1_key: Vec<u8>,
    sha256_name: Vec<u8>,
    sha256_key: Vec<u8>,
}

/// The outcome of one request, before it becomes an HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The CA signed a response.
    Signed(SignedResponse),
    /// An OCSPResponse carrying only this (unsuccessful) status.
    Failed(OcspResponseStatus),
}

/// A response the CA signed, with the times the caching headers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedResponse {
    /// The DER `OCSPResponse`, exactly as the CA returned it.
    pub(crate) der: Bytes,
    /// thisUpdate of its SingleResponse.
    pub(crate) this_update: OffsetDateTime,
    /// nextUpdate of its SingleResponse, if any.
    pub(crate) next_update: Option<OffsetDateTime>,
    /// The header values that never change for this response, made once rather
    /// than for every request that is served it.
    pub(crate) headers: FixedHeaders,
}

/// The `ETag`, `Last-Modified` and `Expires` of a signed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FixedHeaders {
    /// The strong entity tag of the DER.
    pub(crate) etag: HeaderValue,
    /// thisUpdate as an HTTP date.
    pub(crate) last_modified: HeaderValue,
    /// nextUpdate as an HTTP date, if any.
    pub(crate) expires: Option<HeaderValue>,
}

impl SignedResponse {
    /// `der` with its times, and the header values they give.
    pub(crate) fn new(
        der: impl Into<Bytes>,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
    ) -> Self {
        let der = der.into();
        let headers = FixedHeaders {
            etag: header_value(etag(&der)),
            last_modified: header_value(http_date(this_update)),
            expires: next_update.map(|at| header_value(http_date(at))),
        };
        Self {
            der,
            this_update,
            next_update,
            headers,
        }
    }
}

/// A header value from text made of visible ASCII (a quoted hex tag, an HTTP
/// date), which is always valid.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Responder {
    /// A responder for the certificates signed by `issuers`, at least one. Fails if
    /// an issuer certificate cannot be parsed or a path is unusable.
    ///
    /// Issuers with the same subject name and key (an intermediate and its
    /// cross-signed copy) are one issuer for OCSP; listing both is harmless.
    pub fn new(
        issuers: Vec<ResponderIssuer>,
        sa: Arc<dyn RevocationLookup>,
        signer: Arc<dyn RevocationSigner>,
        clock: Arc<dyn Clock>,
        settings: ResponderSettings,
    ) -> Result<Self, Error> {
        if issuers.is_empty() {
            return Err(Error::internal(
                "the ocsp responder needs at least one issuer",
            ));
        }
        let mut parsed: Vec<Issuer> = Vec::with_capacity(issuers.len());
        for (index, issuer) in issuers.into_iter().enumerate() {
            let issuer = Issuer::new(issuer)
                .map_err(|detail| Error::internal(format!("issuer {index}: {detail}")))?;
            if let Some(path) = &issuer.path
                && parsed.iter().any(|other| other.path.as_ref() == Some(path))
            {
                return Err(Error::internal(format!(
                    "issuer {index}: path {path:?} is already another issuer's"
                )));
            }
            parsed.push(issuer);
        }
        Ok(Self {
            issuers: parsed,
            sa,
            signer,
            clock,
            settings,
            cache: ResponseCache::new(settings.cache_size),
            feed: OnceLock::new(),
        })
    }

    /// Follows `feed`: distrusts cached responses as the feed reports their
    /// serials' status changes, serves cached responses without reading the SA while the
    /// feed is current, and starts the task that signs responses again before
    /// their refresh point (returned; it runs as long as the runtime, and stops
    /// once the responder is dropped). Call it once; later calls only start
    /// another refresher.
    pub fn follow(self: &Arc<Self>, feed: &Arc<StatusFeed>) -> tokio::task::JoinHandle<()> {
        let responder = Arc::downgrade(self);
        feed.listen(move |event| {
            let Some(responder) = responder.upgrade() else {
                return;
            };
            let mut due = responder.forget(event);
            due.extend(responder.unsigned_new(event));
            if !due.is_empty() {
                // A revocation, or a new certificate, is signed at once, not at the
                // next request: the listener must not wait, so on a task of its own.
                tokio::spawn(async move { responder.sign_again(due).await });
            }
        });
        if self.feed.set(Arc::clone(feed)).is_err() {
            warn!("the ocsp responder follows one status feed; a second one only drops responses");
        }
        let responder = Arc::downgrade(self);
        tokio::spawn(refresh(responder))
    }

    /// Distrusts the cached responses `event` says may be stale, and returns the
    /// keys of those that state another status than the serial's new one.
    fn forget(&self, event: &FeedEvent) -> Vec<CacheKey> {
        match event {
            FeedEvent::Changes(changes) => changes
                .iter()
                .flat_map(|change| {
                    let keys = self.keys(&change.serial);
                    self.cache
                        .invalidate(&change.serial, &keys, change.status.into())
                })
                .collect(),
            FeedEvent::Gap => {
                self.cache.invalidate_all();
                Vec::new()
            }
        }
    }

    /// With presigning on, the keys of the responses to sign for the new
    /// certificates of `event`: good serials of one of our issuers (by their
    /// placement) with no cached SHA-1 response yet.
    fn unsigned_new(&self, event: &FeedEvent) -> Vec<CacheKey> {
        let FeedEvent::Changes(changes) = event else {
            return Vec::new();
        };
        if !self.settings.presign || self.settings.cache_size == 0 {
            return Vec::new();
        }
        changes
            .iter()
            .filter(|change| change.status == CertStatus::Good)
            .filter_map(|change| {
                let placement = change.placement.as_ref()?;
                let issuer = self
                    .issuers
                    .iter()
                    .find(|issuer| issuer.sha1_key == placement.issuer_key_hash)?;
                let key = CacheKey {
                    issuer_key_hash: issuer.sha1_key.clone(),
                    serial: change.serial.clone(),
                    hash_algorithm: CertIdHash::Sha1,
                };
                (!self.cache.contains(&key)).then_some(key)
            })
            .collect()
    }

    /// Has the responses under `keys` signed again, each for its serial's status
    /// read anew; returns how many were signed.
    async fn sign_again(&self, keys: Vec<CacheKey>) -> usize {
        let mut signed = 0;
        for key in keys {
            let Some(issuer) = self
                .issuers
                .iter()
                .find(|issuer| issuer.sha1_key == key.issuer_key_hash)
            else {
                continue;
            };
            let answer = self
                .respond_for(key.serial, &[issuer], key.hash_algorithm, Signing::Always)
                .await;
            if matches!(answer, Answer::Signed(_)) {
                signed += 1;
            }
        }
        signed
    }

    /// Every cache key a response about `serial` may be stored under.
    fn keys(&self, serial: &Serial) -> Vec<CacheKey> {
        let mut keys: Vec<CacheKey> = Vec::with_capacity(self.issuers.len() * 2);
        for issuer in &self.issuers {
            for hash_algorithm in [CertIdHash::Sha1, CertIdHash::Sha256] {
                let key = CacheKey {
                    issuer_key_hash: issuer.sha1_key.clone(),
                    serial: serial.clone(),
                    hash_algorithm,
                };
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Whether cached responses may be served without reading the SA.
    fn feed_is_current(&self) -> bool {
        self.feed.get().is_some_and(|feed| feed.is_current())
    }

    /// The caching settings.
    pub fn settings(&self) -> ResponderSettings {
        self.settings
    }

    /// The current time, from the injected clock.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Answers one DER `OCSPRequest`. Never fails: every problem becomes an OCSP
    /// error status (RFC 6960 §2.3).
    pub(crate) async fn respond(&self, request_der: &[u8]) -> Answer {
        let request = match OcspRequest::from_der(request_der) {
            Ok(request) => request,
            Err(err) => {
                debug!(error = %err, "undecodable ocsp request");
                return Answer::Failed(OcspResponseStatus::MalformedRequest);
            }
        };
        // RFC 5019 §2.1.1: clients send one Request per OCSPRequest; the CA signs one
        // SingleResponse per response, so longer lists are refused as malformed.
        let [single] = request.tbs_request.request_list.as_slice() else {
            debug!(
                count = request.tbs_request.request_list.len(),
                "ocsp request does not hold exactly one certificate"
            );
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        };
        // Request extensions (a nonce, RFC 8954) and a request signature
        // (optionalSignature, RFC 6960 §4.1.2) are ignored: the request is answered
        // as if they were absent. A nonce is not echoed, since responses are
        // pre-signed and shared by every client asking about the certificate
        // (RFC 5019 §4), and no signature is required, so none is checked.
        let cert_id = &single.req_cert;
        let algorithm = cert_id.hash_algorithm.oid;
        let hash_algorithm = if algorithm == ID_SHA1 {
            CertIdHash::Sha1
        } else if algorithm == ID_SHA256 {
            CertIdHash::Sha256
        } else {
            debug!(%algorithm, "ocsp request uses an unsupported certid hash");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        };
        // Hashes of another length cannot come from this algorithm: the CertID is
        // garbled rather than about some other issuer.
        let digest_len = match hash_algorithm {
            CertIdHash::Sha1 => 20,
            CertIdHash::Sha256 => 32,
        };
        if cert_id.issuer_name_hash.as_bytes().len() != digest_len
            || cert_id.issuer_key_hash.as_bytes().len() != digest_len
        {
            debug!(%hash_algorithm, "ocsp request has certid hashes of the wrong length");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        }
        // Every issuer the CertID names: more than one only when the same issuer is
        // configured twice (e.g. with its cross-signed copy).
        let named: Vec<&Issuer> = self
            .issuers
            .iter()
            .filter(|issuer| issuer.is_named_by(cert_id))
            .collect();
        if named.is_empty() {
            debug!("ocsp request is about another issuer");
            return Answer::Failed(OcspResponseStatus::Unauthorized);
        }
        let Ok(serial) = Serial::from_bytes(cert_id.serial_number.as_bytes()) else {
            debug!("ocsp request has an invalid serial number");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        };
        self.respond_for(serial, &named, hash_algorithm, Signing::IfStale)
            .await
    }

    /// The certificates to serve over HTTP: each issuer's path and DER.
    pub(crate) fn issuer_certs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.issuers.iter().filter_map(|issuer| {
            let path = issuer.path.as_deref()?;
            Some((path, issuer.cert_der.as_slice()))
        })
    }

    /// Looks up `serial`, checks that its certificate (or precertificate) names one
    /// of the `named` issuers as its issuer, and serves a response about it with
    /// that issuer, in CertIDs hashed with `hash_algorithm`. A serial the SA does
    /// not know is `unknown`, signed by the first of the `named` issuers (all of
    /// them are the same issuer).
    async fn respond_for(
        &self,
        serial: Serial,
        named: &[&Issuer],
        hash_algorithm: CertIdHash,
        signing: Signing,
    ) -> Answer {
        if signing == Signing::IfStale && self.feed_is_current() {
            let now = self.now();
            for issuer in named {
                let key = CacheKey {
                    issuer_key_hash: issuer.sha1_key.clone(),
                    serial: serial.clone(),
                    hash_algorithm,
                };
                if let Some(cached) = self.cache.trusted(&key, now) {
                    return Answer::Signed(cached);
                }
            }
        }
        // Taken before the read: a change reported after it makes what is signed
        // for this read untrusted.
        let read = self.cache.epoch(&serial);
        let (issuer, signed_for, precertificate) = match self.sa.revocation_status(&serial).await {
            Ok(record) => {
                let issuer = match signer_of(&record.der) {
                    Ok(signer) => named.iter().find(|issuer| issuer.signed(&signer)),
                    Err(err) => {
                        error!(
                            %serial,
                            precertificate = record.precertificate,
                            error = %err,
                            "cannot parse the stored certificate"
                        );
                        return Answer::Failed(OcspResponseStatus::TryLater);
                    }
                };
                let Some(issuer) = issuer else {
                    warn!(%serial, "serial belongs to a certificate of another issuer");
                    return Answer::Failed(OcspResponseStatus::Unauthorized);
                };
                let signed_for = SignedFor {
                    status: OcspStatus::from(record.status),
                    revoked_at: record.revoked_at,
                    reason: record.revocation_reason,
                };
                (*issuer, signed_for, record.precertificate)
            }
            // RFC 6960 §2.2: the issuer is ours, and Basalt never issued this serial.
            Err(err) if err.is(ErrorKind::NotFound) => {
                let [issuer, ..] = named else {
                    return Answer::Failed(OcspResponseStatus::Unauthorized);
                };
                debug!(%serial, "ocsp request for a serial never issued");
                let unknown = SignedFor {
                    status: OcspStatus::Unknown,
                    revoked_at: None,
                    reason: None,
                };
                (*issuer, unknown, false)
            }
            Err(err) => {
                error!(%serial, error = %err, "cannot read certificate status for ocsp");
                return Answer::Failed(OcspResponseStatus::TryLater);
            }
        };
        let key = CacheKey {
            issuer_key_hash: issuer.sha1_key.clone(),
            serial,
            hash_algorithm,
        };
        if signing == Signing::IfStale
            && let Some(cached) = self.cache.fresh(&key, &signed_for, self.now(), read)
        {
            debug!(serial = %key.serial, status = %signed_for.status, "cached ocsp response served");
            return Answer::Signed(cached);
        }
        let signed = match self.sign(&key, &signed_for).await {
            Ok(signed) => signed,
            Err(answer) => return answer,
        };
        debug!(
            serial = %key.serial,
            status = %signed_for.status,
            precertificate,
            "ocsp response signed and served"
        );
        self.cache.store(key, signed_for, signed.clone(), read);
        Answer::Signed(signed)
    }

    /// Signs again the cached responses whose refresh point comes within
    /// [`REFRESH_LEAD`], at most [`REFRESH_BATCH`] of them, reading each serial's
    /// status anew; returns how many it signed.
    pub(crate) async fn refresh_due(&self) -> usize {
        let due = self.cache.due(self.now() + REFRESH_LEAD, REFRESH_BATCH);
        self.sign_again(due).await
    }

    /// Has the CA sign the response `key` names, stating `signed_for`; an error is
    /// the answer to give instead.
    async fn sign(&self, key: &CacheKey, signed_for: &SignedFor) -> Result<SignedResponse, Answer> {
        let serial = &key.serial;
        let entry = OcspRequestEntry {
            serial: serial.clone(),
            status: signed_for.status,
            revoked_at: signed_for.revoked_at,
            reason: signed_for.reason,
            issuer_key_hash: key.issuer_key_hash.clone(),
            hash_algorithm: key.hash_algorithm,
        };
        let signed = self.signer.sign_ocsp(vec![entry]).await;
        let der = match signed.map(<[Vec<u8>; 1]>::try_from) {
            Ok(Ok([der])) => der,
            Ok(Err(responses)) => {
                error!(%serial, count = responses.len(), "ca returned the wrong number of ocsp responses");
                return Err(Answer::Failed(OcspResponseStatus::TryLater));
            }
            Err(err) => {
                error!(%serial, error = %err, "ca could not sign an ocsp response");
                return Err(Answer::Failed(OcspResponseStatus::TryLater));
            }
        };
        inspect(der, serial).map_err(|err| {
            error!(%serial, error = %err, "ca returned an unusable ocsp response");
            Answer::Failed(OcspResponseStatus::TryLater)
        })
    }
}

/// Whether [`Responder::respond_for`] may serve a cached response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signing {
    /// Serve the cached response while it is right and fresh.
    IfStale,
    /// Have the CA sign anew (the refresher).
    Always,
}

/// The refresher: every [`REFRESH_SCAN`], signs again the responses nearing their
/// refresh point, until the responder is dropped.
async fn refresh(responder: Weak<Responder>) {
    let mut ticks = tokio::time::interval(REFRESH_SCAN);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(responder) = responder.upgrade() else {
            return;
        };
        let signed = responder.refresh_due().await;
        if signed > 0 {
            debug!(
                signed,
                "ocsp responses signed again before their refresh point"
            );
        }
    }
}

/// Reads an issuer certificate file, PEM or DER, and returns its DER. A PEM file
/// must hold that one certificate: a bundle is refused rather than guessed from.
pub fn load_issuer_cert(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|err| {
        Error::internal(format!(
            "cannot read issuer certificate {}: {err}",
            path.display()
        ))
    })?;
    let invalid = |err: der::Error| {
        Error::internal(format!(
            "invalid issuer certificate {}: {err}",
            path.display()
        ))
    };
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let blocks = bytes
            .windows(b"-----BEGIN".len())
            .filter(|window| *window == b"-----BEGIN")
            .count();
        if blocks > 1 {
            return Err(Error::internal(format!(
                "issuer certificate {} holds {blocks} PEM blocks; it must hold the issuer \
                 certificate alone",
                path.display()
            )));
        }
        Certificate::from_pem(&bytes)
            .and_then(|cert| cert.to_der())
            .map_err(invalid)
    } else {
        Certificate::from_der(&bytes).map_err(invalid)?;
        Ok(bytes)
    }
}

impl Issuer {
    /// Parses the issuer certificate and checks its path; the error says which.
    fn new(issuer: ResponderIssuer) -> Result<Self, String> {
        let ResponderIssuer { cert_der, path } = issuer;
        if let Some(path) = &path {
            check_issuer_path(path).map_err(|problem| format!("path {problem}"))?;
        }
        let cert = Certificate::from_der(&cert_der)
            .map_err(|err| format!("cannot parse the issuer certificate: {err}"))?;
        let tbs = &cert.tbs_certificate;
        let name_der = tbs
            .subject
            .to_der()
            .map_err(|err| format!("cannot encode the issuer's subject name: {err}"))?;
        let key_id = tbs
            .get::<SubjectKeyIdentifier>()
            .map_err(|err| format!("invalid subjectKeyIdentifier: {err}"))?
            .map(|(_, ski)| ski.0.into_bytes());
        let key = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        Ok(Self {
            sha1_name: sha1(&name_der),
            sha1_key: sha1(key),
            sha256_name: sha256(&name_der),
            sha256_key: sha256(key),
            name_der,
            key_id,
            cert_der,
            path,
        })
    }

    /// Whether `cert_id` carries this issuer's name and key hashes for its hash
    /// algorithm (SHA-1 or SHA-256).
    fn is_named_by(&self, cert_id: &CertId) -> bool {
        let algorithm = cert_id.hash_algorithm.oid;
        let (name_hash, key_hash) = if algorithm == ID_SHA1 {
            (&self.sha1_name, &self.sha1_key)
        } else if algorithm == ID_SHA256 {
            (&self.sha256_name, &self.sha256_key)
        } else {
            return false;
        };
        cert_id.issuer_name_hash.as_bytes() == name_hash.as_slice()
            && cert_id.issuer_key_hash.as_bytes() == key_hash.as_slice()
    }

    /// Whether a certificate naming `signer` as its issuer comes from this issuer:
    /// same name, and same key identifier when both sides carry one.
    fn signed(&self, signer: &SignerOf) -> bool {
        signer.name_der == self.name_der
            && match (&signer.key_id, &self.key_id) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            }
    }
}

/// Checks an issuer certificate's HTTP path: a plain absolute path that the router
/// can serve as a static route and no client rewrites. The message completes
/// "path …".
pub(crate) fn check_issuer_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must start with '/'");
    }
    if path == "/" {
        return Err("must name a file, not '/' (where OCSP requests are posted)");
    }
    let plain =
        |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/');
    if !path.bytes().all(plain) {
        return Err(
            "may hold only ASCII letters, digits, '-', '.', '_', '~' and '/' \
             (no '?', '#', '%', braces or spaces)",
        );
    }
    if path.contains("..") {
        return Err("must not contain '..'");
    }
    if path[1..]
        .split('/')
        .any(|segment| segment.is_empty() || segment == ".")
    {
        return Err("must not contain empty or '.' segments");
    }
    Ok(())
}

/// Who a certificate says signed it: its issuer name and authority key identifier.
struct SignerOf {
    name_der: Vec<u8>,
    key_id: Option<Vec<u8>>,
}

/// Reads the issuer name and authorityKeyIdentifier keyIdentifier of the
/// certificate `der`.
fn signer_of(der: &[u8]) -> Result<SignerOf, der::Error> {
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    let key_id = tbs
        .get::<AuthorityKeyIdentifier>()?
        .and_then(|(_, aki)| aki.key_identifier)
        .map(OctetString::into_bytes);
    Ok(SignerOf {
        name_der: tbs.issuer.to_der()?,
        key_id,
    })
}

/// Checks that the CA's response is a successful basic response about `serial`, and
/// reads its times.
fn inspect(der: Vec<u8>, serial: &Serial) -> Result<SignedResponse, String> {
    let response = OcspResponse::from_der(&der).map_err(|err| err.to_string())?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(format!("status {:?}", response.response_status));
    }
    let bytes = response
        .response_bytes
        .ok_or("a successful response without responseBytes")?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(format!("response type {}", bytes.response_type));
    }
    let basic =
        BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(|err| err.to_string())?;
    let [single] = basic.tbs_response_data.responses.as_slice() else {
        return Err(format!(
            "{} single responses",
            basic.tbs_response_data.responses.len()
        ));
    };
    let answered = Serial::from_bytes(single.cert_id.serial_number.as_bytes())
        .map_err(|err| err.to_string())?;
    if &answered != serial {
        return Err(format!("response is about serial {answered}"));
    }
    let this_update = to_offset_date_time(&single.this_update)?;
    let next_update = single
        .next_update
        .as_ref()
        .map(to_offset_date_time)
        .transpose()?;
    Ok(SignedResponse::new(der, this_update, next_update))
}

fn to_offset_date_time(at: &OcspGeneralizedTime) -> Result<OffsetDateTime, String> {
    i64::try_from(at.0.to_unix_duration().as_secs())
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .ok_or_else(|| format!("time {:?} out of range", at.0))
}

pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateParams;
    use rcgen::KeyPair;

    use super::*;

    fn issuer_cert() -> rcgen::Certificate {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Load Test Issuer");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap()
    }

    #[test]
    fn issuer_cert_loads_from_pem_or_der() {
        let cert = issuer_cert();
        let dir = std::env::temp_dir().join(format!("basalt-ocsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("issuer.pem");
        let der = dir.join("issuer.der");
        let junk = dir.join("junk.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        std::fs::write(&der, cert.der()).unwrap();
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(load_issuer_cert(&pem).unwrap(), cert.der().to_vec());
        assert_eq!(load_issuer_cert(&der).unwrap(), cert.der().to_vec());
        assert!(load_issuer_cert(&junk).is_err());
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, format!("{}{}", cert.pem(), issuer_cert().pem())).unwrap();
        let err = load_issuer_cert(&bundle).unwrap_err();
        assert!(err.detail.contains("holds 2 PEM blocks"), "{err}");
        assert!(load_issuer_cert(&dir.join("missing.pem")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unusable_ca_responses_are_rejected() {
        let serial: Serial = "01".parse().unwrap();
        let err = inspect(b"\x30\x03\x0a\x01\x03".to_vec(), &serial).unwrap_err();
        assert!(err.contains("TryLater"), "{err}");
        assert!(inspect(Vec::new(), &serial).is_err());
    }

    struct Nothing;

    #[async_trait::async_trait]
    impl RevocationSigner for Nothing {
        async fn sign_ocsp(&self, _entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
            Err(Error::internal("unused"))
        }

        async fn generate_crl(&self, _request: basalt_core::CrlRequest) -> Result<Vec<u8>, Error> {
            Err(Error::internal("unused"))
        }
    }

    #[async_trait::async_trait]
    impl RevocationLookup for Nothing {
        async fn revocation_status(
            &self,
            _: &Serial,
        ) -> Result<basalt_core::RevocationStatus, Error> {
            Err(Error::internal("unused"))
        }

        async fn revoked_certificates(
            &self,
            _: &[u8],
            _: u32,
            _: OffsetDateTime,
        ) -> Result<Vec<basalt_core::RevokedEntry>, Error> {
            Err(Error::internal("unused"))
        }

        async fn status_changes(
            &self,
            _: OffsetDateTime,
            _: u32,
        ) -> Result<Vec<basalt_core::StatusChange>, Error> {
            Err(Error::internal("unused"))
        }
    }

    fn responder(issuers: Vec<ResponderIssuer>) -> Result<Responder, Error> {
        Responder::new(
            issuers,
            Arc::new(Nothing),
            Arc::new(Nothing),
            Arc::new(basalt_core::SystemClock),
            ResponderSettings {
                max_age: Duration::from_secs(60),
                cache_size: 16,
                presign: false,
            },
        )
    }

    fn issuer(cert_der: &[u8], path: Option<&str>) -> ResponderIssuer {
        ResponderIssuer {
            cert_der: cert_der.to_vec(),
            path: path.map(str::to_owned),
        }
    }

    #[test]
    fn unusable_issuers_are_refused() {
        let cert = issuer_cert();
        let der = cert.der().as_ref();
        let err = responder(Vec::new()).err().unwrap();
        assert_eq!(err.detail, "the ocsp responder needs at least one issuer");
        let err = responder(vec![issuer(der, None), issuer(b"not a certificate", None)])
            .err()
            .unwrap();
        assert!(
            err.detail
                .starts_with("issuer 1: cannot parse the issuer certificate"),
            "{err}"
        );
        let err = responder(vec![issuer(der, Some("/a?b"))]).err().unwrap();
        assert!(
            err.detail.starts_with("issuer 0: path may hold only"),
            "{err}"
        );
        let err = responder(vec![
            issuer(der, Some("/a.der")),
            issuer(der, Some("/a.der")),
        ])
        .err()
        .unwrap();
        assert_eq!(
            err.detail,
            "issuer 1: path \"/a.der\" is already another issuer's"
        );
    }

    #[test]
    fn one_issuer_may_be_listed_twice() {
        let cert = issuer_cert();
        let der = cert.der().as_ref();
        let responder = responder(vec![
            issuer(der, Some("/a.der")),
            issuer(der, None),
            issuer(der, Some("/b.der")),
        ])
        .unwrap();
        let served: Vec<_> = responder.issuer_certs().collect();
        assert_eq!(served, vec![("/a.der", der), ("/b.der", der)]);
    }

    #[test]
    fn issuer_paths_must_be_plain() {
        for good in [
            "/a",
            "/issuers/ecdsa.der",
            "/x/y-z_1~2.crt",
            "/.well-known/x",
        ] {
            assert_eq!(check_issuer_path(good), Ok(()), "{good}");
        }
        for bad in [
            "", "a", "/", "/a b", "/a?", "/a#", "/a%41", "/{a}", "/*a", "/a:b", "/é", "/a/../b",
            "/a..b", "/a//b", "/a/./b", "/a/", "/./a",
        ] {
            assert!(check_issuer_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signer_is_matched_by_name_and_key_identifier() {
        let ours = Issuer::new(issuer(issuer_cert().der(), None)).unwrap();
        assert!(ours.key_id.is_some(), "rcgen CA certificates carry an SKI");
        let name_der = ours.name_der.clone();
        let signer = |name_der: &[u8], key_id: Option<&[u8]>| SignerOf {
            name_der: name_der.to_vec(),
            key_id: key_id.map(<[u8]>::to_vec),
        };
        assert!(ours.signed(&signer(&name_der, None)));
        assert!(ours.signed(&signer(&name_der, ours.key_id.as_deref())));
        assert!(!ours.signed(&signer(&name_der, Some(b"another key"))));
        assert!(!ours.signed(&signer(b"another name", None)));
    }
}
