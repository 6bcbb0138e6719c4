//! `mqproxy`: the RocketMQ 5.x gRPC endpoint in front of a cluster
//! (RocketMQ 5's Cluster mode): `mqproxy -n NS -pc rmq-proxy.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mq_proxy::{Proxy, ProxyConfig};

#[derive(Parser, Debug)]
#[command(
    name = "mqproxy",
    about = "RocketMQ 5.x gRPC endpoint in front of a cluster"
)]
struct Args {
    /// Name server addresses, `;`-separated (overrides namesrvAddr).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv: Option<String>,
    /// rmq-proxy.json (default $ROCKETMQ_HOME/conf/rmq-proxy.json).
    #[arg(short = 'p', long = "proxyConfigPath", alias = "pc")]
    proxy_config: Option<PathBuf>,
    /// Write the bound gRPC address to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse_from(normalize(std::env::args()));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("mqproxy: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mqproxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// RocketMQ writes `-pc FILE`; clap's short options are one letter.
fn normalize(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        if a == "-pc" {
            "--proxyConfigPath".into()
        } else {
            a
        }
    })
    .collect()
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = ProxyConfig::resolve(args.proxy_config.as_deref())?;
    if let Some(namesrv) = args.namesrv {
        config.namesrv_addr = namesrv;
    }
    tracing::info!(?config, "effective proxy configuration");
    let proxy = Proxy::start(config)
        .await
        .context("start the 4.x clients")?;
    let listener = proxy.bind().await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gRPC endpoint listening");
    if let Some(path) = &args.port_file {
        std::fs::write(path, addr.to_string())
            .with_context(|| format!("write {}", path.display()))?;
    }
    proxy
        .serve(listener, async {
            mq_remoting::shutdown_signal().await;
        })
        .await?;
    Ok(())
}
