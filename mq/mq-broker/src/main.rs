//! `mqbroker`: RocketMQ's broker command line.
//!
//! ```text
//! mqbroker [-c broker.properties] [-n "ns1:9876;ns2:9876"] [-p | -m]
//!          [--enable-proxy [-pc rmq-proxy.json]]
//! ```
//!
//! `--enable-proxy` also serves the RocketMQ 5.x gRPC endpoint in this
//! process (RocketMQ 5's Local mode), with the settings of `-pc FILE` or
//! `$ROCKETMQ_HOME/conf/rmq-proxy.json`; its name servers default to the
//! broker's, so the topics it routes include this broker's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use mq_broker::config::{apply_properties, store_entries, BrokerConfig, MetricsExporterType};
use mq_broker::BrokerHandle;
use mq_remoting::shutdown_signal;
use mq_store::MessageStoreConfig;
use telemetry::metrics::MetricsServer;

#[derive(Parser, Debug)]
#[command(name = "mqbroker", about = "Start a RocketMQ-compatible broker")]
struct Args {
    /// Broker config file (RocketMQ .properties keys).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server address list, e.g. '192.168.0.1:9876;192.168.0.2:9876'.
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
    /// Print all config items and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Print important config items and exit.
    #[arg(short = 'm', long = "printImportantConfig")]
    print_important: bool,
    /// Also serve the RocketMQ 5.x gRPC endpoint (the proxy's Local mode).
    #[arg(long = "enable-proxy")]
    enable_proxy: bool,
    /// The proxy's rmq-proxy.json (default $ROCKETMQ_HOME/conf/rmq-proxy.json).
    #[arg(long = "proxyConfigPath")]
    proxy_config: Option<PathBuf>,
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

fn main() -> ExitCode {
    match run(Args::parse_from(normalize(std::env::args()))) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqbroker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies defaults, then the file, then `-n`.
fn load(args: &Args) -> Result<(BrokerConfig, MessageStoreConfig)> {
    let mut broker = BrokerConfig::default();
    let mut store = MessageStoreConfig::default();
    if let Some(path) = &args.config_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let entries = mq_protocol::properties::parse(&text)
            .with_context(|| format!("config file {}", path.display()))?;
        let warnings = apply_properties(
            &entries,
            &path.display().to_string(),
            &mut [&mut broker, &mut store],
        )?;
        for warning in warnings {
            eprintln!("mqbroker: warning: {warning}");
        }
    }
    if let (Some(path), true) = (&args.config_file, broker.broker_config_path.is_empty()) {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        broker.broker_config_path = path.display().to_string();
    }
    if let Some(addr) = &args.namesrv_addr {
        broker.namesrv_addr = addr.clone();
    }
    broker
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid broker config")?;
    store.validate().context("invalid store config")?;
    Ok((broker, store))
}

/// The in-process proxy's settings: its file, with the broker's name
/// servers and cluster unless the file names others; with the broker's
/// `aclEnable`, ACL on and the broker's accounts file and account unless
/// the file names others.
fn proxy_config(args: &Args, broker: &BrokerConfig) -> Result<Option<mq_proxy::ProxyConfig>> {
    if !args.enable_proxy {
        return Ok(None);
    }
    let mut config = mq_proxy::ProxyConfig::resolve(args.proxy_config.as_deref())?;
    if config.namesrv_addr.is_empty() {
        config.namesrv_addr.clone_from(&broker.namesrv_addr);
    }
    if config.rocketmq_cluster_name == mq_proxy::ProxyConfig::default().rocketmq_cluster_name {
        config
            .rocketmq_cluster_name
            .clone_from(&broker.broker_cluster_name);
    }
    if broker.acl_enable {
        // The broker's accounts apply to 5.x clients too: a proxy that did
        // not check them would give every client its own account's rights.
        config.enable_acl = true;
        if config.acl_file_path.is_empty() {
            config.acl_file_path =
                mq_acl::resolve_path(&broker.rocketmq_home, &broker.acl_file_path)
                    .display()
                    .to_string();
        }
        // It signs its 4.x requests as the broker does, unless the file
        // names an account of its own.
        if config.access_key.is_none() && !broker.access_key.is_empty() {
            config.access_key = Some(broker.access_key.clone());
            config.secret_key = Some(mq_proxy::config::Secret(broker.secret_key.clone()));
        }
    }
    Ok(Some(config))
}

fn run(args: Args) -> Result<ExitCode> {
    let (broker, store) = load(&args)?;
    let proxy_config = proxy_config(&args, &broker)?;
    if args.print_config || args.print_important {
        let important = [
            "brokerClusterName",
            "brokerName",
            "brokerId",
            "namesrvAddr",
            "listenPort",
            "brokerRole",
            "flushDiskType",
            "storePathRootDir",
        ];
        for (key, value) in broker.entries().into_iter().chain(store_entries(&store)) {
            if args.print_config || important.contains(&key) {
                println!("{key}={value}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let logging = broker.logging();
    telemetry::logging::init(&logging)
        .with_context(|| format!("cannot log to {}", logging.dir.display()))?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let processors = std::thread::available_parallelism().map_or(1, usize::from);
        runtime.worker_threads(broker.runtime_workers(processors));
    }
    let runtime = runtime.build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let name = broker.broker_name.clone();
        let namesrv = broker.namesrv_addr.clone();
        // Bound before the broker starts, so a taken port stops nothing.
        let metrics_listener = match broker.metrics_exporter_type {
            MetricsExporterType::Prom => Some(
                MetricsServer::bind(
                    &broker.metrics_prom_exporter_host,
                    broker.metrics_prom_exporter_port,
                )
                .await?,
            ),
            MetricsExporterType::Disable => None,
        };
        let handle = BrokerHandle::start(broker, store).await?;
        let stop = shutdown_signal();
        let metrics = match metrics_listener {
            Some(listener) => {
                let mut registry = prometheus_client::registry::Registry::default();
                handle.register_metrics(&mut registry);
                Some(MetricsServer::spawn(listener, registry)?)
            }
            None => None,
        };
        println!(
            "The broker[{name}, {}] boot success. serializeType=JSON and name server is {namesrv}",
            handle.addr()
        );
        println!(
            "The broker[{name}] replication address is {}",
            handle.ha_addr()
        );
        if let Some(metrics) = &metrics {
            println!("The broker[{name}] metrics are at {}", metrics.url());
        }
        let (proxy_stop, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
        let proxy = match proxy_config {
            Some(config) => {
                let proxy = mq_proxy::Proxy::start_local(config, handle.in_process())
                    .await
                    .context("cannot start the proxy")?;
                let listener = proxy.bind().await?;
                println!(
                    "The broker[{name}] proxy's gRPC endpoint is at {}",
                    listener.local_addr()?
                );
                Some(tokio::spawn(proxy.serve(listener, async {
                    let _ = proxy_stopped.await;
                })))
            }
            None => None,
        };
        stop.await;
        if let Some(task) = proxy {
            let _ = proxy_stop.send(());
            if let Ok(Err(error)) = task.await {
                eprintln!("mqbroker: proxy: {error}");
            }
        }
        drop(metrics);
        handle.shutdown().await;
        println!("The broker[{name}] shut down cleanly");
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(proxy_file: &std::path::Path) -> Args {
        Args::parse_from(normalize(
            ["mqbroker", "--enable-proxy", "-pc"]
                .into_iter()
                .map(String::from)
                .chain([proxy_file.display().to_string()]),
        ))
    }

    fn acl_broker() -> BrokerConfig {
        BrokerConfig {
            rocketmq_home: "/opt/rmq".into(),
            acl_enable: true,
            access_key: "broker-admin".into(),
            secret_key: "broker-secret".into(),
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn with_the_brokers_acl_the_local_proxy_checks_and_signs_as_the_broker() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rmq-proxy.json");
        std::fs::write(&file, "{}").unwrap();
        let config = proxy_config(&args(&file), &acl_broker()).unwrap().unwrap();
        assert!(
            config.enable_acl,
            "a broker's ACL cannot be bypassed over gRPC"
        );
        assert_eq!(config.acl_file_path, "/opt/rmq/conf/plain_acl.yml");
        assert_eq!(config.access_key.as_deref(), Some("broker-admin"));
        assert_eq!(
            config.secret_key,
            Some(mq_proxy::config::Secret("broker-secret".into()))
        );

        // The proxy's own file names another account and file: those stay.
        std::fs::write(
            &file,
            r#"{"accessKey": "proxy-admin", "secretKey": "proxy-secret",
                "aclFilePath": "/etc/proxy_acl.yml", "enableACL": false}"#,
        )
        .unwrap();
        let config = proxy_config(&args(&file), &acl_broker()).unwrap().unwrap();
        assert!(config.enable_acl, "still on: the broker's ACL is");
        assert_eq!(config.acl_file_path, "/etc/proxy_acl.yml");
        assert_eq!(config.access_key.as_deref(), Some("proxy-admin"));

        // Without the broker's ACL, the file decides.
        std::fs::write(&file, "{}").unwrap();
        let open = BrokerConfig::default();
        let config = proxy_config(&args(&file), &open).unwrap().unwrap();
        assert!(!config.enable_acl);
        assert_eq!(config.access_key, None);
    }
}
