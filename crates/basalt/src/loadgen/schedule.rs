//! The open-loop schedule: order `n` is due `n / rate` seconds after the start,
//! whether or not earlier orders have finished, so a slow server meets the same
//! arrivals a fast one does (no coordinated omission).

use std::ops::Range;
use std::time::Duration;

/// An order started more than this after its slot is counted as started late.
pub(crate) const LATE_AFTER: Duration = Duration::from_millis(10);

/// Slots at a fixed rate, handed out once each as time passes. Pure: the
/// caller supplies the elapsed time, so tests drive it with a fake clock.
#[derive(Debug)]
pub(crate) struct OpenLoop {
    rate: f64,
    next: u64,
}

/// What to do with a due slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Start the order; `late` if it starts more than [`LATE_AFTER`] after its slot.
    Start { late: bool },
    /// Drop it: the cap on orders in flight is reached.
    Drop,
}

impl OpenLoop {
    /// A schedule of `rate` orders per second (finite, above 0).
    pub(crate) fn new(rate: f64) -> Self {
        Self { rate, next: 0 }
    }

    /// When slot `slot` is due, after the start.
    pub(crate) fn offset(&self, slot: u64) -> Duration {
        // u64 -> f64 is exact up to 2^53 slots, far beyond any run.
        Duration::from_secs_f64(slot as f64 / self.rate)
    }

    /// When the next slot not yet handed out is due.
    pub(crate) fn next_offset(&self) -> Duration {
        self.offset(self.next)
    }

    /// The slots due by `elapsed` and not handed out before.
    pub(crate) fn take_due(&mut self, elapsed: Duration) -> Range<u64> {
        let first = self.next;
        while self.offset(self.next) <= elapsed {
            self.next += 1;
        }
        first..self.next
    }
}

/// Whether a slot due at `due` and reached at `now` (both after the start)
/// starts, with `in_flight` orders running and at most `max_in_flight` allowed.
pub(crate) fn admit(
    due: Duration,
    now: Duration,
    in_flight: usize,
    max_in_flight: usize,
) -> Admission {
    if in_flight >= max_in_flight {
        return Admission::Drop;
    }
    Admission::Start {
        late: now.saturating_sub(due) > LATE_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn slots_fall_due_at_the_rate() {
        let mut schedule = OpenLoop::new(10.0);
        assert_eq!(schedule.next_offset(), Duration::ZERO);
        // At the start, slot 0 is due.
        assert_eq!(schedule.take_due(Duration::ZERO), 0..1);
        assert_eq!(schedule.next_offset(), ms(100));
        assert_eq!(schedule.take_due(ms(99)), 1..1);
        assert_eq!(schedule.take_due(ms(100)), 1..2);
        // A caller that wakes late gets every slot it missed, once.
        assert_eq!(schedule.take_due(ms(450)), 2..5);
        assert_eq!(schedule.take_due(ms(450)), 5..5);
        assert_eq!(schedule.next_offset(), ms(500));
    }

    #[test]
    fn fractional_rates_keep_exact_offsets() {
        let mut schedule = OpenLoop::new(0.5);
        assert_eq!(schedule.offset(3), Duration::from_secs(6));
        assert_eq!(schedule.take_due(Duration::from_secs(5)), 0..3);
        let fast = OpenLoop::new(3.0);
        assert_eq!(fast.offset(3), Duration::from_secs(1));
    }

    /// Runs `schedule` on a fake clock that wakes at `wake_ups`, each order taking
    /// `order_time`, at most `cap` in flight; returns (started, late, dropped).
    fn simulate(
        schedule: &mut OpenLoop,
        wake_ups: impl Iterator<Item = Duration>,
        order_time: Duration,
        cap: usize,
    ) -> (u32, u32, u32) {
        let mut running: Vec<Duration> = Vec::new();
        let (mut started, mut late, mut dropped) = (0, 0, 0);
        for now in wake_ups {
            running.retain(|end| *end > now);
            for slot in schedule.take_due(now) {
                match admit(schedule.offset(slot), now, running.len(), cap) {
                    Admission::Start { late: is_late } => {
                        started += 1;
                        late += u32::from(is_late);
                        running.push(now + order_time);
                    }
                    Admission::Drop => dropped += 1,
                }
            }
        }
        (started, late, dropped)
    }

    #[test]
    fn the_in_flight_cap_drops_slots_instead_of_delaying_them() {
        // 100 orders/s for a second, woken on time for every slot; orders take
        // 25 ms and at most 2 may run: two start, the third finds both running,
        // and so on: every third slot is dropped.
        let mut schedule = OpenLoop::new(100.0);
        let wake_ups = (0..100).map(|n| ms(10 * n));
        let (started, late, dropped) = simulate(&mut schedule, wake_ups, ms(25), 2);
        assert_eq!((started, late, dropped), (67, 0, 33));
    }

    #[test]
    fn a_stalled_scheduler_starts_the_slots_it_missed_late() {
        // Slots every 10 ms; the scheduler wakes at 0, then not until 35 ms: slots
        // at 10, 20 and 30 ms start 25, 15 and 5 ms after they were due.
        let mut schedule = OpenLoop::new(100.0);
        let wake_ups = [ms(0), ms(35)].into_iter();
        let (started, late, dropped) = simulate(&mut schedule, wake_ups, ms(1), 100);
        assert_eq!((started, late, dropped), (4, 2, 0));
        assert_eq!(schedule.next_offset(), ms(40));
    }

    #[test]
    fn a_slot_reached_past_the_tolerance_is_late() {
        assert_eq!(
            admit(ms(100), ms(110), 0, 1),
            Admission::Start { late: false }
        );
        assert_eq!(
            admit(ms(100), ms(111), 0, 1),
            Admission::Start { late: true }
        );
        // Reached before it is due (never happens, but never "late").
        assert_eq!(
            admit(ms(100), ms(50), 0, 1),
            Admission::Start { late: false }
        );
        assert_eq!(admit(ms(100), ms(100), 1, 1), Admission::Drop);
    }
}
