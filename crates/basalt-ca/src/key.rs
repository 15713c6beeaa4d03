//! Where the CA's private keys live: a PKCS#8 PEM file on disk or an object in a
//! PKCS#11 token (an HSM, or SoftHSM2 in a lab). Either way the key signs through
//! [`CaKey`], so issuance, OCSP and the ceremony never know which it is.
//!
//! Only the CA process and the ceremony tool ever open a key: no other service's
//! configuration has a field that could name one.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use basalt_core::Error;
use rcgen::KeyPair;
use rcgen::PublicKeyData;
use rcgen::SignatureAlgorithm;
use rcgen::SigningKey;
use serde::Deserialize;

use crate::pkcs11::Pkcs11Key;

/// The key types a CA key may have.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256, signing with SHA-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// RSA with a 2048-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA with a 3072-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA with a 4096-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    /// The signature algorithm certificates signed by such a key carry.
    pub fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// The RSA modulus size in bits, or `None` for ECDSA.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => None,
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
        }
    }

    /// Whether this is an RSA key type.
    pub fn is_rsa(self) -> bool {
        self.rsa_bits().is_some()
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        })
    }
}

/// A key in a PKCS#11 token (`pkcs11 = { ... }` in a config file).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library) to load, e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token holding the key.
    pub token_label: String,
    /// The label (`CKA_LABEL`) of the private key and of its public key.
    pub key_label: String,
    /// A file holding the user PIN (surrounding whitespace is ignored).
    pub pin_file: PathBuf,
}

/// Where one CA key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A PKCS#8 PEM file (mode 0600).
    File(PathBuf),
    /// An object in a PKCS#11 token.
    Pkcs11(Pkcs11Config),
}

impl KeySource {
    /// The source a config block names through its `key` and `pkcs11` fields, of
    /// which exactly one must be set. `block` names the block in the error.
    pub fn from_fields(
        block: &str,
        file: Option<&PathBuf>,
        pkcs11: Option<&Pkcs11Config>,
    ) -> Result<Self, String> {
        match (file, pkcs11) {
            (Some(path), None) => Ok(Self::File(path.clone())),
            (None, Some(config)) => {
                for (field, empty) in [
                    ("token_label", config.token_label.is_empty()),
                    ("key_label", config.key_label.is_empty()),
                ] {
                    if empty {
                        return Err(format!("{block}.pkcs11.{field} must not be empty"));
                    }
                }
                Ok(Self::Pkcs11(config.clone()))
            }
            (Some(_), Some(_)) => Err(format!(
                "{block} sets both key and pkcs11: a key is in a file or in a token, not both"
            )),
            (None, None) => Err(format!(
                "{block} needs key (a PEM file) or pkcs11 (a token object)"
            )),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Pkcs11(config) => write!(
                f,
                "PKCS#11 key {:?} in token {:?}",
                config.key_label, config.token_label
            ),
        }
    }
}

/// A CA private key, wherever it lives, as rcgen signs with it.
pub struct CaKey {
    inner: Inner,
}

enum Inner {
    File(KeyPair),
    Pkcs11(Pkcs11Key),
}

impl CaKey {
    /// Opens an existing key.
    pub fn load(source: &KeySource) -> Result<Self, Error> {
        let key = match source {
            KeySource::File(path) => Self::from_key_pair(load_pem_key(path)?),
            KeySource::Pkcs11(config) => Self {
                inner: Inner::Pkcs11(Pkcs11Key::open(config)?),
            },
        };
        key.check_supported()?;
        Ok(key)
    }

    /// Makes a new key of type `alg` at `source`. Refuses to replace a key: an
    /// existing file, or a token object with the same label, is an error.
    pub fn generate(source: &KeySource, alg: KeyAlgorithm) -> Result<Self, Error> {
        match source {
            KeySource::File(path) => {
                let pem = generate_pkcs8_pem(alg)?;
                write_new_private(path, pem.as_bytes())?;
                Ok(Self::from_key_pair(parse_pem_key(&pem, path)?))
            }
            KeySource::Pkcs11(config) => Ok(Self {
                inner: Inner::Pkcs11(Pkcs11Key::generate(config, alg)?),
            }),
        }
    }

    /// A key held in memory (tests, and the throwaway keys of `basalt dev`'s
    /// internal PKI).
    pub fn from_key_pair(key: KeyPair) -> Self {
        Self {
            inner: Inner::File(key),
        }
    }

    /// The subjectPublicKeyInfo, DER.
    pub fn subject_public_key_info(&self) -> Vec<u8> {
        PublicKeyData::subject_public_key_info(self)
    }

    /// Where the key lives, for logs: "file" or "pkcs11".
    pub fn storage(&self) -> &'static str {
        match self.inner {
            Inner::File(_) => "file",
            Inner::Pkcs11(_) => "pkcs11",
        }
    }

    fn check_supported(&self) -> Result<(), Error> {
        let alg = self.algorithm();
        if is_supported_algorithm(alg) {
            Ok(())
        } else {
            Err(Error::internal(format!(
                "CA key algorithm {alg:?} is not supported: use ECDSA P-256, P-384 or RSA"
            )))
        }
    }
}

impl From<KeyPair> for CaKey {
    fn from(key: KeyPair) -> Self {
        Self::from_key_pair(key)
    }
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaKey")
            .field("storage", &self.storage())
            .field("algorithm", self.algorithm())
            .finish_non_exhaustive()
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::File(key) => key.der_bytes(),
            Inner::Pkcs11(key) => key.public_key_bits(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match &self.inner {
            Inner::File(key) => key.algorithm(),
            Inner::Pkcs11(key) => key.algorithm(),
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match &self.inner {
            Inner::File(key) => key.sign(msg),
            Inner::Pkcs11(key) => key.sign(msg).map_err(|err| {
                tracing::error!(error = %err.detail, "PKCS#11 signing failed");
                rcgen::Error::RemoteKeyError
            }),
        }
    }
}

/// Whether a CA key may sign with `alg`: ECDSA P-256/P-384 or RSA.
pub(crate) fn is_supported_algorithm(alg: &SignatureAlgorithm) -> bool {
    [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_RSA_SHA384,
        &rcgen::PKCS_RSA_SHA512,
    ]
    .contains(&alg)
}

/// Reads a PKCS#8 PEM private key file.
pub(crate) fn load_pem_key(path: &Path) -> Result<KeyPair, Error> {
    let pem = fs::read_to_string(path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", path.display())))?;
    parse_pem_key(&pem, path)
}

fn parse_pem_key(pem: &str, path: &Path) -> Result<KeyPair, Error> {
    KeyPair::from_pem(pem)
        .map_err(|err| Error::internal(format!("cannot load the key {}: {err}", path.display())))
}

/// A fresh key of type `alg`, PKCS#8 PEM. ring generates the ECDSA keys; it cannot
/// generate RSA keys, so those come from the `rsa` crate (with the operating
/// system's random number generator) and are then loaded into ring to sign.
pub(crate) fn generate_pkcs8_pem(alg: KeyAlgorithm) -> Result<String, Error> {
    match alg.rsa_bits() {
        None => KeyPair::generate_for(alg.signature_algorithm())
            .map(|key| key.serialize_pem())
            .map_err(|err| Error::internal(format!("cannot generate an {alg} key: {err}"))),
        Some(bits) => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|err| Error::internal(format!("cannot generate an {alg} key: {err}")))?;
            key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|err| Error::internal(format!("cannot encode an {alg} key: {err}")))
        }
    }
}

/// Writes a private key to a file that must not exist yet, mode 0600 on unix.
pub(crate) fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|err| {
        Error::internal(format!(
            "cannot create the key file {}: {err}",
            path.display()
        ))
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_of_every_type_generate_load_and_sign() {
        let temp = crate::test_support::TempDir::new();
        let dir = temp.path();
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let path = dir.join(format!("{alg}.key"));
            let source = KeySource::File(path.clone());
            let made = CaKey::generate(&source, alg).unwrap();
            assert_eq!(made.algorithm(), alg.signature_algorithm(), "{alg}");
            let loaded = CaKey::load(&source).unwrap();
            assert_eq!(loaded.der_bytes(), made.der_bytes(), "{alg}");
            assert!(!loaded.sign(b"message").unwrap().is_empty());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{alg}");
            }
            // A second ceremony never overwrites the key.
            let err = CaKey::generate(&source, alg).unwrap_err();
            assert!(err.detail.contains("cannot create the key file"), "{err}");
        }
    }

    #[test]
    fn exactly_one_key_location() {
        let path = PathBuf::from("k.pem");
        let pkcs11 = Pkcs11Config {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "basalt".into(),
            key_label: "issuer".into(),
            pin_file: "pin".into(),
        };
        assert_eq!(
            KeySource::from_fields("issuers[0]", Some(&path), None),
            Ok(KeySource::File(path.clone()))
        );
        assert!(KeySource::from_fields("issuers[0]", None, Some(&pkcs11)).is_ok());
        let both = KeySource::from_fields("issuers[0]", Some(&path), Some(&pkcs11)).unwrap_err();
        assert!(both.contains("issuers[0] sets both"), "{both}");
        let none = KeySource::from_fields("issuers[0]", None, None).unwrap_err();
        assert!(none.contains("issuers[0] needs key"), "{none}");
        let unlabelled = Pkcs11Config {
            key_label: String::new(),
            ..pkcs11
        };
        let err = KeySource::from_fields("root", None, Some(&unlabelled)).unwrap_err();
        assert!(err.contains("root.pkcs11.key_label"), "{err}");
    }
}
