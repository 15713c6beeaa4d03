use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering as AtomicOrdering;

use async_trait::async_trait;
use basalt_core::CrlPlacement;
use basalt_core::FixedClock;
use basalt_core::OcspRequestEntry;
use basalt_core::RevocationReason;
use basalt_core::RevocationStatus;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::CertificateRevocationListParams;
use rcgen::CrlDistributionPoint;
use rcgen::CrlIssuingDistributionPoint;
use rcgen::CrlScope;
use rcgen::DnType;
use rcgen::IsCa;
use rcgen::KeyIdMethod;
use rcgen::KeyPair;
use rcgen::RevokedCertParams;
use rcgen::SerialNumber;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00.25 UTC);

/// The CA's CRL lifetime in these tests.
const LIFETIME: time::Duration = time::Duration::days(7);

/// How long a test waits for the updater before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// A CA certificate and its key, made with rcgen.
struct TestIssuer {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

impl TestIssuer {
    fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { params, key, der }
    }

    fn key_hash(&self) -> Vec<u8> {
        sha1(self.key.public_key_raw())
    }

    fn crl_issuer(&self, crl_path: &str) -> CrlIssuer {
        CrlIssuer {
            cert_der: self.der.clone(),
            crl_path: crl_path.to_owned(),
        }
    }
}

/// The revoked certificates of each (issuer key hash, shard).
type Shards = HashMap<(Vec<u8>, u32), Vec<RevokedEntry>>;

/// An SA that lists the revoked certificates it is given, and fails the first
/// `failures` calls.
#[derive(Default)]
struct FakeSa {
    revoked: Mutex<Shards>,
    failures: AtomicUsize,
    calls: AtomicUsize,
}

impl FakeSa {
    fn revoke(&self, issuer: &TestIssuer, shard: u32, serial: &str, reason: RevocationReason) {
        self.revoked
            .lock()
            .unwrap()
            .entry((issuer.key_hash(), shard))
            .or_default()
            .push(RevokedEntry {
                serial: serial.parse().unwrap(),
                revoked_at: NOW - time::Duration::hours(1),
                reason,
            });
    }
}

#[async_trait]
impl RevocationLookup for FakeSa {
    async fn revocation_status(&self, _: &Serial) -> Result<RevocationStatus, Error> {
        Err(Error::internal("unused"))
    }

    async fn revoked_certificates(
        &self,
        issuer_key_hash: &[u8],
        shard: u32,
        expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        assert!(expires_after >= NOW, "expires_after is the clock's now");
        self.calls.fetch_add(1, AtomicOrdering::SeqCst);
        let failing = self
            .failures
            .fetch_update(AtomicOrdering::SeqCst, AtomicOrdering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(Error::unavailable("database is down"));
        }
        Ok(self
            .revoked
            .lock()
            .unwrap()
            .get(&(issuer_key_hash.to_vec(), shard))
            .cloned()
            .unwrap_or_default())
    }

    async fn status_changes(
        &self,
        _since: OffsetDateTime,
        _limit: u32,
    ) -> Result<Vec<StatusChange>, Error> {
        Err(Error::internal("unused"))
    }
}

/// How the fake CA answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A CRL as the real CA signs it.
    Valid,
    /// An error.
    Fail,
    /// Bytes that are not a CRL.
    Garbage,
    /// A CRL signed and named by another issuer.
    OtherIssuer,
    /// thisUpdate a second later than asked.
    LaterThisUpdate,
    /// The issuingDistributionPoint of shard + 1.
    OtherShard,
    /// No issuingDistributionPoint.
    NoIdp,
    /// The first entry left out.
    DroppedEntry,
    /// CRL number 1.
    NumberOne,
}

/// A CA that signs real CRLs with rcgen, with the URL
/// `http://crl.example{crl_path}{shard}.crl` in their issuingDistributionPoint,
/// and records what it was asked.
struct FakeCa {
    issuers: Vec<(TestIssuer, String)>,
    other: TestIssuer,
    mode: Mutex<Mode>,
    requests: Mutex<Vec<CrlRequest>>,
}

impl FakeCa {
    fn new(issuers: Vec<(TestIssuer, &str)>) -> Self {
        Self {
            issuers: issuers
                .into_iter()
                .map(|(issuer, path)| (issuer, path.to_owned()))
                .collect(),
            other: TestIssuer::new("Another Issuer"),
            mode: Mutex::new(Mode::Valid),
            requests: Mutex::default(),
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The requests for `shard` of issuer `index`, in order.
    fn requests_for(&self, index: usize, shard: u32) -> Vec<CrlRequest> {
        let key_hash = self.issuers[index].0.key_hash();
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| request.issuer_key_hash == key_hash && request.shard == shard)
            .cloned()
            .collect()
    }

    fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn rcgen_reason(reason: RevocationReason) -> rcgen::RevocationReason {
    match reason {
        RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
        RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
        RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
        RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
    }
}

#[async_trait]
impl RevocationSigner for FakeCa {
    async fn sign_ocsp(&self, _: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
        Err(Error::internal("unused"))
    }

    async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
        self.requests.lock().unwrap().push(request.clone());
        let mode = *self.mode.lock().unwrap();
        let (issuer, crl_path) = self
            .issuers
            .iter()
            .find(|(issuer, _)| issuer.key_hash() == request.issuer_key_hash)
            .ok_or_else(|| Error::not_found("no such issuer"))?;
        match mode {
            Mode::Fail => return Err(Error::unavailable("hsm is busy")),
            Mode::Garbage => return Ok(b"not a crl".to_vec()),
            _ => {}
        }
        let signer = if mode == Mode::OtherIssuer {
            &self.other
        } else {
            issuer
        };
        let this_update = match mode {
            Mode::LaterThisUpdate => request.this_update + time::Duration::SECOND,
            _ => request.this_update,
        };
        let number = match mode {
            Mode::NumberOne => 1,
            _ => u64::try_from(request.this_update.unix_timestamp_nanos()).unwrap(),
        };
        let shard = match mode {
            Mode::OtherShard => request.shard + 1,
            _ => request.shard,
        };
        let mut entries = request.entries.as_slice();
        if mode == Mode::DroppedEntry {
            entries = &entries[1..];
        }
        let params = CertificateRevocationListParams {
            this_update,
            next_update: this_update + LIFETIME,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: (mode != Mode::NoIdp).then(|| {
                CrlIssuingDistributionPoint {
                    distribution_point: CrlDistributionPoint {
                        uris: vec![format!("http://crl.example{crl_path}{shard}.crl")],
                    },
                    scope: Some(CrlScope::UserCertsOnly),
                }
            }),
            revoked_certs: entries
                .iter()
                .map(|entry| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(entry.serial.as_bytes()),
                    revocation_time: entry.revoked_at,
                    reason_code: Some(rcgen_reason(entry.reason)),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = rcgen::Issuer::from_params(&signer.params, &signer.key);
        Ok(params.signed_by(&issuer).unwrap().der().to_vec())
    }
}

/// An updater over two issuers (`/crl/a/` and `/crl/b/`) with `shards` shards, a
/// fake SA and CA, and a fixed clock at [`NOW`].
struct Setup {
    sa: Arc<FakeSa>,
    ca: Arc<FakeCa>,
    clock: FixedClock,
    store: Arc<CrlStore>,
    updater: Arc<CrlUpdater>,
    a: Vec<u8>,
    b: Vec<u8>,
}

fn setup(shards: u32, period: Duration, delay: Duration) -> Setup {
    let a = TestIssuer::new("Basalt Test Issuer A");
    let b = TestIssuer::new("Basalt Test Issuer B");
    let store = CrlStore::new(
        vec![a.crl_issuer("/crl/a/"), b.crl_issuer("/crl/b/")],
        shards,
    )
    .unwrap();
    let (a_hash, b_hash) = (a.key_hash(), b.key_hash());
    let sa = Arc::new(FakeSa::default());
    let ca = Arc::new(FakeCa::new(vec![(a, "/crl/a/"), (b, "/crl/b/")]));
    let clock = FixedClock::new(NOW);
    let updater = CrlUpdater::new(
        store.clone(),
        sa.clone(),
        ca.clone(),
        Arc::new(clock.clone()),
        CrlSettings {
            shards,
            period,
            delay,
        },
    )
    .unwrap()
    .with_first_backoff(Duration::from_millis(100));
    Setup {
        sa,
        ca,
        clock,
        store,
        updater,
        a: a_hash,
        b: b_hash,
    }
}

impl Setup {
    fn crl(&self, issuer: usize, shard: u32) -> Option<Arc<PublishedCrl>> {
        self.store.current(ShardId { issuer, shard })
    }

    /// Spawns the updater with a feed of its own; returns the feed's sender.
    fn spawn(&self, capacity: usize) -> broadcast::Sender<FeedEvent> {
        let (sender, receiver) = broadcast::channel(capacity);
        self.updater.spawn(receiver);
        sender
    }

    /// Waits until every shard of both issuers has a CRL.
    async fn all_generated(&self) {
        let shards = self.store.shards();
        wait_for("every shard generated", || {
            (0..2).all(|issuer| (0..shards).all(|shard| self.crl(issuer, shard).is_some()))
        })
        .await;
    }

    fn revoked(&self, key_hash: &[u8], shard: Option<u32>) -> StatusChange {
        StatusChange {
            serial: "0badc0de".parse().unwrap(),
            status: CertStatus::Revoked,
            changed_at: NOW,
            placement: Some(CrlPlacement {
                issuer_key_hash: key_hash.to_vec(),
                shard,
            }),
        }
    }
}

/// Polls `done` until it holds; panics after [`PATIENCE`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn nanos(at: OffsetDateTime) -> String {
    at.unix_timestamp_nanos().to_string()
}

#[tokio::test]
async fn every_shard_is_generated_at_start() {
    let setup = setup(3, Duration::from_secs(3600), Duration::from_millis(50));
    setup.sa.revoke(
        &setup.ca.issuers[1].0,
        2,
        "0a0b",
        RevocationReason::KeyCompromise,
    );
    let _feed = setup.spawn(16);
    setup.all_generated().await;
    assert_eq!(setup.ca.request_count(), 6);
    for issuer in 0..2 {
        for shard in 0..3 {
            let crl = setup.crl(issuer, shard).unwrap();
            assert_eq!(crl.this_update, NOW.replace_nanosecond(0).unwrap());
            assert_eq!(crl.next_update, crl.this_update + LIFETIME);
            assert_eq!(crl.number.to_string(), nanos(NOW));
            assert_eq!(crl.etag, crate::http::etag(&crl.der));
            let [request] = setup.ca.requests_for(issuer, shard).try_into().unwrap();
            assert_eq!(request.this_update, NOW);
            let expected = if (issuer, shard) == (1, 2) { 1 } else { 0 };
            assert_eq!(crl.entries, expected);
            assert_eq!(request.entries.len(), expected);
        }
    }
    let crl_path = ["/crl/a/", "/crl/b/"];
    for (issuer, path) in crl_path.iter().enumerate() {
        let der = setup.store.crl_der(path, 1).unwrap();
        assert_eq!(der, setup.crl(issuer, 1).unwrap().der);
        let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
        assert_eq!(parsed.issuer().to_string(), {
            let names = ["CN=Basalt Test Issuer A", "CN=Basalt Test Issuer B"];
            names[issuer]
        });
    }
    assert_eq!(setup.store.crl_der("/crl/a/", 3), None);
    assert_eq!(setup.store.crl_der("/crl/c/", 0), None);
    // Its entry, with its reason.
    let der = setup.store.crl_der("/crl/b/", 2).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
    let revoked: Vec<_> = parsed.iter_revoked_certificates().collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].raw_serial(), [0x0a, 0x0b]);
    assert_eq!(
        revoked[0].reason_code().map(|(_, reason)| reason.0),
        Some(1)
    );
}

#[tokio::test]
async fn a_revocation_regenerates_its_shard_after_the_delay() {
    let delay = Duration::from_millis(400);
    let setup = setup(4, Duration::from_secs(3600), delay);
    let feed = setup.spawn(16);
    setup.all_generated().await;
    let before = setup.crl(0, 1).unwrap();
    assert_eq!(before.entries, 0);

    setup.sa.revoke(
        &setup.ca.issuers[0].0,
        1,
        "0badc0de",
        RevocationReason::Superseded,
    );
    let mut good = setup.revoked(&setup.a, Some(2));
    good.status = CertStatus::Good;
    let changes: Vec<StatusChange> = vec![
        // Ignored: a new certificate, a revocation under another issuer, one on a
        // shard beyond the count, and ones with no CRL.
        good,
        setup.revoked(b"another issuer", Some(1)),
        setup.revoked(&setup.a, Some(4)),
        setup.revoked(&setup.a, None),
        StatusChange {
            placement: None,
            ..setup.revoked(&setup.a, Some(1))
        },
        // The one that counts.
        setup.revoked(&setup.a, Some(1)),
    ];
    let sent = Instant::now();
    feed.send(FeedEvent::Changes(changes.into())).unwrap();
    wait_for("shard 1 of issuer a regenerated", || {
        setup.crl(0, 1).unwrap().entries == 1
    })
    .await;
    assert!(sent.elapsed() >= delay, "regenerated before the delay");
    let after = setup.crl(0, 1).unwrap();
    // The clock stood still: thisUpdate is a nanosecond later, the number one more.
    assert!(after.number > before.number);
    let requests = setup.ca.requests_for(0, 1);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].this_update, NOW + time::Duration::NANOSECOND);
    assert_eq!(after.number.to_string(), nanos(requests[1].this_update));
    // Nothing else was regenerated.
    tokio::time::sleep(delay * 2).await;
    assert_eq!(setup.ca.request_count(), 9);

    // Two revocations in one delay share a regeneration per shard.
    setup.sa.revoke(
        &setup.ca.issuers[1].0,
        3,
        "0c",
        RevocationReason::Unspecified,
    );
    let first: Vec<StatusChange> = vec![setup.revoked(&setup.b, Some(3))];
    let second: Vec<StatusChange> = vec![
        setup.revoked(&setup.b, Some(3)),
        setup.revoked(&setup.b, Some(0)),
    ];
    feed.send(FeedEvent::Changes(first.into())).unwrap();
    feed.send(FeedEvent::Changes(second.into())).unwrap();
    wait_for("shards 3 and 0 of issuer b regenerated", || {
        setup.ca.request_count() == 11
    })
    .await;
    assert_eq!(setup.crl(1, 3).unwrap().entries, 1);
    assert_eq!(setup.ca.requests_for(1, 0).len(), 2);
    tokio::time::sleep(delay * 2).await;
    assert_eq!(setup.ca.request_count(), 11);
}

#[tokio::test]
async fn a_gap_or_a_lag_regenerates_every_shard() {
    let setup = setup(2, Duration::from_secs(3600), Duration::ZERO);
    // Room for one event: the updater, on this very thread, reads nothing until
    // the test awaits, so three events make it lag.
    let feed = setup.spawn(1);
    setup.all_generated().await;
    assert_eq!(setup.ca.request_count(), 4);

    feed.send(FeedEvent::Gap).unwrap();
    wait_for("every shard regenerated after a gap", || {
        setup.ca.request_count() == 8
    })
    .await;

    for _ in 0..3 {
        feed.send(FeedEvent::Changes(Vec::new().into())).unwrap();
    }
    wait_for("every shard regenerated after a lag", || {
        setup.ca.request_count() == 12
    })
    .await;
    for issuer in 0..2 {
        for shard in 0..2 {
            let requests = setup.ca.requests_for(issuer, shard);
            assert_eq!(requests.len(), 3);
            assert!(
                requests
                    .windows(2)
                    .all(|pair| pair[0].this_update < pair[1].this_update)
            );
        }
    }
}

#[tokio::test]
async fn every_shard_is_regenerated_each_period() {
    let setup = setup(2, Duration::from_millis(200), Duration::from_secs(1));
    let _feed = setup.spawn(16);
    wait_for("three generations of every shard", || {
        setup.ca.request_count() >= 12
    })
    .await;
    let first = setup.crl(1, 1).unwrap();
    // The clock moves: the next thisUpdate is the clock's.
    setup.clock.advance(time::Duration::seconds(90));
    wait_for("a generation after the clock moved", || {
        setup.crl(1, 1).unwrap().this_update > first.this_update
    })
    .await;
    let later = setup.crl(1, 1).unwrap();
    assert_eq!(
        later.this_update,
        (NOW + time::Duration::seconds(90))
            .replace_nanosecond(0)
            .unwrap()
    );
    assert!(later.number > first.number);
    for issuer in 0..2 {
        for shard in 0..2 {
            let requests = setup.ca.requests_for(issuer, shard);
            assert!(requests.len() >= 3);
            assert!(
                requests
                    .windows(2)
                    .all(|pair| pair[0].this_update < pair[1].this_update),
                "thisUpdate grows on every generation of a shard"
            );
        }
    }
}

#[tokio::test]
async fn failed_generations_are_retried_with_backoff() {
    let setup = setup(3, Duration::from_secs(3600), Duration::ZERO);
    // The whole first round fails, and the first shard of the second.
    setup.sa.failures.store(7, AtomicOrdering::SeqCst);
    let started = Instant::now();
    let _feed = setup.spawn(16);
    setup.all_generated().await;
    // 100 ms after the first round, then 200 ms after the second.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(setup.sa.calls.load(AtomicOrdering::SeqCst), 6 + 6 + 1);
    // A shard whose SA read failed never reached the CA.
    assert_eq!(setup.ca.request_count(), 6);
}

#[tokio::test]
async fn unusable_crls_are_refused_and_the_served_one_kept() {
    let setup = setup(2, Duration::from_secs(3600), Duration::ZERO);
    setup.sa.revoke(
        &setup.ca.issuers[0].0,
        1,
        "01",
        RevocationReason::KeyCompromise,
    );
    let id = ShardId {
        issuer: 0,
        shard: 1,
    };
    let served = setup.updater.generate(id).await.unwrap();
    assert_eq!(setup.crl(0, 1), Some(served.clone()));
    for (mode, problem) in [
        (Mode::Fail, "hsm is busy"),
        (Mode::Garbage, "unusable CRL: not a DER CertificateList"),
        (
            Mode::OtherIssuer,
            "unusable CRL: issued by \"CN=Another Issuer\"",
        ),
        (Mode::LaterThisUpdate, "unusable CRL: thisUpdate"),
        (Mode::OtherShard, "not shard 1"),
        (Mode::NoIdp, "unusable CRL: no issuingDistributionPoint"),
        (
            Mode::DroppedEntry,
            "unusable CRL: 0 revoked certificates listed, 1 asked for",
        ),
        (Mode::NumberOne, "unusable CRL: CRL number 1 is not above"),
    ] {
        setup.ca.set_mode(mode);
        let err = setup.updater.generate(id).await.unwrap_err();
        assert!(err.detail.contains(problem), "{mode:?}: {err}");
        assert_eq!(setup.crl(0, 1), Some(served.clone()), "{mode:?}");
    }
    setup.ca.set_mode(Mode::Valid);
    let next = setup.updater.generate(id).await.unwrap();
    assert!(next.number > served.number);
    assert_eq!(setup.crl(0, 1), Some(next));
}

#[test]
fn this_update_grows_even_when_the_clock_does_not() {
    let setup = setup(2, Duration::from_secs(3600), Duration::ZERO);
    let id = ShardId {
        issuer: 1,
        shard: 0,
    };
    let other = ShardId {
        issuer: 1,
        shard: 1,
    };
    let ns = time::Duration::NANOSECOND;
    assert_eq!(setup.updater.this_update(id, NOW), NOW);
    assert_eq!(setup.updater.this_update(id, NOW), NOW + ns);
    assert_eq!(setup.updater.this_update(id, NOW), NOW + ns * 2);
    // Each shard on its own.
    assert_eq!(setup.updater.this_update(other, NOW), NOW);
    // A clock that went back.
    let back = NOW - time::Duration::seconds(5);
    assert_eq!(setup.updater.this_update(id, back), NOW + ns * 3);
    let later = NOW + time::Duration::seconds(5);
    assert_eq!(setup.updater.this_update(id, later), later);
}

#[test]
fn the_store_refuses_unusable_issuers() {
    let a = TestIssuer::new("A");
    let b = TestIssuer::new("B");
    let err = |issuers: Vec<CrlIssuer>, shards: u32| {
        CrlStore::new(issuers, shards)
            .err()
            .map(|err| err.detail)
            .unwrap_or_default()
    };
    assert_eq!(
        err(vec![a.crl_issuer("/a/")], 0),
        "the crl shard count must be 1 to 1000, not 0"
    );
    assert_eq!(
        err(vec![a.crl_issuer("/a/")], 1001),
        "the crl shard count must be 1 to 1000, not 1001"
    );
    assert_eq!(
        err(Vec::new(), 1),
        "the crl store needs at least one issuer"
    );
    assert_eq!(
        err(vec![a.crl_issuer("/a")], 1),
        "issuer with crl_path \"/a\": crl_path must end with '/'"
    );
    assert!(
        err(vec![a.crl_issuer("/{a}/")], 1).contains("crl_path may hold only ASCII"),
        "braces"
    );
    let garbage = CrlIssuer {
        cert_der: b"not a certificate".to_vec(),
        crl_path: "/a/".to_owned(),
    };
    assert!(
        err(vec![garbage], 1)
            .starts_with("issuer with crl_path \"/a/\": cannot parse the issuer certificate"),
    );
    assert_eq!(
        err(vec![a.crl_issuer("/a/"), b.crl_issuer("/a/")], 1),
        "issuer with crl_path \"/a/\": crl_path \"/a/\" is already another issuer's"
    );
    assert_eq!(
        err(vec![a.crl_issuer("/a/"), b.crl_issuer("/a/b/")], 1),
        "issuer with crl_path \"/a/b/\": crl_path \"/a/b/\" and another issuer's \"/a/\" lie \
         one inside the other"
    );
    assert_eq!(
        err(vec![a.crl_issuer("/a/"), a.crl_issuer("/b/")], 1),
        "issuer with crl_path \"/b/\": the same issuer (same key) already has its CRLs at \"/a/\""
    );
    let store = CrlStore::new(vec![a.crl_issuer("/a/"), b.crl_issuer("/ab/")], 7).unwrap();
    assert_eq!(store.shards(), 7);
    assert_eq!(
        store.crl_paths().collect::<Vec<_>>(),
        vec![(0, "/a/"), (1, "/ab/")]
    );
    assert_eq!(store.all_shards().len(), 14);
}

#[test]
fn the_updater_refuses_unusable_settings() {
    let setup = setup(2, Duration::from_secs(3600), Duration::ZERO);
    let updater = |shards: u32, period: Duration, delay: Duration| {
        CrlUpdater::new(
            setup.store.clone(),
            setup.sa.clone(),
            setup.ca.clone(),
            Arc::new(setup.clock.clone()),
            CrlSettings {
                shards,
                period,
                delay,
            },
        )
        .err()
        .map(|err| err.detail)
        .unwrap_or_default()
    };
    let hour = Duration::from_secs(3600);
    assert_eq!(
        updater(3, hour, Duration::ZERO),
        "the crl settings have 3 shards and the store 2"
    );
    assert_eq!(
        updater(2, Duration::ZERO, Duration::ZERO),
        "the crl period must be above 0 and at most a day"
    );
    assert_eq!(
        updater(2, hour * 25, Duration::ZERO),
        "the crl period must be above 0 and at most a day"
    );
    assert_eq!(
        updater(2, hour, Duration::from_secs(61)),
        "the crl delay must be at most a minute"
    );
    assert_eq!(updater(2, hour * 24, Duration::from_secs(60)), "");
}

#[test]
fn crl_numbers_order_as_numbers() {
    let number = CrlSequence::from_be_bytes;
    assert_eq!(number(&[0, 0, 1]), number(&[1]));
    assert!(number(&[1, 0]) > number(&[0xff]));
    assert!(number(&[2, 0]) > number(&[1, 0xff]));
    assert!(number(&[]) < number(&[1]));
    assert_eq!(number(&[]).to_string(), "0");
    assert_eq!(number(&[1, 0]).to_string(), "256");
    assert_eq!(
        number(&1_740_830_400_250_000_000u64.to_be_bytes()).to_string(),
        "1740830400250000000"
    );
    assert_eq!(number(&[0xff; 16]).to_string(), u128::MAX.to_string());
    assert_eq!(
        number(&[1; 17]).to_string(),
        "0x0101010101010101010101010101010101"
    );
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    let first = Duration::from_secs(1);
    let waits: Vec<u64> = (1..=8)
        .map(|rounds| backoff(first, rounds).as_secs())
        .collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(backoff(first, u32::MAX), MAX_BACKOFF);
}

#[test]
fn crl_paths_are_checked() {
    assert_eq!(check_crl_path("/crl/a/"), Ok(()));
    assert_eq!(check_crl_path("/a/"), Ok(()));
    assert!(check_crl_path("/").is_err());
    assert!(check_crl_path("/crl").is_err());
    assert!(check_crl_path("crl/").is_err());
    assert!(check_crl_path("/crl//").is_err());
    assert_eq!(path_clash("/a/", "/ab/"), None);
    assert!(path_clash("/a/", "/a/").is_some());
    assert!(path_clash("/a/", "/a/b/").is_some());
    assert!(path_clash("/a/b/", "/a/").is_some());
}
