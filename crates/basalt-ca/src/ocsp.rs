//! OCSP response signing (RFC 6960), by the issuer key itself or by the issuer's
//! delegated responder.
//!
//! The responses are the minimal profile of RFC 5019 that Let's Encrypt serves: one
//! SingleResponse each, responderID by key hash (RFC 6960 §4.2.2.3), no nonce. The
//! CertID is hashed with the algorithm the responder asks for (SHA-1 or SHA-256,
//! the request's own), always over the issuer's name and key, and the status may be
//! `unknown` for a serial the issuer never signed (RFC 6960 §2.2).
//!
//! Who signs depends on the issuer:
//!
//! * by default its own key: the responderID is the issuer's key hash and the
//!   response carries no certificates, since clients already have the issuer's;
//! * with a delegated responder ([`crate::OcspSigner`], the `ocsp_signer` of its
//!   `[[issuers]]` table; RFC 6960 §4.2.2.2), the responder's key: the
//!   responderID is the SHA-1 of the responder certificate's subjectPublicKey,
//!   and the BasicOCSPResponse's `certs` holds that certificate, which the issuer
//!   signed with id-kp-OCSPSigning, so that a client can check it chains to the
//!   issuer of the certificate in question. The issuer key signs no responses.
//!
//! The signature algorithm follows the signing key: ECDSA with SHA-256 (P-256) or
//! SHA-384 (P-384), or RSA PKCS#1 v1.5 with the key's hash.
//!
//! The [`RevocationSigner`] implementation lives here and hands CRLs to
//! [`crate::crl`].

use std::time::Duration;

use async_trait::async_trait;
use basalt_core::CertIdHash;
use basalt_core::CrlRequest;
use basalt_core::Error;
use basalt_core::OcspRequestEntry;
use basalt_core::OcspStatus;
use basalt_core::RevocationReason;
use basalt_core::RevocationSigner;
use der::Encode;
use der::asn1::Any;
use der::asn1::BitString;
use der::asn1::Null;
use der::asn1::ObjectIdentifier;
use der::asn1::OctetString;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::BasicOcspResponse;
use x509_ocsp::CertId;
use x509_ocsp::OcspGeneralizedTime;
use x509_ocsp::OcspResponse;
use x509_ocsp::ResponderId;
use x509_ocsp::ResponseData;
use x509_ocsp::RevokedInfo;
use x509_ocsp::SingleResponse;
use x509_ocsp::Version;

use crate::Ca;
use crate::Issuer;
use crate::OcspSigner;
use crate::issuer::sha1;

/// id-sha1 (RFC 3279 §2.2.1), the CertID hash every OCSP client understands.
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754 §2.2).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

#[async_trait]
impl RevocationSigner for Ca {
    async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
        let now = self.clock.now();
        entries
            .iter()
            .map(|entry| {
                let issuer = self
                    .issuers
                    .iter()
                    .find(|issuer| issuer.key_hash() == entry.issuer_key_hash.as_slice())
                    .ok_or_else(|| {
                        Error::malformed(format!(
                            "the CA has no issuer whose key hash is {}",
                            hex(&entry.issuer_key_hash)
                        ))
                    })?;
                sign_ocsp_response(issuer, entry, now, self.ocsp_validity)
            })
            .collect()
    }

    /// Signs one CRL shard of an issuer with a `crl_url_base`: version 2, its
    /// issuingDistributionPoint the shard's URL, nextUpdate `crl.lifetime` after
    /// thisUpdate, the CRL number thisUpdate in Unix nanoseconds, and checked
    /// before it is returned.
    async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
        self.sign_crl(request)
    }
}

/// One DER `OCSPResponse` (status successful) about `entry` of `issuer`, valid from
/// `now` for `validity`, signed by the issuer's delegated responder if it has one
/// (refused once that responder's certificate has expired), else by the issuer.
pub fn sign_ocsp_response(
    issuer: &Issuer,
    entry: &OcspRequestEntry,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<Vec<u8>, Error> {
    let encoding =
        |err: der::Error| Error::internal(format!("cannot encode an OCSP response: {err}"));
    let key_hash = issuer.key_hash().to_vec();
    let this_update = generalized_time(now)?;
    let next_update = now
        .checked_add(
            time::Duration::try_from(validity)
                .map_err(|_| Error::internal("OCSP validity out of range"))?,
        )
        .ok_or_else(|| Error::internal("OCSP nextUpdate out of range"))
        .and_then(generalized_time)?;
    let cert_status = match entry.status {
        OcspStatus::Good => x509_ocsp::CertStatus::good(),
        OcspStatus::Unknown => x509_ocsp::CertStatus::unknown(),
        OcspStatus::Revoked => {
            let revoked_at = entry.revoked_at.ok_or_else(|| {
                Error::malformed(format!(
                    "revoked certificate {} has no revocation time",
                    entry.serial
                ))
            })?;
            x509_ocsp::CertStatus::revoked(RevokedInfo {
                revocation_time: generalized_time(revoked_at)?,
                revocation_reason: entry.reason.map(crl_reason),
            })
        }
    };
    let (oid, name_hash, cert_id_key_hash) = match entry.hash_algorithm {
        CertIdHash::Sha1 => (ID_SHA1, sha1(issuer.subject_der()), key_hash.clone()),
        CertIdHash::Sha256 => (
            ID_SHA256,
            sha256(issuer.subject_der()),
            sha256(issuer.public_key_bits()),
        ),
    };
    let single = SingleResponse {
        cert_id: CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(name_hash).map_err(encoding)?,
            issuer_key_hash: OctetString::new(cert_id_key_hash).map_err(encoding)?,
            serial_number: SerialNumber::new(entry.serial.as_bytes()).map_err(encoding)?,
        },
        cert_status,
        this_update,
        next_update: Some(next_update),
        single_extensions: None,
    };
    let signer = issuer.ocsp_signer();
    let responder_key_hash = signer.map(OcspSigner::key_hash).unwrap_or(&key_hash);
    let tbs_response_data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(responder_key_hash).map_err(encoding)?),
        produced_at: this_update,
        responses: vec![single],
        response_extensions: None,
    };
    let tbs = tbs_response_data.to_der().map_err(encoding)?;
    let (signature, algorithm, certs) = match signer {
        Some(signer) => (
            signer.sign(&tbs, now)?,
            signer.algorithm(),
            Some(vec![signer.certificate().clone()]),
        ),
        None => (issuer.sign(&tbs)?, issuer.algorithm(), None),
    };
    let basic = BasicOcspResponse {
        tbs_response_data,
        signature_algorithm: signature_algorithm(algorithm)?,
        signature: BitString::from_bytes(&signature).map_err(encoding)?,
        certs,
    };
    OcspResponse::successful(basic)
        .and_then(|response| response.to_der())
        .map_err(encoding)
}

/// The AlgorithmIdentifier of the signatures of a key signing with `alg`.
fn signature_algorithm(
    alg: &'static rcgen::SignatureAlgorithm,
) -> Result<AlgorithmIdentifierOwned, Error> {
    let (oid, null_params) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (ECDSA_WITH_SHA256, false)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (ECDSA_WITH_SHA384, false)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        (SHA256_WITH_RSA, true)
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        (SHA384_WITH_RSA, true)
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        (SHA512_WITH_RSA, true)
    } else {
        return Err(Error::internal(format!(
            "cannot sign OCSP responses with {alg:?}"
        )));
    };
    Ok(AlgorithmIdentifierOwned {
        oid,
        // RFC 4055 §5: RSA PKCS#1 v1.5 identifiers carry NULL; RFC 5758 §3.2: ECDSA
        // identifiers carry none.
        parameters: null_params.then(|| Any::from(Null)),
    })
}

fn crl_reason(reason: RevocationReason) -> CrlReason {
    match reason {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Lowercase hex, as key hashes are named in errors and logs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn generalized_time(at: OffsetDateTime) -> Result<OcspGeneralizedTime, Error> {
    let seconds = u64::try_from(at.unix_timestamp())
        .map_err(|_| Error::internal("OCSP times before 1970 cannot be encoded"))?;
    der::DateTime::from_unix_duration(Duration::from_secs(seconds))
        .map(OcspGeneralizedTime::from)
        .map_err(|err| Error::internal(format!("cannot encode time {at}: {err}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use basalt_core::FixedClock;
    use basalt_core::Serial;
    use der::Decode;
    use ring::signature::ECDSA_P256_SHA256_ASN1;
    use ring::signature::RSA_PKCS1_2048_8192_SHA256;
    use ring::signature::UnparsedPublicKey;
    use x509_ocsp::OcspResponseStatus;

    use super::*;
    use crate::Profiles;
    use crate::test_support::FakeStorage;
    use crate::test_support::fixed_now;
    use crate::test_support::test_issuer;
    use crate::test_support::test_rsa_issuer;

    fn decode(der: &[u8]) -> BasicOcspResponse {
        let response = OcspResponse::from_der(der).unwrap();
        assert_eq!(response.response_status, OcspResponseStatus::Successful);
        let bytes = response.response_bytes.unwrap();
        assert_eq!(
            bytes.response_type,
            ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1")
        );
        BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap()
    }

    fn verify(issuer: &Issuer, basic: &BasicOcspResponse) -> Result<(), ring::error::Unspecified> {
        let tbs = basic.tbs_response_data.to_der().unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, issuer.public_key_bits())
            .verify(&tbs, basic.signature.raw_bytes())
    }

    #[tokio::test]
    async fn good_and_revoked_responses_verify() {
        let (issuer, _root) = test_issuer();
        let clock = Arc::new(FixedClock::new(fixed_now()));
        let ca = Ca::new(
            issuer,
            Profiles::default(),
            Arc::new(FakeStorage::default()),
            clock,
        )
        .with_ocsp_validity(Duration::from_secs(3 * 86_400));
        let good: Serial = "7f0102030405060708".parse().unwrap();
        let revoked: Serial = "0a0b0c0d0e0f1011".parse().unwrap();
        let revoked_at = fixed_now() - time::Duration::hours(5);
        let responses = ca
            .sign_ocsp(vec![
                OcspRequestEntry {
                    serial: good.clone(),
                    status: OcspStatus::Good,
                    revoked_at: None,
                    reason: None,
                    issuer_key_hash: ca.issuer().key_hash().to_vec(),
                    hash_algorithm: CertIdHash::Sha1,
                },
                OcspRequestEntry {
                    serial: revoked.clone(),
                    status: OcspStatus::Revoked,
                    revoked_at: Some(revoked_at),
                    reason: Some(RevocationReason::KeyCompromise),
                    issuer_key_hash: ca.issuer().key_hash().to_vec(),
                    hash_algorithm: CertIdHash::Sha1,
                },
            ])
            .await
            .unwrap();
        assert_eq!(responses.len(), 2);

        let basic = decode(&responses[0]);
        verify(ca.issuer(), &basic).expect("signature verifies with the issuer key");
        assert_eq!(basic.signature_algorithm.oid, ECDSA_WITH_SHA256);
        let data = &basic.tbs_response_data;
        assert_eq!(
            data.responder_id,
            ResponderId::ByKey(OctetString::new(sha1(ca.issuer().public_key_bits())).unwrap())
        );
        let single = &data.responses[0];
        assert_eq!(single.cert_id.serial_number.as_bytes(), good.as_bytes());
        assert_eq!(single.cert_id.hash_algorithm.oid, ID_SHA1);
        assert_eq!(
            single.cert_id.issuer_name_hash.as_bytes(),
            sha1(ca.issuer().subject_der())
        );
        assert_eq!(single.cert_status, x509_ocsp::CertStatus::good());
        let this_update = single.this_update.0.to_unix_duration().as_secs();
        let next_update = single.next_update.unwrap().0.to_unix_duration().as_secs();
        assert_eq!(this_update as i64, fixed_now().unix_timestamp());
        assert_eq!(next_update - this_update, 3 * 86_400);
        assert!(data.nonce().is_none());

        let basic = decode(&responses[1]);
        verify(ca.issuer(), &basic).expect("signature verifies with the issuer key");
        let single = &basic.tbs_response_data.responses[0];
        assert_eq!(single.cert_id.serial_number.as_bytes(), revoked.as_bytes());
        let x509_ocsp::CertStatus::Revoked(info) = single.cert_status else {
            panic!("expected revoked, got {:?}", single.cert_status);
        };
        assert_eq!(info.revocation_reason, Some(CrlReason::KeyCompromise));
        assert_eq!(
            info.revocation_time.0.to_unix_duration().as_secs() as i64,
            revoked_at.unix_timestamp()
        );

        // A response altered after signing no longer verifies.
        let mut tampered = basic.clone();
        tampered.tbs_response_data.responses[0].cert_status = x509_ocsp::CertStatus::good();
        assert!(verify(ca.issuer(), &tampered).is_err());
    }

    /// With an ECDSA and an RSA issuer, each response is signed by the issuer the
    /// entry names by key hash, and an unknown issuer is refused.
    #[tokio::test]
    async fn each_response_is_signed_by_the_issuer_asked_for() {
        let (ecdsa, _root) = test_issuer();
        let (rsa, _) = test_rsa_issuer();
        let clock = Arc::new(FixedClock::new(fixed_now()));
        let ca = Ca::new(
            ecdsa,
            Profiles::default(),
            Arc::new(FakeStorage::default()),
            clock,
        )
        .with_issuer(rsa);
        let entry = |issuer: &Issuer| OcspRequestEntry {
            serial: "7f0102030405060708".parse().unwrap(),
            status: OcspStatus::Good,
            revoked_at: None,
            reason: None,
            issuer_key_hash: issuer.key_hash().to_vec(),
            hash_algorithm: CertIdHash::Sha1,
        };
        let (ecdsa, rsa) = (&ca.issuers()[0], &ca.issuers()[1]);
        let responses = ca.sign_ocsp(vec![entry(rsa), entry(ecdsa)]).await.unwrap();
        let basic = decode(&responses[0]);
        assert_eq!(basic.signature_algorithm.oid, SHA256_WITH_RSA);
        let tbs = basic.tbs_response_data.to_der().unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa.public_key_bits())
            .verify(&tbs, basic.signature.raw_bytes())
            .expect("signed by the RSA issuer");
        let single = &basic.tbs_response_data.responses[0];
        assert_eq!(single.cert_id.issuer_key_hash.as_bytes(), rsa.key_hash());
        assert_eq!(
            single.cert_id.issuer_name_hash.as_bytes(),
            sha1(rsa.subject_der())
        );
        verify(ecdsa, &decode(&responses[1])).expect("signed by the ECDSA issuer");
        assert_eq!((ecdsa.signatures(), rsa.signatures()), (1, 1));

        let unknown = OcspRequestEntry {
            issuer_key_hash: vec![0; 20],
            ..entry(rsa)
        };
        let err = ca.sign_ocsp(vec![unknown]).await.unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Malformed);
        assert!(
            err.detail.contains("no issuer whose key hash is 0000"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn revoked_without_time_is_refused() {
        let (issuer, _root) = test_issuer();
        let clock = Arc::new(FixedClock::new(fixed_now()));
        let ca = Ca::new(
            issuer,
            Profiles::default(),
            Arc::new(FakeStorage::default()),
            clock,
        );
        let err = ca
            .sign_ocsp(vec![OcspRequestEntry {
                serial: "01".parse().unwrap(),
                status: OcspStatus::Revoked,
                revoked_at: None,
                reason: None,
                issuer_key_hash: ca.issuer().key_hash().to_vec(),
                hash_algorithm: CertIdHash::Sha1,
            }])
            .await
            .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Malformed);
    }

    /// A SHA-256 CertID is answered with SHA-256 hashes of the issuer's name and
    /// key, and an unknown serial with certStatus unknown; both verify.
    #[tokio::test]
    async fn sha256_certids_and_unknown_status() {
        let (issuer, _root) = test_issuer();
        let clock = Arc::new(FixedClock::new(fixed_now()));
        let ca = Ca::new(
            issuer,
            Profiles::default(),
            Arc::new(FakeStorage::default()),
            clock,
        );
        let entry = |status: OcspStatus, hash_algorithm: CertIdHash| OcspRequestEntry {
            serial: "0badc0de".parse().unwrap(),
            status,
            revoked_at: None,
            reason: None,
            issuer_key_hash: ca.issuer().key_hash().to_vec(),
            hash_algorithm,
        };
        let responses = ca
            .sign_ocsp(vec![
                entry(OcspStatus::Good, CertIdHash::Sha256),
                entry(OcspStatus::Unknown, CertIdHash::Sha1),
                entry(OcspStatus::Unknown, CertIdHash::Sha256),
            ])
            .await
            .unwrap();
        let issuer = ca.issuer();
        let expected = [
            (
                x509_ocsp::CertStatus::good(),
                ID_SHA256,
                sha256(issuer.subject_der()),
                sha256(issuer.public_key_bits()),
            ),
            (
                x509_ocsp::CertStatus::unknown(),
                ID_SHA1,
                sha1(issuer.subject_der()),
                issuer.key_hash().to_vec(),
            ),
            (
                x509_ocsp::CertStatus::unknown(),
                ID_SHA256,
                sha256(issuer.subject_der()),
                sha256(issuer.public_key_bits()),
            ),
        ];
        assert_eq!(responses.len(), expected.len());
        for (der, (status, oid, name_hash, key_hash)) in responses.iter().zip(expected) {
            let basic = decode(der);
            verify(issuer, &basic).expect("signature verifies with the issuer key");
            let single = &basic.tbs_response_data.responses[0];
            assert_eq!(single.cert_status, status);
            assert_eq!(single.cert_id.hash_algorithm.oid, oid);
            assert_eq!(single.cert_id.issuer_name_hash.as_bytes(), name_hash);
            assert_eq!(single.cert_id.issuer_key_hash.as_bytes(), key_hash);
            assert_eq!(name_hash.len(), if oid == ID_SHA1 { 20 } else { 32 });
            // The responderID stays the SHA-1 key hash (RFC 6960 §4.2.2.3 byKey).
            assert_eq!(
                basic.tbs_response_data.responder_id,
                ResponderId::ByKey(OctetString::new(issuer.key_hash()).unwrap())
            );
        }
    }

    /// The response's embedded certificates, DER.
    fn certs_der(basic: &BasicOcspResponse) -> Vec<Vec<u8>> {
        basic
            .certs
            .iter()
            .flatten()
            .map(|cert| cert.to_der().unwrap())
            .collect()
    }

    /// An issuer whose OCSP responses are signed by a delegated responder with a
    /// key of type `alg` (its certificate valid from a day before `fixed_now` to
    /// `until`), in a CA whose clock says `now`.
    fn delegated_ca(
        alg: &'static rcgen::SignatureAlgorithm,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Ca {
        let (issuer, _root) = test_issuer();
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::from_pem(include_str!("../testdata/rsa-2048-a.key")).unwrap()
        } else {
            rcgen::KeyPair::generate_for(alg).unwrap()
        };
        let cert = crate::test_support::delegated_signer_cert(&issuer, &key, |params| {
            params.not_after = until;
        });
        let issuer = issuer.with_ocsp_signer(cert, key, fixed_now()).unwrap();
        Ca::new(
            issuer,
            Profiles::default(),
            Arc::new(FakeStorage::default()),
            Arc::new(FixedClock::new(now)),
        )
    }

    /// With a delegated responder, the responder's key signs: the responderID is
    /// its key hash, `certs` holds its certificate (which chains to the issuer),
    /// and the CertID still names the issuer. The issuer key signs nothing.
    #[tokio::test]
    async fn a_delegated_responder_signs_and_sends_its_certificate() {
        let until = fixed_now() + time::Duration::days(90);
        let ca = delegated_ca(&rcgen::PKCS_ECDSA_P256_SHA256, until, fixed_now());
        let issuer = ca.issuer();
        let signer = issuer.ocsp_signer().unwrap();
        let issuer_signatures = issuer.signatures();
        let entry = |status, revoked_at, hash_algorithm| OcspRequestEntry {
            serial: "7f0102030405060708".parse().unwrap(),
            status,
            revoked_at,
            reason: revoked_at.map(|_| RevocationReason::Superseded),
            issuer_key_hash: issuer.key_hash().to_vec(),
            hash_algorithm,
        };
        let revoked_at = fixed_now() - time::Duration::hours(1);
        let responses = ca
            .sign_ocsp(vec![
                entry(OcspStatus::Good, None, CertIdHash::Sha1),
                entry(OcspStatus::Revoked, Some(revoked_at), CertIdHash::Sha256),
            ])
            .await
            .unwrap();
        let (_, signer_cert) = x509_parser::parse_x509_certificate(signer.cert_der()).unwrap();
        let (_, issuer_cert) = x509_parser::parse_x509_certificate(issuer.cert_der()).unwrap();
        for (der, (oid, name_hash, key_hash)) in responses.iter().zip([
            (
                ID_SHA1,
                sha1(issuer.subject_der()),
                issuer.key_hash().to_vec(),
            ),
            (
                ID_SHA256,
                sha256(issuer.subject_der()),
                sha256(issuer.public_key_bits()),
            ),
        ]) {
            let basic = decode(der);
            assert_eq!(
                basic.tbs_response_data.responder_id,
                ResponderId::ByKey(OctetString::new(signer.key_hash()).unwrap())
            );
            assert_eq!(
                signer.key_hash(),
                sha1(signer_cert.public_key().subject_public_key.data.as_ref())
            );
            assert_eq!(certs_der(&basic), [signer.cert_der().to_vec()]);
            // The embedded certificate is the issuer's delegate.
            signer_cert
                .verify_signature(Some(issuer_cert.public_key()))
                .unwrap();
            assert!(
                signer_cert
                    .extended_key_usage()
                    .unwrap()
                    .unwrap()
                    .value
                    .ocsp_signing
            );
            assert_eq!(basic.signature_algorithm.oid, ECDSA_WITH_SHA256);
            assert_eq!(basic.signature_algorithm.parameters, None);
            let tbs = basic.tbs_response_data.to_der().unwrap();
            UnparsedPublicKey::new(
                &ECDSA_P256_SHA256_ASN1,
                signer_cert.public_key().subject_public_key.data.as_ref(),
            )
            .verify(&tbs, basic.signature.raw_bytes())
            .expect("signed by the delegated key");
            assert!(
                verify(issuer, &basic).is_err(),
                "not signed by the issuer key"
            );
            let single = &basic.tbs_response_data.responses[0];
            assert_eq!(single.cert_id.hash_algorithm.oid, oid);
            assert_eq!(single.cert_id.issuer_name_hash.as_bytes(), name_hash);
            assert_eq!(single.cert_id.issuer_key_hash.as_bytes(), key_hash);
        }
        let revoked = &decode(&responses[1]).tbs_response_data.responses[0];
        assert!(matches!(
            revoked.cert_status,
            x509_ocsp::CertStatus::Revoked(RevokedInfo {
                revocation_reason: Some(CrlReason::Superseded),
                ..
            })
        ));
        assert_eq!(signer.signatures(), 2);
        assert_eq!(issuer.signatures(), issuer_signatures);
    }

    /// The signature algorithm is the delegated key's, whatever the issuer's.
    #[tokio::test]
    async fn the_signature_algorithm_follows_the_delegated_key() {
        let until = fixed_now() + time::Duration::days(90);
        for (alg, oid, null_params) in [
            (&rcgen::PKCS_ECDSA_P384_SHA384, ECDSA_WITH_SHA384, false),
            (&rcgen::PKCS_RSA_SHA256, SHA256_WITH_RSA, true),
        ] {
            let ca = delegated_ca(alg, until, fixed_now());
            let issuer = ca.issuer();
            let signer = issuer.ocsp_signer().unwrap();
            let responses = ca
                .sign_ocsp(vec![OcspRequestEntry {
                    serial: "01".parse().unwrap(),
                    status: OcspStatus::Good,
                    revoked_at: None,
                    reason: None,
                    issuer_key_hash: issuer.key_hash().to_vec(),
                    hash_algorithm: CertIdHash::Sha1,
                }])
                .await
                .unwrap();
            let basic = decode(&responses[0]);
            assert_eq!(basic.signature_algorithm.oid, oid);
            assert_eq!(basic.signature_algorithm.parameters.is_some(), null_params);
            let (_, cert) = x509_parser::parse_x509_certificate(signer.cert_der()).unwrap();
            let verification: &dyn ring::signature::VerificationAlgorithm = if null_params {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &ring::signature::ECDSA_P384_SHA384_ASN1
            };
            UnparsedPublicKey::new(
                verification,
                cert.public_key().subject_public_key.data.as_ref(),
            )
            .verify(
                &basic.tbs_response_data.to_der().unwrap(),
                basic.signature.raw_bytes(),
            )
            .unwrap_or_else(|_| panic!("{oid}: signed by the delegated key"));
        }
    }

    /// Past its certificate's notAfter the delegated responder signs nothing: its
    /// responses would not verify.
    #[tokio::test]
    async fn an_expired_delegated_responder_signs_nothing() {
        let until = fixed_now() + time::Duration::days(1);
        let ca = delegated_ca(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            until,
            until + time::Duration::seconds(1),
        );
        let err = ca
            .sign_ocsp(vec![OcspRequestEntry {
                serial: "01".parse().unwrap(),
                status: OcspStatus::Good,
                revoked_at: None,
                reason: None,
                issuer_key_hash: ca.issuer().key_hash().to_vec(),
                hash_algorithm: CertIdHash::Sha1,
            }])
            .await
            .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Internal);
        assert!(
            err.detail.contains(
                "the delegated OCSP signing certificate \"CN=Basalt Test OCSP Signer\" expired"
            ),
            "{err}"
        );
        assert_eq!(ca.issuer().ocsp_signer().unwrap().signatures(), 0);
    }
}
