//! Crash tests: a burst of concurrent issuances through instant-acme while a fault
//! hits the SA (its process killed, or its database connections cut), and then the
//! books must balance. Every certificate a client received is stored with the same
//! bytes, under a serial the SA recorded and on exactly one order; no order is left
//! `processing` for good; and every client got its certificate in the end.
//!
//! The SA runs on PostgreSQL so the test can read its tables and cut its
//! connections from outside. The fault comes once the first order is `processing`,
//! so it lands while the RA issues in the background.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use basalt_core::Serial;
use instant_acme::Account;
use instant_acme::Order;
use instant_acme::OrderStatus;
use instant_acme::RetryPolicy;
use tokio::time::Instant;

use crate::certs::serial_and_aki;
use crate::harness::DevCa;
use crate::instant_acme::Http01;
use crate::instant_acme::cert_csr;
use crate::instant_acme::pem_certs;
use crate::instant_acme::try_new_account;
use crate::instant_acme::try_ready_order;
use crate::restart::kill;
use crate::restart::new_pid;

/// Clients issuing at once: more than the SA's pool has connections (10 by
/// default), so some requests queue in the SA when the fault hits.
const CLIENTS: usize = 12;
/// Orders one client tries before it gives up. A fault costs a client one or two
/// orders (one cut short, one or two refused while the SA comes back); with the
/// backoff below the attempts span 15 s, so running out of them means the CA did
/// not recover.
const ATTEMPTS: u32 = 5;
/// The wait before a client's second attempt; it doubles for each later one, so
/// the attempts span an SA restart rather than all failing against it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long the whole burst may take.
const BURST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client polls an order: longer than the RA keeps retrying an SA
/// write (60 s), so an order the RA settles late is still seen to settle.
const POLL_TIMEOUT: Duration = Duration::from_secs(75);
/// How a client polls an order for `ready`: often at first.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.3)
    .timeout(POLL_TIMEOUT);
/// The first and the longest wait between polls of a finalized order.
const FIRST_POLL_WAIT: Duration = Duration::from_millis(250);
const MAX_POLL_WAIT: Duration = Duration::from_secs(3);
/// How long the fault waits for the first order to reach `processing`.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the RA and the SA get, after the burst, to settle every order that
/// began processing. The RA retries its writes for 60 s; the SA's maintenance
/// pass only acts after 10 minutes, so it is not what this waits for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the test waits for the SA to hold a connection it can cut.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times the SA's connections are cut, and the pause between cuts: often
/// enough that some cut lands inside a transaction of the RA's background writes.
const CUTS: usize = 10;
const BETWEEN_CUTS: Duration = Duration::from_millis(200);

/// What goes wrong while the burst runs.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `kill -9` of the SA process; `basalt dev` starts a new one.
    KillSa,
    /// `pg_terminate_backend` of every SA connection, [`CUTS`] times, as a
    /// database failover would; the SA process lives on.
    DropConnections,
}

/// How far the burst has got, for choosing the moment of the fault.
#[derive(Default)]
struct Progress {
    /// Orders whose finalize request was answered: the RA issues in the background.
    finalized: AtomicUsize,
    /// Certificates downloaded by a client.
    delivered: AtomicUsize,
}

/// What one client got.
struct Outcome {
    client: usize,
    /// The name of the order that succeeded and its leaf certificate's DER.
    certificate: Option<(String, Vec<u8>)>,
    /// Each failed attempt: its name and what went wrong.
    failures: Vec<String>,
    /// Polls of a finalized order that failed while the attempt went on.
    poll_errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sa_during_a_burst_loses_nothing() {
    burst_survives(Fault::KillSa, "crash-kill-sa").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_database_connections_during_a_burst_loses_nothing() {
    burst_survives(Fault::DropConnections, "crash-drop-db").await;
}

/// Runs the burst with `fault` injected, then checks that nothing was lost.
async fn burst_survives(fault: Fault, label: &str) {
    // The RA answers finalize at once (`processing`), so the fault that waits for
    // the first answer lands while that issuance runs in the background.
    let ca = Arc::new(
        DevCa::builder(label)
            .postgres()
            .arg("--issuance-wait")
            .arg("0s")
            .start(),
    );
    let http01 = Http01::start(ca.http01_port).await;
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let deadline = started + BURST_TIMEOUT;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(issue_with_retries(
                ca.clone(),
                http01.clone(),
                progress.clone(),
                client,
                deadline,
            ))
        })
        .collect();
    let delivered_before_fault = inject(&ca, fault, &progress).await;
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.push(client.await.expect("a client task panicked"));
    }
    let burst = started.elapsed();

    let mut summary = format!(
        "{fault:?}: {delivered_before_fault} of {CLIENTS} certificates delivered before the \
         fault; burst took {burst:.1?}\n"
    );
    for outcome in &outcomes {
        let got = outcome
            .certificate
            .as_ref()
            .map_or("no certificate", |(name, _)| name.as_str());
        let _ = writeln!(
            summary,
            "client {}: {got}; failed attempts: {:?}; poll errors: {:?}",
            outcome.client, outcome.failures, outcome.poll_errors
        );
    }
    eprintln!("{summary}");

    // A fault after the last download tests nothing.
    assert!(
        delivered_before_fault < CLIENTS,
        "every client had its certificate before the fault was injected\n{summary}"
    );
    let mut problems = tokio::task::block_in_place(|| lost_certificates(&ca, &outcomes));
    let settling = Instant::now();
    let stuck = stuck_orders(&ca).await;
    eprintln!(
        "{fault:?}: orders settled or given up on after {:.1?}",
        settling.elapsed()
    );
    problems.extend(stuck);
    for outcome in &outcomes {
        if outcome.certificate.is_none() {
            problems.push(format!(
                "client {} got no certificate in {ATTEMPTS} attempts: {:?}",
                outcome.client, outcome.failures
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "after {fault:?}:\n{}\n\n{summary}",
        problems.join("\n")
    );
}

/// Waits until an order is `processing`, injects `fault` and returns how many
/// certificates had been delivered by then.
async fn inject(ca: &DevCa, fault: Fault, progress: &Progress) -> usize {
    let trigger = Instant::now() + TRIGGER_TIMEOUT;
    while progress.finalized.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < trigger,
            "no order reached processing within {TRIGGER_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = progress.delivered.load(Ordering::SeqCst);
    match fault {
        Fault::KillSa => tokio::task::block_in_place(|| {
            let old = ca.service_pid("sa");
            kill(old);
            let new = new_pid(ca, "sa", old);
            eprintln!("killed the sa (pid {old}); basalt dev started pid {new}");
        }),
        Fault::DropConnections => {
            // The first cut must end a connection; later ones end whatever the SA
            // holds by then (nothing, once the burst is over).
            let ended = cut_connections(ca).await;
            eprintln!("cut 1: ended {ended} connections of the sa");
            for cut in 2..=CUTS {
                tokio::time::sleep(BETWEEN_CUTS).await;
                let ended = tokio::task::block_in_place(|| ca.database().terminate_connections());
                eprintln!("cut {cut}: ended {ended} connections of the sa");
            }
        }
    }
    delivered
}

/// Ends the SA's database connections, waiting until it holds at least one so the
/// cut is real; returns how many were ended.
async fn cut_connections(ca: &DevCa) -> usize {
    let deadline = Instant::now() + CONNECTION_TIMEOUT;
    loop {
        let ended = tokio::task::block_in_place(|| ca.database().terminate_connections());
        if ended > 0 {
            return ended;
        }
        assert!(
            Instant::now() < deadline,
            "the sa held no database connection to cut within {CONNECTION_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One client: a certificate for a name of its own, starting over with a new
/// order (and a new name) whenever anything fails, until it has one, runs out of
/// attempts or passes `deadline`.
async fn issue_with_retries(
    ca: Arc<DevCa>,
    http01: Http01,
    progress: Arc<Progress>,
    client: usize,
    deadline: Instant,
) -> Outcome {
    let mut account = None;
    let mut failures = Vec::new();
    let mut poll_errors = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let name = format!("crash-{client}-{attempt}.example.com");
        let issued = tokio::time::timeout_at(
            deadline,
            issue(
                &ca,
                &http01,
                &progress,
                &mut account,
                &name,
                &mut poll_errors,
            ),
        )
        .await;
        match issued {
            Ok(Ok(leaf)) => {
                return Outcome {
                    client,
                    certificate: Some((name, leaf)),
                    failures,
                    poll_errors,
                };
            }
            Ok(Err(why)) => failures.push(format!("{name}: {why}")),
            Err(_) => {
                failures.push(format!("{name}: still running after {BURST_TIMEOUT:?}"));
                break;
            }
        }
    }
    Outcome {
        client,
        certificate: None,
        failures,
        poll_errors,
    }
}

/// One attempt: account (once), order, http-01, finalize, poll, download; returns
/// the leaf certificate's DER.
async fn issue(
    ca: &DevCa,
    http01: &Http01,
    progress: &Progress,
    account: &mut Option<Account>,
    name: &str,
    poll_errors: &mut Vec<String>,
) -> Result<Vec<u8>, String> {
    if account.is_none() {
        let (created, _) = try_new_account(ca, &[])
            .await
            .map_err(|err| format!("new-account: {err}"))?;
        *account = Some(created);
    }
    let account = account.as_ref().expect("the account was just created");
    let mut order = try_ready_order(account, http01, &[name], &POLL).await?;
    let (csr, _key) = cert_csr(&[name]);
    order
        .finalize_csr(&csr)
        .await
        .map_err(|err| format!("finalize: {err}"))?;
    progress.finalized.fetch_add(1, Ordering::SeqCst);
    let chain = download(&mut order, name, poll_errors).await?;
    let leaf = pem_certs(&chain)
        .into_iter()
        .next()
        .ok_or_else(|| format!("no certificate in the download: {chain:?}"))?;
    progress.delivered.fetch_add(1, Ordering::SeqCst);
    Ok(leaf)
}

/// Polls a finalized order until it is valid and downloads its certificate chain.
/// A failed poll says nothing about the order (the SA may be restarting), so unlike
/// instant-acme's `poll_certificate` this goes on polling the same order: that way
/// a certificate issued across the fault reaches the client, and is checked too.
/// An order that turns invalid ends the attempt.
async fn download(
    order: &mut Order,
    name: &str,
    poll_errors: &mut Vec<String>,
) -> Result<String, String> {
    let deadline = Instant::now() + POLL_TIMEOUT;
    let mut wait = FIRST_POLL_WAIT;
    loop {
        match order.refresh().await {
            Ok(state) if state.error.is_some() || state.status == OrderStatus::Invalid => {
                return Err(format!("the order is invalid: {:?}", state.error));
            }
            Ok(state) if state.status == OrderStatus::Valid => match order.certificate().await {
                Ok(Some(chain)) => return Ok(chain),
                Ok(None) => poll_errors.push(format!("{name}: valid, but no certificate")),
                Err(err) => poll_errors.push(format!("{name}: download: {err}")),
            },
            Ok(state) if state.status == OrderStatus::Processing => {}
            Ok(state) => return Err(format!("the order is {:?} after finalize", state.status)),
            Err(err) => poll_errors.push(format!("{name}: poll: {err}")),
        }
        if Instant::now() + wait > deadline {
            return Err(format!("the order is not valid after {POLL_TIMEOUT:?}"));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_POLL_WAIT);
    }
}

/// What the SA's tables lost or got wrong of what the clients received: each
/// received certificate must be stored byte for byte, have a status for OCSP,
/// be named by exactly one order, and its serial must be recorded in `serials`
/// (as must that of every stored certificate); and no two clients may hold the
/// same serial.
fn lost_certificates(ca: &DevCa, outcomes: &[Outcome]) -> Vec<String> {
    let database = ca.database();
    let stored: HashMap<String, String> = database
        .query_rows("SELECT serial, encode(der, 'hex') FROM certificates")
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let mut on_orders: HashMap<String, usize> = HashMap::new();
    for row in database
        .query_rows("SELECT certificate_serial FROM orders WHERE certificate_serial IS NOT NULL")
    {
        *on_orders.entry(row[0].clone()).or_default() += 1;
    }
    let with_status: Vec<String> = database
        .query_rows("SELECT serial FROM certificate_status")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();

    let mut problems = Vec::new();
    let mut holders: HashMap<String, &str> = HashMap::new();
    for outcome in outcomes {
        let Some((name, leaf)) = &outcome.certificate else {
            continue;
        };
        let (serial_bytes, _) = serial_and_aki(leaf);
        let serial = Serial::from_bytes(&serial_bytes)
            .expect("a certificate serial")
            .to_string();
        if let Some(other) = holders.insert(serial.clone(), name) {
            problems.push(format!(
                "serial {serial} was delivered twice: for {other} and for {name}"
            ));
        }
        match stored.get(&serial) {
            None => problems.push(format!(
                "lost: {name} received certificate {serial}, which is not in `certificates`"
            )),
            Some(der) if *der != hex(leaf) => problems.push(format!(
                "{name} received certificate {serial}, but `certificates` holds other bytes \
                 under that serial"
            )),
            Some(_) => {}
        }
        if !with_status.contains(&serial) {
            problems.push(format!(
                "lost: {name} received certificate {serial}, which has no row in \
                 `certificate_status`"
            ));
        }
        match on_orders.get(&serial).copied().unwrap_or_default() {
            1 => {}
            0 => problems.push(format!(
                "lost: {name} received certificate {serial}, but no order names it"
            )),
            orders => problems.push(format!(
                "{orders} orders name certificate {serial} (delivered for {name})"
            )),
        }
    }

    for row in database.query_rows(
        "SELECT c.serial FROM certificates c LEFT JOIN serials s ON s.serial = c.serial \
         WHERE s.serial IS NULL",
    ) {
        problems.push(format!(
            "certificate {} is stored, but its serial is not in `serials`",
            row[0]
        ));
    }
    problems
}

/// Orders that began processing and, within [`SETTLE_TIMEOUT`], got neither a
/// certificate nor an error: a client polling one of them would wait for ever.
async fn stuck_orders(ca: &DevCa) -> Vec<String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let stuck = tokio::task::block_in_place(|| {
            ca.database().query_rows(
                "SELECT id, identifiers, processing_at FROM orders WHERE began_processing = 1 \
                 AND certificate_serial IS NULL AND error IS NULL ORDER BY id",
            )
        });
        if stuck.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= deadline {
            return stuck
                .iter()
                .map(|row| {
                    format!(
                        "stuck: order {} for {} began processing at {} and is still \
                         processing {SETTLE_TIMEOUT:?} after the burst (see ra.log)",
                        row[0], row[1], row[2]
                    )
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Lowercase hex, as PostgreSQL's `encode(…, 'hex')` prints it.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
