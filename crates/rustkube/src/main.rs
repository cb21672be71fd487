//! The `rustkube` binary: one executable for every role.
//!
//! `main` parses the command line (flags, `RUSTKUBE_*` environment
//! variables and the YAML config file, in [`config`]) and hands the chosen
//! role to its module: [`server`] runs the control plane, [`components`]
//! the controller manager, scheduler and simulated nodes on their own.

mod cli;
mod components;
mod config;
mod server;
mod token;

use std::process::ExitCode;

/// The server allocates many small, short-lived objects on every request
/// across threads; mimalloc handles that pattern far better than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let command = match config::load(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(config::LoadError::Exit(code)) => return ExitCode::from(code),
        Err(config::LoadError::Invalid(msg)) => {
            eprintln!("rustkube: {msg}");
            return ExitCode::from(2);
        }
    };
    match command {
        cli::Command::Server(args) => {
            init_logging(&args.log_format, args.debug);
            block_on(async move { server::run(*args).await.map_err(|e| e.to_string()) })
        }
        cli::Command::ControllerManager(args) => {
            init_logging(&args.client.log_format, args.client.debug);
            block_on(async move {
                let root_ca_pem = match &args.root_ca_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .map_err(|e| format!("--root-ca-file {}: {e}", path.display()))?,
                    ),
                    None => None,
                };
                let read = |path: &std::path::Path| {
                    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
                };
                let cluster_signing = match (
                    &args.cluster_signing_cert_file,
                    &args.cluster_signing_key_file,
                ) {
                    (Some(cert), Some(key)) => {
                        let (client_cert, client_key) = (read(cert)?, read(key)?);
                        let (serving_cert, serving_key) = match (
                            &args.cluster_signing_kubelet_serving_cert_file,
                            &args.cluster_signing_kubelet_serving_key_file,
                        ) {
                            (Some(c), Some(k)) => (read(c)?, read(k)?),
                            _ => (client_cert.clone(), client_key.clone()),
                        };
                        Some(controllers::ClusterSigning {
                            client_ca_cert_pem: client_cert,
                            client_ca_key_pem: client_key,
                            serving_ca_cert_pem: serving_cert,
                            serving_ca_key_pem: serving_key,
                        })
                    }
                    _ => None,
                };
                let options = controllers::Options {
                    cluster_signing,
                    cluster_cidr: Some(args.cluster_cidr.to_string()),
                    node_monitor_grace_period: std::time::Duration::from_secs(
                        args.node_monitor_grace_period,
                    ),
                    root_ca_pem,
                    ..Default::default()
                };
                components::controller_manager(
                    &args.client.kubeconfig,
                    options,
                    args.client.leader_elect,
                )
                .await
                .map_err(|e| e.to_string())
            })
        }
        cli::Command::Scheduler(args) => {
            init_logging(&args.client.log_format, args.client.debug);
            block_on(async move {
                components::scheduler(
                    &args.client.kubeconfig,
                    args.config.as_deref(),
                    args.client.leader_elect,
                )
                .await
                .map_err(|e| e.to_string())
            })
        }
        cli::Command::Token(args) => {
            init_logging("text", false);
            block_on(async move { run_token(args).await })
        }
        cli::Command::SimNodes(args) => {
            init_logging(&args.log_format, args.debug);
            block_on(async move {
                let options = simnodes::Options {
                    count: args.count,
                    name_prefix: args.name_prefix.clone(),
                    start_index: args.start_index,
                    cpu: args.cpu.clone(),
                    memory: args.memory.clone(),
                    pods: args.pods,
                    labels: args.labels.clone(),
                    zones: args.zones.clone(),
                    lease_renew_interval: seconds(args.lease_renew_interval)?,
                    status_update_interval: seconds(args.status_update_interval)?,
                    job_run_seconds: args.job_run_seconds,
                };
                components::sim_nodes(&args.kubeconfig, options)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
    }
}

async fn run_token(args: cli::TokenArgs) -> Result<(), String> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => args
            .data_dir
            .clone()
            .unwrap_or_else(server::default_data_dir)
            .join("server/cred/admin.kubeconfig"),
    };
    let client = clientkit::client_from_kubeconfig(&kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    match args.action {
        cli::TokenAction::Create {
            token,
            ttl,
            groups,
            description,
        } => {
            let token = token.unwrap_or_else(token::generate);
            if apiserver::authn::bootstrap_token::parse(&token).is_none() {
                return Err(format!(
                    "{token:?} is not a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}})"
                ));
            }
            let spec = token::TokenSpec {
                token: &token,
                ttl: Some(token::parse_ttl(&ttl)?),
                description: &description,
                groups: &groups,
            };
            token::create(client, &spec).await?;
            let ca = token::ca_of_kubeconfig(&kubeconfig)?;
            println!("{}", token::join_token(&ca, &token));
        }
        cli::TokenAction::List => print!("{}", token::list(client).await?),
        cli::TokenAction::Delete { tokens } => {
            for t in tokens {
                let id = token::delete(client.clone(), &t).await?;
                println!("bootstrap token {id:?} deleted");
            }
        }
    }
    Ok(())
}

fn seconds(value: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{value} is not a number of seconds"))
}

/// Run a role on a multi-threaded runtime; an error is logged and exits 1.
fn block_on<F>(role: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rustkube: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(role) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: &str, debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUSTKUBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
