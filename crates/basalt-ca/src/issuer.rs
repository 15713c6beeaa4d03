//! The issuer: the certificate and private key that sign subscriber certificates.

use std::fmt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use basalt_core::Error;
use rcgen::KeyPair;
use rcgen::PublicKeyData;
use rcgen::SignatureAlgorithm;
use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::CaKey;
use crate::KeySource;
use crate::OcspSigner;
use crate::config::DelegatedOcspSignerConfig;
use crate::config::IssuerConfig;

/// An issuing CA: its certificate, its private key and the chain sent with every
/// certificate it signs.
///
/// The key is checked against the certificate when loaded, and the certificate
/// must be a CA with a subject key identifier (which becomes the authority key
/// identifier of every certificate it signs). Its OCSP responses are signed by
/// its key, or by a delegated responder ([`Issuer::with_ocsp_signer`]).
pub struct Issuer {
    cert_der: Vec<u8>,
    signer: rcgen::Issuer<'static, CaKey>,
    subject_key_id: Vec<u8>,
    subject_der: Vec<u8>,
    public_key_bits: Vec<u8>,
    key_hash: Vec<u8>,
    chain: Vec<Vec<u8>>,
    issuer_url: Option<String>,
    crl_url_base: Option<String>,
    ocsp_signer: Option<OcspSigner>,
    signatures: AtomicU64,
}

impl Issuer {
    /// Loads the issuer certificate (PEM) and its PKCS#8 private key (PEM). The chain
    /// is the issuer certificate alone.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        Self::load_with_chain(cert, key, &[])
    }

    /// Loads the issuer as [`Issuer::load`] does, then appends the certificates of
    /// each `chain` PEM file (nearest first) to the chain sent with each certificate.
    pub fn load_with_chain(cert: &Path, key: &Path, chain: &[PathBuf]) -> Result<Self, Error> {
        Self::load_from(cert, &KeySource::File(key.to_owned()), chain)
    }

    /// Loads the issuer described by one `[[issuers]]` table: its certificate, its
    /// key from a file or a PKCS#11 token, its chain, its caIssuers URL and where
    /// its CRLs are published. Its `ocsp_signer`, which is checked against the
    /// time, is loaded by [`Issuer::load_ocsp_signer`] ([`crate::Ca::from_config`]
    /// does both).
    pub fn from_config(config: &IssuerConfig) -> Result<Self, Error> {
        let source = config
            .key_source("issuer")
            .map_err(|err| Error::internal(format!("invalid CA config: {err}")))?;
        let mut issuer = Self::load_from(&config.cert, &source, &config.chain)?;
        issuer.issuer_url = config.issuer_url.clone();
        if let Some(base) = &config.crl_url_base {
            issuer = issuer.with_crl_url_base(base.clone())?;
        }
        Ok(issuer)
    }

    fn load_from(cert: &Path, key: &KeySource, chain: &[PathBuf]) -> Result<Self, Error> {
        let cert_pem = read_file(cert)?;
        let cert_der = pem_certificates(&cert_pem)
            .map_err(|err| Error::internal(format!("{}: {}", cert.display(), err.detail)))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no certificate in the issuer certificate file"))?;
        let key = CaKey::load(key)
            .map_err(|err| Error::internal(format!("issuer key ({key}): {}", err.detail)))?;
        let mut issuer = Self::from_der(cert_der, key)?;
        for path in chain {
            let certs = pem_certificates(&read_file(path)?)
                .map_err(|err| Error::internal(format!("{}: {}", path.display(), err.detail)))?;
            issuer.chain.extend(certs);
        }
        Ok(issuer)
    }

    /// An issuer from a PEM certificate (the first one in `cert_pem` is the issuer)
    /// and a PEM PKCS#8 private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &str) -> Result<Self, Error> {
        let cert_der = pem_certificates(cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no certificate in the issuer certificate file"))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|err| Error::internal(format!("cannot load the issuer key: {err}")))?;
        Self::from_der(cert_der, CaKey::from_key_pair(key))
    }

    /// An issuer from a DER certificate and its key.
    pub fn from_der(cert_der: Vec<u8>, key: impl Into<CaKey>) -> Result<Self, Error> {
        let key = key.into();
        let alg = key.algorithm();
        if !crate::key::is_supported_algorithm(alg) {
            return Err(Error::internal(format!(
                "issuer key algorithm {alg:?} is not supported: use ECDSA P-256, P-384 or RSA"
            )));
        }
        let (rest, cert) = X509Certificate::from_der(&cert_der).map_err(|err| {
            Error::internal(format!("cannot parse the issuer certificate: {err}"))
        })?;
        if !rest.is_empty() {
            return Err(Error::internal(
                "trailing data after the issuer certificate",
            ));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(Error::internal(
                "the issuer key does not match the issuer certificate's public key",
            ));
        }
        if !cert.is_ca() {
            return Err(Error::internal(
                "the issuer certificate is not a CA certificate",
            ));
        }
        let subject_key_id = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .ok_or_else(|| {
                Error::internal("the issuer certificate has no subject key identifier")
            })?;
        // rcgen rebuilds the issuer name from its attributes; it supports one
        // attribute per RDN only (and would panic on an empty RDN).
        if cert.subject().iter().any(|rdn| rdn.iter().count() != 1) {
            return Err(Error::internal(
                "the issuer certificate's subject must have exactly one attribute per RDN",
            ));
        }
        let subject_der = cert.subject().as_raw().to_vec();
        let public_key_bits = cert.public_key().subject_public_key.data.to_vec();
        let signer = rcgen::Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)
            .map_err(|err| Error::internal(format!("cannot use the issuer certificate: {err}")))?;
        let issuer = Self {
            chain: vec![cert_der.clone()],
            cert_der,
            signer,
            subject_key_id,
            subject_der,
            key_hash: sha1(&public_key_bits),
            public_key_bits,
            issuer_url: None,
            crl_url_base: None,
            ocsp_signer: None,
            signatures: AtomicU64::new(0),
        };
        issuer.check_name_round_trip()?;
        Ok(issuer)
    }

    /// The issuer certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The chain sent with every certificate, DER, nearest first (the issuer
    /// certificate, then any configured chain certificates).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The issuer's subject key identifier.
    pub fn subject_key_id(&self) -> &[u8] {
        &self.subject_key_id
    }

    /// The issuer's subject name, DER.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The issuer's subjectPublicKey bits (for OCSP key hashes).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    /// SHA-1 of the issuer's subjectPublicKey: the issuerKeyHash of OCSP CertIDs,
    /// and the responderID of its OCSP responses unless a delegated responder
    /// signs them.
    pub fn key_hash(&self) -> &[u8] {
        &self.key_hash
    }

    /// The signature algorithm of the issuer key.
    pub fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.signer.key().algorithm()
    }

    /// Whether the issuer key is RSA (else ECDSA).
    pub fn is_rsa(&self) -> bool {
        is_rsa_algorithm(self.algorithm())
    }

    /// The caIssuers URL written into the certificates it signs, if any.
    pub fn issuer_url(&self) -> Option<&str> {
        self.issuer_url.as_deref()
    }

    /// Sets the caIssuers URL written into the certificates it signs.
    pub fn with_issuer_url(mut self, url: impl Into<String>) -> Self {
        self.issuer_url = Some(url.into());
        self
    }

    /// Where the issuer's CRL shards are published (ends with '/'), if it
    /// publishes any.
    pub fn crl_url_base(&self) -> Option<&str> {
        self.crl_url_base.as_deref()
    }

    /// Publishes the issuer's CRL shards under `base` (an `http://` URL ending with
    /// '/', as `crl_url_base` in the config file): shard `n` is `{base}{n}.crl`.
    /// Refused when the issuer certificate's keyUsage lacks cRLSign, since every
    /// CRL it signed would be invalid (RFC 5280 §4.2.1.3).
    pub fn with_crl_url_base(mut self, base: impl Into<String>) -> Result<Self, Error> {
        let usages = self.signer.key_usages();
        // rcgen, like RFC 5280, allows every usage when keyUsage is absent.
        if !usages.is_empty() && !usages.contains(&rcgen::KeyUsagePurpose::CrlSign) {
            return Err(Error::internal(
                "the issuer certificate's keyUsage lacks cRLSign, so it cannot sign CRLs: \
                 remove crl_url_base or use a certificate that allows cRLSign",
            ));
        }
        self.crl_url_base = Some(base.into());
        Ok(self)
    }

    /// The URL of CRL shard `shard`: the CRL distribution point of the
    /// certificates on it and the issuingDistributionPoint of the CRL itself.
    /// `None` when the issuer publishes no CRLs.
    pub fn crl_url(&self, shard: u32) -> Option<String> {
        self.crl_url_base
            .as_ref()
            .map(|base| format!("{base}{shard}.crl"))
    }

    /// Has the OCSP responses of this issuer signed by a delegated responder
    /// (RFC 6960 §4.2.2.2): the certificate `cert_der`, which this issuer signed,
    /// and its `key`. Refused, saying why, unless the certificate names this issuer
    /// as its issuer and its signature verifies with this issuer's key, it has
    /// extendedKeyUsage id-kp-OCSPSigning, it is not a CA, its keyUsage (if any)
    /// allows digitalSignature, it is valid at `now` and `key` is its key. A
    /// certificate that expires within 30 days, or lacks id-pkix-ocsp-nocheck, is
    /// logged as a warning.
    pub fn with_ocsp_signer(
        mut self,
        cert_der: Vec<u8>,
        key: impl Into<CaKey>,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        self.ocsp_signer = Some(OcspSigner::new(&self, cert_der, key.into(), now)?);
        Ok(self)
    }

    /// Loads the delegated responder an `ocsp_signer` table names (the first
    /// certificate of its PEM file, its key from a file or a PKCS#11 token) and
    /// sets it as [`Issuer::with_ocsp_signer`] does.
    pub fn load_ocsp_signer(
        self,
        config: &DelegatedOcspSignerConfig,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let source = config
            .key_source("ocsp_signer")
            .map_err(|err| Error::internal(format!("invalid CA config: {err}")))?;
        let cert_der = pem_certificates(&read_file(&config.cert)?)
            .map_err(|err| Error::internal(format!("{}: {}", config.cert.display(), err.detail)))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no certificate in the OCSP signer file"))?;
        let key = CaKey::load(&source)
            .map_err(|err| Error::internal(format!("its key ({source}): {}", err.detail)))?;
        self.with_ocsp_signer(cert_der, key, now)
    }

    /// The delegated responder that signs this issuer's OCSP responses, if any;
    /// without one the issuer key signs them.
    pub fn ocsp_signer(&self) -> Option<&OcspSigner> {
        self.ocsp_signer.as_ref()
    }

    /// How many signatures the issuer key has made since it was loaded
    /// (certificates, OCSP responses and CRLs).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// Signs certificate `params` for `subject_key` with the issuer key.
    pub(crate) fn sign_certificate(
        &self,
        params: &rcgen::CertificateParams,
        subject_key: &impl PublicKeyData,
    ) -> Result<rcgen::Certificate, Error> {
        self.signatures.fetch_add(1, Ordering::Relaxed);
        params
            .signed_by(subject_key, &self.signer)
            .map_err(|err| Error::internal(format!("cannot sign the certificate: {err}")))
    }

    /// Signs the CRL `params` with the issuer key.
    pub(crate) fn sign_crl(
        &self,
        params: &rcgen::CertificateRevocationListParams,
    ) -> Result<rcgen::CertificateRevocationList, Error> {
        self.signatures.fetch_add(1, Ordering::Relaxed);
        params
            .signed_by(&self.signer)
            .map_err(|err| Error::internal(format!("cannot sign the CRL: {err}")))
    }

    /// Signs `message` with the issuer key (the DER signature X.509 wants).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.signatures.fetch_add(1, Ordering::Relaxed);
        self.signer
            .key()
            .sign(message)
            .map_err(|err| Error::internal(format!("issuer key failed to sign: {err}")))
    }

    /// An rcgen issuer with this issuer's name and key identifier but a throwaway
    /// key that claims the issuer's algorithm, so that what it signs has the same
    /// TBS bytes as what the real key would sign.
    pub(crate) fn linting_signer(&self) -> Result<rcgen::Issuer<'static, LintKey>, Error> {
        let key = LintKey::generate(self.algorithm())?;
        rcgen::Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), key)
            .map_err(|err| Error::internal(format!("cannot use the issuer certificate: {err}")))
    }

    /// rcgen writes the issuer name from parsed attributes; make sure that gives
    /// back the issuer certificate's subject byte for byte, or chains would break.
    fn check_name_round_trip(&self) -> Result<(), Error> {
        let probe_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|err| Error::internal(format!("cannot generate a probe key: {err}")))?;
        let signer = self.linting_signer()?;
        let mut params = rcgen::CertificateParams::default();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[1]));
        let probe = params
            .signed_by(&probe_key, &signer)
            .map_err(|err| Error::internal(format!("cannot sign a probe certificate: {err}")))?;
        let (_, probe) = X509Certificate::from_der(probe.der())
            .map_err(|err| Error::internal(format!("cannot parse the probe certificate: {err}")))?;
        if probe.issuer().as_raw() != self.subject_der.as_slice() {
            return Err(Error::internal(
                "the issuer certificate's subject name cannot be reproduced exactly \
                 (unsupported attribute types or string encodings)",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("algorithm", self.algorithm())
            .field("key", self.signer.key())
            .field("subject_key_id", &self.subject_key_id)
            .field("chain_len", &self.chain.len())
            .field("ocsp_signer", &self.ocsp_signer)
            .finish_non_exhaustive()
    }
}

/// A throwaway key that signs linting certificates. It reports the issuer's
/// signature algorithm, so the TBS it signs is byte-identical to the real one.
///
/// For an ECDSA issuer it is a fresh key of the same curve, so the linting
/// certificate's signature is genuine. ring cannot generate RSA keys, so for an
/// RSA issuer it is a P-256 key labelled with the RSA algorithm: the linting
/// certificate's signature then does not verify, which does not matter because
/// it is never served or trusted; only its TBS is linted and compared.
pub(crate) struct LintKey {
    key: KeyPair,
    alg: &'static SignatureAlgorithm,
}

impl LintKey {
    fn generate(alg: &'static SignatureAlgorithm) -> Result<Self, Error> {
        let key_alg = if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            &rcgen::PKCS_ECDSA_P384_SHA384
        } else {
            &rcgen::PKCS_ECDSA_P256_SHA256
        };
        let key = KeyPair::generate_for(key_alg)
            .map_err(|err| Error::internal(format!("cannot generate a linting key: {err}")))?;
        Ok(Self { key, alg })
    }
}

impl PublicKeyData for LintKey {
    fn der_bytes(&self) -> &[u8] {
        self.key.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl SigningKey for LintKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key.sign(msg)
    }
}

/// Whether `alg` is one of the RSA signature algorithms.
pub(crate) fn is_rsa_algorithm(alg: &SignatureAlgorithm) -> bool {
    [
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_RSA_SHA384,
        &rcgen::PKCS_RSA_SHA512,
    ]
    .contains(&alg)
}

/// SHA-1, for OCSP identifiers only.
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", path.display())))
}

/// Every `CERTIFICATE` block of a PEM file, DER, in order.
pub(crate) fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|err| Error::internal(format!("invalid PEM: {err}")))?;
        if block.label == "CERTIFICATE" {
            certs.push(block.contents);
        }
    }
    if certs.is_empty() {
        return Err(Error::internal("no CERTIFICATE block in PEM data"));
    }
    Ok(certs)
}
