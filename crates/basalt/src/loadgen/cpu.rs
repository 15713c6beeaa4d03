//! The load generator's own CPU time, so a report shows when the generator,
//! rather than the server, was the bottleneck.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: `USER_HZ`, which Linux
/// fixes at 100 for user space on every architecture Basalt builds for (it is
/// what `getconf CLK_TCK` prints).
const USER_HZ: u64 = 100;

/// User plus system CPU time of this process, all threads, so far; `None` where
/// `/proc/self/stat` cannot be read (not Linux).
pub(crate) fn process_cpu_time() -> Option<Duration> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// utime + stime (fields 14 and 15, proc(5)) of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<Duration> {
    // Field 2, the command name, is in parentheses and may hold spaces or
    // parentheses itself: the fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state), so utime (14) is its 12th field.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(ticks.checked_mul(1000 / USER_HZ)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let stat = "4242 (basalt (load) gen) S 1 4242 4242 0 -1 4194560 2211 0 0 0 \
                    123 45 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(1680)));
    }

    #[test]
    fn a_truncated_line_is_no_time() {
        assert_eq!(parse_stat("4242 (basalt) S 1 2 3"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        if cfg!(target_os = "linux") {
            let mut spin = 0_u64;
            let before = process_cpu_time().unwrap();
            // Burn CPU until the tick counter moves (10 ms per tick).
            while process_cpu_time().unwrap() == before {
                spin = spin.wrapping_add(1);
            }
            assert!(process_cpu_time().unwrap() > before, "{spin}");
        }
    }
}
