//! Multi-perspective validation: the primary VA validates, then asks remote VAs in
//! other network locations to validate the same challenge (and check CAA), so that
//! one hijacked route near the primary cannot get a certificate issued (CA/Browser
//! Forum Baseline Requirements §3.2.2.9).
//!
//! The quorum follows Boulder's: with 2 to 5 remote perspectives one may fail, with 6
//! or more two may; the remote successes must come from at least two distinct
//! regions. A remote that cannot be reached, answers late, or sees a different answer
//! counts as failed. Each perspective's outcome goes into the validation record and
//! the audit log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::CaaCheck;
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

/// The tracing target of audit events; the same as the RA's.
const AUDIT: &str = "audit";

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

/// A [`ValidationAuthority`] that validates locally and then from every remote
/// perspective, and succeeds only with a quorum.
pub struct Perspectives {
    local: Arc<dyn ValidationAuthority>,
    remotes: Vec<Remote>,
    timeout: Duration,
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
        if !remotes.is_empty() {
            let mut regions: Vec<&str> = remotes.iter().map(|r| r.region.as_str()).collect();
            regions.sort_unstable();
            regions.dedup();
            if regions.len() < 2 {
                return Err(Error::internal(
                    "remote: the remote perspectives must span at least two regions",
                ));
            }
        }
        Ok(Self {
            local,
            remotes,
            timeout,
        })
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
    failures: usize,
    allowed: usize,
    regions: usize,
    quorum: bool,
}

impl Perspectives {
    /// Asks every remote at once, each with its own deadline, so one slow remote
    /// delays the answer by at most the timeout; then applies the quorum rule.
    async fn ask_remotes(&self, ask: Ask) -> Verdict {
        let mut asks = tokio::task::JoinSet::new();
        for (index, remote) in self.remotes.iter().enumerate() {
            let call = ask(remote.va.clone());
            let timeout = self.timeout;
            asks.spawn(async move { (index, tokio::time::timeout(timeout, call).await) });
        }
        let mut outcomes: Vec<PerspectiveOutcome> = self
            .remotes
            .iter()
            .map(|remote| PerspectiveOutcome {
                perspective: remote.name.clone(),
                region: remote.region.clone(),
                succeeded: false,
                detail: "no answer in time".to_owned(),
            })
            .collect();
        let mut problems: Vec<Option<Error>> = vec![None; self.remotes.len()];
        while let Some(joined) = asks.join_next().await {
            let Ok((index, answer)) = joined else {
                continue;
            };
            let outcome = &mut outcomes[index];
            match answer {
                Ok(Ok(None)) => {
                    outcome.succeeded = true;
                    outcome.detail.clear();
                }
                Ok(Ok(Some(problem))) => {
                    outcome.detail = problem.to_string();
                    problems[index] = Some(problem);
                }
                Ok(Err(err)) => outcome.detail = format!("unreachable: {err}"),
                Err(_) => {}
            }
        }
        let failures = outcomes.iter().filter(|o| !o.succeeded).count();
        let mut regions: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.succeeded)
            .map(|o| o.region.as_str())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        let regions = regions.len();
        let allowed = allowed_failures(self.remotes.len());
        Verdict {
            seen: problems.into_iter().flatten().next(),
            quorum: failures <= allowed && regions >= 2,
            outcomes,
            failures,
            allowed,
            regions,
        }
    }

    /// The problem when `verdict` is no quorum: what a remote saw, when one saw
    /// something; otherwise a connection problem.
    fn no_quorum(&self, verdict: Verdict) -> Error {
        let summary = format!(
            "{} of {} remote perspectives could not validate \
             (at most {} may fail, successes must span 2 regions)",
            verdict.failures,
            self.remotes.len(),
            verdict.allowed
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
            remotes = self.remotes.len(),
            failed = verdict.failures,
            allowed_failures = verdict.allowed,
            regions = verdict.regions,
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
        if result.problem.is_some() || self.remotes.is_empty() {
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
        if self.remotes.is_empty() {
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
    use std::sync::Mutex;

    use basalt_core::ChallengeType;
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
        assert!(err.detail.contains("two regions"), "{err}");
    }
}
