//! What mq-admin's test binaries share: running one of the tools and reading
//! its output as RocketMQ's tools print it (`#` header lines, whitespace
//! separated rows, `Key: value` summaries).

// Each test binary uses part of this module.
#![allow(dead_code)]

/// What a tool printed and whether it succeeded.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Data rows: the non-empty lines that are not headers (`#...`), split
    /// on whitespace.
    pub fn rows(&self) -> Vec<Vec<&str>> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect()
    }

    /// The value of a `Key: value` summary line.
    pub fn summary(&self, key: &str) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim_start_matches(':').trim())
    }
}

/// Runs `bin` with `args`, with `NAMESRV_ADDR` set to `namesrv` if given
/// (and unset otherwise, whatever the test's environment says).
pub async fn run(bin: &str, args: &[&str], namesrv: Option<&str>) -> Out {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args).env_remove("NAMESRV_ADDR");
    if let Some(ns) = namesrv {
        cmd.env("NAMESRV_ADDR", ns);
    }
    let out = cmd.output().await.expect("the tool runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
