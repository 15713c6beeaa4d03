use std::str::FromStr;

use der::Encode;
use der::asn1::Ia5String;
use der::asn1::ObjectIdentifier;
use der::asn1::OctetString;
use rcgen::CertificateParams;
use rcgen::CrlDistributionPoint;
use rcgen::CustomExtension;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;
use rcgen::SanType;
use time::Duration;
use x509_cert::ext::pkix::AccessDescription;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName as DpName;
use x509_cert::ext::pkix::name::GeneralName as Name;
use x509_parser::prelude::FromDer;

use super::*;

const RSA_KEY: &str = include_str!("../../testdata/rsa-2048-a.key");
const OCSP_URL: &str = "http://ocsp.example/";
const ISSUER_URL: &str = "http://ca.example/issuer.der";
const CRL_URL: &str = "http://crl.example/1.crl";
const ID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const ID_AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";
const OID_SAN: &[u64] = &[2, 5, 29, 17];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EKU: &[u64] = &[2, 5, 29, 37];
const OID_SKI: &[u64] = &[2, 5, 29, 14];
const OID_AKI: &[u64] = &[2, 5, 29, 35];
const OID_CRL_DP: &[u64] = &[2, 5, 29, 31];
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// What a Basalt leaf looks like: empty subject, critical SAN, keyUsage
/// digitalSignature (critical), EKU serverAuth, AKI (and rcgen's SKI and empty
/// basicConstraints), DV policy, CRL DP and AIA with http URLs, 90 days.
fn good_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![
        SanType::DnsName("a.example".try_into().unwrap()),
        SanType::IpAddress("192.0.2.1".parse().unwrap()),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11; 16]));
    params.not_before = time::OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap();
    params.not_after = params.not_before + Duration::days(90) - Duration::seconds(1);
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![CRL_URL.to_owned()],
    }];
    params.custom_extensions = vec![
        dv_policies(),
        aia(&[(ID_AD_OCSP, OCSP_URL), (ID_AD_CA_ISSUERS, ISSUER_URL)]),
    ];
    params
}

/// The good parameters for an RSA key: keyEncipherment as well.
fn good_rsa_params() -> CertificateParams {
    let mut params = good_params();
    params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    params
}

/// The context of a 90-day profile.
fn context() -> Context {
    Context {
        max_validity: std::time::Duration::from_secs(90 * 86_400),
    }
}

fn dv_policies() -> CustomExtension {
    CustomExtension::from_oid_content(
        crate::issuance::OID_CERTIFICATE_POLICIES,
        crate::issuance::DV_CERTIFICATE_POLICIES.to_vec(),
    )
}

fn extension(oid: &[u64], content: Vec<u8>, critical: bool) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, content);
    ext.set_criticality(critical);
    ext
}

fn uri(url: &str) -> Name {
    Name::UniformResourceIdentifier(Ia5String::new(url).unwrap())
}

fn aia_der(entries: &[(&str, Name)]) -> Vec<u8> {
    AuthorityInfoAccessSyntax(
        entries
            .iter()
            .map(|(method, location)| AccessDescription {
                access_method: ObjectIdentifier::new_unwrap(method),
                access_location: location.clone(),
            })
            .collect(),
    )
    .to_der()
    .unwrap()
}

fn aia(entries: &[(&str, &str)]) -> CustomExtension {
    let entries: Vec<_> = entries
        .iter()
        .map(|(method, url)| (*method, uri(url)))
        .collect();
    extension(OID_AIA, aia_der(&entries), false)
}

/// The good parameters with the AIA extension replaced.
fn with_aia(aia: CustomExtension) -> CertificateParams {
    let mut params = good_params();
    params.custom_extensions = vec![dv_policies(), aia];
    params
}

/// The good parameters with a hand-made subjectAltName instead of rcgen's.
fn with_san(names: Vec<Name>, critical: bool) -> CertificateParams {
    let mut params = good_params();
    params.subject_alt_names.clear();
    params.custom_extensions.push(extension(
        OID_SAN,
        SubjectAltName(names).to_der().unwrap(),
        critical,
    ));
    params
}

fn dns(name: &str) -> Name {
    Name::DnsName(Ia5String::new(name).unwrap())
}

/// The good parameters with a hand-made cRLDistributionPoints.
fn with_crl_dp(points: Vec<DistributionPoint>, critical: bool) -> CertificateParams {
    let mut params = good_params();
    params.crl_distribution_points.clear();
    params.custom_extensions.push(extension(
        OID_CRL_DP,
        CrlDistributionPoints(points).to_der().unwrap(),
        critical,
    ));
    params
}

fn distribution_point(urls: &[&str]) -> DistributionPoint {
    DistributionPoint {
        distribution_point: Some(DpName::FullName(urls.iter().map(|u| uri(u)).collect())),
        reasons: None,
        crl_issuer: None,
    }
}

/// The good parameters with a hand-made authorityKeyIdentifier.
fn with_aki(aki: &AuthorityKeyIdentifier, critical: bool) -> CertificateParams {
    let mut params = good_params();
    params.use_authority_key_identifier_extension = false;
    params
        .custom_extensions
        .push(extension(OID_AKI, aki.to_der().unwrap(), critical));
    params
}

fn key_id() -> Option<OctetString> {
    Some(OctetString::new(vec![0x42; 20]).unwrap())
}

fn ec_key() -> KeyPair {
    KeyPair::generate().unwrap()
}

fn rsa_key() -> KeyPair {
    KeyPair::from_pem(RSA_KEY).unwrap()
}

fn der_of(params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
    params.self_signed(key).unwrap().der().to_vec()
}

/// Signs `params` for the public key `spki_der` with a P-256 issuer key.
fn der_for_spki(params: &CertificateParams, spki_der: &[u8]) -> Vec<u8> {
    let spki = rcgen::SubjectPublicKeyInfo::from_der(spki_der).unwrap();
    let issuer = rcgen::Issuer::new(good_params(), ec_key());
    params.signed_by(&spki, &issuer).unwrap().der().to_vec()
}

fn broken_with(der: &[u8], context: &Context) -> Vec<&'static str> {
    let (rest, parsed) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    lint_with(&parsed, context)
        .into_iter()
        .map(|e| e.rule)
        .collect()
}

fn broken(der: &[u8]) -> Vec<&'static str> {
    broken_with(der, &context())
}

/// The rules an ECDSA (P-256) certificate made from `params` breaks.
fn rules_broken(params: &CertificateParams) -> Vec<&'static str> {
    broken(&der_of(params, &ec_key()))
}

/// The rules an RSA certificate made from `params` breaks.
fn rsa_rules_broken(params: &CertificateParams) -> Vec<&'static str> {
    broken(&der_of(params, &rsa_key()))
}

/// Re-encodes `der` after `change`; the signature no longer matches, which
/// the linter does not look at.
fn mutate(der: &[u8], change: impl FnOnce(&mut x509_cert::Certificate)) -> Vec<u8> {
    let mut cert = <x509_cert::Certificate as der::Decode>::from_der(der).unwrap();
    change(&mut cert);
    cert.to_der().unwrap()
}

/// A DER TLV with a short or long length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A positive DER INTEGER holding the big-endian `magnitude`.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    tlv(0x02, &content)
}

/// An RSA SubjectPublicKeyInfo with a `bits`-bit modulus (not a real key:
/// the linter only measures it) and the given exponent.
fn rsa_spki(bits: usize, exponent: &[u8]) -> Vec<u8> {
    let mut modulus = vec![0xa5; bits.div_ceil(8)];
    let top_bits = bits - (modulus.len() - 1) * 8;
    modulus[0] = (1 << (top_bits - 1)) | 0x01;
    let key = tlv(0x30, &[integer(&modulus), integer(exponent)].concat());
    let algorithm = tlv(
        0x30,
        &[
            tlv(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bit_string = tlv(0x03, &[&[0u8][..], &key].concat());
    tlv(0x30, &[algorithm, bit_string].concat())
}

/// `der` with the single occurrence of `from` replaced by `to` (same length).
fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = der
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{from:02x?} occurs {} times", at.len());
    let mut out = der.to_vec();
    out[at[0]..at[0] + to.len()].copy_from_slice(to);
    out
}

fn algorithm(oid: &str, parameters: Option<der::Any>) -> x509_cert::spki::AlgorithmIdentifierOwned {
    x509_cert::spki::AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap(oid),
        parameters,
    }
}

fn null() -> Option<der::Any> {
    Some(der::Any::null())
}

#[test]
fn rule_names_are_unique_snake_case() {
    let mut seen = HashSet::new();
    for (name, _) in RULES {
        assert!(seen.insert(*name), "{name} twice");
        let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('_')
            && !name.contains("__")
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(snake, "{name} is not snake_case");
    }
}

#[test]
fn the_module_doc_lists_every_rule() {
    let source = include_str!("../lint.rs");
    for (name, _) in RULES {
        assert!(
            source.contains(&format!("//! - `{name}` (")),
            "{name} is missing from the module doc"
        );
    }
}

#[test]
fn a_good_certificate_passes() {
    assert_eq!(rules_broken(&good_params()), Vec::<&str>::new());
    assert_eq!(rsa_rules_broken(&good_rsa_params()), Vec::<&str>::new());
    // Without the optional CRL DP, AIA and SKI (no basicConstraints either).
    let mut params = good_params();
    params.crl_distribution_points.clear();
    params.custom_extensions = vec![dv_policies()];
    params.is_ca = IsCa::NoCa;
    assert_eq!(rules_broken(&params), Vec::<&str>::new());
    // The default context (the BR's 398 days) accepts a profile's certificate.
    let der = der_of(&good_params(), &ec_key());
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(lint(&parsed), []);
}

#[test]
fn lint_errors_name_the_rule_and_the_fault() {
    let mut params = good_params();
    params.subject_alt_names = vec![SanType::DnsName("A.example".try_into().unwrap())];
    let der = der_of(&params, &ec_key());
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let errors = lint_with(&parsed, &context());
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "names_lowercase: dNSName not lowercase: A.example"
    );
}

#[test]
fn breaks_version_v3() {
    let good = der_of(&good_params(), &ec_key());
    for version in [x509_cert::Version::V1, x509_cert::Version::V2] {
        let der = mutate(&good, |cert| cert.tbs_certificate.version = version);
        assert_eq!(broken(&der), ["version_v3"], "{version:?}");
    }
}

#[test]
fn breaks_signature_algorithm_matches() {
    let ecdsa = der_of(&good_params(), &ec_key());
    let rsa = der_of(&good_rsa_params(), &rsa_key());
    // The outer algorithm differs from the TBS one.
    let der = mutate(&ecdsa, |cert| {
        cert.signature_algorithm = algorithm("1.2.840.10045.4.3.3", None);
    });
    assert_eq!(broken(&der), ["signature_algorithm_matches"]);
    // Same OID, different parameters.
    let der = mutate(&ecdsa, |cert| cert.signature_algorithm.parameters = null());
    assert_eq!(broken(&der), ["signature_algorithm_matches"]);
    let both = |der: &[u8], alg: x509_cert::spki::AlgorithmIdentifierOwned| {
        mutate(der, |cert| {
            cert.signature_algorithm = alg.clone();
            cert.tbs_certificate.signature = alg;
        })
    };
    for (der, alg) in [
        // ecdsa-with-SHA512 and sha1WithRSAEncryption are not allowed.
        (&ecdsa, algorithm("1.2.840.10045.4.3.4", None)),
        (&rsa, algorithm("1.2.840.113549.1.1.5", null())),
        // ECDSA with NULL parameters, RSA without them.
        (&ecdsa, algorithm("1.2.840.10045.4.3.2", null())),
        (&rsa, algorithm("1.2.840.113549.1.1.11", None)),
    ] {
        assert_eq!(
            broken(&both(der, alg.clone())),
            ["signature_algorithm_matches"],
            "{alg:?}"
        );
    }
    // The allowed ones.
    for (der, alg) in [
        (&ecdsa, algorithm("1.2.840.10045.4.3.3", None)),
        (&rsa, algorithm("1.2.840.113549.1.1.12", null())),
        (&rsa, algorithm("1.2.840.113549.1.1.13", null())),
    ] {
        assert_eq!(
            broken(&both(der, alg.clone())),
            Vec::<&str>::new(),
            "{alg:?}"
        );
    }
}

#[test]
fn breaks_serial_positive_8_to_20_bytes() {
    for serial in [&[0x11; 7][..], &[0x11; 21][..], &[0][..]] {
        let mut params = good_params();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        assert_eq!(
            rules_broken(&params),
            ["serial_positive_8_to_20_bytes"],
            "{serial:02x?}"
        );
    }
    for serial in [&[0x11; 8][..], &[0x7f; 20][..]] {
        let mut params = good_params();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        assert_eq!(rules_broken(&params), Vec::<&str>::new(), "{serial:02x?}");
    }
    // Negative: the first content octet's high bit set.
    let good = der_of(&good_params(), &ec_key());
    let der = patch(
        &good,
        &[&[0x02, 0x10][..], &[0x11; 16]].concat(),
        &[&[0x02, 0x10, 0x91][..], &[0x11; 15]].concat(),
    );
    assert_eq!(broken(&der), ["serial_positive_8_to_20_bytes"]);
}

#[test]
fn breaks_validity_positive() {
    let mut params = good_params();
    params.not_after = params.not_before;
    assert_eq!(rules_broken(&params), ["validity_positive"]);
    params.not_after = params.not_before - Duration::days(1);
    assert_eq!(rules_broken(&params), ["validity_positive"]);
}

#[test]
fn breaks_validity_within_br_limit() {
    let long_profile = Context {
        max_validity: std::time::Duration::from_secs(400 * 86_400),
    };
    // The limit on each side of each step of ballot SC-081.
    for (not_before, days) in [
        ("2026-03-14T23:59:59Z", 398),
        ("2026-03-15T00:00:00Z", 200),
        ("2027-03-14T23:59:59Z", 200),
        ("2027-03-15T00:00:00Z", 100),
        ("2029-03-15T00:00:00Z", 47),
        ("2035-01-01T00:00:00Z", 47),
    ] {
        let mut params = good_params();
        params.not_before =
            time::OffsetDateTime::parse(not_before, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(
            br_max_validity(params.not_before),
            std::time::Duration::from_secs(days * 86_400)
        );
        // One second over, counting both ends.
        params.not_after = params.not_before + Duration::days(days as i64);
        let der = der_of(&params, &ec_key());
        assert_eq!(
            broken_with(&der, &long_profile),
            ["validity_within_br_limit"],
            "{not_before}"
        );
        params.not_after -= Duration::seconds(1);
        let der = der_of(&params, &ec_key());
        assert_eq!(broken_with(&der, &long_profile), Vec::<&str>::new());
    }
}

#[test]
fn breaks_validity_within_profile() {
    let mut params = good_params();
    // 90 days and one second against a 90-day profile.
    params.not_after = params.not_before + Duration::days(90);
    assert_eq!(rules_broken(&params), ["validity_within_profile"]);
    // Context::for_profile takes the profile's validity.
    let profile = crate::Profile {
        validity: std::time::Duration::from_secs(7 * 86_400),
        ..crate::Profile::default()
    };
    let der = der_of(&good_params(), &ec_key());
    assert_eq!(
        broken_with(&der, &Context::for_profile(&profile)),
        ["validity_within_profile"]
    );
}

#[test]
fn breaks_san_present() {
    let mut params = good_params();
    params.subject_alt_names.clear();
    assert_eq!(rules_broken(&params), ["san_present"]);
    // Present but empty.
    assert_eq!(rules_broken(&with_san(vec![], true)), ["san_present"]);
}

#[test]
fn breaks_san_dns_or_ip_only() {
    for name in [
        SanType::Rfc822Name("a@a.example".try_into().unwrap()),
        SanType::URI("http://a.example/".try_into().unwrap()),
    ] {
        let mut params = good_params();
        params.subject_alt_names.push(name.clone());
        assert_eq!(rules_broken(&params), ["san_dns_or_ip_only"], "{name:?}");
    }
}

#[test]
fn breaks_san_critical_iff_empty_subject() {
    // Empty subject, non-critical SAN.
    let params = with_san(vec![dns("a.example")], false);
    assert_eq!(rules_broken(&params), ["san_critical_iff_empty_subject"]);
    // A subject, critical SAN.
    let mut params = with_san(vec![dns("a.example")], true);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "a.example");
    assert_eq!(rules_broken(&params), ["san_critical_iff_empty_subject"]);
    // A subject and a non-critical SAN (rcgen's choice) is right.
    let mut params = good_params();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example");
    assert_eq!(rules_broken(&params), Vec::<&str>::new());
}

#[test]
fn breaks_subject_cn_in_san() {
    let with_cn = |cn: &str| {
        let mut params = good_params();
        params.subject_alt_names.extend([
            SanType::IpAddress("2001:db8::1".parse().unwrap()),
            SanType::DnsName("*.b.example".try_into().unwrap()),
        ]);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        rules_broken(&params)
    };
    for cn in ["a.example", "192.0.2.1", "2001:db8::1", "*.b.example"] {
        assert_eq!(with_cn(cn), Vec::<&str>::new(), "{cn}");
    }
    for cn in [
        "c.example",
        // A character-for-character copy is required (BR 7.1.4.3).
        "A.example",
        "x.b.example",
        // Not the RFC 5952 text form.
        "2001:DB8::1",
        "2001:db8:0:0:0:0:0:1",
        "192.000.2.1",
    ] {
        assert_eq!(with_cn(cn), ["subject_cn_in_san"], "{cn}");
    }
    // Two commonNames, both in the SAN.
    let mut params = good_params();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "a.example");
    let der = mutate(&der_of(&params, &ec_key()), |cert| {
        cert.tbs_certificate.subject =
            x509_cert::name::Name::from_str("CN=a.example,CN=a.example").unwrap();
    });
    assert_eq!(broken(&der), ["subject_cn_in_san"]);
}

#[test]
fn breaks_names_lowercase() {
    let mut params = good_params();
    params.subject_alt_names = vec![SanType::DnsName("A.example".try_into().unwrap())];
    assert_eq!(rules_broken(&params), ["names_lowercase"]);
}

#[test]
fn breaks_no_ip_in_dns_name() {
    let mut params = good_params();
    params.subject_alt_names = vec![SanType::DnsName("10.0.0.1".try_into().unwrap())];
    assert_eq!(rules_broken(&params), ["no_ip_in_dns_name"]);
    // An IPv6 address is not LDH either.
    params.subject_alt_names = vec![SanType::DnsName("2001:db8::1".try_into().unwrap())];
    assert_eq!(
        rules_broken(&params),
        ["no_ip_in_dns_name", "dns_name_syntax"]
    );
}

#[test]
fn breaks_dns_name_syntax() {
    for bad in [
        "a..example",
        "-a.example",
        "a b.example",
        "a.*.example",
        "a.example.",
        "*",
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
}

#[test]
fn breaks_ip_san_form() {
    for octets in [
        vec![192, 0, 2],
        vec![192, 0, 2, 1, 0],
        vec![0x20; 15],
        vec![],
    ] {
        let ip = Name::IpAddress(OctetString::new(octets.clone()).unwrap());
        let params = with_san(vec![dns("a.example"), ip], true);
        assert_eq!(rules_broken(&params), ["ip_san_form"], "{octets:?}");
    }
    let params = with_san(
        vec![Name::IpAddress(OctetString::new(vec![0x20; 16]).unwrap())],
        true,
    );
    assert_eq!(rules_broken(&params), Vec::<&str>::new());
}

#[test]
fn breaks_eku_server_auth() {
    // Missing.
    let mut params = good_params();
    params.extended_key_usages.clear();
    assert_eq!(rules_broken(&params), ["eku_server_auth"]);
    // Critical: SEQUENCE { id-kp-serverAuth }.
    let mut params = good_params();
    params.extended_key_usages.clear();
    params.custom_extensions.push(extension(
        OID_EKU,
        vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
        ],
        true,
    ));
    assert_eq!(rules_broken(&params), ["eku_server_auth"]);
    // clientAuth instead of serverAuth breaks this rule and the next.
    let mut params = good_params();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    assert_eq!(
        rules_broken(&params),
        ["eku_server_auth", "eku_server_auth_only"]
    );
}

#[test]
fn breaks_eku_server_auth_only() {
    for other in [
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::Any,
        ExtendedKeyUsagePurpose::CodeSigning,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 99999, 1]),
    ] {
        let mut params = good_params();
        params.extended_key_usages.push(other.clone());
        assert_eq!(rules_broken(&params), ["eku_server_auth_only"], "{other:?}");
    }
}

#[test]
fn breaks_key_usage_by_key_type() {
    // Missing.
    let mut params = good_params();
    params.key_usages.clear();
    assert_eq!(rules_broken(&params), ["key_usage_by_key_type"]);
    // Not critical: BIT STRING digitalSignature.
    let mut params = good_params();
    params.key_usages.clear();
    params.custom_extensions.push(extension(
        OID_KEY_USAGE,
        vec![0x03, 0x02, 0x07, 0x80],
        false,
    ));
    assert_eq!(rules_broken(&params), ["key_usage_by_key_type"]);
    // Without digitalSignature, or with something else.
    for usages in [
        vec![KeyUsagePurpose::KeyAgreement],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ],
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign],
    ] {
        let mut params = good_params();
        params.key_usages = usages.clone();
        assert_eq!(
            rules_broken(&params),
            ["key_usage_by_key_type"],
            "ECDSA {usages:?}"
        );
    }
    // RSA: digitalSignature alone is fine; anything beyond keyEncipherment is not.
    let mut params = good_rsa_params();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    assert_eq!(rsa_rules_broken(&params), Vec::<&str>::new());
    for usages in [
        vec![KeyUsagePurpose::KeyEncipherment],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::DataEncipherment,
        ],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ],
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ],
    ] {
        let mut params = good_rsa_params();
        params.key_usages = usages.clone();
        assert_eq!(
            rsa_rules_broken(&params),
            ["key_usage_by_key_type"],
            "RSA {usages:?}"
        );
    }
}

#[test]
fn breaks_not_ca() {
    let mut params = good_params();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    assert_eq!(rules_broken(&params), ["not_ca"]);
}

#[test]
fn breaks_aki_present() {
    let mut params = good_params();
    params.use_authority_key_identifier_extension = false;
    assert_eq!(rules_broken(&params), ["aki_present"]);
    let good = AuthorityKeyIdentifier {
        key_identifier: key_id(),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    assert_eq!(rules_broken(&with_aki(&good, false)), Vec::<&str>::new());
    assert_eq!(rules_broken(&with_aki(&good, true)), ["aki_present"]);
    for aki in [
        AuthorityKeyIdentifier {
            key_identifier: None,
            ..good.clone()
        },
        AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(vec![]).unwrap()),
            ..good.clone()
        },
        AuthorityKeyIdentifier {
            authority_cert_issuer: Some(vec![dns("ca.example")]),
            ..good.clone()
        },
        AuthorityKeyIdentifier {
            authority_cert_serial_number: Some(
                x509_cert::serial_number::SerialNumber::new(&[1, 2, 3]).unwrap(),
            ),
            ..good
        },
    ] {
        assert_eq!(
            rules_broken(&with_aki(&aki, false)),
            ["aki_present"],
            "{aki:?}"
        );
    }
}

#[test]
fn breaks_ski_not_critical() {
    let mut params = good_params();
    params.is_ca = IsCa::NoCa;
    params.custom_extensions.push(extension(
        OID_SKI,
        [&[0x04, 0x14][..], &[0x42; 20]].concat(),
        true,
    ));
    assert_eq!(rules_broken(&params), ["ski_not_critical"]);
}

#[test]
fn breaks_crl_distribution_points_form() {
    let good = distribution_point(&[CRL_URL]);
    assert_eq!(
        rules_broken(&with_crl_dp(vec![good.clone()], false)),
        Vec::<&str>::new()
    );
    let cases = [
        (vec![good.clone()], true),
        (vec![], false),
        (
            vec![
                good.clone(),
                distribution_point(&["http://crl.example/2.crl"]),
            ],
            false,
        ),
        (
            vec![distribution_point(&["https://crl.example/1.crl"])],
            false,
        ),
        (vec![distribution_point(&["ldap://crl.example/"])], false),
        (vec![distribution_point(&[CRL_URL, "http://"])], false),
        (vec![distribution_point(&[])], false),
        (
            vec![DistributionPoint {
                distribution_point: Some(DpName::FullName(vec![dns("crl.example")])),
                ..good.clone()
            }],
            false,
        ),
        (
            vec![DistributionPoint {
                distribution_point: None,
                crl_issuer: Some(vec![uri(CRL_URL)]),
                ..good.clone()
            }],
            false,
        ),
        (
            vec![DistributionPoint {
                reasons: Some(x509_cert::ext::pkix::crl::dp::Reasons::KeyCompromise.into()),
                ..good.clone()
            }],
            false,
        ),
        (
            vec![DistributionPoint {
                crl_issuer: Some(vec![uri(CRL_URL)]),
                ..good
            }],
            false,
        ),
    ];
    for (points, critical) in cases {
        let description = format!("{points:?} critical={critical}");
        assert_eq!(
            rules_broken(&with_crl_dp(points, critical)),
            ["crl_distribution_points_form"],
            "{description}"
        );
    }
}

#[test]
fn breaks_aia_form() {
    // OCSP alone, caIssuers alone, and two OCSP responders are fine.
    for entries in [
        &[(ID_AD_OCSP, OCSP_URL)][..],
        &[(ID_AD_CA_ISSUERS, ISSUER_URL)][..],
        &[
            (ID_AD_OCSP, OCSP_URL),
            (ID_AD_OCSP, "http://ocsp2.example/"),
        ][..],
    ] {
        assert_eq!(
            rules_broken(&with_aia(aia(entries))),
            Vec::<&str>::new(),
            "{entries:?}"
        );
    }
    let mut critical = aia(&[(ID_AD_OCSP, OCSP_URL)]);
    critical.set_criticality(true);
    let bad = [
        critical,
        extension(OID_AIA, aia_der(&[]), false),
        // id-ad-caRepository.
        aia(&[(ID_AD_OCSP, OCSP_URL), ("1.3.6.1.5.5.7.48.5", ISSUER_URL)]),
        aia(&[(ID_AD_OCSP, "https://ocsp.example/")]),
        aia(&[(ID_AD_CA_ISSUERS, "ldap://ca.example/")]),
        aia(&[(ID_AD_OCSP, OCSP_URL), (ID_AD_OCSP, OCSP_URL)]),
        extension(
            OID_AIA,
            aia_der(&[(ID_AD_OCSP, dns("ocsp.example"))]),
            false,
        ),
    ];
    for ext in bad {
        let description = format!("{ext:?}");
        assert_eq!(rules_broken(&with_aia(ext)), ["aia_form"], "{description}");
    }
}

#[test]
fn breaks_certificate_policies_dv() {
    let mut params = good_params();
    params.custom_extensions.retain(|ext| ext != &dv_policies());
    assert_eq!(rules_broken(&params), ["certificate_policies_dv"]);
    // Another policy (2.23.140.1.2.2, OV) instead of DV.
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            crate::issuance::OID_CERTIFICATE_POLICIES,
            vec![
                0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x67, 0x81, 0x0c, 0x01, 0x02, 0x02,
            ],
        ));
    assert_eq!(rules_broken(&params), ["certificate_policies_dv"]);
    // Critical.
    let mut params = good_params();
    params.custom_extensions.retain(|ext| ext != &dv_policies());
    let mut critical = dv_policies();
    critical.set_criticality(true);
    params.custom_extensions.push(critical);
    assert_eq!(rules_broken(&params), ["certificate_policies_dv"]);
}

#[test]
fn breaks_key_algorithm() {
    // Ed25519, signed by a P-256 issuer so only the key is at fault.
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let issuer = rcgen::Issuer::new(good_params(), ec_key());
    let der = good_params()
        .signed_by(&ed, &issuer)
        .unwrap()
        .der()
        .to_vec();
    assert_eq!(broken(&der), ["key_algorithm"]);
    // P-384 is fine.
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert_eq!(
        broken(good_params().signed_by(&p384, &issuer).unwrap().der()),
        Vec::<&str>::new()
    );
    // RSA moduli and exponents.
    let f4 = [0x01, 0x00, 0x01];
    for bits in [2048, 3072, 4096, 8192] {
        assert_eq!(
            broken(&der_for_spki(&good_params(), &rsa_spki(bits, &f4))),
            Vec::<&str>::new(),
            "{bits} bits"
        );
    }
    for (bits, exponent) in [
        (2040, &f4[..]),
        (2049, &f4[..]),
        (2052, &f4[..]),
        (8200, &f4[..]),
        (2048, &[0x01, 0x00, 0x00][..]),
        (2048, &[0x01][..]),
        (2048, &[0x00][..]),
    ] {
        assert_eq!(
            broken(&der_for_spki(&good_params(), &rsa_spki(bits, exponent))),
            ["key_algorithm"],
            "{bits} bits, exponent {exponent:02x?}"
        );
    }
}
