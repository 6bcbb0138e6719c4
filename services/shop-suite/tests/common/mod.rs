//! What the suite's tests share: the `shop` binary started on random
//! ports with a data folder, its printed addresses, and a SIGINT stop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `shop`; killed when dropped.
pub struct Shop {
    pub child: Child,
    /// What the banner printed, by its first word (`namesrv` for the name
    /// server).
    pub urls: HashMap<String, String>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `shop` on `data` and waits for its banner.
pub fn start(data: &std::path::Path) -> Shop {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--random-ports", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("shop starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut urls = HashMap::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line.starts_with("shop ready") {
            break;
        }
        if let Some(addr) = line.strip_prefix("name server") {
            urls.insert("namesrv".to_owned(), addr.trim().to_owned());
            continue;
        }
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(url)) = (parts.next(), parts.next()) {
            urls.insert(name.to_owned(), url.to_owned());
        }
    }
    assert!(
        urls.contains_key("order"),
        "the shop printed its URLs: {urls:?}"
    );
    std::thread::spawn(move || for _ in lines {});
    Shop { child, urls }
}

/// Stops `shop` with SIGINT and waits for it to exit.
#[allow(dead_code)] // Not every test file stops the shop.
pub fn sigint(shop: &mut Shop) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-INT", &shop.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    shop.child.wait().unwrap()
}

/// The password of a demo login, from the data folder's secrets file.
#[allow(dead_code)] // Not every test file logs in.
pub fn password(data: &std::path::Path, login: &str) -> String {
    let text = std::fs::read_to_string(data.join("secrets.properties")).expect("the secrets file");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("login.{login}=")))
        .unwrap_or_else(|| panic!("no password for {login}"))
        .to_owned()
}

/// Logs in at the shop's user service; returns the bearer token.
#[allow(dead_code)]
pub async fn log_in(
    http: &reqwest::Client,
    shop: &Shop,
    data: &std::path::Path,
    login: &str,
) -> String {
    let answer: serde_json::Value = http
        .post(format!("{}/auth/login", shop.urls["user"]))
        .json(&serde_json::json!({"login": login, "password": password(data, login)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"]
        .as_str()
        .unwrap_or_else(|| panic!("log-in of {login}: {answer}"))
        .to_owned()
}
