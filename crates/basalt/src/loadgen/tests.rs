//! The command line and the plan of which orders run and which are timed.

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadgenArgs,
}

const DIRECTORY: &str = "https://127.0.0.1:14000/directory";

fn parse(flags: &[&str]) -> Result<LoadgenArgs, clap::Error> {
    let argv = ["loadgen", "--directory", DIRECTORY]
        .into_iter()
        .chain(flags.iter().copied());
    Cli::try_parse_from(argv).map(|cli| cli.args)
}

fn refused(flags: &[&str]) -> String {
    parse(flags).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let args = parse(&["--concurrency", "8"]).unwrap();
    assert_eq!(args.mode(), Mode::Closed { concurrency: 8 });
    assert_eq!(args.stop(), Stop::After(Duration::from_secs(30)));
    assert_eq!(args.http01_listen, "0.0.0.0:5002".parse().unwrap());
    assert_eq!(args.accounts, 8);
    assert_eq!(args.names, 1);
    assert_eq!(args.domain, "loadgen.example.com");
    assert_eq!(args.warmup, Duration::ZERO);
    assert_eq!(args.poll_interval, Duration::from_millis(100));
    assert!(!args.revoke && !args.allow_errors);
    assert_eq!(args.ca_bundle, None);
    let settings = args.settings("127.0.0.1:5002".parse().unwrap());
    assert_eq!(settings.mode, "concurrency");
    assert_eq!(settings.duration_s, Some(30.0));
    assert_eq!(settings.max_in_flight, None);
}

#[test]
fn exactly_one_mode() {
    let message = refused(&[]);
    assert!(message.contains("--concurrency"), "{message}");
    let message = refused(&["--concurrency", "4", "--rate", "10"]);
    assert!(message.contains("cannot be used with"), "{message}");
    assert!(refused(&["--concurrency", "0"]).contains("--concurrency"));

    let args = parse(&["--rate", "12.5", "--max-in-flight", "50"]).unwrap();
    assert_eq!(
        args.mode(),
        Mode::Open {
            rate: 12.5,
            max_in_flight: 50
        }
    );
    assert_eq!(
        parse(&["--rate", "2"]).unwrap().mode(),
        Mode::Open {
            rate: 2.0,
            max_in_flight: 1000
        }
    );
    for rate in ["0", "-1", "inf", "NaN", "fast"] {
        let message = refused(&[&format!("--rate={rate}")]);
        assert!(message.contains("orders per second"), "{rate}: {message}");
    }
    // The in-flight cap belongs to the open loop.
    let message = refused(&["--concurrency", "4", "--max-in-flight", "10"]);
    assert!(message.contains("cannot be used with"), "{message}");
}

#[test]
fn one_stop_condition_with_durations_in_units() {
    let args = parse(&[
        "--concurrency",
        "1",
        "--duration",
        "500ms",
        "--warmup",
        "2s",
    ])
    .unwrap();
    assert_eq!(args.stop(), Stop::After(Duration::from_millis(500)));
    assert_eq!(args.warmup, Duration::from_secs(2));
    let args = parse(&["--concurrency", "1", "--duration", "2m"]).unwrap();
    assert_eq!(args.stop(), Stop::After(Duration::from_secs(120)));
    let args = parse(&["--concurrency", "1", "--orders", "100"]).unwrap();
    assert_eq!(args.stop(), Stop::Orders(100));
    assert_eq!(
        args.settings("0.0.0.0:1".parse().unwrap()).orders,
        Some(100)
    );

    let message = refused(&["--concurrency", "1", "--duration", "10s", "--orders", "5"]);
    assert!(message.contains("cannot be used with"), "{message}");
    for duration in ["0s", "10", "ten seconds", "1.5s"] {
        let message = refused(&["--concurrency", "1", "--duration", duration]);
        assert!(message.contains("--duration"), "{duration}: {message}");
    }
    assert!(refused(&["--concurrency", "1", "--orders", "0"]).contains("--orders"));
    assert!(refused(&["--concurrency", "1", "--poll-interval", "0ms"]).contains("--poll-interval"));
}

#[test]
fn names_and_domains() {
    let args = parse(&[
        "--concurrency",
        "1",
        "--names",
        "3",
        "--domain",
        "Load.Test.",
    ])
    .unwrap();
    assert_eq!(args.names, 3);
    assert_eq!(args.domain, "load.test");
    for domain in ["", "a..b", "under_score.test", "sp ace.test", "ü.test"] {
        let message = refused(&["--concurrency", "1", "--domain", domain]);
        assert!(message.contains("--domain"), "{domain:?}: {message}");
    }
    assert!(refused(&["--concurrency", "1", "--names", "0"]).contains("--names"));
    assert!(refused(&["--concurrency", "1", "--names", "101"]).contains("--names"));
    assert!(refused(&["--concurrency", "1", "--accounts", "0"]).contains("--accounts"));
    assert!(
        refused(&["--concurrency", "1", "--http01-listen", "5002"]).contains("--http01-listen")
    );
}

fn plan(stop: Stop, warmup: Duration) -> (Plan, Instant) {
    let start = Instant::now();
    (Plan::new(start + warmup, stop), start)
}

#[test]
fn warmup_orders_run_untimed_then_the_duration_is_timed() {
    let second = Duration::from_secs(1);
    let (plan, start) = plan(Stop::After(10 * second), 2 * second);
    assert_eq!(plan.ticket(start), Some(false));
    assert_eq!(plan.ticket(start + second), Some(false));
    assert_eq!(plan.ticket(start + 2 * second), Some(true));
    assert_eq!(plan.ticket(start + 11 * second), Some(true));
    assert!(plan.stopped_at.get().is_none());
    assert_eq!(plan.ticket(start + 12 * second), None);
    assert!(
        plan.stopped_at.get().is_some(),
        "the first refusal is when draining began"
    );
}

#[test]
fn an_order_count_stops_after_that_many_timed_orders() {
    let second = Duration::from_secs(1);
    let (plan, start) = plan(Stop::Orders(2), second);
    // Warmup orders do not count towards the two.
    assert_eq!(plan.ticket(start), Some(false));
    assert_eq!(plan.ticket(start), Some(false));
    let later = start + 5 * second;
    assert_eq!(plan.ticket(later), Some(true));
    assert_eq!(plan.ticket(later), Some(true));
    assert_eq!(plan.ticket(later), None);
    assert_eq!(plan.ticket(later + second), None);
}

#[test]
fn an_interrupt_stops_every_start() {
    let (plan, start) = plan(Stop::Orders(100), Duration::ZERO);
    assert_eq!(plan.ticket(start), Some(true));
    plan.interrupted.store(true, Ordering::Relaxed);
    assert_eq!(plan.ticket(start), None);
}
