//! Where settings come from, strongest first: command-line flags,
//! `RUSTKUBE_<FLAG>` environment variables, the YAML config file (keys are
//! flag names), then built-in defaults. Any bad input is one clear line
//! and exit code 2.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, ServerArgs};

#[derive(Debug)]
pub enum LoadError {
    /// Help or version was printed; exit with this code.
    Exit(u8),
    /// A one-line reason the settings are unusable (exit code 2).
    Invalid(String),
}

fn parse(args: &[OsString]) -> Result<ArgMatches, LoadError> {
    Cli::command().try_get_matches_from(args).map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                LoadError::Exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                )
            }
            _ => {
                let rendered = e.render().to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                LoadError::Invalid(first.trim_start_matches("error: ").to_string())
            }
        }
    })
}

pub fn load(args: Vec<OsString>) -> Result<Command, LoadError> {
    let matches = parse(&args)?;
    let Some(("server", sub)) = matches.subcommand() else {
        return from_matches(&matches);
    };
    let path = sub
        .get_one::<std::path::PathBuf>("config")
        .cloned()
        .unwrap_or_default();
    let explicit = matches!(
        sub.value_source("config"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let extra = config_file_args(&path, explicit, sub)?;
    if extra.is_empty() {
        return validated(from_matches(&matches)?);
    }
    // Config-file values go right after the subcommand so that anything on
    // the real command line still wins.
    let position = args
        .iter()
        .position(|a| a == "server")
        .map(|p| p + 1)
        .unwrap_or(args.len());
    let mut merged = args[..position].to_vec();
    merged.extend(extra.into_iter().map(OsString::from));
    merged.extend_from_slice(&args[position..]);
    validated(from_matches(&parse(&merged)?)?)
}

fn from_matches(matches: &ArgMatches) -> Result<Command, LoadError> {
    Cli::from_arg_matches(matches)
        .map(|cli| cli.command)
        .map_err(|e| {
            LoadError::Invalid(
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .to_string(),
            )
        })
}

/// Turn the config file into flags for every key not already set by a flag
/// or environment variable.
fn config_file_args(
    path: &Path,
    explicit: bool,
    sub: &ArgMatches,
) -> Result<Vec<String>, LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Vec::new()),
        Err(e) => {
            return Err(LoadError::Invalid(format!(
                "config file {}: {e}",
                path.display()
            )))
        }
    };
    let bad = |why: String| LoadError::Invalid(format!("config file {}: {why}", path.display()));
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = match doc {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Mapping(m) => m,
        _ => return Err(bad("must be a mapping of flag names to values".into())),
    };
    let command = Cli::command();
    let server = command
        .find_subcommand("server")
        .ok_or_else(|| bad("no server command".into()))?;
    let mut out = Vec::new();
    for (key, value) in map {
        let key = key
            .as_str()
            .ok_or_else(|| bad("keys must be strings".into()))?
            .to_string();
        let arg = server
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .filter(|a| a.get_id() != "config")
            .ok_or_else(|| bad(format!("unknown key {key:?}")))?;
        let id = arg.get_id().as_str();
        if matches!(
            sub.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let scalar = |v: &serde_yaml::Value| -> Result<String, LoadError> {
            match v {
                serde_yaml::Value::String(s) => Ok(s.clone()),
                serde_yaml::Value::Number(n) => Ok(n.to_string()),
                serde_yaml::Value::Bool(b) => Ok(b.to_string()),
                _ => Err(bad(format!(
                    "value of {key:?} must be a string, number or boolean"
                ))),
            }
        };
        match (&value, takes_value) {
            (serde_yaml::Value::Bool(true), false) => out.push(format!("--{key}")),
            (serde_yaml::Value::Bool(false), false) => {}
            (_, false) => return Err(bad(format!("value of {key:?} must be true or false"))),
            (serde_yaml::Value::Sequence(items), true)
                if matches!(arg.get_action(), clap::ArgAction::Append) =>
            {
                for item in items {
                    out.push(format!("--{key}={}", scalar(item)?));
                }
            }
            (serde_yaml::Value::Sequence(_), true) => {
                return Err(bad(format!("{key:?} takes a single value, not a list")))
            }
            (v, true) => out.push(format!("--{key}={}", scalar(v)?)),
        }
    }
    Ok(out)
}

/// Checks that span several settings or touch the file system.
fn validated(command: Command) -> Result<Command, LoadError> {
    if let Command::Server(args) = &command {
        check_server(args).map_err(LoadError::Invalid)?;
    }
    Ok(command)
}

fn check_server(args: &ServerArgs) -> Result<(), String> {
    if let Some(path) = &args.encryption_provider_config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--encryption-provider-config {}: {e}", path.display()))?;
        storage::encryption::EncryptionConfig::parse(&text).map_err(|e| {
            format!(
                "--encryption-provider-config {}: {}",
                path.display(),
                e.lines().next().unwrap_or("")
            )
        })?;
    }
    apiserver::authz::Mode::parse_list(&args.authorization_mode)
        .map_err(|e| format!("--authorization-mode: {e}"))?;
    if let Some(path) = &args.audit_policy_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--audit-policy-file {}: {e}", path.display()))?;
        apiserver::audit::Policy::parse(&text).map_err(|e| {
            format!(
                "--audit-policy-file {}: not a valid audit policy: {}",
                path.display(),
                e.lines().next().unwrap_or("")
            )
        })?;
    }
    if !args.datastore_endpoint.is_empty() {
        for endpoint in args.datastore_endpoint.split(',') {
            let rest = endpoint
                .strip_prefix("https://")
                .or_else(|| endpoint.strip_prefix("http://"))
                .ok_or_else(|| {
                    format!(
                        "--datastore-endpoint: {endpoint:?} must start with http:// or https://"
                    )
                })?;
            let (host, port) = rest
                .trim_end_matches('/')
                .rsplit_once(':')
                .ok_or_else(|| format!("--datastore-endpoint: {endpoint:?} needs a port"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!(
                    "--datastore-endpoint: {endpoint:?} is not host:port"
                ));
            }
        }
    }
    for (flag, file) in [
        ("--datastore-cafile", &args.datastore_cafile),
        ("--datastore-certfile", &args.datastore_certfile),
        ("--datastore-keyfile", &args.datastore_keyfile),
        ("--token-auth-file", &args.token_auth_file),
    ] {
        if let Some(f) = file {
            if !f.is_file() {
                return Err(format!("{flag}: {} does not exist", f.display()));
            }
        }
    }
    if args.datastore_certfile.is_some() != args.datastore_keyfile.is_some() {
        return Err("--datastore-certfile and --datastore-keyfile must be given together".into());
    }
    if !args.service_cidr.contains(args.cluster_dns) {
        return Err(format!(
            "--cluster-dns {} is outside --service-cidr {}",
            args.cluster_dns, args.service_cidr
        ));
    }
    for san in &args.tls_san {
        let is_ip = san.parse::<std::net::IpAddr>().is_ok();
        if !is_ip
            && !apimachinery::meta::dns1123_subdomain_errors(&san.to_ascii_lowercase()).is_empty()
        {
            return Err(format!(
                "--tls-san: {san:?} is neither an IP address nor a DNS name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn server(list: &[&str]) -> Result<ServerArgs, LoadError> {
        match load(args(list))? {
            Command::Server(a) => Ok(*a),
            other => panic!("not a server command: {other:?}"),
        }
    }

    #[test]
    fn config_file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "https-listen-port: 7443\ntls-san: [a.example, 10.0.0.9]\ncluster-domain: corp.local\ndisable-agent: true\n").unwrap();
        let c = cfg.to_str().unwrap();
        let a = server(&[
            "rustkube",
            "server",
            "--config",
            c,
            "--cluster-domain",
            "flag.local",
        ])
        .unwrap();
        assert_eq!(a.https_listen_port, 7443);
        assert_eq!(a.tls_san, vec!["a.example", "10.0.0.9"]);
        assert_eq!(a.cluster_domain, "flag.local");
        assert!(a.disable_agent);
    }

    #[test]
    fn environment_beats_config_file_and_flags_beat_environment() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(
            &cfg,
            "cluster-domain: file.local\nhttps-listen-port: 7000\n",
        )
        .unwrap();
        let c = cfg.to_str().unwrap();
        // Only this test sets these variables.
        std::env::set_var("RUSTKUBE_CLUSTER_DOMAIN", "env.local");
        std::env::set_var("RUSTKUBE_WRITE_KUBECONFIG_MODE", "0640");
        let a = server(&["rustkube", "server", "--config", c]).unwrap();
        let b = server(&[
            "rustkube",
            "server",
            "--config",
            c,
            "--write-kubeconfig-mode=0600",
        ])
        .unwrap();
        std::env::remove_var("RUSTKUBE_CLUSTER_DOMAIN");
        std::env::remove_var("RUSTKUBE_WRITE_KUBECONFIG_MODE");
        assert_eq!(a.cluster_domain, "env.local");
        assert_eq!(a.https_listen_port, 7000);
        assert_eq!(a.write_kubeconfig_mode, 0o640);
        assert_eq!(b.write_kubeconfig_mode, 0o600);
    }

    #[test]
    fn unknown_config_keys_and_bad_flags_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "no-such-flag: 1\n").unwrap();
        let c = cfg.to_str().unwrap();
        match server(&["rustkube", "server", "--config", c]) {
            Err(LoadError::Invalid(m)) => {
                assert!(m.contains("unknown key \"no-such-flag\""), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match server(&["rustkube", "server", "--https-listen-port", "x"]) {
            Err(LoadError::Invalid(m)) => {
                assert!(!m.contains('\n') && m.contains("https-listen-port"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match server(&[
            "rustkube",
            "server",
            "--cluster-dns",
            "10.99.0.10",
            "--config",
            "/nonexistent.yaml",
        ]) {
            Err(LoadError::Invalid(m)) => assert!(m.contains("/nonexistent.yaml"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_default_config_file_is_fine_and_checks_span_flags() {
        let a = server(&["rustkube", "server", "--config", "/nonexistent/c.yaml"]);
        assert!(a.is_err());
        match server(&["rustkube", "server", "--cluster-dns", "10.99.0.10"]) {
            Err(LoadError::Invalid(m)) => assert!(m.contains("outside --service-cidr"), "{m}"),
            other => panic!("{other:?}"),
        }
        match server(&["rustkube", "server", "--datastore-endpoint", "etcd:2379"]) {
            Err(LoadError::Invalid(m)) => assert!(m.contains("http://"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
