//! docker-compose.yml as `docker-compose config` (Debian's `docker-compose`) reads
//! it: accepted, every Basalt service started with a config of deploy/config and
//! every config there used (the lab ones by the lab reading), networks that keep
//! to the trust boundaries, one scalable remote VA service that the primary VA's
//! `[[remote_pool]]` finds, a mock DNS for labs behind a profile, a health check
//! on every service, and a setup that makes every certificate the configs name.
// A test helper that cannot read what it checks has nothing better to do than fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The variable that switches the VAs to their lab configs (`va-lab.toml`, …).
const LAB_SUFFIX_VAR: &str = "BASALT_VA_CONFIG_SUFFIX";

/// The file as `docker-compose config` resolves it; fails when docker-compose is
/// missing or refuses the file.
fn compose_config() -> Value {
    compose_config_with(None)
}

/// The file as `docker-compose config` resolves it for a lab: the VAs on their
/// lab configs (docker-compose.yml's header says how).
fn lab_compose_config() -> Value {
    compose_config_with(Some("-lab"))
}

fn compose_config_with(suffix: Option<&str>) -> Value {
    let mut command = Command::new("docker-compose");
    command
        .arg("--project-directory")
        .arg(repo())
        .arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .arg("config");
    match suffix {
        Some(suffix) => command.env(LAB_SUFFIX_VAR, suffix),
        None => command.env_remove(LAB_SUFFIX_VAR),
    };
    let output = command
        .output()
        .expect("docker-compose is needed: apt-get install -y docker-compose");
    assert!(
        output.status.success(),
        "docker-compose config refused docker-compose.yml:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_yaml::from_slice(&output.stdout).expect("docker-compose config printed YAML")
}

/// A service's networks, by name.
fn networks_of(service: &Value) -> BTreeSet<String> {
    match &service["networks"] {
        Value::Mapping(map) => map
            .keys()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|name| name.as_str().unwrap().to_owned())
            .collect(),
        _ => BTreeSet::new(),
    }
}

struct Topology {
    /// Service name to its networks.
    services: BTreeMap<String, BTreeSet<String>>,
    /// The networks that are not `internal`: reachable from outside.
    public: BTreeSet<String>,
}

impl Topology {
    fn read(config: &Value) -> Self {
        let services = config["services"]
            .as_mapping()
            .expect("services")
            .iter()
            .map(|(name, service)| (name.as_str().unwrap().to_owned(), networks_of(service)))
            .collect();
        let public = config["networks"]
            .as_mapping()
            .expect("networks")
            .iter()
            .filter(|(_, network)| network["internal"].as_bool() != Some(true))
            .map(|(name, _)| name.as_str().unwrap().to_owned())
            .collect();
        Self { services, public }
    }

    /// The other services that share a network with `name`.
    fn neighbours(&self, name: &str) -> BTreeSet<&str> {
        let own = &self.services[name];
        self.services
            .iter()
            .filter(|(other, networks)| *other != name && !networks.is_disjoint(own))
            .map(|(other, _)| other.as_str())
            .collect()
    }
}

/// The deploy/config file a service is started with (`--config /etc/basalt/X`,
/// in its entrypoint or its command).
fn config_file(service: &Value) -> Option<String> {
    let command: Vec<&str> = ["entrypoint", "command"]
        .iter()
        .filter_map(|key| service[*key].as_sequence())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let at = command.iter().position(|arg| *arg == "--config")?;
    command
        .get(at + 1)?
        .strip_prefix("/etc/basalt/")
        .map(str::to_owned)
}

/// The services run from the Basalt image, but for the one-shot `setup`.
fn basalt_services(config: &Value) -> Vec<(&str, &Value)> {
    config["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, service)| (name.as_str().unwrap(), service))
        .filter(|(name, service)| {
            service["image"].as_str() == Some("basalt:latest") && *name != "setup"
        })
        .collect()
}

fn deploy_config(file: &str) -> toml::Value {
    let path = repo().join("deploy/config").join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn every_basalt_service_has_its_config_and_every_config_a_service() {
    let mut used = BTreeSet::new();
    for config in [compose_config(), lab_compose_config()] {
        for (name, service) in basalt_services(&config) {
            let file = config_file(service)
                .unwrap_or_else(|| panic!("{name} does not run with --config /etc/basalt/…"));
            assert!(
                repo().join("deploy/config").join(&file).is_file(),
                "{name} runs with {file}, which deploy/config lacks"
            );
            used.insert(file);
        }
    }
    // admin.toml is the `admin` service's: `docker compose run --rm admin …`.
    let configs: BTreeSet<String> = std::fs::read_dir(repo().join("deploy/config"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(used, configs, "services and deploy/config differ");
}

#[test]
fn networks_keep_to_the_trust_boundaries() {
    let topology = Topology::read(&compose_config());

    // Only the front ends and the validators' egress are on a public network.
    let on_public: BTreeSet<&str> = topology
        .services
        .iter()
        .filter(|(_, networks)| !networks.is_disjoint(&topology.public))
        .map(|(name, _)| name.as_str())
        .collect();
    for name in &on_public {
        assert!(
            matches!(*name, "wfe" | "ocsp" | "va" | "va-remote" | "mock-dns"),
            "{name} is on a public network"
        );
    }
    assert!(on_public.contains("wfe") && on_public.contains("ocsp"));

    // The CA: reachable from its allowed clients (deploy/config/ca.toml) and the
    // SA it stores through, no one else, and never public.
    let ca: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("deploy/config/ca.toml")).unwrap())
            .unwrap();
    let mut allowed: BTreeSet<&str> = ca["grpc"]["allowed_clients"]
        .as_table()
        .unwrap()
        .values()
        .flat_map(|clients| clients.as_array().unwrap())
        .map(|client| client.as_str().unwrap())
        .collect();
    allowed.insert("sa");
    assert_eq!(topology.neighbours("ca"), allowed);

    // The database: the SA alone.
    assert_eq!(topology.neighbours("postgres"), BTreeSet::from(["sa"]));
    // The rate-limit store: the RA alone.
    assert_eq!(topology.neighbours("redis"), BTreeSet::from(["ra"]));
}

/// The `host` and `port` of `host:port`.
fn host_port(address: &str) -> (&str, &str) {
    address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address:?} is not host:port"))
}

/// The name of the internal certificate a config's `[tls] cert` names.
fn certificate_name(config: &toml::Value) -> &str {
    config["tls"]["cert"]
        .as_str()
        .and_then(|path| path.strip_prefix("/var/lib/basalt/pki/"))
        .and_then(|file| file.strip_suffix(".pem"))
        .expect("[tls] cert is /var/lib/basalt/pki/NAME.pem")
}

#[test]
fn the_remote_vas_are_one_scalable_service_the_primary_finds_by_name() {
    let config = compose_config();
    let services = config["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(|name| name.as_str().unwrap()).collect();
    let remote = &config["services"]["va-remote"];
    assert!(remote.is_mapping(), "no va-remote service in {names:?}");
    assert!(
        !names.iter().any(|name| name.starts_with("va-remote-")),
        "fixed remote VA services are back: {names:?}"
    );
    // Nothing that two replicas could not share.
    assert!(remote["container_name"].is_null(), "{remote:?}");
    assert!(
        remote["ports"].is_null(),
        "published ports clash on --scale"
    );
    assert!(remote["hostname"].is_null(), "{remote:?}");
    // Three unless told, one way or the other.
    let replicas = remote["deploy"]["replicas"]
        .as_u64()
        .or_else(|| remote["scale"].as_u64());
    assert_eq!(replicas, Some(3), "{remote:?}");
    assert_eq!(config_file(remote).as_deref(), Some("va-remote.toml"));
    // The same networks as the primary: it reaches them, they reach the Internet.
    assert_eq!(
        networks_of(remote),
        networks_of(&config["services"]["va"]),
        "va-remote and va"
    );

    // The primary asks every address of that name, and nothing else.
    let va = deploy_config("va.toml");
    let remote_config = deploy_config("va-remote.toml");
    assert!(va.get("remote").is_none(), "va.toml has fixed [[remote]]s");
    let pools = va["remote_pool"].as_array().expect("[[remote_pool]]");
    assert_eq!(pools.len(), 1, "{pools:?}");
    let pool = &pools[0];
    let (host, port) = host_port(pool["address"].as_str().unwrap());
    assert_eq!(host, "va-remote", "the pool's name is the service's");
    let listen = remote_config["grpc"]["listen"].as_str().unwrap();
    assert_eq!(host_port(listen).1, port, "va-remote listens on {listen}");
    // One certificate for all, the one the primary checks; the replicas answer
    // the primary's name alone.
    assert_eq!(
        pool["server_name"].as_str(),
        Some(certificate_name(&remote_config))
    );
    assert_eq!(
        remote_config["grpc"]["allowed_clients"]["basalt.va.Validation"]
            .as_array()
            .unwrap(),
        &[toml::Value::from(certificate_name(&va))]
    );
    assert!(
        remote_config.get("remote_pool").is_none() && remote_config.get("remote").is_none(),
        "a remote VA asks no remotes of its own"
    );
    // One host is one region, which the primary must be told it may accept.
    assert_eq!(va["remote_min_regions"].as_integer(), Some(1));
}

#[test]
fn the_lab_mock_dns_is_behind_a_profile_and_the_lab_vas_use_it() {
    let config = lab_compose_config();
    let services = config["services"].as_mapping().unwrap();
    let dns = &config["services"]["mock-dns"];
    assert!(dns.is_mapping(), "no mock-dns service");
    assert_eq!(dns["profiles"], Value::from(vec!["lab"]), "{dns:?}");
    // Everything else but the operator's `admin` (a `docker compose run`) starts
    // with a plain `docker compose up`.
    for (name, service) in services {
        if !matches!(name.as_str(), Some("mock-dns" | "admin")) {
            assert!(service["profiles"].is_null(), "{name:?} has a profile");
        }
    }
    // The mock answers DNS on the port `-dns01` names, at a fixed address on a
    // network both kinds of VA share.
    let command: Vec<&str> = dns["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    let dns01 = command
        .iter()
        .position(|arg| *arg == "-dns01")
        .map(|at| command[at + 1])
        .expect("-dns01");
    let dns_port = host_port(dns01).1;
    let (network, ip) = dns["networks"]
        .as_mapping()
        .unwrap()
        .iter()
        .find_map(|(network, settings)| {
            Some((network.as_str()?, settings["ipv4_address"].as_str()?))
        })
        .expect("mock-dns has a fixed ipv4_address");
    for vas in ["va", "va-remote"] {
        assert!(
            networks_of(&config["services"][vas]).contains(network),
            "{vas} is not on {network}"
        );
    }

    // Each lab config is its production config but for the resolver and private
    // addresses, and each lab VA runs one.
    for (service, base) in [("va", "va.toml"), ("va-remote", "va-remote.toml")] {
        let lab_file = config_file(&config["services"][service]).unwrap();
        assert_eq!(lab_file, base.replace(".toml", "-lab.toml"), "{service}");
        let mut lab = deploy_config(&lab_file);
        assert_eq!(
            lab["dns"]["resolver"].as_str(),
            Some(format!("{ip}:{dns_port}").as_str()),
            "{lab_file}"
        );
        assert_eq!(lab["allow_private_addresses"].as_bool(), Some(true));
        let mut production = deploy_config(base);
        for config in [&mut lab, &mut production] {
            let table = config.as_table_mut().unwrap();
            table.remove("allow_private_addresses");
            table["dns"].as_table_mut().unwrap().remove("resolver");
        }
        assert_eq!(lab, production, "{lab_file} and {base} differ otherwise");
    }
}

#[test]
fn every_service_reports_its_health() {
    for config in [compose_config(), lab_compose_config()] {
        for (name, service) in config["services"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let healthcheck = &service["healthcheck"];
            if name == "setup" || name == "admin" {
                // One-shot jobs: no health to report (`disable: true`, which
                // docker-compose prints as the test NONE).
                let disabled = healthcheck["disable"].as_bool() == Some(true)
                    || healthcheck["test"] == Value::from(vec!["NONE"]);
                assert!(disabled, "{name}: {healthcheck:?}");
                continue;
            }
            let test: Vec<&str> = healthcheck["test"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name} has no healthcheck test"))
                .iter()
                .map(|arg| arg.as_str().unwrap())
                .collect();
            assert_eq!(test.first(), Some(&"CMD"), "{name}: {test:?}");
            if service["image"].as_str() != Some("basalt:latest") {
                continue;
            }
            // `basalt health <service> --config <the file it runs with>`.
            let subcommand = service["command"][0].as_str().unwrap();
            let file = config_file(service).unwrap();
            assert_eq!(
                test,
                [
                    "CMD",
                    "basalt",
                    "health",
                    subcommand,
                    "--config",
                    &format!("/etc/basalt/{file}")
                ],
                "{name}"
            );
        }
    }
}

/// Every string in a config that names a file under `/var/lib/basalt/`.
fn data_paths(value: &toml::Value, found: &mut BTreeSet<String>) {
    match value {
        toml::Value::String(text) => {
            if let Some(file) = text.strip_prefix("/var/lib/basalt/") {
                found.insert(file.to_owned());
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| data_paths(item, found)),
        toml::Value::Table(table) => table.values().for_each(|item| data_paths(item, found)),
        _ => {}
    }
}

#[test]
fn the_setup_makes_every_file_the_configs_name() {
    // The `basalt dev` flags setup runs with, on a directory of our own.
    let config = compose_config();
    let script = config["services"]["setup"]["command"][0].as_str().unwrap();
    let flags: Vec<&str> = script
        .split("&&")
        .next()
        .and_then(|first| first.trim().strip_prefix("basalt dev "))
        .expect("setup starts with `basalt dev`")
        .split_whitespace()
        .collect();
    assert!(flags.contains(&"--prepare-only"), "{flags:?}");
    let dir = std::env::temp_dir().join(format!("basalt-compose-setup-{}", std::process::id()));
    let flags: Vec<String> = flags
        .iter()
        .map(|flag| match *flag {
            "/var/lib/basalt" => dir.display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("dev")
        .args(&flags)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "basalt dev {flags:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(repo().join("deploy/config")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let mut paths = BTreeSet::new();
        data_paths(&deploy_config(&file), &mut paths);
        for path in paths {
            if !dir.join(&path).is_file() {
                missing.push(format!("{file}: /var/lib/basalt/{path}"));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(missing.is_empty(), "setup does not make {missing:#?}");
}

/// A service's volume mounts, `volume:path[:mode]`.
fn volumes(service: &Value) -> Vec<&str> {
    service["volumes"]
        .as_sequence()
        .map(|mounts| mounts.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn each_service_mounts_its_own_keys_and_only_the_ca_the_issuer_keys() {
    let config = compose_config();
    let setup = &config["services"]["setup"];
    let setup_mounts = volumes(setup);
    for (name, service) in basalt_services(&config) {
        let mut mounts = volumes(service);
        mounts.retain(|mount| !mount.starts_with("db-password:"));
        let mut expected = vec![format!("pki-{name}:/var/lib/basalt/pki:ro")];
        if name == "ca" {
            expected.push("ca-keys:/var/lib/basalt/ca-keys:ro".to_owned());
        }
        assert_eq!(mounts, expected, "{name}'s volumes");
        // Filled by setup, from the split of the whole PKI by service name.
        let filled = format!("pki-{name}:/srv/basalt/{name}:rw");
        assert!(
            setup_mounts.contains(&filled.as_str()),
            "setup lacks {filled}"
        );
    }
    assert!(setup_mounts.contains(&"ca-keys:/srv/basalt/ca-keys:rw"));
    // The whole PKI (root and internal CA keys) is setup's alone.
    for (name, service) in config["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let whole = volumes(service).iter().any(|m| m.starts_with("pki:"));
        assert_eq!(whole, name == "setup", "{name} mounts the whole PKI");
    }
    let script = setup["command"][0].as_str().unwrap();
    assert!(
        script.contains("pki-split.sh /var/lib/basalt /srv/basalt"),
        "{script}"
    );
}
