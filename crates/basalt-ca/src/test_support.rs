//! Fakes shared by the unit tests.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use basalt_core::AccountId;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::CrlPlacement;
use basalt_core::Error;
use basalt_core::Serial;
use time::OffsetDateTime;

use crate::Issuer;
use crate::pki;

/// 2026-06-01T00:00:00Z, when the Baseline Requirements allow 200-day leaves.
pub(crate) fn fixed_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap()
}

/// A dev hierarchy in memory: the intermediate as an [`Issuer`], and the root.
pub(crate) fn test_issuer() -> (Issuer, pki::GeneratedCa) {
    let root = pki::new_root(pki::ROOT_CN, 1, 3650, fixed_now()).unwrap();
    let intermediate = pki::new_intermediate(&root, fixed_now()).unwrap();
    let issuer = Issuer::from_der(intermediate.cert_der.clone(), intermediate.key).unwrap();
    (issuer, root)
}

/// An RSA intermediate under a fresh dev root, and its certificate.
pub(crate) fn test_rsa_issuer() -> (Issuer, Vec<u8>) {
    let root = pki::new_root(pki::ROOT_CN, 1, 3650, fixed_now()).unwrap();
    let rsa_key = rcgen::KeyPair::from_pem(include_str!("../testdata/rsa-2048-b.key")).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Basalt Test RSA Intermediate");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.not_before = fixed_now() - time::Duration::days(1);
    params.not_after = fixed_now() + time::Duration::days(365);
    let root_issuer = rcgen::Issuer::from_params(&root.params, &root.key);
    let cert = params.signed_by(&rsa_key, &root_issuer).unwrap();
    let der = cert.der().to_vec();
    (Issuer::from_der(der.clone(), rsa_key).unwrap(), der)
}

/// A delegated OCSP responder certificate for `key`, signed by `issuer`: not a CA,
/// keyUsage digitalSignature, extendedKeyUsage id-kp-OCSPSigning,
/// id-pkix-ocsp-nocheck, valid from a day before [`fixed_now`] for 90 days; `edit`
/// changes the parameters before signing. DER.
pub(crate) fn delegated_signer_cert(
    issuer: &Issuer,
    key: &impl rcgen::PublicKeyData,
    edit: impl FnOnce(&mut rcgen::CertificateParams),
) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Basalt Test OCSP Signer");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::OcspSigning];
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            crate::ceremony::OID_OCSP_NOCHECK,
            crate::ceremony::OCSP_NOCHECK_VALUE.to_vec(),
        ));
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x42, 0x01]));
    params.not_before = fixed_now() - time::Duration::days(1);
    params.not_after = fixed_now() + time::Duration::days(90);
    edit(&mut params);
    issuer
        .sign_certificate(&params, key)
        .unwrap()
        .der()
        .to_vec()
}

/// A storage call the CA made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Serial(Serial),
    /// The serial, the linting certificate and where its revocation is published.
    Precertificate(Serial, Vec<u8>, CrlPlacement),
    Certificate(CertificateRecord),
}

/// A storage that records the CA's calls, and can refuse serials.
#[derive(Debug, Default)]
pub(crate) struct FakeStorage {
    pub(crate) calls: Mutex<Vec<Call>>,
    pub(crate) refuse_serials: bool,
}

impl FakeStorage {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait]
impl CertificateStore for FakeStorage {
    async fn add_serial(
        &self,
        serial: &Serial,
        _: AccountId,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<(), Error> {
        if self.refuse_serials {
            return Err(Error::conflict("serial already used"));
        }
        self.record(Call::Serial(serial.clone()));
        Ok(())
    }

    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        _: AccountId,
        _: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error> {
        self.record(Call::Precertificate(
            serial.clone(),
            der.to_vec(),
            placement.clone(),
        ));
        Ok(())
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        self.record(Call::Certificate(certificate.clone()));
        Ok(())
    }
}

/// Log lines written on this thread while the guard lives, as text.
pub(crate) struct CapturedLogs {
    buffer: std::sync::Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    /// Captures every event (all targets, all levels) on this thread.
    pub(crate) fn start() -> Self {
        let buffer = std::sync::Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .with_target(true)
            .without_time()
            .with_max_level(tracing::Level::TRACE)
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The lines written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.buffer.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

struct LogWriter(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
        let name = format!(
            "basalt-ca-test-{}-{}",
            std::process::id(),
            u64::from_le_bytes(random)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
