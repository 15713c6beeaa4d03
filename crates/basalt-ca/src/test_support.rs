//! Fakes shared by the unit tests.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use basalt_core::AccountId;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::Error;
use basalt_core::Serial;
use time::OffsetDateTime;

use crate::Issuer;
use crate::pki;

/// 2030-01-01T00:00:00Z.
pub(crate) fn fixed_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
}

/// A dev hierarchy in memory: the intermediate as an [`Issuer`], and the root.
pub(crate) fn test_issuer() -> (Issuer, pki::GeneratedCa) {
    let root = pki::new_root(pki::ROOT_CN, 1, 3650, fixed_now()).unwrap();
    let intermediate = pki::new_intermediate(&root, fixed_now()).unwrap();
    let issuer = Issuer::from_der(intermediate.cert_der.clone(), intermediate.key).unwrap();
    (issuer, root)
}

/// A storage call the CA made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Serial(Serial),
    Precertificate(Serial, Vec<u8>),
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
    ) -> Result<(), Error> {
        self.record(Call::Precertificate(serial.clone(), der.to_vec()));
        Ok(())
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        self.record(Call::Certificate(certificate.clone()));
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
