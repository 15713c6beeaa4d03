//! Multi-perspective validation: the primary VA validates, then asks remote VAs in
//! other network locations to validate the same challenge (and check CAA), so that
//! one hijacked route near the primary cannot get a certificate issued (CA/Browser
//! Forum Baseline Requirements §3.2.2.9).
//!
//! The remote perspectives are fixed (`[[remote]]`, one each) or pools (`[[remote_pool]]`,
//! one DNS name whose every address is one, see [`RemotePool`]), so the quorum is
//! reckoned on the perspectives present at each validation. It follows Boulder's:
//! with 2 to 5 remote perspectives one may fail, with 6 or more two may; the remote
//! successes must come from at least `remote_min_regions` distinct regions (two
//! unless a lab on one site says one). A remote that cannot be reached, answers
//! late, or sees a different answer counts as failed. Each perspective's outcome
//! goes into the validation record and the audit log.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_config::GrpcClientConfig;
use basalt_core::CaaCheck;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::PerspectiveOutcome;
use basalt_core::ValidateRequest;
use basalt_core::ValidationAuthority;
use basalt_core::ValidationResult;
use serde::Deserialize;
use tracing::info;
use tracing::warn;

use crate::config::VaConfig;
use crate::pool::ConnectRemote;
use crate::pool::RemotePool;
use crate::pool::ResolvePool;

/// The tracing target of audit events; the same as the RA's.
const AUDIT: &str = "audit";

/// How many distinct regions the remote successes must span unless the config
/// says otherwise (`remote_min_regions`).
pub(crate) const DEFAULT_MIN_REGIONS: usize = 2;

/// `[[remote]]` in the primary VA's config: one remote perspective.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The perspective's name, for logs and validation records.
    pub name: String,
    /// Where it is (a cloud region, a site); successes must span two regions.
    pub region: String,
    /// Its gRPC address, `host:port`.
    pub address: String,
    /// The name its certificate carries.
    pub server_name: String,
}

/// One remote perspective: a VA reached over gRPC (or, in tests, in process).
pub struct Remote {
    /// The perspective's name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The VA to ask.
    pub va: Arc<dyn ValidationAuthority>,
}

/// How many remote perspectives may fail with `remotes` of them (Boulder's rule).
pub fn allowed_failures(remotes: usize) -> usize {
    match remotes {
        0 | 1 => 0,
        2..=5 => 1,
        _ => 2,
    }
}

/// Refuses remote perspectives configured in fewer than `min_regions` distinct
/// regions, since their successes could then never make a quorum; the message
/// names `remote_min_regions`.
pub(crate) fn check_regions<'a>(
    regions: impl IntoIterator<Item = &'a str>,
    min_regions: usize,
) -> Result<(), String> {
    if min_regions == 0 {
        return Err("remote_min_regions = 0: must be at least 1".to_owned());
    }
    let regions: BTreeSet<&str> = regions.into_iter().collect();
    if regions.is_empty() || regions.len() >= min_regions {
        return Ok(());
    }
    let count = regions.len();
    let list = regions.into_iter().collect::<Vec<_>>().join(", ");
    Err(format!(
        "the remote perspectives span {count} region{} ({list}), fewer than \
         remote_min_regions = {min_regions}, so their successes could never make a quorum: \
         place remote VAs in more regions, or, for a lab on one site, set \
         remote_min_regions = 1",
        if count == 1 { "" } else { "s" },
    ))
}

/// A [`ValidationAuthority`] that validates locally and then from every remote
/// perspective present, and succeeds only with a quorum.
pub struct Perspectives {
    local: Arc<dyn ValidationAuthority>,
    remotes: Vec<Arc<Remote>>,
    pools: Vec<Arc<RemotePool>>,
    timeout: Duration,
    min_regions: usize,
}

impl Perspectives {
    /// The primary: `local` first, then `remotes`, each given `timeout`. With
    /// remotes, at least two of them must be in distinct regions, or no quorum could
    /// ever be met.
    pub fn new(
        local: Arc<dyn ValidationAuthority>,
        remotes: Vec<Remote>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Self::with_pools(local, remotes, Vec::new(), timeout, DEFAULT_MIN_REGIONS)
    }

    /// The primary with fixed `remotes` and `pools` of remote VAs, whose successes
    /// must span `min_regions` regions; the regions configured must allow that.
    pub fn with_pools(
        local: Arc<dyn ValidationAuthority>,
        remotes: Vec<Remote>,
        pools: Vec<RemotePool>,
        timeout: Duration,
        min_regions: usize,
    ) -> Result<Self, Error> {
        let regions = remotes
            .iter()
            .map(|remote| remote.region.as_str())
            .chain(pools.iter().map(RemotePool::region));
        check_regions(regions, min_regions).map_err(Error::internal)?;
        Ok(Self {
            local,
            remotes: remotes.into_iter().map(Arc::new).collect(),
            pools: pools.into_iter().map(Arc::new).collect(),
            timeout,
            min_regions,
        })
    }

    /// The primary `config` describes (its `[[remote]]`, `[[remote_pool]]`,
    /// `remote_timeout` and `remote_min_regions`), after [`VaConfig::validate`]:
    /// each remote VA is reached with `connect`, pools are found with `resolve`
    /// ([`crate::system_resolver`] in production), and `clock` tells when a pool's
    /// resolution is `refresh` old.
    pub fn from_config(
        config: &VaConfig,
        local: Arc<dyn ValidationAuthority>,
        connect: ConnectRemote,
        resolve: ResolvePool,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::internal)?;
        let mut remotes = Vec::with_capacity(config.remote.len());
        for remote in &config.remote {
            let peer = GrpcClientConfig {
                address: remote.address.clone(),
                server_name: remote.server_name.clone(),
                timeout: config.remote_timeout,
            };
            remotes.push(Remote {
                name: remote.name.clone(),
                region: remote.region.clone(),
                va: connect(&peer)?,
            });
        }
        let pools = config
            .remote_pool
            .iter()
            .map(|pool| {
                RemotePool::new(
                    pool,
                    config.remote_timeout,
                    resolve.clone(),
                    connect.clone(),
                    clock.clone(),
                )
            })
            .collect();
        Self::with_pools(
            local,
            remotes,
            pools,
            config.remote_timeout.0,
            config.remote_min_regions,
        )
    }

    /// Resolves every pool now (at start, so the log says what was found); a
    /// pool with no member yet is resolved again at the next validation.
    pub async fn refresh_pools(&self) {
        for pool in &self.pools {
            let members = pool.refresh().await;
            info!(region = pool.region(), members, "remote VA pool resolved");
        }
    }

    /// Whether this primary asks remote perspectives at all: some are configured,
    /// present or not.
    fn has_remotes(&self) -> bool {
        !self.remotes.is_empty() || !self.pools.is_empty()
    }

    /// The perspectives present now: the fixed ones, then each pool's members,
    /// each with the pool it came from.
    async fn present(&self) -> Vec<(Arc<Remote>, Option<Arc<RemotePool>>)> {
        let mut present: Vec<(Arc<Remote>, Option<Arc<RemotePool>>)> = self
            .remotes
            .iter()
            .map(|remote| (remote.clone(), None))
            .collect();
        for pool in &self.pools {
            for member in pool.members().await {
                present.push((member, Some(pool.clone())));
            }
        }
        present
    }
}

/// A call to one remote perspective, answering with its problem, if any.
type Call = Pin<Box<dyn Future<Output = Result<Option<Error>, Error>> + Send>>;

/// What one remote perspective is asked: a challenge, or CAA alone.
type Ask = Arc<dyn Fn(Arc<dyn ValidationAuthority>) -> Call + Send + Sync>;

/// What the remote perspectives said, and whether that makes a quorum.
struct Verdict {
    outcomes: Vec<PerspectiveOutcome>,
    /// The first problem a remote reported (not a transport failure).
    seen: Option<Error>,
    /// How many perspectives were present and asked.
    remotes: usize,
    failures: usize,
    allowed: usize,
    regions: usize,
    quorum: bool,
}

impl Perspectives {
    /// Asks every remote present at once, each with its own deadline, so one slow
    /// remote delays the answer by at most the timeout; then applies the quorum
    /// rule to those present. A pool member that does not answer makes its pool
    /// resolve its name again soon.
    async fn ask_remotes(&self, ask: Ask) -> Verdict {
        let present = self.present().await;
        let mut asks = tokio::task::JoinSet::new();
        for (index, (remote, _)) in present.iter().enumerate() {
            let call = ask(remote.va.clone());
            let timeout = self.timeout;
            // In the caller's span, so each remote's call carries the trace on.
            let answer = async move { (index, tokio::time::timeout(timeout, call).await) };
            asks.spawn(tracing::Instrument::in_current_span(answer));
        }
        let mut outcomes: Vec<PerspectiveOutcome> = present
            .iter()
            .map(|(remote, _)| PerspectiveOutcome {
                perspective: remote.name.clone(),
                region: remote.region.clone(),
                succeeded: false,
                detail: "no answer in time".to_owned(),
            })
            .collect();
        let mut problems: Vec<Option<Error>> = vec![None; present.len()];
        let mut answered = vec![false; present.len()];
        while let Some(joined) = asks.join_next().await {
            let Ok((index, answer)) = joined else {
                continue;
            };
            let outcome = &mut outcomes[index];
            match answer {
                Ok(Ok(None)) => {
                    outcome.succeeded = true;
                    outcome.detail.clear();
                    answered[index] = true;
                }
                Ok(Ok(Some(problem))) => {
                    outcome.detail = problem.to_string();
                    problems[index] = Some(problem);
                    answered[index] = true;
                }
                Ok(Err(err)) => outcome.detail = format!("unreachable: {err}"),
                Err(_) => {}
            }
        }
        for ((_, pool), answered) in present.iter().zip(&answered) {
            if let (Some(pool), false) = (pool, answered) {
                pool.mark_failed();
            }
        }
        let failures = outcomes.iter().filter(|o| !o.succeeded).count();
        let regions = outcomes
            .iter()
            .filter(|o| o.succeeded)
            .map(|o| o.region.as_str())
            .collect::<BTreeSet<&str>>()
            .len();
        let allowed = allowed_failures(present.len());
        Verdict {
            seen: problems.into_iter().flatten().next(),
            quorum: !present.is_empty() && failures <= allowed && regions >= self.min_regions,
            remotes: present.len(),
            outcomes,
            failures,
            allowed,
            regions,
        }
    }

    /// The problem when `verdict` is no quorum: what a remote saw, when one saw
    /// something; otherwise a connection problem.
    fn no_quorum(&self, verdict: Verdict) -> Error {
        if verdict.remotes == 0 {
            return Error::new(
                ErrorKind::Connection,
                "no remote perspective is available to validate from",
            );
        }
        let plural = if self.min_regions == 1 { "" } else { "s" };
        let summary = format!(
            "{} of {} remote perspectives could not validate \
             (at most {} may fail, successes must span {} region{plural})",
            verdict.failures, verdict.remotes, verdict.allowed, self.min_regions
        );
        match verdict.seen {
            Some(problem) => Error::new(
                problem.kind,
                format!("during secondary validation: {}; {summary}", problem.detail),
            ),
            None => Error::new(ErrorKind::Connection, summary),
        }
    }

    fn audit(&self, what: &'static str, identifier: &Identifier, verdict: &Verdict) {
        info!(
            target: AUDIT,
            event = "multi_perspective_validation",
            check = what,
            identifier = %identifier,
            remotes = verdict.remotes,
            failed = verdict.failures,
            allowed_failures = verdict.allowed,
            regions = verdict.regions,
            min_regions = self.min_regions,
            quorum = verdict.quorum,
            outcomes = ?verdict.outcomes,
            "multi-perspective validation"
        );
        if !verdict.quorum {
            warn!(identifier = %identifier, check = what, "no quorum of perspectives");
        }
    }
}

#[async_trait]
impl ValidationAuthority for Perspectives {
    async fn validate(&self, request: ValidateRequest) -> Result<ValidationResult, Error> {
        let mut result = self.local.validate(request.clone()).await?;
        if result.problem.is_some() || !self.has_remotes() {
            return Ok(result);
        }
        let shared = request.clone();
        let verdict = self
            .ask_remotes(Arc::new(move |va| {
                let request = shared.clone();
                Box::pin(async move { va.validate(request).await.map(|result| result.problem) })
            }))
            .await;
        self.audit(request.challenge.as_str(), &request.identifier, &verdict);
        if let Some(first) = result.records.first_mut() {
            first.perspectives = verdict.outcomes.clone();
        }
        if !verdict.quorum {
            result.problem = Some(self.no_quorum(verdict));
        }
        Ok(result)
    }

    /// CAA from here, then from the remotes with the same quorum rule.
    async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error> {
        if let Some(problem) = self.local.check_caa(request.clone()).await? {
            return Ok(Some(problem));
        }
        if !self.has_remotes() {
            return Ok(None);
        }
        let shared = request.clone();
        let verdict = self
            .ask_remotes(Arc::new(move |va| {
                let request = shared.clone();
                Box::pin(async move { va.check_caa(request).await })
            }))
            .await;
        self.audit("caa", &request.identifier, &verdict);
        Ok((!verdict.quorum).then(|| self.no_quorum(verdict)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use basalt_core::ChallengeType;
    use basalt_core::FixedClock;
    use basalt_core::Identifier;
    use basalt_core::ValidationRecord;

    use super::*;

    /// A perspective that answers as told and counts its calls.
    struct Fake {
        answer: Mutex<Answer>,
        calls: Mutex<usize>,
    }

    #[derive(Clone)]
    enum Answer {
        Valid,
        Sees(ErrorKind),
        Down,
        Hangs,
    }

    impl Fake {
        fn new(answer: Answer) -> Arc<Self> {
            Arc::new(Self {
                answer: Mutex::new(answer),
                calls: Mutex::new(0),
            })
        }
    }

    #[async_trait]
    impl ValidationAuthority for Fake {
        async fn validate(&self, _request: ValidateRequest) -> Result<ValidationResult, Error> {
            *self.calls.lock().unwrap() += 1;
            let answer = self.answer.lock().unwrap().clone();
            let record = ValidationRecord {
                hostname: "example.com".into(),
                ..ValidationRecord::default()
            };
            match answer {
                Answer::Valid => Ok(ValidationResult {
                    records: vec![record],
                    problem: None,
                }),
                Answer::Sees(kind) => Ok(ValidationResult {
                    records: vec![record],
                    problem: Some(Error::new(kind, "the response was wrong")),
                }),
                Answer::Down => Err(Error::unavailable("connection refused")),
                Answer::Hangs => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    unreachable!("the primary gives up first")
                }
            }
        }

        /// CAA answers as the challenge does: `Sees` is a CAA refusal.
        async fn check_caa(&self, request: CaaCheck) -> Result<Option<Error>, Error> {
            let result = self
                .validate(ValidateRequest {
                    identifier: request.identifier,
                    challenge: request.method,
                    token: String::new(),
                    key_authorization: String::new(),
                    account_uri: request.account_uri,
                    wildcard: request.wildcard,
                })
                .await?;
            Ok(result.problem)
        }
    }

    fn request() -> ValidateRequest {
        ValidateRequest {
            identifier: Identifier::dns("example.com"),
            challenge: ChallengeType::Http01,
            token: "token".into(),
            key_authorization: "token.thumb".into(),
            account_uri: "https://acme.example/acct/1".into(),
            wildcard: false,
        }
    }

    /// A primary whose local check says `local` and whose remotes, in regions
    /// a, b, c, …, say `remotes`.
    fn primary(local: Answer, remotes: &[Answer]) -> (Perspectives, Vec<Arc<Fake>>) {
        let fakes: Vec<Arc<Fake>> = remotes.iter().cloned().map(Fake::new).collect();
        let remotes = fakes
            .iter()
            .enumerate()
            .map(|(i, fake)| Remote {
                name: format!("remote-{i}"),
                region: format!("region-{}", char::from(b'a' + u8::try_from(i).unwrap())),
                va: fake.clone(),
            })
            .collect();
        let perspectives =
            Perspectives::new(Fake::new(local), remotes, Duration::from_millis(300)).unwrap();
        (perspectives, fakes)
    }

    #[test]
    fn boulders_failure_allowance() {
        let allowed: Vec<usize> = (0..=8).map(allowed_failures).collect();
        assert_eq!(allowed, [0, 0, 1, 1, 1, 1, 2, 2, 2]);
    }

    #[tokio::test]
    async fn all_remotes_agree() {
        use Answer::Valid;
        let (va, _) = primary(Valid, &[Valid, Valid, Valid]);
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        let outcomes = &result.records[0].perspectives;
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes.iter().all(|o| o.succeeded));
    }

    #[tokio::test]
    async fn one_remote_down_still_validates() {
        use Answer::*;
        let (va, _) = primary(Valid, &[Valid, Down, Valid]);
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        let down = &result.records[0].perspectives[1];
        assert!(!down.succeeded);
        assert!(down.detail.starts_with("unreachable"), "{}", down.detail);
    }

    #[tokio::test]
    async fn two_remotes_down_refuse() {
        use Answer::*;
        let (va, _) = primary(Valid, &[Valid, Down, Down]);
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Connection);
        assert!(problem.detail.contains("2 of 3"), "{}", problem.detail);
    }

    #[tokio::test]
    async fn a_remote_that_sees_another_answer_counts_as_failed() {
        use Answer::*;
        let (va, _) = primary(Valid, &[Valid, Sees(ErrorKind::Unauthorized), Valid]);
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        assert!(!result.records[0].perspectives[1].succeeded);

        let (va, _) = primary(
            Valid,
            &[
                Sees(ErrorKind::Unauthorized),
                Sees(ErrorKind::Unauthorized),
                Valid,
            ],
        );
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert!(
            problem.detail.starts_with("during secondary validation"),
            "{}",
            problem.detail
        );
    }

    #[tokio::test]
    async fn a_remote_that_hangs_is_given_up_on() {
        use Answer::*;
        let (va, _) = primary(Valid, &[Valid, Hangs, Valid]);
        let started = std::time::Instant::now();
        let result = va.validate(request()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(result.problem, None);
        assert_eq!(
            result.records[0].perspectives[1].detail,
            "no answer in time"
        );
    }

    #[tokio::test]
    async fn a_local_failure_asks_no_remote() {
        use Answer::*;
        let (va, fakes) = primary(Sees(ErrorKind::IncorrectResponse), &[Valid, Valid, Valid]);
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::IncorrectResponse);
        assert!(fakes.iter().all(|f| *f.calls.lock().unwrap() == 0));
    }

    #[tokio::test]
    async fn successes_must_span_two_regions() {
        use Answer::*;
        // Four remotes in four regions, one down: three regions succeed.
        let (va, _) = primary(Valid, &[Valid, Down, Valid, Valid]);
        assert_eq!(va.validate(request()).await.unwrap().problem, None);
        // Two east, one west: the failure allowed is the west one, which leaves
        // successes from one region only.
        let fakes: Vec<Arc<Fake>> = [Valid, Valid, Down].into_iter().map(Fake::new).collect();
        let remotes = fakes
            .iter()
            .zip(["east", "east", "west"])
            .enumerate()
            .map(|(i, (fake, region))| Remote {
                name: format!("remote-{i}"),
                region: region.to_owned(),
                va: fake.clone(),
            })
            .collect();
        let va = Perspectives::new(Fake::new(Valid), remotes, Duration::from_millis(300)).unwrap();
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert!(problem.detail.contains("2 regions"), "{}", problem.detail);
    }

    #[tokio::test]
    async fn caa_is_rechecked_with_the_same_quorum() {
        use Answer::*;
        let check = CaaCheck {
            identifier: Identifier::dns("example.com"),
            wildcard: false,
            method: ChallengeType::Http01,
            account_uri: "https://acme.example/acct/1".into(),
        };
        let (va, _) = primary(Valid, &[Valid, Sees(ErrorKind::Caa), Valid]);
        assert_eq!(va.check_caa(check.clone()).await.unwrap(), None);
        let (va, _) = primary(Valid, &[Sees(ErrorKind::Caa), Down, Valid]);
        let problem = va.check_caa(check.clone()).await.unwrap().unwrap();
        assert_eq!(problem.kind, ErrorKind::Caa);
        // The local refusal stands, and no remote is asked.
        let (va, fakes) = primary(Sees(ErrorKind::Caa), &[Valid, Valid, Valid]);
        let problem = va.check_caa(check).await.unwrap().unwrap();
        assert_eq!(problem.kind, ErrorKind::Caa);
        assert!(fakes.iter().all(|f| *f.calls.lock().unwrap() == 0));
    }

    #[test]
    fn remotes_in_one_region_are_refused() {
        let remotes = (0..3)
            .map(|i| Remote {
                name: format!("remote-{i}"),
                region: "east".into(),
                va: Fake::new(Answer::Valid),
            })
            .collect();
        let err = Perspectives::new(Fake::new(Answer::Valid), remotes, Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.detail.contains("remote_min_regions = 2"), "{err}");
    }

    /// A pool whose name resolves to the addresses the test sets, each member
    /// answering as the test says, on a clock the test moves.
    struct Lab {
        addresses: Arc<Mutex<Vec<SocketAddr>>>,
        answers: Arc<Mutex<BTreeMap<String, Arc<Fake>>>>,
        clock: FixedClock,
    }

    impl Lab {
        fn new() -> Self {
            Self {
                addresses: Arc::default(),
                answers: Arc::default(),
                clock: FixedClock::new(time::OffsetDateTime::UNIX_EPOCH),
            }
        }

        /// The pool's name now resolves to `10.0.0.N` for each `(N, answer)`; a
        /// member new at `N` answers `answer`, one already there as it did.
        fn scale(&self, members: &[(u8, Answer)]) {
            let mut addresses = self.addresses.lock().unwrap();
            let mut fakes = self.answers.lock().unwrap();
            addresses.clear();
            for (last, answer) in members {
                let address = SocketAddr::from(([10, 0, 0, *last], 9092));
                fakes
                    .entry(address.to_string())
                    .or_insert_with(|| Fake::new(answer.clone()));
                addresses.push(address);
            }
        }

        /// Past the pool's `refresh`, so the next validation resolves again.
        fn later(&self) {
            self.clock.advance(time::Duration::seconds(31));
        }

        fn resolve(&self) -> ResolvePool {
            let addresses = self.addresses.clone();
            Arc::new(move |_| {
                let found = addresses.lock().unwrap().clone();
                Box::pin(async move { Ok(found) })
            })
        }

        fn connect(&self) -> ConnectRemote {
            let answers = self.answers.clone();
            Arc::new(move |peer| {
                let fake = answers.lock().unwrap().get(&peer.address).cloned();
                let va: Arc<dyn ValidationAuthority> =
                    fake.unwrap_or_else(|| Fake::new(Answer::Down));
                Ok(va)
            })
        }

        /// A primary VA with this pool alone, in one region.
        fn primary(&self, extra: &str) -> Perspectives {
            let text = format!(
                "remote_min_regions = 1\nremote_timeout = \"300ms\"\n{extra}\n{CONFIG}\n\
                 [[remote_pool]]\nregion = \"lab\"\naddress = \"va-remote:9092\"\n\
                 server_name = \"va-remote\"\n"
            );
            let config: VaConfig = basalt_config::parse(&text).unwrap();
            Perspectives::from_config(
                &config,
                Fake::new(Answer::Valid),
                self.connect(),
                self.resolve(),
                Arc::new(self.clock.clone()),
            )
            .unwrap()
        }
    }

    /// The parts of a VA config every test config needs.
    const CONFIG: &str = "[grpc]\nlisten = \"127.0.0.1:9092\"\n\
        [grpc.allowed_clients]\n\"basalt.va.Validation\" = [\"ra\"]\n\
        [tls]\ncert = \"va.pem\"\nkey = \"va.key\"\nca = \"ca.pem\"\n\
        [caa]\nissuer_domains = [\"basalt.example\"]\n";

    #[tokio::test]
    async fn the_quorum_follows_the_pool_as_it_grows_and_shrinks() {
        use Answer::*;
        let lab = Lab::new();
        lab.scale(&[(1, Valid), (2, Down), (3, Valid)]);
        let va = lab.primary("");
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        let names: Vec<&str> = result.records[0]
            .perspectives
            .iter()
            .map(|o| o.perspective.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "va-remote@10.0.0.1",
                "va-remote@10.0.0.2",
                "va-remote@10.0.0.3"
            ]
        );

        // Scaled to six, two of them down: six perspectives allow two failures.
        lab.scale(&[
            (1, Valid),
            (2, Down),
            (3, Valid),
            (4, Down),
            (5, Valid),
            (6, Valid),
        ]);
        lab.later();
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        assert_eq!(result.records[0].perspectives.len(), 6);

        // Scaled down to three with the same two down: one failure allowed.
        lab.scale(&[(2, Down), (4, Down), (5, Valid)]);
        lab.later();
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Connection);
        assert!(problem.detail.contains("2 of 3"), "{}", problem.detail);
        assert!(
            problem.detail.contains("span 1 region)"),
            "{}",
            problem.detail
        );
    }

    #[tokio::test]
    async fn a_pool_member_that_fails_is_replaced_at_the_next_resolution() {
        use Answer::*;
        let lab = Lab::new();
        lab.scale(&[(1, Valid), (2, Valid), (3, Down)]);
        let va = lab.primary("");
        assert_eq!(va.validate(request()).await.unwrap().problem, None);
        // The down member is replaced by one at another address; the failure
        // brings the resolution forward, without waiting out `refresh`.
        lab.scale(&[(1, Valid), (2, Valid), (4, Valid)]);
        lab.clock.advance(time::Duration::seconds(1));
        let result = va.validate(request()).await.unwrap();
        assert_eq!(result.problem, None);
        let outcomes = &result.records[0].perspectives;
        assert!(outcomes.iter().all(|o| o.succeeded), "{outcomes:?}");
        assert_eq!(outcomes[2].perspective, "va-remote@10.0.0.4");
    }

    #[tokio::test]
    async fn an_empty_pool_refuses_rather_than_skip_the_remotes() {
        let lab = Lab::new();
        let va = lab.primary("");
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Connection);
        assert!(
            problem.detail.contains("no remote perspective"),
            "{}",
            problem.detail
        );
        let check = CaaCheck {
            identifier: Identifier::dns("example.com"),
            wildcard: false,
            method: ChallengeType::Http01,
            account_uri: "https://acme.example/acct/1".into(),
        };
        assert!(va.check_caa(check).await.unwrap().is_some());
        // One member in the lab's one region is a quorum of one.
        lab.scale(&[(1, Answer::Valid)]);
        lab.clock.advance(time::Duration::seconds(1));
        assert_eq!(va.validate(request()).await.unwrap().problem, None);
    }

    #[tokio::test]
    async fn pools_and_remotes_count_together_across_regions() {
        use Answer::*;
        let lab = Lab::new();
        lab.scale(&[(1, Valid), (2, Valid)]);
        // A fixed remote in another region; two regions wanted.
        let va = Perspectives::with_pools(
            Fake::new(Valid),
            vec![Remote {
                name: "far".into(),
                region: "far-away".into(),
                va: Fake::new(Down),
            }],
            vec![RemotePool::new(
                &basalt_config::parse(
                    "region = \"lab\"\naddress = \"va-remote:9092\"\nserver_name = \"va-remote\"\n",
                )
                .unwrap(),
                basalt_config::ConfigDuration(Duration::from_millis(300)),
                lab.resolve(),
                lab.connect(),
                Arc::new(lab.clock.clone()),
            )],
            Duration::from_millis(300),
            2,
        )
        .unwrap();
        // One of three down is allowed, but the successes are all in the lab.
        let problem = va.validate(request()).await.unwrap().problem.unwrap();
        assert!(problem.detail.contains("1 of 3"), "{}", problem.detail);
        assert!(
            problem.detail.contains("span 2 regions"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn one_pool_needs_the_lab_setting() {
        let lab = Lab::new();
        let text = format!(
            "{CONFIG}[[remote_pool]]\nregion = \"lab\"\naddress = \"va-remote:9092\"\n\
             server_name = \"va-remote\"\n"
        );
        let config: VaConfig = basalt_config::parse(&text).unwrap();
        let err = Perspectives::from_config(
            &config,
            Fake::new(Answer::Valid),
            lab.connect(),
            lab.resolve(),
            Arc::new(lab.clock.clone()),
        )
        .err()
        .unwrap();
        assert!(err.detail.contains("remote_min_regions = 2"), "{err}");
        assert!(err.detail.contains("(lab)"), "{err}");
    }
}
