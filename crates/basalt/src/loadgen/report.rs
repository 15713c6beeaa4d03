//! What a run measured: the JSON file (`--json`) and the table on stdout.

use std::fmt::Write as _;

use serde::Serialize;
use serde::Serializer;

use super::stats::ErrorCount;
use super::stats::Step;
use super::stats::Summary;

/// The settings a run used, as the report repeats them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Settings {
    pub(crate) directory: String,
    /// `concurrency` (closed loop) or `rate` (open loop).
    pub(crate) mode: &'static str,
    pub(crate) concurrency: Option<u32>,
    pub(crate) rate: Option<f64>,
    pub(crate) max_in_flight: Option<u32>,
    pub(crate) duration_s: Option<f64>,
    pub(crate) orders: Option<u64>,
    pub(crate) warmup_s: f64,
    pub(crate) accounts: u32,
    pub(crate) names_per_order: u32,
    pub(crate) domain: String,
    pub(crate) revoke: bool,
    pub(crate) http01_listen: String,
    pub(crate) poll_interval_ms: f64,
    pub(crate) max_retry_after_s: f64,
}

/// Order counts.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Orders {
    /// Timed orders that ended with a downloaded certificate (and revoked it, with
    /// `--revoke`).
    pub(crate) ok: u64,
    /// Timed orders that failed.
    pub(crate) failed: u64,
    /// Open loop only: timed orders that started more than 10 ms after their slot.
    pub(crate) started_late: Option<u64>,
    /// Open loop only: timed slots skipped because `--max-in-flight` orders ran.
    pub(crate) dropped: Option<u64>,
    /// Open loop only: the longest delay between a slot and its order's start.
    pub(crate) max_start_delay_ms: Option<f64>,
}

/// One kind of error.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ErrorEntry {
    /// A problem type URN, or the client-side kind (`transport: connect`, …).
    pub(crate) kind: String,
    pub(crate) count: u64,
    /// The first such error's message.
    pub(crate) example: String,
}

impl From<(String, ErrorCount)> for ErrorEntry {
    fn from((kind, count): (String, ErrorCount)) -> Self {
        Self {
            kind,
            count: count.count,
            example: count.example,
        }
    }
}

/// The generator's own CPU use over the timed window.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Cpu {
    /// User plus system seconds; `None` where they cannot be read.
    pub(crate) seconds: Option<f64>,
    /// `seconds` over the window, in percent of one core.
    pub(crate) percent_of_one_core: Option<f64>,
    /// The cores this process may run on.
    pub(crate) cores: usize,
}

/// The per-step summaries, serialized as an object in issuance order.
#[derive(Clone, Debug)]
pub(crate) struct Steps(pub(crate) Vec<(Step, Summary)>);

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(step, summary)| (step.name(), summary)))
    }
}

/// A run's report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) settings: Settings,
    /// From the end of the warmup until the last timed order ended: the
    /// throughput's denominator.
    pub(crate) elapsed_s: f64,
    /// The end of `elapsed_s` in which no order started, only those in flight
    /// finished.
    pub(crate) drain_s: f64,
    pub(crate) orders: Orders,
    /// `orders.ok` over `elapsed_s`.
    pub(crate) orders_per_second: f64,
    /// End-to-end latency of the orders that issued: from newOrder (in open
    /// loop: from the order's slot) to the download (or revocation).
    pub(crate) latency: Summary,
    pub(crate) steps: Steps,
    /// Errors by kind, most frequent first.
    pub(crate) errors: Vec<ErrorEntry>,
    pub(crate) cpu: Cpu,
}

impl Report {
    /// The report as a table for people.
    pub(crate) fn render(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let mode = match (s.concurrency, s.rate) {
            (Some(concurrency), _) => format!("concurrency {concurrency}"),
            (None, Some(rate)) => format!(
                "rate {rate}/s (open loop, at most {} in flight)",
                s.max_in_flight.unwrap_or_default()
            ),
            (None, None) => s.mode.to_owned(),
        };
        let stop = match (s.duration_s, s.orders) {
            (_, Some(orders)) => format!("{orders} orders"),
            (Some(duration), None) => format!("{duration} s"),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "basalt loadgen: {}", s.directory);
        let _ = writeln!(
            out,
            "  {mode}, {stop} after {} s warmup; {} accounts, {} name(s) per order under {}{}",
            s.warmup_s,
            s.accounts,
            s.names_per_order,
            s.domain,
            if s.revoke { ", revoking each" } else { "" }
        );
        let o = &self.orders;
        let _ = writeln!(
            out,
            "orders: {} ok, {} failed in {:.2} s (the last {:.2} s finishing those in flight): \
             {:.2} orders/s",
            o.ok, o.failed, self.elapsed_s, self.drain_s, self.orders_per_second
        );
        if let (Some(late), Some(dropped)) = (o.started_late, o.dropped) {
            let _ = writeln!(
                out,
                "open loop: {late} started late (>10 ms), {dropped} dropped at the in-flight cap, \
                 longest start delay {:.1} ms",
                o.max_start_delay_ms.unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "\n{:<20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency (ms)", "count", "mean", "p50", "p90", "p99", "max"
        );
        let mut row = |name: &str, summary: &Summary| {
            let _ = writeln!(
                out,
                "{name:<20} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                summary.count,
                summary.mean_ms,
                summary.p50_ms,
                summary.p90_ms,
                summary.p99_ms,
                summary.max_ms
            );
        };
        for (step, summary) in &self.steps.0 {
            if summary.count > 0 || *step != Step::Revoke {
                row(step.name(), summary);
            }
        }
        row("end to end", &self.latency);
        if self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors: none");
        } else {
            let _ = writeln!(out, "\nerrors:");
            for error in &self.errors {
                let _ = writeln!(out, "{:>8}  {}", error.count, error.kind);
                let _ = writeln!(out, "          e.g. {}", error.example);
            }
        }
        let cpu = &self.cpu;
        match (cpu.seconds, cpu.percent_of_one_core) {
            (Some(seconds), Some(percent)) => {
                let _ = writeln!(
                    out,
                    "loadgen CPU: {seconds:.2} s in {:.2} s = {percent:.1}% of one core ({} cores)",
                    self.elapsed_s, cpu.cores
                );
            }
            _ => {
                let _ = writeln!(out, "loadgen CPU: unavailable ({} cores)", cpu.cores);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let summary = Summary {
            count: 3,
            mean_ms: 2.0,
            p50_ms: 2.0,
            p90_ms: 3.0,
            p99_ms: 3.0,
            max_ms: 3.0,
        };
        Report {
            settings: Settings {
                directory: "https://127.0.0.1:14000/directory".to_owned(),
                mode: "rate",
                concurrency: None,
                rate: Some(5.0),
                max_in_flight: Some(100),
                duration_s: Some(10.0),
                orders: None,
                warmup_s: 0.0,
                accounts: 8,
                names_per_order: 1,
                domain: "loadgen.example.com".to_owned(),
                revoke: false,
                http01_listen: "0.0.0.0:5002".to_owned(),
                poll_interval_ms: 100.0,
                max_retry_after_s: 10.0,
            },
            elapsed_s: 10.5,
            drain_s: 0.5,
            orders: Orders {
                ok: 3,
                failed: 1,
                started_late: Some(0),
                dropped: Some(2),
                max_start_delay_ms: Some(1.5),
            },
            orders_per_second: 3.0 / 10.5,
            latency: summary,
            steps: Steps(
                Step::ALL
                    .iter()
                    .map(|&step| {
                        (
                            step,
                            if step == Step::Revoke {
                                Summary::default()
                            } else {
                                summary
                            },
                        )
                    })
                    .collect(),
            ),
            errors: vec![ErrorEntry {
                kind: "urn:ietf:params:acme:error:rateLimited".to_owned(),
                count: 1,
                example: "too many".to_owned(),
            }],
            cpu: Cpu {
                seconds: Some(0.5),
                percent_of_one_core: Some(4.8),
                cores: 2,
            },
        }
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["settings"]["mode"], "rate");
        assert_eq!(json["orders"]["dropped"], 2);
        assert_eq!(json["latency"]["p99_ms"], 3.0);
        assert_eq!(json["steps"]["poll_authorization"]["count"], 3);
        assert_eq!(json["steps"]["revoke"]["count"], 0);
        assert_eq!(
            json["errors"][0]["kind"],
            "urn:ietf:params:acme:error:rateLimited"
        );
        assert_eq!(json["cpu"]["cores"], 2);
        // Steps keep issuance order in the file.
        let text = serde_json::to_string(&report().steps).unwrap();
        let at = |name: &str| text.find(&format!("\"{name}\":")).unwrap();
        assert!(at("new_order") < at("authorization"));
        assert!(at("finalize") < at("poll_order"));
        assert!(at("download") < at("revoke"));
    }

    #[test]
    fn the_table_shows_counts_steps_errors_and_cpu() {
        let text = report().render();
        assert!(text.contains("orders: 3 ok, 1 failed in 10.50 s (the last 0.50 s finishing those in flight): 0.29 orders/s"), "{text}");
        assert!(text.contains("2 dropped at the in-flight cap"), "{text}");
        assert!(text.contains("poll_authorization"), "{text}");
        assert!(
            !text.contains("revoke "),
            "no revoke row without samples: {text}"
        );
        assert!(
            text.contains("urn:ietf:params:acme:error:rateLimited"),
            "{text}"
        );
        assert!(text.contains("4.8% of one core (2 cores)"), "{text}");

        let mut unavailable = report();
        unavailable.cpu.seconds = None;
        unavailable.cpu.percent_of_one_core = None;
        unavailable.errors.clear();
        let text = unavailable.render();
        assert!(text.contains("loadgen CPU: unavailable"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }
}
