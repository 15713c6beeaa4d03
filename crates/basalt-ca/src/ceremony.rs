//! The key ceremony: `basalt ceremony root|intermediate|cross-sign|crl-signer|ocsp-signer
//! --config FILE`.
//!
//! A CA's keys and certificates are made offline, one ceremony at a time, each
//! described by one TOML file that an operator can review (and keep) beforehand:
//!
//! * `root` ([`RootConfig`]): a new key and a self-signed CA certificate;
//! * `intermediate` ([`IntermediateConfig`]): a new (or existing) key and a
//!   subordinate CA certificate for TLS issuance, signed by a parent CA;
//! * `cross-sign` ([`CrossSignConfig`]): an existing CA certificate issued again by
//!   another parent, with the same subject, public key and key identifier, so the
//!   certificates it signs chain to both parents;
//! * `crl-signer` ([`CrlSignerConfig`]): a new key and a certificate for signing
//!   CRLs on a CA's behalf (not a CA);
//! * `ocsp-signer` ([`OcspSignerConfig`]): a new key and a delegated OCSP
//!   responder certificate (RFC 6960 §4.2.2.2) for signing OCSP responses on an
//!   issuing CA's behalf (not a CA), at most [`MAX_OCSP_SIGNER_DAYS`] days long.
//!
//! Keys are PKCS#8 PEM files or objects in a PKCS#11 token ([`KeySource`]): a
//! config says `key = "<path>"` or `pkcs11 = { module, token_label, key_label,
//! pin_file }`. A ceremony that makes a key never replaces one, and never
//! overwrites an output: everything it will write must not exist yet. Validity
//! periods are explicit dates, never "from now". Before writing, every certificate
//! is parsed back, its signature checked with the parent's public key, its
//! fields compared with what was asked, and a new key proved to match it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;

use basalt_core::Error;
use der::Encode;
use der::asn1::Ia5String;
use der::asn1::ObjectIdentifier;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::CrlDistributionPoint;
use rcgen::CustomExtension;
use rcgen::DistinguishedName;
use rcgen::DnType;
use rcgen::DnValue;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::KeyIdMethod;
use rcgen::KeyUsagePurpose;
use rcgen::PublicKeyData;
use rcgen::SerialNumber;
use rcgen::SigningKey;
use rcgen::string::BmpString;
use rcgen::string::UniversalString;
use serde::Deserialize;
use serde::Deserializer;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::ext::pkix::AccessDescription;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::pkix::name::GeneralName;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS;
use x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER;
use x509_parser::oid_registry::OID_X509_EXT_CRL_DISTRIBUTION_POINTS;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::CaKey;
use crate::KeyAlgorithm;
use crate::KeySource;
use crate::Pkcs11Config;
use crate::issuance::DV_CERTIFICATE_POLICIES;
use crate::issuance::OID_CERTIFICATE_POLICIES;
use crate::issuance::new_serial;

/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1).
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-caIssuers (RFC 5280 §4.2.2.1).
const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
/// ub-common-name and ub-organization-name (RFC 5280 Appendix A.1).
const MAX_NAME_LEN: usize = 64;
/// What a new key signs to prove that it belongs to the certificate made for it.
const POSSESSION_MESSAGE: &[u8] = b"basalt ceremony: proof of possession";
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): relying parties need not check the
/// revocation of a delegated OCSP responder's certificate.
pub(crate) const OID_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
/// The value of id-pkix-ocsp-nocheck: NULL, DER.
pub(crate) const OCSP_NOCHECK_VALUE: &[u8] = &[0x05, 0x00];

/// Whether `cert` carries id-pkix-ocsp-nocheck with its NULL value.
pub(crate) fn has_ocsp_nocheck(cert: &X509Certificate<'_>) -> bool {
    cert.extensions().iter().any(|ext| {
        ext.oid
            .iter()
            .is_some_and(|arcs| arcs.eq(OID_OCSP_NOCHECK.iter().copied()))
            && ext.value == OCSP_NOCHECK_VALUE
    })
}
/// The longest validity of an `ocsp-signer` certificate, in days (notAfter -
/// notBefore): a year, leap day included. A delegated responder's certificate
/// carries id-pkix-ocsp-nocheck, so it cannot be revoked in any way a client
/// checks: it is kept short instead, and replaced.
pub const MAX_OCSP_SIGNER_DAYS: i64 = 366;

/// The five ceremonies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CeremonyKind {
    /// A certificate for a delegated CRL signing key (`crl-signer`).
    CrlSigner,
    /// An existing CA certificate issued again by another parent (`cross-sign`).
    CrossSign,
    /// A subordinate CA for TLS issuance (`intermediate`).
    Intermediate,
    /// A certificate for a delegated OCSP signing key (`ocsp-signer`).
    OcspSigner,
    /// A self-signed root CA (`root`).
    Root,
}

impl CeremonyKind {
    /// Every ceremony, in the order a hierarchy is usually made.
    pub const ALL: [Self; 5] = [
        Self::Root,
        Self::Intermediate,
        Self::CrossSign,
        Self::CrlSigner,
        Self::OcspSigner,
    ];

    /// The name on the command line: `root`, `intermediate`, `cross-sign`,
    /// `crl-signer` or `ocsp-signer`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CrlSigner => "crl-signer",
            Self::CrossSign => "cross-sign",
            Self::Intermediate => "intermediate",
            Self::OcspSigner => "ocsp-signer",
            Self::Root => "root",
        }
    }
}

impl fmt::Display for CeremonyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CeremonyKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown ceremony {text:?}: use root, intermediate, cross-sign, \
                     crl-signer or ocsp-signer"
                )
            })
    }
}

/// A key the ceremony makes (`[new_key]`): its type, and a file or token object
/// that must not exist yet.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewKeyConfig {
    /// The key type.
    pub algorithm: KeyAlgorithm,
    /// A PKCS#8 PEM file to create (mode 0600).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A key pair to generate in a PKCS#11 token.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
}

impl NewKeyConfig {
    fn source(&self) -> Result<KeySource, String> {
        KeySource::from_fields("new_key", self.key.as_ref(), self.pkcs11.as_ref())
    }
}

/// A key that exists already (`[existing_key]` of an intermediate): its private
/// key (a file or a token object), or only its public key.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExistingKeyConfig {
    /// A PKCS#8 PEM private key file.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A key pair in a PKCS#11 token.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo) file, when the private key is
    /// elsewhere (another token, another machine).
    #[serde(default)]
    pub public_key: Option<PathBuf>,
}

/// The CA that signs (`[parent]`): its certificate and its private key.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ParentConfig {
    /// The parent's certificate, PEM (one certificate).
    pub certificate: PathBuf,
    /// Its PKCS#8 PEM private key file.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Its key pair in a PKCS#11 token.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
}

impl ParentConfig {
    fn source(&self) -> Result<KeySource, String> {
        KeySource::from_fields("parent", self.key.as_ref(), self.pkcs11.as_ref())
    }
}

/// The subject name (`[subject]`), written as one attribute per RDN: countryName,
/// organizationName, commonName.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubjectConfig {
    /// commonName, at most 64 characters.
    pub common_name: String,
    /// organizationName, at most 64 characters.
    #[serde(default)]
    pub organization: Option<String>,
    /// countryName: two capital letters (ISO 3166-1 alpha-2).
    #[serde(default)]
    pub country: Option<String>,
}

/// An RFC 3339 date and time, written as a TOML string (`"2025-01-01T00:00:00Z"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date and time in quotes, e.g. \"2025-01-01T00:00:00Z\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map(|at| Timestamp(at.to_offset(time::UtcOffset::UTC)))
                    .map_err(|err| E::custom(format!("{text:?} is not an RFC 3339 date: {err}")))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

/// The validity period (`[validity]`), inclusive, in whole seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ValidityConfig {
    /// notBefore.
    pub not_before: Timestamp,
    /// notAfter.
    pub not_after: Timestamp,
}

/// URLs to put in a subordinate certificate (`[extensions]`, optional).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsConfig {
    /// The parent's CRL (crlDistributionPoints), an `http://` URL.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The parent's certificate (authorityInfoAccess caIssuers), an `http://` URL.
    #[serde(default)]
    pub issuer_url: Option<String>,
}

/// What a ceremony that makes a key writes (`[outputs]`); neither may exist yet.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    /// The new certificate, PEM.
    pub certificate: PathBuf,
    /// The new key's public key, PEM `PUBLIC KEY`, for ceremonies run elsewhere.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
}

/// What a cross-sign ceremony writes (`[outputs]`); it must not exist yet.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertificateOutputConfig {
    /// The new certificate, PEM.
    pub certificate: PathBuf,
}

/// The certificate a cross-sign ceremony issues again (`[inputs]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrossSignInputs {
    /// The existing CA certificate, PEM (one certificate).
    pub certificate: PathBuf,
}

/// `basalt ceremony root`: a new key and a self-signed CA certificate
/// (basicConstraints CA, keyUsage keyCertSign and cRLSign, both critical).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The root's key, made by the ceremony.
    pub new_key: NewKeyConfig,
    /// Its name.
    pub subject: SubjectConfig,
    /// Its validity period.
    pub validity: ValidityConfig,
    /// What it writes.
    pub outputs: OutputsConfig,
}

/// `basalt ceremony intermediate`: a subordinate CA for TLS issuance, signed by
/// `parent`: basicConstraints CA with pathLen 0, keyUsage digitalSignature,
/// keyCertSign and cRLSign (critical), extendedKeyUsage serverAuth, the CA/Browser
/// Forum domain-validated policy, and the optional URLs. Exactly one of `new_key`
/// and `existing_key`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IntermediateConfig {
    /// The CA that signs.
    pub parent: ParentConfig,
    /// The intermediate's key, made by the ceremony.
    #[serde(default)]
    pub new_key: Option<NewKeyConfig>,
    /// The intermediate's key, made before.
    #[serde(default)]
    pub existing_key: Option<ExistingKeyConfig>,
    /// Its name.
    pub subject: SubjectConfig,
    /// Its validity period, within the parent's.
    pub validity: ValidityConfig,
    /// URLs of the parent's CRL and certificate.
    #[serde(default)]
    pub extensions: ExtensionsConfig,
    /// What it writes.
    pub outputs: OutputsConfig,
}

/// `basalt ceremony cross-sign`: the CA certificate in `inputs` issued again by
/// `parent`, with the same subject name, public key and extensions (its own
/// CRL and AIA URLs replaced by those of `extensions`), a new serial and the
/// given validity.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrossSignConfig {
    /// The CA that signs.
    pub parent: ParentConfig,
    /// The certificate to issue again.
    pub inputs: CrossSignInputs,
    /// The validity period, within the parent's.
    pub validity: ValidityConfig,
    /// URLs of the new parent's CRL and certificate.
    #[serde(default)]
    pub extensions: ExtensionsConfig,
    /// What it writes.
    pub outputs: CertificateOutputConfig,
}

/// `basalt ceremony crl-signer`: a new key and a certificate, signed by `parent`,
/// for signing CRLs on its behalf: keyUsage cRLSign and digitalSignature
/// (critical), not a CA.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrlSignerConfig {
    /// The CA whose CRLs the key signs.
    pub parent: ParentConfig,
    /// The CRL signing key, made by the ceremony.
    pub new_key: NewKeyConfig,
    /// Its name.
    pub subject: SubjectConfig,
    /// Its validity period, within the parent's.
    pub validity: ValidityConfig,
    /// URLs of the parent's CRL and certificate.
    #[serde(default)]
    pub extensions: ExtensionsConfig,
    /// What it writes.
    pub outputs: OutputsConfig,
}

/// `basalt ceremony ocsp-signer`: a new key and a delegated OCSP responder
/// certificate (RFC 6960 §4.2.2.2), signed by `parent`, the CA whose
/// certificates' status the key signs: keyUsage digitalSignature (critical),
/// extendedKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck, not a CA, and a
/// validity of at most [`MAX_OCSP_SIGNER_DAYS`] days within the parent's.
///
/// There is no `[extensions]`: with id-pkix-ocsp-nocheck no client looks for the
/// certificate's revocation status, and the OCSP responses carry the certificate
/// itself.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OcspSignerConfig {
    /// The issuing CA whose OCSP responses the key signs.
    pub parent: ParentConfig,
    /// The OCSP signing key, made by the ceremony.
    pub new_key: NewKeyConfig,
    /// Its name.
    pub subject: SubjectConfig,
    /// Its validity period, within the parent's and at most
    /// [`MAX_OCSP_SIGNER_DAYS`] days.
    pub validity: ValidityConfig,
    /// What it writes.
    pub outputs: OutputsConfig,
}

/// One ceremony, its config parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ceremony {
    /// `crl-signer`.
    CrlSigner(CrlSignerConfig),
    /// `cross-sign`.
    CrossSign(CrossSignConfig),
    /// `intermediate`.
    Intermediate(IntermediateConfig),
    /// `ocsp-signer`.
    OcspSigner(OcspSignerConfig),
    /// `root`.
    Root(RootConfig),
}

impl Ceremony {
    /// Parses the TOML config of a `kind` ceremony and checks what serde cannot;
    /// the message names the field.
    pub fn parse(kind: CeremonyKind, text: &str) -> Result<Self, String> {
        let ceremony = match kind {
            CeremonyKind::CrlSigner => Self::CrlSigner(basalt_config::parse(text)?),
            CeremonyKind::CrossSign => Self::CrossSign(basalt_config::parse(text)?),
            CeremonyKind::Intermediate => Self::Intermediate(basalt_config::parse(text)?),
            CeremonyKind::OcspSigner => Self::OcspSigner(basalt_config::parse(text)?),
            CeremonyKind::Root => Self::Root(basalt_config::parse(text)?),
        };
        ceremony.validate()?;
        Ok(ceremony)
    }

    /// Reads and parses the config file of a `kind` ceremony.
    pub fn load(kind: CeremonyKind, path: &Path) -> Result<Self, Error> {
        let text = fs::read_to_string(path).map_err(|err| {
            Error::internal(format!(
                "cannot read the ceremony config {}: {err}",
                path.display()
            ))
        })?;
        Self::parse(kind, &text).map_err(|err| {
            Error::internal(format!(
                "invalid {kind} ceremony config {}: {err}",
                path.display()
            ))
        })
    }

    /// Which ceremony this is.
    pub fn kind(&self) -> CeremonyKind {
        match self {
            Self::CrlSigner(_) => CeremonyKind::CrlSigner,
            Self::CrossSign(_) => CeremonyKind::CrossSign,
            Self::Intermediate(_) => CeremonyKind::Intermediate,
            Self::OcspSigner(_) => CeremonyKind::OcspSigner,
            Self::Root(_) => CeremonyKind::Root,
        }
    }

    /// The files the ceremony writes, certificate first.
    pub fn outputs(&self) -> Vec<&Path> {
        let (certificate, public_key) = match self {
            Self::CrlSigner(config) => (
                &config.outputs.certificate,
                config.outputs.public_key.as_deref(),
            ),
            Self::CrossSign(config) => (&config.outputs.certificate, None),
            Self::Intermediate(config) => (
                &config.outputs.certificate,
                config.outputs.public_key.as_deref(),
            ),
            Self::OcspSigner(config) => (
                &config.outputs.certificate,
                config.outputs.public_key.as_deref(),
            ),
            Self::Root(config) => (
                &config.outputs.certificate,
                config.outputs.public_key.as_deref(),
            ),
        };
        std::iter::once(certificate.as_path())
            .chain(public_key)
            .collect()
    }

    /// Runs the ceremony: makes or opens the keys, signs, checks the result, and
    /// writes the outputs.
    pub fn run(&self) -> Result<Summary, Error> {
        let fields = ["outputs.certificate", "outputs.public_key"];
        for (path, field) in self.outputs().into_iter().zip(fields) {
            check_output(field, path)?;
        }
        match self {
            Self::CrlSigner(config) => crl_signer(config),
            Self::CrossSign(config) => cross_sign(config),
            Self::Intermediate(config) => intermediate(config),
            Self::OcspSigner(config) => ocsp_signer(config),
            Self::Root(config) => root(config),
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            Self::CrlSigner(config) => {
                config.parent.source()?;
                config.new_key.source()?;
                validate_subject(&config.subject)?;
                validate_validity(&config.validity)?;
                validate_extensions(&config.extensions)?;
            }
            Self::CrossSign(config) => {
                config.parent.source()?;
                validate_validity(&config.validity)?;
                validate_extensions(&config.extensions)?;
            }
            Self::Intermediate(config) => {
                config.parent.source()?;
                SubjectKeyConfig::of(config)?;
                validate_subject(&config.subject)?;
                validate_validity(&config.validity)?;
                validate_extensions(&config.extensions)?;
            }
            Self::OcspSigner(config) => {
                config.parent.source()?;
                config.new_key.source()?;
                validate_subject(&config.subject)?;
                validate_validity(&config.validity)?;
                let length = config.validity.not_after.0 - config.validity.not_before.0;
                if length > time::Duration::days(MAX_OCSP_SIGNER_DAYS) {
                    return Err(format!(
                        "validity.not_after must be at most {MAX_OCSP_SIGNER_DAYS} days after \
                         validity.not_before, not {:.1} days: a delegated OCSP signing \
                         certificate cannot be revoked, so it is kept short",
                        length.as_seconds_f64() / 86_400.0
                    ));
                }
            }
            Self::Root(config) => {
                config.new_key.source()?;
                validate_subject(&config.subject)?;
                validate_validity(&config.validity)?;
            }
        }
        let outputs = self.outputs();
        if outputs.iter().any(|path| path.as_os_str().is_empty()) {
            return Err("outputs.certificate and outputs.public_key must not be empty".into());
        }
        if outputs.len() == 2 && outputs[0] == outputs[1] {
            return Err("outputs.public_key must not be outputs.certificate".into());
        }
        Ok(())
    }
}

fn validate_subject(subject: &SubjectConfig) -> Result<(), String> {
    for (field, value) in [
        ("common_name", Some(&subject.common_name)),
        ("organization", subject.organization.as_ref()),
    ] {
        let Some(value) = value else { continue };
        if value.trim().is_empty() || value.chars().count() > MAX_NAME_LEN {
            return Err(format!(
                "subject.{field} must be 1 to {MAX_NAME_LEN} characters, not {value:?}"
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("subject.{field} must not hold control characters"));
        }
    }
    if let Some(country) = &subject.country
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(format!(
            "subject.country must be two capital letters (ISO 3166-1), not {country:?}"
        ));
    }
    Ok(())
}

fn validate_validity(validity: &ValidityConfig) -> Result<(), String> {
    let (not_before, not_after) = (validity.not_before.0, validity.not_after.0);
    for (field, at) in [("not_before", not_before), ("not_after", not_after)] {
        if at.nanosecond() != 0 {
            return Err(format!(
                "validity.{field} must be in whole seconds: certificates carry no fractions"
            ));
        }
        if !(0..=9999).contains(&at.year()) {
            return Err(format!("validity.{field} is out of range"));
        }
    }
    if not_after <= not_before {
        return Err("validity.not_after must be after validity.not_before".into());
    }
    Ok(())
}

fn validate_extensions(extensions: &ExtensionsConfig) -> Result<(), String> {
    for (field, url) in [
        ("crl_url", &extensions.crl_url),
        ("issuer_url", &extensions.issuer_url),
    ] {
        if let Some(url) = url
            && (!url.starts_with("http://")
                || url.len() <= "http://".len()
                || !url.is_ascii()
                || url.bytes().any(|b| b.is_ascii_control() || b == b' '))
        {
            // The Baseline Requirements want plain HTTP here: fetching it over
            // HTTPS would need the very chain it helps to build.
            return Err(format!(
                "extensions.{field} must be an http:// URL of ASCII characters, not {url:?}"
            ));
        }
    }
    Ok(())
}

/// Which key an intermediate gets.
enum SubjectKeyConfig<'a> {
    Existing(KeySource),
    New(KeySource, KeyAlgorithm),
    PublicKey(&'a Path),
}

impl<'a> SubjectKeyConfig<'a> {
    fn of(config: &'a IntermediateConfig) -> Result<Self, String> {
        match (&config.new_key, &config.existing_key) {
            (Some(new_key), None) => Ok(Self::New(new_key.source()?, new_key.algorithm)),
            (None, Some(existing)) => match (&existing.public_key, &existing.key, &existing.pkcs11) {
                (Some(path), None, None) => Ok(Self::PublicKey(path)),
                (Some(_), _, _) => Err(
                    "existing_key sets public_key and a private key: name one of key, pkcs11 and public_key"
                        .into(),
                ),
                (None, key, pkcs11) => Ok(Self::Existing(KeySource::from_fields(
                    "existing_key",
                    key.as_ref(),
                    pkcs11.as_ref(),
                )?)),
            },
            (Some(_), Some(_)) => Err(
                "set new_key (the ceremony makes the key) or existing_key (it was made before), not both"
                    .into(),
            ),
            (None, None) => Err(
                "an intermediate needs new_key (the ceremony makes the key) or existing_key".into(),
            ),
        }
    }
}

/// What a ceremony did, for the operator's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The ceremony.
    pub kind: CeremonyKind,
    /// The new certificate's subject, e.g. `C=XX, O=Example, CN=Example Root`.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Its serial number, hex.
    pub serial: String,
    /// notBefore and notAfter.
    pub validity: (OffsetDateTime, OffsetDateTime),
    /// Where the certificate's key is, and whether the ceremony made it.
    pub key: String,
    /// The SHA-256 fingerprint of the certificate (DER), colon-separated hex.
    pub fingerprint: String,
    /// The files written, certificate first.
    pub outputs: Vec<PathBuf>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_else(|_| at.to_string());
        writeln!(f, "{} ceremony: certificate made and verified", self.kind)?;
        writeln!(f, "  subject:     {}", self.subject)?;
        writeln!(f, "  issuer:      {}", self.issuer)?;
        writeln!(f, "  serial:      {}", self.serial)?;
        writeln!(f, "  not before:  {}", date(self.validity.0))?;
        writeln!(f, "  not after:   {}", date(self.validity.1))?;
        writeln!(f, "  key:         {}", self.key)?;
        write!(f, "  SHA-256:     {}", self.fingerprint)?;
        for output in &self.outputs {
            write!(f, "\n  written:     {}", output.display())?;
        }
        Ok(())
    }
}

/// The parent CA: its certificate, checked to be a CA that signs certificates,
/// and its key, checked to match it.
struct Parent {
    der: Vec<u8>,
    key: CaKey,
}

impl Parent {
    fn open(config: &ParentConfig) -> Result<Self, Error> {
        let source = config.source().map_err(Error::internal)?;
        let der = read_certificate("parent.certificate", &config.certificate)?;
        let cert = parse_certificate("parent.certificate", &der)?;
        let bad = |what: &str| {
            Error::internal(format!(
                "parent.certificate {} {what}",
                config.certificate.display()
            ))
        };
        let is_ca = cert
            .basic_constraints()
            .map_err(|err| bad(&format!("has an invalid basicConstraints: {err}")))?
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(bad("is not a CA certificate"));
        }
        let signs_certificates = cert
            .key_usage()
            .map_err(|err| bad(&format!("has an invalid keyUsage: {err}")))?
            .is_some_and(|ku| ku.value.key_cert_sign());
        if !signs_certificates {
            return Err(bad("has no keyUsage keyCertSign"));
        }
        if subject_key_id(&cert).is_none() {
            return Err(bad("has no subject key identifier"));
        }
        let key = CaKey::load(&source).map_err(|err| {
            Error::internal(format!(
                "cannot open the parent key ({source}): {}",
                err.detail
            ))
        })?;
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(Error::internal(format!(
                "the parent key ({source}) does not belong to parent.certificate {}",
                config.certificate.display()
            )));
        }
        Ok(Self { der, key })
    }

    fn cert(&self) -> Result<X509Certificate<'_>, Error> {
        parse_certificate("parent.certificate", &self.der)
    }

    /// The parent as rcgen signs with it: its subject name (as it is encoded) and
    /// its subject key identifier, which becomes the authority key identifier.
    fn issuer(&self) -> Result<rcgen::Issuer<'_, &CaKey>, Error> {
        let cert = self.cert()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(cert.subject())
            .map_err(|err| Error::internal(format!("parent.certificate: {err}")))?;
        let key_id = subject_key_id(&cert)
            .ok_or_else(|| Error::internal("parent.certificate has no subject key identifier"))?;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id.to_vec());
        Ok(rcgen::Issuer::new(params, &self.key))
    }

    /// Checks that `validity` lies within the parent's.
    fn check_within(&self, validity: &ValidityConfig) -> Result<(), Error> {
        let cert = self.cert()?;
        let parent = cert.validity();
        if validity.not_before.0.unix_timestamp() < parent.not_before.timestamp() {
            return Err(Error::internal(format!(
                "validity.not_before is before the parent certificate's notBefore ({})",
                parent.not_before
            )));
        }
        if validity.not_after.0.unix_timestamp() > parent.not_after.timestamp() {
            return Err(Error::internal(format!(
                "validity.not_after is after the parent certificate's notAfter ({})",
                parent.not_after
            )));
        }
        Ok(())
    }
}

/// The public key a certificate is made for.
enum SubjectKey {
    /// A private key the ceremony holds (and proves).
    Key(Box<CaKey>),
    /// Only a public key.
    Public(rcgen::SubjectPublicKeyInfo),
}

impl PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Self::Key(key) => key.der_bytes(),
            Self::Public(key) => key.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Key(key) => key.algorithm(),
            Self::Public(key) => key.algorithm(),
        }
    }
}

/// What the made certificate must be.
struct Expected<'a> {
    serial: &'a [u8],
    subject_key: &'a [u8],
    validity: &'a ValidityConfig,
    /// `Some(path length)` for a CA (`Some(None)`: unconstrained), `None` for not a CA.
    ca: Option<Option<u32>>,
    key_usage: &'a [KeyUsagePurpose],
    /// Whether basicConstraints and keyUsage must be critical (a cross-signed
    /// certificate keeps the original's flags instead).
    critical: bool,
}

fn root(config: &RootConfig) -> Result<Summary, Error> {
    let source = config.new_key.source().map_err(Error::internal)?;
    let mut params = subject_params(&config.subject, &config.validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = generate(&source, config.new_key.algorithm)?;
    let cert = params
        .self_signed(&key)
        .map_err(|err| Error::internal(format!("cannot sign the root certificate: {err}")))?;
    let serial = serial_of(&params);
    check_certificate(
        cert.der(),
        None,
        &Expected {
            serial: &serial,
            subject_key: key.der_bytes(),
            validity: &config.validity,
            ca: Some(None),
            key_usage: &params.key_usages,
            critical: true,
        },
    )?;
    finish(
        CeremonyKind::Root,
        cert.der(),
        &config.outputs,
        Some(&key.subject_public_key_info()),
        format!("{source} ({}, new)", config.new_key.algorithm),
    )
}

fn intermediate(config: &IntermediateConfig) -> Result<Summary, Error> {
    let wanted = SubjectKeyConfig::of(config).map_err(Error::internal)?;
    let parent = Parent::open(&config.parent)?;
    parent.check_within(&config.validity)?;
    let mut params = subject_params(&config.subject, &config.validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    // The Baseline Requirements (§7.1.2.10.6) want TLS subordinate CAs limited to
    // serverAuth (clientAuth optional), and (§7.1.2.10.5) the domain-validated policy.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_CERTIFICATE_POLICIES,
            DV_CERTIFICATE_POLICIES.to_vec(),
        ));
    add_urls(&mut params, &config.extensions)?;
    params.use_authority_key_identifier_extension = true;
    let (subject_key, key_description) = match wanted {
        SubjectKeyConfig::New(source, alg) => (
            SubjectKey::Key(Box::new(generate(&source, alg)?)),
            format!("{source} ({alg}, new)"),
        ),
        SubjectKeyConfig::Existing(source) => (
            SubjectKey::Key(Box::new(CaKey::load(&source).map_err(|err| {
                Error::internal(format!(
                    "cannot open existing_key ({source}): {}",
                    err.detail
                ))
            })?)),
            format!("{source} (existing)"),
        ),
        SubjectKeyConfig::PublicKey(path) => (
            SubjectKey::Public(read_public_key(path)?),
            format!("public key {} (private key elsewhere)", path.display()),
        ),
    };
    let cert = params
        .signed_by(&subject_key, &parent.issuer()?)
        .map_err(|err| Error::internal(format!("cannot sign the intermediate: {err}")))?;
    let serial = serial_of(&params);
    check_certificate(
        cert.der(),
        Some(&parent),
        &Expected {
            serial: &serial,
            subject_key: subject_key.der_bytes(),
            validity: &config.validity,
            ca: Some(Some(0)),
            key_usage: &params.key_usages,
            critical: true,
        },
    )?;
    if let SubjectKey::Key(key) = &subject_key {
        check_possession(key, cert.der())?;
    }
    finish(
        CeremonyKind::Intermediate,
        cert.der(),
        &config.outputs,
        Some(&subject_key.subject_public_key_info()),
        key_description,
    )
}

fn crl_signer(config: &CrlSignerConfig) -> Result<Summary, Error> {
    let delegate = Delegate {
        kind: CeremonyKind::CrlSigner,
        parent: &config.parent,
        new_key: &config.new_key,
        subject: &config.subject,
        validity: &config.validity,
        outputs: &config.outputs,
    };
    delegate.run(
        |params| {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
            add_urls(params, &config.extensions)
        },
        |_| Ok(()),
    )
}

fn ocsp_signer(config: &OcspSignerConfig) -> Result<Summary, Error> {
    let delegate = Delegate {
        kind: CeremonyKind::OcspSigner,
        parent: &config.parent,
        new_key: &config.new_key,
        subject: &config.subject,
        validity: &config.validity,
        outputs: &config.outputs,
    };
    delegate.run(
        |params| {
            // RFC 6960 §4.2.2.2: the CA that issued the certificates in question
            // delegates by issuing this one, with id-kp-OCSPSigning in its
            // extendedKeyUsage.
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_OCSP_NOCHECK,
                    OCSP_NOCHECK_VALUE.to_vec(),
                ));
            Ok(())
        },
        check_ocsp_signing,
    )
}

/// What the ceremonies of delegated signing keys (CRL and OCSP signers) share: a
/// new key, and an end-entity certificate for it signed by the parent.
struct Delegate<'a> {
    kind: CeremonyKind,
    parent: &'a ParentConfig,
    new_key: &'a NewKeyConfig,
    subject: &'a SubjectConfig,
    validity: &'a ValidityConfig,
    outputs: &'a OutputsConfig,
}

impl Delegate<'_> {
    /// Makes the key, has `extend` add the certificate's key usages and
    /// extensions, signs it with the parent and checks it: the usual checks, then
    /// `check` on its DER, then possession of the key.
    fn run(
        &self,
        extend: impl FnOnce(&mut CertificateParams) -> Result<(), Error>,
        check: impl FnOnce(&[u8]) -> Result<(), Error>,
    ) -> Result<Summary, Error> {
        let source = self.new_key.source().map_err(Error::internal)?;
        let parent = Parent::open(self.parent)?;
        parent.check_within(self.validity)?;
        let mut params = subject_params(self.subject, self.validity)?;
        params.is_ca = IsCa::ExplicitNoCa;
        extend(&mut params)?;
        params.use_authority_key_identifier_extension = true;
        let key = generate(&source, self.new_key.algorithm)?;
        let cert = params.signed_by(&key, &parent.issuer()?).map_err(|err| {
            Error::internal(format!("cannot sign the {} certificate: {err}", self.kind))
        })?;
        let serial = serial_of(&params);
        check_certificate(
            cert.der(),
            Some(&parent),
            &Expected {
                serial: &serial,
                subject_key: key.der_bytes(),
                validity: self.validity,
                ca: None,
                key_usage: &params.key_usages,
                critical: true,
            },
        )?;
        check(cert.der())?;
        check_possession(&key, cert.der())?;
        finish(
            self.kind,
            cert.der(),
            self.outputs,
            Some(&key.subject_public_key_info()),
            format!("{source} ({}, new)", self.new_key.algorithm),
        )
    }
}

/// The delegated OCSP signer's own extensions: extendedKeyUsage id-kp-OCSPSigning
/// alone, and id-pkix-ocsp-nocheck with its NULL value.
fn check_ocsp_signing(der: &[u8]) -> Result<(), Error> {
    let failed = |what: &str| {
        Error::internal(format!(
            "the new certificate failed its check: {what}; it was not written"
        ))
    };
    let cert = parse_certificate("the new certificate", der)?;
    let eku = cert
        .extended_key_usage()
        .map_err(|err| failed(&format!("invalid extendedKeyUsage ({err})")))?
        .ok_or_else(|| failed("it has no extendedKeyUsage"))?
        .value;
    let only_ocsp_signing = eku.ocsp_signing
        && !(eku.any
            || eku.server_auth
            || eku.client_auth
            || eku.code_signing
            || eku.email_protection
            || eku.time_stamping)
        && eku.other.is_empty();
    if !only_ocsp_signing {
        return Err(failed(
            "its extendedKeyUsage is not id-kp-OCSPSigning alone",
        ));
    }
    if !has_ocsp_nocheck(&cert) {
        return Err(failed("it has no id-pkix-ocsp-nocheck (NULL)"));
    }
    Ok(())
}

fn cross_sign(config: &CrossSignConfig) -> Result<Summary, Error> {
    let field = "inputs.certificate";
    let input = &config.inputs.certificate;
    let original_der = read_certificate(field, input)?;
    let original = parse_certificate(field, &original_der)?;
    let bad = |what: String| Error::internal(format!("{field} {} {what}", input.display()));
    let is_ca = original
        .basic_constraints()
        .map_err(|err| bad(format!("has an invalid basicConstraints: {err}")))?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(bad(
            "is not a CA certificate: only CAs are cross-signed".into()
        ));
    }
    if subject_key_id(&original).is_none() {
        return Err(bad("has no subject key identifier".into()));
    }
    let key_usage = original
        .key_usage()
        .map_err(|err| bad(format!("has an invalid keyUsage: {err}")))?
        .map(|ku| key_usage_purposes(ku.value))
        .ok_or_else(|| bad("has no keyUsage".into()))?;
    let path_len = original
        .basic_constraints()
        .ok()
        .flatten()
        .and_then(|bc| bc.value.path_len_constraint);
    let parent = Parent::open(&config.parent)?;
    parent.check_within(&config.validity)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(original.subject())
        .map_err(|err| bad(format!("has a subject name that cannot be copied: {err}")))?;
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()?));
    params.not_before = config.validity.not_before.0;
    params.not_after = config.validity.not_after.0;
    // Every extension is copied as it is, critical flag and all, except those that
    // describe the issuer: the authority key identifier (now the new parent's), and
    // the CRL and AIA URLs (now those of `extensions`, if any).
    params.is_ca = IsCa::NoCa;
    params.use_authority_key_identifier_extension = true;
    for ext in original.extensions() {
        if ext.oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
            || ext.oid == OID_X509_EXT_CRL_DISTRIBUTION_POINTS
            || ext.oid == OID_PKIX_AUTHORITY_INFO_ACCESS
        {
            continue;
        }
        let oid: Vec<u64> = ext
            .oid
            .iter()
            .ok_or_else(|| bad(format!("has an extension with an unusable OID {}", ext.oid)))?
            .collect();
        let mut copy = CustomExtension::from_oid_content(&oid, ext.value.to_vec());
        copy.set_criticality(ext.critical);
        params.custom_extensions.push(copy);
    }
    add_urls(&mut params, &config.extensions)?;
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(original.public_key().raw)
        .map_err(|err| bad(format!("has an unsupported public key: {err}")))?;
    let cert = params
        .signed_by(&public_key, &parent.issuer()?)
        .map_err(|err| Error::internal(format!("cannot cross-sign: {err}")))?;

    let serial = serial_of(&params);
    check_certificate(
        cert.der(),
        Some(&parent),
        &Expected {
            serial: &serial,
            subject_key: public_key.der_bytes(),
            validity: &config.validity,
            ca: Some(path_len),
            key_usage: &key_usage,
            critical: false,
        },
    )?;
    let (_, made) = X509Certificate::from_der(cert.der()).map_err(|err| {
        Error::internal(format!("cannot parse the cross-signed certificate: {err}"))
    })?;
    let kept = |what: &str| {
        Error::internal(format!(
            "the cross-signed certificate does not keep the {what} of {field}"
        ))
    };
    if made.subject().as_raw() != original.subject().as_raw() {
        return Err(kept("subject name"));
    }
    if made.public_key().raw != original.public_key().raw {
        return Err(kept("public key"));
    }
    if subject_key_id(&made) != subject_key_id(&original) {
        return Err(kept("subject key identifier"));
    }
    finish(
        CeremonyKind::CrossSign,
        cert.der(),
        &OutputsConfig {
            certificate: config.outputs.certificate.clone(),
            public_key: None,
        },
        None,
        format!("the key of {}", input.display()),
    )
}

/// Parameters with the configured subject, validity and a fresh serial.
fn subject_params(
    subject: &SubjectConfig,
    validity: &ValidityConfig,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(country) = &subject.country {
        let country = country.as_str().try_into().map_err(|_| {
            Error::internal(format!(
                "subject.country {country:?} is not a PrintableString"
            ))
        })?;
        dn.push(DnType::CountryName, DnValue::PrintableString(country));
    }
    if let Some(organization) = &subject.organization {
        dn.push(DnType::OrganizationName, organization.as_str());
    }
    dn.push(DnType::CommonName, subject.common_name.as_str());
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&new_serial()?));
    params.not_before = validity.not_before.0;
    params.not_after = validity.not_after.0;
    Ok(params)
}

fn serial_of(params: &CertificateParams) -> Vec<u8> {
    params
        .serial_number
        .as_ref()
        .map(SerialNumber::to_bytes)
        .unwrap_or_default()
}

/// The crlDistributionPoints and authorityInfoAccess caIssuers of `extensions`.
fn add_urls(params: &mut CertificateParams, extensions: &ExtensionsConfig) -> Result<(), Error> {
    if let Some(url) = &extensions.crl_url {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![url.clone()],
        }];
    }
    if let Some(url) = &extensions.issuer_url {
        let location = Ia5String::new(url)
            .map_err(|_| Error::internal(format!("extensions.issuer_url {url:?} is not ASCII")))?;
        let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: GeneralName::UniformResourceIdentifier(location),
        }]);
        let der = aia
            .to_der()
            .map_err(|err| Error::internal(format!("cannot encode the AIA extension: {err}")))?;
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                OID_AUTHORITY_INFO_ACCESS,
                der,
            ));
    }
    Ok(())
}

fn generate(source: &KeySource, alg: KeyAlgorithm) -> Result<CaKey, Error> {
    CaKey::generate(source, alg).map_err(|err| {
        Error::internal(format!(
            "cannot make the new {alg} key ({source}): {}",
            err.detail
        ))
    })
}

/// Parses what was signed and checks it against what was asked for, before
/// anything is written.
fn check_certificate(
    der: &[u8],
    parent: Option<&Parent>,
    expected: &Expected<'_>,
) -> Result<(), Error> {
    let failed = |what: &str| {
        Error::internal(format!(
            "the new certificate failed its check: {what}; it was not written"
        ))
    };
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|err| failed(&format!("it does not parse ({err})")))?;
    if !rest.is_empty() {
        return Err(failed("trailing data after the certificate"));
    }
    let parent_cert = parent.map(Parent::cert).transpose()?;
    let signer = parent_cert.as_ref().unwrap_or(&cert);
    cert.verify_signature(Some(signer.public_key()))
        .map_err(|err| failed(&format!("its signature does not verify ({err})")))?;
    if cert.issuer().as_raw() != signer.subject().as_raw() {
        return Err(failed("its issuer is not the parent's subject"));
    }
    if cert.public_key().subject_public_key.data.as_ref() != expected.subject_key {
        return Err(failed("its public key is not the subject key"));
    }
    if cert.raw_serial() != expected.serial
        || cert.raw_serial().first().is_none_or(|b| b & 0x80 != 0)
    {
        return Err(failed("its serial is not the one drawn"));
    }
    if cert.validity().not_before.timestamp() != expected.validity.not_before.0.unix_timestamp()
        || cert.validity().not_after.timestamp() != expected.validity.not_after.0.unix_timestamp()
    {
        return Err(failed("its validity is not the configured one"));
    }
    if subject_key_id(&cert).is_none_or(<[u8]>::is_empty) {
        return Err(failed("it has no subject key identifier"));
    }
    if let Some(parent_cert) = &parent_cert {
        let aki = authority_key_id(&cert);
        if aki.is_none() || aki != subject_key_id(parent_cert) {
            return Err(failed(
                "its authority key identifier is not the parent's subject key identifier",
            ));
        }
    }
    let bc = cert
        .basic_constraints()
        .map_err(|err| failed(&format!("invalid basicConstraints ({err})")))?
        .ok_or_else(|| failed("it has no basicConstraints"))?;
    let ca = bc.value.ca.then_some(bc.value.path_len_constraint);
    if (expected.critical && !bc.critical) || ca != expected.ca {
        return Err(failed("its basicConstraints are not the intended ones"));
    }
    let ku = cert
        .key_usage()
        .map_err(|err| failed(&format!("invalid keyUsage ({err})")))?
        .ok_or_else(|| failed("it has no keyUsage"))?;
    let mut got = key_usage_purposes(ku.value);
    let mut want = expected.key_usage.to_vec();
    got.sort_by_key(|usage| format!("{usage:?}"));
    want.sort_by_key(|usage| format!("{usage:?}"));
    if (expected.critical && !ku.critical) || got != want {
        return Err(failed("its keyUsage is not the intended one"));
    }
    Ok(())
}

/// Signs a message with `key` and verifies it with the certificate's public key:
/// the new key is the one the certificate names (a token could hand back the
/// wrong public key).
fn check_possession(key: &CaKey, cert_der: &[u8]) -> Result<(), Error> {
    use ring::signature;

    let failed = |what: String| {
        Error::internal(format!(
            "the new key does not match the new certificate: {what}; it was not written"
        ))
    };
    let signature = key
        .sign(POSSESSION_MESSAGE)
        .map_err(|err| failed(format!("it cannot sign ({err})")))?;
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|err| failed(format!("the certificate does not parse ({err})")))?;
    let alg = key.algorithm();
    let verification: &dyn signature::VerificationAlgorithm =
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            &signature::ECDSA_P256_SHA256_ASN1
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            &signature::ECDSA_P384_SHA384_ASN1
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            &signature::RSA_PKCS1_2048_8192_SHA256
        } else if alg == &rcgen::PKCS_RSA_SHA384 {
            &signature::RSA_PKCS1_2048_8192_SHA384
        } else if alg == &rcgen::PKCS_RSA_SHA512 {
            &signature::RSA_PKCS1_2048_8192_SHA512
        } else {
            return Err(failed(format!("unsupported key algorithm {alg:?}")));
        };
    signature::UnparsedPublicKey::new(
        verification,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(POSSESSION_MESSAGE, &signature)
    .map_err(|_| failed("its signature does not verify with the certificate's key".into()))
}

/// Writes the outputs and describes what was made.
fn finish(
    kind: CeremonyKind,
    der: &[u8],
    outputs: &OutputsConfig,
    spki: Option<&[u8]>,
    key: String,
) -> Result<Summary, Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|err| Error::internal(format!("cannot parse the new certificate: {err}")))?;
    let cert_pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|err| Error::internal(format!("cannot encode the certificate: {err}")))?;
    let mut written = Vec::new();
    write_new(&outputs.certificate, cert_pem.as_bytes())?;
    written.push(outputs.certificate.clone());
    if let (Some(path), Some(spki)) = (&outputs.public_key, spki) {
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, spki)
            .map_err(|err| Error::internal(format!("cannot encode the public key: {err}")))?;
        write_new(path, pem.as_bytes())?;
        written.push(path.clone());
    }
    let to_time = |at: i64| {
        OffsetDateTime::from_unix_timestamp(at)
            .map_err(|_| Error::internal("certificate validity out of range"))
    };
    Ok(Summary {
        kind,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex(cert.raw_serial(), ""),
        validity: (
            to_time(cert.validity().not_before.timestamp())?,
            to_time(cert.validity().not_after.timestamp())?,
        ),
        key,
        fingerprint: hex(
            ring::digest::digest(&ring::digest::SHA256, der).as_ref(),
            ":",
        )
        .to_uppercase(),
        outputs: written,
    })
}

fn hex(bytes: &[u8], separator: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Refuses an output that exists, or whose directory does not, before any key is
/// made.
fn check_output(field: &str, path: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(Error::internal(format!(
            "{field} {} exists: a ceremony never overwrites what an earlier one wrote",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.is_dir() {
        return Err(Error::internal(format!(
            "{field} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Writes a public file that must not exist yet.
fn write_new(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| Error::internal(format!("cannot create {}: {err}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))
}

/// The one certificate of a PEM file.
fn read_certificate(field: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let pem = fs::read(path)
        .map_err(|err| Error::internal(format!("cannot read {field} {}: {err}", path.display())))?;
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|err| {
            Error::internal(format!("{field} {} is not PEM: {err}", path.display()))
        })?;
        if block.label == "CERTIFICATE" {
            certs.push(block.contents);
        }
    }
    match <[Vec<u8>; 1]>::try_from(certs) {
        Ok([der]) => Ok(der),
        Err(certs) => Err(Error::internal(format!(
            "{field} {} must hold one certificate, not {}",
            path.display(),
            certs.len()
        ))),
    }
}

fn parse_certificate<'a>(field: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(Error::internal(format!(
            "{field} has trailing data after its certificate"
        ))),
        Err(err) => Err(Error::internal(format!("{field} does not parse: {err}"))),
    }
}

/// A PEM `PUBLIC KEY` file.
fn read_public_key(path: &Path) -> Result<rcgen::SubjectPublicKeyInfo, Error> {
    let field = "existing_key.public_key";
    let pem = fs::read(path)
        .map_err(|err| Error::internal(format!("cannot read {field} {}: {err}", path.display())))?;
    let der = Pem::iter_from_buffer(&pem)
        .filter_map(Result::ok)
        .find(|block| block.label == "PUBLIC KEY")
        .ok_or_else(|| {
            Error::internal(format!(
                "{field} {} holds no PEM PUBLIC KEY block",
                path.display()
            ))
        })?
        .contents;
    rcgen::SubjectPublicKeyInfo::from_der(&der).map_err(|err| {
        Error::internal(format!(
            "{field} {} is not a supported public key (ECDSA P-256, P-384 or RSA): {err}",
            path.display()
        ))
    })
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0)
            }
            _ => None,
        })
}

fn key_usage_purposes(ku: &x509_parser::extensions::KeyUsage) -> Vec<KeyUsagePurpose> {
    [
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (ku.crl_sign(), KeyUsagePurpose::CrlSign),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ]
    .into_iter()
    .filter_map(|(set, usage)| set.then_some(usage))
    .collect()
}

/// `name` as rcgen writes it again: attributes in order, one per RDN, each with
/// its original string type. The caller checks the bytes came out the same.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, String> {
    let unsupported = |why: &str| format!("unsupported subject name {name}: {why}");
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("each RDN must hold exactly one attribute"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unsupported("an attribute type is out of range"))?
            .collect();
        let ty = DnType::from_oid(&oid);
        // rcgen keeps one value per attribute type.
        if seen.contains(&ty) {
            return Err(unsupported("an attribute type appears twice"));
        }
        seen.push(ty.clone());
        let data = attr.attr_value().data;
        let text =
            || std::str::from_utf8(data).map_err(|_| unsupported("an attribute is not text"));
        let invalid = |_| unsupported("an attribute is not valid for its string type");
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(invalid)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(invalid)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(invalid)?),
            Tag::BmpString => {
                DnValue::BmpString(BmpString::from_utf16be(data.to_vec()).map_err(invalid)?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                UniversalString::from_utf32be(data.to_vec()).map_err(invalid)?,
            ),
            _ => return Err(unsupported("an attribute has an unsupported string type")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests;
