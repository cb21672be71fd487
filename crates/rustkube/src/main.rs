//! The `rustkube` binary: one executable for every role.
//!
//! `main` parses the command line (flags, `RUSTKUBE_*` environment
//! variables and the YAML config file, in [`config`]) and hands the chosen
//! role to its module: [`server`] runs the control plane.

mod cli;
mod config;
mod server;

use std::process::ExitCode;

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
            let log_format = args.log_format.clone();
            init_logging(&log_format, args.debug);
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
            match runtime.block_on(server::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::from(1)
                }
            }
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
