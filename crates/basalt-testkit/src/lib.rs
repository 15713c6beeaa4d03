//! Test support shared by Basalt's crates (a dev-dependency only).
//!
//! It depends on no service crate, so a crate under test never sees two copies of
//! its own types.
#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use basalt_config::TlsConfig;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::Issuer;
use rcgen::KeyPair;

/// A throwaway internal CA and one mTLS certificate per name, in a fresh temporary
/// directory that is removed on drop. Each certificate carries its name as its
/// only DNS SAN, as Basalt's services' certificates do.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    /// Creates the CA and a certificate for each of `names`.
    ///
    /// # Panics
    ///
    /// If the directory cannot be written or a key cannot be generated.
    #[allow(clippy::expect_used)] // test support: failing loudly is the point
    pub fn new(names: &[&str]) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "basalt-testpki-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the test PKI directory");

        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        std::fs::write(dir.join("internal-ca.pem"), ca_cert.pem()).expect("write the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        for name in names {
            let key = KeyPair::generate().expect("generate a key");
            let mut params = CertificateParams::new(vec![(*name).to_owned()]).expect("params");
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = params.signed_by(&key, &issuer).expect("sign a certificate");
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write a cert");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())
                .expect("write a key");
        }
        Self { dir }
    }

    /// The `[tls]` block of the service called `name`.
    pub fn tls(&self, name: &str) -> TlsConfig {
        TlsConfig {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
            ca: self.dir.join("internal-ca.pem"),
        }
    }

    /// The internal CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("internal-ca.pem")
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_files_exist_and_are_removed() {
        let pki = TestPki::new(&["ra"]);
        let tls = pki.tls("ra");
        assert!(tls.cert.exists() && tls.key.exists() && tls.ca.exists());
        let dir = pki.dir.clone();
        drop(pki);
        assert!(!dir.exists());
    }
}
