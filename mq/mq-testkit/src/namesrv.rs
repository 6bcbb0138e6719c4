//! The name server tests start: in this process, on a random loopback port,
//! with its KV config in a temporary folder.

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use mq_namesrv::NamesrvConfig;

/// A name server on a random loopback port, stopped on drop.
pub struct NameServer {
    /// `host:port` to give brokers and clients.
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl NameServer {
    /// Binds a loopback port and serves on it until dropped.
    pub async fn start() -> NameServer {
        Self::start_with(|_| {}).await
    }

    /// Like [`NameServer::start`], with settings adjusted by `tweak`
    /// (`aclEnable`, say).
    pub async fn start_with(tweak: impl FnOnce(&mut NamesrvConfig)) -> NameServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = mq_namesrv::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
        NameServer {
            addr,
            stop: Some(stop),
            _dir: dir,
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
