//! The key ceremony of `basalt dev`: file-based PKI for a lab, made offline.
//!
//! Three independent hierarchies, so that trusting one never means trusting another:
//!
//! * the **issuing hierarchy** ([`generate_hierarchy`]): "Basalt Dev Root" →
//!   "Basalt Dev Intermediate", the intermediate being the CA's [`crate::Issuer`];
//!   ACME subscribers' certificates chain to `root.pem`;
//! * the **internal mTLS CA** ([`generate_internal_pki`]): one certificate per
//!   service name for the gRPC links, client and server at once;
//! * the **API CA** ([`generate_api_ca`] + [`generate_server_cert`]): the WFE's HTTPS
//!   certificate. ACME clients must trust the PEM that [`generate_server_cert`]
//!   returns (`api-ca.pem` when signed by the API CA).
//!
//! [`generate_cross_signed_chain`] adds to the issuing hierarchy a second root,
//! "Basalt Dev Root X2", and a cross-signed copy of the intermediate under it, so the
//! WFE has an alternate chain to offer (RFC 8555 §7.4.2), as Let's Encrypt does.
//!
//! Every function generates unconditionally and overwrites; the caller decides
//! whether files already exist. Private keys are PKCS#8 PEM written with mode 0600
//! on unix.

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
use rcgen::KeyIdMethod;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;
use rcgen::SanType;
use rcgen::SerialNumber;
use rcgen::string::BmpString;
use rcgen::string::UniversalString;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::Issuer;
use crate::issuance::new_serial;
use crate::issuer::pem_certificates;

/// Common name of the dev root.
pub const ROOT_CN: &str = "Basalt Dev Root";
/// Common name of the dev intermediate (the issuer).
pub const INTERMEDIATE_CN: &str = "Basalt Dev Intermediate";
/// Common name of the second dev root, which cross-signs the intermediate.
pub const ROOT_X2_CN: &str = "Basalt Dev Root X2";
/// Common name of the internal mTLS CA.
pub const INTERNAL_CA_CN: &str = "Basalt Dev Internal CA";
/// Common name of the CA that signs the WFE's HTTPS certificate.
pub const API_CA_CN: &str = "Basalt Dev API CA";

const ROOT_DAYS: i64 = 3650;
const INTERMEDIATE_DAYS: i64 = 1825;
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

/// The files of the issuing hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// `root.pem` and `root.key`: what ACME clients and relying parties trust.
    pub root: CertKeyPaths,
    /// `intermediate.pem` and `intermediate.key`: the CA's issuer
    /// (`[issuer] cert`/`key` of the CA config).
    pub intermediate: CertKeyPaths,
}

/// The files of the internal mTLS PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalPki {
    /// `internal-ca.pem` and `internal-ca.key`: the `[tls] ca` of every service.
    pub ca: CertKeyPaths,
    /// For each name, `<name>.pem` and `<name>.key`: `[tls] cert`/`key`.
    pub leaves: Vec<(String, CertKeyPaths)>,
}

/// The files of the alternate chain made by [`generate_cross_signed_chain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossChain {
    /// `root-x2.pem` (in the output directory), which clients trust for the
    /// alternate chain, and `root-x2.key` (in the keys directory, mode 0600).
    pub root: CertKeyPaths,
    /// `intermediate-x2.pem` (in the output directory): the intermediate's subject
    /// and key, issued by Root X2. Leaves of the intermediate chain to it too.
    pub intermediate: PathBuf,
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

/// Generates the dev issuing hierarchy in `dir`: an ECDSA P-256 root (CA, pathlen 1,
/// 10 years) and intermediate (CA, pathlen 0, 5 years), written as `root.pem`,
/// `root.key`, `intermediate.pem` and `intermediate.key`.
pub fn generate_hierarchy(dir: &Path, clock: &dyn Clock) -> Result<Hierarchy, Error> {
    let now = clock.now();
    let root = new_root(ROOT_CN, 1, ROOT_DAYS, now)?;
    let intermediate = new_intermediate(&root, now)?;
    create_dir(dir)?;
    Ok(Hierarchy {
        root: write_pair(dir, "root", &root.cert_pem, &root.key)?,
        intermediate: write_pair(
            dir,
            "intermediate",
            &intermediate.cert_pem,
            &intermediate.key,
        )?,
    })
}

/// Generates an alternate chain for the dev issuing hierarchy in `keys_dir` (as
/// [`generate_hierarchy`] writes it): a second root, "Basalt Dev Root X2" (ECDSA
/// P-256, CA, pathlen 1, 10 years), and a cross-signed intermediate issued by it
/// with the subject name, public key, subject key identifier, key usages and
/// extended key usages of `intermediate.pem` (CA, pathlen 0, 5 years, a fresh
/// serial). Every certificate the intermediate signs then verifies through both
/// `intermediate.pem` → `root.pem` and `intermediate-x2.pem` → `root-x2.pem`.
///
/// Writes `keys_dir/root-x2.key` (mode 0600), `out_dir/root-x2.pem` and, last,
/// `out_dir/intermediate-x2.pem`, overwriting them; the caller checks whether they
/// exist. `root.key` is not read: only the intermediate's key signs anything.
pub fn generate_cross_signed_chain(
    keys_dir: &Path,
    out_dir: &Path,
    clock: &dyn Clock,
) -> Result<CrossChain, Error> {
    let now = clock.now();
    let root_path = keys_dir.join("root.pem");
    let cert_path = keys_dir.join("intermediate.pem");
    let key_path = keys_dir.join("intermediate.key");
    let root_der = read_certificate(&root_path)?;
    let intermediate_pem = fs::read(&cert_path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", cert_path.display())))?;
    // Checks that the key matches the certificate, that it is a CA with a subject
    // key identifier, and that rcgen reproduces its subject name.
    let intermediate =
        Issuer::from_pem(&intermediate_pem, &read_to_string(&key_path)?).map_err(|err| {
            Error::internal(format!(
                "cannot load {} with {}: {}",
                cert_path.display(),
                key_path.display(),
                err.detail
            ))
        })?;
    let intermediate_der = intermediate.cert_der().to_vec();
    let original = parse_certificate(&intermediate_der, &cert_path)?;
    let root = parse_certificate(&root_der, &root_path)?;
    if original.issuer().as_raw() != root.subject().as_raw()
        || original.verify_signature(Some(root.public_key())).is_err()
    {
        return Err(Error::internal(format!(
            "{} is not signed by {}",
            cert_path.display(),
            root_path.display()
        )));
    }

    let root_x2 = new_root(ROOT_X2_CN, 1, ROOT_DAYS, now)?;
    // CA, pathlen 0, fresh serial, 5 years; then the original's name and usages.
    let mut params = ca_params(INTERMEDIATE_CN, 0, INTERMEDIATE_DAYS, now)?;
    params.distinguished_name = distinguished_name(original.subject())?;
    params.key_usages = key_usages(&original)?;
    params.extended_key_usages = extended_key_usages(&original)?;
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(intermediate.subject_key_id().to_vec());
    params.use_authority_key_identifier_extension = true;
    let cross = params
        .signed_by(intermediate.signer().key(), &root_x2.issuer())
        .map_err(|err| Error::internal(format!("cannot cross-sign the intermediate: {err}")))?;
    check_cross_signed(cross.der(), &original, &root_x2)?;

    create_dir(keys_dir)?;
    create_dir(out_dir)?;
    let paths = CrossChain {
        root: CertKeyPaths {
            cert: out_dir.join("root-x2.pem"),
            key: keys_dir.join("root-x2.key"),
        },
        intermediate: out_dir.join("intermediate-x2.pem"),
    };
    write_private(&paths.root.key, &root_x2.key.serialize_pem())?;
    write_public(&paths.root.cert, &root_x2.cert_pem)?;
    write_public(&paths.intermediate, &cross.pem())?;
    Ok(paths)
}

/// Checks that the cross-signed certificate is the intermediate under another
/// issuer: same subject name (bytes), public key and subject key identifier, and
/// signed by Root X2.
fn check_cross_signed(
    der: &[u8],
    original: &X509Certificate<'_>,
    root_x2: &GeneratedCa,
) -> Result<(), Error> {
    let failed = |what: &str| {
        Error::internal(format!(
            "the cross-signed intermediate does not keep the {what} of the original"
        ))
    };
    let (_, cross) = X509Certificate::from_der(der).map_err(|err| {
        Error::internal(format!("cannot parse the cross-signed intermediate: {err}"))
    })?;
    let (_, root) = X509Certificate::from_der(&root_x2.cert_der)
        .map_err(|err| Error::internal(format!("cannot parse {ROOT_X2_CN}: {err}")))?;
    if cross.subject().as_raw() != original.subject().as_raw() {
        return Err(failed("subject name"));
    }
    if cross.public_key().raw != original.public_key().raw {
        return Err(failed("public key"));
    }
    if subject_key_id(&cross) != subject_key_id(original) {
        return Err(failed("subject key identifier"));
    }
    if cross.issuer().as_raw() != root.subject().as_raw()
        || cross.verify_signature(Some(root.public_key())).is_err()
    {
        return Err(Error::internal(format!(
            "the cross-signed intermediate does not verify under {ROOT_X2_CN}"
        )));
    }
    Ok(())
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
}

/// `name` as rcgen attributes, in order, with their original string types.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, Error> {
    let unsupported = || Error::internal("unsupported attribute in the intermediate's subject");
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported());
        };
        let oid: Vec<u64> = attr.attr_type().iter().ok_or_else(unsupported)?.collect();
        let ty = DnType::from_oid(&oid);
        // rcgen keeps one value per attribute type.
        if seen.contains(&ty) {
            return Err(unsupported());
        }
        seen.push(ty.clone());
        let data = attr.attr_value().data;
        let text = || std::str::from_utf8(data).map_err(|_| unsupported());
        let invalid = |_| unsupported();
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => rcgen::DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => {
                rcgen::DnValue::PrintableString(text()?.try_into().map_err(invalid)?)
            }
            Tag::Ia5String => rcgen::DnValue::Ia5String(text()?.try_into().map_err(invalid)?),
            Tag::T61String => rcgen::DnValue::TeletexString(text()?.try_into().map_err(invalid)?),
            Tag::BmpString => {
                rcgen::DnValue::BmpString(BmpString::from_utf16be(data.to_vec()).map_err(invalid)?)
            }
            Tag::UniversalString => rcgen::DnValue::UniversalString(
                UniversalString::from_utf32be(data.to_vec()).map_err(invalid)?,
            ),
            _ => return Err(unsupported()),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

fn key_usages(cert: &X509Certificate<'_>) -> Result<Vec<KeyUsagePurpose>, Error> {
    let Some(ku) = cert
        .key_usage()
        .map_err(|err| Error::internal(format!("invalid key usage: {err}")))?
    else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    Ok([
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
    .collect())
}

fn extended_key_usages(cert: &X509Certificate<'_>) -> Result<Vec<ExtendedKeyUsagePurpose>, Error> {
    let Some(eku) = cert
        .extended_key_usage()
        .map_err(|err| Error::internal(format!("invalid extended key usage: {err}")))?
    else {
        return Ok(Vec::new());
    };
    let eku = eku.value;
    let mut usages: Vec<ExtendedKeyUsagePurpose> = [
        (eku.any, ExtendedKeyUsagePurpose::Any),
        (eku.server_auth, ExtendedKeyUsagePurpose::ServerAuth),
        (eku.client_auth, ExtendedKeyUsagePurpose::ClientAuth),
        (eku.code_signing, ExtendedKeyUsagePurpose::CodeSigning),
        (
            eku.email_protection,
            ExtendedKeyUsagePurpose::EmailProtection,
        ),
        (eku.time_stamping, ExtendedKeyUsagePurpose::TimeStamping),
        (eku.ocsp_signing, ExtendedKeyUsagePurpose::OcspSigning),
    ]
    .into_iter()
    .filter_map(|(set, usage)| set.then_some(usage))
    .collect();
    for oid in &eku.other {
        let arcs = oid
            .iter()
            .ok_or_else(|| Error::internal("unsupported extended key usage"))?;
        usages.push(ExtendedKeyUsagePurpose::Other(arcs.collect()));
    }
    Ok(usages)
}

fn read_certificate(path: &Path) -> Result<Vec<u8>, Error> {
    let pem = fs::read(path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", path.display())))?;
    pem_certificates(&pem)
        .map_err(|err| Error::internal(format!("{}: {}", path.display(), err.detail)))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal(format!("no certificate in {}", path.display())))
}

fn parse_certificate<'a>(der: &'a [u8], path: &Path) -> Result<X509Certificate<'a>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|err| Error::internal(format!("cannot parse {}: {err}", path.display())))
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

/// The dev intermediate, signed by `root`.
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
