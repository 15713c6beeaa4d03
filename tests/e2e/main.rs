//! End-to-end tests: `basalt dev` runs every service as its own process, and real
//! ACME clients (certbot, lego, instant-acme) and hand-made requests drive it.
//!
//! Needs the `basalt` binary (`cargo build -p basalt`, or `BASALT_BIN`) and
//! certbot, lego, pebble-challtestsrv and openssl on `PATH`; the tests with
//! `postgres` or `mariadb` in their names also need that server and its client
//! (`psql`, `mariadb`), see `database.rs`; `rate_limits.rs` needs Redis on
//! 127.0.0.1:6379.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acme_api;
mod admin;
mod allowlist;
mod alternate_chains;
mod audit;
mod ca_crash;
mod certbot;
mod certs;
mod challenges;
mod conformance;
mod crash;
mod crl;
mod database;
mod eab;
mod flow;
mod harness;
mod health;
mod incident;
mod instant_acme;
mod jws;
mod lego;
mod loadgen;
mod multi_wfe;
mod observability;
mod ocsp;
mod perspectives;
mod pkilint;
mod rate_limits;
mod restart;
mod reuse;
mod revocation;
mod steps;
mod weak_keys;
