//! `basalt loadgen`: an RFC 8555 load generator for any ACME server.
//!
//! It creates its accounts first, then drives whole issuances (newOrder,
//! authorizations, http-01 challenges answered by its own responder, finalize,
//! download, optionally revocation) either from a fixed number of workers
//! (`--concurrency`, closed loop) or at a fixed rate whether or not earlier orders
//! have finished (`--rate`, open loop), and reports orders per second, end-to-end
//! and per-step latency, errors by problem type and its own CPU use.
//!
//! The server must resolve the generated names (`<random>.<--domain>`) to the
//! responder's address, e.g. through pebble-challtestsrv as its DNS.

mod cpu;
mod flow;
mod http01;
mod report;
mod schedule;
mod stats;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use basalt_acme::Account;
use basalt_acme::AccountKey;
use basalt_acme::Client;
use basalt_acme::ClientOptions;
use basalt_acme::NewAccount;
use basalt_acme::PollPolicy;
use basalt_acme::Roots;
use basalt_config::ConfigDuration;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use tokio::task::JoinSet;

use self::flow::OrderJob;
use self::flow::StepTimes;
use self::http01::Responder;
use self::report::Cpu;
use self::report::ErrorEntry;
use self::report::Orders;
use self::report::Report;
use self::report::Settings;
use self::report::Steps;
use self::schedule::Admission;
use self::schedule::OpenLoop;
use self::stats::Recorder;

/// How long a run lasts unless `--duration` or `--orders` says.
const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// `--max-in-flight` unless given.
const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
/// How many failed orders are printed as they happen (all are counted).
const ERRORS_PRINTED: u64 = 5;

/// Flags of `basalt loadgen`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["concurrency", "rate"])))]
#[command(group(clap::ArgGroup::new("stop").args(["duration", "orders"])))]
pub(crate) struct LoadgenArgs {
    /// The ACME server's directory URL.
    #[arg(long, value_name = "URL")]
    directory: String,
    /// Trust only the CA certificates in this PEM file for the server's HTTPS
    /// (default: the system's trust store).
    #[arg(long, value_name = "PEM")]
    ca_bundle: Option<PathBuf>,
    /// Where the http-01 responder listens; the server must connect here for
    /// every generated name.
    #[arg(long, default_value = "0.0.0.0:5002", value_name = "ADDR")]
    http01_listen: SocketAddr,
    /// Accounts to create before timing starts; orders use them in turn.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Closed loop: this many workers, each starting an order when its last one ends.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,
    /// Open loop: start this many orders per second, whether or not earlier ones
    /// have finished.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Open loop: the most orders in flight (default 1000); a slot that finds this
    /// many running is dropped and counted.
    #[arg(long, value_name = "N", conflicts_with = "concurrency", value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: Option<u32>,
    /// How long to run after the warmup (default 30s), e.g. `10s`, `2m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    duration: Option<Duration>,
    /// Stop after this many timed orders instead.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    orders: Option<u64>,
    /// Run this long before timing starts; orders started in the warmup are not
    /// counted.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    warmup: Duration,
    /// Names per order.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    names: u32,
    /// The names are `<random>.<SUFFIX>`.
    #[arg(long, default_value = "loadgen.example.com", value_name = "SUFFIX", value_parser = parse_domain)]
    domain: String,
    /// Revoke each certificate after downloading it (a step of its own).
    #[arg(long)]
    revoke: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Exit 0 even when orders failed.
    #[arg(long)]
    allow_errors: bool,
    /// How long to wait between polls when the server sends no `Retry-After`.
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = parse_positive_duration)]
    poll_interval: Duration,
    /// The longest wait between polls, whatever `Retry-After` says.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    max_retry_after: Duration,
    /// How long to poll one authorization or order before the order fails.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_positive_duration)]
    poll_timeout: Duration,
    /// The longest one HTTP request may take.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_positive_duration)]
    request_timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<ConfigDuration>().map(|duration| duration.0)
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?}: must be longer than 0"));
    }
    Ok(duration)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?}: expected orders per second above 0, e.g. 50 or 0.5"
        )),
    }
}

fn parse_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(format!("{text:?} is not a DNS name"));
    }
    Ok(domain)
}

/// Closed or open loop.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Closed { concurrency: u32 },
    Open { rate: f64, max_in_flight: u32 },
}

/// When the timed part ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    After(Duration),
    Orders(u64),
}

impl LoadgenArgs {
    fn mode(&self) -> Mode {
        match (self.concurrency, self.rate) {
            (_, Some(rate)) => Mode::Open {
                rate,
                max_in_flight: self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            },
            // clap requires exactly one of the two.
            (concurrency, None) => Mode::Closed {
                concurrency: concurrency.unwrap_or(1),
            },
        }
    }

    fn stop(&self) -> Stop {
        match (self.orders, self.duration) {
            (Some(orders), _) => Stop::Orders(orders),
            (None, duration) => Stop::After(duration.unwrap_or(DEFAULT_DURATION)),
        }
    }

    fn settings(&self, http01: SocketAddr) -> Settings {
        let (mode, concurrency, rate, max_in_flight) = match self.mode() {
            Mode::Closed { concurrency } => ("concurrency", Some(concurrency), None, None),
            Mode::Open {
                rate,
                max_in_flight,
            } => ("rate", None, Some(rate), Some(max_in_flight)),
        };
        let (duration_s, orders) = match self.stop() {
            Stop::After(duration) => (Some(duration.as_secs_f64()), None),
            Stop::Orders(orders) => (None, Some(orders)),
        };
        Settings {
            directory: self.directory.clone(),
            mode,
            concurrency,
            rate,
            max_in_flight,
            duration_s,
            orders,
            warmup_s: self.warmup.as_secs_f64(),
            accounts: self.accounts,
            names_per_order: self.names,
            domain: self.domain.clone(),
            revoke: self.revoke,
            http01_listen: http01.to_string(),
            poll_interval_ms: self.poll_interval.as_secs_f64() * 1000.0,
            max_retry_after_s: self.max_retry_after.as_secs_f64(),
        }
    }
}

/// Which orders to start: those before `timed_from` are the warmup's; then
/// timed ones until the stop condition or an interrupt.
#[derive(Debug)]
struct Plan {
    timed_from: Instant,
    stop: Stop,
    timed_started: AtomicU64,
    interrupted: AtomicBool,
    /// When the first start was refused: from then on only orders in flight finish.
    stopped_at: OnceLock<Instant>,
}

impl Plan {
    fn new(timed_from: Instant, stop: Stop) -> Self {
        Self {
            timed_from,
            stop,
            timed_started: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
            stopped_at: OnceLock::new(),
        }
    }

    /// Whether an order due at `at` starts, and if so whether it is timed.
    fn ticket(&self, at: Instant) -> Option<bool> {
        let ticket = if self.interrupted.load(Ordering::Relaxed) {
            None
        } else if at < self.timed_from {
            Some(false)
        } else {
            match self.stop {
                Stop::After(duration) => (at < self.timed_from + duration).then_some(true),
                Stop::Orders(orders) => {
                    (self.timed_started.fetch_add(1, Ordering::Relaxed) < orders).then_some(true)
                }
            }
        };
        if ticket.is_none() {
            self.stopped_at.get_or_init(Instant::now);
        }
        ticket
    }
}

/// What every order shares.
struct Run {
    accounts: Vec<Account>,
    responder: Responder,
    names: u32,
    domain: String,
    revoke: bool,
    recorder: Mutex<Recorder>,
    sequence: AtomicU64,
    failures: AtomicU64,
    rng: SystemRandom,
}

impl Run {
    fn recorder(&self) -> MutexGuard<'_, Recorder> {
        // Recording is a few pushes and counter bumps: nothing is left half done.
        self.recorder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A random name under the domain: 64 random bits in hex, a fresh
    /// authorization every time.
    fn name(&self) -> String {
        let mut bytes = [0_u8; 8];
        let mut label = String::with_capacity(16 + 1 + self.domain.len());
        if self.rng.fill(&mut bytes).is_err() {
            // ring's SystemRandom reads getrandom(2); should it ever fail, a
            // sequence number still gives a name no earlier order used.
            bytes = self.sequence.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        }
        for byte in bytes {
            let _ = write!(label, "{byte:02x}");
        }
        label.push('.');
        label.push_str(&self.domain);
        label
    }

    /// Runs one order started (or, in open loop, due) at `started`, and records
    /// it if it is timed.
    async fn order(&self, timed: bool, started: Instant) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let account = &self.accounts[(sequence % self.accounts.len() as u64) as usize];
        let job = OrderJob {
            account: account.clone(),
            names: (0..self.names).map(|_| self.name()).collect(),
            responder: self.responder.clone(),
            revoke: self.revoke,
        };
        let mut steps = StepTimes::new();
        let result = flow::run_order(job, &mut steps).await;
        let outcome = match result {
            Ok(()) => Ok(started.elapsed()),
            Err(err) => {
                if self.failures.fetch_add(1, Ordering::Relaxed) < ERRORS_PRINTED {
                    let when = if timed { "" } else { " (warmup)" };
                    eprintln!("basalt loadgen: an order failed{when}: {err}");
                }
                Err((err.label(), err.to_string()))
            }
        };
        if timed {
            self.recorder().order(&steps, outcome);
        }
    }
}

/// Runs the load generator and prints its report.
pub(crate) async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let roots = match &args.ca_bundle {
        Some(path) => Roots::pem_file(path).context("--ca-bundle")?,
        None => Roots::System,
    };
    let options = ClientOptions {
        roots,
        request_timeout: args.request_timeout,
        poll: PollPolicy {
            default_interval: args.poll_interval,
            max_interval: args.max_retry_after,
            timeout: args.poll_timeout,
        },
        ..ClientOptions::default()
    };
    let client = Client::new(&args.directory, options)
        .await
        .with_context(|| format!("--directory {}", args.directory))?;
    let responder = Responder::bind(args.http01_listen).await?;
    let accounts = create_accounts(&client, args.accounts).await?;
    eprintln!(
        "basalt loadgen: {} accounts on {}; http-01 responder on {}",
        accounts.len(),
        args.directory,
        responder.local_addr()
    );

    let run = Arc::new(Run {
        accounts,
        responder: responder.clone(),
        names: args.names,
        domain: args.domain.clone(),
        revoke: args.revoke,
        recorder: Mutex::new(Recorder::default()),
        sequence: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        rng: SystemRandom::new(),
    });
    let start = Instant::now();
    let plan = Arc::new(Plan::new(start + args.warmup, args.stop()));
    let interrupt = {
        let plan = Arc::clone(&plan);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("basalt loadgen: interrupted; finishing the orders in flight");
                plan.interrupted.store(true, Ordering::Relaxed);
            }
        })
    };
    // The CPU time at the start of the timed window, read when it begins.
    let cpu_start = {
        let timed_from = plan.timed_from;
        tokio::spawn(async move {
            tokio::time::sleep_until(timed_from.into()).await;
            cpu::process_cpu_time()
        })
    };

    let open_loop = match args.mode() {
        Mode::Closed { concurrency } => {
            closed_loop(&run, &plan, concurrency).await;
            None
        }
        Mode::Open {
            rate,
            max_in_flight,
        } => Some(open_loop(&run, &plan, start, rate, max_in_flight as usize).await),
    };
    interrupt.abort();
    let end = Instant::now();
    let cpu_end = cpu::process_cpu_time();
    // An interrupt during the warmup ends the run before the window opens.
    let cpu_start = if end >= plan.timed_from {
        cpu_start.await.ok().flatten()
    } else {
        cpu_start.abort();
        None
    };
    let elapsed = end.saturating_duration_since(plan.timed_from);
    let drain = plan
        .stopped_at
        .get()
        .map_or(Duration::ZERO, |stopped| {
            end.saturating_duration_since(*stopped)
        })
        .min(elapsed);

    let report = {
        let mut recorder = run.recorder();
        let elapsed_s = elapsed.as_secs_f64();
        let cpu_seconds = cpu_start
            .zip(cpu_end)
            .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
        Report {
            settings: args.settings(responder.local_addr()),
            elapsed_s,
            drain_s: drain.as_secs_f64(),
            orders: Orders {
                ok: recorder.ok,
                failed: recorder.failed,
                started_late: open_loop.as_ref().map(|counts| counts.late),
                dropped: open_loop.as_ref().map(|counts| counts.dropped),
                max_start_delay_ms: open_loop
                    .as_ref()
                    .map(|counts| counts.max_start_delay.as_secs_f64() * 1000.0),
            },
            orders_per_second: if elapsed_s > 0.0 {
                recorder.ok as f64 / elapsed_s
            } else {
                0.0
            },
            latency: recorder.end_to_end(),
            steps: Steps(recorder.steps()),
            errors: recorder
                .errors()
                .into_iter()
                .map(ErrorEntry::from)
                .collect(),
            cpu: Cpu {
                seconds: cpu_seconds,
                percent_of_one_core: cpu_seconds
                    .filter(|_| elapsed_s > 0.0)
                    .map(|seconds| seconds / elapsed_s * 100.0),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        }
    };
    print!("{}", report.render());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json)
            .with_context(|| format!("--json {}: cannot write", path.display()))?;
    }
    let Orders { ok, failed, .. } = report.orders;
    if ok + failed == 0 {
        anyhow::bail!("no order was timed: lengthen --duration or shorten --warmup");
    }
    if failed > 0 && !args.allow_errors {
        anyhow::bail!(
            "{failed} of {} timed orders failed (--allow-errors to exit 0 anyway)",
            ok + failed
        );
    }
    Ok(())
}

/// Creates `count` accounts at once, agreeing to the terms.
async fn create_accounts(client: &Client, count: u32) -> anyhow::Result<Vec<Account>> {
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let client = client.clone();
        tasks.spawn(async move {
            let request = NewAccount {
                terms_of_service_agreed: true,
                ..NewAccount::default()
            };
            client.new_account(AccountKey::generate()?, &request).await
        });
    }
    let mut accounts = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        let account = joined
            .context("an account task failed")?
            .context("cannot create an account")?;
        accounts.push(account);
    }
    Ok(accounts)
}

/// `concurrency` workers, each running one order after another.
async fn closed_loop(run: &Arc<Run>, plan: &Arc<Plan>, concurrency: u32) {
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let run = Arc::clone(run);
        let plan = Arc::clone(plan);
        workers.spawn(async move {
            loop {
                let now = Instant::now();
                let Some(timed) = plan.ticket(now) else {
                    break;
                };
                run.order(timed, now).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// What the open loop counted about its timed slots.
#[derive(Debug, Default)]
struct OpenLoopCounts {
    late: u64,
    dropped: u64,
    max_start_delay: Duration,
}

/// Starts an order at every slot of `rate` per second from `start`, each as its
/// own task, until the plan says stop; then waits for those in flight.
async fn open_loop(
    run: &Arc<Run>,
    plan: &Plan,
    start: Instant,
    rate: f64,
    max_in_flight: usize,
) -> OpenLoopCounts {
    let mut schedule = OpenLoop::new(rate);
    let mut counts = OpenLoopCounts::default();
    let mut in_flight = JoinSet::new();
    'schedule: loop {
        tokio::time::sleep_until((start + schedule.next_offset()).into()).await;
        let now = start.elapsed();
        while in_flight.try_join_next().is_some() {}
        for slot in schedule.take_due(now) {
            let due = schedule.offset(slot);
            let Some(timed) = plan.ticket(start + due) else {
                break 'schedule;
            };
            match schedule::admit(due, now, in_flight.len(), max_in_flight) {
                Admission::Drop => counts.dropped += u64::from(timed),
                Admission::Start { late } => {
                    if timed {
                        counts.late += u64::from(late);
                        counts.max_start_delay =
                            counts.max_start_delay.max(now.saturating_sub(due));
                    }
                    let run = Arc::clone(run);
                    in_flight.spawn(async move { run.order(timed, start + due).await });
                }
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
    counts
}

#[cfg(test)]
mod tests;
