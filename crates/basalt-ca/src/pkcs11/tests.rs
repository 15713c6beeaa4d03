use std::process::Command;

use ring::rand::SystemRandom;
use ring::signature;
use ring::signature::KeyPair as _;

use super::*;
use crate::key::CaKey;
use crate::key::KeySource;
use crate::softhsm;

/// Set in the child process that does a SoftHSM test's work: the directory of
/// its token, whose configuration `SOFTHSM2_CONF` names.
const CHILD_ENV: &str = "BASALT_PKCS11_TEST_DIR";
const TOKEN: &str = "basalt-test";
const SO_PIN: &str = "so-pin-4321";
const USER_PIN: &str = "user-pin-8765";

/// A fresh SoftHSM2 token, seen from the child process.
struct Lab {
    dir: PathBuf,
    module: PathBuf,
}

impl Lab {
    /// The key labelled `key_label` in the lab's token, with the right PIN.
    fn config(&self, key_label: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: TOKEN.to_owned(),
            key_label: key_label.to_owned(),
            pin_file: self.dir.join("user.pin"),
        }
    }
}

/// Runs `body` with a fresh SoftHSM2 token. SoftHSM reads `SOFTHSM2_CONF` when
/// the module is initialised, and tests cannot set environment variables, so
/// the test (`name`, its function's name) runs again as a child process of this
/// test binary with the variable set, and that child does the work.
fn in_softhsm(name: &str, body: impl FnOnce(&Lab)) {
    let module = softhsm::module_path().unwrap_or_else(|| {
        panic!(
            "SoftHSM2 is not installed (no libsofthsm2.so): apt-get install softhsm2, \
             or set {} to the module's path",
            softhsm::MODULE_ENV
        )
    });
    let done = |dir: &Path| dir.join(format!("{name}.done"));
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let lab = Lab {
            dir: dir.into(),
            module,
        };
        body(&lab);
        fs::write(done(&lab.dir), b"").unwrap();
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "basalt-pkcs11-{name}-{}-{}",
        std::process::id(),
        hex(&rand::random::<[u8; 6]>())
    ));
    let conf = softhsm::write_config(&dir).unwrap();
    softhsm::init_token(&conf, TOKEN, SO_PIN, USER_PIN).unwrap();
    fs::write(dir.join("user.pin"), format!("{USER_PIN}\n")).unwrap();
    // libtest names tests by their path inside the crate.
    let test = format!("{}::{name}", module_path!().split_once("::").unwrap().1);
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(softhsm::CONF_ENV, &conf)
        .env(CHILD_ENV, &dir)
        .output()
        .unwrap();
    assert!(
        output.status.success() && done(&dir).exists(),
        "{test} failed in its SoftHSM child process ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// Checks `signature` over `msg` with the public key of `key`.
fn verify(key: &Pkcs11Key, msg: &[u8], signature: &[u8]) {
    let alg: &dyn signature::VerificationAlgorithm = match key.kind {
        KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyKind::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
    };
    signature::UnparsedPublicKey::new(alg, key.public_key_bits())
        .verify(msg, signature)
        .unwrap_or_else(|_| panic!("the {:?} signature does not verify", key.kind));
}

/// Generates a key of type `alg`, opens it again, and signs with both.
fn generate_reopen_and_sign(lab: &Lab, alg: KeyAlgorithm) {
    let config = lab.config(&format!("issuer-{alg}"));
    let made = Pkcs11Key::generate(&config, alg).unwrap();
    assert_eq!(made.algorithm(), alg.signature_algorithm());
    let opened = Pkcs11Key::open(&config).unwrap();
    assert_eq!(opened.algorithm(), alg.signature_algorithm());
    assert_eq!(opened.public_key_bits(), made.public_key_bits());
    for key in [&made, &opened] {
        for msg in [&b"tbsCertificate"[..], b"", &[0xa5; 4096]] {
            verify(key, msg, &key.sign(msg).unwrap());
        }
    }
    // The private key never leaves the token.
    let live = opened.live.lock().unwrap();
    let live = live.as_ref().unwrap();
    let flags = live
        .session
        .get_attributes(
            live.private_key,
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Sign,
            ],
        )
        .unwrap();
    assert_eq!(
        flags,
        [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ]
    );
}

#[test]
fn ecdsa_p256_keys_generate_reopen_and_sign() {
    in_softhsm("ecdsa_p256_keys_generate_reopen_and_sign", |lab| {
        generate_reopen_and_sign(lab, KeyAlgorithm::EcdsaP256);
    });
}

#[test]
fn ecdsa_p384_keys_generate_reopen_and_sign() {
    in_softhsm("ecdsa_p384_keys_generate_reopen_and_sign", |lab| {
        generate_reopen_and_sign(lab, KeyAlgorithm::EcdsaP384);
    });
}

#[test]
fn rsa_2048_keys_generate_reopen_and_sign() {
    in_softhsm("rsa_2048_keys_generate_reopen_and_sign", |lab| {
        generate_reopen_and_sign(lab, KeyAlgorithm::Rsa2048);
    });
}

#[test]
fn a_label_in_use_is_never_generated_over() {
    in_softhsm("a_label_in_use_is_never_generated_over", |lab| {
        let config = lab.config("root");
        let first = Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP256).unwrap();
        let err = Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP384)
            .err()
            .unwrap();
        assert!(
            err.detail
                .contains("already holds 2 object(s) labelled \"root\""),
            "{err}"
        );
        // The first key is still the one in the token.
        let opened = Pkcs11Key::open(&config).unwrap();
        assert_eq!(opened.public_key_bits(), first.public_key_bits());
        assert_eq!(opened.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    });
}

#[test]
fn a_wrong_pin_is_refused() {
    in_softhsm("a_wrong_pin_is_refused", |lab| {
        let config = lab.config("issuer");
        Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP256).unwrap();
        let wrong = lab.dir.join("wrong.pin");
        fs::write(&wrong, "not-the-pin\n").unwrap();
        let config = Pkcs11Config {
            pin_file: wrong.clone(),
            ..config
        };
        let err = Pkcs11Key::open(&config).err().unwrap();
        assert_eq!(
            err.detail,
            format!(
                "the PIN in {} is not the user PIN of PKCS#11 token \"{TOKEN}\"",
                wrong.display()
            )
        );
        let err = Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP256)
            .err()
            .unwrap();
        assert!(err.detail.contains("is not the user PIN"), "{err}");
    });
}

#[test]
fn unknown_tokens_and_keys_are_named() {
    in_softhsm("unknown_tokens_and_keys_are_named", |lab| {
        Pkcs11Key::generate(&lab.config("issuer"), KeyAlgorithm::EcdsaP256).unwrap();
        let config = Pkcs11Config {
            token_label: "no-such-token".to_owned(),
            ..lab.config("issuer")
        };
        let err = Pkcs11Key::open(&config).err().unwrap();
        assert!(
            err.detail
                .contains("no PKCS#11 token labelled \"no-such-token\"")
                && err.detail.contains(&format!("[\"{TOKEN}\"]")),
            "{err}"
        );
        let err = Pkcs11Key::open(&lab.config("no-such-key")).err().unwrap();
        assert_eq!(
            err.detail,
            format!("no private key labelled \"no-such-key\" in PKCS#11 token \"{TOKEN}\"")
        );
        let config = Pkcs11Config {
            module: lab.dir.join("no-such-module.so"),
            ..lab.config("issuer")
        };
        let err = Pkcs11Key::open(&config).err().unwrap();
        assert!(
            err.detail.contains("cannot load the PKCS#11 module")
                && err.detail.contains("no-such-module.so"),
            "{err}"
        );
    });
}

#[test]
fn ca_keys_in_a_token_sign_certificates() {
    in_softhsm("ca_keys_in_a_token_sign_certificates", |lab| {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let source = KeySource::Pkcs11(lab.config(&format!("ca-{alg}")));
            let made = CaKey::generate(&source, alg).unwrap();
            let key = CaKey::load(&source).unwrap();
            assert_eq!(key.storage(), "pkcs11");
            assert_eq!(
                key.subject_public_key_info(),
                made.subject_public_key_info()
            );
            let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("Basalt {alg} test root"));
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let cert = params.self_signed(&key).unwrap();
            let (rest, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
            assert!(rest.is_empty());
            assert_eq!(
                parsed.public_key().raw,
                key.subject_public_key_info().as_slice(),
                "{alg}"
            );
            parsed
                .verify_signature(None)
                .unwrap_or_else(|err| panic!("{alg}: {err}"));
        }
    });
}

/// An issuer whose key is in a token signs CRLs through the same rcgen issuer as
/// certificates: the CA's own checks pass and the signature verifies.
#[test]
fn ca_keys_in_a_token_sign_crls() {
    in_softhsm("ca_keys_in_a_token_sign_crls", |lab| {
        use basalt_core::CrlRequest;
        use basalt_core::FixedClock;
        use basalt_core::RevocationReason;
        use basalt_core::RevokedEntry;

        use crate::test_support::FakeStorage;
        use crate::test_support::fixed_now;

        for alg in [KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let source = KeySource::Pkcs11(lab.config(&format!("crl-{alg}")));
            let made = CaKey::generate(&source, alg).unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
            params.distinguished_name.push(
                rcgen::DnType::CommonName,
                format!("Basalt {alg} CRL test CA"),
            );
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
            ];
            let cert = params.self_signed(&made).unwrap();
            let key = CaKey::load(&source).unwrap();
            let issuer = crate::Issuer::from_der(cert.der().to_vec(), key)
                .unwrap()
                .with_crl_url_base("http://crl.example/token/")
                .unwrap();
            let key_hash = issuer.key_hash().to_vec();
            let ca = crate::Ca::new(
                issuer,
                crate::Profiles::default(),
                std::sync::Arc::new(FakeStorage::default()),
                std::sync::Arc::new(FixedClock::new(fixed_now())),
            )
            .with_crl(
                std::num::NonZeroU32::new(2).unwrap(),
                std::time::Duration::from_secs(86_400),
            );
            let der = ca
                .sign_crl(CrlRequest {
                    issuer_key_hash: key_hash,
                    shard: 1,
                    this_update: fixed_now(),
                    entries: vec![RevokedEntry {
                        serial: "ff01".parse().unwrap(),
                        revoked_at: fixed_now(),
                        reason: RevocationReason::KeyCompromise,
                    }],
                })
                .unwrap_or_else(|err| panic!("{alg}: {err}"));
            let (rest, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            assert!(rest.is_empty());
            let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
            crl.verify_signature(parsed.public_key())
                .unwrap_or_else(|err| panic!("{alg}: {err}"));
            assert_eq!(crl.iter_revoked_certificates().count(), 1, "{alg}");
            assert_eq!(ca.issuer().signatures(), 1, "{alg}");
        }
    });
}

/// A delegated OCSP responder whose key is in a token: the CA loads it (the
/// token's key matches the certificate) and it signs the issuer's responses.
#[test]
fn delegated_ocsp_keys_in_a_token_sign_responses() {
    in_softhsm("delegated_ocsp_keys_in_a_token_sign_responses", |lab| {
        use basalt_core::CertIdHash;
        use basalt_core::FixedClock;
        use basalt_core::OcspRequestEntry;
        use basalt_core::OcspStatus;
        use basalt_core::RevocationSigner;
        use der::Decode;
        use der::Encode;

        use crate::test_support::FakeStorage;
        use crate::test_support::delegated_signer_cert;
        use crate::test_support::fixed_now;
        use crate::test_support::test_issuer;

        for (alg, verification) in [
            (
                KeyAlgorithm::EcdsaP384,
                &signature::ECDSA_P384_SHA384_ASN1 as &dyn signature::VerificationAlgorithm,
            ),
            (
                KeyAlgorithm::Rsa2048,
                &signature::RSA_PKCS1_2048_8192_SHA256,
            ),
        ] {
            let source = KeySource::Pkcs11(lab.config(&format!("ocsp-{alg}")));
            let made = CaKey::generate(&source, alg).unwrap();
            let (issuer, _root) = test_issuer();
            let cert = delegated_signer_cert(&issuer, &made, |_| {});
            // A key from another label of the token is not the certificate's.
            let other = KeySource::Pkcs11(lab.config(&format!("other-{alg}")));
            CaKey::generate(&other, alg).unwrap();
            let (another, _root) = test_issuer();
            let its_cert = delegated_signer_cert(&another, &made, |_| {});
            let err = another
                .with_ocsp_signer(its_cert, CaKey::load(&other).unwrap(), fixed_now())
                .unwrap_err();
            assert!(
                err.detail
                    .contains("does not match the certificate's public key"),
                "{err}"
            );

            let issuer = issuer
                .with_ocsp_signer(cert.clone(), CaKey::load(&source).unwrap(), fixed_now())
                .unwrap();
            let key_hash = issuer.key_hash().to_vec();
            let ca = crate::Ca::new(
                issuer,
                crate::Profiles::default(),
                std::sync::Arc::new(FakeStorage::default()),
                std::sync::Arc::new(FixedClock::new(fixed_now())),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let responses = rt
                .block_on(ca.sign_ocsp(vec![OcspRequestEntry {
                    serial: "0102".parse().unwrap(),
                    status: OcspStatus::Good,
                    revoked_at: None,
                    reason: None,
                    issuer_key_hash: key_hash,
                    hash_algorithm: CertIdHash::Sha1,
                }]))
                .unwrap_or_else(|err| panic!("{alg}: {err}"));
            let response = x509_ocsp::OcspResponse::from_der(&responses[0]).unwrap();
            let basic = x509_ocsp::BasicOcspResponse::from_der(
                response.response_bytes.unwrap().response.as_bytes(),
            )
            .unwrap();
            let certs: Vec<Vec<u8>> = basic
                .certs
                .iter()
                .flatten()
                .map(|cert| cert.to_der().unwrap())
                .collect();
            assert_eq!(certs, std::slice::from_ref(&cert), "{alg}");
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
            signature::UnparsedPublicKey::new(
                verification,
                parsed.public_key().subject_public_key.data.as_ref(),
            )
            .verify(
                &basic.tbs_response_data.to_der().unwrap(),
                basic.signature.raw_bytes(),
            )
            .unwrap_or_else(|_| panic!("{alg}: signed by the token's key"));
            let signer = ca.issuer().ocsp_signer().unwrap();
            assert_eq!(signer.signatures(), 1, "{alg}");
            assert!(format!("{signer:?}").contains("pkcs11"), "{signer:?}");
        }
    });
}

#[test]
fn a_lost_login_is_recovered_once() {
    in_softhsm("a_lost_login_is_recovered_once", |lab| {
        let config = lab.config("issuer");
        Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP256).unwrap();
        let key = Pkcs11Key::open(&config).unwrap();
        let log_out = || {
            let slot = find_slot(&key.context, &config).unwrap();
            key.context.open_ro_session(slot).unwrap().logout().unwrap();
        };
        // Logging out any session logs out them all, as a token reset would.
        let handle = || key.live.lock().unwrap().as_ref().unwrap().session.handle();
        let first = handle();
        log_out();
        verify(
            &key,
            b"after a logout",
            &key.sign(b"after a logout").unwrap(),
        );
        let second = handle();
        assert_ne!(second, first, "the key signed without a new session");
        verify(&key, b"and again", &key.sign(b"and again").unwrap());
        assert_eq!(handle(), second);

        // The key pair is replaced under the same label: the key refuses it.
        {
            let slot = find_slot(&key.context, &config).unwrap();
            let session = key.context.open_rw_session(slot).unwrap();
            let label = Attribute::Label(config.key_label.as_bytes().to_vec());
            for object in session.find_objects(&[label]).unwrap() {
                session.destroy_object(object).unwrap();
            }
        }
        let err = key.sign(b"deleted").unwrap_err();
        assert_eq!(
            err.detail,
            format!("no private key labelled \"issuer\" in PKCS#11 token \"{TOKEN}\"")
        );
        Pkcs11Key::generate(&config, KeyAlgorithm::EcdsaP256).unwrap();
        log_out();
        let err = key.sign(b"replaced").unwrap_err();
        assert_eq!(
            err.detail,
            format!(
                "the key labelled \"issuer\" in PKCS#11 token \"{TOKEN}\" is no longer the \
                 key pair opened at start: refusing to sign with it"
            )
        );
        // Every later signature is refused too.
        assert!(key.sign(b"again").is_err());
    });
}

#[test]
fn pin_files_are_trimmed_and_must_hold_a_pin() {
    let dir = std::env::temp_dir().join(format!(
        "basalt-pkcs11-pin-{}-{}",
        std::process::id(),
        hex(&rand::random::<[u8; 6]>())
    ));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pin");
    fs::write(&path, " 1234 \n").unwrap();
    assert_eq!(read_pin(&path).unwrap(), "1234");
    fs::write(&path, " \n\t").unwrap();
    assert_eq!(
        read_pin(&path).unwrap_err().detail,
        format!("the PKCS#11 PIN file {} is empty", path.display())
    );
    let missing = dir.join("missing");
    let err = read_pin(&missing).unwrap_err();
    assert!(
        err.detail.starts_with(&format!(
            "cannot read the PKCS#11 PIN file {}: ",
            missing.display()
        )),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn raw_ecdsa_signatures_become_der() {
    let mut high_r = [0u8; 64];
    high_r[0] = 0x80;
    high_r[63] = 0x01;
    let mut expected = vec![0x30, 0x26, 0x02, 0x21, 0x00, 0x80];
    expected.extend([0; 31]);
    expected.extend([0x02, 0x01, 0x01]);
    assert_eq!(ecdsa_signature_der(&high_r).unwrap(), expected);

    // Leading zeros go, and a zero that is left is kept once.
    let mut zeros = [0u8; 64];
    zeros[1] = 0xff;
    zeros[2] = 0x01;
    zeros[34] = 0x7f;
    let mut expected = vec![0x30, 0x42, 0x02, 0x20, 0x00, 0xff, 0x01];
    expected.extend([0; 29]);
    expected.extend([0x02, 0x1e, 0x7f]);
    expected.extend([0; 29]);
    assert_eq!(ecdsa_signature_der(&zeros).unwrap(), expected);
    assert_eq!(
        ecdsa_signature_der(&[0; 64]).unwrap(),
        [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
    );

    assert!(ecdsa_signature_der(&[]).is_err());
    assert!(ecdsa_signature_der(&[1; 63]).is_err());

    // Real signatures, half of them with a high bit set in r or s.
    let rng = SystemRandom::new();
    for (signing, verifying, field_len) in [
        (
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
            32,
        ),
        (
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
            48,
        ),
    ] {
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        let key = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
        for i in 0..32u8 {
            let msg = [i; 10];
            let raw = key.sign(&rng, &msg).unwrap();
            assert_eq!(raw.as_ref().len(), 2 * field_len);
            let der = ecdsa_signature_der(raw.as_ref()).unwrap();
            signature::UnparsedPublicKey::new(verifying, key.public_key().as_ref())
                .verify(&msg, &der)
                .unwrap();
        }
    }
}

#[test]
fn rsa_public_keys_become_pkcs1() {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;

    // A 2048-bit modulus (its high bit set) after a stray leading zero.
    let mut modulus = vec![0x00, 0xc3];
    modulus.extend((0..255u8).map(|i| i.wrapping_mul(37) | 1));
    let der = rsa_public_key_der(&modulus, &RSA_EXPONENT);
    assert_eq!(&der[..4], [0x30, 0x82, 0x01, 0x0a]);
    assert_eq!(&der[4..9], [0x02, 0x82, 0x01, 0x01, 0x00]);
    let key = rsa::RsaPublicKey::from_pkcs1_der(&der).unwrap();
    assert_eq!(key.n().to_bytes_be(), modulus[1..]);
    assert_eq!(key.e().to_bytes_be(), RSA_EXPONENT);
    assert_eq!(bit_len(&modulus), 2048);
    assert_eq!(bit_len(&[0x00, 0x01, 0x00]), 9);
    assert_eq!(bit_len(&[0, 0]), 0);
}

#[test]
fn ec_points_are_unwrapped() {
    let mut point = vec![0x04];
    point.extend([0x11; 64]);
    let mut wrapped = vec![0x04, 0x41];
    wrapped.extend(&point);
    assert_eq!(uncompressed_point(&wrapped, 32), Some(point.clone()));
    assert_eq!(uncompressed_point(&point, 32), Some(point.clone()));
    // A point of the other curve, a compressed point, and junk.
    assert_eq!(uncompressed_point(&wrapped, 48), None);
    let mut compressed = vec![0x04, 0x21, 0x02];
    compressed.extend([0x11; 32]);
    assert_eq!(uncompressed_point(&compressed, 32), None);
    assert_eq!(uncompressed_point(&[0x04, 0x41, 0x04], 32), None);
}

#[test]
fn errors_name_the_return_value() {
    let err = CryptokiError::Pkcs11(
        RvError::SessionHandleInvalid,
        cryptoki::context::Function::Sign,
    );
    assert_eq!(describe(&err), "C_Sign: CKR_SESSION_HANDLE_INVALID");
    assert!(session_lost(&err));
    let err = CryptokiError::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login);
    assert_eq!(describe(&err), "C_Login: CKR_PIN_INCORRECT");
    assert!(!session_lost(&err));
    let err = CryptokiError::Pkcs11(
        RvError::VendorDefined(0x8000_0001),
        cryptoki::context::Function::Sign,
    );
    assert_eq!(describe(&err), "C_Sign: CKR_VENDOR_DEFINED(0x80000001)");
}
