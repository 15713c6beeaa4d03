//! Logging for Basalt's services.
//!
//! Every process logs to stderr through `tracing`, one line per event, with the
//! service name on each line. `RUST_LOG` filters as usual (default `info`), and
//! `BASALT_LOG_FORMAT=json` switches to JSON lines for log shippers. Decisions an
//! auditor must be able to find (issuance, revocation, refusals) are events with
//! `target: "audit"`, so they can be routed apart from the rest.
#![warn(missing_docs)]

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber for `service`. Call once, first thing in `main`.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BASALT_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) keeps the first subscriber; that is harmless.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
}
