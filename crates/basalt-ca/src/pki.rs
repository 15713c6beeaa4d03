//! The PKI of `basalt dev`: a lab CA's certificates and keys, made offline.
//!
//! Three separate PKIs, so that trusting one never means trusting another:
//!
//! * the **issuing hierarchy** ([`DevIssuingPki`]), made by [`crate::ceremony`]
//!   ceremonies that `basalt dev` runs: an ECDSA root and intermediate ("Basalt Dev
//!   Root ECDSA" → "Basalt Dev Intermediate ECDSA"), an RSA one ("Basalt Dev Root
//!   RSA" → "Basalt Dev Intermediate RSA"), and a third root, "Basalt Dev Root X2",
//!   that cross-signs the ECDSA intermediate, so the WFE has an alternate chain to
//!   offer (RFC 8555 §7.4.2), as Let's Encrypt does. The intermediates are the CA's
//!   [`crate::Issuer`]s; subscribers' certificates chain to `root.pem`, which holds
//!   both roots. With [`DevIssuingPki::with_delegated_ocsp`], each intermediate
//!   also certifies a delegated OCSP responder ("Basalt Dev OCSP Signer ECDSA" and
//!   "… RSA", `ocsp-signer-<issuer>.pem`, a year long) that signs its OCSP
//!   responses instead of its own key;
//! * the **internal mTLS CA** ([`generate_internal_pki`]): one certificate per
//!   service name for the gRPC links, client and server at once;
//! * the **API CA** ([`generate_api_ca`] + [`generate_server_cert`]): the WFE's HTTPS
//!   certificate. ACME clients must trust the PEM that [`generate_server_cert`]
//!   returns (`api-ca.pem` when signed by the API CA).
//!
//! The `generate_*` functions generate unconditionally and overwrite; the caller
//! decides whether files already exist. Their private keys are PKCS#8 PEM written
//! with mode 0600 on unix. The issuing hierarchy's ceremonies, by contrast, never
//! overwrite anything.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::path::PathBuf;

use basalt_core::Clock;
use basalt_core::Error;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::DistinguishedName;
use rcgen::DnType;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;
use rcgen::SanType;
use rcgen::SerialNumber;
use time::OffsetDateTime;

use crate::KeyAlgorithm;
use crate::KeySource;
use crate::Pkcs11Config;
use crate::ceremony::CeremonyKind;
use crate::issuance::new_serial;

/// Common name of the in-memory test root.
pub const ROOT_CN: &str = "Basalt Dev Root";
/// Common name of the in-memory test intermediate.
pub const INTERMEDIATE_CN: &str = "Basalt Dev Intermediate";
/// Common name of the dev ECDSA root (P-384).
pub const ROOT_ECDSA_CN: &str = "Basalt Dev Root ECDSA";
/// Common name of the dev ECDSA intermediate (P-256), the CA's first issuer.
pub const INTERMEDIATE_ECDSA_CN: &str = "Basalt Dev Intermediate ECDSA";
/// Common name of the dev RSA root (4096 bits).
pub const ROOT_RSA_CN: &str = "Basalt Dev Root RSA";
/// Common name of the dev RSA intermediate (2048 bits), the issuer of RSA keys.
pub const INTERMEDIATE_RSA_CN: &str = "Basalt Dev Intermediate RSA";
/// Common name of the third dev root (P-384), which cross-signs the ECDSA
/// intermediate.
pub const ROOT_X2_CN: &str = "Basalt Dev Root X2";
/// Common name of the delegated OCSP responder of the ECDSA intermediate (P-256).
pub const OCSP_SIGNER_ECDSA_CN: &str = "Basalt Dev OCSP Signer ECDSA";
/// Common name of the delegated OCSP responder of the RSA intermediate (2048 bits).
pub const OCSP_SIGNER_RSA_CN: &str = "Basalt Dev OCSP Signer RSA";
/// Common name of the internal mTLS CA.
pub const INTERNAL_CA_CN: &str = "Basalt Dev Internal CA";
/// Common name of the CA that signs the WFE's HTTPS certificate.
pub const API_CA_CN: &str = "Basalt Dev API CA";
/// The organizationName of the dev issuing hierarchy.
const DEV_ORGANIZATION: &str = "Basalt Dev";

const ROOT_DAYS: i64 = 3650;
const INTERMEDIATE_DAYS: i64 = 1825;
/// Under the most `basalt ceremony ocsp-signer` allows
/// ([`crate::ceremony::MAX_OCSP_SIGNER_DAYS`]), with the hour of backdating.
const OCSP_SIGNER_DAYS: i64 = 365;
const INTERNAL_CA_DAYS: i64 = 3650;
const INTERNAL_LEAF_DAYS: i64 = 730;
/// Under the 398 days that browsers and Apple platforms accept for TLS servers.
const SERVER_CERT_DAYS: i64 = 397;

/// A certificate file and its key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertKeyPaths {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PKCS#8 PEM (mode 0600).
    pub key: PathBuf,
}

/// The files of the internal mTLS PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalPki {
    /// `internal-ca.pem` and `internal-ca.key`: the `[tls] ca` of every service.
    pub ca: CertKeyPaths,
    /// For each name, `<name>.pem` and `<name>.key`: `[tls] cert`/`key`.
    pub leaves: Vec<(String, CertKeyPaths)>,
}

/// A CA made in memory.
pub(crate) struct GeneratedCa {
    pub(crate) params: CertificateParams,
    pub(crate) key: KeyPair,
    pub(crate) cert_pem: String,
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests
    pub(crate) cert_der: Vec<u8>,
}

impl GeneratedCa {
    fn issuer(&self) -> rcgen::Issuer<'_, &KeyPair> {
        rcgen::Issuer::from_params(&self.params, &self.key)
    }
}

/// Where `basalt dev` keeps the issuing hierarchy's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevKeyStore {
    /// PKCS#8 PEM files `<name>.key` in this directory (mode 0700).
    Files(PathBuf),
    /// Key pairs labelled `<name>` in one PKCS#11 token.
    Token {
        /// The PKCS#11 module.
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// The file holding the user PIN.
        pin_file: PathBuf,
    },
}

impl DevKeyStore {
    /// Where the key called `name` (`root-ecdsa`, `intermediate-rsa`, …) is.
    pub fn key(&self, name: &str) -> KeySource {
        match self {
            Self::Files(dir) => KeySource::File(dir.join(format!("{name}.key"))),
            Self::Token {
                module,
                token_label,
                pin_file,
            } => KeySource::Pkcs11(Pkcs11Config {
                module: module.clone(),
                token_label: token_label.clone(),
                key_label: name.to_owned(),
                pin_file: pin_file.clone(),
            }),
        }
    }
}

/// One ceremony of the dev issuing hierarchy, ready to run with
/// `basalt ceremony <kind> --config <file>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevCeremony {
    /// Names its config file (`<name>.toml`), its certificate (`<name>.pem`) and,
    /// if it makes one, its key.
    pub name: &'static str,
    /// Which ceremony.
    pub kind: CeremonyKind,
    /// The ceremony's config, TOML.
    pub config: String,
    /// The certificate it writes: once this exists, the ceremony has run.
    pub certificate: PathBuf,
}

/// One issuer of the dev CA (an `[[issuers]]` table of its config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevIssuer {
    /// `ecdsa` or `rsa`: names the URL its certificate is served at.
    pub name: &'static str,
    /// The intermediate certificate.
    pub cert: PathBuf,
    /// Where its key is.
    pub key: KeySource,
    /// Its delegated OCSP responder (the issuer's `ocsp_signer`), when the
    /// hierarchy has them ([`DevIssuingPki::with_delegated_ocsp`]).
    pub ocsp_signer: Option<DevOcspSigner>,
}

/// The delegated OCSP responder of a dev issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevOcspSigner {
    /// `ocsp-signer-<issuer>.pem`, signed by the intermediate.
    pub cert: PathBuf,
    /// Where its key is, beside the intermediates' (`ocsp-signer-<issuer>`).
    pub key: KeySource,
}

/// One step of the dev issuing hierarchy.
struct DevStep {
    name: &'static str,
    kind: CeremonyKind,
    /// The subject's common name; a cross-signed certificate keeps its own.
    common_name: &'static str,
    /// The new key's type, for ceremonies that make one.
    algorithm: Option<KeyAlgorithm>,
    /// The signing CA, by name.
    parent: Option<&'static str>,
    /// The certificate a cross-sign issues again, by name.
    original: Option<&'static str>,
    days: i64,
}

/// The dev issuing hierarchy, in the order its ceremonies run. The `ocsp-signer`
/// steps run only for a hierarchy with delegated OCSP responders.
const DEV_STEPS: [DevStep; 8] = [
    DevStep {
        name: "root-ecdsa",
        kind: CeremonyKind::Root,
        common_name: ROOT_ECDSA_CN,
        algorithm: Some(KeyAlgorithm::EcdsaP384),
        parent: None,
        original: None,
        days: ROOT_DAYS,
    },
    DevStep {
        name: "intermediate-ecdsa",
        kind: CeremonyKind::Intermediate,
        common_name: INTERMEDIATE_ECDSA_CN,
        algorithm: Some(KeyAlgorithm::EcdsaP256),
        parent: Some("root-ecdsa"),
        original: None,
        days: INTERMEDIATE_DAYS,
    },
    DevStep {
        name: "root-rsa",
        kind: CeremonyKind::Root,
        common_name: ROOT_RSA_CN,
        algorithm: Some(KeyAlgorithm::Rsa4096),
        parent: None,
        original: None,
        days: ROOT_DAYS,
    },
    DevStep {
        name: "intermediate-rsa",
        kind: CeremonyKind::Intermediate,
        common_name: INTERMEDIATE_RSA_CN,
        algorithm: Some(KeyAlgorithm::Rsa2048),
        parent: Some("root-rsa"),
        original: None,
        days: INTERMEDIATE_DAYS,
    },
    DevStep {
        name: "root-x2",
        kind: CeremonyKind::Root,
        common_name: ROOT_X2_CN,
        algorithm: Some(KeyAlgorithm::EcdsaP384),
        parent: None,
        original: None,
        days: ROOT_DAYS,
    },
    DevStep {
        name: "intermediate-x2",
        kind: CeremonyKind::CrossSign,
        common_name: INTERMEDIATE_ECDSA_CN,
        algorithm: None,
        parent: Some("root-x2"),
        original: Some("intermediate-ecdsa"),
        days: INTERMEDIATE_DAYS,
    },
    DevStep {
        name: "ocsp-signer-ecdsa",
        kind: CeremonyKind::OcspSigner,
        common_name: OCSP_SIGNER_ECDSA_CN,
        algorithm: Some(KeyAlgorithm::EcdsaP256),
        parent: Some("intermediate-ecdsa"),
        original: None,
        days: OCSP_SIGNER_DAYS,
    },
    DevStep {
        name: "ocsp-signer-rsa",
        kind: CeremonyKind::OcspSigner,
        common_name: OCSP_SIGNER_RSA_CN,
        algorithm: Some(KeyAlgorithm::Rsa2048),
        parent: Some("intermediate-rsa"),
        original: None,
        days: OCSP_SIGNER_DAYS,
    },
];

/// `basalt dev`'s issuing hierarchy: public certificates `<name>.pem` in `dir`,
/// keys in `keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevIssuingPki {
    /// Where the certificates are (`<data-dir>/pki`).
    pub dir: PathBuf,
    /// Where the keys are.
    pub keys: DevKeyStore,
    /// Whether each intermediate has a delegated OCSP responder
    /// ([`DevIssuingPki::with_delegated_ocsp`]).
    pub delegated_ocsp: bool,
}

impl DevIssuingPki {
    /// The hierarchy with certificates in `dir` and keys in `keys`, whose
    /// intermediates sign their OCSP responses themselves.
    pub fn new(dir: impl Into<PathBuf>, keys: DevKeyStore) -> Self {
        Self {
            dir: dir.into(),
            keys,
            delegated_ocsp: false,
        }
    }

    /// The same hierarchy with (`true`) or without a delegated OCSP responder for
    /// each intermediate: `ocsp-signer-ecdsa` (P-256) and `ocsp-signer-rsa` (RSA
    /// 2048), made by `basalt ceremony ocsp-signer` under their intermediate, with
    /// their keys beside the intermediates'. A hierarchy made without them gets
    /// them from the next run of [`DevIssuingPki::ceremonies`]: only their
    /// ceremonies have not run.
    pub fn with_delegated_ocsp(mut self, delegated: bool) -> Self {
        self.delegated_ocsp = delegated;
        self
    }

    /// The certificate called `name`, e.g. `intermediate-x2`.
    pub fn certificate(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// `root.pem`: the ECDSA and RSA roots, which clients trust for the default
    /// chains ([`DevIssuingPki::write_root_bundle`]).
    pub fn root_bundle(&self) -> PathBuf {
        self.certificate("root")
    }

    /// The CA's issuers, ECDSA first (the issuer of every key type but RSA), each
    /// with its delegated OCSP responder if the hierarchy has them.
    pub fn issuers(&self) -> Vec<DevIssuer> {
        ["ecdsa", "rsa"]
            .into_iter()
            .map(|name| {
                let stem = format!("intermediate-{name}");
                let signer = format!("ocsp-signer-{name}");
                DevIssuer {
                    name,
                    cert: self.certificate(&stem),
                    key: self.keys.key(&stem),
                    ocsp_signer: self.delegated_ocsp.then(|| DevOcspSigner {
                        cert: self.certificate(&signer),
                        key: self.keys.key(&signer),
                    }),
                }
            })
            .collect()
    }

    /// The ceremonies that make the hierarchy, in order, each with explicit dates:
    /// from an hour before `now` (clock skew between the lab's processes), 10
    /// years for roots, 5 for intermediates and 1 for delegated OCSP responders.
    /// A ceremony whose certificate exists has run; the others are run in this
    /// order, so each finds its parent.
    pub fn ceremonies(&self, now: OffsetDateTime) -> Result<Vec<DevCeremony>, Error> {
        let now = now
            .replace_nanosecond(0)
            .map_err(|_| Error::internal("cannot truncate the current time"))?;
        let not_before = rfc3339(now - time::Duration::hours(1))?;
        DEV_STEPS
            .iter()
            .filter(|step| self.delegated_ocsp || step.kind != CeremonyKind::OcspSigner)
            .map(|step| {
                let not_after = rfc3339(
                    now.checked_add(time::Duration::days(step.days))
                        .ok_or_else(|| Error::internal("certificate expiry out of range"))?,
                )?;
                let mut config = format!(
                    "# The {} ceremony of `basalt dev`'s issuing hierarchy, written by\n\
                     # `basalt dev` and run as `basalt ceremony {} --config <this file>`.\n",
                    step.name, step.kind
                );
                if let Some(parent) = step.parent {
                    config.push_str(&format!(
                        "\n[parent]\ncertificate = {}\n{}\n",
                        toml_path(&self.certificate(parent))?,
                        key_fields(&self.keys.key(parent))?
                    ));
                }
                if let Some(original) = step.original {
                    config.push_str(&format!(
                        "\n[inputs]\ncertificate = {}\n",
                        toml_path(&self.certificate(original))?
                    ));
                }
                if let Some(algorithm) = step.algorithm {
                    config.push_str(&format!(
                        "\n[new_key]\nalgorithm = {}\n{}\n\n[subject]\n\
                         common_name = {}\norganization = {}\n",
                        toml_string(&algorithm.to_string()),
                        key_fields(&self.keys.key(step.name))?,
                        toml_string(step.common_name),
                        toml_string(DEV_ORGANIZATION),
                    ));
                }
                config.push_str(&format!(
                    "\n[validity]\nnot_before = {}\nnot_after = {}\n\n\
                     [outputs]\ncertificate = {}\n",
                    toml_string(&not_before),
                    toml_string(&not_after),
                    toml_path(&self.certificate(step.name))?
                ));
                Ok(DevCeremony {
                    name: step.name,
                    kind: step.kind,
                    config,
                    certificate: self.certificate(step.name),
                })
            })
            .collect()
    }

    /// Writes `root.pem`, the ECDSA root then the RSA root, from their ceremonies'
    /// certificates (replacing an earlier bundle).
    pub fn write_root_bundle(&self) -> Result<PathBuf, Error> {
        let mut bundle = String::new();
        for name in ["root-ecdsa", "root-rsa"] {
            let pem = read_to_string(&self.certificate(name))?;
            bundle.push_str(pem.trim_end());
            bundle.push('\n');
        }
        let path = self.root_bundle();
        write_public(&path, &bundle)?;
        Ok(path)
    }
}

/// A date as the ceremony configs write it.
fn rfc3339(at: OffsetDateTime) -> Result<String, Error> {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|err| Error::internal(format!("cannot format a date: {err}")))
}

/// The `key = …` or `pkcs11 = { … }` line naming `source`.
fn key_fields(source: &KeySource) -> Result<String, Error> {
    Ok(match source {
        KeySource::File(path) => format!("key = {}", toml_path(path)?),
        KeySource::Pkcs11(config) => format!(
            "pkcs11 = {{ module = {}, token_label = {}, key_label = {}, pin_file = {} }}",
            toml_path(&config.module)?,
            toml_string(&config.token_label),
            toml_string(&config.key_label),
            toml_path(&config.pin_file)?
        ),
    })
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A path as a TOML string; it must be UTF-8 to be written in a config.
fn toml_path(path: &Path) -> Result<String, Error> {
    path.to_str().map(toml_string).ok_or_else(|| {
        Error::internal(format!(
            "{} is not UTF-8 and cannot be written in a ceremony config",
            path.display()
        ))
    })
}

/// Generates the internal mTLS CA (`internal-ca.pem`/`.key`) in `dir` and, for each
/// name, a certificate with that DNS name (or IP address), for serverAuth and
/// clientAuth, valid 2 years, written as `<name>.pem`/`<name>.key`.
pub fn generate_internal_pki(
    dir: &Path,
    names: &[&str],
    clock: &dyn Clock,
) -> Result<InternalPki, Error> {
    let now = clock.now();
    let ca = new_root(INTERNAL_CA_CN, 0, INTERNAL_CA_DAYS, now)?;
    // Check every name before writing anything.
    for name in names {
        file_stem(name)?;
        san(name)?;
    }
    create_dir(dir)?;
    let ca_paths = write_pair(dir, "internal-ca", &ca.cert_pem, &ca.key)?;
    let mut leaves = Vec::with_capacity(names.len());
    for name in names {
        let (cert_pem, key) = new_leaf(
            &ca,
            &[name],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            INTERNAL_LEAF_DAYS,
            now,
        )?;
        leaves.push((
            name.to_string(),
            write_pair(dir, file_stem(name)?, &cert_pem, &key)?,
        ));
    }
    Ok(InternalPki {
        ca: ca_paths,
        leaves,
    })
}

/// Generates the CA for the WFE's HTTPS certificate, "Basalt Dev API CA", as
/// `api-ca.pem`/`api-ca.key` in `dir`. It is separate from the issuing and
/// internal hierarchies so that ACME clients trust only what they need.
pub fn generate_api_ca(dir: &Path, clock: &dyn Clock) -> Result<CertKeyPaths, Error> {
    let ca = new_root(API_CA_CN, 0, INTERNAL_CA_DAYS, clock.now())?;
    create_dir(dir)?;
    write_pair(dir, "api-ca", &ca.cert_pem, &ca.key)
}

/// Issues an HTTPS server certificate for `names` (DNS names or IP literals such as
/// `127.0.0.1`) from the CA in `ca` (normally [`generate_api_ca`]'s, though the
/// internal CA works too), valid 397 days, serverAuth only, written to `cert_out`
/// and `key_out`. Returns the path of the CA certificate that clients must trust.
pub fn generate_server_cert(
    ca: &CertKeyPaths,
    names: &[&str],
    cert_out: &Path,
    key_out: &Path,
    clock: &dyn Clock,
) -> Result<PathBuf, Error> {
    if names.is_empty() {
        return Err(Error::internal(
            "a server certificate needs at least one name",
        ));
    }
    let ca_pem = read_to_string(&ca.cert)?;
    let ca_key = KeyPair::from_pem(&read_to_string(&ca.key)?)
        .map_err(|err| Error::internal(format!("cannot load {}: {err}", ca.key.display())))?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(|err| Error::internal(format!("cannot use {}: {err}", ca.cert.display())))?;
    let key = new_key()?;
    let params = leaf_params(
        names,
        &[ExtendedKeyUsagePurpose::ServerAuth],
        SERVER_CERT_DAYS,
        clock.now(),
    )?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|err| Error::internal(format!("cannot sign the server certificate: {err}")))?;
    for path in [cert_out, key_out] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir(parent)?;
        }
    }
    write_public(cert_out, &cert.pem())?;
    write_private(key_out, &key.serialize_pem())?;
    Ok(ca.cert.clone())
}

/// A self-signed CA certificate.
pub(crate) fn new_root(
    cn: &str,
    path_len: u8,
    days: i64,
    now: OffsetDateTime,
) -> Result<GeneratedCa, Error> {
    let key = new_key()?;
    let params = ca_params(cn, path_len, days, now)?;
    let cert = params
        .self_signed(&key)
        .map_err(|err| Error::internal(format!("cannot sign {cn}: {err}")))?;
    Ok(GeneratedCa {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        params,
        key,
    })
}

/// An intermediate named [`INTERMEDIATE_CN`], signed by `root` (the unit tests'
/// in-memory hierarchy).
#[cfg(test)]
pub(crate) fn new_intermediate(
    root: &GeneratedCa,
    now: OffsetDateTime,
) -> Result<GeneratedCa, Error> {
    let key = new_key()?;
    let mut params = ca_params(INTERMEDIATE_CN, 0, INTERMEDIATE_DAYS, now)?;
    params.key_usages.push(KeyUsagePurpose::DigitalSignature);
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &root.issuer())
        .map_err(|err| Error::internal(format!("cannot sign {INTERMEDIATE_CN}: {err}")))?;
    Ok(GeneratedCa {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        params,
        key,
    })
}

/// A leaf certificate for `names` signed by `ca`: (certificate PEM, key).
pub(crate) fn new_leaf(
    ca: &GeneratedCa,
    names: &[&str],
    usages: &[ExtendedKeyUsagePurpose],
    days: i64,
    now: OffsetDateTime,
) -> Result<(String, KeyPair), Error> {
    let key = new_key()?;
    let params = leaf_params(names, usages, days, now)?;
    let cert = params
        .signed_by(&key, &ca.issuer())
        .map_err(|err| Error::internal(format!("cannot sign a leaf certificate: {err}")))?;
    Ok((cert.pem(), key))
}

fn ca_params(
    cn: &str,
    path_len: u8,
    days: i64,
    now: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()?));
    set_validity(&mut params, days, now)?;
    Ok(params)
}

fn leaf_params(
    names: &[&str],
    usages: &[ExtendedKeyUsagePurpose],
    days: i64,
    now: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(first) = names.first() {
        dn.push(DnType::CommonName, *first);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|name| san(name))
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()?));
    set_validity(&mut params, days, now)?;
    Ok(params)
}

/// notBefore an hour back (for clock skew between the lab's processes), notAfter
/// `days` from now.
fn set_validity(
    params: &mut CertificateParams,
    days: i64,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let now = now
        .replace_nanosecond(0)
        .map_err(|_| Error::internal("cannot truncate the current time"))?;
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now
        .checked_add(time::Duration::days(days))
        .ok_or_else(|| Error::internal("certificate expiry out of range"))?;
    Ok(())
}

fn san(name: &str) -> Result<SanType, Error> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if name.is_empty() {
        return Err(Error::internal("empty certificate name"));
    }
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|_| Error::internal(format!("{name:?} is not a valid DNS name")))
}

/// `name` as a file name, refusing anything that could leave the directory.
fn file_stem(name: &str) -> Result<&str, Error> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.contains(':')
    {
        return Err(Error::internal(format!(
            "{name:?} cannot be used as a file name"
        )));
    }
    Ok(name)
}

fn new_key() -> Result<KeyPair, Error> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|err| Error::internal(format!("cannot generate a key: {err}")))
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir)
        .map_err(|err| Error::internal(format!("cannot create {}: {err}", dir.display())))
}

fn read_to_string(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", path.display())))
}

fn write_pair(
    dir: &Path,
    stem: &str,
    cert_pem: &str,
    key: &KeyPair,
) -> Result<CertKeyPaths, Error> {
    let paths = CertKeyPaths {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    write_public(&paths.cert, cert_pem)?;
    write_private(&paths.key, &key.serialize_pem())?;
    Ok(paths)
}

fn write_public(path: &Path, contents: &str) -> Result<(), Error> {
    fs::write(path, contents)
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))
}

/// Writes a private key readable by its owner only: created with mode 0600, and
/// the mode reset if the file already existed.
fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    let failed =
        |err: std::io::Error| Error::internal(format!("cannot write {}: {err}", path.display()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
    }
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

#[cfg(test)]
mod tests;
