//! Tests of `basalt admin`: argument parsing, outputs, and what reaches the RA.

use std::time::Duration;

use super::*;

#[test]
fn eab_keys_are_random_and_long_enough() {
    let a = new_eab_key("a".into(), &SystemClock).unwrap();
    let b = new_eab_key("b".into(), &SystemClock).unwrap();
    assert_ne!(a.key_id, b.key_id);
    assert_ne!(a.hmac_key, b.hmac_key);
    assert_eq!(a.hmac_key.len(), 32);
    assert!(!a.revoked && a.account_id.is_none());
    for key in [&a, &b] {
        assert_eq!(key.key_id.len(), 32, "{}", key.key_id);
        assert!(
            key.key_id
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
            "{}",
            key.key_id
        );
    }
}

#[test]
fn an_eab_key_id_beginning_with_a_hyphen_can_be_revoked() {
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }
    let cli = <Cli as clap::Parser>::try_parse_from([
        "basalt", "--config", "c.toml", "eab", "revoke", "-kH3x_9",
    ])
    .unwrap();
    match cli.admin.command {
        AdminCommand::Eab(EabCommand::Revoke { key_id }) => assert_eq!(key_id, "-kH3x_9"),
        other => panic!("parsed as {other:?}"),
    }
}

/// Parses `basalt admin --config c.toml block-key ARGS…`.
fn block_key_args(args: &[&str]) -> Result<BlockKeyArgs, clap::Error> {
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }
    let argv = ["basalt", "--config", "c.toml", "block-key"]
        .iter()
        .chain(args);
    let cli = <Cli as clap::Parser>::try_parse_from(argv)?;
    match cli.admin.command {
        AdminCommand::BlockKey(args) => Ok(args),
        other => panic!("parsed as {other:?}"),
    }
}

/// What `block-key FLAG FILE` makes of a file holding `contents`; the file is
/// removed afterwards.
fn hash_from_file(flag: &str, name: &str, contents: &str) -> anyhow::Result<SpkiHash> {
    let path = std::env::temp_dir().join(format!(
        "basalt-admin-test-{}-{:x}-{name}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&path, contents).unwrap();
    let args = block_key_args(&[flag, path.to_str().unwrap()]).unwrap();
    let hash = blocked_key_hash(&args);
    std::fs::remove_file(&path).unwrap();
    hash
}

fn rand_suffix() -> u64 {
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

#[test]
fn block_key_takes_exactly_one_key() {
    let args = block_key_args(&["--spki-sha256", &"ab".repeat(32)]).unwrap();
    assert_eq!(args.comment, "");
    let args = block_key_args(&["--cert", "c.pem", "--comment", "leaked"]).unwrap();
    assert_eq!(args.cert, Some(PathBuf::from("c.pem")));
    assert_eq!(args.comment, "leaked");
    block_key_args(&["--csr", "r.pem"]).unwrap();
    block_key_args(&["--public-key", "k.pem"]).unwrap();

    let none = block_key_args(&["--comment", "why"]).unwrap_err();
    assert_eq!(none.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    let two = block_key_args(&["--cert", "c.pem", "--csr", "r.pem"]).unwrap_err();
    assert_eq!(two.kind(), clap::error::ErrorKind::ArgumentConflict);
}

/// The certificate, its CSR and its public key all name the same key, with the
/// SHA-256 of the very SubjectPublicKeyInfo they carry.
#[test]
fn every_input_names_the_same_key() {
    use rcgen::PublicKeyData;

    let key = rcgen::KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let want = spki_sha256(&spki);
    let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let public_key = key.public_key_pem();
    // A chain file: the first certificate is the one named.
    let other = rcgen::KeyPair::generate().unwrap();
    let chain = format!("{cert}{}", params.self_signed(&other).unwrap().pem());

    let hash_of =
        |flag: &str, file: &str, contents: &str| hash_from_file(flag, file, contents).unwrap();
    assert_eq!(hash_of("--cert", "cert.pem", &cert), want);
    assert_eq!(hash_of("--cert", "chain.pem", &chain), want);
    assert_eq!(hash_of("--csr", "csr.pem", &csr), want);
    assert_eq!(hash_of("--public-key", "key.pem", &public_key), want);
    let hex = want.to_string().to_uppercase();
    let args = block_key_args(&["--spki-sha256", &hex]).unwrap();
    assert_eq!(blocked_key_hash(&args).unwrap(), want);
}

#[test]
fn wrong_inputs_say_what_is_wrong() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let error = |flag: &str, file: &str, contents: &str| {
        format!("{:#}", hash_from_file(flag, file, contents).unwrap_err())
    };
    let err = error("--cert", "csr-as-cert.pem", &csr);
    assert!(err.contains("no PEM block labelled CERTIFICATE"), "{err}");
    assert!(err.starts_with("--cert "), "{err}");
    let err = error("--csr", "key-as-csr.pem", &key.public_key_pem());
    assert!(err.contains("CERTIFICATE REQUEST"), "{err}");
    let err = error("--public-key", "csr-as-key.pem", &csr);
    assert!(err.contains("PUBLIC KEY"), "{err}");
    let err = error("--cert", "garbage.pem", garbage);
    assert!(err.contains("not a valid certificate"), "{err}");
    let err = error("--cert", "empty.pem", "");
    assert!(err.contains("no PEM block"), "{err}");

    let args = block_key_args(&["--cert", "/nonexistent/basalt/cert.pem"]).unwrap();
    let err = format!("{:#}", blocked_key_hash(&args).unwrap_err());
    assert!(
        err.contains("cannot read /nonexistent/basalt/cert.pem"),
        "{err}"
    );
    for bad in ["abc", &"zz".repeat(32), &"ab".repeat(33)] {
        let args = block_key_args(&["--spki-sha256", bad]).unwrap();
        let err = blocked_key_hash(&args).unwrap_err().to_string();
        assert!(err.starts_with("--spki-sha256: "), "{err}");
    }
}

/// Parses `basalt admin --config c.toml ARGS…`.
fn admin_command(args: &[&str]) -> Result<AdminCommand, clap::Error> {
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }
    let argv = ["basalt", "--config", "c.toml"].iter().chain(args);
    Ok(<Cli as clap::Parser>::try_parse_from(argv)?.admin.command)
}

#[test]
fn revoke_takes_a_serial_and_a_named_reason() {
    let command =
        admin_command(&["revoke", "--serial", "0A0b", "--reason", "keyCompromise"]).unwrap();
    let AdminCommand::Revoke(args) = command else {
        panic!("parsed as {command:?}");
    };
    assert_eq!(args.reason, RevocationReason::KeyCompromise);
    assert_eq!(parse_serial(&args.serial).unwrap().to_string(), "0a0b");

    for reason in RevocationReason::ALL {
        let command =
            admin_command(&["revoke", "--serial", "01", "--reason", reason.as_str()]).unwrap();
        assert!(matches!(command, AdminCommand::Revoke(args) if args.reason == reason));
    }
    let err = admin_command(&["revoke", "--serial", "01", "--reason", "cACompromise"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("privilegeWithdrawn"), "{err}");
    let missing = admin_command(&["revoke", "--serial", "01"]).unwrap_err();
    assert_eq!(
        missing.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn revoke_names_the_operator() {
    let revoke_args = |extra: &[&str]| {
        let mut argv = vec!["revoke", "--serial", "01", "--reason", "superseded"];
        argv.extend_from_slice(extra);
        match admin_command(&argv) {
            Ok(AdminCommand::Revoke(args)) => Ok(args.by),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(err) => Err(err.kind()),
        }
    };
    assert_eq!(revoke_args(&[]), Ok(None));
    assert_eq!(
        revoke_args(&["--by", "alice"]),
        Ok(Some("alice".to_owned()))
    );
    assert_eq!(
        revoke_args(&["--by", ""]),
        Err(clap::error::ErrorKind::InvalidValue)
    );

    let user = |name: &str| Some(name.to_owned());
    assert_eq!(operator_name(user("alice"), user("bob")), "alice");
    assert_eq!(operator_name(None, user("bob")), "bob");
    assert_eq!(operator_name(None, user("  ")), "operator");
    assert_eq!(operator_name(None, None), "operator");
}

#[test]
fn serials_are_read_as_operators_copy_them() {
    for (text, want) in [
        ("7f01ab", "7f01ab"),
        ("0x7F01AB", "7f01ab"),
        ("7f:01:ab", "7f01ab"),
        (" 0X7f01ab\n", "7f01ab"),
        ("f01ab", "0f01ab"),
        ("00ff", "ff"),
    ] {
        assert_eq!(parse_serial(text).unwrap().to_string(), want, "{text:?}");
    }
    for bad in ["", "0x", "zz", "12 34", &"ab".repeat(21)] {
        let err = parse_serial(bad).unwrap_err().to_string();
        assert!(err.starts_with("--serial "), "{bad:?}: {err}");
    }
}

/// The RA and the SA as far as `revoke` and `rate-limit` use them: serials with
/// their status, the revocations the RA was asked for, and the overrides it
/// holds. It revokes as the RA does for an operator: keyCompromise may replace
/// an earlier reason, any other repeat is `AlreadyRevoked`.
#[derive(Default)]
struct Fake {
    statuses: std::sync::Mutex<Vec<basalt_core::RevocationStatus>>,
    requests: std::sync::Mutex<Vec<RevokeRequest>>,
    overrides: std::sync::Mutex<Vec<RateLimitOverride>>,
    /// What `revoke_certificate` fails with, if set.
    fail_with: Option<ErrorKind>,
    /// Serials `revoke_certificate` refuses.
    refused: Vec<Serial>,
    /// The most certificates one search returns, when less than the query's limit.
    search_page: Option<usize>,
}

type CoreResult<T> = Result<T, basalt_core::Error>;

fn unused<T>() -> CoreResult<T> {
    Err(basalt_core::Error::internal("not used by basalt admin"))
}

fn at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
}

/// The status of `serial`, a certificate for `a.example` with `key`, revoked for
/// `reason` if one is given.
fn status_of(
    serial: &Serial,
    key: &rcgen::KeyPair,
    precertificate: bool,
    revoked: Option<RevocationReason>,
) -> basalt_core::RevocationStatus {
    let der = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
        .unwrap()
        .self_signed(key)
        .unwrap()
        .der()
        .to_vec();
    basalt_core::RevocationStatus {
        serial: serial.clone(),
        der,
        precertificate,
        expires_at: at() + time::Duration::days(90),
        status: revoked.map_or(CertStatus::Good, |_| CertStatus::Revoked),
        revoked_at: revoked.map(|_| at()),
        revocation_reason: revoked,
    }
}

impl Fake {
    /// A fake holding `serial`, stored as a precertificate only or not, revoked
    /// for `reason` if one is given; returns the SHA-256 of its key too.
    fn with(
        serial: &Serial,
        precertificate: bool,
        revoked: Option<RevocationReason>,
    ) -> (Self, SpkiHash) {
        let key = rcgen::KeyPair::generate().unwrap();
        let fake = Self::default();
        fake.statuses
            .lock()
            .unwrap()
            .push(status_of(serial, &key, precertificate, revoked));
        let hash = spki_sha256(&rcgen::PublicKeyData::subject_public_key_info(&key));
        (fake, hash)
    }

    fn requests(&self) -> Vec<RevokeRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl RevocationLookup for Fake {
    async fn revocation_status(
        &self,
        serial: &Serial,
    ) -> CoreResult<basalt_core::RevocationStatus> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .find(|status| status.serial == *serial)
            .cloned()
            .ok_or_else(|| basalt_core::Error::not_found("no such serial"))
    }

    /// The fake records no CRL placements, so no shard lists any of its serials.
    async fn revoked_certificates(
        &self,
        _issuer_key_hash: &[u8],
        _shard: u32,
        _expires_after: OffsetDateTime,
    ) -> CoreResult<Vec<basalt_core::RevokedEntry>> {
        Ok(Vec::new())
    }

    async fn status_changes(
        &self,
        _since: OffsetDateTime,
        _limit: u32,
    ) -> CoreResult<Vec<basalt_core::StatusChange>> {
        unused()
    }
}

/// Searches by key only, as `revoke-key` does: the stored serials whose
/// certificate has the key, in the order stored, good ones only for `active_only`.
#[async_trait::async_trait]
impl CertificateSearch for Fake {
    async fn search_certificates(
        &self,
        query: &CertificateQuery,
    ) -> CoreResult<Vec<CertificateSummary>> {
        let CertificateSelector::Key(hash) = query.selector else {
            return unused();
        };
        let limit = usize::try_from(query.effective_limit()).unwrap();
        Ok(self
            .statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|status| spki_sha256(&der_certificate_spki(&status.der).unwrap()) == hash)
            .filter(|status| !query.active_only || status.status == CertStatus::Good)
            .take(self.search_page.unwrap_or(limit).min(limit))
            .map(|status| CertificateSummary {
                serial: status.serial.clone(),
                account_id: AccountId(7),
                names: vec![Identifier::dns("a.example")],
                not_before: at(),
                not_after: status.expires_at,
                status: status.status,
                revoked_at: status.revoked_at,
                revocation_reason: status.revocation_reason,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl RegistrationAuthority for Fake {
    async fn new_account(&self, _: basalt_core::NewAccount) -> CoreResult<basalt_core::Account> {
        unused()
    }
    async fn update_account_contacts(
        &self,
        _: AccountId,
        _: Vec<String>,
    ) -> CoreResult<basalt_core::Account> {
        unused()
    }
    async fn deactivate_account(&self, _: AccountId) -> CoreResult<basalt_core::Account> {
        unused()
    }
    async fn rollover_account_key(
        &self,
        _: AccountId,
        _: String,
        _: String,
    ) -> CoreResult<basalt_core::Account> {
        unused()
    }
    async fn new_order(&self, _: basalt_core::OrderRequest) -> CoreResult<Order> {
        unused()
    }
    async fn perform_validation(
        &self,
        _: basalt_core::AuthzId,
        _: basalt_core::ChallengeType,
    ) -> CoreResult<Authz> {
        unused()
    }
    async fn deactivate_authz(&self, _: basalt_core::AuthzId) -> CoreResult<Authz> {
        unused()
    }
    async fn finalize_order(&self, _: OrderId, _: Vec<u8>) -> CoreResult<Order> {
        unused()
    }

    async fn revoke_certificate(&self, request: RevokeRequest) -> CoreResult<()> {
        if let Some(kind) = self.fail_with {
            return Err(basalt_core::Error::new(kind, "refused by the fake"));
        }
        if self.refused.contains(&request.serial) {
            return Err(basalt_core::Error::unauthorized("this serial is refused"));
        }
        let mut statuses = self.statuses.lock().unwrap();
        let status = statuses
            .iter_mut()
            .find(|status| status.serial == request.serial)
            .ok_or_else(|| basalt_core::Error::not_found("no such serial"))?;
        let already = || basalt_core::Error::new(ErrorKind::AlreadyRevoked, "revoked");
        match status.status {
            CertStatus::Revoked
                if request.reason != RevocationReason::KeyCompromise
                    || status.revocation_reason == Some(RevocationReason::KeyCompromise) =>
            {
                return Err(already());
            }
            CertStatus::Revoked => status.revocation_reason = Some(request.reason),
            CertStatus::Good => {
                status.status = CertStatus::Revoked;
                status.revoked_at = Some(at() + time::Duration::hours(1));
                status.revocation_reason = Some(request.reason);
            }
        }
        self.requests.lock().unwrap().push(request);
        Ok(())
    }

    async fn add_rate_limit_override(&self, limit: RateLimitOverride) -> CoreResult<()> {
        let mut overrides = self.overrides.lock().unwrap();
        overrides.retain(|o| (&o.limit, &o.key) != (&limit.limit, &limit.key));
        overrides.push(limit);
        Ok(())
    }

    async fn remove_rate_limit_override(&self, limit: &str, key: &str) -> CoreResult<()> {
        let mut overrides = self.overrides.lock().unwrap();
        let before = overrides.len();
        overrides.retain(|o| (o.limit.as_str(), o.key.as_str()) != (limit, key));
        if overrides.len() == before {
            return Err(basalt_core::Error::not_found("no such override"));
        }
        Ok(())
    }

    async fn rate_limit_overrides(&self) -> CoreResult<Vec<RateLimitOverride>> {
        Ok(self.overrides.lock().unwrap().clone())
    }
}

/// A precertificate alone is revoked through the RA, on behalf of the named
/// operator, and said to be one; keyCompromise shows the key's hash.
#[tokio::test]
async fn revoke_says_what_it_revoked_and_who_asked() {
    let serial = parse_serial("0x0bad").unwrap();
    let (fake, hash) = Fake::with(&serial, true, None);
    let done = revoke(
        &fake,
        &fake,
        &serial,
        RevocationReason::KeyCompromise,
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(
        done,
        format!(
            "revoked serial 0bad (precertificate only; its certificate was never stored), \
             reason keyCompromise (1), by alice; its key is blocked (spki_sha256 {hash})"
        )
    );
    assert_eq!(
        fake.requests(),
        [RevokeRequest {
            serial: serial.clone(),
            reason: RevocationReason::KeyCompromise,
            requester: Requester::Operator("alice".to_owned()),
        }]
    );

    let other = parse_serial("0c").unwrap();
    let (fake, _) = Fake::with(&other, false, None);
    let done = revoke(
        &fake,
        &fake,
        &other,
        RevocationReason::PrivilegeWithdrawn,
        "bob",
    )
    .await
    .unwrap();
    assert_eq!(
        done,
        "revoked serial 0c (certificate), reason privilegeWithdrawn (9), by bob"
    );
}

/// A revoked serial is refused before the RA is asked, unless keyCompromise
/// replaces another reason; then it says so.
#[tokio::test]
async fn a_revoked_serial_is_refused_unless_key_compromise_replaces_its_reason() {
    let serial = parse_serial("7f01").unwrap();
    let (fake, hash) = Fake::with(&serial, false, Some(RevocationReason::Superseded));
    let err = revoke(
        &fake,
        &fake,
        &serial,
        RevocationReason::Unspecified,
        "carol",
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        format!("serial 7f01 is already revoked (superseded at {})", at())
    );
    assert!(fake.requests().is_empty(), "the RA was asked anyway");

    let done = revoke(
        &fake,
        &fake,
        &serial,
        RevocationReason::KeyCompromise,
        "carol",
    )
    .await
    .unwrap();
    assert_eq!(
        done,
        format!(
            "serial 7f01 was revoked already (superseded at {}); its reason is now \
             keyCompromise (1), by carol; its key is blocked (spki_sha256 {hash})",
            at()
        )
    );
    assert_eq!(fake.requests().len(), 1);

    let again = revoke(
        &fake,
        &fake,
        &serial,
        RevocationReason::KeyCompromise,
        "carol",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        again.starts_with("serial 7f01 is already revoked (keyCompromise at "),
        "{again}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn unknown_serials_and_refusals_are_explained() {
    let serial = parse_serial("0bad").unwrap();
    let (fake, _) = Fake::with(&serial, false, None);
    let unknown = parse_serial("0bae").unwrap();
    let err = revoke(&fake, &fake, &unknown, RevocationReason::Unspecified, "dan")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "no certificate or precertificate has serial 0bae");
    assert!(fake.requests().is_empty());

    // Revoked by someone else between the status read and the RA's turn.
    let raced = Fake {
        fail_with: Some(ErrorKind::AlreadyRevoked),
        ..Fake::with(&serial, false, None).0
    };
    let err = revoke(&raced, &raced, &serial, RevocationReason::Superseded, "dan")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "serial 0bad is already revoked");

    let refused = Fake {
        fail_with: Some(ErrorKind::Unauthorized),
        ..Fake::with(&serial, false, None).0
    };
    let err = revoke(
        &refused,
        &refused,
        &serial,
        RevocationReason::Superseded,
        "dan",
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "revoking");
    assert!(
        format!("{err:#}").contains("refused by the fake"),
        "{err:#}"
    );
}

/// Parses `rate-limit ARGS…`.
fn rate_limit_command(args: &[&str]) -> Result<RateLimitCommand, clap::error::ErrorKind> {
    let mut argv = vec!["rate-limit"];
    argv.extend_from_slice(args);
    match admin_command(&argv) {
        Ok(AdminCommand::RateLimit(command)) => Ok(command),
        Ok(other) => panic!("parsed as {other:?}"),
        Err(err) => Err(err.kind()),
    }
}

#[test]
fn rate_limit_commands_take_a_limit_a_key_and_a_rate() {
    let add = [
        "add",
        "--limit",
        "new_orders_per_account",
        "--key",
        "42",
        "--count",
        "100",
        "--period",
        "3h",
        "--burst",
        "10",
    ];
    let Ok(RateLimitCommand::Add(args)) = rate_limit_command(&add) else {
        panic!("add did not parse");
    };
    assert_eq!(
        (
            args.limit.as_str(),
            args.key.as_str(),
            args.count,
            args.burst
        ),
        ("new_orders_per_account", "42", 100, 10)
    );
    assert_eq!(args.period.0, Duration::from_secs(3 * 3600));
    assert_eq!(args.comment, "");

    let with = |flag: &str, value: &str| {
        let mut argv = add.to_vec();
        let index = argv.iter().position(|arg| *arg == flag).unwrap();
        argv[index + 1] = value;
        rate_limit_command(&argv).map(drop)
    };
    for period in ["90s", "7d", "15m"] {
        assert_eq!(with("--period", period), Ok(()), "{period}");
    }
    let invalid = Err(clap::error::ErrorKind::ValueValidation);
    assert_eq!(with("--period", "3 hours"), invalid);
    assert_eq!(with("--period", "0s"), invalid);
    assert_eq!(with("--count", "0"), invalid);
    assert_eq!(with("--burst", "0"), invalid);
    assert_eq!(
        with("--count", "-1"),
        Err(clap::error::ErrorKind::UnknownArgument)
    );
    let without_burst = &add[..add.len() - 2];
    assert_eq!(
        rate_limit_command(without_burst).map(drop),
        Err(clap::error::ErrorKind::MissingRequiredArgument)
    );

    let remove = [
        "remove",
        "--limit",
        "new_accounts_per_ip",
        "--key",
        "192.0.2.1",
    ];
    assert!(matches!(
        rate_limit_command(&remove),
        Ok(RateLimitCommand::Remove { limit, key })
            if limit == "new_accounts_per_ip" && key == "192.0.2.1"
    ));
    assert_eq!(
        rate_limit_command(&remove[..3]).map(drop),
        Err(clap::error::ErrorKind::MissingRequiredArgument)
    );
    assert!(matches!(
        rate_limit_command(&["list"]),
        Ok(RateLimitCommand::List)
    ));
}

#[tokio::test]
async fn rate_limit_commands_reach_the_ra_and_print_tab_separated_lines() {
    let fake = Fake::default();
    let run = |args: &[&str]| {
        let command = rate_limit_command(args).unwrap();
        rate_limit(&fake, command)
    };
    let added = run(&[
        "add",
        "--limit",
        "new_orders_per_account",
        "--key",
        "42",
        "--count",
        "100",
        "--period",
        "180m",
        "--burst",
        "10",
        "--comment",
        "a big customer",
    ])
    .await
    .unwrap();
    assert_eq!(
        added,
        ["new_orders_per_account for key 42: now 100 per 3h, burst 10"]
    );
    assert_eq!(
        fake.overrides.lock().unwrap().clone(),
        [RateLimitOverride {
            limit: "new_orders_per_account".to_owned(),
            key: "42".to_owned(),
            rate: RateLimit {
                count: 100,
                period: Duration::from_secs(3 * 3600),
                burst: 10,
            },
            comment: "a big customer".to_owned(),
        }]
    );
    assert_eq!(
        run(&["list"]).await.unwrap(),
        ["new_orders_per_account\t42\t100/3h\t10\ta big customer"]
    );

    let remove = ["remove", "--limit", "new_orders_per_account", "--key", "42"];
    assert_eq!(
        run(&remove).await.unwrap(),
        ["new_orders_per_account for key 42: override removed, the default applies"]
    );
    assert!(run(&["list"]).await.unwrap().is_empty());
    let err = run(&remove).await.unwrap_err().to_string();
    assert_eq!(err, "new_orders_per_account has no override for key 42");
}

/// Parses `incident add ARGS…`.
fn incident_add(args: &[&str]) -> Result<IncidentAddArgs, clap::error::ErrorKind> {
    let mut argv = vec!["incident", "add"];
    argv.extend_from_slice(args);
    match admin_command(&argv) {
        Ok(AdminCommand::Incident(IncidentCommand::Add(args))) => Ok(args),
        Ok(other) => panic!("parsed as {other:?}"),
        Err(err) => Err(err.kind()),
    }
}

#[test]
fn incident_add_takes_serials_or_a_file() {
    let args = incident_add(&[
        "--name",
        "cps-mismatch",
        "--url",
        "https://example.test/x",
        "--serial",
        "0a:0b",
        "--serial",
        "0x7F",
        "--serial",
        "0a0b",
    ])
    .unwrap();
    assert_eq!(args.name, "cps-mismatch");
    assert_eq!(args.url, "https://example.test/x");
    let serials: Vec<String> = incident_serials(&args)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(serials, ["0a0b", "7f"], "parsed once each, in order");

    let args = incident_add(&["--name", "n", "--serials-file", "s.txt"]).unwrap();
    assert_eq!(args.serials_file, Some(PathBuf::from("s.txt")));
    assert_eq!(args.url, "", "no URL unless given");
    let err = format!("{:#}", incident_serials(&args).unwrap_err());
    assert!(err.starts_with("cannot read s.txt"), "{err}");

    let err = incident_serials(&incident_add(&["--name", "n", "--serial", "zz"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("--serial \"zz\": "), "{err}");

    use clap::error::ErrorKind as Clap;
    let both = ["--name", "n", "--serial", "01", "--serials-file", "s.txt"];
    assert_eq!(incident_add(&both).map(drop), Err(Clap::ArgumentConflict));
    assert_eq!(
        incident_add(&["--name", "n"]).map(drop),
        Err(Clap::MissingRequiredArgument)
    );
    assert_eq!(
        incident_add(&["--serial", "01"]).map(drop),
        Err(Clap::MissingRequiredArgument)
    );
    for url in [
        "example.test/x",
        "ftp://example.test",
        "https://",
        "https://a b",
    ] {
        let args = ["--name", "n", "--serial", "01", "--url", url];
        assert_eq!(
            incident_add(&args).map(drop),
            Err(Clap::ValueValidation),
            "{url}"
        );
    }
    assert!(matches!(
        admin_command(&["incident", "list"]),
        Ok(AdminCommand::Incident(IncidentCommand::List))
    ));
}

#[test]
fn serials_files_skip_blank_lines_and_comments() {
    let file = Path::new("serials.txt");
    let text = "# serials of the bad batch\n\n0a:0b\n   7f   # the last one\n0A0B\n\t\n";
    let serials: Vec<String> = serials_from_file_text(text, file)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(serials, ["0a0b", "7f"]);

    let err = serials_from_file_text("01\n# fine\nzz\n", file)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("serials.txt line 3: \"zz\": "), "{err}");
    let err = serials_from_file_text("# nothing\n\n", file)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "serials.txt names no serial");

    // Through the flag, from a real file.
    let path = std::env::temp_dir().join(format!(
        "basalt-admin-test-{}-{:x}-serials.txt",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&path, text).unwrap();
    let args = incident_add(&["--name", "n", "--serials-file", path.to_str().unwrap()]).unwrap();
    let serials = incident_serials(&args);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(serials.unwrap().len(), 2);
}

#[test]
fn incidents_are_reported_in_one_line_each() {
    let incident = Incident {
        id: 3,
        name: "cps-mismatch".to_owned(),
        url: "https://example.test/x".to_owned(),
        created_at: at(),
        serials: 2,
    };
    assert_eq!(
        incident_declared(&incident, 2),
        "declared incident cps-mismatch (id 3) naming 2 serials, explained at \
         https://example.test/x; their renewal information now asks for renewal at once"
    );
    assert_eq!(
        incident_line(&incident),
        format!(
            "3\tcps-mismatch\t{}\t2 serials\thttps://example.test/x",
            at()
        )
    );
    let quiet = Incident {
        url: String::new(),
        ..incident
    };
    assert_eq!(
        incident_declared(&quiet, 1),
        "declared incident cps-mismatch (id 3) naming 1 serial; their renewal \
         information now asks for renewal at once"
    );
}
const ADMIN_TOML: &str = r#"
    [tls]
    cert = "a"
    key = "b"
    ca = "c"
    [sa]
    address = "x:1"
    server_name = "sa"
"#;

#[test]
fn admin_config_names_the_sa_and_the_ra_and_refuses_unknown_fields() {
    let with_ra = format!("{ADMIN_TOML}[ra]\naddress = \"x:2\"\nserver_name = \"ra\"\n");
    let config = basalt_config::parse::<AdminConfig>(&with_ra).unwrap();
    let ra = config.ra.unwrap();
    assert_eq!(
        (ra.address.as_str(), ra.server_name.as_str()),
        ("x:2", "ra")
    );
    let err = basalt_config::parse::<AdminConfig>(&format!("{with_ra}extra = 1\n")).unwrap_err();
    assert!(err.contains("unknown field `extra`"), "{err}");
}

/// A config from before revocation went through the RA still loads; the
/// commands that need the RA say what is missing.
#[test]
fn an_admin_config_without_the_ra_serves_the_sa_commands_only() {
    let config = basalt_config::parse::<AdminConfig>(ADMIN_TOML).unwrap();
    assert!(config.ra.is_none());
    let err = config
        .ra_client(Path::new("/etc/basalt/admin.toml"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("/etc/basalt/admin.toml has no [ra] section"),
        "{err}"
    );
}

#[test]
fn certs_takes_exactly_one_selector() {
    let certs = |args: &[&str]| {
        let mut argv = vec!["certs"];
        argv.extend_from_slice(args);
        match admin_command(&argv) {
            Ok(AdminCommand::Certs(args)) => Ok(args),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(err) => Err(err.kind()),
        }
    };
    use clap::error::ErrorKind as Clap;

    let args = certs(&["--name", "Example.COM", "--subdomains"]).unwrap();
    assert_eq!(
        certs_query(&args).unwrap(),
        CertificateQuery {
            selector: CertificateSelector::Name {
                identifier: Identifier::dns("Example.COM"),
                subdomains: true,
            },
            active_only: false,
            limit: CertificateQuery::DEFAULT_LIMIT,
        }
    );
    let args = certs(&["--name", "2001:db8::1", "--active", "--limit", "1000"]).unwrap();
    assert_eq!(
        certs_query(&args).unwrap(),
        CertificateQuery {
            selector: CertificateSelector::Name {
                identifier: Identifier::ip("2001:db8::1"),
                subdomains: false,
            },
            active_only: true,
            limit: 1000,
        }
    );
    let args = certs(&["--name", "192.0.2.1", "--subdomains"]).unwrap();
    let err = certs_query(&args).unwrap_err().to_string();
    assert!(err.contains("has no subdomains"), "{err}");
    let args = certs(&["--account", "42", "--limit", "1"]).unwrap();
    assert_eq!(
        certs_query(&args).unwrap().selector,
        CertificateSelector::Account(AccountId(42))
    );
    let hex = "AB".repeat(32);
    let args = certs(&["--key-hash", &hex]).unwrap();
    assert_eq!(
        certs_query(&args).unwrap().selector,
        CertificateSelector::Key(hex.parse().unwrap())
    );

    assert_eq!(certs(&[]).map(drop), Err(Clap::MissingRequiredArgument));
    assert_eq!(
        certs(&["--active"]).map(drop),
        Err(Clap::MissingRequiredArgument)
    );
    for two in [
        ["--name", "a.example", "--account", "1"],
        ["--account", "1", "--key-hash", &hex],
        ["--key-file", "k.pem", "--key-hash", &hex],
    ] {
        assert_eq!(
            certs(&two).map(drop),
            Err(Clap::ArgumentConflict),
            "{two:?}"
        );
    }
    assert_eq!(
        certs(&["--account", "1", "--subdomains"]).map(drop),
        Err(Clap::ArgumentConflict),
        "--subdomains goes with --name only"
    );
    assert_eq!(
        certs(&["--subdomains"]).map(drop),
        Err(Clap::MissingRequiredArgument)
    );
    for bad in [
        ["--account", "0"],
        ["--account", "abc"],
        ["--key-hash", "abcd"],
    ] {
        assert_eq!(certs(&bad).map(drop), Err(Clap::ValueValidation), "{bad:?}");
    }
    for limit in ["0", "1001"] {
        assert_eq!(
            certs(&["--account", "1", "--limit", limit]).map(drop),
            Err(Clap::ValueValidation),
            "{limit}"
        );
    }
}

#[test]
fn certificates_are_listed_one_tab_separated_line_each() {
    let summary = CertificateSummary {
        serial: "7f01ab".parse().unwrap(),
        account_id: AccountId(42),
        names: vec![Identifier::dns("a.example"), Identifier::ip("192.0.2.1")],
        not_before: at(),
        not_after: at() + time::Duration::days(90),
        status: CertStatus::Good,
        revoked_at: None,
        revocation_reason: None,
    };
    assert_eq!(
        certificate_line(&summary),
        "7f01ab\t42\t2030-04-01T00:00:00Z\tgood\ta.example,192.0.2.1"
    );
    let revoked = CertificateSummary {
        status: CertStatus::Revoked,
        revoked_at: Some(at()),
        revocation_reason: Some(RevocationReason::KeyCompromise),
        names: Vec::new(),
        ..summary
    };
    assert_eq!(
        certificate_line(&revoked),
        "7f01ab\t42\t2030-04-01T00:00:00Z\trevoked:keyCompromise\t"
    );
}

#[test]
fn order_show_takes_an_order_id() {
    assert!(matches!(
        admin_command(&["order", "show", "123"]),
        Ok(AdminCommand::Order(OrderCommand::Show { order_id })) if order_id == OrderId(123)
    ));
    for bad in ["0", "-1", "x"] {
        let err = admin_command(&["order", "show", bad]).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::UnknownArgument
            ),
            "{bad}: {err}"
        );
    }
    let missing = admin_command(&["order", "show"]).unwrap_err();
    assert_eq!(
        missing.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn an_order_is_shown_with_its_authorizations_and_challenges() {
    use basalt_core::AuthzId;
    use basalt_core::AuthzStatus;
    use basalt_core::Challenge;
    use basalt_core::ChallengeStatus;
    use basalt_core::ChallengeType;
    use basalt_core::OrderStatus;

    let order = Order {
        id: OrderId(11),
        account_id: AccountId(42),
        identifiers: vec![Identifier::dns("*.a.example"), Identifier::dns("b.example")],
        status: OrderStatus::Invalid,
        expires: at() + time::Duration::days(7),
        authz_ids: vec![AuthzId(21), AuthzId(22)],
        error: Some(basalt_core::Error::new(
            ErrorKind::IncorrectResponse,
            "the token did not match",
        )),
        certificate_serial: None,
        created_at: at(),
        profile: "classic".to_owned(),
        not_before: None,
        not_after: Some(at() + time::Duration::days(30)),
        replaces: Some("0a0b".parse().unwrap()),
    };
    let wildcard = Authz {
        id: AuthzId(21),
        account_id: AccountId(42),
        identifier: Identifier::dns("a.example"),
        status: AuthzStatus::Valid,
        expires: at() + time::Duration::days(30),
        wildcard: true,
        challenges: vec![Challenge {
            validated: Some(at()),
            status: ChallengeStatus::Valid,
            ..Challenge::pending(ChallengeType::Dns01, "t1".to_owned())
        }],
    };
    let failed = Authz {
        id: AuthzId(22),
        identifier: Identifier::dns("b.example"),
        status: AuthzStatus::Invalid,
        wildcard: false,
        challenges: vec![
            Challenge {
                status: ChallengeStatus::Invalid,
                error: Some(basalt_core::Error::new(
                    ErrorKind::Connection,
                    "connection refused",
                )),
                ..Challenge::pending(ChallengeType::Http01, "t2".to_owned())
            },
            Challenge::pending(ChallengeType::TlsAlpn01, "t3".to_owned()),
        ],
        ..wildcard
    };
    assert_eq!(
        order_lines(&order, &[wildcard, failed]),
        [
            "order\t11",
            "account\t42",
            "status\tinvalid",
            "created\t2030-01-01T00:00:00Z",
            "expires\t2030-01-08T00:00:00Z",
            "profile\tclassic",
            "identifiers\t*.a.example,b.example",
            "not_after\t2030-01-31T00:00:00Z",
            "replaces\t0a0b",
            "error\tincorrectResponse: the token did not match",
            "authz\t21\t*.a.example\tvalid\texpires 2030-01-31T00:00:00Z",
            "challenge\t21\tdns-01\tvalid\tvalidated 2030-01-01T00:00:00Z",
            "authz\t22\tb.example\tinvalid\texpires 2030-01-31T00:00:00Z",
            "challenge\t22\thttp-01\tinvalid\terror connection: connection refused",
            "challenge\t22\ttls-alpn-01\tpending",
        ]
    );

    let issued = Order {
        status: OrderStatus::Valid,
        error: None,
        not_after: None,
        replaces: None,
        certificate_serial: Some("7f01".parse().unwrap()),
        authz_ids: Vec::new(),
        ..order
    };
    let lines = order_lines(&issued, &[]);
    assert!(lines.contains(&"certificate\t7f01".to_owned()), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("error") || line.starts_with("authz")),
        "{lines:?}"
    );
}

#[test]
fn revoke_key_takes_one_key_and_an_operator() {
    let revoke_key = |args: &[&str]| {
        let mut argv = vec!["revoke-key"];
        argv.extend_from_slice(args);
        match admin_command(&argv) {
            Ok(AdminCommand::RevokeKey(args)) => Ok(args),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(err) => Err(err.kind()),
        }
    };
    use clap::error::ErrorKind as Clap;
    let hex = "ab".repeat(32);
    let args = revoke_key(&["--key-hash", &hex, "--by", "alice"]).unwrap();
    assert_eq!(args.key.hash().unwrap(), Some(hex.parse().unwrap()));
    assert_eq!(args.by.as_deref(), Some("alice"));
    let args = revoke_key(&["--key-file", "cert.pem"]).unwrap();
    assert_eq!(args.key.key_file, Some(PathBuf::from("cert.pem")));
    assert_eq!(
        revoke_key(&[]).map(drop),
        Err(Clap::MissingRequiredArgument)
    );
    assert_eq!(
        revoke_key(&["--key-file", "c.pem", "--key-hash", &hex]).map(drop),
        Err(Clap::ArgumentConflict)
    );
    assert_eq!(
        revoke_key(&["--key-hash", &hex, "--by", ""]).map(drop),
        Err(Clap::InvalidValue)
    );
    assert_eq!(
        revoke_key(&["--key-hash", &hex, "--reason", "superseded"]).map(drop),
        Err(Clap::UnknownArgument),
        "always keyCompromise"
    );
}

/// A key file may hold a certificate (a chain's first), a CSR or a public key; a
/// private key alone is refused, saying how to get its public key.
#[test]
fn key_files_name_the_key_they_carry() {
    use rcgen::PublicKeyData;

    let key = rcgen::KeyPair::generate().unwrap();
    let want = spki_sha256(&key.subject_public_key_info());
    let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let chain = format!("{cert}{}", params.self_signed(&other).unwrap().pem());
    let with_private_key = format!("{}{cert}", key.serialize_pem());
    for (what, pem) in [
        ("certificate", cert.as_str()),
        ("chain", &chain),
        ("csr", &csr),
        ("public key", &key.public_key_pem()),
        ("private key, then certificate", &with_private_key),
    ] {
        let spki = key_file_spki(pem.as_bytes()).unwrap_or_else(|err| panic!("{what}: {err}"));
        assert_eq!(spki_sha256(&spki), want, "{what}");
    }
    let err = key_file_spki(key.serialize_pem().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("openssl pkey -in KEY -pubout"), "{err}");
    let err = key_file_spki(b"").unwrap_err().to_string();
    assert!(
        err.contains("no certificate, certificate request or public key"),
        "{err}"
    );

    // Through the flag, from a real file.
    let path = std::env::temp_dir().join(format!(
        "basalt-admin-test-{}-{:x}-key.pem",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&path, &cert).unwrap();
    let args = KeyArgs {
        key_file: Some(path.clone()),
        key_hash: None,
    };
    let hash = args.hash();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(hash.unwrap(), Some(want));
    let missing = KeyArgs {
        key_file: Some(PathBuf::from("/nonexistent/basalt/key.pem")),
        key_hash: None,
    };
    let err = format!("{:#}", missing.hash().unwrap_err());
    assert!(
        err.contains("cannot read /nonexistent/basalt/key.pem"),
        "{err}"
    );
}

/// Every good certificate of the key is revoked for keyCompromise on behalf of
/// the operator, over as many searches as it takes; revoked ones and other keys'
/// are left alone, and a refusal is reported for its serial without stopping
/// the others.
#[tokio::test]
async fn revoke_key_revokes_every_active_certificate_of_the_key() {
    let key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let hash = spki_sha256(&rcgen::PublicKeyData::subject_public_key_info(&key));
    let serial = |text: &str| text.parse::<Serial>().unwrap();
    let fake = Fake {
        refused: vec![serial("03")],
        search_page: Some(2),
        ..Fake::default()
    };
    {
        let mut statuses = fake.statuses.lock().unwrap();
        statuses.push(status_of(&serial("01"), &key, false, None));
        statuses.push(status_of(
            &serial("02"),
            &key,
            false,
            Some(RevocationReason::Superseded),
        ));
        statuses.push(status_of(&serial("03"), &key, false, None));
        statuses.push(status_of(&serial("04"), &other, false, None));
        statuses.push(status_of(&serial("05"), &key, true, None));
        statuses.push(status_of(&serial("06"), &key, false, None));
    }
    let mut said = Vec::new();
    let report = revoke_key(&fake, &fake, hash, "alice", |line| said.push(line))
        .await
        .unwrap();
    assert_eq!(
        report,
        KeyRevocation {
            revoked: 3,
            failed: 1
        }
    );
    let revoked: Vec<(String, RevocationReason, Requester)> = fake
        .requests()
        .into_iter()
        .map(|request| {
            (
                request.serial.to_string(),
                request.reason,
                request.requester,
            )
        })
        .collect();
    let by_alice = |serial: &str| {
        (
            serial.to_owned(),
            RevocationReason::KeyCompromise,
            Requester::Operator("alice".to_owned()),
        )
    };
    assert_eq!(revoked, [by_alice("01"), by_alice("05"), by_alice("06")]);
    assert_eq!(
        said,
        [
            "revoked serial 01 (account 7, a.example), reason keyCompromise (1), by alice",
            "FAILED serial 03 (account 7, a.example): unauthorized: this serial is refused",
            "revoked serial 05 (account 7, a.example), reason keyCompromise (1), by alice",
            "revoked serial 06 (account 7, a.example), reason keyCompromise (1), by alice",
            &format!("key {hash}: 3 certificates revoked, 1 failed"),
        ]
    );
    let statuses = fake.statuses.lock().unwrap();
    let superseded = statuses.iter().find(|s| s.serial == serial("02")).unwrap();
    assert_eq!(
        superseded.revocation_reason,
        Some(RevocationReason::Superseded)
    );
    let other_key = statuses.iter().find(|s| s.serial == serial("04")).unwrap();
    assert_eq!(other_key.status, CertStatus::Good);
}

#[tokio::test]
async fn revoke_key_says_so_when_the_key_has_no_certificate() {
    let (fake, _) = Fake::with(&"01".parse().unwrap(), false, None);
    let unknown = SpkiHash::new([7; 32]);
    let mut said = Vec::new();
    let report = revoke_key(&fake, &fake, unknown, "bob", |line| said.push(line))
        .await
        .unwrap();
    assert_eq!(report, KeyRevocation::default());
    assert_eq!(
        said,
        [format!(
            "no unexpired, unrevoked certificate has key {unknown}"
        )]
    );
    assert!(fake.requests().is_empty());
}
