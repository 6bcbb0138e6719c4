//! The console on port 0 against a real name server and broker (mq-testkit),
//! and a small HTTP client that keeps its cookies and the page's CSRF token
//! the way a browser does.

#![allow(dead_code)]

pub mod browser;
pub mod shop_stub;

#[allow(unused_imports)] // Not every test file uses each of them.
pub use browser::{enc, Browser, Page};

use mq_console::{ConsoleConfig, User, Users};
use mq_testkit::Cluster;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
pub const VIEWER: (&str, &str) = ("viewer", "viewer-secret-2");

/// A running console.
pub struct Console {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Console {
    /// Serves `config` on a loopback port.
    pub async fn start(config: ConsoleConfig) -> Console {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            mq_console::serve(listener, config, async move {
                let _ = stopped.await;
            })
            .await
            .expect("the console serves");
        });
        Console {
            url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }
}

/// The accounts the tests log in with: an admin and a viewer.
pub fn users() -> Users {
    Users::Fixed(vec![
        User::new(ADMIN.0, ADMIN.1, true),
        User::new(VIEWER.0, VIEWER.1, false),
    ])
}

/// The default test setup: log-in required, the two accounts.
pub fn config(namesrv: &str) -> ConsoleConfig {
    ConsoleConfig::new(vec![namesrv.to_owned()]).with_users(users())
}

/// A cluster and a console on it, the admin logged in.
pub async fn start() -> (Cluster, Console, Browser) {
    let cluster = Cluster::start().await;
    let console = Console::start(config(&cluster.namesrv.addr)).await;
    let mut browser = console.browser();
    browser.login(ADMIN.0, ADMIN.1).await;
    (cluster, console, browser)
}
