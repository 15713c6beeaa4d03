//! Sharded CRLs (RFC 5280 §5): the updater that has them signed and the store they
//! are served from.
//!
//! Each issuer given a `crl_path` publishes its revocations split into `shards`
//! CRLs. The CA chose a certificate's shard from its serial at issuance and wrote
//! the shard's URL into the certificate's CRL distribution point; the SA keeps that
//! placement beside the serial's status, so the updater only asks the SA for the
//! revoked, unexpired certificates of one (issuer, shard) and has the CA sign them
//! ([`RevocationSigner::generate_crl`]). The responder holds no key: it checks the
//! CRL it gets back (issuer, thisUpdate, CRL number, issuingDistributionPoint,
//! entry count) and keeps the newest of each shard in memory for
//! [`crate::router`] to serve.
//!
//! Every shard is generated at start (failures retried with backoff), again every
//! `period`, and within `delay` of the status feed reporting a revocation placed
//! on it. The CA derives the CRL number from thisUpdate, so the updater asks for a
//! thisUpdate later than the last one it asked for on that shard even when the
//! clock did not move, and the numbers a shard serves only increase.
//!
//! ```text
//! StatusFeed ──revoked (issuer, shard)──▶ CrlUpdater ──▶ SA (revoked certificates)
//!                         every period ──▶     │     └─▶ CA (sign the shard)
//!                                              ▼
//!                      router ◀── GET {crl_path}{shard}.crl ── CrlStore
//! ```

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::RwLock;
use std::time::Duration;

use axum::body::Bytes;
use basalt_core::CertStatus;
use basalt_core::Clock;
use basalt_core::CrlRequest;
use basalt_core::Error;
use basalt_core::RevocationLookup;
use basalt_core::RevocationSigner;
use basalt_core::StatusChange;
use der::Decode;
use der::Encode;
use der::asn1::ObjectIdentifier;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tracing::debug;
use tracing::error;
use tracing::info;
use tracing::warn;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::crl::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::feed::FeedEvent;
use crate::responder::check_issuer_path;
use crate::responder::sha1;

/// The most shards per issuer, as the CA allows (`crl.shards` of its config).
pub const MAX_CRL_SHARDS: u32 = 1000;

/// The longest `crl.period`: a day, well under the CA's CRL lifetime (at most ten
/// days), so that a shard is re-signed long before relying parties must drop it.
pub const MAX_CRL_PERIOD: Duration = Duration::from_secs(86_400);

/// The longest `crl.delay`: a revocation should reach its shard within a minute.
pub const MAX_CRL_DELAY: Duration = Duration::from_secs(60);

/// The first wait before a failed generation is tried again; it doubles with each
/// round that fails, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two attempts at a failing shard.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// id-ce-cRLNumber (RFC 5280 §5.2.3).
const ID_CE_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
/// id-ce-issuingDistributionPoint (RFC 5280 §5.2.5). Looked up by hand: x509-cert
/// 0.2 gives [`IssuingDistributionPoint`] the wrong associated OID.
const ID_CE_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.28");

/// One issuer whose CRLs are generated and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlIssuer {
    /// The issuer certificate, DER.
    pub cert_der: Vec<u8>,
    /// Where its shards are served: `GET {crl_path}{shard}.crl`. An absolute path
    /// ending with '/' that passes the checks of [`crate::OcspConfig::validate`].
    pub crl_path: String,
}

/// How CRLs are sharded and when they are regenerated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlSettings {
    /// How many shards each issuer has: the CA's `crl.shards`, 1 to
    /// [`MAX_CRL_SHARDS`].
    pub shards: u32,
    /// How often every shard is regenerated, revoked certificates or not.
    pub period: Duration,
    /// How long after the status feed reports a revocation its shard is
    /// regenerated: revocations reported meanwhile join the same round.
    pub delay: Duration,
}

/// The newest CRL of every shard of every issuer, as served over HTTP.
pub struct CrlStore {
    shards: u32,
    issuers: Vec<StoreIssuer>,
}

/// One issuer of the store and its shards.
struct StoreIssuer {
    crl_path: String,
    /// The SHA-1 of the issuer's subjectPublicKey: how the SA and the CA know it.
    key_hash: Vec<u8>,
    /// The DER of the issuer's subject, which its CRLs must name as their issuer.
    name_der: Vec<u8>,
    /// The subject, for logs.
    name: String,
    /// The newest CRL of each shard, `None` until the first is generated.
    crls: Vec<RwLock<Option<Arc<PublishedCrl>>>>,
}

/// A CRL as served, with what its HTTP headers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublishedCrl {
    /// The DER `CertificateList`, exactly as the CA signed it.
    pub(crate) der: Bytes,
    /// Its thisUpdate.
    pub(crate) this_update: OffsetDateTime,
    /// Its nextUpdate.
    pub(crate) next_update: OffsetDateTime,
    /// Its CRL number.
    pub(crate) number: CrlSequence,
    /// How many revoked certificates it lists.
    pub(crate) entries: usize,
    /// The strong entity tag of `der`.
    pub(crate) etag: String,
}

/// A CRL number (RFC 5280 §5.2.3): a non-negative integer of up to 20 octets,
/// kept as its big-endian magnitude without leading zeros so that it orders as a
/// number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CrlSequence(Vec<u8>);

/// Which shard of which issuer: `issuer` indexes the store's issuers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ShardId {
    pub(crate) issuer: usize,
    pub(crate) shard: u32,
}

impl CrlStore {
    /// A store for the shards `0..shards` of each of `issuers`, all empty. Fails if
    /// the shard count is out of bounds, an issuer certificate cannot be parsed, a
    /// `crl_path` is unusable, two issuers share a path (or one path lies inside
    /// another), or two entries are the same issuer (the same key).
    pub fn new(issuers: Vec<CrlIssuer>, shards: u32) -> Result<Arc<Self>, Error> {
        if !(1..=MAX_CRL_SHARDS).contains(&shards) {
            return Err(Error::internal(format!(
                "the crl shard count must be 1 to {MAX_CRL_SHARDS}, not {shards}"
            )));
        }
        if issuers.is_empty() {
            return Err(Error::internal("the crl store needs at least one issuer"));
        }
        let mut parsed: Vec<StoreIssuer> = Vec::with_capacity(issuers.len());
        for CrlIssuer { cert_der, crl_path } in issuers {
            let problem = |detail: String| {
                Error::internal(format!("issuer with crl_path {crl_path:?}: {detail}"))
            };
            check_crl_path(&crl_path).map_err(|detail| problem(format!("crl_path {detail}")))?;
            let cert = Certificate::from_der(&cert_der)
                .map_err(|err| problem(format!("cannot parse the issuer certificate: {err}")))?;
            let tbs = &cert.tbs_certificate;
            let name_der = tbs
                .subject
                .to_der()
                .map_err(|err| problem(format!("cannot encode the issuer's subject: {err}")))?;
            let key_hash = sha1(tbs.subject_public_key_info.subject_public_key.raw_bytes());
            for other in &parsed {
                if let Some(clash) = path_clash(&other.crl_path, &crl_path) {
                    return Err(problem(clash));
                }
                if other.key_hash == key_hash {
                    return Err(problem(format!(
                        "the same issuer (same key) already has its CRLs at {:?}",
                        other.crl_path
                    )));
                }
            }
            parsed.push(StoreIssuer {
                name: tbs.subject.to_string(),
                crl_path,
                key_hash,
                name_der,
                crls: (0..shards).map(|_| RwLock::new(None)).collect(),
            });
        }
        Ok(Arc::new(Self {
            shards,
            issuers: parsed,
        }))
    }

    /// How many shards each issuer has.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The DER of the newest CRL of shard `shard` of the issuer served at
    /// `crl_path`, if one was generated.
    pub fn crl_der(&self, crl_path: &str, shard: u32) -> Option<Bytes> {
        let issuer = self
            .issuers
            .iter()
            .position(|issuer| issuer.crl_path == crl_path)?;
        self.current(ShardId { issuer, shard })
            .map(|crl| crl.der.clone())
    }

    /// Each issuer's index and `crl_path`, for the router.
    pub(crate) fn crl_paths(&self) -> impl Iterator<Item = (usize, &str)> {
        self.issuers
            .iter()
            .enumerate()
            .map(|(index, issuer)| (index, issuer.crl_path.as_str()))
    }

    /// The newest CRL of `id`, if one was generated.
    pub(crate) fn current(&self, id: ShardId) -> Option<Arc<PublishedCrl>> {
        let slot = self.issuers.get(id.issuer)?.crls.get(id.shard as usize)?;
        slot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every shard of every issuer.
    fn all_shards(&self) -> BTreeSet<ShardId> {
        (0..self.issuers.len())
            .flat_map(|issuer| (0..self.shards).map(move |shard| ShardId { issuer, shard }))
            .collect()
    }

    /// Serves `crl` for `id` from now on, unless the shard already serves a CRL
    /// with a number at least as great.
    pub(crate) fn publish(
        &self,
        id: ShardId,
        crl: PublishedCrl,
    ) -> Result<Arc<PublishedCrl>, String> {
        let slot = self
            .issuers
            .get(id.issuer)
            .and_then(|issuer| issuer.crls.get(id.shard as usize))
            .ok_or_else(|| format!("no shard {} of issuer {}", id.shard, id.issuer))?;
        let mut slot = slot.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(served) = slot.as_ref()
            && served.number >= crl.number
        {
            return Err(format!(
                "CRL number {} is not above {}, the number of the CRL served now",
                crl.number, served.number
            ));
        }
        let crl = Arc::new(crl);
        *slot = Some(crl.clone());
        Ok(crl)
    }

    /// The shards a batch of status changes touches: those a revocation was
    /// placed on, under one of this store's issuers.
    fn touched_by(&self, changes: &[StatusChange]) -> BTreeSet<ShardId> {
        let mut touched = BTreeSet::new();
        for change in changes {
            if change.status != CertStatus::Revoked {
                continue;
            }
            let Some(placement) = &change.placement else {
                continue;
            };
            let Some(shard) = placement.shard else {
                continue;
            };
            let Some(issuer) = self
                .issuers
                .iter()
                .position(|issuer| issuer.key_hash == placement.issuer_key_hash)
            else {
                continue;
            };
            if shard >= self.shards {
                // The CA has more shards than this config: the certificate names a
                // CRL nobody generates.
                warn!(
                    serial = %change.serial,
                    shard,
                    shards = self.shards,
                    crl_path = %self.issuers[issuer].crl_path,
                    "a revoked certificate is placed on a shard beyond crl.shards; \
                     crl.shards must equal the CA's"
                );
                continue;
            }
            touched.insert(ShardId { issuer, shard });
        }
        touched
    }
}

impl CrlSequence {
    /// The number whose big-endian magnitude is `bytes` (leading zeros allowed).
    pub(crate) fn from_be_bytes(bytes: &[u8]) -> Self {
        let start = bytes
            .iter()
            .position(|byte| *byte != 0)
            .unwrap_or(bytes.len());
        Self(bytes[start..].to_vec())
    }
}

impl Ord for CrlSequence {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for CrlSequence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for CrlSequence {
    /// Decimal up to 128 bits (every number the CA makes), hex beyond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 16 {
            let value = self
                .0
                .iter()
                .fold(0u128, |value, byte| (value << 8) | u128::from(*byte));
            return write!(f, "{value}");
        }
        f.write_str("0x")?;
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Keeps every shard's CRL current: see the module documentation.
pub struct CrlUpdater {
    store: Arc<CrlStore>,
    sa: Arc<dyn RevocationLookup>,
    signer: Arc<dyn RevocationSigner>,
    clock: Arc<dyn Clock>,
    settings: CrlSettings,
    /// The first wait after a failed round ([`FIRST_BACKOFF`]; shorter in tests).
    first_backoff: Duration,
    /// The thisUpdate last asked for, per shard.
    asked: Mutex<HashMap<ShardId, OffsetDateTime>>,
}

impl CrlUpdater {
    /// An updater filling `store` with CRLs of the revocations `sa` knows, signed
    /// by `signer`. Fails if `settings` asks for another shard count than the
    /// store's, or for a period or delay out of bounds.
    pub fn new(
        store: Arc<CrlStore>,
        sa: Arc<dyn RevocationLookup>,
        signer: Arc<dyn RevocationSigner>,
        clock: Arc<dyn Clock>,
        settings: CrlSettings,
    ) -> Result<Arc<Self>, Error> {
        if settings.shards != store.shards {
            return Err(Error::internal(format!(
                "the crl settings have {} shards and the store {}",
                settings.shards, store.shards
            )));
        }
        if settings.period.is_zero() || settings.period > MAX_CRL_PERIOD {
            return Err(Error::internal(
                "the crl period must be above 0 and at most a day",
            ));
        }
        if settings.delay > MAX_CRL_DELAY {
            return Err(Error::internal("the crl delay must be at most a minute"));
        }
        Ok(Arc::new(Self {
            store,
            sa,
            signer,
            clock,
            settings,
            first_backoff: FIRST_BACKOFF,
            asked: Mutex::default(),
        }))
    }

    /// The same updater, retrying failed rounds after `first` (doubling) instead
    /// of [`FIRST_BACKOFF`].
    #[cfg(test)]
    pub(crate) fn with_first_backoff(self: Arc<Self>, first: Duration) -> Arc<Self> {
        let mut updater = Arc::into_inner(self).expect("a fresh updater");
        updater.first_backoff = first;
        Arc::new(updater)
    }

    /// The store the updater fills.
    pub fn store(&self) -> &Arc<CrlStore> {
        &self.store
    }

    /// Starts the updater on the current Tokio runtime, following `events` (a
    /// [`crate::StatusFeed::subscribe`] receiver, taken before the feed is
    /// spawned so that no revocation is missed), for as long as the runtime runs.
    pub fn spawn(
        self: &Arc<Self>,
        events: broadcast::Receiver<FeedEvent>,
    ) -> tokio::task::JoinHandle<()> {
        let updater = Arc::clone(self);
        tokio::spawn(async move { updater.run(events).await })
    }

    /// The updater's loop: rounds of generation over the shards marked dirty, at
    /// start, every period, `delay` after a revocation, and after a backoff for
    /// the shards whose generation failed.
    async fn run(&self, events: broadcast::Receiver<FeedEvent>) {
        let all = self.store.all_shards();
        let mut events = Some(events);
        let mut dirty = all.clone();
        let mut due = Some(Instant::now());
        let mut next_period = Instant::now() + self.settings.period;
        let mut failed_rounds = 0u32;
        info!(
            issuers = self.store.issuers.len(),
            shards = self.store.shards,
            period = ?self.settings.period,
            delay = ?self.settings.delay,
            "crl updater starting"
        );
        loop {
            tokio::select! {
                () = sleep_until(due) => {
                    due = None;
                    let round = std::mem::take(&mut dirty);
                    let mut failed = BTreeSet::new();
                    for id in round {
                        if let Err(err) = self.generate(id).await {
                            let issuer = &self.store.issuers[id.issuer];
                            error!(
                                issuer = %issuer.name,
                                crl_path = %issuer.crl_path,
                                shard = id.shard,
                                error = %err,
                                "cannot generate a crl shard; the previous one is still served"
                            );
                            failed.insert(id);
                        }
                    }
                    if failed.is_empty() {
                        failed_rounds = 0;
                    } else {
                        failed_rounds = failed_rounds.saturating_add(1);
                        let wait = backoff(self.first_backoff, failed_rounds);
                        warn!(
                            shards = failed.len(),
                            retry_in = ?wait,
                            "crl shards failed; retrying"
                        );
                        dirty.extend(failed);
                        due = Some(Instant::now() + wait);
                    }
                }
                () = tokio::time::sleep_until(next_period) => {
                    debug!("crl period: regenerating every shard");
                    dirty.extend(all.iter().copied());
                    due = Some(Instant::now());
                    next_period += self.settings.period;
                    let now = Instant::now();
                    if next_period <= now {
                        // A round took longer than the period: skip the periods missed.
                        next_period = now + self.settings.period;
                    }
                }
                event = next_event(&mut events) => {
                    let touched = match event {
                        Ok(FeedEvent::Changes(changes)) => self.store.touched_by(&changes),
                        Ok(FeedEvent::Gap) | Err(RecvError::Lagged(_)) => {
                            debug!("status feed gap: every crl shard is dirty");
                            all.clone()
                        }
                        Err(RecvError::Closed) => {
                            warn!("the status feed stopped; crl shards are regenerated only every period");
                            events = None;
                            continue;
                        }
                    };
                    if touched.is_empty() {
                        continue;
                    }
                    debug!(shards = touched.len(), "revocations: crl shards dirty");
                    dirty.extend(touched);
                    let soon = Instant::now() + self.settings.delay;
                    due = Some(due.map_or(soon, |due| due.min(soon)));
                }
            }
        }
    }

    /// Has the CA sign shard `id` anew with the revoked certificates the SA lists
    /// for it, checks the CRL and serves it.
    pub(crate) async fn generate(&self, id: ShardId) -> Result<Arc<PublishedCrl>, Error> {
        let issuer = self
            .store
            .issuers
            .get(id.issuer)
            .ok_or_else(|| Error::internal(format!("no crl issuer {}", id.issuer)))?;
        let now = self.clock.now();
        let entries = self
            .sa
            .revoked_certificates(&issuer.key_hash, id.shard, now)
            .await?;
        let count = entries.len();
        let this_update = self.this_update(id, now);
        let der = self
            .signer
            .generate_crl(CrlRequest {
                issuer_key_hash: issuer.key_hash.clone(),
                shard: id.shard,
                this_update,
                entries,
            })
            .await?;
        let unusable = |problem: String| {
            Error::internal(format!("the CA returned an unusable CRL: {problem}"))
        };
        let crl = inspect(der, issuer, id.shard, this_update, count).map_err(unusable)?;
        let crl = self.store.publish(id, crl).map_err(unusable)?;
        info!(
            issuer = %issuer.name,
            crl_path = %issuer.crl_path,
            shard = id.shard,
            entries = crl.entries,
            number = %crl.number,
            next_update = %crl.next_update,
            "crl generated"
        );
        Ok(crl)
    }

    /// The thisUpdate to ask for on `id` at `now`: `now`, or just after the last
    /// one asked for if the clock has not moved past it (the CRL number comes
    /// from it and must grow).
    fn this_update(&self, id: ShardId, now: OffsetDateTime) -> OffsetDateTime {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        let this_update = match asked.get(&id) {
            Some(last) if *last >= now => *last + time::Duration::NANOSECOND,
            _ => now,
        };
        asked.insert(id, this_update);
        this_update
    }
}

/// Waits until `due`, or forever when nothing is due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The next feed event, or never once the feed is gone.
async fn next_event(
    events: &mut Option<broadcast::Receiver<FeedEvent>>,
) -> Result<FeedEvent, RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// The wait after `failed_rounds` rounds in a row failed: `first`, doubling, at
/// most [`MAX_BACKOFF`].
fn backoff(first: Duration, failed_rounds: u32) -> Duration {
    let doublings = failed_rounds.saturating_sub(1).min(16);
    first.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Checks that `der` is the CRL asked for — shard `shard` of `issuer`, with
/// thisUpdate `this_update` (whole seconds, as CRLs carry it) and `entries`
/// revoked certificates — and reads what serving it takes.
fn inspect(
    der: Vec<u8>,
    issuer: &StoreIssuer,
    shard: u32,
    this_update: OffsetDateTime,
    entries: usize,
) -> Result<PublishedCrl, String> {
    let crl = CertificateList::from_der(&der)
        .map_err(|err| format!("not a DER CertificateList: {err}"))?;
    let tbs = &crl.tbs_cert_list;
    let name_der = tbs.issuer.to_der().map_err(|err| err.to_string())?;
    if name_der != issuer.name_der {
        return Err(format!(
            "issued by {:?}, not {:?}",
            tbs.issuer.to_string(),
            issuer.name
        ));
    }
    let crl_this_update = to_offset_date_time(tbs.this_update)?;
    if crl_this_update.unix_timestamp() != this_update.unix_timestamp() {
        return Err(format!(
            "thisUpdate {crl_this_update}, but {this_update} was asked for"
        ));
    }
    let next_update = tbs
        .next_update
        .map(to_offset_date_time)
        .transpose()?
        .ok_or("no nextUpdate")?;
    if next_update <= crl_this_update {
        return Err(format!(
            "nextUpdate {next_update} is not after thisUpdate {crl_this_update}"
        ));
    }
    let listed = tbs.revoked_certificates.as_ref().map_or(0, Vec::len);
    if listed != entries {
        return Err(format!(
            "{listed} revoked certificates listed, {entries} asked for"
        ));
    }
    let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
    let extension = |oid: ObjectIdentifier| {
        extensions
            .iter()
            .find(|extension| extension.extn_id == oid)
            .map(|extension| extension.extn_value.as_bytes())
    };
    let number = extension(ID_CE_CRL_NUMBER).ok_or("no CRL number")?;
    let number = CrlNumber::from_der(number).map_err(|err| format!("bad CRL number: {err}"))?;
    let number = CrlSequence::from_be_bytes(number.0.as_bytes());
    let idp = extension(ID_CE_ISSUING_DISTRIBUTION_POINT)
        .ok_or("no issuingDistributionPoint, which a sharded CRL needs (RFC 5280 §5.2.5)")?;
    let idp = IssuingDistributionPoint::from_der(idp)
        .map_err(|err| format!("bad issuingDistributionPoint: {err}"))?;
    let uris: Vec<String> = match &idp.distribution_point {
        Some(DistributionPointName::FullName(names)) => names
            .iter()
            .filter_map(|name| match name {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let file = format!("/{shard}.crl");
    if !uris.iter().any(|uri| uri.ends_with(&file)) {
        return Err(format!(
            "its issuingDistributionPoint names {uris:?}, not shard {shard}"
        ));
    }
    Ok(PublishedCrl {
        etag: crate::http::etag(&der),
        der: Bytes::from(der),
        this_update: crl_this_update,
        next_update,
        number,
        entries: listed,
    })
}

fn to_offset_date_time(at: x509_cert::time::Time) -> Result<OffsetDateTime, String> {
    i64::try_from(at.to_unix_duration().as_secs())
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .ok_or_else(|| format!("time {at} out of range"))
}

/// Checks a `crl_path`: an absolute path ending with '/' whose other characters
/// pass the issuer path checks, so that the router can serve `{crl_path}{shard}.crl`
/// beside the OCSP routes. The message completes "crl_path …".
pub(crate) fn check_crl_path(path: &str) -> Result<(), String> {
    if path == "/" {
        return Err("must not be '/' (where OCSP requests are posted)".to_owned());
    }
    let Some(directory) = path.strip_suffix('/') else {
        return Err("must end with '/'".to_owned());
    };
    check_issuer_path(directory).map_err(str::to_owned)
}

/// Why `crl_path` cannot be served beside `other`, another issuer's `crl_path`:
/// they are the same, or one lies inside the other.
pub(crate) fn path_clash(other: &str, crl_path: &str) -> Option<String> {
    if other == crl_path {
        Some(format!("crl_path {crl_path:?} is already another issuer's"))
    } else if crl_path.starts_with(other) || other.starts_with(crl_path) {
        Some(format!(
            "crl_path {crl_path:?} and another issuer's {other:?} lie one inside the other"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
