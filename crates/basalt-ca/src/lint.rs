//! Certificate lints run on the linting certificate before the issuer key signs
//! anything (Boulder runs zlint the same way). Each rule has a stable name that
//! appears in errors and audit logs.
//!
//! The rules are those of a subscriber (TLS server) certificate that the CA could
//! get wrong, from the CA/Browser Forum Baseline Requirements (BR, version 2),
//! RFC 5280 and Basalt's own profile:
//!
//! - `version_v3` (RFC 5280 §4.1.2.1, BR 7.1.1): the certificate is X.509 v3.
//! - `signature_algorithm_matches` (RFC 5280 §4.1.1.2, RFC 5758 §3.2, BR 7.1.3.2):
//!   signatureAlgorithm equals the TBS signature field and is ecdsa-with-SHA256 or
//!   -SHA384 without parameters, or sha256/384/512WithRSAEncryption with NULL ones.
//! - `serial_positive_8_to_20_bytes` (RFC 5280 §4.1.2.2, BR 7.1): the serial is
//!   positive, not zero, and 8 (64 random bits) to 20 octets.
//! - `validity_positive` (RFC 5280 §4.1.2.5): notAfter is after notBefore.
//! - `validity_within_br_limit` (BR 6.3.2, ballot SC-081): the validity, both ends
//!   counted, is at most what the BRs allow on the notBefore date: 398 days before
//!   2026-03-15, 200 days until 2027-03-15, 100 days until 2029-03-15, 47 days
//!   after ([`br_max_validity`]).
//! - `validity_within_profile` (Basalt profile): the validity is at most the
//!   profile's, [`Context::max_validity`].
//! - `san_present` (RFC 5280 §4.2.1.6, BR 7.1.2.7.12): a subjectAltName extension
//!   with at least one name.
//! - `san_dns_or_ip_only` (BR 7.1.2.7.12): every subjectAltName entry is a dNSName
//!   or an iPAddress.
//! - `san_critical_iff_empty_subject` (RFC 5280 §4.2.1.6, BR 7.1.2.7.12): the
//!   subjectAltName is critical exactly when the subject is empty.
//! - `subject_cn_in_san` (BR 7.1.2.7.2, BR 7.1.4.3): at most one subject
//!   commonName, and it is a copy of a subjectAltName entry.
//! - `names_lowercase` (Basalt profile): dNSNames are lowercase.
//! - `no_ip_in_dns_name` (BR 7.1.2.7.12): no IP address written as a dNSName.
//! - `dns_name_syntax` (RFC 1034 §3.5, RFC 5280 §4.2.1.6, BR 7.1.2.7.12): dNSNames
//!   use the preferred name syntax, a wildcard only as the whole leftmost label.
//! - `ip_san_form` (RFC 5280 §4.2.1.6): an iPAddress entry is 4 (IPv4) or 16 (IPv6)
//!   octets.
//! - `eku_server_auth` (BR 7.1.2.7.6, BR 7.1.2.7.10): extKeyUsage is present, not
//!   critical, and has id-kp-serverAuth.
//! - `eku_server_auth_only` (BR 7.1.2.7.10, Chrome Root Program policy):
//!   extKeyUsage has nothing but id-kp-serverAuth, anyExtendedKeyUsage included.
//! - `key_usage_by_key_type` (RFC 5280 §4.2.1.3, BR 7.1.2.7.11): keyUsage is
//!   present and critical with digitalSignature, plus keyEncipherment only for RSA
//!   keys, and nothing else.
//! - `not_ca` (RFC 5280 §4.2.1.9, BR 7.1.2.7.8): basicConstraints, if present, does
//!   not assert cA.
//! - `aki_present` (RFC 5280 §4.2.1.1, BR 7.1.2.11.1): authorityKeyIdentifier is
//!   present, not critical, and holds a keyIdentifier only.
//! - `ski_not_critical` (RFC 5280 §4.2.1.2, BR 7.1.2.11.4): subjectKeyIdentifier,
//!   if present, is not critical.
//! - `crl_distribution_points_form` (RFC 5280 §4.2.1.13, BR 7.1.2.11.2):
//!   cRLDistributionPoints, if present, is not critical and has one
//!   DistributionPoint whose fullName holds only http:// URIs, with neither reasons
//!   nor cRLIssuer.
//! - `aia_form` (RFC 5280 §4.2.2.1, BR 7.1.2.7.7): authorityInfoAccess, if present,
//!   is not critical and has only id-ad-ocsp and id-ad-caIssuers entries, each an
//!   http:// URI, none repeated.
//! - `certificate_policies_dv` (BR 7.1.2.7.6, BR 7.1.2.7.9): certificatePolicies is
//!   present, not critical, with the DV policy 2.23.140.1.2.1.
//! - `key_algorithm` (BR 6.1.5, BR 6.1.6, BR 7.1.3.1): ECDSA on P-256 or P-384, or
//!   RSA with NULL parameters, a modulus of 2048 to 8192 bits that is a multiple of
//!   8, and an odd exponent of at least 3.
//!
//! `eku_server_auth` and `eku_server_auth_only` split one requirement in two so
//! that each fault breaks one rule: a missing or critical extKeyUsage, or one
//! without serverAuth, is `eku_server_auth`; any other purpose next to it is
//! `eku_server_auth_only`.
//!
//! Where the BR allow more than Basalt ever issues, the rules follow Basalt's
//! profile: keyUsage is required (BR: SHOULD), a single CRL distribution point (BR:
//! more is NOT RECOMMENDED), no keyAgreement on ECDSA keys (BR: MAY). Where the BR
//! ask for more than a Basalt profile must carry, the rules check only the form:
//! the authorityInfoAccess extension (which BR 7.1.2.7.6 requires of publicly
//! trusted certificates) and the CRL distribution point are left out by a profile
//! without an OCSP URL and an issuer without an `issuer_url` or a `crl_url_base`,
//! as a private CA may be configured.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::DistributionPointName;
use x509_parser::extensions::GeneralName;
use x509_parser::extensions::KeyUsage;
use x509_parser::extensions::ParsedExtension;
use x509_parser::extensions::X509Extension;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::oid_registry::OID_NIST_EC_P384;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::oid_registry::OID_PKCS1_SHA256WITHRSA;
use x509_parser::oid_registry::OID_PKCS1_SHA384WITHRSA;
use x509_parser::oid_registry::OID_PKCS1_SHA512WITHRSA;
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS;
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256;
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384;
use x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER;
use x509_parser::oid_registry::OID_X509_EXT_CERTIFICATE_POLICIES;
use x509_parser::oid_registry::OID_X509_EXT_CRL_DISTRIBUTION_POINTS;
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER;
use x509_parser::oid_registry::Oid;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::AlgorithmIdentifier;
use x509_parser::x509::X509Version;

/// The longest validity the CA/Browser Forum Baseline Requirements allow.
const MAX_VALIDITY_DAYS: i64 = 398;

/// The smallest and largest RSA moduli accepted, in bits (BR 6.1.5 sets the
/// floor; the ceiling is Basalt's, the same the CSR check applies).
const RSA_MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// keyUsage digitalSignature, as x509-parser numbers the flags (RFC 5280 bit 0).
const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
/// keyUsage keyEncipherment (RFC 5280 bit 2).
const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;

/// A rule a certificate broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintError {
    /// The rule's stable name, e.g. `names_lowercase`.
    pub rule: &'static str,
    /// What was wrong.
    pub detail: String,
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// One rule: `Err` says how the certificate breaks it.
type Rule = fn(&X509Certificate<'_>, &Context) -> Result<(), String>;

/// Every rule, by name, in the order errors are reported.
const RULES: &[(&str, Rule)] = &[
    ("version_v3", version_v3),
    ("signature_algorithm_matches", signature_algorithm_matches),
    (
        "serial_positive_8_to_20_bytes",
        serial_positive_8_to_20_bytes,
    ),
    ("validity_positive", validity_positive),
    ("validity_within_br_limit", validity_within_br_limit),
    ("validity_within_profile", validity_within_profile),
    ("san_present", san_present),
    ("san_dns_or_ip_only", san_dns_or_ip_only),
    (
        "san_critical_iff_empty_subject",
        san_critical_iff_empty_subject,
    ),
    ("subject_cn_in_san", subject_cn_in_san),
    ("names_lowercase", names_lowercase),
    ("no_ip_in_dns_name", no_ip_in_dns_name),
    ("dns_name_syntax", dns_name_syntax),
    ("ip_san_form", ip_san_form),
    ("eku_server_auth", eku_server_auth),
    ("eku_server_auth_only", eku_server_auth_only),
    ("key_usage_by_key_type", key_usage_by_key_type),
    ("not_ca", not_ca),
    ("aki_present", aki_present),
    ("ski_not_critical", ski_not_critical),
    ("crl_distribution_points_form", crl_distribution_points_form),
    ("aia_form", aia_form),
    ("certificate_policies_dv", certificate_policies_dv),
    ("key_algorithm", key_algorithm),
];

/// What a certificate is linted against beyond the Baseline Requirements: the
/// profile it was issued under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The longest validity the profile allows (RFC 5280 counting: both ends
    /// included).
    pub max_validity: std::time::Duration,
}

impl Context {
    /// The context of a certificate issued under `profile`.
    pub fn for_profile(profile: &crate::Profile) -> Self {
        Self {
            max_validity: profile.validity,
        }
    }
}

impl Default for Context {
    /// The Baseline Requirements' own limits.
    fn default() -> Self {
        Self {
            max_validity: std::time::Duration::from_secs(MAX_VALIDITY_DAYS as u64 * 86_400),
        }
    }
}

/// Runs every rule on a subscriber (end-entity TLS server) certificate, against
/// the Baseline Requirements' limits only; an empty list means it passed.
pub fn lint(cert: &X509Certificate<'_>) -> Vec<LintError> {
    lint_with(cert, &Context::default())
}

/// Runs every rule on a subscriber certificate issued under `context`; an empty
/// list means it passed.
pub fn lint_with(cert: &X509Certificate<'_>, context: &Context) -> Vec<LintError> {
    RULES
        .iter()
        .filter_map(|(rule, check)| {
            check(cert, context)
                .err()
                .map(|detail| LintError { rule, detail })
        })
        .collect()
}

/// The extension with this OID, if any; more than one is an error (RFC 5280
/// §4.2).
fn extension<'a, 'b>(
    cert: &'a X509Certificate<'b>,
    oid: &Oid<'_>,
    name: &str,
) -> Result<Option<&'a X509Extension<'b>>, String> {
    cert.get_extension_unique(oid)
        .map_err(|_| format!("more than one {name} extension"))
}

/// The error for an extension x509-parser could not read as its type.
fn unreadable(name: &str, parsed: &ParsedExtension<'_>) -> String {
    match parsed.error() {
        Some(err) => format!("invalid {name} extension: {err}"),
        None => format!("invalid {name} extension"),
    }
}

/// The subjectAltName entries; none when the extension is missing or unreadable
/// (`san_present` reports those).
fn general_names<'a>(cert: &'a X509Certificate<'_>) -> &'a [GeneralName<'a>] {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => &san.value.general_names,
        _ => &[],
    }
}

fn dns_names<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a str> {
    general_names(cert)
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(name) => Some(*name),
            _ => None,
        })
        .collect()
}

/// The address an iPAddress entry holds, if it is 4 or 16 octets.
fn ip_address(octets: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(octets)
        .ok()
        .map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

/// Whether `uri` is an ASCII `http://` URL with something after the scheme.
fn is_http_uri(uri: &str) -> bool {
    uri.is_ascii() && uri.len() > "http://".len() && uri.starts_with("http://")
}

/// A GeneralName's type, for messages.
fn general_name_type(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "unreadable name",
    }
}

/// RFC 5280 §4.1.2.1: a certificate with extensions is v3.
fn version_v3(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    if cert.version() == X509Version::V3 {
        Ok(())
    } else {
        Err(format!(
            "the version field is {}, not 2 (v3)",
            cert.version().0
        ))
    }
}

/// RFC 5280 §4.1.1.2 (the outer algorithm equals the TBS one) and BR 7.1.3.2 (the
/// algorithms and their exact parameters).
fn signature_algorithm_matches(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let outer = &cert.signature_algorithm;
    let inner = &cert.tbs_certificate.signature;
    if !same_algorithm(outer, inner) {
        return Err(format!(
            "signatureAlgorithm {} differs from the TBS signature field {}",
            outer.algorithm, inner.algorithm
        ));
    }
    let oid = &outer.algorithm;
    if *oid == OID_SIG_ECDSA_WITH_SHA256 || *oid == OID_SIG_ECDSA_WITH_SHA384 {
        // RFC 5758 §3.2: the parameters field is absent.
        return match &outer.parameters {
            None => Ok(()),
            Some(_) => Err(format!("{oid} has parameters; they must be absent")),
        };
    }
    if *oid == OID_PKCS1_SHA256WITHRSA
        || *oid == OID_PKCS1_SHA384WITHRSA
        || *oid == OID_PKCS1_SHA512WITHRSA
    {
        // RFC 4055 §5, BR 7.1.3.2.1: the parameters are an explicit NULL.
        return match &outer.parameters {
            Some(params) if params.header.tag() == Tag::Null && params.data.is_empty() => Ok(()),
            _ => Err(format!("{oid} must have NULL parameters")),
        };
    }
    Err(format!(
        "signature algorithm {oid} is not ecdsa-with-SHA256/384 or sha256/384/512WithRSAEncryption"
    ))
}

/// Two AlgorithmIdentifiers with the same OID and the same encoded parameters.
fn same_algorithm(a: &AlgorithmIdentifier<'_>, b: &AlgorithmIdentifier<'_>) -> bool {
    a.algorithm == b.algorithm
        && match (&a.parameters, &b.parameters) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.header.class() == b.header.class()
                    && a.header.tag() == b.header.tag()
                    && a.header.is_constructed() == b.header.is_constructed()
                    && a.data == b.data
            }
            _ => false,
        }
}

/// RFC 5280 §4.1.2.2 (positive, at most 20 octets) and BR 7.1 (at least 64 bits
/// of CSPRNG output, so at least 8 octets).
fn serial_positive_8_to_20_bytes(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let raw = cert.raw_serial();
    let Some(first) = raw.first() else {
        return Err("empty serial number".into());
    };
    if first & 0x80 != 0 {
        return Err("serial number is negative".into());
    }
    if raw.iter().all(|b| *b == 0) {
        return Err("serial number is zero".into());
    }
    if !(8..=20).contains(&raw.len()) {
        return Err(format!(
            "serial number is {} octets, not 8 to 20",
            raw.len()
        ));
    }
    Ok(())
}

/// The validity period in seconds, both ends included (RFC 5280 §4.1.2.5).
fn validity_seconds(cert: &X509Certificate<'_>) -> i64 {
    let validity = cert.validity();
    validity.not_after.timestamp() - validity.not_before.timestamp() + 1
}

fn validity_positive(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let validity = cert.validity();
    if validity.not_after > validity.not_before {
        Ok(())
    } else {
        Err("notAfter is not after notBefore".into())
    }
}

/// BR 6.3.2 as amended by ballot SC-081: the limit depends on the notBefore date.
fn validity_within_br_limit(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let seconds = validity_seconds(cert);
    let not_before = cert.validity().not_before.timestamp();
    let max = br_max_validity_at(not_before);
    let max_seconds = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    if seconds <= max_seconds {
        Ok(())
    } else {
        Err(format!(
            "validity of {seconds}s exceeds the {} days the Baseline Requirements allow \
             for a certificate valid from {}",
            max.as_secs() / 86_400,
            cert.validity().not_before
        ))
    }
}

/// The longest subscriber certificate validity the Baseline Requirements allow
/// for a certificate whose notBefore is `not_before` (BR 6.3.2, ballot SC-081).
pub fn br_max_validity(not_before: time::OffsetDateTime) -> std::time::Duration {
    br_max_validity_at(not_before.unix_timestamp())
}

fn br_max_validity_at(not_before_unix: i64) -> std::time::Duration {
    // 2026-03-15, 2027-03-15 and 2029-03-15, 00:00:00 UTC.
    const STEPS: [(i64, u64); 3] = [
        (1_773_532_800, 200),
        (1_805_068_800, 100),
        (1_868_227_200, 47),
    ];
    let days = STEPS
        .iter()
        .rev()
        .find(|(from, _)| not_before_unix >= *from)
        .map_or(MAX_VALIDITY_DAYS as u64, |(_, days)| *days);
    std::time::Duration::from_secs(days * 86_400)
}

/// The profile's own limit, which may be shorter than the BR's.
fn validity_within_profile(cert: &X509Certificate<'_>, context: &Context) -> Result<(), String> {
    let seconds = validity_seconds(cert);
    let max = i64::try_from(context.max_validity.as_secs()).unwrap_or(i64::MAX);
    if seconds <= max {
        Ok(())
    } else {
        Err(format!(
            "validity of {seconds}s exceeds the profile's {max}s"
        ))
    }
}

fn san_present(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) if !san.value.general_names.is_empty() => Ok(()),
        Ok(Some(_)) => Err("the subjectAltName extension is empty".into()),
        Ok(None) => Err("no subjectAltName extension".into()),
        Err(err) => Err(format!("invalid subjectAltName extension: {err}")),
    }
}

/// BR 7.1.2.7.12: a subscriber certificate names only domains and IP addresses.
fn san_dns_or_ip_only(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let bad: Vec<&str> = general_names(cert)
        .iter()
        .filter(|name| !matches!(name, GeneralName::DNSName(_) | GeneralName::IPAddress(_)))
        .map(general_name_type)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "subjectAltName entries other than dNSName and iPAddress: {}",
            bad.join(", ")
        ))
    }
}

/// RFC 5280 §4.2.1.6 and BR 7.1.2.7.12: critical when the subject is an empty
/// sequence, not critical otherwise.
fn san_critical_iff_empty_subject(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    // A missing or unreadable extension is san_present's to report.
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Ok(());
    };
    let empty_subject = cert.subject().iter().next().is_none();
    match (empty_subject, san.critical) {
        (true, false) => Err("the subject is empty but subjectAltName is not critical".into()),
        (false, true) => Err("the subject is not empty but subjectAltName is critical".into()),
        _ => Ok(()),
    }
}

/// BR 7.1.2.7.2 and 7.1.4.3: a commonName is optional; if present there is one,
/// and it is one of the subjectAltName values: for a domain name a character for
/// character copy of the dNSName (so not merely equal ignoring case), for an IP
/// address its RFC 3986 (IPv4) or RFC 5952 (IPv6) text form.
fn subject_cn_in_san(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let cns: Vec<_> = cert.subject().iter_common_name().collect();
    let cn = match cns.as_slice() {
        [] => return Ok(()),
        [cn] => cn
            .as_str()
            .map_err(|_| "the subject commonName is not a readable string".to_owned())?,
        many => {
            return Err(format!(
                "the subject has {} commonNames, not at most one",
                many.len()
            ));
        }
    };
    let in_san = general_names(cert).iter().any(|name| match name {
        GeneralName::DNSName(dns) => *dns == cn,
        // Display gives the RFC 3986 dotted quad and the RFC 5952 IPv6 form.
        GeneralName::IPAddress(octets) => ip_address(octets).is_some_and(|ip| ip.to_string() == cn),
        _ => false,
    });
    if in_san {
        Ok(())
    } else {
        Err(format!(
            "the subject commonName {cn:?} is not a subjectAltName entry"
        ))
    }
}

/// Basalt issues names in lowercase.
fn names_lowercase(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let bad: Vec<&str> = dns_names(cert)
        .into_iter()
        .filter(|name| name.bytes().any(|b| b.is_ascii_uppercase()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("dNSName not lowercase: {}", bad.join(", ")))
    }
}

/// BR 7.1.2.7.12: IP addresses go in iPAddress entries, never in dNSNames.
fn no_ip_in_dns_name(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let bad: Vec<&str> = dns_names(cert)
        .into_iter()
        .filter(|name| name.parse::<IpAddr>().is_ok())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("IP address in dNSName: {}", bad.join(", ")))
    }
}

/// Preferred name syntax (RFC 1034 §3.5, RFC 5280 §4.2.1.6): letters, digits and
/// hyphens, labels of 1 to 63 octets not starting or ending with a hyphen, 253
/// octets at most; a wildcard only as the whole leftmost label.
fn dns_name_syntax(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let valid = |name: &str| {
        let rest = name.strip_prefix("*.").unwrap_or(name);
        !rest.is_empty()
            && name.len() <= 253
            && rest.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let bad: Vec<&str> = dns_names(cert)
        .into_iter()
        .filter(|name| !valid(name))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid dNSName: {}", bad.join(", ")))
    }
}

/// RFC 5280 §4.2.1.6: an iPAddress is four octets (IPv4) or sixteen (IPv6).
/// Which addresses may be certified is the RA's policy, not the certificate's.
fn ip_san_form(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let bad: Vec<String> = general_names(cert)
        .iter()
        .filter_map(|name| match name {
            GeneralName::IPAddress(octets) if ip_address(octets).is_none() => {
                Some(octets.len().to_string())
            }
            _ => None,
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "iPAddress entries of {} octets, not 4 or 16",
            bad.join(", ")
        ))
    }
}

/// BR 7.1.2.7.6 (present, not critical) and 7.1.2.7.10 (id-kp-serverAuth MUST).
fn eku_server_auth(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.critical => Err("extendedKeyUsage is critical".into()),
        Ok(Some(eku)) if eku.value.server_auth => Ok(()),
        Ok(Some(_)) => Err("extendedKeyUsage lacks serverAuth".into()),
        Ok(None) => Err("no extendedKeyUsage extension".into()),
        Err(err) => Err(format!("invalid extendedKeyUsage: {err}")),
    }
}

/// BR 7.1.2.7.10 (anyExtendedKeyUsage MUST NOT) and the Chrome Root Program's
/// serverAuth-only hierarchies: nothing but id-kp-serverAuth.
fn eku_server_auth_only(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    // Missing or unreadable: eku_server_auth reports it.
    let Ok(Some(eku)) = cert.extended_key_usage() else {
        return Ok(());
    };
    let eku = eku.value;
    let mut others: Vec<String> = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect();
    others.extend(eku.other.iter().map(ToString::to_string));
    if others.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "extendedKeyUsage has purposes besides serverAuth: {}",
            others.join(", ")
        ))
    }
}

/// RFC 5280 §4.2.1.3 and BR 7.1.2.7.11, narrowed to Basalt's profile: critical,
/// digitalSignature, keyEncipherment allowed for RSA keys only, nothing else.
fn key_usage_by_key_type(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let ku = match cert.key_usage() {
        Ok(Some(ku)) => ku,
        Ok(None) => return Err("no keyUsage extension".into()),
        Err(err) => return Err(format!("invalid keyUsage: {err}")),
    };
    if !ku.critical {
        return Err("keyUsage is not critical".into());
    }
    if !ku.value.digital_signature() {
        return Err("keyUsage lacks digitalSignature".into());
    }
    let (allowed, key_type) = if cert.public_key().algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, "an RSA")
    } else {
        (KU_DIGITAL_SIGNATURE, "a non-RSA")
    };
    let extra = ku.value.flags & !allowed;
    if extra != 0 {
        return Err(format!(
            "keyUsage {} not allowed for {key_type} key",
            KeyUsage { flags: extra }
        ));
    }
    Ok(())
}

/// RFC 5280 §4.2.1.9, BR 7.1.2.7.8.
fn not_ca(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Err("basicConstraints has cA set".into()),
        Ok(_) => Ok(()),
        Err(err) => Err(format!("invalid basicConstraints: {err}")),
    }
}

/// RFC 5280 §4.2.1.1 and BR 7.1.2.11.1: present, not critical, a keyIdentifier
/// and neither authorityCertIssuer nor authorityCertSerialNumber.
fn aki_present(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    const NAME: &str = "authorityKeyIdentifier";
    let Some(ext) = extension(cert, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, NAME)? else {
        return Err("no authorityKeyIdentifier extension".into());
    };
    if ext.critical {
        return Err("authorityKeyIdentifier is critical".into());
    }
    let ParsedExtension::AuthorityKeyIdentifier(aki) = ext.parsed_extension() else {
        return Err(unreadable(NAME, ext.parsed_extension()));
    };
    match &aki.key_identifier {
        Some(id) if !id.0.is_empty() => {}
        _ => return Err("authorityKeyIdentifier has no keyIdentifier".into()),
    }
    if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial.is_some() {
        return Err(
            "authorityKeyIdentifier has authorityCertIssuer or authorityCertSerialNumber".into(),
        );
    }
    Ok(())
}

/// RFC 5280 §4.2.1.2 and BR 7.1.2.11.4: optional (NOT RECOMMENDED for subscriber
/// certificates), never critical.
fn ski_not_critical(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    const NAME: &str = "subjectKeyIdentifier";
    let Some(ext) = extension(cert, &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, NAME)? else {
        return Ok(());
    };
    if ext.critical {
        return Err("subjectKeyIdentifier is critical".into());
    }
    match ext.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(_) => Ok(()),
        other => Err(unreadable(NAME, other)),
    }
}

/// RFC 5280 §4.2.1.13 and BR 7.1.2.11.2: not critical; one DistributionPoint
/// (Basalt's profile), whose fullName holds only http:// URIs, with neither
/// reasons nor cRLIssuer.
fn crl_distribution_points_form(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    const NAME: &str = "cRLDistributionPoints";
    let Some(ext) = extension(cert, &OID_X509_EXT_CRL_DISTRIBUTION_POINTS, NAME)? else {
        return Ok(());
    };
    if ext.critical {
        return Err("cRLDistributionPoints is critical".into());
    }
    let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
        return Err(unreadable(NAME, ext.parsed_extension()));
    };
    let [point] = points.points.as_slice() else {
        return Err(format!(
            "cRLDistributionPoints has {} DistributionPoints, not one",
            points.points.len()
        ));
    };
    if point.reasons.is_some() {
        return Err("the DistributionPoint has reasons".into());
    }
    if point.crl_issuer.is_some() {
        return Err("the DistributionPoint has a cRLIssuer".into());
    }
    let Some(DistributionPointName::FullName(names)) = &point.distribution_point else {
        return Err("the DistributionPoint has no fullName".into());
    };
    if names.is_empty() {
        return Err("the DistributionPoint's fullName is empty".into());
    }
    for name in names {
        match name {
            GeneralName::URI(uri) if is_http_uri(uri) => {}
            GeneralName::URI(uri) => {
                return Err(format!("CRL URI {uri:?} is not an http:// URL"));
            }
            other => {
                return Err(format!(
                    "the DistributionPoint's fullName has a {}",
                    general_name_type(other)
                ));
            }
        }
    }
    Ok(())
}

/// RFC 5280 §4.2.2.1 and BR 7.1.2.7.7: not critical; only id-ad-ocsp and
/// id-ad-caIssuers, each an http:// URI; a method may repeat with another
/// location, never the same one twice.
fn aia_form(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    const NAME: &str = "authorityInfoAccess";
    let Some(ext) = extension(cert, &OID_PKIX_AUTHORITY_INFO_ACCESS, NAME)? else {
        return Ok(());
    };
    if ext.critical {
        return Err("authorityInfoAccess is critical".into());
    }
    let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else {
        return Err(unreadable(NAME, ext.parsed_extension()));
    };
    if aia.accessdescs.is_empty() {
        return Err("authorityInfoAccess is empty".into());
    }
    let mut seen = HashSet::new();
    for description in &aia.accessdescs {
        let method = &description.access_method;
        let method_name = if *method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
            "id-ad-ocsp"
        } else if *method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS {
            "id-ad-caIssuers"
        } else {
            return Err(format!(
                "authorityInfoAccess has access method {method}, not id-ad-ocsp or id-ad-caIssuers"
            ));
        };
        let uri = match &description.access_location {
            GeneralName::URI(uri) if is_http_uri(uri) => *uri,
            GeneralName::URI(uri) => {
                return Err(format!(
                    "{method_name} location {uri:?} is not an http:// URL"
                ));
            }
            other => {
                return Err(format!(
                    "{method_name} location is a {}, not a URI",
                    general_name_type(other)
                ));
            }
        };
        if !seen.insert((method_name, uri)) {
            return Err(format!("{method_name} {uri:?} appears twice"));
        }
    }
    Ok(())
}

/// BR 7.1.2.7.6 (present, not critical) and 7.1.2.7.9: a subscriber certificate
/// asserts the domain-validated policy, 2.23.140.1.2.1.
fn certificate_policies_dv(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    const NAME: &str = "certificatePolicies";
    let dv = Oid::from(&[2, 23, 140, 1, 2, 1])
        .map_err(|_| "cannot build the DV policy OID".to_owned())?;
    let Some(ext) = extension(cert, &OID_X509_EXT_CERTIFICATE_POLICIES, NAME)? else {
        return Err("no certificatePolicies extension".into());
    };
    if ext.critical {
        return Err("certificatePolicies is critical".into());
    }
    let ParsedExtension::CertificatePolicies(policies) = ext.parsed_extension() else {
        return Err(unreadable(NAME, ext.parsed_extension()));
    };
    if policies.iter().any(|p| p.policy_id == dv) {
        Ok(())
    } else {
        Err("certificatePolicies lacks the DV policy 2.23.140.1.2.1".into())
    }
}

/// BR 6.1.5, 6.1.6 and 7.1.3.1: ECDSA on P-256 or P-384, or RSA with NULL
/// parameters, a modulus of 2048 to 8192 bits that is a multiple of 8, and an
/// odd public exponent of at least 3.
fn key_algorithm(cert: &X509Certificate<'_>, _: &Context) -> Result<(), String> {
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.as_oid().ok());
        return match curve {
            Some(curve) if curve == OID_EC_P256 || curve == OID_NIST_EC_P384 => Ok(()),
            _ => Err("ECDSA keys must be on P-256 or P-384".into()),
        };
    }
    if *algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(format!("key algorithm {algorithm} is not ECDSA or RSA"));
    }
    match &spki.algorithm.parameters {
        Some(params) if params.header.tag() == Tag::Null && params.data.is_empty() => {}
        _ => return Err("rsaEncryption must have NULL parameters".into()),
    }
    let rsa = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa,
        Ok(_) => return Err("rsaEncryption key is not an RSA key".into()),
        Err(err) => return Err(format!("invalid RSA key: {err}")),
    };
    let modulus = positive_integer(rsa.modulus).ok_or("the RSA modulus is not positive")?;
    let bits = bit_length(modulus);
    if !bits.is_multiple_of(8) {
        return Err(format!(
            "the RSA modulus has {bits} bits, not a multiple of 8"
        ));
    }
    if !RSA_MODULUS_BITS.contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits, not {} to {}",
            RSA_MODULUS_BITS.start(),
            RSA_MODULUS_BITS.end()
        ));
    }
    let exponent = positive_integer(rsa.exponent).ok_or("the RSA exponent is not positive")?;
    if exponent.last().is_none_or(|last| last & 1 == 0) {
        return Err("the RSA exponent is even".into());
    }
    if exponent == [1] {
        return Err("the RSA exponent is 1, below 3".into());
    }
    Ok(())
}

/// The magnitude of a DER INTEGER's content octets, without leading zeros;
/// `None` if it is negative or zero.
fn positive_integer(octets: &[u8]) -> Option<&[u8]> {
    if octets.first().is_some_and(|first| first & 0x80 != 0) {
        return None;
    }
    let start = octets.iter().position(|b| *b != 0)?;
    Some(&octets[start..])
}

/// The number of significant bits of a big-endian magnitude with no leading zero
/// octet.
fn bit_length(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 0,
        Some(first) => (magnitude.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests;
