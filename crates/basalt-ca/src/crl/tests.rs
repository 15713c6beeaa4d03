use std::sync::Arc;
use std::time::Duration;

use basalt_core::AccountId;
use basalt_core::CertificateAuthority;
use basalt_core::ErrorKind;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::OrderId;
use basalt_core::RevocationSigner;
use x509_parser::num_bigint::BigUint;
use x509_parser::oid_registry::OID_PKCS1_SHA256WITHRSA;
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256;
use x509_parser::oid_registry::OID_X509_EXT_CRL_NUMBER;
use x509_parser::revocation_list::RevokedCertificate;

use super::*;
use crate::Profiles;
use crate::pki;
use crate::test_support::CapturedLogs;
use crate::test_support::FakeStorage;
use crate::test_support::fixed_now;
use crate::test_support::test_issuer;
use crate::test_support::test_rsa_issuer;

const ECDSA_BASE: &str = "http://crl.example/ecdsa/";
const RSA_BASE: &str = "http://crl.example/rsa/";

/// A CA with an ECDSA issuer (first) and an RSA issuer, both publishing CRLs, four
/// shards and a three-day lifetime.
fn ca() -> Ca {
    let (ecdsa, _) = test_issuer();
    let (rsa, _) = test_rsa_issuer();
    Ca::new(
        ecdsa.with_crl_url_base(ECDSA_BASE).unwrap(),
        Profiles::default(),
        Arc::new(FakeStorage::default()),
        Arc::new(FixedClock::new(fixed_now())),
    )
    .with_issuer(rsa.with_crl_url_base(RSA_BASE).unwrap())
    .with_crl(NonZeroU32::new(4).unwrap(), Duration::from_secs(3 * 86_400))
}

fn serial(hex: &str) -> Serial {
    hex.parse().unwrap()
}

fn entry(serial_hex: &str, reason: RevocationReason, hours_ago: i64) -> RevokedEntry {
    RevokedEntry {
        serial: serial(serial_hex),
        revoked_at: fixed_now() - time::Duration::hours(hours_ago),
        reason,
    }
}

/// thisUpdate with a fraction of a second, which only the CRL number keeps.
fn this_update() -> OffsetDateTime {
    fixed_now() + time::Duration::nanoseconds(123_456_789)
}

fn request(issuer: &Issuer, shard: u32, entries: Vec<RevokedEntry>) -> CrlRequest {
    CrlRequest {
        issuer_key_hash: issuer.key_hash().to_vec(),
        shard,
        this_update: this_update(),
        entries,
    }
}

fn parse(der: &[u8]) -> CertificateRevocationList<'_> {
    let (rest, crl) = CertificateRevocationList::from_der(der).unwrap();
    assert!(rest.is_empty());
    crl
}

fn number(crl: &CertificateRevocationList<'_>) -> BigUint {
    crl.crl_number().unwrap().clone()
}

fn listed_serial(revoked: &RevokedCertificate<'_>) -> Serial {
    Serial::from_bytes(&revoked.serial().to_bytes_be()).unwrap()
}

/// The issuingDistributionPoint's URIs, whether it is critical, and whether it
/// is scoped to user certificates.
fn idp(crl: &CertificateRevocationList<'_>) -> (Vec<String>, bool, bool) {
    crl.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp) => {
                let Some(DistributionPointName::FullName(names)) = &idp.distribution_point else {
                    panic!("no full name in {idp:?}");
                };
                let uris = names
                    .iter()
                    .map(|name| match name {
                        GeneralName::URI(uri) => (*uri).to_owned(),
                        other => panic!("unexpected name {other:?}"),
                    })
                    .collect();
                Some((uris, ext.critical, idp.only_contains_user_certs))
            }
            _ => None,
        })
        .expect("an issuingDistributionPoint")
}

fn aki(crl: &CertificateRevocationList<'_>) -> Vec<u8> {
    crl.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
        .expect("an authorityKeyIdentifier")
}

/// Each issuer signs its own shard: version 2, its name, the two times, the
/// number, AKI, IDP, the entries by serial with reason codes but none for
/// unspecified, and a signature that verifies under its key.
#[tokio::test]
async fn ecdsa_and_rsa_issuers_sign_crls_that_verify() {
    let ca = ca();
    for (index, base, algorithm) in [
        (0, ECDSA_BASE, OID_SIG_ECDSA_WITH_SHA256),
        (1, RSA_BASE, OID_PKCS1_SHA256WITHRSA),
    ] {
        let issuer = &ca.issuers()[index];
        let entries = vec![
            entry("ff01", RevocationReason::KeyCompromise, 3),
            entry("0a", RevocationReason::Unspecified, 30),
            entry(
                "7f0102030405060708090a0b0c0d0e0f10111213",
                RevocationReason::Superseded,
                1,
            ),
            entry("0b", RevocationReason::PrivilegeWithdrawn, 2),
            entry("80", RevocationReason::CessationOfOperation, 4),
        ];
        let der = ca
            .generate_crl(request(issuer, 2, entries.clone()))
            .await
            .unwrap();
        let crl = parse(&der);
        let (_, issuer_cert) = X509Certificate::from_der(issuer.cert_der()).unwrap();
        crl.verify_signature(issuer_cert.public_key()).unwrap();
        assert_eq!(crl.signature_algorithm.algorithm, algorithm);
        assert_eq!(crl.version(), Some(X509Version::V2));
        assert_eq!(crl.issuer().as_raw(), issuer_cert.subject().as_raw());
        assert_eq!(crl.last_update().timestamp(), fixed_now().unix_timestamp());
        assert_eq!(
            crl.next_update().unwrap().timestamp(),
            fixed_now().unix_timestamp() + 3 * 86_400
        );
        assert_eq!(
            number(&crl),
            BigUint::from(u128::try_from(this_update().unix_timestamp_nanos()).unwrap())
        );
        assert_eq!(aki(&crl), issuer.subject_key_id());
        assert_eq!(
            idp(&crl),
            (vec![format!("{base}2.crl")], true, true),
            "{base}"
        );
        // By ascending serial, whatever the request's order.
        let listed: Vec<_> = crl
            .iter_revoked_certificates()
            .map(|revoked| {
                (
                    listed_serial(revoked).to_string(),
                    revoked.revocation_date.timestamp(),
                    revoked.reason_code().map(|(critical, code)| {
                        assert!(!critical);
                        code.0
                    }),
                )
            })
            .collect();
        let hours_ago = |hours: i64| fixed_now().unix_timestamp() - hours * 3600;
        assert_eq!(
            listed,
            [
                ("0a".to_owned(), hours_ago(30), None),
                ("0b".to_owned(), hours_ago(2), Some(9)),
                ("80".to_owned(), hours_ago(4), Some(5)),
                ("ff01".to_owned(), hours_ago(3), Some(1)),
                (
                    "7f0102030405060708090a0b0c0d0e0f10111213".to_owned(),
                    hours_ago(1),
                    Some(4)
                ),
            ]
        );
        // The unspecified entry has no extensions at all.
        let first = crl.iter_revoked_certificates().next().unwrap();
        assert!(first.extensions().is_empty());
        assert_eq!(issuer.signatures(), 1, "{base}");
    }
}

/// A shard without revocations has no revokedCertificates, and still verifies.
#[tokio::test]
async fn an_empty_shard_verifies() {
    let ca = ca();
    let issuer = &ca.issuers()[1];
    let der = ca.generate_crl(request(issuer, 0, vec![])).await.unwrap();
    let crl = parse(&der);
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    assert!(crl.tbs_cert_list.revoked_certificates.is_empty());
    let (_, issuer_cert) = X509Certificate::from_der(issuer.cert_der()).unwrap();
    crl.verify_signature(issuer_cert.public_key()).unwrap();
    assert_eq!(idp(&crl).0, [format!("{RSA_BASE}0.crl")]);
}

/// The CRL of the shard a certificate was placed on names, in its
/// issuingDistributionPoint, exactly that certificate's CRL distribution point,
/// and lists it.
#[tokio::test]
async fn the_idp_is_the_cdp_of_the_certificates_on_the_shard() {
    let ca = ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    for _ in 0..3 {
        let issued = ca
            .issue_certificate(IssueRequest {
                csr_der: csr.clone(),
                account_id: AccountId(1),
                order_id: OrderId(2),
                identifiers: vec![Identifier::dns("a.example")],
                profile: String::new(),
                not_before: None,
                not_after: None,
            })
            .await
            .unwrap();
        let (_, leaf) = X509Certificate::from_der(&issued.der).unwrap();
        let cdp = leaf
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    match &points.points[0].distribution_point {
                        Some(DistributionPointName::FullName(names)) => Some(names.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .expect("a CRL distribution point");
        let [GeneralName::URI(cdp)] = cdp.as_slice() else {
            panic!("one URI, not {cdp:?}");
        };
        let shard = crl_shard(&issued.serial, ca.crl_shards());
        let der = ca
            .generate_crl(request(
                ca.issuer(),
                shard,
                vec![RevokedEntry {
                    serial: issued.serial.clone(),
                    revoked_at: fixed_now(),
                    reason: RevocationReason::KeyCompromise,
                }],
            ))
            .await
            .unwrap();
        let crl = parse(&der);
        assert_eq!(idp(&crl).0, [(*cdp).to_owned()]);
        let listed: Vec<_> = crl.iter_revoked_certificates().map(listed_serial).collect();
        assert_eq!(listed, std::slice::from_ref(&issued.serial));
    }
}

/// Later thisUpdates get greater CRL numbers, down to the nanosecond, and the
/// number needs no state: the same thisUpdate gives the same number.
#[tokio::test]
async fn crl_numbers_increase_with_this_update() {
    let ca = ca();
    let issuer = ca.issuer();
    let mut last = None;
    for offset in [
        time::Duration::ZERO,
        time::Duration::nanoseconds(1),
        time::Duration::seconds(1),
        time::Duration::hours(6),
        time::Duration::days(400),
    ] {
        let der = ca
            .generate_crl(CrlRequest {
                this_update: this_update() + offset,
                ..request(issuer, 3, vec![])
            })
            .await
            .unwrap();
        let number = number(&parse(&der));
        if let Some(last) = &last {
            assert!(&number > last, "{number} after {last}");
        }
        last = Some(number);
    }
    let again = ca.generate_crl(request(issuer, 3, vec![])).await.unwrap();
    assert_eq!(
        number(&parse(&again)),
        BigUint::from(u128::try_from(this_update().unix_timestamp_nanos()).unwrap())
    );
    // At the epoch itself the number is zero, still a valid INTEGER.
    assert_eq!(crl_number(OffsetDateTime::UNIX_EPOCH).unwrap(), [0]);
    assert_eq!(decimal(&[0]), "0");
    assert_eq!(decimal(&[1, 0]), "256");
}

/// Unknown issuers, shards out of range, issuers without a CRL URL base, serials
/// listed twice and times before 1970 are refused, and nothing is signed.
#[tokio::test]
async fn bad_requests_are_refused_before_signing() {
    let (ecdsa, _) = test_issuer();
    let (rsa, _) = test_rsa_issuer();
    let ca = Ca::new(
        ecdsa.with_crl_url_base(ECDSA_BASE).unwrap(),
        Profiles::default(),
        Arc::new(FakeStorage::default()),
        Arc::new(FixedClock::new(fixed_now())),
    )
    .with_issuer(rsa)
    .with_crl(NonZeroU32::new(3).unwrap(), Duration::from_secs(86_400));
    let (with_base, without_base) = (&ca.issuers()[0], &ca.issuers()[1]);
    let twice = vec![
        entry("0a", RevocationReason::KeyCompromise, 1),
        entry("0b", RevocationReason::Unspecified, 1),
        entry("0a", RevocationReason::Superseded, 2),
    ];
    for (request, expected) in [
        (
            CrlRequest {
                issuer_key_hash: vec![0xab; 20],
                ..request(with_base, 0, vec![])
            },
            format!("the CA has no issuer whose key hash is {}", "ab".repeat(20)),
        ),
        (
            request(with_base, 3, vec![]),
            "CRL shard 3 is out of range: crl.shards is 3, so shards are 0 to 2".to_owned(),
        ),
        (
            request(with_base, u32::MAX, vec![]),
            "crl.shards is 3".to_owned(),
        ),
        (
            request(without_base, 0, vec![]),
            format!(
                "the issuer whose key hash is {} has no crl_url_base",
                hex(without_base.key_hash())
            ),
        ),
        (
            request(with_base, 1, twice),
            "serial 0a is listed twice".to_owned(),
        ),
        (
            CrlRequest {
                this_update: OffsetDateTime::UNIX_EPOCH - time::Duration::nanoseconds(1),
                ..request(with_base, 1, vec![])
            },
            "is before 1970".to_owned(),
        ),
    ] {
        let err = ca.generate_crl(request).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{err}");
        assert!(err.detail.contains(&expected), "{expected:?} in {err}");
    }
    assert_eq!((with_base.signatures(), without_base.signatures()), (0, 0));
}

/// The checks a signed CRL must pass do fail on a CRL that is not what was asked
/// for, or whose signature was altered.
#[tokio::test]
async fn the_checks_catch_a_wrong_crl() {
    let ca = ca();
    let issuer = ca.issuer();
    let entries = vec![entry("0a", RevocationReason::KeyCompromise, 1)];
    let der = ca
        .generate_crl(request(issuer, 1, entries.clone()))
        .await
        .unwrap();
    let number = crl_number(this_update()).unwrap();
    let this = this_update();
    let next = this + time::Duration::days(3);
    let url = format!("{ECDSA_BASE}1.crl");
    let expected = ExpectedCrl {
        url: &url,
        number: &number,
        this_update: this,
        next_update: next,
        entries: &entries,
    };
    check_crl(issuer, &der, &expected).unwrap();
    let other_url = format!("{ECDSA_BASE}2.crl");
    let other_number = crl_number(this + time::Duration::nanoseconds(1)).unwrap();
    let other_entries = vec![entry("0a", RevocationReason::Superseded, 1)];
    let two_entries = vec![
        entry("0a", RevocationReason::KeyCompromise, 1),
        entry("0b", RevocationReason::KeyCompromise, 1),
    ];
    for (wrong, complaint) in [
        (
            ExpectedCrl {
                url: &other_url,
                ..expected
            },
            "issuingDistributionPoint",
        ),
        (
            ExpectedCrl {
                number: &other_number,
                ..expected
            },
            "CRL number",
        ),
        (
            ExpectedCrl {
                next_update: next + time::Duration::SECOND,
                ..expected
            },
            "nextUpdate",
        ),
        (
            ExpectedCrl {
                this_update: this - time::Duration::SECOND,
                ..expected
            },
            "thisUpdate",
        ),
        (
            ExpectedCrl {
                entries: &other_entries,
                ..expected
            },
            "reasonCode",
        ),
        (
            ExpectedCrl {
                entries: &two_entries,
                ..expected
            },
            "lists 1 certificates, not 2",
        ),
    ] {
        let err = check_crl(issuer, &der, &wrong).unwrap_err();
        assert!(err.contains(complaint), "{complaint:?} in {err}");
    }
    // Another issuer's CRL: wrong name (and key).
    let rsa_der = ca
        .generate_crl(request(&ca.issuers()[1], 1, entries.clone()))
        .await
        .unwrap();
    let err = check_crl(issuer, &rsa_der, &expected).unwrap_err();
    assert!(err.contains("issuer"), "{err}");
    // One bit of the signature flipped.
    let mut tampered = der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = check_crl(issuer, &tampered, &expected).unwrap_err();
    assert!(
        err.contains("signature") || err.contains("cannot parse"),
        "{err}"
    );
    // The CRL number is not critical (RFC 5280 §5.2.3).
    assert!(
        CertificateRevocationList::from_der(&der)
            .unwrap()
            .1
            .extensions()
            .iter()
            .any(|ext| ext.oid == OID_X509_EXT_CRL_NUMBER && !ext.critical)
    );
}

/// Every CRL signed is an audit event naming the issuer, shard, number and entry
/// count.
#[tokio::test]
async fn signing_a_crl_is_an_audit_event() {
    let logs = CapturedLogs::start();
    let ca = ca();
    let issuer = &ca.issuers()[1];
    ca.generate_crl(request(
        issuer,
        2,
        vec![
            entry("0a", RevocationReason::KeyCompromise, 1),
            entry("0b", RevocationReason::Unspecified, 1),
        ],
    ))
    .await
    .unwrap();
    let audit = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("audit") && line.contains("crl_signed"))
        .collect::<Vec<_>>();
    assert_eq!(audit.len(), 1, "{:?}", logs.lines());
    for expected in [
        "INFO".to_owned(),
        "CRL signed".to_owned(),
        format!("issuer_key_hash={}", hex(issuer.key_hash())),
        "shard=2".to_owned(),
        format!("number={}", this_update().unix_timestamp_nanos()),
        "entries=2".to_owned(),
        "this_update=2026-06-01T00:00:00.123456789Z".to_owned(),
        "next_update=2026-06-04T00:00:00.123456789Z".to_owned(),
    ] {
        assert!(audit[0].contains(&expected), "{expected:?} in {}", audit[0]);
    }
}

/// An issuer certificate whose keyUsage lacks cRLSign cannot be given a CRL URL
/// base; the dev and ceremony intermediates have it.
#[test]
fn an_issuer_without_crl_sign_publishes_no_crls() {
    let root = pki::new_root(pki::ROOT_CN, 1, 3650, fixed_now()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Basalt Test Intermediate Without cRLSign",
    );
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = fixed_now() - time::Duration::days(1);
    params.not_after = fixed_now() + time::Duration::days(365);
    let root_issuer = rcgen::Issuer::from_params(&root.params, &root.key);
    let cert = params.signed_by(&key, &root_issuer).unwrap();
    let issuer = Issuer::from_der(cert.der().to_vec(), key).unwrap();
    let err = issuer.with_crl_url_base(ECDSA_BASE).unwrap_err();
    assert!(err.detail.contains("lacks cRLSign"), "{err}");

    let (dev, _) = test_issuer();
    let dev = dev.with_crl_url_base(ECDSA_BASE).unwrap();
    assert_eq!(dev.crl_url_base(), Some(ECDSA_BASE));
    assert_eq!(
        dev.crl_url(17).as_deref(),
        Some("http://crl.example/ecdsa/17.crl")
    );
}

/// The shard is the serial modulo the shard count, the serial read as an
/// unsigned integer however long it is and whatever its first bit.
#[test]
fn shards_are_serials_modulo_the_shard_count() {
    let shards = |n: u32| NonZeroU32::new(n).unwrap();
    for (hex, count, shard) in [
        ("01", 1, 0),
        ("ffffffffffffffffffffffffffffffffffffffff", 1, 0),
        ("01", 7, 1),
        ("07", 7, 0),
        // 0xff01 = 65281 = 7 * 9325 + 6: the high bit does not make it negative.
        ("ff01", 7, 6),
        ("80", 3, 2),
        ("0100", 1000, 256),
        // 2^160 - 1 = 1461501637330902918203684832716283019655932542975.
        ("ffffffffffffffffffffffffffffffffffffffff", 1000, 975),
        ("ffffffffffffffffffffffffffffffffffffffff", u32::MAX, 0),
    ] {
        let serial = serial(hex);
        assert_eq!(
            crl_shard(&serial, shards(count)),
            shard,
            "{hex} mod {count}"
        );
        let big = BigUint::from_bytes_be(serial.as_bytes()) % BigUint::from(count);
        assert_eq!(big, BigUint::from(shard), "{hex} mod {count}");
    }
}
