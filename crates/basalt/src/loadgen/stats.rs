//! Latency samples, their percentiles, and what a run counted.
//!
//! Samples are kept exactly (microseconds as `u32`, 4 bytes each, sorted once at
//! the end) rather than in an HDR-style histogram: a run of an hour at 1000
//! orders/s with every step recorded stays under 150 MB, the percentiles are
//! exact rather than bucketed, and there is no histogram range to choose.
//! A sample longer than `u32::MAX` µs (71 minutes) is recorded as that.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One step of an issuance, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    NewOrder,
    Authorization,
    Challenge,
    PollAuthorization,
    Finalize,
    PollOrder,
    Download,
    Revoke,
}

impl Step {
    /// Every step, in the order of an issuance.
    pub(crate) const ALL: [Self; 8] = [
        Self::NewOrder,
        Self::Authorization,
        Self::Challenge,
        Self::PollAuthorization,
        Self::Finalize,
        Self::PollOrder,
        Self::Download,
        Self::Revoke,
    ];

    /// The step's name in the report and the JSON file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::NewOrder => "new_order",
            Self::Authorization => "authorization",
            Self::Challenge => "challenge",
            Self::PollAuthorization => "poll_authorization",
            Self::Finalize => "finalize",
            Self::PollOrder => "poll_order",
            Self::Download => "download",
            Self::Revoke => "revoke",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Durations, kept exactly.
#[derive(Debug, Default)]
pub(crate) struct Samples(Vec<u32>);

impl Samples {
    /// Adds one duration.
    pub(crate) fn record(&mut self, duration: Duration) {
        let micros = u32::try_from(duration.as_micros()).unwrap_or(u32::MAX);
        self.0.push(micros);
    }

    /// Count, mean, p50, p90, p99 and max (nearest-rank percentiles).
    pub(crate) fn summary(&mut self) -> Summary {
        self.0.sort_unstable();
        let sorted = &self.0;
        let ms = |micros: u32| f64::from(micros) / 1000.0;
        let Some(&max) = sorted.last() else {
            return Summary::default();
        };
        let total: u64 = sorted.iter().map(|&micros| u64::from(micros)).sum();
        Summary {
            count: sorted.len() as u64,
            mean_ms: total as f64 / sorted.len() as f64 / 1000.0,
            p50_ms: ms(nearest_rank(sorted, 50)),
            p90_ms: ms(nearest_rank(sorted, 90)),
            p99_ms: ms(nearest_rank(sorted, 99)),
            max_ms: ms(max),
        }
    }
}

/// The `percent`th percentile of a sorted, non-empty slice by the nearest-rank
/// method: the smallest sample with at least `percent`% of samples at or below it.
fn nearest_rank(sorted: &[u32], percent: usize) -> u32 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A summary of samples, in milliseconds; all zero when there are none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// How often one kind of error happened, with the first message as an example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorCount {
    pub(crate) count: u64,
    pub(crate) example: String,
}

/// Everything the timed orders produced.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    steps: [Samples; Step::ALL.len()],
    end_to_end: Samples,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    errors: BTreeMap<String, ErrorCount>,
}

impl Recorder {
    /// Records a finished order: its steps' durations, and its end-to-end time if
    /// it issued a certificate or the kind and message of its error if not.
    pub(crate) fn order(
        &mut self,
        steps: &[(Step, Duration)],
        outcome: Result<Duration, (String, String)>,
    ) {
        for (step, duration) in steps {
            self.steps[step.index()].record(*duration);
        }
        match outcome {
            Ok(total) => {
                self.ok += 1;
                self.end_to_end.record(total);
            }
            Err((kind, message)) => {
                self.failed += 1;
                self.errors
                    .entry(kind)
                    .or_insert_with(|| ErrorCount {
                        count: 0,
                        example: message,
                    })
                    .count += 1;
            }
        }
    }

    /// The end-to-end latency of the orders that issued.
    pub(crate) fn end_to_end(&mut self) -> Summary {
        self.end_to_end.summary()
    }

    /// Each step's latency, in issuance order.
    pub(crate) fn steps(&mut self) -> Vec<(Step, Summary)> {
        Step::ALL
            .iter()
            .map(|&step| (step, self.steps[step.index()].summary()))
            .collect()
    }

    /// The errors by kind, most frequent first.
    pub(crate) fn errors(&self) -> Vec<(String, ErrorCount)> {
        let mut errors: Vec<(String, ErrorCount)> = self
            .errors
            .iter()
            .map(|(kind, count)| (kind.clone(), count.clone()))
            .collect();
        errors.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=100 ms in shuffled order: p50 is 50, p90 90, p99 99.
        let mut samples = Samples::default();
        for n in (1..=100).rev() {
            samples.record(ms((n * 37) % 100 + 1));
        }
        let summary = samples.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p90_ms, 90.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summary.mean_ms, 50.5);
    }

    #[test]
    fn small_sets_take_the_sample_at_or_above_the_rank() {
        let mut samples = Samples::default();
        for n in [30, 10, 20] {
            samples.record(ms(n));
        }
        let summary = samples.summary();
        // Ranks: p50 -> ceil(1.5) = 2nd; p90 -> ceil(2.7) = 3rd; p99 -> 3rd.
        assert_eq!(
            (summary.p50_ms, summary.p90_ms, summary.p99_ms),
            (20.0, 30.0, 30.0)
        );

        let mut one = Samples::default();
        one.record(Duration::from_micros(1500));
        let summary = one.summary();
        assert_eq!((summary.p50_ms, summary.max_ms), (1.5, 1.5));
        assert_eq!(Samples::default().summary(), Summary::default());
    }

    #[test]
    fn absurd_durations_saturate() {
        let mut samples = Samples::default();
        samples.record(Duration::from_secs(u64::MAX));
        assert_eq!(samples.summary().max_ms, f64::from(u32::MAX) / 1000.0);
    }

    #[test]
    fn the_recorder_counts_orders_steps_and_errors() {
        let mut recorder = Recorder::default();
        let steps = [(Step::NewOrder, ms(5)), (Step::Finalize, ms(7))];
        recorder.order(&steps, Ok(ms(40)));
        recorder.order(&steps[..1], Ok(ms(60)));
        for message in ["first", "second"] {
            recorder.order(
                &[(Step::NewOrder, ms(1))],
                Err((
                    "urn:ietf:params:acme:error:rateLimited".to_owned(),
                    message.to_owned(),
                )),
            );
        }
        recorder.order(
            &[],
            Err(("transport: connect".to_owned(), "refused".to_owned())),
        );
        assert_eq!((recorder.ok, recorder.failed), (2, 3));
        let steps = recorder.steps();
        assert_eq!(steps.len(), 8);
        assert_eq!(steps[0].0, Step::NewOrder);
        assert_eq!(steps[0].1.count, 4);
        assert_eq!(steps[4].0.name(), "finalize");
        assert_eq!(steps[4].1.count, 1);
        assert_eq!(steps[7].1.count, 0);
        assert_eq!(recorder.end_to_end().max_ms, 60.0);
        let errors = recorder.errors();
        assert_eq!(errors[0].0, "urn:ietf:params:acme:error:rateLimited");
        assert_eq!(
            errors[0].1,
            ErrorCount {
                count: 2,
                example: "first".to_owned()
            }
        );
        assert_eq!(errors[1].0, "transport: connect");
    }
}
