//! The deployment files outside docker-compose.yml cannot rot: the systemd units
//! (checked by `systemd-analyze verify` and by running their `ExecStartPre`), the
//! Kubernetes manifests (every Deployment runs a config that exists, mounts only
//! its own secrets, and the network policies keep the CA to itself), and the PKI
//! split that gives each service only its own keys (run on a real PKI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value as Yaml;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn basalt() -> &'static str {
    env!("CARGO_BIN_EXE_basalt")
}

/// The services in deploy/config: file stem to the `basalt` subcommand that reads it.
fn service_configs() -> BTreeMap<String, String> {
    let mut configs = BTreeMap::new();
    for entry in std::fs::read_dir(deploy("config")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.extension().is_some_and(|ext| ext == "toml") && stem != "admin" {
            let service = if stem.starts_with("va") { "va" } else { &stem };
            configs.insert(stem.clone(), service.to_owned());
        }
    }
    configs
}

/// Every string in a config that names a file under `prefix`.
fn paths_under(value: &toml::Value, prefix: &str, found: &mut BTreeSet<String>) {
    match value {
        toml::Value::String(text) => {
            if let Some(file) = text.strip_prefix(prefix) {
                found.insert(file.to_owned());
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| paths_under(v, prefix, found)),
        toml::Value::Table(table) => table.values().for_each(|v| paths_under(v, prefix, found)),
        _ => {}
    }
}

fn config_files(stem: &str, prefix: &str) -> BTreeSet<String> {
    let text = read(&deploy(&format!("config/{stem}.toml")));
    let value: toml::Value = toml::from_str(&text).unwrap();
    let mut found = BTreeSet::new();
    paths_under(&value, prefix, &mut found);
    found
}

/// `key=value` lines of a unit file, by key (repeated keys in order).
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
        settings
            .entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    settings
}

#[test]
fn every_service_has_a_systemd_unit_that_verifies_and_checks_its_config() {
    let configs = service_configs();
    let scratch = std::env::temp_dir().join(format!("basalt-units-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut covered = BTreeSet::new();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(deploy("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".service") || name.ends_with(".target")) {
            continue;
        }
        let text = read(&path);
        // verify needs an executable at the ExecStart path: the one just built.
        std::fs::write(
            scratch.join(&name),
            text.replace("/usr/local/bin/basalt", basalt()),
        )
        .unwrap();
        units.push(scratch.join(&name));
        if !name.ends_with(".service") {
            continue;
        }
        let settings = unit_settings(&text);
        let exec = &settings["ExecStart"][0];
        let words: Vec<&str> = exec.split(' ').collect();
        let [bin, service, "--config", config] = words[..] else {
            panic!("{name}: ExecStart={exec}");
        };
        assert_eq!(bin, "/usr/local/bin/basalt", "{name}");
        let stem = config
            .strip_prefix("/etc/basalt/")
            .and_then(|file| file.strip_suffix(".toml"))
            .unwrap_or_else(|| panic!("{name}: {config}"));
        assert_eq!(
            configs.get(stem).map(String::as_str),
            Some(service),
            "{name}: no deploy/config/{stem}.toml for `basalt {service}`"
        );
        covered.insert(stem.to_owned());
        assert_eq!(
            settings["ExecStartPre"],
            [format!("{bin} {service} --check-config --config {config}")],
            "{name}"
        );
        // The pre-start check passes on the shipped config.
        let check = Command::new(basalt())
            .args([service, "--check-config", "--config"])
            .arg(deploy(&format!("config/{stem}.toml")))
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {check:?}");
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("PrivateTmp", "yes"),
            ("KillSignal", "SIGTERM"),
        ] {
            assert_eq!(settings[key], [value], "{name}: {key}");
        }
        // Only the CA's user can read the issuer keys.
        let user = if service == "ca" {
            "basalt-ca"
        } else {
            "basalt"
        };
        assert_eq!(settings["User"], [user], "{name}");
        // Only the services on ports below 1024 keep a capability, and only that one.
        let capabilities = if matches!(service, "wfe" | "ocsp") {
            "CAP_NET_BIND_SERVICE"
        } else {
            ""
        };
        assert_eq!(settings["CapabilityBoundingSet"], [capabilities], "{name}");
    }
    let missing: Vec<_> = configs.keys().filter(|c| !covered.contains(*c)).collect();
    // A lab-only VA config runs in containers, never as a host service.
    let missing: Vec<_> = missing
        .into_iter()
        .filter(|c| !c.ends_with("-lab"))
        .collect();
    assert!(missing.is_empty(), "configs without a unit: {missing:?}");

    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs the unit check");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}

fn yaml_documents(path: &Path) -> Vec<Yaml> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(path))
        .map(|document| Yaml::deserialize(document).unwrap())
        .filter(|document| !document.is_null())
        .collect()
}

fn string<'a>(value: &'a Yaml, path: &[&str]) -> &'a str {
    let mut value = value;
    for key in path {
        value = &value[*key];
    }
    value
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}"))
}

/// The Kubernetes objects of deploy/kustomization.yaml, and the config files it
/// puts in the `basalt-config` ConfigMap.
fn kustomization() -> (Vec<Yaml>, BTreeSet<String>) {
    let root: Yaml = serde_yaml::from_str(&read(&deploy("kustomization.yaml"))).unwrap();
    let mut objects = Vec::new();
    for resource in root["resources"].as_sequence().unwrap() {
        objects.extend(yaml_documents(&deploy(resource.as_str().unwrap())));
    }
    let generator = &root["configMapGenerator"][0];
    assert_eq!(string(generator, &["name"]), "basalt-config");
    let files = generator["files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|file| {
            let file = file.as_str().unwrap();
            assert!(deploy(file).is_file(), "{file} is not in deploy/");
            file.strip_prefix("config/").unwrap().to_owned()
        })
        .collect();
    (objects, files)
}

fn of_kind<'a>(objects: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    objects
        .iter()
        .filter(|object| object["kind"].as_str() == Some(kind))
        .collect()
}

/// The port of `[telemetry] debug_listen` in a deploy config.
fn debug_port(stem: &str) -> Option<u64> {
    let text = read(&deploy(&format!("config/{stem}.toml")));
    let value: toml::Value = toml::from_str(&text).unwrap();
    let listen = value.get("telemetry")?.get("debug_listen")?.as_str()?;
    Some(listen.rsplit_once(':').unwrap().1.parse().unwrap())
}

#[test]
fn every_kubernetes_deployment_runs_a_shipped_config_with_only_its_own_secrets() {
    let (objects, config_files) = kustomization();
    let configs = service_configs();
    let services: BTreeMap<&str, &Yaml> = of_kind(&objects, "Service")
        .into_iter()
        .map(|service| (string(service, &["metadata", "name"]), service))
        .collect();
    let mut deployed = BTreeSet::new();
    for deployment in of_kind(&objects, "Deployment") {
        let name = string(deployment, &["metadata", "name"]);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["automountServiceAccountToken"],
            Yaml::Bool(false),
            "{name}"
        );
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"],
            Yaml::Bool(true),
            "{name}"
        );
        let container = &pod["containers"][0];
        if string(container, &["image"]).starts_with("redis") {
            continue;
        }
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|arg| arg.as_str().unwrap())
            .collect();
        let [service, "--config", config] = args[..] else {
            panic!("{name}: args {args:?}");
        };
        let file = config.strip_prefix("/etc/basalt/").unwrap();
        assert!(
            config_files.contains(file),
            "{name}: {file} is not in the ConfigMap"
        );
        let stem = file.strip_suffix(".toml").unwrap();
        assert_eq!(
            configs.get(stem).map(String::as_str),
            Some(service),
            "{name}"
        );
        deployed.insert(stem.to_owned());

        // The image's HEALTHCHECK and the liveness probe read these.
        let env: BTreeMap<&str, &str> = container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|var| (string(var, &["name"]), string(var, &["value"])))
            .collect();
        assert_eq!(env["BASALT_SERVICE"], service, "{name}");
        assert_eq!(env["BASALT_CONFIG"], config, "{name}");

        let security = &container["securityContext"];
        assert_eq!(
            security["readOnlyRootFilesystem"],
            Yaml::Bool(true),
            "{name}"
        );
        assert_eq!(
            security["allowPrivilegeEscalation"],
            Yaml::Bool(false),
            "{name}"
        );

        // Its own internal PKI; the issuer keys for the CA alone.
        let secrets: BTreeSet<&str> = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|volume| volume["secret"]["secretName"].as_str())
            .collect();
        let mut expected = BTreeSet::from([format!("basalt-pki-{name}")]);
        if name == "ca" {
            expected.insert("basalt-ca-keys".to_owned());
        }
        if name == "sa" {
            expected.insert("basalt-db".to_owned());
        }
        let secrets: BTreeSet<String> = secrets.into_iter().map(str::to_owned).collect();
        assert_eq!(secrets, expected, "{name}");

        // Readiness from the debug port the config opens.
        let ports: BTreeMap<&str, u64> = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|port| {
                (
                    string(port, &["name"]),
                    port["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            Some(ports["debug"]),
            debug_port(stem),
            "{name}: the debug port is not the config's [telemetry] debug_listen"
        );
        assert_eq!(
            string(container, &["readinessProbe", "httpGet", "path"]),
            "/health/ready",
            "{name}"
        );
        let service_object = services
            .get(name)
            .unwrap_or_else(|| panic!("no Service {name}"));
        assert_eq!(
            service_object["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
            "{name}"
        );
    }
    let missing: Vec<_> = configs
        .keys()
        .filter(|c| !deployed.contains(*c) && !c.ends_with("-lab"))
        .collect();
    assert!(
        missing.is_empty(),
        "configs without a Deployment: {missing:?}"
    );

    // The remote VAs scale behind a headless Service: each pod is a perspective.
    assert_eq!(
        services["va-remote"]["spec"]["clusterIP"].as_str(),
        Some("None")
    );
}

/// The components a NetworkPolicy lets in to `target` on any port.
fn allowed_into(objects: &[Yaml], target: &str) -> BTreeSet<String> {
    let mut peers = BTreeSet::new();
    for policy in of_kind(objects, "NetworkPolicy") {
        let selector = &policy["spec"]["podSelector"];
        let selects = selector["matchLabels"]["app.kubernetes.io/component"].as_str()
            == Some(target)
            || selector["matchExpressions"][0]["values"]
                .as_sequence()
                .is_some_and(|values| values.iter().any(|v| v.as_str() == Some(target)));
        let Some(rules) = policy["spec"]["ingress"].as_sequence() else {
            continue;
        };
        if !selects {
            continue;
        }
        for rule in rules {
            match rule["from"].as_sequence() {
                None => {
                    peers.insert("*".to_owned());
                }
                Some(from) => {
                    for peer in from {
                        let component =
                            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                                .as_str()
                                .unwrap_or("*");
                        peers.insert(component.to_owned());
                    }
                }
            }
        }
    }
    peers
}

#[test]
fn kubernetes_network_policies_keep_the_ca_and_the_database_to_themselves() {
    let (objects, _) = kustomization();
    let policies = of_kind(&objects, "NetworkPolicy");
    let deny = policies
        .iter()
        .find(|p| string(p, &["metadata", "name"]) == "default-deny-ingress")
        .expect("a default-deny ingress policy");
    assert_eq!(
        deny["spec"]["podSelector"],
        serde_yaml::from_str::<Yaml>("{}").unwrap()
    );
    assert!(deny["spec"]["ingress"].is_null());

    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(allowed_into(&objects, "ca"), set(&["ra", "ocsp"]));
    assert_eq!(allowed_into(&objects, "postgres"), set(&["sa"]));
    assert_eq!(allowed_into(&objects, "va-remote"), set(&["va"]));
    assert_eq!(allowed_into(&objects, "wfe"), set(&["*"]));
    // Metrics come from the monitoring namespaces only (a namespaceSelector).
    let egress = policies
        .iter()
        .find(|p| string(p, &["metadata", "name"]) == "ca-egress")
        .expect("the CA's egress policy");
    let to: Vec<&str> = egress["spec"]["egress"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|rule| {
            rule["to"][0]["podSelector"]["matchLabels"]
                .as_mapping()
                .and_then(|labels| labels.values().last())
                .and_then(Yaml::as_str)
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(to, ["sa", "kube-dns"]);
}

#[test]
fn the_pki_split_gives_each_service_what_its_config_names_and_no_more() {
    let root = std::env::temp_dir().join(format!("basalt-pki-split-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let source = root.join("source");
    let split = root.join("split");
    let prepare = Command::new(basalt())
        .args(["dev", "--prepare-only", "--data-dir"])
        .arg(&source)
        .output()
        .unwrap();
    assert!(prepare.status.success(), "{prepare:?}");
    let output = Command::new("sh")
        .arg(deploy("pki-split.sh"))
        .arg(&source)
        .arg(&split)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let listing = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let mut stems: Vec<String> = service_configs().into_keys().collect();
    stems.push("admin".to_owned());
    for stem in stems.iter().filter(|stem| !stem.ends_with("-lab")) {
        let wanted = config_files(stem, "/var/lib/basalt/pki/");
        assert_eq!(listing(&split.join(stem)), wanted, "{stem}");
    }
    assert_eq!(
        listing(&split.join("ca-keys")),
        config_files("ca", "/var/lib/basalt/ca-keys/")
    );
    // Nothing that signs for the hierarchy or the internal PKI left the source.
    for dir in listing(&split) {
        for file in listing(&split.join(&dir)) {
            assert!(
                !file.starts_with("root") && !file.starts_with("internal-ca.key"),
                "{dir}/{file}"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(split.join(&dir).join(&file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{dir}/{file} is readable by others");
            }
        }
    }
    std::fs::remove_dir_all(&root).unwrap();
}
