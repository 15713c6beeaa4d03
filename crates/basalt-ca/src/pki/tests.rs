use std::sync::Arc;

use basalt_core::AccountId;
use basalt_core::CertificateAuthority;
use basalt_core::FixedClock;
use basalt_core::Identifier;
use basalt_core::IssueRequest;
use basalt_core::OrderId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::*;
use crate::Ca;
use crate::Issuer;
use crate::Profile;
use crate::Profiles;
use crate::issuer::pem_certificates;
use crate::test_support::FakeStorage;
use crate::test_support::TempDir;
use crate::test_support::fixed_now;

fn clock() -> FixedClock {
    FixedClock::new(fixed_now())
}

fn load(path: &Path) -> Vec<u8> {
    let pem = fs::read(path).unwrap();
    let mut certs = pem_certificates(&pem).unwrap();
    assert_eq!(certs.len(), 1);
    certs.remove(0)
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

#[tokio::test]
async fn hierarchy_chains_and_issues() {
    let dir = TempDir::new();
    let out = dir.path().join("pki");
    let hierarchy = generate_hierarchy(&out, &clock()).unwrap();
    assert_eq!(hierarchy.root.cert, out.join("root.pem"));
    assert_eq!(hierarchy.intermediate.key, out.join("intermediate.key"));
    assert_owner_only(&hierarchy.root.key);
    assert_owner_only(&hierarchy.intermediate.key);

    let root_der = load(&hierarchy.root.cert);
    let intermediate_der = load(&hierarchy.intermediate.cert);
    let root = parse(&root_der);
    let intermediate = parse(&intermediate_der);
    root.verify_signature(None).unwrap();
    intermediate
        .verify_signature(Some(root.public_key()))
        .unwrap();
    assert_eq!(common_name(&root), ROOT_CN);
    assert_eq!(common_name(&intermediate), INTERMEDIATE_CN);
    let bc = root.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(1));
    let bc = intermediate.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(0));
    let ku = intermediate.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
    assert_eq!(key_id(&intermediate, true), key_id(&root, false));
    let days = |cert: &X509Certificate<'_>| {
        (cert.validity().not_after.timestamp() - fixed_now().unix_timestamp()) / 86_400
    };
    assert_eq!(days(&root), 3650);
    assert_eq!(days(&intermediate), 1825);

    // The files load as the CA's issuer, and its leaves chain root -> intermediate -> leaf.
    let issuer = Issuer::load(&hierarchy.intermediate.cert, &hierarchy.intermediate.key).unwrap();
    assert_eq!(issuer.chain(), std::slice::from_ref(&intermediate_der));
    let storage = Arc::new(FakeStorage::default());
    let ca = Ca::new(
        issuer,
        Profiles::default(),
        storage.clone(),
        Arc::new(clock()),
    );
    let subject_key = KeyPair::generate().unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&subject_key)
        .unwrap();
    let issued = ca
        .issue_certificate(IssueRequest {
            csr_der: csr.der().to_vec(),
            account_id: AccountId(1),
            order_id: OrderId(2),
            identifiers: vec![
                Identifier::dns("www.example.org"),
                Identifier::ip("127.0.0.1"),
            ],
            profile: String::new(),
            not_before: None,
            not_after: None,
        })
        .await
        .unwrap();
    let leaf = parse(&issued.der);
    leaf.verify_signature(Some(intermediate.public_key()))
        .unwrap();
    assert_eq!(key_id(&leaf, true), key_id(&intermediate, false));
    assert_eq!(san_values(&leaf), ["www.example.org", "ip[127, 0, 0, 1]"]);
    assert!(
        leaf.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    assert_eq!(leaf.raw_serial().len(), 20);
    assert!(leaf.raw_serial()[0] & 0x80 == 0);

    // The root key belongs to the root certificate.
    let root_key = KeyPair::from_pem(&fs::read_to_string(&hierarchy.root.key).unwrap()).unwrap();
    assert_eq!(
        root.public_key().subject_public_key.data.as_ref(),
        root_key.public_key_raw()
    );
    // A key that does not match its certificate is refused.
    assert!(Issuer::load(&hierarchy.intermediate.cert, &hierarchy.root.key).is_err());
}

#[test]
fn issuer_chain_files_are_appended() {
    let dir = TempDir::new();
    let hierarchy = generate_hierarchy(dir.path(), &clock()).unwrap();
    let issuer = Issuer::load_with_chain(
        &hierarchy.intermediate.cert,
        &hierarchy.intermediate.key,
        std::slice::from_ref(&hierarchy.root.cert),
    )
    .unwrap();
    assert_eq!(
        issuer.chain(),
        &[
            load(&hierarchy.intermediate.cert),
            load(&hierarchy.root.cert)
        ]
    );
    let missing = dir.path().join("missing.pem");
    assert!(
        Issuer::load_with_chain(
            &hierarchy.intermediate.cert,
            &hierarchy.intermediate.key,
            &[missing]
        )
        .is_err()
    );
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

#[test]
fn ca_from_config_loads_the_dev_hierarchy() {
    let dir = TempDir::new();
    let hierarchy = generate_hierarchy(dir.path(), &clock()).unwrap();
    let text = format!(
        r#"
        [grpc]
        listen = "127.0.0.1:0"
        allowed_clients = {{}}
        [tls]
        cert = "ca.pem"
        key = "ca.key"
        ca = "internal-ca.pem"
        [sa]
        address = "127.0.0.1:1"
        server_name = "sa.basalt"
        [issuer]
        cert = {cert:?}
        key = {key:?}
        chain = [{root:?}]
        [ocsp]
        validity = "2d"
        "#,
        cert = hierarchy.intermediate.cert,
        key = hierarchy.intermediate.key,
        root = hierarchy.root.cert,
    );
    let config: crate::CaConfig = basalt_config::parse(&text).unwrap();
    let ca = Ca::from_config(&config, Arc::new(FakeStorage::default()), Arc::new(clock())).unwrap();
    assert_eq!(ca.issuer().chain().len(), 2);
    assert_eq!(ca.profiles(), &Profiles::default());

    // A config whose default profile does not exist loads no CA.
    let bad = format!("default_profile = \"tls\"\n{text}");
    let config: crate::CaConfig = basalt_config::parse(&bad).unwrap();
    let err = Ca::from_config(&config, Arc::new(FakeStorage::default()), Arc::new(clock()))
        .err()
        .unwrap();
    assert!(err.detail.contains("default_profile"), "{err}");
    assert_eq!(
        ca.profiles().get("").unwrap(),
        (crate::CLASSIC_PROFILE, &Profile::default())
    );
}

/// A leaf for `www.example.org` issued by the CA through the intermediate in
/// `keys_dir`, DER.
async fn issue_leaf(keys_dir: &Path) -> Vec<u8> {
    let issuer = Issuer::load(
        &keys_dir.join("intermediate.pem"),
        &keys_dir.join("intermediate.key"),
    )
    .unwrap();
    let ca = Ca::new(
        issuer,
        Profiles::default(),
        Arc::new(FakeStorage::default()),
        Arc::new(clock()),
    );
    let subject_key = KeyPair::generate().unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&subject_key)
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

/// `openssl verify` at the fixed time, or `None` when openssl is not installed.
fn openssl_verify(root: &Path, untrusted: &Path, leaf: &Path) -> Option<(bool, String)> {
    let output = match std::process::Command::new("openssl")
        .arg("verify")
        .arg("-attime")
        .arg(fixed_now().unix_timestamp().to_string())
        .arg("-CAfile")
        .arg(root)
        .arg("-untrusted")
        .arg(untrusted)
        .arg(leaf)
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => panic!("cannot run openssl: {err}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), text))
}

#[tokio::test]
async fn cross_signed_intermediate_gives_a_second_chain() {
    let dir = TempDir::new();
    let keys = dir.path().join("ca-keys");
    let out = dir.path().join("public");
    let hierarchy = generate_hierarchy(&keys, &clock()).unwrap();
    let cross = generate_cross_signed_chain(&keys, &out, &clock()).unwrap();
    assert_eq!(cross.root.cert, out.join("root-x2.pem"));
    assert_eq!(cross.root.key, keys.join("root-x2.key"));
    assert_eq!(cross.intermediate, out.join("intermediate-x2.pem"));
    assert_owner_only(&cross.root.key);

    let root_der = load(&hierarchy.root.cert);
    let intermediate_der = load(&hierarchy.intermediate.cert);
    let root_x2_der = load(&cross.root.cert);
    let intermediate_x2_der = load(&cross.intermediate);
    let root = parse(&root_der);
    let intermediate = parse(&intermediate_der);
    let root_x2 = parse(&root_x2_der);
    let intermediate_x2 = parse(&intermediate_x2_der);
    let days = |cert: &X509Certificate<'_>| {
        (cert.validity().not_after.timestamp() - fixed_now().unix_timestamp()) / 86_400
    };

    // Root X2: a distinct self-signed root, CA with pathlen 1, 10 years, whose key
    // is the one written.
    assert_eq!(common_name(&root_x2), ROOT_X2_CN);
    assert_ne!(root_x2.subject().as_raw(), root.subject().as_raw());
    assert_ne!(root_x2.public_key().raw, root.public_key().raw);
    let bc = root_x2.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(1));
    assert_eq!(days(&root_x2), 3650);
    let root_x2_key = KeyPair::from_pem(&fs::read_to_string(&cross.root.key).unwrap()).unwrap();
    assert_eq!(
        root_x2.public_key().subject_public_key.data.as_ref(),
        root_x2_key.public_key_raw()
    );

    // The cross-signed intermediate: same name, key and SKI, another issuer.
    assert_eq!(
        intermediate_x2.subject().as_raw(),
        intermediate.subject().as_raw()
    );
    assert_eq!(
        intermediate_x2.public_key().raw,
        intermediate.public_key().raw
    );
    assert_eq!(
        key_id(&intermediate_x2, false),
        key_id(&intermediate, false)
    );
    assert_ne!(intermediate_x2.raw_serial(), intermediate.raw_serial());
    assert_eq!(intermediate_x2.raw_serial().len(), 20);
    let bc = intermediate_x2.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(0));
    assert_eq!(
        intermediate_x2.key_usage().unwrap().unwrap().value.flags,
        intermediate.key_usage().unwrap().unwrap().value.flags
    );
    assert_eq!(days(&intermediate_x2), 1825);
    assert!(
        intermediate_x2
            .verify_signature(Some(root.public_key()))
            .is_err()
    );

    // A leaf of the CA verifies through both chains.
    let leaf_der = issue_leaf(&keys).await;
    let leaf = parse(&leaf_der);
    assert_chains(&[&leaf, &intermediate, &root]);
    assert_chains(&[&leaf, &intermediate_x2, &root_x2]);

    let leaf_pem = dir.path().join("leaf.pem");
    write_pem(&leaf_pem, &leaf_der);
    match openssl_verify(&cross.root.cert, &cross.intermediate, &leaf_pem) {
        None => println!("note: openssl is not on PATH, skipping the openssl verify check"),
        Some((ok, text)) => {
            assert!(ok && text.contains(": OK"), "{text}");
            let (ok, text) = openssl_verify(
                &hierarchy.root.cert,
                &hierarchy.intermediate.cert,
                &leaf_pem,
            )
            .unwrap();
            assert!(ok && text.contains(": OK"), "{text}");
            // Root X2 does not vouch for the original intermediate, nor root.pem
            // for the cross-signed one.
            let (ok, text) =
                openssl_verify(&cross.root.cert, &hierarchy.intermediate.cert, &leaf_pem).unwrap();
            assert!(!ok, "{text}");
            let (ok, text) =
                openssl_verify(&hierarchy.root.cert, &cross.intermediate, &leaf_pem).unwrap();
            assert!(!ok, "{text}");
        }
    }

    // Run again, it makes a new Root X2 and still chains.
    let again = generate_cross_signed_chain(&keys, &out, &clock()).unwrap();
    assert_eq!(again, cross);
    let root_x2_again = load(&again.root.cert);
    assert_ne!(root_x2_again, root_x2_der);
    let intermediate_x2_again = load(&again.intermediate);
    assert_chains(&[
        &leaf,
        &parse(&intermediate_x2_again),
        &parse(&root_x2_again),
    ]);
}

#[test]
fn cross_signing_refuses_an_inconsistent_hierarchy() {
    let dir = TempDir::new();
    let keys = dir.path().join("ca-keys");
    let out = dir.path().join("public");
    let hierarchy = generate_hierarchy(&keys, &clock()).unwrap();

    // No hierarchy at all.
    let err = generate_cross_signed_chain(&dir.path().join("missing"), &out, &clock()).unwrap_err();
    assert_eq!(err.kind, basalt_core::ErrorKind::Internal);

    // intermediate.key does not belong to intermediate.pem.
    let good_key = fs::read(&hierarchy.intermediate.key).unwrap();
    fs::copy(&hierarchy.root.key, &hierarchy.intermediate.key).unwrap();
    let err = generate_cross_signed_chain(&keys, &out, &clock()).unwrap_err();
    assert!(err.detail.contains("intermediate.pem"), "{err}");
    fs::write(&hierarchy.intermediate.key, good_key).unwrap();

    // root.pem is not the intermediate's issuer.
    let other = dir.path().join("other");
    let other_hierarchy = generate_hierarchy(&other, &clock()).unwrap();
    fs::copy(&other_hierarchy.root.cert, &hierarchy.root.cert).unwrap();
    let err = generate_cross_signed_chain(&keys, &out, &clock()).unwrap_err();
    assert!(err.detail.contains("is not signed by"), "{err}");

    // Nothing was written by the failed runs.
    assert!(!out.exists());
    assert!(!keys.join("root-x2.key").exists());
}
