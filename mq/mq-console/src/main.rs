//! `mq-console`: the web console. `mq-console -n 127.0.0.1:9876` or
//! `mq-console -c application.properties` (rocketmq-dashboard's keys; see
//! [`mq_console::config`]); serves on 127.0.0.1:8080 unless told otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mq_console::config::split_addrs;
use mq_console::{ConsoleConfig, Users};
use tokio::net::TcpListener;

/// RocketMQ web console.
#[derive(Debug, Parser)]
#[command(name = "mq-console", version)]
struct Args {
    /// application.properties with the dashboard's keys.
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server addresses separated by `;` (overrides the file).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
    /// HTTP port (overrides server.port).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// users.properties to log in with (overrides the data path's).
    #[arg(short = 'u', long = "users")]
    users: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mq-console: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config_file {
        Some(path) => {
            let (config, unknown) = ConsoleConfig::from_file(path)?;
            for key in unknown {
                tracing::warn!(key, file = %path.display(), "unknown configuration key");
            }
            config
        }
        None => {
            let cwd = std::env::current_dir().context("the current folder")?;
            ConsoleConfig::new(Vec::new())
                .with_users(Users::File(cwd.join(mq_console::config::USERS_FILE)))
        }
    };
    if let Some(addrs) = &args.namesrv_addr {
        config.namesrv_addrs = split_addrs(addrs);
    } else if config.namesrv_addrs.is_empty() {
        config.namesrv_addrs = split_addrs(&std::env::var("NAMESRV_ADDR").unwrap_or_default());
    }
    if let Some(port) = args.port {
        config.listen.set_port(port);
    }
    if let Some(users) = args.users {
        config.users = Users::File(users);
    }
    config.check()?;
    tracing::info!(
        listen = %config.listen,
        namesrv = ?config.namesrv_addrs,
        login_required = config.login_required,
        users = ?config.users,
        access_key = ?config.credentials.as_ref().map(|c| &c.access_key),
        "mq-console configuration"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        println!("mq-console on http://{}", listener.local_addr()?);
        mq_console::serve(listener, config, mq_client::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
