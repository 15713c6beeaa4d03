//! The benchmark report cannot rot: bench/acme/report.py turns the rows a run of
//! bench/acme/run.sh writes into the ACME section of BENCHMARKS.md, judges each
//! target from them, and replaces only its own section of the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

fn bench(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/acme")
        .join(path)
}

/// One closed-loop run as run.sh records it.
fn run(server: &str, concurrency: u32, rps: f64, p50: f64, cpu_s: f64, ok: u64) -> String {
    format!(
        r#"{{"server": "{server}", "concurrency": {concurrency}, "cpu_s": {cpu_s},
 "cpu_by_process": {{"sa": {sa}, "wfe": {wfe}}}, "peak_rss_mib": 100.0, "exit": 0,
 "report": {{"elapsed_s": 10.0, "orders": {{"ok": {ok}, "failed": 0, "dropped": null}},
 "orders_per_second": {rps}, "latency": {{"p50_ms": {p50}, "p90_ms": {p50}, "p99_ms": {p50}}},
 "steps": {{"new_order": {{"count": {ok}, "p50_ms": 1.5}}}}, "errors": [],
 "cpu": {{"percent_of_one_core": 5.0}}}}}}"#,
        sa = cpu_s * 0.75,
        wfe = cpu_s * 0.25,
    )
    .replace('\n', "")
}

fn rows() -> String {
    [
        run("pebble", 1, 10.0, 200.0, 0.1, 100),
        run("pebble", 16, 100.0, 150.0, 6.0, 1000),
        run("basalt-sqlite", 1, 25.0, 40.0, 0.5, 250),
        // 3.5× Pebble's throughput, but more CPU per certificate than it.
        run("basalt-sqlite", 16, 350.0, 45.0, 70.0, 3500),
        r#"{"server": "basalt-sqlite", "rate": 500.0, "cpu_s": 30.0, "cpu_by_process": {"sa": 30.0}, "peak_rss_mib": 120.0, "exit": 0, "report": {"elapsed_s": 10.0, "orders": {"ok": 4000, "failed": 0, "dropped": 12}, "orders_per_second": 400.0, "latency": {"p50_ms": 90, "p90_ms": 150, "p99_ms": 300}, "steps": {}, "errors": [], "cpu": {"percent_of_one_core": 30.0}}}"#.to_owned(),
        r#"{"server": "pebble", "idle_rss_mib": 12.5, "idle_pss_mib": 12.0}"#.to_owned(),
        r#"{"server": "basalt-sqlite", "idle_rss_mib": 140.0, "idle_pss_mib": 30.0}"#.to_owned(),
        r#"{"server": "pebble", "wrk": "directory", "rps": 30000.0, "p99_ms": 9.2}"#.to_owned(),
        r#"{"profile": [["sa", "[kernel.kallsyms]", "finish_task_switch", 300], ["wfe", "basalt", "ecp_nistz256_mul", 100]], "by_process": [["sa", "kernel", 300], ["sa", "libc", 100], ["wfe", "basalt", 100]], "samples": 1000, "server": "basalt-sqlite", "orders": 50, "seconds": 10.0}"#.to_owned(),
        r#"{"meta": {"cpu": "Test CPU", "cpus": 2, "memory_gib": 24, "kernel": "6.1", "date": "2026-11-30 00:00 UTC", "basalt": "basalt 0.1.0", "commit": "abc1234", "rustc": "rustc 1.95.0", "pebble": "2.4.0", "postgres": null, "settings": {"CONCURRENCY": "1 16", "DURATION": "10s", "WARMUP_ORDERS": "20", "SERVERS": "pebble basalt-sqlite", "PEBBLE_TIMEOUT": "120", "ALONE_RATE": "500", "ALONE_DURATION": "10s", "PROFILE": "1", "PROFILE_DURATION": "10s", "WRK_DURATION": "10s", "WRK_CONNECTIONS": "16"}}}"#.to_owned(),
    ]
    .join("\n")
}

/// A fresh directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("basalt-bench-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python(args: &[&Path]) -> String {
    let output = Command::new("python3")
        .arg(bench("report.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "report.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The row of the targets table whose first cell starts with `target`.
fn target_row<'a>(report: &'a str, target: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.starts_with(&format!("| {target}")))
        .unwrap_or_else(|| panic!("no target row {target:?} in\n{report}"))
}

#[test]
fn the_report_judges_each_target_from_the_run() {
    let dir = scratch("judge");
    let rows_path = dir.join("rows.jsonl");
    std::fs::write(&rows_path, rows()).unwrap();
    let report = python(&[&rows_path, &bench("notes.md")]);

    let throughput = target_row(&report, "c16 orders/s, basalt-sqlite");
    assert!(
        throughput.contains("3.50×") && throughput.ends_with("| met |"),
        "{throughput}"
    );
    let latency = target_row(&report, "c1 median latency, basalt-sqlite");
    assert!(latency.ends_with("| met |"), "{latency}");
    // 0.02 CPU-s per certificate against Pebble's 0.006.
    let cpu = target_row(&report, "c16 CPU-s per certificate, basalt-sqlite");
    assert!(cpu.ends_with("**not met** |"), "{cpu}");
    // 400/s with orders dropped and p99 300 ms misses all three parts.
    let alone = target_row(&report, "Basalt alone");
    assert!(
        alone.contains("12 failed or dropped") && alone.ends_with("**not met** |"),
        "{alone}"
    );
    let idle = target_row(&report, "All Basalt processes at idle");
    assert!(
        idle.contains("140.0 MiB RSS (30.0 MiB PSS)") && idle.ends_with("| met |"),
        "{idle}"
    );

    // The per-process split, the profile in ms per certificate, and the notes.
    assert!(report.contains("| sa | 15.00 |"), "{report}");
    assert!(
        report.contains("`finish_task_switch` | [kernel.kallsyms] | 6.01 |"),
        "{report}"
    );
    // Shares by process count every sample of it, not only the top symbols.
    assert!(
        report.contains("| sa | 40.0% | kernel 75%, libc 25% | 8.01 |"),
        "{report}"
    );
    assert!(report.contains("#### What the profile says"));
    // The command that reproduces the run carries its settings.
    assert!(report.contains("CONCURRENCY=\"1 16\""), "{report}");
}

#[test]
fn a_stalled_pebble_is_not_the_yardstick() {
    let dir = scratch("stalled");
    let rows_path = dir.join("rows.jsonl");
    // Pebble's c16 run loses orders and crawls at 3/s; its c1 run, 10/s, is clean.
    let stalled =
        run("pebble", 16, 3.0, 150.0, 6.0, 30).replace(r#""failed": 0"#, r#""failed": 16"#);
    let text = rows().replace(&run("pebble", 16, 100.0, 150.0, 6.0, 1000), &stalled);
    std::fs::write(&rows_path, text).unwrap();
    let report = python(&[&rows_path, &bench("notes.md")]);
    let throughput = target_row(&report, "c16 orders/s, basalt-sqlite");
    assert!(
        throughput.contains("Pebble stalled, 16 orders failed")
            && throughput.contains("10.0/s: 35.00×")
            && throughput.ends_with("| met |"),
        "{throughput}"
    );
}

#[test]
fn splicing_replaces_only_the_acme_section() {
    let dir = scratch("splice");
    let file = dir.join("BENCHMARKS.md");
    let section = dir.join("section.md");
    std::fs::write(
        &file,
        "# Benchmarks\n\n## OCSP\n\nkept\n\n<!-- acme:begin -->\nold\n<!-- acme:end -->\n\n## After\n",
    )
    .unwrap();
    std::fs::write(&section, "<!-- acme:begin -->\nnew\n<!-- acme:end -->\n").unwrap();
    python(&[Path::new("--splice"), &file, &section]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "# Benchmarks\n\n## OCSP\n\nkept\n\n<!-- acme:begin -->\nnew\n<!-- acme:end -->\n\n## After\n"
    );

    // A file without the section gets it appended, once.
    std::fs::write(&file, "# Benchmarks\n").unwrap();
    python(&[Path::new("--splice"), &file, &section]);
    python(&[Path::new("--splice"), &file, &section]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("acme:begin").count(), 1, "{text}");
}
