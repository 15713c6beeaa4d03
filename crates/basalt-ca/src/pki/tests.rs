use std::sync::Arc;

use basalt_core::AccountId;
use basalt_core::CertificateAuthority;
use basalt_core::CrlRequest;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::OrderId;
use basalt_core::RevocationReason;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::*;
use crate::Ca;
use crate::ceremony::Ceremony;
use crate::issuer::pem_certificates;
use crate::test_support::FakeStorage;
use crate::test_support::TempDir;
use crate::test_support::fixed_now;

fn clock() -> FixedClock {
    FixedClock::new(fixed_now())
}

fn load(path: &Path) -> Vec<u8> {
    let mut certs = load_all(path);
    assert_eq!(certs.len(), 1, "{}", path.display());
    certs.remove(0)
}

fn load_all(path: &Path) -> Vec<Vec<u8>> {
    pem_certificates(&fs::read(path).unwrap()).unwrap()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

fn key_id(cert: &X509Certificate<'_>, authority: bool) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) if !authority => Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) if authority => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
        .unwrap()
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn san_values(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            GeneralName::IPAddress(ip) => format!("ip{ip:?}"),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[cfg(unix)]
fn assert_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

#[cfg(not(unix))]
fn assert_owner_only(_: &Path) {}

/// The dev issuing hierarchy with file keys, made in `dir` by running its
/// ceremonies in order (as `basalt dev` does, in this process).
fn dev_pki(dir: &Path) -> DevIssuingPki {
    let pki = DevIssuingPki::new(dir.join("pki"), DevKeyStore::Files(dir.join("ca-keys")));
    create_dir(&pki.dir).unwrap();
    create_dir(&dir.join("ca-keys")).unwrap();
    run_ceremonies(&pki);
    pki
}

/// Runs the ceremonies of `pki` whose certificates do not exist yet, in order,
/// and writes the root bundle.
fn run_ceremonies(pki: &DevIssuingPki) {
    for ceremony in pki.ceremonies(fixed_now()).unwrap() {
        if ceremony.certificate.exists() {
            continue;
        }
        let parsed = Ceremony::parse(ceremony.kind, &ceremony.config)
            .unwrap_or_else(|err| panic!("{}: {err}\n{}", ceremony.name, ceremony.config));
        let summary = parsed.run().unwrap();
        assert_eq!(summary.outputs, [ceremony.certificate]);
    }
    pki.write_root_bundle().unwrap();
}

fn organization(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_organization()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The public key's type: `P-256`, `P-384` or `RSA-<bits>`.
fn key_type(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed().unwrap() {
        PublicKey::EC(point) => format!("P-{}", point.key_size()),
        PublicKey::RSA(rsa) => format!("RSA-{}", rsa.key_size()),
        other => panic!("unexpected key {other:?}"),
    }
}

fn days(cert: &X509Certificate<'_>) -> i64 {
    (cert.validity().not_after.timestamp() - fixed_now().unix_timestamp()) / 86_400
}

/// Issues a certificate for `www.example.org` and a key of type `alg`.
async fn issue(ca: &Ca, alg: KeyAlgorithm) -> Vec<u8> {
    let key = KeyPair::from_pem(&crate::key::generate_pkcs8_pem(alg).unwrap()).unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .unwrap();
    ca.issue_certificate(IssueRequest {
        csr_der: csr.der().to_vec(),
        account_id: AccountId(1),
        order_id: OrderId(2),
        identifiers: vec![Identifier::dns("www.example.org")],
        profile: String::new(),
        not_before: None,
        not_after: None,
    })
    .await
    .unwrap()
    .der
}

/// A CA config naming `pki`'s issuers, as `basalt dev` writes it, with five CRL
/// shards per issuer.
fn ca_config(pki: &DevIssuingPki) -> String {
    let mut text = String::from(
        "[grpc]\nlisten = \"127.0.0.1:0\"\nallowed_clients = {}\n\
         [tls]\ncert = \"ca.pem\"\nkey = \"ca.key\"\nca = \"internal-ca.pem\"\n\
         [sa]\naddress = \"127.0.0.1:1\"\nserver_name = \"sa.basalt\"\n\
         [crl]\nshards = 5\nlifetime = \"2d\"\n",
    );
    for issuer in pki.issuers() {
        text.push_str(&format!(
            "[[issuers]]\ncert = {}\n{}\nissuer_url = \"http://127.0.0.1:4002/issuers/{}.der\"\n\
             crl_url_base = \"http://127.0.0.1:4003/{}/\"\n",
            toml_path(&issuer.cert).unwrap(),
            key_fields(&issuer.key).unwrap(),
            issuer.name,
            issuer.name
        ));
        if let Some(signer) = &issuer.ocsp_signer {
            text.push_str(&format!(
                "ocsp_signer = {{ cert = {}, {} }}\n",
                toml_path(&signer.cert).unwrap(),
                key_fields(&signer.key).unwrap()
            ));
        }
    }
    text
}

#[tokio::test]
async fn dev_ceremonies_make_two_hierarchies_and_a_cross_signed_intermediate() {
    let dir = TempDir::new();
    let pki = dev_pki(dir.path());
    let names: Vec<&str> = pki
        .ceremonies(fixed_now())
        .unwrap()
        .iter()
        .map(|ceremony| ceremony.name)
        .collect();
    assert_eq!(
        names,
        [
            "root-ecdsa",
            "intermediate-ecdsa",
            "root-rsa",
            "intermediate-rsa",
            "root-x2",
            "intermediate-x2"
        ]
    );

    let der = |name: &str| load(&pki.certificate(name));
    let (root_ecdsa, int_ecdsa) = (der("root-ecdsa"), der("intermediate-ecdsa"));
    let (root_rsa, int_rsa) = (der("root-rsa"), der("intermediate-rsa"));
    let (root_x2, int_x2) = (der("root-x2"), der("intermediate-x2"));
    let (root_ecdsa, int_ecdsa) = (parse(&root_ecdsa), parse(&int_ecdsa));
    let (root_rsa, int_rsa) = (parse(&root_rsa), parse(&int_rsa));
    let (root_x2, int_x2) = (parse(&root_x2), parse(&int_x2));
    for (cert, cn, key, lifetime) in [
        (&root_ecdsa, ROOT_ECDSA_CN, "P-384", 3650),
        (&int_ecdsa, INTERMEDIATE_ECDSA_CN, "P-256", 1825),
        (&root_rsa, ROOT_RSA_CN, "RSA-4096", 3650),
        (&int_rsa, INTERMEDIATE_RSA_CN, "RSA-2048", 1825),
        (&root_x2, ROOT_X2_CN, "P-384", 3650),
        (&int_x2, INTERMEDIATE_ECDSA_CN, "P-256", 1825),
    ] {
        assert_eq!(common_name(cert), cn);
        assert_eq!(organization(cert), "Basalt Dev", "{cn}");
        assert_eq!(key_type(cert), key, "{cn}");
        assert_eq!(days(cert), lifetime, "{cn}");
        assert_eq!(
            cert.validity().not_before.timestamp(),
            fixed_now().unix_timestamp() - 3600,
            "{cn}"
        );
    }
    assert_chains(&[&int_ecdsa, &root_ecdsa]);
    assert_chains(&[&int_rsa, &root_rsa]);
    assert_chains(&[&int_x2, &root_x2]);
    let bc = root_ecdsa.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint.is_none());
    let bc = int_rsa.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(0));
    // The cross-signed intermediate is the ECDSA intermediate under Root X2.
    assert_eq!(int_x2.subject().as_raw(), int_ecdsa.subject().as_raw());
    assert_eq!(int_x2.public_key().raw, int_ecdsa.public_key().raw);
    assert_eq!(key_id(&int_x2, false), key_id(&int_ecdsa, false));
    assert_ne!(int_x2.raw_serial(), int_ecdsa.raw_serial());

    // root.pem trusts the two default chains, ECDSA first.
    assert_eq!(
        load_all(&pki.root_bundle()),
        [der("root-ecdsa"), der("root-rsa")]
    );
    // Five keys, owner-only, each its certificate's; none for the cross-signed one.
    let keys = dir.path().join("ca-keys");
    let mut files: Vec<String> = fs::read_dir(&keys)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "intermediate-ecdsa.key",
            "intermediate-rsa.key",
            "root-ecdsa.key",
            "root-rsa.key",
            "root-x2.key"
        ]
    );
    for file in &files {
        assert_owner_only(&keys.join(file));
    }

    // The CA loads both issuers from the config `basalt dev` writes; an ECDSA key
    // gets the ECDSA intermediate, an RSA key the RSA one.
    let config: crate::CaConfig = basalt_config::parse(&ca_config(&pki)).unwrap();
    let ca = Ca::from_config(&config, Arc::new(FakeStorage::default()), Arc::new(clock())).unwrap();
    assert_eq!(ca.issuers().len(), 2);
    assert_eq!(ca.crl_shards().get(), 5);
    assert!(!ca.issuers()[0].is_rsa() && ca.issuers()[1].is_rsa());
    let ecdsa_leaf = issue(&ca, KeyAlgorithm::EcdsaP256).await;
    let rsa_leaf = issue(&ca, KeyAlgorithm::Rsa2048).await;
    assert_chains(&[&parse(&ecdsa_leaf), &int_ecdsa, &root_ecdsa]);
    assert_chains(&[&parse(&ecdsa_leaf), &int_x2, &root_x2]);
    assert_chains(&[&parse(&rsa_leaf), &int_rsa, &root_rsa]);

    let ecdsa_pem = dir.path().join("ecdsa-leaf.pem");
    let rsa_pem = dir.path().join("rsa-leaf.pem");
    write_pem(&ecdsa_pem, &ecdsa_leaf);
    write_pem(&rsa_pem, &rsa_leaf);
    let verify = |root: &str, untrusted: &str, leaf: &Path| {
        let root = if root == "root" {
            pki.root_bundle()
        } else {
            pki.certificate(root)
        };
        openssl_verify(&root, &pki.certificate(untrusted), leaf)
    };
    for (root, untrusted, leaf, expected) in [
        ("root", "intermediate-ecdsa", &ecdsa_pem, true),
        ("root", "intermediate-rsa", &rsa_pem, true),
        ("root-x2", "intermediate-x2", &ecdsa_pem, true),
        ("root-ecdsa", "intermediate-ecdsa", &ecdsa_pem, true),
        // Root X2 does not vouch for the original intermediate, nor root.pem for
        // the cross-signed one; the RSA leaf has no alternate chain.
        ("root-x2", "intermediate-ecdsa", &ecdsa_pem, false),
        ("root", "intermediate-x2", &ecdsa_pem, false),
        ("root-x2", "intermediate-x2", &rsa_pem, false),
        ("root-ecdsa", "intermediate-rsa", &rsa_pem, false),
    ] {
        let (ok, text) = verify(root, untrusted, leaf);
        assert_eq!(
            ok,
            expected,
            "{} with {untrusted} against {root}: {text}",
            leaf.display()
        );
    }

    // CRLs: the dev intermediates allow cRLSign. OpenSSL, checking the leaf's
    // CRL, takes the CRL of the leaf's shard (its issuingDistributionPoint is the
    // leaf's CRL distribution point) and finds the leaf revoked when it is
    // listed; another shard's CRL has a different scope (its
    // issuingDistributionPoint names another URL).
    for (leaf_der, leaf_pem, issuer, intermediate) in [
        (
            &ecdsa_leaf,
            &ecdsa_pem,
            &ca.issuers()[0],
            "intermediate-ecdsa",
        ),
        (&rsa_leaf, &rsa_pem, &ca.issuers()[1], "intermediate-rsa"),
    ] {
        let serial = Serial::from_bytes(parse(leaf_der).raw_serial()).unwrap();
        let shard = crate::crl_shard(&serial, ca.crl_shards());
        let crl = |shard: u32, entries: Vec<RevokedEntry>| {
            let der = ca
                .sign_crl(CrlRequest {
                    issuer_key_hash: issuer.key_hash().to_vec(),
                    shard,
                    this_update: fixed_now() - time::Duration::minutes(5),
                    entries,
                })
                .unwrap();
            let path = dir.path().join(format!("{intermediate}-{shard}.crl"));
            fs::write(&path, der).unwrap();
            path
        };
        let revoked = vec![RevokedEntry {
            serial: serial.clone(),
            revoked_at: fixed_now() - time::Duration::minutes(10),
            reason: RevocationReason::KeyCompromise,
        }];
        let check = |crl: &Path| {
            openssl_verify_with_crl(
                &pki.certificate("root"),
                &pki.certificate(intermediate),
                leaf_pem,
                crl,
            )
        };
        let (ok, text) = check(&crl(shard, vec![]));
        assert!(ok, "{intermediate}, shard {shard} without the leaf: {text}");
        let (ok, text) = check(&crl(shard, revoked.clone()));
        assert!(
            !ok && text.contains("certificate revoked"),
            "{intermediate}, shard {shard} listing the leaf: {text}"
        );
        let other = (shard + 1) % ca.crl_shards().get();
        let (ok, text) = check(&crl(other, revoked));
        assert!(
            !ok && text.contains("different CRL scope"),
            "{intermediate}, shard {other} for a leaf on shard {shard}: {text}"
        );
    }
}

/// A data dir made without delegated OCSP responders gets them from the next
/// run with them: only their two ceremonies run. The CA loads them from the
/// config `basalt dev` writes, each signs its intermediate's responses, and
/// `openssl ocsp` verifies those responses up to the roots.
#[tokio::test]
async fn dev_delegated_ocsp_responders_sign_what_openssl_verifies() {
    use basalt_core::CertIdHash;
    use basalt_core::OcspRequestEntry;
    use basalt_core::OcspStatus;
    use basalt_core::RevocationSigner;

    let dir = TempDir::new();
    let pki = dev_pki(dir.path());
    let before: Vec<Vec<u8>> = pki
        .ceremonies(fixed_now())
        .unwrap()
        .iter()
        .map(|ceremony| fs::read(&ceremony.certificate).unwrap())
        .collect();
    let pki = pki.with_delegated_ocsp(true);
    let ceremonies = pki.ceremonies(fixed_now()).unwrap();
    let missing: Vec<&str> = ceremonies
        .iter()
        .filter(|ceremony| !ceremony.certificate.exists())
        .map(|ceremony| ceremony.name)
        .collect();
    assert_eq!(missing, ["ocsp-signer-ecdsa", "ocsp-signer-rsa"]);
    run_ceremonies(&pki);
    for (ceremony, der) in ceremonies.iter().zip(&before) {
        assert_eq!(
            &fs::read(&ceremony.certificate).unwrap(),
            der,
            "{}",
            ceremony.name
        );
    }

    let der = |name: &str| load(&pki.certificate(name));
    for (signer, cn, key, intermediate, root) in [
        (
            "ocsp-signer-ecdsa",
            OCSP_SIGNER_ECDSA_CN,
            "P-256",
            "intermediate-ecdsa",
            "root-ecdsa",
        ),
        (
            "ocsp-signer-rsa",
            OCSP_SIGNER_RSA_CN,
            "RSA-2048",
            "intermediate-rsa",
            "root-rsa",
        ),
    ] {
        let (signer_der, int_der, root_der) = (der(signer), der(intermediate), der(root));
        let cert = parse(&signer_der);
        assert_eq!(common_name(&cert), cn);
        assert_eq!(organization(&cert), "Basalt Dev");
        assert_eq!(key_type(&cert), key, "{cn}");
        assert_eq!(days(&cert), 365, "{cn}");
        assert!(!cert.is_ca(), "{cn}");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.ocsp_signing && !eku.server_auth, "{cn}");
        assert_chains(&[&cert, &parse(&int_der), &parse(&root_der)]);
        assert_owner_only(&dir.path().join("ca-keys").join(format!("{signer}.key")));
    }

    let config: crate::CaConfig = basalt_config::parse(&ca_config(&pki)).unwrap();
    let ca = Ca::from_config(&config, Arc::new(FakeStorage::default()), Arc::new(clock())).unwrap();
    let ecdsa_leaf = issue(&ca, KeyAlgorithm::EcdsaP256).await;
    let rsa_leaf = issue(&ca, KeyAlgorithm::Rsa2048).await;
    for (index, leaf, intermediate, signer) in [
        (0, &ecdsa_leaf, "intermediate-ecdsa", "ocsp-signer-ecdsa"),
        (1, &rsa_leaf, "intermediate-rsa", "ocsp-signer-rsa"),
    ] {
        let issuer = &ca.issuers()[index];
        let delegate = issuer.ocsp_signer().unwrap();
        assert_eq!(delegate.cert_der(), der(signer));
        let issuer_signatures = issuer.signatures();
        let serial = Serial::from_bytes(parse(leaf).raw_serial()).unwrap();
        let leaf_pem = dir.path().join(format!("{signer}-leaf.pem"));
        write_pem(&leaf_pem, leaf);
        for (status, revoked_at, hash, expected) in [
            (OcspStatus::Good, None, CertIdHash::Sha1, "good"),
            (
                OcspStatus::Revoked,
                Some(fixed_now() - time::Duration::minutes(5)),
                CertIdHash::Sha256,
                "revoked",
            ),
        ] {
            let responses = ca
                .sign_ocsp(vec![OcspRequestEntry {
                    serial: serial.clone(),
                    status,
                    revoked_at,
                    reason: revoked_at.map(|_| RevocationReason::KeyCompromise),
                    issuer_key_hash: issuer.key_hash().to_vec(),
                    hash_algorithm: hash,
                }])
                .await
                .unwrap();
            let response = dir.path().join(format!("{signer}-{expected}.der"));
            fs::write(&response, &responses[0]).unwrap();
            let (ok, text) = openssl_ocsp_respin(
                &response,
                &pki.root_bundle(),
                &pki.certificate(intermediate),
                Some(&leaf_pem),
                hash,
            );
            assert!(ok, "{signer}: {text}");
            assert!(
                text.contains(&format!("{}: {expected}", leaf_pem.display())),
                "{signer}: {text}"
            );
            // The responder is the delegated certificate, which the response
            // carries, not the intermediate.
            let responder = hex_upper(delegate.key_hash());
            assert!(
                text.contains(&format!("Responder Id: {responder}")),
                "{signer}: {responder} not the responder in:\n{text}"
            );
            assert!(
                !text.contains(&format!("Responder Id: {}", hex_upper(issuer.key_hash()))),
                "{signer}: {text}"
            );
            let signer_cn = common_name(&parse(&der(signer)));
            assert!(
                text.contains(&format!("Subject: O=Basalt Dev, CN={signer_cn}")),
                "{signer}: the embedded certificate:\n{text}"
            );
        }
        assert_eq!(delegate.signatures(), 2);
        assert_eq!(
            issuer.signatures(),
            issuer_signatures,
            "the issuer key signed nothing"
        );

        // The response alone, checked against the roots: it verifies through the
        // intermediate it names, and not against a root the intermediate is not
        // under.
        let response = dir.path().join(format!("{signer}-good.der"));
        let (ok, text) = openssl_ocsp_respin(
            &response,
            &pki.root_bundle(),
            &pki.certificate(intermediate),
            None,
            CertIdHash::Sha1,
        );
        assert!(ok, "{signer}: {text}");
        let (ok, text) = openssl_ocsp_respin(
            &response,
            &pki.certificate("root-x2"),
            &pki.certificate(intermediate),
            None,
            CertIdHash::Sha1,
        );
        assert!(
            !ok && text.contains("Response Verify Failure"),
            "{signer}: {text}"
        );
    }

    // Without the flag, the issuers sign their responses themselves again.
    let config: crate::CaConfig =
        basalt_config::parse(&ca_config(&pki.clone().with_delegated_ocsp(false))).unwrap();
    let ca = Ca::from_config(&config, Arc::new(FakeStorage::default()), Arc::new(clock())).unwrap();
    assert!(
        ca.issuers()
            .iter()
            .all(|issuer| issuer.ocsp_signer().is_none())
    );
}

/// The CA refuses a config whose `ocsp_signer` is not a valid delegate of its
/// issuer, naming `issuers[i].ocsp_signer`.
#[test]
fn dev_ca_configs_with_a_wrong_ocsp_signer_are_refused() {
    let dir = TempDir::new();
    let pki = dev_pki(dir.path()).with_delegated_ocsp(true);
    run_ceremonies(&pki);
    let good = ca_config(&pki);
    let path = |name: &str| toml_path(&pki.certificate(name)).unwrap();
    let key = |name: &str| key_fields(&pki.keys.key(name)).unwrap();
    let swap = |from: &str, to: &str| {
        assert!(good.contains(from), "{from} not in\n{good}");
        good.replacen(from, to, 1)
    };
    let ecdsa_signer = format!(
        "cert = {}, {}",
        path("ocsp-signer-ecdsa"),
        key("ocsp-signer-ecdsa")
    );
    for (text, at, wanted) in [
        // The RSA intermediate's delegate named for the ECDSA intermediate.
        (
            swap(
                &ecdsa_signer,
                &format!(
                    "cert = {}, {}",
                    path("ocsp-signer-rsa"),
                    key("ocsp-signer-rsa")
                ),
            ),
            fixed_now(),
            "issuers[0].ocsp_signer",
        ),
        // The intermediate itself: a CA, without id-kp-OCSPSigning.
        (
            swap(
                &ecdsa_signer,
                &format!(
                    "cert = {}, {}",
                    path("intermediate-ecdsa"),
                    key("intermediate-ecdsa")
                ),
            ),
            fixed_now(),
            "it is not issued by this issuer",
        ),
        // Its certificate with the other delegate's key.
        (
            swap(
                &ecdsa_signer,
                &format!(
                    "cert = {}, {}",
                    path("ocsp-signer-ecdsa"),
                    key("intermediate-ecdsa")
                ),
            ),
            fixed_now(),
            "the key does not match the certificate's public key",
        ),
        // A year and a day later it has expired.
        (
            good.clone(),
            fixed_now() + time::Duration::days(366),
            "it expired at",
        ),
    ] {
        let config: crate::CaConfig = basalt_config::parse(&text).unwrap();
        let Err(err) = Ca::from_config(
            &config,
            Arc::new(FakeStorage::default()),
            Arc::new(FixedClock::new(at)),
        ) else {
            panic!("{wanted:?} was not refused:\n{text}");
        };
        assert!(err.detail.contains(wanted), "{wanted:?} not in: {err}");
        assert!(err.detail.contains(".ocsp_signer ("), "{err}");
    }
    let Err(err) = Ca::from_config(
        &basalt_config::parse(&swap(
            &ecdsa_signer,
            &format!("cert = {}", path("ocsp-signer-ecdsa")),
        ))
        .unwrap(),
        Arc::new(FakeStorage::default()),
        Arc::new(clock()),
    ) else {
        panic!("an ocsp_signer without a key was accepted");
    };
    assert!(
        err.detail
            .contains("issuers[0].ocsp_signer needs key (a PEM file) or pkcs11"),
        "{err}"
    );
    let err = basalt_config::parse::<crate::CaConfig>(&swap(
        &ecdsa_signer,
        &format!("{ecdsa_signer}, chain = []"),
    ))
    .unwrap_err();
    assert!(err.contains("unknown field `chain`"), "{err}");
}

#[test]
fn dev_ceremonies_never_run_twice() {
    let dir = TempDir::new();
    let pki = dev_pki(dir.path());
    let before = fs::read(pki.certificate("intermediate-x2")).unwrap();
    let later = fixed_now() + time::Duration::days(30);
    for ceremony in pki.ceremonies(later).unwrap() {
        let err = Ceremony::parse(ceremony.kind, &ceremony.config)
            .unwrap()
            .run()
            .unwrap_err();
        assert!(err.detail.contains("exists"), "{}: {err}", ceremony.name);
    }
    assert_eq!(
        fs::read(pki.certificate("intermediate-x2")).unwrap(),
        before
    );
    // The bundle is rewritten from the same roots.
    pki.write_root_bundle().unwrap();
    assert_eq!(load_all(&pki.root_bundle()).len(), 2);
}

#[test]
fn dev_ceremonies_keep_token_keys_by_name() {
    let pki = DevIssuingPki::new(
        "/var/lib/basalt \"dev\"\\pki",
        DevKeyStore::Token {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "basalt-dev".into(),
            pin_file: "/var/lib/basalt/ca-keys/softhsm-user.pin".into(),
        },
    );
    let pkcs11 = |label: &str| {
        KeySource::Pkcs11(Pkcs11Config {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "basalt-dev".into(),
            key_label: label.into(),
            pin_file: "/var/lib/basalt/ca-keys/softhsm-user.pin".into(),
        })
    };
    let pki = pki.with_delegated_ocsp(true);
    let mut signers = Vec::new();
    for ceremony in pki.ceremonies(fixed_now()).unwrap() {
        let parsed = Ceremony::parse(ceremony.kind, &ceremony.config)
            .unwrap_or_else(|err| panic!("{}: {err}\n{}", ceremony.name, ceremony.config));
        assert_eq!(parsed.kind(), ceremony.kind);
        assert_eq!(parsed.outputs(), [ceremony.certificate.as_path()]);
        assert!(
            ceremony
                .certificate
                .starts_with("/var/lib/basalt \"dev\"\\pki")
        );
        match parsed {
            Ceremony::Root(root) => {
                assert_eq!(root.new_key.key, None);
                assert_eq!(
                    root.new_key.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11(ceremony.name))
                );
            }
            Ceremony::Intermediate(intermediate) => {
                let new_key = intermediate.new_key.unwrap();
                assert_eq!(
                    new_key.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11(ceremony.name))
                );
                let parent = ceremony.name.replace("intermediate", "root");
                assert_eq!(
                    intermediate.parent.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11(&parent))
                );
                assert_eq!(intermediate.parent.certificate, pki.certificate(&parent));
            }
            Ceremony::CrossSign(cross) => {
                assert_eq!(ceremony.name, "intermediate-x2");
                assert_eq!(
                    cross.parent.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11("root-x2"))
                );
                assert_eq!(
                    cross.inputs.certificate,
                    pki.certificate("intermediate-ecdsa")
                );
            }
            Ceremony::OcspSigner(signer) => {
                let intermediate = ceremony.name.replace("ocsp-signer", "intermediate");
                assert_eq!(
                    signer.new_key.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11(ceremony.name))
                );
                assert_eq!(
                    signer.parent.pkcs11.map(KeySource::Pkcs11),
                    Some(pkcs11(&intermediate))
                );
                assert_eq!(signer.parent.certificate, pki.certificate(&intermediate));
                assert_eq!(
                    signer.validity.not_after.0 - signer.validity.not_before.0,
                    time::Duration::days(365) + time::Duration::hours(1)
                );
                signers.push(ceremony.name);
            }
            Ceremony::CrlSigner(_) => panic!("basalt dev makes no CRL signer"),
        }
    }
    assert_eq!(signers, ["ocsp-signer-ecdsa", "ocsp-signer-rsa"]);
    let issuers = pki.issuers();
    assert_eq!(issuers.len(), 2);
    assert_eq!(
        (issuers[0].name, &issuers[0].key),
        ("ecdsa", &pkcs11("intermediate-ecdsa"))
    );
    assert_eq!(
        (issuers[1].name, &issuers[1].key),
        ("rsa", &pkcs11("intermediate-rsa"))
    );
    assert_eq!(issuers[1].cert, pki.certificate("intermediate-rsa"));
    assert_eq!(
        issuers[1].ocsp_signer,
        Some(DevOcspSigner {
            cert: pki.certificate("ocsp-signer-rsa"),
            key: pkcs11("ocsp-signer-rsa"),
        })
    );
    // Without delegated responders the issuers have none, and no ceremony makes one.
    let pki = pki.with_delegated_ocsp(false);
    assert!(
        pki.issuers()
            .iter()
            .all(|issuer| issuer.ocsp_signer.is_none())
    );
    assert!(
        pki.ceremonies(fixed_now())
            .unwrap()
            .iter()
            .all(|ceremony| ceremony.kind != CeremonyKind::OcspSigner)
    );

    let files = DevKeyStore::Files("/keys".into());
    assert_eq!(
        files.key("root-x2"),
        KeySource::File("/keys/root-x2.key".into())
    );
    assert_eq!(toml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
}

/// Checks each link of `path` (leaf first, self-signed root last): the issuer name
/// is the next certificate's subject, byte for byte, and the signature verifies
/// with its key.
fn assert_chains(path: &[&X509Certificate<'_>]) {
    for pair in path.windows(2) {
        let (child, parent) = (pair[0], pair[1]);
        assert_eq!(
            child.issuer().as_raw(),
            parent.subject().as_raw(),
            "{} is not issued by {}",
            child.subject(),
            parent.subject()
        );
        child
            .verify_signature(Some(parent.public_key()))
            .unwrap_or_else(|err| panic!("{}: {err}", child.subject()));
        assert_eq!(key_id(child, true), key_id(parent, false));
    }
    let root = path.last().unwrap();
    assert_eq!(root.issuer().as_raw(), root.subject().as_raw());
    root.verify_signature(None).unwrap();
}

fn write_pem(path: &Path, der: &[u8]) {
    use der::Decode;
    use der::EncodePem;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    fs::write(path, cert.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
}

/// `openssl verify` at the fixed time. openssl is on every development and CI
/// machine (DESIGN.md), so its absence fails the test.
fn openssl_verify(root: &Path, untrusted: &Path, leaf: &Path) -> (bool, String) {
    let output = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-attime")
        .arg(fixed_now().unix_timestamp().to_string())
        .arg("-CAfile")
        .arg(root)
        .arg("-untrusted")
        .arg(untrusted)
        .arg(leaf)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && text.contains(": OK"), text)
}

/// `openssl verify` at the fixed time, checking the leaf against the DER CRL
/// `crl`.
fn openssl_verify_with_crl(
    root: &Path,
    untrusted: &Path,
    leaf: &Path,
    crl: &Path,
) -> (bool, String) {
    let pem = crl.with_extension("crl.pem");
    let output = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(crl)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl crl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-attime")
        .arg(fixed_now().unix_timestamp().to_string())
        .arg("-crl_check")
        .arg("-CRLfile")
        .arg(&pem)
        .arg("-CAfile")
        .arg(root)
        .arg("-untrusted")
        .arg(untrusted)
        .arg(leaf)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && text.contains(": OK"), text)
}

/// Uppercase hex, as `openssl ocsp -resp_text` prints key hashes.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `openssl ocsp -respin response -CAfile root -verify_other intermediate
/// -resp_text` at the fixed time, with `-issuer intermediate -cert leaf` when a
/// leaf is given (so its status is printed); the response's status times are
/// those of the fixed time, so any age is allowed. True when the response
/// verifies.
fn openssl_ocsp_respin(
    response: &Path,
    root: &Path,
    intermediate: &Path,
    leaf: Option<&Path>,
    hash: basalt_core::CertIdHash,
) -> (bool, String) {
    let mut command = std::process::Command::new("openssl");
    command
        .arg("ocsp")
        .arg("-respin")
        .arg(response)
        .arg("-CAfile")
        .arg(root)
        .arg("-verify_other")
        .arg(intermediate)
        .arg("-attime")
        .arg(fixed_now().unix_timestamp().to_string())
        .args(["-validity_period", "1000000000", "-resp_text"]);
    if let Some(leaf) = leaf {
        command
            .arg(match hash {
                basalt_core::CertIdHash::Sha1 => "-sha1",
                basalt_core::CertIdHash::Sha256 => "-sha256",
            })
            .arg("-issuer")
            .arg(intermediate)
            .arg("-cert")
            .arg(leaf);
    }
    let output = command
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.success() && text.lines().any(|line| line.trim() == "Response verify OK"),
        text,
    )
}

#[test]
fn internal_pki_leaves_are_for_client_and_server() {
    let dir = TempDir::new();
    let pki = generate_internal_pki(dir.path(), &["ra.basalt", "sa.basalt"], &clock()).unwrap();
    assert_eq!(pki.ca.cert, dir.path().join("internal-ca.pem"));
    assert_owner_only(&pki.ca.key);
    let ca_der = load(&pki.ca.cert);
    let ca = parse(&ca_der);
    assert_eq!(pki.leaves.len(), 2);
    for (name, paths) in &pki.leaves {
        assert_eq!(paths.cert, dir.path().join(format!("{name}.pem")));
        assert_owner_only(&paths.key);
        let der = load(&paths.cert);
        let leaf = parse(&der);
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(san_values(&leaf), [name.as_str()]);
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(!leaf.is_ca());
        let days = (leaf.validity().not_after.timestamp() - fixed_now().unix_timestamp()) / 86_400;
        assert_eq!(days, 730);
        let key = KeyPair::from_pem(&fs::read_to_string(&paths.key).unwrap()).unwrap();
        assert_eq!(
            leaf.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
    }
    for bad in ["../escape", ".hidden", "", "a/b"] {
        let err = generate_internal_pki(dir.path(), &[bad], &clock()).unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Internal, "{bad:?}");
    }
}

#[test]
fn server_cert_is_signed_by_the_api_ca() {
    let dir = TempDir::new();
    let api_ca = generate_api_ca(dir.path(), &clock()).unwrap();
    assert_owner_only(&api_ca.key);
    let cert_out = dir.path().join("wfe").join("https.pem");
    let key_out = dir.path().join("wfe").join("https.key");
    let trust = generate_server_cert(
        &api_ca,
        &["localhost", "127.0.0.1", "::1"],
        &cert_out,
        &key_out,
        &clock(),
    )
    .unwrap();
    assert_eq!(trust, dir.path().join("api-ca.pem"));
    assert_owner_only(&key_out);
    let ca_der = load(&trust);
    let ca = parse(&ca_der);
    assert_eq!(common_name(&ca), API_CA_CN);
    let der = load(&cert_out);
    let leaf = parse(&der);
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(
        san_values(&leaf),
        [
            "localhost".to_string(),
            "ip[127, 0, 0, 1]".to_string(),
            format!("ip{:?}", std::net::Ipv6Addr::LOCALHOST.octets().as_slice()),
        ]
    );
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(generate_server_cert(&api_ca, &[], &cert_out, &key_out, &clock()).is_err());
}
