//! The protocol logic: decode a request, check that it asks about our issuer, look
//! the serial up in the SA and have the CA sign the answer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use basalt_core::CertificateLookup;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::OcspRequestEntry;
use basalt_core::RevocationSigner;
use basalt_core::Serial;
use der::Decode;
use der::DecodePem;
use der::Encode;
use der::asn1::ObjectIdentifier;
use ring::digest;
use time::OffsetDateTime;
use tracing::debug;
use tracing::error;
use tracing::info;
use tracing::warn;
use x509_cert::Certificate;
use x509_ocsp::BasicOcspResponse;
use x509_ocsp::OcspGeneralizedTime;
use x509_ocsp::OcspRequest;
use x509_ocsp::OcspResponse;
use x509_ocsp::OcspResponseStatus;

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
}

/// Answers OCSP requests about the certificates of one issuer.
pub struct Responder {
    issuer: IssuerHashes,
    sa: Arc<dyn CertificateLookup>,
    signer: Arc<dyn RevocationSigner>,
    clock: Arc<dyn Clock>,
    settings: ResponderSettings,
}

/// What a CertID must carry to be about our issuer (RFC 6960 §4.1.1).
struct IssuerHashes {
    /// The DER of the issuer's subject name, to match the issuer field of the
    /// certificates the SA returns.
    name_der: Vec<u8>,
    sha1_name: Vec<u8>,
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
    pub(crate) der: Vec<u8>,
    /// thisUpdate of its SingleResponse.
    pub(crate) this_update: OffsetDateTime,
    /// nextUpdate of its SingleResponse, if any.
    pub(crate) next_update: Option<OffsetDateTime>,
}

impl Responder {
    /// A responder for the certificates issued by `issuer_cert_der` (one DER
    /// certificate). Fails if the certificate cannot be parsed.
    pub fn new(
        issuer_cert_der: &[u8],
        sa: Arc<dyn CertificateLookup>,
        signer: Arc<dyn RevocationSigner>,
        clock: Arc<dyn Clock>,
        settings: ResponderSettings,
    ) -> Result<Self, Error> {
        let cert = Certificate::from_der(issuer_cert_der).map_err(|err| {
            Error::internal(format!("cannot parse the issuer certificate: {err}"))
        })?;
        let name_der = cert.tbs_certificate.subject.to_der().map_err(|err| {
            Error::internal(format!("cannot encode the issuer's subject name: {err}"))
        })?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let issuer = IssuerHashes {
            sha1_name: sha1(&name_der),
            sha1_key: sha1(key),
            sha256_name: sha256(&name_der),
            sha256_key: sha256(key),
            name_der,
        };
        Ok(Self {
            issuer,
            sa,
            signer,
            clock,
            settings,
        })
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
        let cert_id = &single.req_cert;
        let algorithm = cert_id.hash_algorithm.oid;
        let (name_hash, key_hash) = if algorithm == ID_SHA1 {
            (&self.issuer.sha1_name, &self.issuer.sha1_key)
        } else if algorithm == ID_SHA256 {
            (&self.issuer.sha256_name, &self.issuer.sha256_key)
        } else {
            debug!(%algorithm, "ocsp request uses an unsupported certid hash");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        };
        if cert_id.issuer_name_hash.as_bytes() != name_hash.as_slice()
            || cert_id.issuer_key_hash.as_bytes() != key_hash.as_slice()
        {
            debug!("ocsp request is about another issuer");
            return Answer::Failed(OcspResponseStatus::Unauthorized);
        }
        if algorithm == ID_SHA256 {
            // The CA signs SHA-1 CertIDs only, and a response must repeat the request's
            // CertID (RFC 6960 §4.2.2.3), so it could not answer this request.
            info!("sha-256 certids are not supported yet; they arrive with the full responder");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        }
        let Ok(serial) = Serial::from_bytes(cert_id.serial_number.as_bytes()) else {
            debug!("ocsp request has an invalid serial number");
            return Answer::Failed(OcspResponseStatus::MalformedRequest);
        };
        self.respond_for(serial).await
    }

    /// Looks up `serial` and has the CA sign its status.
    async fn respond_for(&self, serial: Serial) -> Answer {
        let record = match self.sa.certificate(&serial).await {
            Ok(record) => record,
            // RFC 5019 §2.2.3: unauthorized for certificates the responder does not know.
            Err(err) if err.is(ErrorKind::NotFound) => {
                debug!(%serial, "ocsp request for an unknown serial");
                return Answer::Failed(OcspResponseStatus::Unauthorized);
            }
            Err(err) => {
                error!(%serial, error = %err, "cannot read certificate status for ocsp");
                return Answer::Failed(OcspResponseStatus::TryLater);
            }
        };
        match issued_by(&record.der, &self.issuer.name_der) {
            Ok(true) => {}
            Ok(false) => {
                warn!(%serial, "serial belongs to a certificate of another issuer");
                return Answer::Failed(OcspResponseStatus::Unauthorized);
            }
            Err(err) => {
                error!(%serial, error = %err, "cannot parse the stored certificate");
                return Answer::Failed(OcspResponseStatus::TryLater);
            }
        }
        let entry = OcspRequestEntry {
            serial: serial.clone(),
            status: record.status,
            revoked_at: record.revoked_at,
            reason: record.revocation_reason,
        };
        let signed = self.signer.sign_ocsp(vec![entry]).await;
        let der = match signed.map(<[Vec<u8>; 1]>::try_from) {
            Ok(Ok([der])) => der,
            Ok(Err(responses)) => {
                error!(%serial, count = responses.len(), "ca returned the wrong number of ocsp responses");
                return Answer::Failed(OcspResponseStatus::TryLater);
            }
            Err(err) => {
                error!(%serial, error = %err, "ca could not sign an ocsp response");
                return Answer::Failed(OcspResponseStatus::TryLater);
            }
        };
        match inspect(der, &serial) {
            Ok(signed) => {
                debug!(%serial, status = %record.status, "ocsp response served");
                Answer::Signed(signed)
            }
            Err(err) => {
                error!(%serial, error = %err, "ca returned an unusable ocsp response");
                Answer::Failed(OcspResponseStatus::TryLater)
            }
        }
    }
}

/// Reads an issuer certificate file, PEM or DER, and returns its DER.
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
        Certificate::from_pem(&bytes)
            .and_then(|cert| cert.to_der())
            .map_err(invalid)
    } else {
        Certificate::from_der(&bytes).map_err(invalid)?;
        Ok(bytes)
    }
}

/// Whether the certificate `der` names `issuer_name_der` as its issuer.
fn issued_by(der: &[u8], issuer_name_der: &[u8]) -> Result<bool, der::Error> {
    let cert = Certificate::from_der(der)?;
    Ok(cert.tbs_certificate.issuer.to_der()? == issuer_name_der)
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
    Ok(SignedResponse {
        der,
        this_update,
        next_update,
    })
}

fn to_offset_date_time(at: &OcspGeneralizedTime) -> Result<OffsetDateTime, String> {
    i64::try_from(at.0.to_unix_duration().as_secs())
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .ok_or_else(|| format!("time {:?} out of range", at.0))
}

fn sha1(data: &[u8]) -> Vec<u8> {
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

    #[test]
    fn garbage_issuer_certificate_is_refused() {
        struct Nothing;
        #[async_trait::async_trait]
        impl RevocationSigner for Nothing {
            async fn sign_ocsp(
                &self,
                _entries: Vec<OcspRequestEntry>,
            ) -> Result<Vec<Vec<u8>>, Error> {
                Err(Error::internal("unused"))
            }
        }
        #[async_trait::async_trait]
        impl CertificateLookup for Nothing {
            async fn certificate(
                &self,
                _: &Serial,
            ) -> Result<basalt_core::CertificateRecord, Error> {
                Err(Error::internal("unused"))
            }
        }
        let result = Responder::new(
            b"not a certificate",
            Arc::new(Nothing),
            Arc::new(Nothing),
            Arc::new(basalt_core::SystemClock),
            ResponderSettings {
                max_age: Duration::from_secs(60),
            },
        );
        assert!(result.is_err());
    }
}
