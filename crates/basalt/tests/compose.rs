//! docker-compose.yml as `docker-compose config` (Debian's `docker-compose`) reads
//! it: accepted, every Basalt service started with a config of deploy/config and
//! every config there used, and networks that keep to the trust boundaries.
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

/// The file as `docker-compose config` resolves it; fails when docker-compose is
/// missing or refuses the file.
fn compose_config() -> Value {
    let output = Command::new("docker-compose")
        .arg("--project-directory")
        .arg(repo())
        .arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .arg("config")
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

/// The deploy/config file a service is started with (`--config /etc/basalt/X`).
fn config_file(service: &Value) -> Option<String> {
    let command: Vec<&str> = service["command"]
        .as_sequence()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = command.iter().position(|arg| *arg == "--config")?;
    command
        .get(at + 1)?
        .strip_prefix("/etc/basalt/")
        .map(str::to_owned)
}

#[test]
fn every_basalt_service_has_its_config_and_every_config_a_service() {
    let config = compose_config();
    let services = config["services"].as_mapping().unwrap();
    let mut used = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if service["image"].as_str() != Some("basalt:latest") || name == "setup" {
            continue;
        }
        let file = config_file(service)
            .unwrap_or_else(|| panic!("{name} does not run with --config /etc/basalt/…"));
        assert!(
            repo().join("deploy/config").join(&file).is_file(),
            "{name} runs with {file}, which deploy/config lacks"
        );
        used.insert(file);
    }
    // admin.toml is for `basalt admin` on an operator's machine, not a service.
    let configs: BTreeSet<String> = std::fs::read_dir(repo().join("deploy/config"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|file| file != "admin.toml")
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
            matches!(*name, "wfe" | "ocsp" | "va") || name.starts_with("va-remote-"),
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
