//! `mqadmin`: RocketMQ's operator tool, with RocketMQ's command names and
//! flags. `-n` (or NAMESRV_ADDR) names the name servers everywhere; with
//! ACL on, requests are signed with `ROCKETMQ_ACCESS_KEY` and
//! `ROCKETMQ_SECRET_KEY`, else with the keys of
//! `$ROCKETMQ_HOME/conf/tools.yml` as RocketMQ's tools read them.
//!
//! The layout: [`args`] parses RocketMQ-style `-x value` flags, each area
//! of commands is a file under `command/` (topics, cluster, broker,
//! messages, consumers, connections, name server, monitoring) with each
//! command's flags and its `run`, `command/mod.rs` is the table from command
//! name to command, and [`time`] prints and reads timestamps. Results go to
//! stdout; errors are one line on stderr and a non-zero exit.
//!
//! The package's other binaries live in `src/bin/`: `mqshutdown` and the
//! quickstart producer and consumer.

mod args;
mod command;
mod time;

use std::process::ExitCode;

use args::Flags;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqadmin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[String]) -> anyhow::Result<ExitCode> {
    let Some(name) = argv.first() else {
        print!("{}", command::usage());
        return Ok(ExitCode::SUCCESS);
    };
    if name == "help" {
        let Some(topic) = argv.get(1) else {
            print!("{}", command::usage());
            return Ok(ExitCode::SUCCESS);
        };
        let cmd = command::find(topic)
            .ok_or_else(|| anyhow::anyhow!("unknown command {topic}; run mqadmin for the list"))?;
        print!("{}", command::help(cmd));
        return Ok(ExitCode::SUCCESS);
    }
    let cmd = command::find(name)
        .ok_or_else(|| anyhow::anyhow!("unknown command {name}; run mqadmin for the list"))?;
    let flags = Flags::parse(cmd.flags, &argv[1..])?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async { (cmd.run)(flags).await })?;
    Ok(ExitCode::SUCCESS)
}
