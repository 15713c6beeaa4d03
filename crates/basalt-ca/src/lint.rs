//! Certificate lints run on the linting certificate before the issuer key signs
//! anything (Boulder runs zlint the same way). Each rule has a stable name that
//! appears in errors and audit logs.

use std::fmt;
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::oid_registry::OID_NIST_EC_P384;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::public_key::PublicKey;

/// The longest validity the CA/Browser Forum Baseline Requirements allow.
const MAX_VALIDITY_DAYS: i64 = 398;

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

type Rule = fn(&X509Certificate<'_>) -> Result<(), String>;

/// Every rule, by name.
const RULES: &[(&str, Rule)] = &[
    ("san_present", san_present),
    ("names_lowercase", names_lowercase),
    ("no_ip_in_dns_name", no_ip_in_dns_name),
    ("dns_name_syntax", dns_name_syntax),
    ("validity_positive", validity_positive),
    ("validity_max_398_days", validity_max_398_days),
    (
        "serial_positive_8_to_20_bytes",
        serial_positive_8_to_20_bytes,
    ),
    ("eku_server_auth", eku_server_auth),
    ("not_ca", not_ca),
    ("key_algorithm", key_algorithm),
    ("certificate_policies_dv", certificate_policies_dv),
];

/// Runs every rule on a subscriber (end-entity TLS server) certificate; an empty
/// list means it passed.
pub fn lint(cert: &X509Certificate<'_>) -> Vec<LintError> {
    RULES
        .iter()
        .filter_map(|(rule, check)| check(cert).err().map(|detail| LintError { rule, detail }))
        .collect()
}

fn dns_names<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a str> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(name) => Some(*name),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn san_present(cert: &X509Certificate<'_>) -> Result<(), String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) if !san.value.general_names.is_empty() => Ok(()),
        Ok(Some(_)) => Err("the subjectAltName extension is empty".into()),
        Ok(None) => Err("no subjectAltName extension".into()),
        Err(err) => Err(format!("invalid subjectAltName extension: {err}")),
    }
}

fn names_lowercase(cert: &X509Certificate<'_>) -> Result<(), String> {
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

fn no_ip_in_dns_name(cert: &X509Certificate<'_>) -> Result<(), String> {
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
fn dns_name_syntax(cert: &X509Certificate<'_>) -> Result<(), String> {
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

fn validity_positive(cert: &X509Certificate<'_>) -> Result<(), String> {
    let validity = cert.validity();
    if validity.not_after > validity.not_before {
        Ok(())
    } else {
        Err("notAfter is not after notBefore".into())
    }
}

fn validity_max_398_days(cert: &X509Certificate<'_>) -> Result<(), String> {
    let validity = cert.validity();
    // RFC 5280 §4.1.2.5: the validity period includes both ends.
    let seconds = validity.not_after.timestamp() - validity.not_before.timestamp() + 1;
    if seconds <= MAX_VALIDITY_DAYS * 86_400 {
        Ok(())
    } else {
        Err(format!(
            "validity of {seconds}s exceeds {MAX_VALIDITY_DAYS} days"
        ))
    }
}

fn serial_positive_8_to_20_bytes(cert: &X509Certificate<'_>) -> Result<(), String> {
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

fn eku_server_auth(cert: &X509Certificate<'_>) -> Result<(), String> {
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.server_auth => Ok(()),
        Ok(_) => Err("extendedKeyUsage lacks serverAuth".into()),
        Err(err) => Err(format!("invalid extendedKeyUsage: {err}")),
    }
}

fn not_ca(cert: &X509Certificate<'_>) -> Result<(), String> {
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Err("basicConstraints has cA set".into()),
        Ok(_) => Ok(()),
        Err(err) => Err(format!("invalid basicConstraints: {err}")),
    }
}

/// Baseline Requirements §7.1.2.7.9: a subscriber certificate asserts the
/// domain-validated policy, 2.23.140.1.2.1.
fn certificate_policies_dv(cert: &X509Certificate<'_>) -> Result<(), String> {
    let dv = x509_parser::oid_registry::Oid::from(&[2, 23, 140, 1, 2, 1])
        .map_err(|_| "cannot build the DV policy OID".to_owned())?;
    let policies = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::CertificatePolicies(policies) => {
                Some(policies)
            }
            _ => None,
        });
    match policies {
        None => Err("no certificatePolicies extension".into()),
        Some(policies) if policies.iter().any(|p| p.policy_id == dv) => Ok(()),
        Some(_) => Err("certificatePolicies lacks the DV policy 2.23.140.1.2.1".into()),
    }
}

fn key_algorithm(cert: &X509Certificate<'_>) -> Result<(), String> {
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
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => Ok(()),
            Ok(key) => Err(format!("RSA key of {} bits is below 2048", key.key_size())),
            Err(err) => Err(format!("invalid RSA key: {err}")),
        };
    }
    Err(format!("key algorithm {algorithm} is not ECDSA or RSA"))
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateParams;
    use rcgen::ExtendedKeyUsagePurpose;
    use rcgen::IsCa;
    use rcgen::KeyPair;
    use rcgen::SanType;
    use time::Duration;
    use x509_parser::prelude::FromDer;

    use super::*;

    fn good_params() -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = vec![SanType::DnsName("a.example".try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.is_ca = IsCa::ExplicitNoCa;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11; 16]));
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap();
        params.not_after = params.not_before + Duration::days(90);
        params.custom_extensions = vec![dv_policies()];
        params
    }

    fn dv_policies() -> rcgen::CustomExtension {
        rcgen::CustomExtension::from_oid_content(
            crate::issuance::OID_CERTIFICATE_POLICIES,
            crate::issuance::DV_CERTIFICATE_POLICIES.to_vec(),
        )
    }

    fn rules_broken(params: &CertificateParams) -> Vec<&'static str> {
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        lint(&parsed).into_iter().map(|e| e.rule).collect()
    }

    #[test]
    fn a_good_certificate_passes() {
        assert_eq!(rules_broken(&good_params()), Vec::<&str>::new());
    }

    #[test]
    fn the_dv_policy_is_required() {
        let mut params = good_params();
        params.custom_extensions.clear();
        assert_eq!(rules_broken(&params), ["certificate_policies_dv"]);
        // Another policy (2.23.140.1.2.2, OV) instead of DV.
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            crate::issuance::OID_CERTIFICATE_POLICIES,
            vec![
                0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x67, 0x81, 0x0c, 0x01, 0x02, 0x02,
            ],
        )];
        assert_eq!(rules_broken(&params), ["certificate_policies_dv"]);
    }

    #[test]
    fn each_rule_catches_its_fault() {
        let mut params = good_params();
        params.subject_alt_names.clear();
        assert_eq!(rules_broken(&params), ["san_present"]);

        let mut params = good_params();
        params.subject_alt_names = vec![SanType::DnsName("A.example".try_into().unwrap())];
        assert_eq!(rules_broken(&params), ["names_lowercase"]);

        let mut params = good_params();
        params.subject_alt_names = vec![SanType::DnsName("10.0.0.1".try_into().unwrap())];
        assert_eq!(rules_broken(&params), ["no_ip_in_dns_name"]);

        for bad in [
            "a..example",
            "-a.example",
            "a b.example",
            "a.*.example",
            "a.example.",
        ] {
            let mut params = good_params();
            params.subject_alt_names = vec![SanType::DnsName(bad.try_into().unwrap())];
            assert_eq!(rules_broken(&params), ["dns_name_syntax"], "{bad}");
        }
        let mut params = good_params();
        params.subject_alt_names = vec![SanType::DnsName(
            "*.xn--bcher-kva.example".try_into().unwrap(),
        )];
        assert!(rules_broken(&params).is_empty());

        let mut params = good_params();
        params.not_after = params.not_before;
        assert_eq!(rules_broken(&params), ["validity_positive"]);

        let mut params = good_params();
        params.not_after = params.not_before + Duration::days(398);
        assert_eq!(rules_broken(&params), ["validity_max_398_days"]);
        params.not_after -= Duration::seconds(1);
        assert!(rules_broken(&params).is_empty());

        let mut params = good_params();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11; 7]));
        assert_eq!(rules_broken(&params), ["serial_positive_8_to_20_bytes"]);

        let mut params = good_params();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        assert_eq!(rules_broken(&params), ["eku_server_auth"]);

        let mut params = good_params();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        assert_eq!(rules_broken(&params), ["not_ca"]);
    }

    #[test]
    fn ed25519_keys_are_refused() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = good_params().self_signed(&key).unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        let broken: Vec<_> = lint(&parsed).into_iter().map(|e| e.rule).collect();
        assert_eq!(broken, ["key_algorithm"]);
    }
}
