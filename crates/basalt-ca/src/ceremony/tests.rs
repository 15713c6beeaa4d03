use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

use rcgen::Issuer;
use rcgen::KeyPair;
use x509_parser::extensions::DistributionPointName;
use x509_parser::extensions::GeneralName as ParsedGeneralName;

use super::*;
use crate::test_support::TempDir;

/// 2026-01-01T00:00:00Z: inside every validity period below.
const CHECK_AT: i64 = 1_767_225_600;

/// A directory where ceremonies write, and the helpers that run them.
struct Lab {
    dir: TempDir,
}

impl Lab {
    fn new() -> Self {
        Self {
            dir: TempDir::new(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn run(&self, kind: CeremonyKind, text: &str) -> Result<Summary, Error> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let config = self.path(&format!(
            "{kind}-{}.toml",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&config, text).unwrap();
        Ceremony::load(kind, &config)?.run()
    }

    /// A root named `name` with a key of type `alg`: `<name>.pem`, `<name>.key`.
    fn root(&self, name: &str, alg: &str) -> Summary {
        self.run(CeremonyKind::Root, &self.root_toml(name, alg))
            .unwrap()
    }

    fn root_toml(&self, name: &str, alg: &str) -> String {
        format!(
            r#"
            [new_key]
            algorithm = "{alg}"
            key = {key:?}

            [subject]
            common_name = "Test Root {name}"
            organization = "Basalt Tests"
            country = "XX"

            [validity]
            not_before = "2025-01-01T00:00:00Z"
            not_after = "2045-01-01T00:00:00Z"

            [outputs]
            certificate = {cert:?}
            public_key = {public:?}
            "#,
            key = self.path(&format!("{name}.key")),
            cert = self.path(&format!("{name}.pem")),
            public = self.path(&format!("{name}.pub.pem")),
        )
    }

    /// An intermediate `name` (new key of type `alg`) signed by `parent`.
    fn intermediate_toml(&self, parent: &str, name: &str, alg: &str) -> String {
        format!(
            r#"
            [parent]
            certificate = {parent_cert:?}
            key = {parent_key:?}

            [new_key]
            algorithm = "{alg}"
            key = {key:?}

            [subject]
            common_name = "Test Intermediate {name}"
            organization = "Basalt Tests"
            country = "XX"

            [validity]
            not_before = "2025-01-02T00:00:00Z"
            not_after = "2030-01-01T00:00:00Z"

            [extensions]
            crl_url = "http://crl.example.net/{parent}.crl"
            issuer_url = "http://issuer.example.net/{parent}.der"

            [outputs]
            certificate = {cert:?}
            "#,
            parent_cert = self.path(&format!("{parent}.pem")),
            parent_key = self.path(&format!("{parent}.key")),
            key = self.path(&format!("{name}.key")),
            cert = self.path(&format!("{name}.pem")),
        )
    }

    fn intermediate(&self, parent: &str, name: &str, alg: &str) -> Summary {
        self.run(
            CeremonyKind::Intermediate,
            &self.intermediate_toml(parent, name, alg),
        )
        .unwrap()
    }

    fn cross_sign_toml(&self, parent: &str, original: &str, out: &str) -> String {
        format!(
            r#"
            [parent]
            certificate = {parent_cert:?}
            key = {parent_key:?}

            [inputs]
            certificate = {original:?}

            [validity]
            not_before = "2025-02-01T00:00:00Z"
            not_after = "2029-01-01T00:00:00Z"

            [extensions]
            issuer_url = "http://issuer.example.net/{parent}.der"

            [outputs]
            certificate = {cert:?}
            "#,
            parent_cert = self.path(&format!("{parent}.pem")),
            parent_key = self.path(&format!("{parent}.key")),
            original = self.path(&format!("{original}.pem")),
            cert = self.path(&format!("{out}.pem")),
        )
    }

    /// A delegated OCSP signer `name` (new key of type `alg`) signed by `parent`,
    /// valid from `not_before` to `not_after`.
    fn ocsp_signer_toml(
        &self,
        parent: &str,
        name: &str,
        alg: &str,
        not_before: &str,
        not_after: &str,
    ) -> String {
        format!(
            r#"
            [parent]
            certificate = {parent_cert:?}
            key = {parent_key:?}

            [new_key]
            algorithm = "{alg}"
            key = {key:?}

            [subject]
            common_name = "Test OCSP Signer {name}"
            organization = "Basalt Tests"

            [validity]
            not_before = "{not_before}"
            not_after = "{not_after}"

            [outputs]
            certificate = {cert:?}
            public_key = {public:?}
            "#,
            parent_cert = self.path(&format!("{parent}.pem")),
            parent_key = self.path(&format!("{parent}.key")),
            key = self.path(&format!("{name}.key")),
            cert = self.path(&format!("{name}.pem")),
            public = self.path(&format!("{name}.pub.pem")),
        )
    }

    fn der(&self, name: &str) -> Vec<u8> {
        read_certificate("test", &self.path(&format!("{name}.pem"))).unwrap()
    }

    /// A leaf for `www.example.org` signed by `issuer`'s key, written as
    /// `<out>.pem`.
    fn leaf(&self, issuer: &str, out: &str) -> PathBuf {
        let key = CaKey::load(&KeySource::File(self.path(&format!("{issuer}.key")))).unwrap();
        let issuer = Issuer::from_ca_cert_der(&self.der(issuer).into(), key).unwrap();
        let mut params = CertificateParams::new(vec!["www.example.org".to_owned()]).unwrap();
        params.not_before = OffsetDateTime::from_unix_timestamp(CHECK_AT - 86_400).unwrap();
        params.not_after = OffsetDateTime::from_unix_timestamp(CHECK_AT + 86_400).unwrap();
        params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&leaf_key, &issuer).unwrap();
        let path = self.path(&format!("{out}.pem"));
        fs::write(&path, cert.pem()).unwrap();
        path
    }
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    parse_certificate("test", der).unwrap()
}

/// The subject's attributes in order, as (type OID, ASN.1 tag, value).
fn rdns(name: &X509Name<'_>) -> Vec<(String, Tag, String)> {
    name.iter()
        .map(|rdn| {
            assert_eq!(rdn.iter().count(), 1, "one attribute per RDN");
            let attr = rdn.iter().next().unwrap();
            (
                attr.attr_type().to_id_string(),
                attr.attr_value().header.tag(),
                attr.as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn policies(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.iter_extensions()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => Some(
                policies
                    .iter()
                    .map(|policy| policy.policy_id.to_id_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn crl_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.iter_extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let ParsedGeneralName::URI(uri) = name {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

fn ca_issuer_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.iter_extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for description in &aia.accessdescs {
                assert_eq!(
                    description.access_method.to_id_string(),
                    "1.3.6.1.5.5.7.48.2"
                );
                if let ParsedGeneralName::URI(uri) = description.access_location {
                    urls.push(uri.to_owned());
                }
            }
        }
    }
    urls
}

fn extension_oids(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .map(|ext| ext.oid.to_id_string())
        .collect()
}

/// `openssl verify -attime CHECK_AT -purpose <purpose> -CAfile root -untrusted
/// chain cert`.
fn openssl_verify_purpose(
    root: &Path,
    untrusted: &Path,
    cert: &Path,
    purpose: &str,
) -> (bool, String) {
    let output = Command::new("openssl")
        .arg("verify")
        .arg("-attime")
        .arg(CHECK_AT.to_string())
        .args(["-purpose", purpose])
        .arg("-CAfile")
        .arg(root)
        .arg("-untrusted")
        .arg(untrusted)
        .arg(cert)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && text.contains(": OK"), text)
}

/// `openssl verify -attime CHECK_AT -CAfile root [-untrusted chain] cert`. openssl
/// is on every development and CI machine (DESIGN.md), so its absence fails.
fn openssl_verify(root: &Path, untrusted: Option<&Path>, cert: &Path) -> (bool, String) {
    let mut command = Command::new("openssl");
    command
        .arg("verify")
        .arg("-attime")
        .arg(CHECK_AT.to_string())
        .arg("-CAfile")
        .arg(root);
    if let Some(untrusted) = untrusted {
        command.arg("-untrusted").arg(untrusted);
    }
    let output = command
        .arg(cert)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && text.contains(": OK"), text)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn root_ceremony_makes_a_self_signed_ca() {
    let lab = Lab::new();
    let summary = lab.root("root", "ecdsa-p384");
    let der = lab.der("root");
    let cert = parse(&der);

    assert_eq!(
        rdns(cert.subject()),
        [
            ("2.5.4.6".to_owned(), Tag::PrintableString, "XX".to_owned()),
            (
                "2.5.4.10".to_owned(),
                Tag::Utf8String,
                "Basalt Tests".to_owned()
            ),
            (
                "2.5.4.3".to_owned(),
                Tag::Utf8String,
                "Test Root root".to_owned()
            ),
        ]
    );
    assert_eq!(cert.issuer().as_raw(), cert.subject().as_raw());
    cert.verify_signature(None).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384"
    );
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(
        key_usage_purposes(ku.value),
        [KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
    );
    assert!(cert.extended_key_usage().unwrap().is_none());
    assert_eq!(subject_key_id(&cert).unwrap().len(), 20);
    assert!(authority_key_id(&cert).is_none());
    assert_eq!(cert.raw_serial().len(), 20);
    assert_eq!(cert.raw_serial()[0] & 0x80, 0, "a positive serial");
    assert_eq!(
        cert.validity().not_before.timestamp(),
        1_735_689_600,
        "2025-01-01T00:00:00Z"
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        2_366_841_600,
        "2045-01-01T00:00:00Z"
    );

    // The key written is the certificate's, owner-only; so is the public key file.
    let key = CaKey::load(&KeySource::File(lab.path("root.key"))).unwrap();
    assert_eq!(
        key.der_bytes(),
        cert.public_key().subject_public_key.data.as_ref()
    );
    #[cfg(unix)]
    assert_eq!(mode(&lab.path("root.key")), 0o600);
    let public = read_public_key(&lab.path("root.pub.pem")).unwrap();
    assert_eq!(public.der_bytes(), key.der_bytes());

    assert_eq!(summary.kind, CeremonyKind::Root);
    assert_eq!(summary.subject, "C=XX, O=Basalt Tests, CN=Test Root root");
    assert_eq!(summary.issuer, summary.subject);
    assert_eq!(summary.serial, hex(cert.raw_serial(), ""));
    assert_eq!(
        summary.fingerprint,
        hex(
            ring::digest::digest(&ring::digest::SHA256, &der).as_ref(),
            ":"
        )
        .to_uppercase()
    );
    assert_eq!(summary.fingerprint.len(), 32 * 3 - 1);
    assert_eq!(
        summary.outputs,
        [lab.path("root.pem"), lab.path("root.pub.pem")]
    );
    assert!(summary.key.contains("root.key") && summary.key.contains("ecdsa-p384, new"));
    let text = summary.to_string();
    for needle in [
        "root ceremony",
        "CN=Test Root root",
        "2045-01-01T00:00:00Z",
        &summary.fingerprint,
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }

    let (ok, text) = openssl_verify(&lab.path("root.pem"), None, &lab.path("root.pem"));
    assert!(ok, "{text}");
}

#[test]
fn intermediate_ceremony_makes_a_tls_subordinate_ca() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p256");
    let summary = lab.intermediate("root", "int", "ecdsa-p256");
    let (root_der, int_der) = (lab.der("root"), lab.der("int"));
    let (root, int) = (parse(&root_der), parse(&int_der));

    int.verify_signature(Some(root.public_key())).unwrap();
    assert_eq!(int.issuer().as_raw(), root.subject().as_raw());
    assert_eq!(authority_key_id(&int), subject_key_id(&root));
    assert_ne!(subject_key_id(&int), subject_key_id(&root));
    let bc = int.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint == Some(0));
    let ku = int.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(
        key_usage_purposes(ku.value),
        [
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign
        ]
    );
    let eku = int.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any && eku.other.is_empty());
    assert_eq!(policies(&int), ["2.23.140.1.2.1"]);
    assert_eq!(crl_urls(&int), ["http://crl.example.net/root.crl"]);
    assert_eq!(ca_issuer_urls(&int), ["http://issuer.example.net/root.der"]);
    let key = CaKey::load(&KeySource::File(lab.path("int.key"))).unwrap();
    assert_eq!(
        key.der_bytes(),
        int.public_key().subject_public_key.data.as_ref()
    );
    assert_eq!(summary.issuer, "C=XX, O=Basalt Tests, CN=Test Root root");
    assert_eq!(summary.outputs, [lab.path("int.pem")]);

    let leaf = lab.leaf("int", "leaf");
    let (ok, text) = openssl_verify(&lab.path("root.pem"), Some(&lab.path("int.pem")), &leaf);
    assert!(ok, "{text}");
    // Without the intermediate, the leaf does not chain.
    let (ok, text) = openssl_verify(&lab.path("root.pem"), None, &leaf);
    assert!(!ok, "{text}");
}

#[test]
fn rsa_and_ecdsa_keys_sign_each_other() {
    let lab = Lab::new();
    lab.root("rsa-root", "rsa-2048");
    lab.intermediate("rsa-root", "ecdsa-int", "ecdsa-p384");
    lab.root("ecdsa-root", "ecdsa-p256");
    lab.intermediate("ecdsa-root", "rsa-int", "rsa-2048");
    for (root, int, signature) in [
        ("rsa-root", "ecdsa-int", "1.2.840.113549.1.1.11"),
        ("ecdsa-root", "rsa-int", "1.2.840.10045.4.3.2"),
    ] {
        let int_der = lab.der(int);
        let cert = parse(&int_der);
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            signature,
            "{int}"
        );
        let leaf = lab.leaf(int, &format!("{int}-leaf"));
        let (ok, text) = openssl_verify(
            &lab.path(&format!("{root}.pem")),
            Some(&lab.path(&format!("{int}.pem"))),
            &leaf,
        );
        assert!(ok, "{int}: {text}");
    }
}

#[test]
fn an_intermediate_can_certify_a_key_made_before() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p256");
    // A key from an earlier ceremony, by its private key...
    let existing = lab.path("existing.key");
    CaKey::generate(&KeySource::File(existing.clone()), KeyAlgorithm::EcdsaP256).unwrap();
    let text = lab
        .intermediate_toml("root", "by-key", "ecdsa-p256")
        .replace(
            "[new_key]\n            algorithm = \"ecdsa-p256\"",
            "[existing_key]",
        )
        .replace(
            &format!("key = {:?}", lab.path("by-key.key")),
            &format!("key = {existing:?}"),
        );
    let summary = lab.run(CeremonyKind::Intermediate, &text).unwrap();
    assert!(summary.key.ends_with("(existing)"), "{}", summary.key);
    let key = CaKey::load(&KeySource::File(existing)).unwrap();
    let der = lab.der("by-key");
    assert_eq!(
        parse(&der).public_key().subject_public_key.data.as_ref(),
        key.der_bytes()
    );

    // ...or by its public key alone (the private key in another token).
    let public = lab.path("existing.pub.pem");
    fs::write(
        &public,
        der::pem::encode_string(
            "PUBLIC KEY",
            der::pem::LineEnding::LF,
            &key.subject_public_key_info(),
        )
        .unwrap(),
    )
    .unwrap();
    let text = text
        .replace(
            &format!("key = {:?}", lab.path("existing.key")),
            &format!("public_key = {public:?}"),
        )
        .replace("by-key.pem", "by-public-key.pem");
    let summary = lab.run(CeremonyKind::Intermediate, &text).unwrap();
    assert!(
        summary.key.contains("private key elsewhere"),
        "{}",
        summary.key
    );
    let der = lab.der("by-public-key");
    assert_eq!(
        parse(&der).public_key().subject_public_key.data.as_ref(),
        key.der_bytes()
    );
}

#[test]
fn cross_signing_keeps_the_subject_key_and_extensions() {
    let lab = Lab::new();
    lab.root("root-a", "ecdsa-p384");
    lab.intermediate("root-a", "int", "ecdsa-p256");
    lab.root("root-b", "rsa-2048");
    let summary = lab
        .run(
            CeremonyKind::CrossSign,
            &lab.cross_sign_toml("root-b", "int", "int-b"),
        )
        .unwrap();
    assert_eq!(summary.kind, CeremonyKind::CrossSign);
    assert_eq!(summary.outputs, [lab.path("int-b.pem")]);

    let (original_der, cross_der, root_b_der) =
        (lab.der("int"), lab.der("int-b"), lab.der("root-b"));
    let (original, cross, root_b) = (parse(&original_der), parse(&cross_der), parse(&root_b_der));
    assert_eq!(cross.subject().as_raw(), original.subject().as_raw());
    assert_eq!(cross.public_key().raw, original.public_key().raw);
    assert_eq!(subject_key_id(&cross), subject_key_id(&original));
    assert_ne!(cross.raw_serial(), original.raw_serial());
    assert_eq!(cross.raw_serial().len(), 20);
    assert_eq!(cross.issuer().as_raw(), root_b.subject().as_raw());
    assert_eq!(authority_key_id(&cross), subject_key_id(&root_b));
    cross.verify_signature(Some(root_b.public_key())).unwrap();
    assert_eq!(
        cross.validity().not_after.timestamp(),
        1_861_920_000,
        "2029-01-01T00:00:00Z"
    );
    // Every extension but the issuer's is the original's, byte for byte.
    let same = |cert: &X509Certificate<'_>| {
        let mut kept: Vec<(String, bool, Vec<u8>)> = cert
            .extensions()
            .iter()
            .filter(|ext| {
                ext.oid != OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
                    && ext.oid != OID_X509_EXT_CRL_DISTRIBUTION_POINTS
                    && ext.oid != OID_PKIX_AUTHORITY_INFO_ACCESS
            })
            .map(|ext| (ext.oid.to_id_string(), ext.critical, ext.value.to_vec()))
            .collect();
        kept.sort();
        kept
    };
    assert_eq!(same(&cross), same(&original));
    assert_eq!(policies(&cross), ["2.23.140.1.2.1"]);
    // The original's URLs point at root A: replaced by root B's, or dropped.
    assert!(crl_urls(&cross).is_empty());
    assert_eq!(
        ca_issuer_urls(&cross),
        ["http://issuer.example.net/root-b.der"]
    );
    assert!(extension_oids(&cross).contains(&"2.5.29.35".to_owned()));

    // A leaf of the intermediate verifies through both, and only through the
    // matching root.
    let leaf = lab.leaf("int", "leaf");
    let (root_a, root_b) = (lab.path("root-a.pem"), lab.path("root-b.pem"));
    let (int_a, int_b) = (lab.path("int.pem"), lab.path("int-b.pem"));
    assert!(openssl_verify(&root_a, Some(&int_a), &leaf).0);
    let (ok, text) = openssl_verify(&root_b, Some(&int_b), &leaf);
    assert!(ok, "{text}");
    assert!(!openssl_verify(&root_b, Some(&int_a), &leaf).0);
    assert!(!openssl_verify(&root_a, Some(&int_b), &leaf).0);
}

#[test]
fn crl_signer_ceremony_makes_a_non_ca_crl_signing_certificate() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p256");
    let text = format!(
        r#"
        [parent]
        certificate = {parent:?}
        key = {parent_key:?}

        [new_key]
        algorithm = "ecdsa-p256"
        key = {key:?}

        [subject]
        common_name = "Test CRL Signer"

        [validity]
        not_before = "2025-01-02T00:00:00Z"
        not_after = "2026-06-01T00:00:00Z"

        [outputs]
        certificate = {cert:?}
        "#,
        parent = lab.path("root.pem"),
        parent_key = lab.path("root.key"),
        key = lab.path("crl.key"),
        cert = lab.path("crl.pem"),
    );
    let summary = lab.run(CeremonyKind::CrlSigner, &text).unwrap();
    assert_eq!(summary.subject, "CN=Test CRL Signer");
    let (root_der, der) = (lab.der("root"), lab.der("crl"));
    let (root, cert) = (parse(&root_der), parse(&der));
    cert.verify_signature(Some(root.public_key())).unwrap();
    assert_eq!(authority_key_id(&cert), subject_key_id(&root));
    assert!(subject_key_id(&cert).is_some());
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(
        key_usage_purposes(ku.value),
        [KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign]
    );
    assert!(cert.extended_key_usage().unwrap().is_none());
    assert!(policies(&cert).is_empty());

    // Not a CA, so it cannot be the parent of anything.
    let err = lab
        .run(
            CeremonyKind::Intermediate,
            &lab.intermediate_toml("crl", "under-crl", "ecdsa-p256"),
        )
        .unwrap_err();
    assert!(err.detail.contains("is not a CA certificate"), "{err}");
    assert!(!lab.path("under-crl.key").exists());
}

/// The value of the extension `oid` (dotted), if the certificate has it.
fn extension<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> Option<(bool, &'a [u8])> {
    cert.extensions()
        .iter()
        .find(|ext| ext.oid.to_id_string() == oid)
        .map(|ext| (ext.critical, ext.value))
}

#[test]
fn ocsp_signer_ceremony_makes_a_delegated_responder_certificate() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p384");
    lab.intermediate("root", "int", "ecdsa-p256");
    for (name, alg, signature) in [
        ("ocsp-p256", "ecdsa-p256", "1.2.840.10045.4.3.2"),
        ("ocsp-rsa", "rsa-2048", "1.2.840.10045.4.3.2"),
    ] {
        let summary = lab
            .run(
                CeremonyKind::OcspSigner,
                &lab.ocsp_signer_toml(
                    "int",
                    name,
                    alg,
                    "2025-06-01T00:00:00Z",
                    "2026-06-02T00:00:00Z",
                ),
            )
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(summary.kind, CeremonyKind::OcspSigner);
        assert_eq!(
            summary.subject,
            format!("O=Basalt Tests, CN=Test OCSP Signer {name}")
        );
        assert_eq!(
            summary.issuer,
            "C=XX, O=Basalt Tests, CN=Test Intermediate int"
        );
        assert_eq!(
            summary.outputs,
            [
                lab.path(&format!("{name}.pem")),
                lab.path(&format!("{name}.pub.pem"))
            ]
        );
        assert!(
            summary.key.contains(&format!("{alg}, new")),
            "{}",
            summary.key
        );

        let (int_der, der) = (lab.der("int"), lab.der(name));
        let (int, cert) = (parse(&int_der), parse(&der));
        // Signed by the issuing intermediate, which it names by key identifier.
        cert.verify_signature(Some(int.public_key())).unwrap();
        assert_eq!(cert.issuer().as_raw(), int.subject().as_raw());
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            signature,
            "{name}: the intermediate's algorithm"
        );
        assert_eq!(authority_key_id(&cert), subject_key_id(&int));
        assert!(subject_key_id(&cert).is_some_and(|id| !id.is_empty()));
        assert_ne!(subject_key_id(&cert), subject_key_id(&int));
        // Not a CA.
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca && bc.value.path_len_constraint.is_none());
        // keyUsage digitalSignature alone, critical.
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert_eq!(
            key_usage_purposes(ku.value),
            [KeyUsagePurpose::DigitalSignature]
        );
        // extendedKeyUsage id-kp-OCSPSigning alone.
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.ocsp_signing && !eku.server_auth && !eku.client_auth && !eku.any);
        assert!(eku.other.is_empty());
        assert_eq!(
            extension(&cert, "2.5.29.37").map(|(_, value)| value),
            Some(
                &[
                    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09
                ][..]
            ),
            "SEQUENCE {{ id-kp-OCSPSigning }}"
        );
        // id-pkix-ocsp-nocheck, NULL, not critical.
        assert_eq!(
            extension(&cert, "1.3.6.1.5.5.7.48.1.5"),
            Some((false, &[0x05, 0x00][..]))
        );
        // No URLs, no policy.
        assert!(crl_urls(&cert).is_empty() && ca_issuer_urls(&cert).is_empty());
        assert!(policies(&cert).is_empty());
        assert_eq!(
            (
                cert.validity().not_before.timestamp(),
                cert.validity().not_after.timestamp()
            ),
            (1_748_736_000, 1_780_358_400),
            "2025-06-01 to 2026-06-02"
        );
        assert_eq!(cert.raw_serial().len(), 20);
        let key = CaKey::load(&KeySource::File(lab.path(&format!("{name}.key")))).unwrap();
        assert_eq!(
            key.der_bytes(),
            cert.public_key().subject_public_key.data.as_ref()
        );
        #[cfg(unix)]
        assert_eq!(mode(&lab.path(&format!("{name}.key"))), 0o600);

        // openssl takes it for an OCSP helper chaining to the root.
        let (ok, text) = openssl_verify_purpose(
            &lab.path("root.pem"),
            &lab.path("int.pem"),
            &lab.path(&format!("{name}.pem")),
            "ocsphelper",
        );
        assert!(ok, "{name}: {text}");
    }

    // Not a CA, so it cannot be the parent of anything.
    let err = lab
        .run(
            CeremonyKind::Intermediate,
            &lab.intermediate_toml("ocsp-p256", "under-ocsp", "ecdsa-p256"),
        )
        .unwrap_err();
    assert!(err.detail.contains("is not a CA certificate"), "{err}");
    assert!(!lab.path("under-ocsp.key").exists());
}

#[test]
fn ocsp_signer_validity_is_short_and_within_the_parent() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p256");
    lab.intermediate("root", "int", "ecdsa-p256");

    // More than 366 days: refused when the config is read, naming the field.
    let text = lab.ocsp_signer_toml(
        "int",
        "long",
        "ecdsa-p256",
        "2025-01-02T00:00:00Z",
        "2026-01-03T00:00:01Z",
    );
    let err = lab.run(CeremonyKind::OcspSigner, &text).unwrap_err();
    assert!(
        err.detail
            .contains("validity.not_after must be at most 366 days after validity.not_before"),
        "{err}"
    );
    assert!(!lab.path("long.key").exists());
    // 366 days exactly is a year with its leap day.
    let text = lab.ocsp_signer_toml(
        "int",
        "leap",
        "ecdsa-p256",
        "2027-03-01T00:00:00Z",
        "2028-03-01T00:00:00Z",
    );
    lab.run(CeremonyKind::OcspSigner, &text).unwrap();

    // Beyond the parent's notAfter (2030-01-01): refused before a key is made.
    let text = lab.ocsp_signer_toml(
        "int",
        "late",
        "ecdsa-p256",
        "2029-06-01T00:00:00Z",
        "2030-01-02T00:00:00Z",
    );
    let err = lab.run(CeremonyKind::OcspSigner, &text).unwrap_err();
    assert!(
        err.detail
            .contains("validity.not_after is after the parent certificate's notAfter"),
        "{err}"
    );
    assert!(!lab.path("late.key").exists() && !lab.path("late.pem").exists());

    // A parent that is not a CA.
    lab.run(
        CeremonyKind::OcspSigner,
        &lab.ocsp_signer_toml(
            "int",
            "signer",
            "ecdsa-p256",
            "2025-06-01T00:00:00Z",
            "2026-06-01T00:00:00Z",
        ),
    )
    .unwrap();
    let err = lab
        .run(
            CeremonyKind::OcspSigner,
            &lab.ocsp_signer_toml(
                "signer",
                "nested",
                "ecdsa-p256",
                "2025-06-01T00:00:00Z",
                "2026-06-01T00:00:00Z",
            ),
        )
        .unwrap_err();
    assert!(err.detail.contains("is not a CA certificate"), "{err}");
    assert!(!lab.path("nested.key").exists());
}

#[test]
fn ocsp_signer_configs_are_checked() {
    let text = "[parent]
certificate = \"/pki/int.pem\"
key = \"/keys/int.key\"
\
                [new_key]
algorithm = \"ecdsa-p256\"
key = \"/keys/ocsp.key\"
\
                [subject]
common_name = \"OCSP\"
\
                [validity]
not_before = \"2025-01-01T00:00:00Z\"
not_after = \"2026-01-01T00:00:00Z\"
\
                [outputs]
certificate = \"/pki/ocsp.pem\"
";
    let ceremony = Ceremony::parse(CeremonyKind::OcspSigner, text).unwrap();
    assert_eq!(ceremony.kind(), CeremonyKind::OcspSigner);
    assert_eq!(ceremony.outputs(), [Path::new("/pki/ocsp.pem")]);
    for (text, wanted) in [
        (
            format!("{text}[extensions]\ncrl_url = \"http://crl.example/1.crl\"\n"),
            "unknown field `extensions`",
        ),
        (
            text.replace(
                "[parent]\ncertificate = \"/pki/int.pem\"\nkey = \"/keys/int.key\"\n",
                "",
            ),
            "missing field `parent`",
        ),
        (
            text.replace("key = \"/keys/ocsp.key\"", ""),
            "new_key needs key (a PEM file) or pkcs11",
        ),
        (
            text.replace("key = \"/keys/int.key\"", ""),
            "parent needs key (a PEM file) or pkcs11",
        ),
        (text.replace("\"OCSP\"", "\"\""), "subject.common_name"),
        (
            text.replace("2026-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            "validity.not_after must be after validity.not_before",
        ),
        (
            text.replace("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            "validity.not_after must be at most 366 days",
        ),
        (
            text.replace("[new_key]", "[existing_key]"),
            "unknown field `existing_key`",
        ),
    ] {
        let err = parse_error(CeremonyKind::OcspSigner, &text);
        assert!(err.contains(wanted), "{wanted:?} not in: {err}\n{text}");
    }
}

#[test]
fn a_ceremony_never_overwrites_and_checks_its_parent_first() {
    let lab = Lab::new();
    lab.root("root", "ecdsa-p256");
    lab.root("other", "ecdsa-p256");

    // The certificate exists: refused before a key is made.
    let err = lab
        .run(
            CeremonyKind::Root,
            &lab.root_toml("root", "ecdsa-p256")
                .replace("root.key", "again.key"),
        )
        .unwrap_err();
    assert!(err.detail.contains("outputs.certificate"), "{err}");
    assert!(err.detail.contains("exists"), "{err}");
    assert!(!lab.path("again.key").exists());

    // The key exists: refused, and nothing is written.
    let text = lab
        .root_toml("root", "ecdsa-p256")
        .replace("root.pem", "fresh.pem")
        .replace("root.pub.pem", "fresh.pub.pem");
    let err = lab.run(CeremonyKind::Root, &text).unwrap_err();
    assert!(
        err.detail.contains("cannot make the new ecdsa-p256 key"),
        "{err}"
    );
    assert!(!lab.path("fresh.pem").exists());

    // The output's directory does not exist.
    let text = lab.root_toml("nowhere", "ecdsa-p256").replace(
        &format!("{:?}", lab.path("nowhere.pem")),
        &format!("{:?}", lab.path("missing/nowhere.pem")),
    );
    let err = lab.run(CeremonyKind::Root, &text).unwrap_err();
    assert!(err.detail.contains("does not exist"), "{err}");
    assert!(!lab.path("nowhere.key").exists());

    // The parent key does not belong to the parent certificate.
    let text = lab
        .intermediate_toml("root", "int", "ecdsa-p256")
        .replace("root.key", "other.key");
    let err = lab.run(CeremonyKind::Intermediate, &text).unwrap_err();
    assert!(
        err.detail.contains("does not belong to parent.certificate"),
        "{err}"
    );
    assert!(
        !lab.path("int.key").exists(),
        "no key made for a failed ceremony"
    );

    // A validity beyond the parent's.
    let text = lab
        .intermediate_toml("root", "int", "ecdsa-p256")
        .replace("2030-01-01T00:00:00Z", "2046-01-01T00:00:00Z");
    let err = lab.run(CeremonyKind::Intermediate, &text).unwrap_err();
    assert!(err.detail.contains("validity.not_after"), "{err}");
    let text = lab
        .intermediate_toml("root", "int", "ecdsa-p256")
        .replace("2025-01-02T00:00:00Z", "2024-12-31T00:00:00Z");
    let err = lab.run(CeremonyKind::Intermediate, &text).unwrap_err();
    assert!(err.detail.contains("validity.not_before"), "{err}");

    // A bundle is not a parent.
    let bundle = lab.path("bundle.pem");
    let mut pems = fs::read(lab.path("root.pem")).unwrap();
    pems.extend(fs::read(lab.path("other.pem")).unwrap());
    fs::write(&bundle, pems).unwrap();
    let text = lab.intermediate_toml("root", "int", "ecdsa-p256").replace(
        &format!("{:?}", lab.path("root.pem")),
        &format!("{bundle:?}"),
    );
    let err = lab.run(CeremonyKind::Intermediate, &text).unwrap_err();
    assert!(
        err.detail.contains("must hold one certificate, not 2"),
        "{err}"
    );

    // A cross-sign of a certificate that is not a CA's.
    let leaf = lab.leaf("root", "leaf");
    assert!(leaf.exists());
    let err = lab
        .run(
            CeremonyKind::CrossSign,
            &lab.cross_sign_toml("other", "leaf", "leaf-x"),
        )
        .unwrap_err();
    assert!(err.detail.contains("only CAs are cross-signed"), "{err}");
    assert!(!lab.path("int.key").exists());
}

/// The error `Ceremony::parse` gives for `text`.
fn parse_error(kind: CeremonyKind, text: &str) -> String {
    Ceremony::parse(kind, text).unwrap_err()
}

const ROOT: &str = r#"
[new_key]
algorithm = "ecdsa-p384"
key = "/keys/root.key"

[subject]
common_name = "Root"
country = "XX"

[validity]
not_before = "2025-01-01T00:00:00Z"
not_after = "2045-01-01T00:00:00Z"

[outputs]
certificate = "/pki/root.pem"
"#;

#[test]
fn configs_parse_and_errors_name_the_field() {
    let Ceremony::Root(root) = Ceremony::parse(CeremonyKind::Root, ROOT).unwrap() else {
        panic!("not a root");
    };
    assert_eq!(root.new_key.algorithm, KeyAlgorithm::EcdsaP384);
    assert_eq!(
        root.new_key.source(),
        Ok(KeySource::File("/keys/root.key".into()))
    );
    assert_eq!(root.validity.not_before.0.unix_timestamp(), 1_735_689_600);
    let offset = ROOT.replace("2025-01-01T00:00:00Z", "2025-01-01T02:00:00+02:00");
    let Ceremony::Root(shifted) = Ceremony::parse(CeremonyKind::Root, &offset).unwrap() else {
        panic!("not a root");
    };
    assert_eq!(shifted.validity, root.validity);

    let pkcs11 = ROOT.replace(
        "key = \"/keys/root.key\"",
        "pkcs11 = { module = \"/usr/lib/softhsm/libsofthsm2.so\", token_label = \"t\", key_label = \"root\", pin_file = \"/keys/pin\" }",
    );
    let Ceremony::Root(root) = Ceremony::parse(CeremonyKind::Root, &pkcs11).unwrap() else {
        panic!("not a root");
    };
    assert!(
        matches!(root.new_key.source(), Ok(KeySource::Pkcs11(config)) if config.key_label == "root")
    );

    for (kind, text, wanted) in [
        (
            CeremonyKind::Root,
            ROOT.replace("common_name", "commonname"),
            "unknown field `commonname`",
        ),
        (
            CeremonyKind::Root,
            format!("{ROOT}\nserial = 1\n"),
            "unknown field `serial`",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("ecdsa-p384", "ecdsa-p521"),
            "ecdsa-p521",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("key = \"/keys/root.key\"", ""),
            "new_key needs key (a PEM file) or pkcs11",
        ),
        (
            CeremonyKind::Root,
            pkcs11.replace("pkcs11 =", "key = \"/keys/root.key\"\npkcs11 ="),
            "new_key sets both key and pkcs11",
        ),
        (
            CeremonyKind::Root,
            pkcs11.replace("key_label = \"root\"", "key_label = \"\""),
            "new_key.pkcs11.key_label must not be empty",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("\"XX\"", "\"xx\""),
            "subject.country",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("\"XX\"", "\"USA\""),
            "subject.country",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("\"Root\"", "\"\""),
            "subject.common_name",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("\"Root\"", &format!("\"{}\"", "R".repeat(65))),
            "subject.common_name must be 1 to 64 characters",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("2045-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            "validity.not_after must be after validity.not_before",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("2045-01-01T00:00:00Z", "2045-01-01T00:00:00.5Z"),
            "validity.not_after must be in whole seconds",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("\"2045-01-01T00:00:00Z\"", "2045-01-01T00:00:00Z"),
            "RFC 3339",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("2045-01-01T00:00:00Z", "2045-01-01"),
            "is not an RFC 3339 date",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("[outputs]", "[output]"),
            "unknown field `output`",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace("[outputs]\ncertificate = \"/pki/root.pem\"\n", ""),
            "missing field `outputs`",
        ),
        (
            CeremonyKind::Root,
            ROOT.replace(
                "certificate = \"/pki/root.pem\"",
                "certificate = \"/pki/root.pem\"\npublic_key = \"/pki/root.pem\"",
            ),
            "outputs.public_key must not be outputs.certificate",
        ),
        // A root has no parent, and no URLs.
        (
            CeremonyKind::Root,
            format!("{ROOT}\n[extensions]\n"),
            "unknown field `extensions`",
        ),
    ] {
        let err = parse_error(kind, &text);
        assert!(err.contains(wanted), "{wanted:?} not in: {err}\n{text}");
    }

    let intermediate = format!(
        "{}\n[parent]\ncertificate = \"/pki/root.pem\"\nkey = \"/keys/root.key\"\n",
        ROOT.replace("/pki/root.pem", "/pki/int.pem")
            .replace("/keys/root.key", "/keys/int.key")
    );
    Ceremony::parse(CeremonyKind::Intermediate, &intermediate).unwrap();
    for (text, wanted) in [
        (
            format!("{intermediate}\n[existing_key]\nkey = \"/keys/old.key\"\n"),
            "set new_key (the ceremony makes the key) or existing_key",
        ),
        (
            intermediate.replace("[new_key]\nalgorithm = \"ecdsa-p384\"", "[existing_key]"),
            "",
        ),
        (
            intermediate.replace(
                "[new_key]\nalgorithm = \"ecdsa-p384\"",
                "[existing_key]\npublic_key = \"/pki/int.pub\"",
            ),
            "existing_key sets public_key and a private key",
        ),
        (
            intermediate.replace(
                "[parent]\ncertificate = \"/pki/root.pem\"\nkey = \"/keys/root.key\"",
                "[parent]\ncertificate = \"/pki/root.pem\"",
            ),
            "parent needs key (a PEM file) or pkcs11",
        ),
        (
            format!("{intermediate}\n[extensions]\ncrl_url = \"https://crl.example/1.crl\"\n"),
            "extensions.crl_url must be an http:// URL",
        ),
        (
            format!("{intermediate}\n[extensions]\nissuer_url = \"http://\"\n"),
            "extensions.issuer_url must be an http:// URL",
        ),
        (
            format!("{intermediate}\n[extensions]\nocsp_url = \"http://ocsp.example/\"\n"),
            "unknown field `ocsp_url`",
        ),
    ] {
        match Ceremony::parse(CeremonyKind::Intermediate, &text) {
            Ok(_) => assert!(wanted.is_empty(), "{wanted:?} expected:\n{text}"),
            Err(err) => assert!(
                !wanted.is_empty() && err.contains(wanted),
                "{wanted:?} not in: {err}\n{text}"
            ),
        }
    }

    // A cross-sign names the certificate to sign again, and makes no key.
    let cross = "[parent]\ncertificate = \"/pki/x2.pem\"\nkey = \"/keys/x2.key\"\n\
                 [inputs]\ncertificate = \"/pki/int.pem\"\n\
                 [validity]\nnot_before = \"2025-01-01T00:00:00Z\"\nnot_after = \"2030-01-01T00:00:00Z\"\n\
                 [outputs]\ncertificate = \"/pki/int-x2.pem\"\n";
    let ceremony = Ceremony::parse(CeremonyKind::CrossSign, cross).unwrap();
    assert_eq!(ceremony.kind(), CeremonyKind::CrossSign);
    assert_eq!(ceremony.outputs(), [Path::new("/pki/int-x2.pem")]);
    let err = parse_error(
        CeremonyKind::CrossSign,
        &format!("{cross}public_key = \"/pki/int.pub\"\n"),
    );
    assert!(err.contains("unknown field `public_key`"), "{err}");
    let err = parse_error(
        CeremonyKind::CrossSign,
        &cross.replace("[inputs]", "[new_key]"),
    );
    assert!(err.contains("unknown field `new_key`"), "{err}");
}

#[test]
fn ceremony_names_round_trip() {
    for kind in CeremonyKind::ALL {
        assert_eq!(kind.name().parse::<CeremonyKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    let err = "subordinate".parse::<CeremonyKind>().unwrap_err();
    assert!(err.contains("unknown ceremony \"subordinate\""), "{err}");
}

#[test]
fn a_missing_config_file_is_reported() {
    let lab = Lab::new();
    let err = Ceremony::load(CeremonyKind::Root, &lab.path("missing.toml")).unwrap_err();
    assert!(
        err.detail.contains("cannot read the ceremony config"),
        "{err}"
    );
    fs::write(lab.path("bad.toml"), "[new_key]\n").unwrap();
    let err = Ceremony::load(CeremonyKind::Root, &lab.path("bad.toml")).unwrap_err();
    assert!(err.detail.contains("invalid root ceremony config"), "{err}");
    assert!(err.detail.contains("bad.toml"), "{err}");
}

/// Root and intermediate keys in a SoftHSM2 token, made and used through PKCS#11.
/// Needs softhsm2 (DESIGN.md lists it on every machine): fails without it.
#[test]
fn ceremonies_make_and_use_keys_in_a_softhsm_token() {
    let lab = Lab::new();
    let module = crate::softhsm::module_path()
        .expect("SoftHSM2 must be installed (apt-get install softhsm2)");
    let conf = crate::softhsm::write_config(&lab.path("softhsm")).unwrap();
    crate::softhsm::init_token(&conf, "ceremony-test", "5678", "1234").unwrap();
    fs::write(lab.path("pin"), "1234\n").unwrap();
    let pkcs11 = |label: &str| {
        format!(
            "pkcs11 = {{ module = {module:?}, token_label = \"ceremony-test\", key_label = \"{label}\", pin_file = {pin:?} }}",
            pin = lab.path("pin"),
        )
    };
    // SoftHSM reads SOFTHSM2_CONF when the module loads, and a test cannot set it
    // in its own process (the environment is shared by every test thread): the
    // ceremonies run in a child that does, this test binary run again for the one
    // test below.
    let exe = std::env::current_exe().unwrap();
    let root = lab.root_toml("root", "ecdsa-p384").replace(
        &format!("key = {:?}", lab.path("root.key")),
        &pkcs11("root"),
    );
    let intermediate = lab
        .intermediate_toml("root", "int", "rsa-2048")
        .replace(
            &format!("key = {:?}", lab.path("root.key")),
            &pkcs11("root"),
        )
        .replace(&format!("key = {:?}", lab.path("int.key")), &pkcs11("int"));
    let ocsp_signer = lab
        .ocsp_signer_toml(
            "int",
            "ocsp",
            "ecdsa-p256",
            "2025-06-01T00:00:00Z",
            "2026-06-01T00:00:00Z",
        )
        .replace(&format!("key = {:?}", lab.path("int.key")), &pkcs11("int"))
        .replace(
            &format!("key = {:?}", lab.path("ocsp.key")),
            &pkcs11("ocsp"),
        );
    for (kind, text) in [
        (CeremonyKind::Root, root),
        (CeremonyKind::Intermediate, intermediate),
        (CeremonyKind::OcspSigner, ocsp_signer),
    ] {
        let config = lab.path(&format!("{kind}.toml"));
        fs::write(&config, text).unwrap();
        let output = Command::new(&exe)
            .args([
                "--exact",
                "ceremony::tests::run_ceremony_from_env",
                "--ignored",
                "--nocapture",
            ])
            .env(crate::softhsm::CONF_ENV, &conf)
            .env("BASALT_TEST_CEREMONY", kind.name())
            .env("BASALT_TEST_CEREMONY_CONFIG", &config)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{kind}: {text}");
        assert!(
            text.contains(&format!("{kind} ceremony: certificate made and verified")),
            "{text}"
        );
    }
    assert!(!lab.path("root.key").exists() && !lab.path("int.key").exists());
    assert!(!lab.path("ocsp.key").exists());
    let ocsp_der = lab.der("ocsp");
    let ocsp = parse(&ocsp_der);
    assert!(
        ocsp.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .ocsp_signing
    );
    // The token's key is the one certified: the public key file written from it
    // is the certificate's.
    let public = read_public_key(&lab.path("ocsp.pub.pem")).unwrap();
    assert_eq!(
        public.der_bytes(),
        ocsp.public_key().subject_public_key.data.as_ref()
    );
    let (ok, text) = openssl_verify_purpose(
        &lab.path("root.pem"),
        &lab.path("int.pem"),
        &lab.path("ocsp.pem"),
        "ocsphelper",
    );
    assert!(ok, "{text}");
    let int_der = lab.der("int");
    let (ok, text) = openssl_verify(&lab.path("root.pem"), None, &lab.path("int.pem"));
    assert!(ok, "{text}");
    assert_eq!(
        parse(&int_der)
            .public_key()
            .algorithm
            .algorithm
            .to_id_string(),
        "1.2.840.113549.1.1.1",
        "an RSA key from the token"
    );
}

/// Runs the ceremony named by `BASALT_TEST_CEREMONY` with the config file in
/// `BASALT_TEST_CEREMONY_CONFIG`, in a process started with `SOFTHSM2_CONF`
/// (see `ceremonies_make_and_use_keys_in_a_softhsm_token`).
#[test]
#[ignore = "run by ceremonies_make_and_use_keys_in_a_softhsm_token in a child process"]
fn run_ceremony_from_env() {
    let kind: CeremonyKind = std::env::var("BASALT_TEST_CEREMONY")
        .unwrap()
        .parse()
        .unwrap();
    let config = PathBuf::from(std::env::var_os("BASALT_TEST_CEREMONY_CONFIG").unwrap());
    let summary = Ceremony::load(kind, &config).unwrap().run().unwrap();
    println!("{summary}");
}

#[test]
fn deploy_ceremony_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ceremony");
    let mut seen = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let kind: CeremonyKind = name.parse().unwrap_or_else(|err| {
            panic!(
                "{}: name a config after its ceremony: {err}",
                path.display()
            )
        });
        let ceremony = Ceremony::load(kind, &path).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(ceremony.kind(), kind);
        seen.push(kind);
    }
    seen.sort_by_key(|kind| kind.name());
    let mut all = CeremonyKind::ALL.to_vec();
    all.sort_by_key(|kind| kind.name());
    assert_eq!(seen, all, "one example per ceremony in deploy/ceremony");
}
