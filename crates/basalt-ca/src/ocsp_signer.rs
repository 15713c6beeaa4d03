//! Delegated OCSP responders (RFC 6960 §4.2.2.2): a key of its own that signs an
//! issuer's OCSP responses, certified by that issuer for id-kp-OCSPSigning.
//!
//! `basalt ceremony ocsp-signer` makes the key and its certificate; the issuer's
//! `ocsp_signer` table names them ([`crate::DelegatedOcspSignerConfig`]). When
//! the CA loads one, it checks what a relying party will check, so that a
//! misconfigured responder stops the CA at start rather than making every OCSP
//! response unverifiable: the certificate was signed by this issuer (its name and
//! its key), carries id-kp-OCSPSigning, is not a CA, allows digitalSignature if it
//! has a keyUsage, is valid now, and the key is its own.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use basalt_core::Error;
use der::Decode;
use rcgen::PublicKeyData;
use rcgen::SignatureAlgorithm;
use rcgen::SigningKey;
use time::OffsetDateTime;
use tracing::warn;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::CaKey;
use crate::Issuer;
use crate::ceremony::has_ocsp_nocheck;
use crate::issuer::sha1;

/// How long before its certificate expires a delegated responder is warned about
/// at load.
pub(crate) const OCSP_SIGNER_EXPIRY_WARNING: time::Duration = time::Duration::days(30);

/// A delegated OCSP responder of one issuer: its certificate and its key, checked
/// against the issuer ([`Issuer::with_ocsp_signer`]).
pub struct OcspSigner {
    cert_der: Vec<u8>,
    /// The certificate as the `certs` of a BasicOCSPResponse carries it.
    cert: x509_cert::Certificate,
    key: CaKey,
    key_hash: Vec<u8>,
    subject: String,
    not_after: OffsetDateTime,
    signatures: AtomicU64,
}

impl OcspSigner {
    /// Checks the delegated responder certificate `cert_der` and its `key` against
    /// `issuer`, as of `now`; the error says what is wrong.
    pub(crate) fn new(
        issuer: &Issuer,
        cert_der: Vec<u8>,
        key: CaKey,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let alg = key.algorithm();
        if !crate::key::is_supported_algorithm(alg) {
            return Err(Error::internal(format!(
                "the key algorithm {alg:?} is not supported: use ECDSA P-256, P-384 or RSA"
            )));
        }
        let cert = match X509Certificate::from_der(&cert_der) {
            Ok(([], cert)) => cert,
            Ok(_) => return Err(Error::internal("trailing data after the certificate")),
            Err(err) => {
                return Err(Error::internal(format!(
                    "the certificate does not parse: {err}"
                )));
            }
        };
        let issuer_cert = match X509Certificate::from_der(issuer.cert_der()) {
            Ok((_, cert)) => cert,
            Err(err) => {
                return Err(Error::internal(format!(
                    "the issuer certificate does not parse: {err}"
                )));
            }
        };
        // RFC 6960 §4.2.2.2: the responder's certificate is issued directly by the
        // CA that issued the certificates whose status it signs.
        if cert.issuer().as_raw() != issuer.subject_der() {
            return Err(Error::internal(format!(
                "it is not issued by this issuer: its issuer is \"{}\", the issuer is \"{}\"",
                cert.issuer(),
                issuer_cert.subject()
            )));
        }
        cert.verify_signature(Some(issuer_cert.public_key()))
            .map_err(|err| {
                Error::internal(format!(
                    "its signature does not verify with the issuer's public key ({err}): \
                     it was not signed by this issuer"
                ))
            })?;
        let ocsp_signing = cert
            .extended_key_usage()
            .map_err(|err| Error::internal(format!("its extendedKeyUsage is invalid: {err}")))?
            .is_some_and(|eku| eku.value.ocsp_signing);
        if !ocsp_signing {
            return Err(Error::internal(
                "it lacks extendedKeyUsage id-kp-OCSPSigning, without which no client \
                 accepts it as a delegated OCSP responder (RFC 6960 §4.2.2.2)",
            ));
        }
        let is_ca = cert
            .basic_constraints()
            .map_err(|err| Error::internal(format!("its basicConstraints are invalid: {err}")))?
            .is_some_and(|bc| bc.value.ca);
        if is_ca {
            return Err(Error::internal(
                "it is a CA certificate: a delegated OCSP responder must not be one",
            ));
        }
        let key_usage = cert
            .key_usage()
            .map_err(|err| Error::internal(format!("its keyUsage is invalid: {err}")))?;
        if key_usage.is_some_and(|ku| !ku.value.digital_signature()) {
            return Err(Error::internal(
                "its keyUsage lacks digitalSignature, so it cannot sign OCSP responses",
            ));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(Error::internal(
                "the key does not match the certificate's public key",
            ));
        }
        let time = |at: i64| {
            OffsetDateTime::from_unix_timestamp(at)
                .map_err(|_| Error::internal("its validity is out of range"))
        };
        let not_before = time(cert.validity().not_before.timestamp())?;
        let not_after = time(cert.validity().not_after.timestamp())?;
        if now < not_before {
            return Err(Error::internal(format!(
                "it is not valid yet: its notBefore is {}",
                cert.validity().not_before
            )));
        }
        if now > not_after {
            return Err(Error::internal(format!(
                "it expired at {}: make a new one with `basalt ceremony ocsp-signer`",
                cert.validity().not_after
            )));
        }
        let subject = cert.subject().to_string();
        if !has_ocsp_nocheck(&cert) {
            // RFC 6960 §4.2.2.2.1 leaves the CA other ways to tell how to check the
            // responder's revocation, so this is not refused.
            warn!(
                ocsp_signer = %subject,
                "the delegated OCSP signing certificate has no id-pkix-ocsp-nocheck: \
                 clients may look for its own revocation status"
            );
        }
        if not_after - now <= OCSP_SIGNER_EXPIRY_WARNING {
            warn!(
                ocsp_signer = %subject,
                not_after = %cert.validity().not_after,
                "the delegated OCSP signing certificate expires within {} days: make the \
                 next one with `basalt ceremony ocsp-signer`",
                OCSP_SIGNER_EXPIRY_WARNING.whole_days()
            );
        }
        let key_hash = sha1(cert.public_key().subject_public_key.data.as_ref());
        let parsed = x509_cert::Certificate::from_der(&cert_der)
            .map_err(|err| Error::internal(format!("the certificate does not decode: {err}")))?;
        Ok(Self {
            cert: parsed,
            cert_der,
            key,
            key_hash,
            subject,
            not_after,
            signatures: AtomicU64::new(0),
        })
    }

    /// The delegated responder's certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SHA-1 of its subjectPublicKey: the responderID (byKey) of the responses it
    /// signs.
    pub fn key_hash(&self) -> &[u8] {
        &self.key_hash
    }

    /// Its certificate's notAfter: past it, the CA refuses to sign with it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The signature algorithm of its key.
    pub fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.key.algorithm()
    }

    /// How many OCSP responses it has signed since it was loaded.
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// The certificate, for the `certs` of a BasicOCSPResponse.
    pub(crate) fn certificate(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    /// Signs `message` with the delegated key, if its certificate is valid at
    /// `now`: a response signed after the certificate expired would not verify.
    pub(crate) fn sign(&self, message: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, Error> {
        if now > self.not_after {
            return Err(Error::internal(format!(
                "the delegated OCSP signing certificate \"{}\" expired at {}: make a new one \
                 with `basalt ceremony ocsp-signer` and name it in the issuer's ocsp_signer",
                self.subject, self.not_after
            )));
        }
        self.signatures.fetch_add(1, Ordering::Relaxed);
        self.key.sign(message).map_err(|err| {
            Error::internal(format!(
                "the delegated OCSP signing key failed to sign: {err}"
            ))
        })
    }
}

impl fmt::Debug for OcspSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OcspSigner")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::KeyPair;

    use super::*;
    use crate::test_support::CapturedLogs;
    use crate::test_support::delegated_signer_cert;
    use crate::test_support::fixed_now;
    use crate::test_support::test_issuer;
    use crate::test_support::test_rsa_issuer;

    /// What loading a delegated responder made by `make` (from the issuer it is
    /// checked against, and the responder's key) says, at [`fixed_now`].
    fn load(make: impl FnOnce(&Issuer, &KeyPair) -> (Vec<u8>, KeyPair)) -> Result<Issuer, Error> {
        let (issuer, _root) = test_issuer();
        let key = KeyPair::generate().unwrap();
        let (cert, key) = make(&issuer, &key);
        issuer.with_ocsp_signer(cert, key, fixed_now())
    }

    fn refused(make: impl FnOnce(&Issuer, &KeyPair) -> (Vec<u8>, KeyPair), wanted: &str) {
        let err = load(make).unwrap_err();
        assert!(err.detail.contains(wanted), "{wanted:?} not in: {err}");
    }

    fn same_key(key: &KeyPair) -> KeyPair {
        KeyPair::from_pem(&key.serialize_pem()).unwrap()
    }

    #[test]
    fn a_delegated_responder_of_the_issuer_is_accepted() {
        let logs = CapturedLogs::start();
        let issuer =
            load(|issuer, key| (delegated_signer_cert(issuer, key, |_| {}), same_key(key)))
                .unwrap();
        let signer = issuer.ocsp_signer().unwrap();
        let (_, cert) = X509Certificate::from_der(signer.cert_der()).unwrap();
        assert_eq!(
            signer.key_hash(),
            sha1(cert.public_key().subject_public_key.data.as_ref())
        );
        assert_ne!(signer.key_hash(), issuer.key_hash());
        assert_eq!(signer.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(signer.not_after(), fixed_now() + time::Duration::days(90));
        assert_eq!(signer.signatures(), 0);
        assert!(format!("{issuer:?}").contains("Basalt Test OCSP Signer"));
        // 90 days left and id-pkix-ocsp-nocheck: nothing to warn about.
        assert!(
            logs.lines().iter().all(|line| !line.contains("WARN")),
            "{:?}",
            logs.lines()
        );
    }

    #[test]
    fn a_certificate_of_another_issuer_is_refused() {
        // Another CA's name.
        refused(
            |_, key| {
                let (other, _) = test_rsa_issuer();
                (delegated_signer_cert(&other, key, |_| {}), same_key(key))
            },
            "it is not issued by this issuer",
        );
        // The same name, another key: every test intermediate is called the same.
        refused(
            |_, key| {
                let (other, _) = test_issuer();
                (delegated_signer_cert(&other, key, |_| {}), same_key(key))
            },
            "its signature does not verify with the issuer's public key",
        );
    }

    #[test]
    fn a_certificate_without_ocsp_signing_is_refused() {
        for ekus in [
            vec![],
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            vec![rcgen::ExtendedKeyUsagePurpose::Any],
        ] {
            refused(
                |issuer, key| {
                    let cert = delegated_signer_cert(issuer, key, |params| {
                        params.extended_key_usages = ekus.clone();
                    });
                    (cert, same_key(key))
                },
                "lacks extendedKeyUsage id-kp-OCSPSigning",
            );
        }
    }

    #[test]
    fn a_ca_certificate_is_refused() {
        refused(
            |issuer, key| {
                let cert = delegated_signer_cert(issuer, key, |params| {
                    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
                    params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
                });
                (cert, same_key(key))
            },
            "it is a CA certificate",
        );
        refused(
            |issuer, key| {
                let cert = delegated_signer_cert(issuer, key, |params| {
                    params.key_usages = vec![rcgen::KeyUsagePurpose::CrlSign];
                });
                (cert, same_key(key))
            },
            "its keyUsage lacks digitalSignature",
        );
    }

    #[test]
    fn a_certificate_outside_its_validity_is_refused() {
        refused(
            |issuer, key| {
                let cert = delegated_signer_cert(issuer, key, |params| {
                    params.not_before = fixed_now() - time::Duration::days(30);
                    params.not_after = fixed_now() - time::Duration::seconds(1);
                });
                (cert, same_key(key))
            },
            "it expired at",
        );
        refused(
            |issuer, key| {
                let cert = delegated_signer_cert(issuer, key, |params| {
                    params.not_before = fixed_now() + time::Duration::hours(1);
                });
                (cert, same_key(key))
            },
            "it is not valid yet",
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        refused(
            |issuer, key| {
                (
                    delegated_signer_cert(issuer, key, |_| {}),
                    KeyPair::generate().unwrap(),
                )
            },
            "the key does not match the certificate's public key",
        );
        refused(
            |_, key| (b"not a certificate".to_vec(), same_key(key)),
            "the certificate does not parse",
        );
        refused(
            |issuer, key| {
                let mut der = delegated_signer_cert(issuer, key, |_| {});
                der.push(0);
                (der, same_key(key))
            },
            "trailing data",
        );
    }

    #[test]
    fn a_certificate_near_its_end_or_without_nocheck_is_warned_about() {
        let logs = CapturedLogs::start();
        load(|issuer, key| {
            let cert = delegated_signer_cert(issuer, key, |params| {
                params.not_after = fixed_now() + time::Duration::days(29);
                params.custom_extensions.clear();
            });
            (cert, same_key(key))
        })
        .unwrap();
        let lines = logs.lines();
        for wanted in ["expires within 30 days", "has no id-pkix-ocsp-nocheck"] {
            assert!(
                lines
                    .iter()
                    .any(|line| line.contains("WARN") && line.contains(wanted)),
                "{wanted:?} not in {lines:?}"
            );
        }
    }
}
