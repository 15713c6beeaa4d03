//! `basalt`: every Basalt service, and the lab launcher, in one binary.
//!
//! `basalt <service> --config FILE` runs one service as its own process;
//! `basalt dev` starts them all on one machine with a generated PKI and SQLite;
//! `basalt ceremony <kind> --config FILE` makes CA keys and certificates offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::Subcommand;

mod admin;
mod ceremony;
mod dev;
mod health;
mod loadgen;
mod services;
mod shutdown;

#[derive(Debug, Parser)]
#[command(
    name = "basalt",
    version,
    about = "An ACME (RFC 8555) certificate authority"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The ACME web front end (HTTPS).
    Wfe(ServiceArgs),
    /// The registration authority (gRPC).
    Ra(ServiceArgs),
    /// The validation authority (gRPC).
    Va(ServiceArgs),
    /// The certificate authority: the only holder of issuer keys (gRPC).
    Ca(ServiceArgs),
    /// The storage authority: the only holder of the database (gRPC);
    /// `basalt sa migrate` applies its schema migrations.
    Sa(SaArgs),
    /// The OCSP responder (HTTP).
    Ocsp(ServiceArgs),
    /// The nonce service that several WFEs share (gRPC).
    Nonce(ServiceArgs),
    /// Operator commands (external account binding keys, …).
    Admin(admin::AdminArgs),
    /// A key ceremony: make a root, an intermediate, a cross-signed or a CRL
    /// signing certificate (and its key) from a TOML file, offline.
    Ceremony(ceremony::CeremonyArgs),
    /// Start a whole CA on this machine, each service as its own process.
    Dev(dev::DevArgs),
    /// Whether a running service answers (exit status 0) or not (1), for
    /// container and orchestrator health checks.
    Health(health::HealthArgs),
    /// Drive an ACME server with whole issuances and report throughput, latency,
    /// errors and the generator's own CPU use.
    Loadgen(loadgen::LoadgenArgs),
}

#[derive(Debug, clap::Args)]
struct ServiceArgs {
    /// The service's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Read and check the configuration file as the service does when it starts,
    /// say so and exit: no key, database or peer is opened.
    #[arg(long)]
    check_config: bool,
    /// Stop when standard input closes (used by `basalt dev`, so services never
    /// outlive their launcher).
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

/// `basalt sa --config FILE` runs the SA; `basalt sa migrate --config FILE` applies
/// pending schema migrations and exits.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SaArgs {
    #[command(subcommand)]
    command: Option<SaCommand>,
    /// The SA's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read and check the configuration file, say so and exit.
    #[arg(long)]
    check_config: bool,
    /// Stop when standard input closes.
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

#[derive(Debug, Subcommand)]
enum SaCommand {
    /// Apply the schema migrations the database lacks, then exit (for operators who
    /// set `database.migrate = false`).
    Migrate {
        /// The SA's TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// List the pending migrations without applying them.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest reads the process-wide rustls provider; every other TLS user here
    // names ring explicitly (see DEPENDENCIES.md, aws-lc is never linked).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("basalt: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Wfe(args) => services::run("wfe", args, services::wfe).await,
            Command::Ra(args) => services::run("ra", args, services::ra).await,
            Command::Va(args) => services::run("va", args, services::va).await,
            Command::Ca(args) => services::run("ca", args, services::ca).await,
            Command::Sa(SaArgs {
                command: Some(SaCommand::Migrate { config, dry_run }),
                ..
            }) => services::sa_migrate(config, dry_run).await,
            Command::Sa(SaArgs {
                command: None,
                config: Some(config),
                check_config,
                stop_on_stdin_eof,
            }) => {
                let args = ServiceArgs {
                    config,
                    check_config,
                    stop_on_stdin_eof,
                };
                services::run("sa", args, services::sa).await
            }
            Command::Sa(SaArgs { config: None, .. }) => Err(anyhow::anyhow!(
                "basalt sa needs --config FILE (or `basalt sa migrate --config FILE`)"
            )),
            Command::Ocsp(args) => services::run("ocsp", args, services::ocsp).await,
            Command::Nonce(args) => services::run("nonce", args, services::nonce).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Ceremony(args) => ceremony::run(args),
            Command::Health(args) => health::run(args).await,
            Command::Loadgen(args) => loadgen::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("basalt: {err:#}");
            ExitCode::FAILURE
        }
    }
}
