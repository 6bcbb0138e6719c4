//! `mqshutdown namesrv|broker`: stops this user's local `mqnamesrv` or
//! `mqbroker` processes the way RocketMQ's script does: SIGTERM, then wait
//! until they are gone (both servers stop cleanly on SIGTERM).
//!
//! ```text
//! mqshutdown broker [--match TEXT] [--timeout SECONDS]
//! ```
//!
//! `--match` narrows the processes to those whose command line contains
//! TEXT (for instance the `-c` config file), so that one broker of several
//! on a host can be stopped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How often a stopping process is looked at.
const POLL: Duration = Duration::from_millis(100);

struct Args {
    program: &'static str,
    matching: Option<String>,
    timeout: Duration,
}

fn usage() -> String {
    "usage: mqshutdown namesrv|broker [--match TEXT] [--timeout SECONDS]".to_owned()
}

fn parse(argv: &[String]) -> Result<Args> {
    let mut it = argv.iter();
    let program = match it.next().map(String::as_str) {
        Some("namesrv") => "mqnamesrv",
        Some("broker") => "mqbroker",
        Some(other) => bail!("unknown server {other:?}; {}", usage()),
        None => bail!("{}", usage()),
    };
    let mut args = Args {
        program,
        matching: None,
        timeout: Duration::from_secs(60),
    };
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow!("{flag} needs a value; {}", usage()))?;
        match flag.as_str() {
            "--match" | "-m" => args.matching = Some(value.clone()),
            "--timeout" | "-t" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| anyhow!("--timeout must be a number of seconds, got {value:?}"))?;
                args.timeout = Duration::from_secs(secs);
            }
            other => bail!("unknown option {other}; {}", usage()),
        }
    }
    Ok(args)
}

/// The command line of a process, its arguments split.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether the process is gone (or a zombie waiting for its parent).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
    }
}

/// This user's processes running `program`, optionally narrowed.
fn find(program: &str, matching: Option<&str>) -> Result<Vec<(u32, String)>> {
    let me = std::fs::metadata("/proc/self")
        .context("cannot read /proc (mqshutdown needs Linux's /proc)")?
        .uid();
    let own_pid = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own_pid || entry.metadata().map_or(true, |m| m.uid() != me) || gone(pid) {
            continue;
        }
        let Some(args) = cmdline(pid) else { continue };
        let Some(argv0) = args.first() else { continue };
        if Path::new(argv0).file_name().and_then(|n| n.to_str()) != Some(program) {
            continue;
        }
        let line = args.join(" ");
        if matching.is_some_and(|m| !line.contains(m)) {
            continue;
        }
        found.push((pid, line));
    }
    found.sort();
    Ok(found)
}

fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run(argv: &[String]) -> Result<ExitCode> {
    let args = parse(argv)?;
    let targets = find(args.program, args.matching.as_deref())?;
    if targets.is_empty() {
        bail!("No {} running.", args.program);
    }
    for (pid, _) in &targets {
        println!("The {}({pid}) is running...", args.program);
        terminate(*pid).with_context(|| format!("cannot signal {}({pid})", args.program))?;
        println!("Send shutdown request to {}({pid}) OK", args.program);
    }
    let deadline = Instant::now() + args.timeout;
    let mut waiting: Vec<u32> = targets.iter().map(|(pid, _)| *pid).collect();
    while !waiting.is_empty() {
        waiting.retain(|pid| {
            let done = gone(*pid);
            if done {
                println!("{}({pid}) stopped", args.program);
            }
            !done
        });
        if waiting.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "{} still running after {:?}: {waiting:?}",
                args.program,
                args.timeout
            );
        }
        std::thread::sleep(POLL);
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqshutdown: {e:#}");
            ExitCode::FAILURE
        }
    }
}
