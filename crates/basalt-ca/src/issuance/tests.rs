use std::collections::HashSet;

use basalt_core::AccountId;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::OrderId;
use rcgen::DnType;
use rcgen::KeyPair;
use x509_parser::extensions::DistributionPointName;
use x509_parser::extensions::GeneralName as X509GeneralName;
use x509_parser::extensions::ParsedExtension;

use super::*;
use crate::test_support::Call;
use crate::test_support::CapturedLogs;
use crate::test_support::FakeStorage;
use crate::test_support::fixed_now;
use crate::test_support::test_issuer;
use crate::test_support::test_rsa_issuer;

const RSA_KEY_A: &str = include_str!("../../testdata/rsa-2048-a.key");

/// A CSR whose own names and subject must be ignored by the CA.
fn csr(key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "evil.example");
    params.serialize_request(key).unwrap().der().to_vec()
}

fn request(csr_der: Vec<u8>, identifiers: Vec<Identifier>) -> IssueRequest {
    IssueRequest {
        csr_der,
        account_id: AccountId(7),
        order_id: OrderId(9),
        identifiers,
        profile: String::new(),
        not_before: None,
        not_after: None,
    }
}

/// The default profile, allowing IP identifiers too.
fn dns_and_ip() -> Profile {
    Profile {
        identifier_types: vec![IdentifierType::Dns, IdentifierType::Ip],
        ..Profile::default()
    }
}

fn ca_with(issuer: Issuer, profile: Profile) -> (Ca, Arc<FakeStorage>) {
    ca_with_profiles(issuer, Profiles::single("classic", profile))
}

fn ca_with_profiles(issuer: Issuer, profiles: Profiles) -> (Ca, Arc<FakeStorage>) {
    let storage = Arc::new(FakeStorage::default());
    let clock = Arc::new(FixedClock::new(fixed_now()));
    (Ca::new(issuer, profiles, storage.clone(), clock), storage)
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .unwrap()
}

fn aki(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn issues_a_linted_recorded_certificate_that_chains_to_the_root() {
    let (issuer, root) = test_issuer();
    let intermediate_der = issuer.cert_der().to_vec();
    let (ca, storage) = ca_with(issuer, dns_and_ip());
    let subject_key = KeyPair::generate().unwrap();
    let identifiers = vec![
        Identifier::dns("b.example"),
        Identifier::dns("a.example"),
        Identifier::ip("192.0.2.1"),
        Identifier::ip("2001:db8::1"),
    ];
    let issued = ca
        .issue_certificate(request(csr(&subject_key), identifiers))
        .await
        .unwrap();

    // Chain: root -> intermediate -> leaf.
    let root_cert = parse(&root.cert_der);
    let intermediate = parse(&intermediate_der);
    let leaf = parse(&issued.der);
    root_cert.verify_signature(None).unwrap();
    intermediate
        .verify_signature(Some(root_cert.public_key()))
        .unwrap();
    leaf.verify_signature(Some(intermediate.public_key()))
        .unwrap();
    assert!(leaf.verify_signature(Some(root_cert.public_key())).is_err());
    assert_eq!(issued.chain, vec![intermediate_der.clone()]);
    assert_eq!(leaf.issuer().as_raw(), intermediate.subject().as_raw());
    assert_eq!(aki(&leaf), ski(&intermediate));

    // Names come from the identifiers only; the subject is empty.
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "SAN must be critical with an empty subject");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|name| match name {
            X509GeneralName::DNSName(dns) => dns.to_string(),
            X509GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => panic!("unexpected name {other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "a.example".to_string(),
            "b.example".to_string(),
            format!("ip:{:?}", [192u8, 0, 2, 1].as_slice()),
            format!(
                "ip:{:?}",
                "2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets()
                    .as_slice()
            ),
        ]
    );
    assert_eq!(leaf.subject().iter().count(), 0);
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        subject_key.public_key_raw()
    );

    // Profile.
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && eku.other.is_empty());
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
    assert!(!leaf.is_ca());
    assert!(leaf.basic_constraints().unwrap().is_some());
    assert!(!ski(&leaf).is_empty());
    let serial = leaf.raw_serial();
    assert_eq!(serial.len(), 20, "{serial:02x?}");
    assert!(serial[0] != 0 && serial[0] & 0x80 == 0);
    assert_eq!(serial, issued.serial.as_bytes());
    let validity = leaf.validity();
    assert_eq!(
        validity.not_before.timestamp(),
        fixed_now().unix_timestamp() - 3600
    );
    assert_eq!(
        validity.not_after.timestamp() - validity.not_before.timestamp(),
        90 * 86_400 - 1
    );
    assert!(
        leaf.get_extension_unique(&x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS)
            .unwrap()
            .is_none()
    );

    // Storage: serial, then precertificate (the linted TBS), then certificate.
    let calls = storage.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], Call::Serial(issued.serial.clone()));
    let Call::Precertificate(pre_serial, pre_der, placement) = &calls[1] else {
        panic!("expected a precertificate, got {:?}", calls[1]);
    };
    assert_eq!(pre_serial, &issued.serial);
    // An issuer without crl_url_base: no CRL distribution point, and no shard.
    assert_eq!(
        placement,
        &CrlPlacement {
            issuer_key_hash: crate::issuer::sha1(
                intermediate.public_key().subject_public_key.data.as_ref()
            ),
            shard: None,
        }
    );
    assert_eq!(crl_distribution_points(&leaf), None);
    let precert = parse(pre_der);
    assert_eq!(
        precert.tbs_certificate.as_ref(),
        leaf.tbs_certificate.as_ref()
    );
    assert_ne!(
        pre_der, &issued.der,
        "the linting certificate has another signature"
    );
    assert!(
        precert
            .verify_signature(Some(intermediate.public_key()))
            .is_err()
    );
    let Call::Certificate(record) = &calls[2] else {
        panic!("expected a certificate, got {:?}", calls[2]);
    };
    assert_eq!(record.der, issued.der);
    assert_eq!(record.serial, issued.serial);
    assert_eq!(record.account_id, AccountId(7));
    assert_eq!(record.chain, issued.chain);
    assert_eq!(record.status, CertStatus::Good);
    assert_eq!(
        record.issued_at.unix_timestamp(),
        validity.not_before.timestamp()
    );
    assert_eq!(
        record.expires_at.unix_timestamp(),
        validity.not_after.timestamp()
    );
}

/// The URIs of the leaf's CRL distribution point, if it has one.
fn crl_distribution_points(cert: &X509Certificate<'_>) -> Option<Vec<String>> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(points),
            _ => None,
        })
        .map(|points| {
            assert_eq!(points.points.len(), 1, "{points:?}");
            let Some(DistributionPointName::FullName(names)) = &points.points[0].distribution_point
            else {
                panic!("no full name in {points:?}");
            };
            names
                .iter()
                .map(|name| match name {
                    X509GeneralName::URI(uri) => (*uri).to_owned(),
                    other => panic!("unexpected name {other:?}"),
                })
                .collect()
        })
}

#[tokio::test]
async fn profile_and_issuer_urls_become_aia_and_crl_extensions() {
    let (issuer, _) = test_issuer();
    let issuer = issuer.with_crl_url_base("http://crl.example/").unwrap();
    let profile = Profile {
        validity: Duration::from_secs(7 * 86_400),
        backdate: Duration::ZERO,
        ocsp_url: Some("http://ocsp.example/".into()),
        ..Profile::default()
    };
    let (ca, _) = ca_with(issuer, profile);
    let key = KeyPair::generate().unwrap();
    let issued = ca
        .issue_certificate(request(csr(&key), vec![Identifier::dns("a.example")]))
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    assert_eq!(
        leaf.validity().not_before.timestamp(),
        fixed_now().unix_timestamp()
    );
    let mut saw_aia = false;
    let mut saw_crl = false;
    for ext in leaf.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                let descriptions: Vec<_> = aia.iter().collect();
                assert_eq!(descriptions.len(), 1);
                assert_eq!(
                    descriptions[0].access_method,
                    x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                );
                assert_eq!(
                    descriptions[0].access_location,
                    X509GeneralName::URI("http://ocsp.example/")
                );
                saw_aia = true;
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                let Some(DistributionPointName::FullName(names)) =
                    &points.points[0].distribution_point
                else {
                    panic!("no full name in {points:?}");
                };
                // One shard by default: shard 0.
                assert_eq!(names, &[X509GeneralName::URI("http://crl.example/0.crl")]);
                saw_crl = true;
            }
            _ => {}
        }
    }
    assert!(saw_aia && saw_crl);
}

#[tokio::test]
async fn csr_with_bad_signature_is_refused_before_anything_is_recorded() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with(issuer, Profile::default());
    let key = KeyPair::generate().unwrap();
    let mut der = csr(&key);
    // The signature BIT STRING is last; flip a bit inside the ECDSA `s` integer.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = ca
        .issue_certificate(request(der, vec![Identifier::dns("a.example")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadCsr, "{err}");
    assert!(err.detail.contains("signature is invalid"), "{err}");
    assert!(storage.calls().is_empty());

    for garbage in [
        Vec::new(),
        vec![0x30, 0x03, 0x02, 0x01, 0x00],
        b"not a csr".to_vec(),
    ] {
        let err = ca
            .issue_certificate(request(garbage, vec![Identifier::dns("a.example")]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadCsr, "{err}");
    }
    // Trailing bytes after a valid CSR are refused too.
    let mut trailing = csr(&key);
    trailing.push(0);
    let err = ca
        .issue_certificate(request(trailing, vec![Identifier::dns("a.example")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadCsr, "{err}");
    assert!(storage.calls().is_empty());
}

#[tokio::test]
async fn lint_failure_signs_nothing_with_the_issuer_key() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with(issuer, Profile::default());
    let key = KeyPair::generate().unwrap();
    let err = ca
        .issue_certificate(request(
            csr(&key),
            vec![
                Identifier::dns("a.example"),
                Identifier::dns("Mixed.Example"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(err.detail.contains("names_lowercase"), "{}", err.detail);
    // The serial was recorded first; no precertificate and no certificate follow,
    // and the issuer key signed nothing.
    let calls = storage.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(matches!(calls[0], Call::Serial(_)));
    assert_eq!(ca.issuer().signatures(), 0);
}

/// Issue 6: a profile asking for 400 days makes the linter fail; issuance is
/// refused, the issuer key signs nothing, and the audit log says why.
#[tokio::test]
async fn a_400_day_profile_fails_lints_with_nothing_signed_and_an_audit_line() {
    let logs = CapturedLogs::start();
    let (issuer, _) = test_issuer();
    let profile = Profile {
        validity: Duration::from_secs(400 * 86_400),
        ..Profile::default()
    };
    let (ca, storage) = ca_with(issuer, profile);
    let key = KeyPair::generate().unwrap();
    let err = ca
        .issue_certificate(request(csr(&key), vec![Identifier::dns("a.example")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(
        err.detail.contains("validity_within_br_limit"),
        "{}",
        err.detail
    );
    // Only the serial was recorded: no precertificate, no certificate, and not
    // one signature by the issuer key.
    let calls = storage.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let Call::Serial(serial) = &calls[0] else {
        panic!("expected the serial first, got {calls:?}");
    };
    assert_eq!(ca.issuer().signatures(), 0);
    let audit = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("audit") && line.contains("failed linting"))
        .collect::<Vec<_>>();
    assert_eq!(audit.len(), 1, "{:?}", logs.lines());
    for expected in [
        "ERROR",
        "certificate failed linting, not signed",
        &format!("serial={serial}"),
        "rules=validity_within_br_limit",
        "names=a.example",
        "order_id=9",
    ] {
        assert!(audit[0].contains(expected), "{expected:?} in {}", audit[0]);
    }
}

/// Two hierarchies: an RSA CSR gets a leaf from the RSA issuer, an ECDSA CSR one
/// from the ECDSA issuer, each with its own chain and caIssuers URL.
#[tokio::test]
async fn the_issuer_is_chosen_by_the_csr_key_type() {
    let (ecdsa, _) = test_issuer();
    let ecdsa = ecdsa.with_issuer_url("http://issuers.example/ecdsa.der");
    let (rsa, rsa_cert) = test_rsa_issuer();
    let rsa = rsa.with_issuer_url("http://issuers.example/rsa.der");
    let storage = Arc::new(FakeStorage::default());
    let clock = Arc::new(FixedClock::new(fixed_now()));
    let ca = Ca::new(ecdsa, Profiles::default(), storage, clock).with_issuer(rsa);
    let (ecdsa, rsa) = (&ca.issuers()[0], &ca.issuers()[1]);

    for (key, issuer, url) in [
        (
            KeyPair::from_pem(RSA_KEY_A).unwrap(),
            rsa,
            "http://issuers.example/rsa.der",
        ),
        (
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            ecdsa,
            "http://issuers.example/ecdsa.der",
        ),
        (
            KeyPair::generate().unwrap(),
            ecdsa,
            "http://issuers.example/ecdsa.der",
        ),
    ] {
        let before = (ecdsa.signatures(), rsa.signatures());
        let issued = ca
            .issue_certificate(request(csr(&key), vec![Identifier::dns("a.example")]))
            .await
            .unwrap();
        let leaf = parse(&issued.der);
        let issuer_cert = parse(issuer.cert_der());
        assert_eq!(leaf.issuer().as_raw(), issuer_cert.subject().as_raw());
        assert_eq!(aki(&leaf), ski(&issuer_cert));
        leaf.verify_signature(Some(issuer_cert.public_key()))
            .unwrap();
        assert_eq!(issued.chain, issuer.chain());
        assert_eq!(ca_issuers_urls(&leaf), [url]);
        let after = (ecdsa.signatures(), rsa.signatures());
        if issuer.is_rsa() {
            assert_eq!(after, (before.0, before.1 + 1));
        } else {
            assert_eq!(after, (before.0 + 1, before.1));
        }
    }
    assert_eq!(parse(rsa.cert_der()).as_ref(), parse(&rsa_cert).as_ref());
}

/// The caIssuers URLs of a certificate's authorityInfoAccess.
fn ca_issuers_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.iter_extensions()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .flat_map(|aia| aia.accessdescs.iter())
        .filter(|desc| desc.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2")
        .filter_map(|desc| match &desc.access_location {
            X509GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn refused_serial_stops_issuance() {
    let (issuer, _) = test_issuer();
    let storage = Arc::new(FakeStorage {
        refuse_serials: true,
        ..FakeStorage::default()
    });
    let clock = Arc::new(FixedClock::new(fixed_now()));
    let ca = Ca::new(issuer, Profiles::default(), storage.clone(), clock);
    let key = KeyPair::generate().unwrap();
    let err = ca
        .issue_certificate(request(csr(&key), vec![Identifier::dns("a.example")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(storage.calls().is_empty());
}

#[tokio::test]
async fn bad_identifiers_and_keys_are_refused() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with(issuer, dns_and_ip());
    let key = KeyPair::generate().unwrap();
    for identifiers in [
        vec![],
        vec![Identifier::ip("300.1.1.1")],
        vec![Identifier::dns("bücher.example")],
    ] {
        let err = ca
            .issue_certificate(request(csr(&key), identifiers.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{identifiers:?}: {err}");
    }
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let err = ca
        .issue_certificate(request(csr(&ed), vec![Identifier::dns("a.example")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadPublicKey, "{err}");
    assert!(storage.calls().is_empty());
}

#[tokio::test]
async fn rsa_subject_keys_get_key_encipherment() {
    let (issuer, _) = test_issuer();
    let (ca, _) = ca_with(issuer, Profile::default());
    let key = KeyPair::from_pem(RSA_KEY_A).unwrap();
    let issued = ca
        .issue_certificate(request(csr(&key), vec![Identifier::dns("rsa.example")]))
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
}

#[tokio::test]
async fn rsa_issuer_signs_the_linted_tbs() {
    let (issuer, cert) = test_rsa_issuer();
    let (ca, storage) = ca_with(issuer, Profile::default());

    let key = KeyPair::generate().unwrap();
    let issued = ca
        .issue_certificate(request(csr(&key), vec![Identifier::dns("a.example")]))
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    let intermediate = parse(&cert);
    leaf.verify_signature(Some(intermediate.public_key()))
        .unwrap();
    let calls = storage.calls();
    let Call::Precertificate(_, pre_der, _) = &calls[1] else {
        panic!("expected a precertificate, got {calls:?}");
    };
    assert_eq!(
        parse(pre_der).tbs_certificate.as_ref(),
        leaf.tbs_certificate.as_ref()
    );
}

#[test]
fn issuer_refuses_a_key_that_does_not_match() {
    let (issuer, root) = test_issuer();
    let other = KeyPair::generate().unwrap();
    let err = Issuer::from_der(issuer.cert_der().to_vec(), other).unwrap_err();
    assert!(err.detail.contains("does not match"), "{}", err.detail);
    // A self-signed root is a CA too, but a leaf is not an issuer.
    let root_issuer = Issuer::from_der(root.cert_der.clone(), root.key);
    assert!(root_issuer.is_ok());
}

#[test]
fn serials_are_positive_20_octets_and_distinct() {
    let mut seen = HashSet::new();
    for _ in 0..2000 {
        let serial = new_serial().unwrap();
        assert!((1..=0x7f).contains(&serial[0]));
        assert_eq!(Serial::from_bytes(&serial).unwrap().as_bytes().len(), 20);
        assert!(seen.insert(serial));
    }
}

#[test]
fn validity_window_is_backdated_and_inclusive() {
    let profile = Profile::default();
    let now = fixed_now() + time::Duration::milliseconds(1500);
    let (not_before, not_after) = profile.validity_window(now, None, None).unwrap();
    assert_eq!(
        not_before,
        fixed_now() + time::Duration::seconds(1) - time::Duration::hours(1)
    );
    assert_eq!(
        not_after - not_before,
        time::Duration::days(90) - time::Duration::SECOND
    );
}

#[test]
fn requested_windows_are_checked_against_the_profile() {
    let profile = Profile::default();
    let now = fixed_now();
    let day = time::Duration::days(1);
    let hour = time::Duration::hours(1);
    let second = time::Duration::SECOND;
    let window = |nb: Option<OffsetDateTime>, na: Option<OffsetDateTime>| {
        profile.validity_window(now, nb, na)
    };
    // Only notBefore: notAfter follows from the validity.
    assert_eq!(
        window(Some(now + day), None).unwrap(),
        (now + day, now + day + 90 * day - second)
    );
    // Only notAfter: notBefore is the backdated now.
    assert_eq!(
        window(None, Some(now + 10 * day)).unwrap(),
        (now - hour, now + 10 * day)
    );
    // Exactly the longest window, and exactly the earliest notBefore.
    assert_eq!(
        window(Some(now - hour), Some(now - hour + 90 * day - second)).unwrap(),
        (now - hour, now - hour + 90 * day - second)
    );
    // Sub-second parts are dropped.
    assert_eq!(
        window(
            Some(now + time::Duration::milliseconds(300)),
            Some(now + day + time::Duration::milliseconds(700))
        )
        .unwrap(),
        (now, now + day)
    );
    for (nb, na, expect) in [
        (Some(now), Some(now + 90 * day), "longer than"),
        (None, Some(now - hour + 90 * day), "longer than"),
        (Some(now), Some(now), "not after"),
        (Some(now), Some(now - second), "not after"),
        (None, Some(now - 2 * hour), "not after"),
        (Some(now - hour - second), None, "in the past"),
        (Some(now - 30 * day), Some(now + day), "in the past"),
    ] {
        let err = window(nb, na).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{nb:?} {na:?}: {err}");
        assert!(err.detail.contains(expect), "{nb:?} {na:?}: {err}");
    }
}

/// The classic default profile and a 6-day one without OCSP URL.
fn two_profiles() -> Profiles {
    let classic = Profile {
        ocsp_url: Some("http://ocsp.example/".into()),
        ..Profile::default()
    };
    let shortlived = Profile {
        validity: Duration::from_secs(6 * 86_400),
        backdate: Duration::from_secs(3600),
        ocsp_url: None,
        ..Profile::default()
    };
    Profiles::new(
        "classic".into(),
        BTreeMap::from([
            ("classic".to_owned(), classic),
            ("shortlived".to_owned(), shortlived),
        ]),
    )
    .unwrap()
}

fn has_aia(cert: &X509Certificate<'_>) -> bool {
    cert.get_extension_unique(&x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS)
        .unwrap()
        .is_some()
}

fn lifetime_seconds(cert: &X509Certificate<'_>) -> i64 {
    cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp() + 1
}

#[tokio::test]
async fn empty_profile_name_issues_under_the_default_profile() {
    let (issuer, _) = test_issuer();
    let (ca, _) = ca_with_profiles(issuer, two_profiles());
    let key = KeyPair::generate().unwrap();
    for name in ["", "classic"] {
        let issued = ca
            .issue_certificate(IssueRequest {
                profile: name.into(),
                ..request(csr(&key), vec![Identifier::dns("a.example")])
            })
            .await
            .unwrap();
        let leaf = parse(&issued.der);
        assert_eq!(lifetime_seconds(&leaf), 90 * 86_400, "{name:?}");
        assert!(has_aia(&leaf), "{name:?}");
    }
}

#[tokio::test]
async fn a_named_profile_sets_validity_and_extensions() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with_profiles(issuer, two_profiles());
    let key = KeyPair::generate().unwrap();
    let issued = ca
        .issue_certificate(IssueRequest {
            profile: "shortlived".into(),
            ..request(csr(&key), vec![Identifier::dns("a.example")])
        })
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    assert_eq!(lifetime_seconds(&leaf), 6 * 86_400);
    assert_eq!(
        leaf.validity().not_before.timestamp(),
        fixed_now().unix_timestamp() - 3600
    );
    assert!(!has_aia(&leaf), "the short-lived profile has no OCSP URL");
    let Call::Certificate(record) = &storage.calls()[2] else {
        panic!("expected a certificate record");
    };
    assert_eq!(
        record.expires_at.unix_timestamp(),
        leaf.validity().not_after.timestamp()
    );
}

#[tokio::test]
async fn unknown_profile_is_refused_before_anything_is_recorded() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with_profiles(issuer, two_profiles());
    let key = KeyPair::generate().unwrap();
    for name in ["tlsserver", "Classic", " classic"] {
        let err = ca
            .issue_certificate(IssueRequest {
                profile: name.into(),
                ..request(csr(&key), vec![Identifier::dns("a.example")])
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidProfile, "{name:?}: {err}");
    }
    assert!(storage.calls().is_empty());
}

#[tokio::test]
async fn requested_window_is_honoured_exactly() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with_profiles(issuer, two_profiles());
    let key = KeyPair::generate().unwrap();
    let not_before = fixed_now() + time::Duration::hours(2);
    let not_after = fixed_now() + time::Duration::days(3) + time::Duration::seconds(17);
    let issued = ca
        .issue_certificate(IssueRequest {
            profile: "shortlived".into(),
            not_before: Some(not_before),
            not_after: Some(not_after),
            ..request(csr(&key), vec![Identifier::dns("a.example")])
        })
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    assert_eq!(
        leaf.validity().not_before.timestamp(),
        not_before.unix_timestamp()
    );
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        not_after.unix_timestamp()
    );
    let Call::Certificate(record) = &storage.calls()[2] else {
        panic!("expected a certificate record");
    };
    assert_eq!(record.issued_at, not_before);
    assert_eq!(record.expires_at, not_after);
}

#[tokio::test]
async fn over_long_window_is_refused_with_nothing_signed() {
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with_profiles(issuer, two_profiles());
    let key = KeyPair::generate().unwrap();
    // Fine for the 90-day default profile, one second too long for the 6-day one.
    let not_before = fixed_now();
    let not_after = not_before + time::Duration::days(6);
    let err = ca
        .issue_certificate(IssueRequest {
            profile: "shortlived".into(),
            not_before: Some(not_before),
            not_after: Some(not_after),
            ..request(csr(&key), vec![Identifier::dns("a.example")])
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed, "{err}");
    assert!(err.detail.contains("longer than"), "{err}");
    // Backdated beyond the profile's hour, and reversed, are refused too.
    for (nb, na) in [
        (fixed_now() - time::Duration::hours(2), fixed_now()),
        (fixed_now() + time::Duration::days(1), fixed_now()),
    ] {
        let err = ca
            .issue_certificate(IssueRequest {
                not_before: Some(nb),
                not_after: Some(na),
                ..request(csr(&key), vec![Identifier::dns("a.example")])
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{err}");
    }
    assert!(storage.calls().is_empty(), "{:?}", storage.calls());

    // The same window under the default profile is issued.
    let issued = ca
        .issue_certificate(IssueRequest {
            not_before: Some(not_before),
            not_after: Some(not_after),
            ..request(csr(&key), vec![Identifier::dns("a.example")])
        })
        .await
        .unwrap();
    assert_eq!(
        parse(&issued.der).validity().not_after.timestamp(),
        not_after.unix_timestamp()
    );
}

#[test]
fn profiles_need_their_default() {
    let err = Profiles::new(
        "missing".into(),
        BTreeMap::from([("classic".to_owned(), Profile::default())]),
    )
    .unwrap_err();
    assert!(err.detail.contains("missing"), "{err}");
    let profiles = two_profiles();
    assert_eq!(profiles.default_name(), "classic");
    assert_eq!(profiles.get("").unwrap().0, "classic");
    assert_eq!(profiles.get("shortlived").unwrap().0, "shortlived");
    assert_eq!(
        profiles.get("nope").unwrap_err().kind,
        ErrorKind::InvalidProfile
    );
}

/// A DNS name of 79 octets: too long for a commonName, fine for a dNSName.
fn long_name(first: char) -> String {
    format!(
        "{}.{}.example",
        first.to_string().repeat(40),
        "b".repeat(30)
    )
}

/// The subject's commonNames, as text.
fn common_names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .collect()
}

/// Lints a certificate as the CA does before signing.
fn lint_errors(cert: &X509Certificate<'_>, profile: &Profile) -> Vec<lint::LintError> {
    lint::lint_with(cert, &lint::Context::for_profile(profile))
}

#[tokio::test]
async fn a_common_name_profile_puts_the_first_dns_name_that_fits_in_the_subject() {
    let profile = Profile {
        common_name: true,
        ..dns_and_ip()
    };
    let too_long = long_name('a');
    for (key, identifiers, expected) in [
        (
            KeyPair::generate().unwrap(),
            vec![
                Identifier::ip("192.0.2.1"),
                Identifier::dns("c.example"),
                Identifier::dns("b.example"),
                Identifier::dns("c.example"),
            ],
            "b.example",
        ),
        // The first name in SAN order is over 64 octets: the next one is taken.
        (
            KeyPair::from_pem(RSA_KEY_A).unwrap(),
            vec![Identifier::dns("z.example"), Identifier::dns(&too_long)],
            "z.example",
        ),
        // An IP address never becomes the commonName.
        (
            KeyPair::generate().unwrap(),
            vec![
                Identifier::ip("192.0.2.1"),
                Identifier::dns("*.example.org"),
            ],
            "*.example.org",
        ),
    ] {
        let (issuer, _) = test_issuer();
        let (ca, storage) = ca_with(issuer, profile.clone());
        let issued = ca
            .issue_certificate(request(csr(&key), identifiers.clone()))
            .await
            .unwrap();
        let leaf = parse(&issued.der);
        assert_eq!(common_names(&leaf), [expected], "{identifiers:?}");
        // One RDN holding the commonName alone.
        assert_eq!(leaf.subject().iter().count(), 1);
        assert_eq!(leaf.subject().iter_attributes().count(), 1);
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert!(
            !san.critical,
            "SAN must not be critical with a non-empty subject"
        );
        assert!(
            san.value
                .general_names
                .contains(&X509GeneralName::DNSName(expected))
        );
        assert_eq!(lint_errors(&leaf, &profile), [], "{identifiers:?}");
        let calls = storage.calls();
        let Call::Precertificate(_, pre_der, _) = &calls[1] else {
            panic!("expected a precertificate, got {calls:?}");
        };
        assert_eq!(common_names(&parse(pre_der)), [expected]);
    }
}

#[tokio::test]
async fn the_common_name_is_left_out_when_no_dns_name_fits() {
    let profile = Profile {
        common_name: true,
        ..dns_and_ip()
    };
    let (issuer, _) = test_issuer();
    let (ca, _) = ca_with(issuer, profile.clone());
    let key = KeyPair::generate().unwrap();
    let names = [long_name('a'), long_name('c')];
    assert!(names.iter().all(|name| name.len() > MAX_COMMON_NAME_LEN));
    let issued = ca
        .issue_certificate(request(
            csr(&key),
            vec![
                Identifier::dns(&names[0]),
                Identifier::dns(&names[1]),
                Identifier::ip("192.0.2.1"),
            ],
        ))
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    assert_eq!(leaf.subject().iter().count(), 0);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "SAN must be critical with an empty subject");
    assert_eq!(san.value.general_names.len(), 3);
    assert_eq!(lint_errors(&leaf, &profile), []);
}

#[tokio::test]
async fn without_key_encipherment_rsa_keys_get_digital_signature_only() {
    let profile = Profile {
        key_encipherment: false,
        ..Profile::default()
    };
    for (key, is_rsa) in [
        (KeyPair::from_pem(RSA_KEY_A).unwrap(), true),
        (KeyPair::generate().unwrap(), false),
    ] {
        let (issuer, _) = test_rsa_issuer();
        let (ca, _) = ca_with(issuer, profile.clone());
        let issued = ca
            .issue_certificate(request(csr(&key), vec![Identifier::dns("rsa.example")]))
            .await
            .unwrap();
        let leaf = parse(&issued.der);
        assert_eq!(
            leaf.public_key().algorithm.algorithm == OID_PKCS1_RSAENCRYPTION,
            is_rsa
        );
        let ku = leaf.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(
            ku.value.digital_signature() && ku.value.flags.count_ones() == 1,
            "digitalSignature alone: {}",
            ku.value
        );
        assert_eq!(lint_errors(&leaf, &profile), []);
    }
}

#[tokio::test]
async fn an_identifier_type_the_profile_does_not_allow_is_refused_before_anything_is_recorded() {
    let logs = CapturedLogs::start();
    let ip_only = Profile {
        identifier_types: vec![IdentifierType::Ip],
        ..Profile::default()
    };
    let profiles = Profiles::new(
        "classic".into(),
        BTreeMap::from([
            ("classic".to_owned(), Profile::default()),
            ("iponly".to_owned(), ip_only),
        ]),
    )
    .unwrap();
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with_profiles(issuer, profiles);
    let key = KeyPair::generate().unwrap();
    for (profile, identifiers, refused) in [
        (
            "",
            vec![
                Identifier::dns("a.example"),
                Identifier::ip("192.0.2.1"),
                Identifier::ip("2001:db8::1"),
            ],
            vec![Identifier::ip("192.0.2.1"), Identifier::ip("2001:db8::1")],
        ),
        (
            "iponly",
            vec![Identifier::ip("192.0.2.1"), Identifier::dns("a.example")],
            vec![Identifier::dns("a.example")],
        ),
    ] {
        let err = ca
            .issue_certificate(IssueRequest {
                profile: profile.into(),
                ..request(csr(&key), identifiers.clone())
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier, "{profile}: {err}");
        assert!(err.detail.contains("does not issue for"), "{err}");
        let subproblems: Vec<Identifier> = err
            .subproblems
            .iter()
            .map(|sub| {
                assert_eq!(sub.kind, ErrorKind::RejectedIdentifier);
                sub.identifier.clone()
            })
            .collect();
        assert_eq!(subproblems, refused, "{profile}");
    }
    assert!(storage.calls().is_empty(), "{:?}", storage.calls());
    assert_eq!(ca.issuer().signatures(), 0);
    let refusals = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("refused by the profile"))
        .count();
    assert_eq!(refusals, 2, "{:?}", logs.lines());

    // The IP-only profile issues for an IP address.
    let issued = ca
        .issue_certificate(IssueRequest {
            profile: "iponly".into(),
            ..request(csr(&key), vec![Identifier::ip("192.0.2.1")])
        })
        .await
        .unwrap();
    assert!(parse(&issued.der).subject_alternative_name().is_ok());
}

#[tokio::test]
async fn more_names_than_max_names_are_refused_before_anything_is_recorded() {
    let profile = Profile {
        max_names: 2,
        ..Profile::default()
    };
    let (issuer, _) = test_issuer();
    let (ca, storage) = ca_with(issuer, profile);
    let key = KeyPair::generate().unwrap();
    let err = ca
        .issue_certificate(request(
            csr(&key),
            vec![
                Identifier::dns("a.example"),
                Identifier::dns("b.example"),
                Identifier::dns("c.example"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed, "{err}");
    assert!(
        err.detail
            .contains("at most 2 identifiers, the request has 3"),
        "{err}"
    );
    assert!(storage.calls().is_empty(), "{:?}", storage.calls());
    assert_eq!(ca.issuer().signatures(), 0);

    // Repeats count once, as in the subjectAltName.
    let issued = ca
        .issue_certificate(request(
            csr(&key),
            vec![
                Identifier::dns("b.example"),
                Identifier::dns("a.example"),
                Identifier::dns("b.example"),
            ],
        ))
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names.len(), 2);
}

/// The shard of `serial` computed apart from [`crate::crl_shard`]: the serial as a
/// big integer, modulo `shards`.
fn bigint_shard(serial: &Serial, shards: u32) -> u32 {
    let rest = x509_parser::num_bigint::BigUint::from_bytes_be(serial.as_bytes())
        % x509_parser::num_bigint::BigUint::from(shards);
    u32::try_from(rest).unwrap()
}

/// With a CRL URL base and seven shards, each certificate names the URL of its
/// serial's shard, which is recorded with its precertificate; the leaves still
/// pass every lint (an http:// CRL distribution point).
#[tokio::test]
async fn the_crl_distribution_point_names_the_serials_shard() {
    let (ecdsa, _) = test_issuer();
    let ecdsa = ecdsa
        .with_crl_url_base("http://crl.example/ecdsa/")
        .unwrap();
    let (rsa, _) = test_rsa_issuer();
    let rsa = rsa.with_crl_url_base("http://crl.example/rsa/").unwrap();
    let (ca, storage) = ca_with(ecdsa, Profile::default());
    let ca = ca
        .with_issuer(rsa)
        .with_crl(NonZeroU32::new(7).unwrap(), Duration::from_secs(86_400));
    assert_eq!(ca.crl_shards().get(), 7);
    let ecdsa_key = KeyPair::generate().unwrap();
    let rsa_key = KeyPair::from_pem(RSA_KEY_A).unwrap();
    let mut shards = HashSet::new();
    for round in 0..12 {
        let (key, issuer, base) = if round % 3 == 0 {
            (&rsa_key, &ca.issuers()[1], "http://crl.example/rsa/")
        } else {
            (&ecdsa_key, &ca.issuers()[0], "http://crl.example/ecdsa/")
        };
        let issued = ca
            .issue_certificate(request(csr(key), vec![Identifier::dns("a.example")]))
            .await
            .unwrap();
        let leaf = parse(&issued.der);
        let shard = bigint_shard(&issued.serial, 7);
        shards.insert(shard);
        assert_eq!(crate::crl_shard(&issued.serial, ca.crl_shards()), shard);
        let url = format!("{base}{shard}.crl");
        assert_eq!(crl_distribution_points(&leaf), Some(vec![url.clone()]));
        assert_eq!(issuer.crl_url(shard), Some(url));
        leaf.verify_signature(Some(parse(issuer.cert_der()).public_key()))
            .unwrap();
        let calls = storage.calls();
        let Call::Precertificate(serial, _, placement) = &calls[calls.len() - 2] else {
            panic!("expected a precertificate, got {calls:?}");
        };
        assert_eq!(serial, &issued.serial);
        assert_eq!(
            placement,
            &CrlPlacement {
                issuer_key_hash: issuer.key_hash().to_vec(),
                shard: Some(shard),
            }
        );
    }
    assert!(shards.len() > 1, "twelve serials all on shard {shards:?}");
}

/// The placement of given serials, a high first octet among them, with and
/// without a CRL URL base.
#[test]
fn placements_follow_the_serial_and_the_issuer() {
    let (with_base, _) = test_issuer();
    let with_base = with_base
        .with_crl_url_base("http://crl.example/e1/")
        .unwrap();
    let (without_base, _) = test_rsa_issuer();
    let (ca, _) = ca_with(with_base, Profile::default());
    let ca = ca
        .with_issuer(without_base)
        .with_crl(NonZeroU32::new(128).unwrap(), Duration::from_secs(86_400));
    for (serial, shard) in [
        ("01", 1),
        ("7f", 127),
        ("80", 0),
        ("0100", 0),
        ("0181", 1),
        // 0xff01 = 65281 = 510 * 128 + 1
        ("ff01", 1),
        ("ffffffffffffffffffffffffffffffffffffffff", 127),
        ("7a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d", 0x2d),
    ] {
        let serial: Serial = serial.parse().unwrap();
        assert_eq!(bigint_shard(&serial, 128), shard, "{serial}");
        let (placement, url) = ca.crl_placement(&ca.issuers()[0], &serial);
        assert_eq!(
            placement,
            CrlPlacement {
                issuer_key_hash: ca.issuers()[0].key_hash().to_vec(),
                shard: Some(shard),
            },
            "{serial}"
        );
        assert_eq!(url, Some(format!("http://crl.example/e1/{shard}.crl")));
        let (placement, url) = ca.crl_placement(&ca.issuers()[1], &serial);
        assert_eq!(
            placement,
            CrlPlacement {
                issuer_key_hash: ca.issuers()[1].key_hash().to_vec(),
                shard: None,
            },
            "{serial}"
        );
        assert_eq!(url, None);
    }
}
