//! Pools of remote VAs: one DNS name that resolves to any number of
//! interchangeable remote VAs (`docker compose up --scale va-remote=N`, a
//! Kubernetes headless Service), each address one perspective.
//!
//! A pool is resolved again when a validation finds its last resolution older than
//! `refresh`, and sooner (at most once a second) after a member failed to answer or
//! the pool had no member, so members that come and go are picked up without a
//! restart. A member that stays keeps its channel; each new address gets its own
//! mutual-TLS channel, to the IP, checking the pool's certificate name.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::ValidationAuthority;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tracing::info;
use tracing::warn;

use crate::perspectives::Remote;

/// The soonest a pool is resolved again after a failed member or an empty
/// resolution: often enough to pick up a replacement quickly, seldom enough not to
/// flood the resolver while a pool is down.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The time one resolution of a pool's name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `[[remote_pool]]` in the primary VA's config: one DNS name whose every address
/// is a remote VA, all in one region and with one certificate name.
///
/// ```toml
/// [[remote_pool]]
/// name = "va-remote"            # perspectives are named va-remote@IP
/// region = "eu-west"
/// address = "va-remote:9092"
/// server_name = "va-remote"
/// refresh = "30s"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemotePoolConfig {
    /// The prefix of its perspectives' names, which are `NAME@IP`; the host of
    /// `address` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Where every member is (a cloud region, a site).
    pub region: String,
    /// `host:port`: every address the host resolves to is a remote VA listening
    /// on the port.
    pub address: String,
    /// The name every member's certificate carries.
    pub server_name: String,
    /// How old a resolution may be before a validation resolves the name again.
    #[serde(default = "RemotePoolConfig::default_refresh")]
    pub refresh: ConfigDuration,
}

impl RemotePoolConfig {
    fn default_refresh() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(30))
    }

    /// The prefix of the members' names: `name`, or the host of `address`.
    pub fn prefix(&self) -> &str {
        match &self.name {
            Some(name) => name,
            None => self
                .address
                .rsplit_once(':')
                .map_or(self.address.as_str(), |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']'),
        }
    }

    /// The checks made at start; the message names the field at fault, as
    /// `remote_pool[INDEX].FIELD`.
    pub(crate) fn validate(&self, index: usize) -> Result<(), String> {
        let field = |name: &str| format!("remote_pool[{index}].{name}");
        let host_port = self
            .address
            .rsplit_once(':')
            .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if host_port.is_none() {
            return Err(format!(
                "{} {:?}: expected host:port, e.g. \"va-remote:9092\"",
                field("address"),
                self.address
            ));
        }
        if self.region.trim().is_empty() {
            return Err(format!("{}: must name the pool's region", field("region")));
        }
        if self
            .name
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err(format!(
                "{}: must not be empty (omit it to use the host of address)",
                field("name")
            ));
        }
        if rustls::pki_types::ServerName::try_from(self.server_name.as_str()).is_err() {
            return Err(format!(
                "{} {:?}: not a DNS name or IP address",
                field("server_name"),
                self.server_name
            ));
        }
        if self.refresh.0 < Duration::from_secs(1) {
            return Err(format!("{}: must be at least 1s", field("refresh")));
        }
        Ok(())
    }
}

/// Resolves a pool's `host:port` to the addresses of its members.
pub type ResolvePool = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Vec<SocketAddr>, Error>> + Send>>
        + Send
        + Sync,
>;

/// Opens a client for one remote VA: `peer.address` is where it listens (an
/// `IP:port` for a pool's member) and `peer.server_name` the name its certificate
/// must carry.
pub type ConnectRemote =
    Arc<dyn Fn(&GrpcClientConfig) -> Result<Arc<dyn ValidationAuthority>, Error> + Send + Sync>;

/// The system's resolver (`/etc/resolv.conf`, `/etc/hosts`): the one that knows
/// the names of a container network or a cluster. The VA's `[dns]` resolver is
/// for the names it validates, and may be a public or mock resolver that does
/// not.
pub fn system_resolver() -> ResolvePool {
    Arc::new(|address: String| {
        Box::pin(async move {
            let found = tokio::net::lookup_host(address.as_str())
                .await
                .map_err(|err| Error::unavailable(format!("resolving {address}: {err}")))?;
            Ok(found.collect())
        })
    })
}

/// A pool of remote VAs behind one name; see the [module docs](self).
pub struct RemotePool {
    prefix: String,
    region: String,
    address: String,
    server_name: String,
    refresh: Duration,
    /// The deadline of each call to a member.
    timeout: ConfigDuration,
    resolve: ResolvePool,
    connect: ConnectRemote,
    clock: Arc<dyn Clock>,
    /// Set when a member failed to answer: resolve again soon.
    failed: AtomicBool,
    state: Mutex<PoolState>,
}

/// What the last resolution found.
#[derive(Default)]
struct PoolState {
    members: BTreeMap<SocketAddr, Arc<Remote>>,
    /// When the name was last resolved (or a resolution failed).
    resolved_at: Option<OffsetDateTime>,
}

impl RemotePool {
    /// The pool `config` describes, its members called with deadline `timeout`,
    /// found with `resolve` and reached with `connect`; `clock` tells the age of a
    /// resolution. Nothing is resolved yet.
    pub fn new(
        config: &RemotePoolConfig,
        timeout: ConfigDuration,
        resolve: ResolvePool,
        connect: ConnectRemote,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            prefix: config.prefix().to_owned(),
            region: config.region.clone(),
            address: config.address.clone(),
            server_name: config.server_name.clone(),
            refresh: config.refresh.0,
            timeout,
            resolve,
            connect,
            clock,
            failed: AtomicBool::new(false),
            state: Mutex::new(PoolState::default()),
        }
    }

    /// The region of every member.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The members now: resolved again first if the last resolution is older than
    /// `refresh`, or, after a failure or an empty answer, a second old.
    pub async fn members(&self) -> Vec<Arc<Remote>> {
        let mut state = self.state.lock().await;
        let due = match state.resolved_at {
            None => true,
            Some(at) => {
                let age = self.clock.now() - at;
                let retry = self.failed.load(Ordering::Relaxed) || state.members.is_empty();
                // A clock set back makes the age negative: resolve then too.
                age.is_negative() || age >= self.refresh || (retry && age >= RETRY_AFTER_FAILURE)
            }
        };
        if due {
            self.resolve_into(&mut state).await;
        }
        state.members.values().cloned().collect()
    }

    /// Resolves the name now, whatever the age of the last resolution, and says
    /// how many members the pool has.
    pub async fn refresh(&self) -> usize {
        let mut state = self.state.lock().await;
        self.resolve_into(&mut state).await;
        state.members.len()
    }

    /// Notes that a member did not answer, so the next validation resolves the
    /// name again (the member may be gone, and another in its place).
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    async fn resolve_into(&self, state: &mut PoolState) {
        state.resolved_at = Some(self.clock.now());
        self.failed.store(false, Ordering::Relaxed);
        let resolved =
            match tokio::time::timeout(RESOLVE_TIMEOUT, (self.resolve)(self.address.clone())).await
            {
                Ok(Ok(addresses)) => addresses,
                Ok(Err(err)) => {
                    // The members found before may still be there; a failed call
                    // to one of them brings the next attempt forward.
                    warn!(pool = %self.prefix, address = %self.address, error = %err,
                        members = state.members.len(), "cannot resolve a remote VA pool");
                    return;
                }
                Err(_) => {
                    warn!(pool = %self.prefix, address = %self.address,
                        members = state.members.len(), "resolving a remote VA pool timed out");
                    return;
                }
            };
        let mut members = BTreeMap::new();
        let mut added = Vec::new();
        for address in resolved {
            if members.contains_key(&address) {
                continue;
            }
            if let Some(member) = state.members.get(&address) {
                members.insert(address, member.clone());
                continue;
            }
            let peer = GrpcClientConfig {
                address: address.to_string(),
                server_name: self.server_name.clone(),
                timeout: self.timeout,
            };
            match (self.connect)(&peer) {
                Ok(va) => {
                    let name = format!("{}@{}", self.prefix, address.ip());
                    added.push(name.clone());
                    members.insert(
                        address,
                        Arc::new(Remote {
                            name,
                            region: self.region.clone(),
                            va,
                        }),
                    );
                }
                Err(err) => {
                    warn!(pool = %self.prefix, member = %address, error = %err,
                        "cannot open a channel to a remote VA");
                    self.failed.store(true, Ordering::Relaxed);
                }
            }
        }
        let removed: Vec<String> = state
            .members
            .iter()
            .filter(|(address, _)| !members.contains_key(*address))
            .map(|(_, member)| member.name.clone())
            .collect();
        if members.is_empty() {
            warn!(pool = %self.prefix, address = %self.address, "a remote VA pool has no member");
        }
        if !added.is_empty() || !removed.is_empty() {
            info!(pool = %self.prefix, region = %self.region, members = members.len(),
                added = ?added, removed = ?removed, "remote VA pool changed");
        }
        state.members = members;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;
    use basalt_core::CaaCheck;
    use basalt_core::FixedClock;
    use basalt_core::ValidateRequest;
    use basalt_core::ValidationResult;

    use super::*;

    /// A remote VA that is never asked: these tests look at membership only.
    struct Idle;

    #[async_trait]
    impl ValidationAuthority for Idle {
        async fn validate(&self, _request: ValidateRequest) -> Result<ValidationResult, Error> {
            Ok(ValidationResult {
                records: Vec::new(),
                problem: None,
            })
        }

        async fn check_caa(&self, _request: CaaCheck) -> Result<Option<Error>, Error> {
            Ok(None)
        }
    }

    /// A name whose addresses the test sets, counting the lookups, and the peers
    /// a pool opened channels to.
    #[derive(Clone)]
    struct Dns {
        answer: Arc<StdMutex<Result<Vec<SocketAddr>, String>>>,
        lookups: Arc<StdMutex<Vec<String>>>,
        connected: Arc<StdMutex<Vec<GrpcClientConfig>>>,
        clock: FixedClock,
    }

    impl Dns {
        fn new() -> Self {
            Self {
                answer: Arc::new(StdMutex::new(Ok(Vec::new()))),
                lookups: Arc::default(),
                connected: Arc::default(),
                clock: FixedClock::new(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1 << 30)),
            }
        }

        /// Moves the pool's clock on.
        fn advance(&self, by: Duration) {
            self.clock.advance(time::Duration::try_from(by).unwrap());
        }

        fn set(&self, last_octets: &[u8]) {
            *self.answer.lock().unwrap() = Ok(last_octets
                .iter()
                .map(|octet| SocketAddr::from(([172, 18, 0, *octet], 9092)))
                .collect());
        }

        fn fail(&self) {
            *self.answer.lock().unwrap() = Err("no such host".into());
        }

        fn lookups(&self) -> usize {
            self.lookups.lock().unwrap().len()
        }

        fn pool(&self, config: &RemotePoolConfig) -> RemotePool {
            let dns = self.clone();
            let resolve: ResolvePool = Arc::new(move |address| {
                dns.lookups.lock().unwrap().push(address);
                let answer = dns.answer.lock().unwrap().clone();
                Box::pin(async move { answer.map_err(Error::unavailable) })
            });
            let dns = self.clone();
            let connect: ConnectRemote = Arc::new(move |peer| {
                dns.connected.lock().unwrap().push(peer.clone());
                Ok(Arc::new(Idle))
            });
            RemotePool::new(
                config,
                ConfigDuration(Duration::from_secs(7)),
                resolve,
                connect,
                Arc::new(self.clock.clone()),
            )
        }
    }

    fn config() -> RemotePoolConfig {
        basalt_config::parse(
            "region = \"lab\"\naddress = \"va-remote:9092\"\nserver_name = \"va-remote\"\n",
        )
        .unwrap()
    }

    fn names(members: &[Arc<Remote>]) -> Vec<&str> {
        members.iter().map(|member| member.name.as_str()).collect()
    }

    #[tokio::test]
    async fn every_address_is_a_perspective_with_its_own_channel() {
        let dns = Dns::new();
        dns.set(&[7, 5, 6, 5]);
        let pool = dns.pool(&config());
        let members = pool.members().await;
        assert_eq!(
            names(&members),
            [
                "va-remote@172.18.0.5",
                "va-remote@172.18.0.6",
                "va-remote@172.18.0.7"
            ]
        );
        assert!(members.iter().all(|member| member.region == "lab"));
        assert_eq!(*dns.lookups.lock().unwrap(), ["va-remote:9092"]);
        // Each channel goes to the IP and checks the pool's certificate name.
        let connected = dns.connected.lock().unwrap().clone();
        let mut addresses: Vec<&str> = connected.iter().map(|peer| peer.address.as_str()).collect();
        addresses.sort_unstable();
        assert_eq!(
            addresses,
            ["172.18.0.5:9092", "172.18.0.6:9092", "172.18.0.7:9092"]
        );
        assert!(connected.iter().all(|peer| peer.server_name == "va-remote"
            && peer.timeout == ConfigDuration(Duration::from_secs(7))));
    }

    #[tokio::test]
    async fn the_name_is_resolved_again_after_refresh() {
        let dns = Dns::new();
        dns.set(&[2, 3, 4]);
        let pool = dns.pool(&config());
        assert_eq!(pool.members().await.len(), 3);
        // Scaled up: seen once the resolution is `refresh` (30s) old.
        dns.set(&[2, 3, 4, 5, 6]);
        dns.advance(Duration::from_secs(29));
        assert_eq!(pool.members().await.len(), 3);
        assert_eq!(dns.lookups(), 1);
        dns.advance(Duration::from_secs(1));
        assert_eq!(pool.members().await.len(), 5);
        assert_eq!(dns.lookups(), 2);
        // Members that stay keep their channel: only the new ones are opened.
        assert_eq!(dns.connected.lock().unwrap().len(), 5);
        // Scaled down.
        dns.set(&[5, 6]);
        dns.advance(Duration::from_secs(30));
        assert_eq!(
            names(&pool.members().await),
            ["va-remote@172.18.0.5", "va-remote@172.18.0.6"]
        );
        assert_eq!(dns.connected.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_failed_member_brings_the_next_resolution_forward() {
        let dns = Dns::new();
        dns.set(&[2, 3, 4]);
        let pool = dns.pool(&config());
        pool.members().await;
        dns.set(&[2, 3, 9]);
        pool.mark_failed();
        // Not more than once a second, however many validations fail.
        assert_eq!(pool.members().await.len(), 3);
        assert_eq!(dns.lookups(), 1);
        dns.advance(RETRY_AFTER_FAILURE);
        assert_eq!(
            names(&pool.members().await),
            [
                "va-remote@172.18.0.2",
                "va-remote@172.18.0.3",
                "va-remote@172.18.0.9"
            ]
        );
        assert_eq!(dns.lookups(), 2);
        // Answered: back to the refresh period.
        dns.advance(RETRY_AFTER_FAILURE);
        pool.members().await;
        assert_eq!(dns.lookups(), 2);
    }

    #[tokio::test]
    async fn a_failed_resolution_keeps_the_members_and_an_empty_pool_retries() {
        let dns = Dns::new();
        dns.fail();
        let pool = dns.pool(&config());
        assert!(pool.members().await.is_empty());
        // An empty pool tries again a second later, not `refresh` later.
        dns.set(&[2, 3]);
        dns.advance(RETRY_AFTER_FAILURE);
        assert_eq!(pool.members().await.len(), 2);
        // A resolver that fails later leaves the members found before.
        dns.fail();
        dns.advance(Duration::from_secs(30));
        assert_eq!(pool.members().await.len(), 2);
        assert_eq!(dns.lookups(), 3);
        // `refresh` resolves at once.
        dns.set(&[4]);
        assert_eq!(pool.refresh().await, 1);
    }

    #[test]
    fn the_name_prefix_defaults_to_the_host() {
        assert_eq!(config().prefix(), "va-remote");
        let named = RemotePoolConfig {
            name: Some("east".into()),
            ..config()
        };
        assert_eq!(named.prefix(), "east");
        let v6 = RemotePoolConfig {
            address: "[fd00::1]:9092".into(),
            ..config()
        };
        assert_eq!(v6.prefix(), "fd00::1");
        assert_eq!(config().refresh.0, Duration::from_secs(30));
    }

    #[test]
    fn bad_pools_are_refused_naming_the_field() {
        /// Spoils one field of a good pool.
        type Spoil = fn(&mut RemotePoolConfig);
        let cases: [(Spoil, &str); 7] = [
            (|c| c.address = "va-remote".into(), "remote_pool[3].address"),
            (|c| c.address = ":9092".into(), "remote_pool[3].address"),
            (
                |c| c.address = "va-remote:0".into(),
                "remote_pool[3].address",
            ),
            (|c| c.region = " ".into(), "remote_pool[3].region"),
            (|c| c.name = Some(String::new()), "remote_pool[3].name"),
            (
                |c| c.server_name = "not a name".into(),
                "remote_pool[3].server_name",
            ),
            (
                |c| c.refresh = ConfigDuration(Duration::from_millis(500)),
                "remote_pool[3].refresh",
            ),
        ];
        for (spoil, field) in cases {
            let mut pool = config();
            spoil(&mut pool);
            let err = pool.validate(3).unwrap_err();
            assert!(err.starts_with(field), "{field}: {err}");
        }
        config().validate(0).unwrap();
        let text = "region = \"lab\"\naddress = \"va-remote:9092\"\nserver_name = \"x\"\nrefesh = \"5s\"\n";
        let err = basalt_config::parse::<RemotePoolConfig>(text).unwrap_err();
        assert!(err.contains("unknown field `refesh`"), "{err}");
    }
}
