//! The responder following a status feed: cached answers served without an SA
//! read while the feed is current, checked again when the feed reports a change, and
//! signed again before their refresh point.

use crate::feed::FeedSettings;
use crate::feed::StatusFeed;
use crate::feed::tests::Changes;

use super::*;

/// A responder over a fake SA knowing one good certificate, following a feed over
/// `changes`, with responses valid for `validity`.
struct Following {
    issuer: TestIssuer,
    sa: Arc<FakeSa>,
    signer: Arc<FakeSigner>,
    changes: Arc<Changes>,
    clock: FixedClock,
    responder: Arc<Responder>,
    feed: Arc<StatusFeed>,
    router: Router,
}

const SERIAL: &str = "0a0b0c0d";

impl Following {
    fn new(validity: Duration) -> Self {
        Self::with(validity, false)
    }

    /// As [`Following::new`], presigning as `presign` says.
    fn with(validity: Duration, presign: bool) -> Self {
        let issuer = TestIssuer::new("Basalt Test Issuer");
        let record = good_record(&issuer, &serial(SERIAL));
        let sa = Arc::new(FakeSa {
            certificates: Mutex::new(HashMap::from([(record.serial.clone(), record)])),
            ..FakeSa::default()
        });
        let clock = FixedClock::new(NOW);
        let signer = Arc::new(FakeSigner::new(SignerMode::Valid(validity), clock.clone()));
        let responder = Arc::new(
            Responder::new(
                vec![issuer.responder_issuer(None)],
                sa.clone(),
                signer.clone(),
                Arc::new(clock.clone()),
                ResponderSettings {
                    max_age: Duration::from_secs(3600),
                    cache_size: 1000,
                    presign,
                },
            )
            .unwrap(),
        );
        let changes = Arc::new(Changes::default());
        let feed = StatusFeed::new(
            changes.clone(),
            Arc::new(clock.clone()),
            FeedSettings::default(),
        );
        // The refresher task it starts is left to the runtime: these tests call
        // `refresh_due` themselves.
        drop(responder.follow(&feed));
        let router = router(responder.clone(), None);
        Self {
            issuer,
            sa,
            signer,
            changes,
            clock,
            responder,
            feed,
            router,
        }
    }

    fn request(&self) -> Vec<u8> {
        request_der(vec![
            self.issuer
                .cert_id(&serial(SERIAL), &digest::SHA1_FOR_LEGACY_USE_ONLY),
        ])
    }

    async fn status(&self) -> x509_ocsp::CertStatus {
        let response = post(&self.router, self.request()).await;
        single_response(&body(response).await).cert_status
    }

    fn lookups(&self) -> usize {
        self.sa.lookups.lock().unwrap().len()
    }

    fn signatures(&self) -> usize {
        self.signer.entries.lock().unwrap().len()
    }

    fn revoke(&self) {
        let mut certificates = self.sa.certificates.lock().unwrap();
        let record = certificates.get_mut(&serial(SERIAL)).unwrap();
        record.status = CertStatus::Revoked;
        record.revoked_at = Some(self.clock.now());
        record.revocation_reason = Some(RevocationReason::KeyCompromise);
    }
}

#[tokio::test]
async fn a_current_feed_spares_the_sa_read_and_reports_revocations() {
    let following = Following::new(Duration::from_secs(4 * 86_400));
    following.feed.poll().await.unwrap();

    // The first answer reads the SA and has the CA sign; the next ones are the
    // cached response, with neither.
    assert_eq!(following.status().await, x509_ocsp::CertStatus::good());
    assert_eq!((following.lookups(), following.signatures()), (1, 1));
    for _ in 0..3 {
        assert_eq!(following.status().await, x509_ocsp::CertStatus::good());
    }
    assert_eq!((following.lookups(), following.signatures()), (1, 1));

    // A revocation the feed has not read yet is not seen: that is the delay the
    // poll interval allows.
    following.clock.advance(time::Duration::milliseconds(500));
    following.revoke();
    following
        .changes
        .write(SERIAL, CertStatus::Revoked, following.clock.now());
    assert_eq!(following.status().await, x509_ocsp::CertStatus::good());
    // Once it has, the cached response is signed anew at once, without waiting
    // for a request, and served from the cache.
    following.clock.advance(time::Duration::milliseconds(500));
    following.feed.poll().await.unwrap();
    for _ in 0..100 {
        if following.signatures() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!((following.lookups(), following.signatures()), (2, 2));
    assert!(matches!(
        following.status().await,
        x509_ocsp::CertStatus::Revoked(_)
    ));
    assert_eq!((following.lookups(), following.signatures()), (2, 2));
    // The same change read again by the next poll (its second is not settled)
    // costs one more read, not a signature: the status is what was signed.
    following.clock.advance(time::Duration::seconds(1));
    following.feed.poll().await.unwrap();
    assert!(matches!(
        following.status().await,
        x509_ocsp::CertStatus::Revoked(_)
    ));
    assert_eq!((following.lookups(), following.signatures()), (3, 2));
    assert!(matches!(
        following.status().await,
        x509_ocsp::CertStatus::Revoked(_)
    ));
    assert_eq!((following.lookups(), following.signatures()), (3, 2));
}

#[tokio::test]
async fn a_stale_feed_sends_every_request_to_the_sa() {
    let following = Following::new(Duration::from_secs(4 * 86_400));
    // Never polled: not current.
    following.status().await;
    following.status().await;
    assert_eq!((following.lookups(), following.signatures()), (2, 1));

    following.feed.poll().await.unwrap();
    following.status().await;
    assert_eq!(following.lookups(), 2, "trusted once a read confirmed it");
    // No poll for longer than max_staleness: the SA is read again.
    following.clock.advance(time::Duration::seconds(11));
    following.status().await;
    following.status().await;
    assert_eq!((following.lookups(), following.signatures()), (4, 1));
}

#[tokio::test]
async fn a_gap_has_every_cached_response_checked() {
    let following = Following::new(Duration::from_secs(4 * 86_400));
    following.feed.poll().await.unwrap();
    following.status().await;
    following.status().await;
    assert_eq!((following.lookups(), following.signatures()), (1, 1));
    // More changes in one second than a page holds: the feed cannot say which.
    for index in 0..=10_000u32 {
        following
            .changes
            .write(&format!("{:06x}", index + 1), CertStatus::Good, NOW);
    }
    following.feed.poll().await.unwrap();
    following.status().await;
    following.status().await;
    assert_eq!((following.lookups(), following.signatures()), (2, 1));
}

#[tokio::test]
async fn served_responses_are_signed_again_before_their_refresh_point() {
    // Valid for two minutes: due for refresh after one, which is within the
    // refresher's lead from the start.
    let following = Following::new(Duration::from_secs(120));
    following.feed.poll().await.unwrap();
    // Signed, but not served since it was stored: not worth refreshing yet.
    following.status().await;
    assert_eq!(following.responder.refresh_due().await, 0);
    following.status().await;
    assert_eq!(following.signatures(), 1);
    assert_eq!(following.responder.refresh_due().await, 1);
    assert_eq!(following.signatures(), 2);
    // The refreshed response is served from the cache without a read.
    let lookups = following.lookups();
    following.status().await;
    assert_eq!(following.lookups(), lookups);
    assert_eq!(following.signatures(), 2);
}

#[tokio::test]
async fn a_new_certificate_is_signed_before_anyone_asks() {
    let following = Following::with(Duration::from_secs(4 * 86_400), true);
    following.feed.poll().await.unwrap();
    // The CA stored the precertificate: the feed reports a good serial of our
    // issuer, and one of another issuer.
    following.changes.write_for(
        SERIAL,
        CertStatus::Good,
        following.clock.now(),
        following.issuer.key_hash(),
    );
    following
        .changes
        .write_for("0e0f", CertStatus::Good, following.clock.now(), vec![9; 20]);
    following.clock.advance(time::Duration::seconds(1));
    following.feed.poll().await.unwrap();
    for _ in 0..100 {
        if following.signatures() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!((following.lookups(), following.signatures()), (1, 1));
    let signed = following.signer.entries.lock().unwrap()[0].clone();
    assert_eq!(signed.serial, serial(SERIAL));
    assert_eq!(signed.hash_algorithm, CertIdHash::Sha1);
    // The first request is answered from the cache.
    assert_eq!(following.status().await, x509_ocsp::CertStatus::good());
    assert_eq!((following.lookups(), following.signatures()), (1, 1));
    // The same change read again by the next poll signs nothing more.
    following.clock.advance(time::Duration::seconds(1));
    following.feed.poll().await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(following.signatures(), 1);
}
