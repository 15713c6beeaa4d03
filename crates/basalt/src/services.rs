//! Each service's process: load its config, connect to its peers, serve.

use std::future::Future;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use basalt_config::GrpcClientConfig;
use basalt_config::TelemetryConfig;
use basalt_config::TlsConfig;
use basalt_core::Clock;
use basalt_core::RevocationLookup;
use basalt_core::RevocationSigner;
use basalt_core::SystemClock;
use basalt_grpc::CaClient;
use basalt_grpc::GrpcChannel;
use basalt_grpc::GrpcServer;
use basalt_grpc::RaClient;
use basalt_grpc::SaClient;
use basalt_grpc::VaClient;
use basalt_grpc::service_names;
use basalt_telemetry::DebugServer;
use basalt_telemetry::ReadinessCheck;
use serde::de::DeserializeOwned;

use crate::ServiceArgs;
use crate::shutdown;

type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs service `name` with the config at `args.config`.
pub(crate) async fn run<F, Fut>(name: &str, args: ServiceArgs, service: F) -> anyhow::Result<()>
where
    F: FnOnce(PathBuf, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if args.check_config {
        check_config(name, &args.config)?;
        println!("basalt {name}: {}: config OK", args.config.display());
        return Ok(());
    }
    // `[telemetry]` alone first, so that logging and tracing are up before the
    // service reads the rest; a file that cannot be read at all is reported by the
    // service's own reading of it, with the field at fault.
    let telemetry = basalt_config::load_telemetry(&args.config).unwrap_or_default();
    let telemetry = basalt_telemetry::init(name, &telemetry);
    let signal = shutdown::signal(args.stop_on_stdin_eof);
    let stop = Box::pin(async move {
        signal.await;
        // Not ready from now on, while the calls in flight drain.
        basalt_telemetry::start_draining();
    });
    let result = service(args.config, stop).await;
    if let Err(err) = &result {
        tracing::error!(error = format!("{err:#}"), "service failed");
    } else {
        tracing::info!("stopped");
    }
    telemetry.shutdown().await;
    result
}

/// The debug listener of `[telemetry] debug_listen` (metrics and health), if the
/// config asks for one; `/health/ready` asks `checks`. Serves until dropped.
async fn debug_server(
    telemetry: &TelemetryConfig,
    checks: Vec<ReadinessCheck>,
) -> anyhow::Result<Option<DebugServer>> {
    match telemetry.debug_listen {
        None => Ok(None),
        Some(listen) => Ok(Some(DebugServer::start(listen, checks).await?)),
    }
}

/// Ready when the peer at the end of `channel` says it serves `service`.
fn peer_ready(name: &str, channel: &GrpcChannel, service: &'static str) -> ReadinessCheck {
    let channel = channel.clone();
    ReadinessCheck::new(name, move || {
        let channel = channel.clone();
        async move {
            match channel.check_health(service).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!("{service} is not serving")),
                Err(err) => Err(err.detail),
            }
        }
    })
}

fn load<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    Ok(basalt_config::load(path)?)
}

/// Reads the config file of `service` at `path` and runs the checks the service
/// runs on it at start before it opens anything (`--check-config`); the error
/// names the file and the field.
pub(crate) fn check_config(service: &str, path: &Path) -> anyhow::Result<()> {
    let invalid =
        |message: String| anyhow::anyhow!("invalid config file {}: {message}", path.display());
    match service {
        "sa" => drop(load::<basalt_sa::SaConfig>(path)?),
        "ca" => load::<basalt_ca::CaConfig>(path)?
            .validate(clock().now())
            .map_err(invalid)?,
        "va" => load::<basalt_va::VaConfig>(path)?
            .validate()
            .map_err(invalid)?,
        "ra" => load::<basalt_ra::RaConfig>(path)?
            .validate()
            .map_err(invalid)?,
        "wfe" => drop(load::<basalt_wfe::WfeConfig>(path)?),
        "ocsp" => load::<basalt_ocsp::OcspConfig>(path)?
            .validate()
            .map_err(invalid)?,
        "nonce" => drop(load::<basalt_nonce::NonceConfig>(path)?),
        other => anyhow::bail!("no service called {other}"),
    }
    Ok(())
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn channel(peer: &GrpcClientConfig, tls: &TlsConfig) -> anyhow::Result<GrpcChannel> {
    GrpcChannel::new(peer, tls).with_context(|| format!("gRPC client for {}", peer.address))
}

pub(crate) async fn sa(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_sa::SaConfig = load(&path)?;
    let storage = basalt_sa::SqlStorage::from_config(&config.database, clock())
        .await
        .context("opening the database")?;
    let storage = Arc::new(storage);
    basalt_telemetry::metrics::on_scrape({
        let storage = storage.clone();
        move || {
            let (idle, in_use) = storage.pool_connections();
            basalt_telemetry::metrics::db_pool_connections(idle, in_use);
        }
    });
    let database = ReadinessCheck::new("database", {
        let storage = storage.clone();
        move || {
            let storage = storage.clone();
            async move { storage.ping().await.map_err(|err| err.detail) }
        }
    });
    let maintenance = tokio::spawn({
        let storage = storage.clone();
        async move { storage.maintain_forever(&config.maintenance).await }
    });
    let replica = match &config.read_replica {
        Some(replica) => {
            let replica = basalt_sa::SqlStorage::open(replica, clock())
                .await
                .context("opening the read replica")?;
            Some(basalt_sa::ReadSplit::new(replica, (*storage).clone()))
        }
        None => None,
    };
    let (reader, writer) = basalt_grpc::sa_servers(storage.clone());
    let server = GrpcServer::bind(&config.grpc, &config.tls).await?;
    tracing::info!(listen = %server.local_addr()?, "serving gRPC");
    let _debug = debug_server(&config.telemetry, vec![database]).await?;
    let server = server.add_service(writer);
    let served = match &replica {
        Some(split) => {
            tracing::info!("StorageReadOnly reads from the read replica first");
            let (reader, _) = basalt_grpc::sa_servers(Arc::new(split.clone()));
            server.add_service(reader).serve(stop).await
        }
        None => server.add_service(reader).serve(stop).await,
    };
    maintenance.abort();
    if let Some(split) = replica {
        split.close().await;
    }
    storage.close().await;
    Ok(served?)
}

/// `basalt sa migrate`: applies the migrations the SA's database lacks, or with
/// `dry_run` lists them, and exits.
pub(crate) async fn sa_migrate(path: PathBuf, dry_run: bool) -> anyhow::Result<()> {
    let config: basalt_sa::SaConfig = load(&path)?;
    let storage = basalt_sa::SqlStorage::open(&config.database, clock())
        .await
        .context("opening the database")?;
    let engine = storage.engine();
    let result = if dry_run {
        storage.pending_migrations().await
    } else {
        storage.migrate().await
    };
    storage.close().await;
    let versions = result.context("migrating the database")?;
    let verb = if dry_run { "pending" } else { "applied" };
    if versions.is_empty() {
        println!("basalt sa migrate: the {engine} schema is current");
    } else {
        let list = versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        println!("basalt sa migrate: {verb} {engine} migrations {list}");
    }
    Ok(())
}

pub(crate) async fn ra(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_ra::RaConfig = load(&path)?;
    config
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid config file {}: {message}", path.display()))?;
    let (sa, va, ca) = (
        channel(&config.sa, &config.tls)?,
        channel(&config.va, &config.tls)?,
        channel(&config.ca, &config.tls)?,
    );
    let ready = vec![
        peer_ready("sa", &sa, service_names::STORAGE),
        peer_ready("va", &va, service_names::VALIDATION),
        peer_ready("ca", &ca, service_names::CERTIFICATE_AUTHORITY),
    ];
    let (sa, va, ca) = (SaClient::new(sa), VaClient::new(va), CaClient::new(ca));
    // `validate` has checked the block already; a limiter that still cannot be made
    // is reported against the file all the same.
    let limiter = basalt_ratelimit::Limiter::new(&config.rate_limits).map_err(|err| {
        anyhow::anyhow!(
            "invalid config file {}: [rate_limits]: {err}",
            path.display()
        )
    })?;
    let ra = Arc::new(
        basalt_ra::Ra::new(
            config.settings(),
            Arc::new(sa),
            Arc::new(va),
            Arc::new(ca),
            clock(),
        )
        .with_limiter(limiter),
    );
    let server = GrpcServer::bind(&config.grpc, &config.tls).await?;
    tracing::info!(listen = %server.local_addr()?, "serving gRPC");
    let _debug = debug_server(&config.telemetry, ready).await?;
    server
        .add_service(basalt_grpc::ra_server(ra.clone()))
        .serve(stop)
        .await?;
    // Let validations already under way record their outcome.
    ra.wait_for_background_work().await;
    Ok(())
}

pub(crate) async fn va(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_va::VaConfig = load(&path)?;
    let local = Arc::new(basalt_va::Va::from_config(&config, clock())?);
    let server = GrpcServer::bind(&config.grpc, &config.tls).await?;
    tracing::info!(listen = %server.local_addr()?, "serving gRPC");
    let _debug = debug_server(&config.telemetry, Vec::new()).await?;
    if config.remote.is_empty() && config.remote_pool.is_empty() {
        server
            .add_service(basalt_grpc::va_server(local))
            .serve(stop)
            .await?;
        return Ok(());
    }
    // A primary: every remote perspective is a VA reached over mutual TLS, a
    // `[[remote]]` at its address, each member of a `[[remote_pool]]` at its IP
    // with a channel of its own that checks the pool's certificate name.
    let tls = config.tls.clone();
    let connect: basalt_va::ConnectRemote = Arc::new(move |peer: &GrpcClientConfig| {
        let channel = GrpcChannel::new(peer, &tls).map_err(|err| {
            basalt_core::Error::new(
                err.kind,
                format!("gRPC client for {}: {}", peer.address, err.detail),
            )
        })?;
        let va: Arc<dyn basalt_core::ValidationAuthority> = Arc::new(VaClient::new(channel));
        Ok(va)
    });
    let primary = basalt_va::Perspectives::from_config(
        &config,
        local,
        connect,
        basalt_va::system_resolver(),
        clock(),
    )
    .map_err(|err| anyhow::anyhow!("invalid config file {}: {}", path.display(), err.detail))?;
    tracing::info!(
        remotes = config.remote.len(),
        pools = config.remote_pool.len(),
        min_regions = config.remote_min_regions,
        "multi-perspective validation"
    );
    primary.refresh_pools().await;
    server
        .add_service(basalt_grpc::va_server(Arc::new(primary)))
        .serve(stop)
        .await?;
    Ok(())
}

/// The environment variable that arms the CA's crash test
/// ([`basalt_ca::Ca::with_crash_trigger`]).
const CA_CRASH_TRIGGER: &str = "BASALT_CA_CRASH_TRIGGER";

pub(crate) async fn ca(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_ca::CaConfig = load(&path)?;
    let sa = channel(&config.sa, &config.tls)?;
    let ready = vec![peer_ready("sa", &sa, service_names::STORAGE)];
    let sa = SaClient::new(sa);
    let mut ca = basalt_ca::Ca::from_config(&config, Arc::new(sa), clock())
        .context("loading the issuers")?;
    // Resilience tests only: see `Ca::with_crash_trigger`.
    if let Some(trigger) = std::env::var_os(CA_CRASH_TRIGGER) {
        tracing::warn!(
            trigger = %Path::new(&trigger).display(),
            "{CA_CRASH_TRIGGER} is set: the CA aborts after a precertificate while that file exists"
        );
        ca = ca.with_crash_trigger(trigger.into());
    }
    for issuer in ca.issuers() {
        tracing::info!(issuer = ?issuer, "issuer loaded");
    }
    let (issuer, signer) = basalt_grpc::ca_servers(Arc::new(ca));
    let server = GrpcServer::bind(&config.grpc, &config.tls).await?;
    tracing::info!(listen = %server.local_addr()?, "serving gRPC");
    let _debug = debug_server(&config.telemetry, ready).await?;
    server
        .add_service(issuer)
        .add_service(signer)
        .serve(stop)
        .await?;
    Ok(())
}

pub(crate) async fn wfe(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_wfe::WfeConfig = load(&path)?;
    let (ra, sa) = (
        channel(&config.ra, &config.tls)?,
        channel(&config.sa, &config.tls)?,
    );
    let mut ready = vec![
        peer_ready("ra", &ra, service_names::REGISTRATION_AUTHORITY),
        peer_ready("sa", &sa, service_names::STORAGE_READ_ONLY),
    ];
    let (ra, sa) = (RaClient::new(ra), SaClient::new(sa));
    let settings = basalt_wfe::WfeSettings::from_config(&config)?;
    let wfe = match &config.nonce {
        // Several WFEs share one nonce store through `basalt nonce`.
        Some(nonce) => {
            let nonce = channel(nonce, &config.tls)?;
            ready.push(peer_ready("nonce", &nonce, service_names::NONCE));
            let nonces = basalt_grpc::NonceClient::new(nonce);
            basalt_wfe::Wfe::with_nonces(settings, Arc::new(ra), Arc::new(sa), Arc::new(nonces))
                .with_clock(clock())
        }
        None => basalt_wfe::Wfe::new(settings, Arc::new(ra), Arc::new(sa), clock()),
    };
    let wfe = Arc::new(wfe);
    let _debug = debug_server(&config.telemetry, ready).await?;
    tracing::info!(listen = %config.listen, base_url = %config.base_url, "serving ACME over HTTPS");
    basalt_wfe::serve_https(
        config.listen,
        &config.https.cert,
        &config.https.key,
        basalt_telemetry::instrument_http(basalt_wfe::router(wfe)),
        config.drain_timeout.0,
        stop,
    )
    .await?;
    Ok(())
}

pub(crate) async fn ocsp(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_ocsp::OcspConfig = load(&path)?;
    config
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid config file {}: {message}", path.display()))?;
    let issuers = config.load_issuers()?;
    let (sa, ca) = (
        channel(&config.sa, &config.tls)?,
        channel(&config.ca, &config.tls)?,
    );
    let ready = vec![
        peer_ready("sa", &sa, service_names::STORAGE_READ_ONLY),
        peer_ready("ca", &ca, service_names::REVOCATION_SIGNER),
    ];
    let sa: Arc<dyn RevocationLookup> = Arc::new(SaClient::new(sa));
    let ca: Arc<dyn RevocationSigner> = Arc::new(CaClient::new(ca));
    let crl_issuers = config.crl_issuers(&issuers);
    let responder = Arc::new(basalt_ocsp::Responder::new(
        issuers,
        sa.clone(),
        ca.clone(),
        clock(),
        config.settings(),
    )?);
    let feed = basalt_ocsp::StatusFeed::new(sa.clone(), clock(), config.feed_settings());
    let mut tasks = vec![responder.follow(&feed)];
    let crls = match config.crl_settings() {
        Some(settings) => {
            let store = basalt_ocsp::CrlStore::new(crl_issuers, settings.shards)
                .context("the CRL issuers")?;
            let updater = basalt_ocsp::CrlUpdater::new(store.clone(), sa, ca, clock(), settings)
                .context("the CRL updater")?;
            // Subscribed before the feed polls, so that no revocation is missed.
            tasks.push(updater.spawn(feed.subscribe()));
            Some(store)
        }
        None => None,
    };
    tasks.push(feed.spawn());
    let _debug = debug_server(&config.telemetry, ready).await?;
    tracing::info!(
        listen = %config.listen,
        issuers = config.issuers.len(),
        crls = crls.is_some(),
        "serving OCSP over HTTP"
    );
    let router = basalt_telemetry::instrument_http(basalt_ocsp::router(responder, crls));
    let served = basalt_ocsp::serve(config.listen, router, config.drain_timeout.0, stop).await;
    for task in tasks {
        task.abort();
    }
    served?;
    Ok(())
}

pub(crate) async fn nonce(path: PathBuf, stop: Shutdown) -> anyhow::Result<()> {
    let config: basalt_nonce::NonceConfig = load(&path)?;
    let store = basalt_nonce::NonceService::new(
        clock(),
        config.capacity,
        basalt_nonce::DEFAULT_NONCE_LIFETIME,
    );
    let server = GrpcServer::bind(&config.grpc, &config.tls).await?;
    tracing::info!(listen = %server.local_addr()?, "serving gRPC");
    let _debug = debug_server(&config.telemetry, Vec::new()).await?;
    server
        .add_service(basalt_grpc::nonce_server(Arc::new(store)))
        .serve(stop)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/config")
            .join(file)
    }

    #[test]
    fn the_deploy_configs_pass_their_services_checks() {
        for service in ["sa", "ca", "va", "ra", "wfe", "ocsp", "nonce"] {
            check_config(service, &deploy(&format!("{service}.toml")))
                .unwrap_or_else(|err| panic!("{service}: {err:#}"));
        }
        // The compose VAs, and their lab variants (docker-compose.yml's
        // BASALT_VA_CONFIG_SUFFIX=-lab): each passes the VA's own checks too.
        for file in [
            "va.toml",
            "va-remote.toml",
            "va-lab.toml",
            "va-remote-lab.toml",
        ] {
            check_config("va", &deploy(file)).unwrap_or_else(|err| panic!("{file}: {err:#}"));
            let config: basalt_va::VaConfig = load(&deploy(file)).unwrap();
            config
                .validate()
                .unwrap_or_else(|err| panic!("{file}: {err}"));
        }
    }

    #[test]
    fn a_bad_config_is_named_with_its_field() {
        let dir = std::env::temp_dir().join(format!("basalt-check-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Another service's file: an unknown field, named with the file.
        let err = check_config("nonce", &deploy("ca.toml")).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("ca.toml") && text.contains("unknown field"),
            "{text}"
        );
        // A field serde accepts and the service's own checks refuse.
        let ocsp = std::fs::read_to_string(deploy("ocsp.toml")).unwrap();
        let bad = dir.join("ocsp.toml");
        std::fs::write(
            &bad,
            ocsp.replace("crl_path = \"/crl/ecdsa/\"", "crl_path = \"crl\""),
        )
        .unwrap();
        let text = format!("{:#}", check_config("ocsp", &bad).unwrap_err());
        assert!(
            text.contains(&bad.display().to_string()) && text.contains("crl_path"),
            "{text}"
        );
        // A file that is not there.
        assert!(check_config("sa", &dir.join("missing.toml")).is_err());
        assert!(check_config("dns", &deploy("sa.toml")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
