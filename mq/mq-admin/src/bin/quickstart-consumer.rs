//! The quickstart consumer, as RocketMQ's
//! `tools.sh org.apache.rocketmq.example.quickstart.Consumer`: group
//! please_rename_unique_group_name_4 subscribes to TopicTest `*` from the
//! first offset and prints every message it receives, until stopped
//! (Ctrl-C, SIGTERM) or, with `-c`, after that many messages.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 quickstart-consumer [-n ADDR] [-t TOPIC] [-g GROUP] [-c COUNT]
//! ```
//!
//! With ACL on, it signs as `mqadmin` does: `ROCKETMQ_ACCESS_KEY` and
//! `ROCKETMQ_SECRET_KEY`, else `$ROCKETMQ_HOME/conf/tools.yml`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use mq_client::shutdown_signal;
use mq_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Credentials, Listener, PushConsumer,
    PushConsumerConfig,
};
use tokio::sync::Notify;

struct Args {
    namesrv: String,
    topic: String,
    group: String,
    count: Option<u64>,
}

fn parse(argv: &[String]) -> Result<Args> {
    let mut args = Args {
        namesrv: std::env::var("NAMESRV_ADDR").unwrap_or_default(),
        topic: "TopicTest".to_owned(),
        group: "please_rename_unique_group_name_4".to_owned(),
        count: None,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "-n" => args.namesrv = value.clone(),
            "-t" => args.topic = value.clone(),
            "-g" => args.group = value.clone(),
            "-c" => {
                args.count = Some(
                    value
                        .parse()
                        .map_err(|_| anyhow!("-c must be a number, got {value:?}"))?,
                )
            }
            other => bail!(
                "unknown option {other} (use -n ADDR, -t TOPIC, -g GROUP, -c COUNT)\n{}",
                mq_client::credentials::TOOLS_HELP
            ),
        }
    }
    if args.namesrv.is_empty() {
        bail!("no name server: set NAMESRV_ADDR or use -n");
    }
    Ok(args)
}

async fn run(args: Args) -> Result<()> {
    let client = ClientConfig::new(args.namesrv)
        .with_instance_name(format!("quickstart-consumer-{}", std::process::id()))
        .with_credentials(Credentials::for_tools()?);
    let config = PushConsumerConfig {
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        ..PushConsumerConfig::new(args.group)
    };
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(&args.topic, "*")?;
    let received = Arc::new(AtomicU64::new(0));
    let enough = Arc::new(Notify::new());
    let limit = args.count;
    let listener = {
        let (received, enough) = (received.clone(), enough.clone());
        Listener::concurrent(move |msgs| {
            let (received, enough) = (received.clone(), enough.clone());
            async move {
                for m in &msgs {
                    println!(
                        "Receive New Messages: MessageExt [topic={}, queueId={}, queueOffset={}, msgId={}, tags={}, body={}]",
                        m.topic,
                        m.queue_id,
                        m.queue_offset,
                        m.property("UNIQ_KEY").unwrap_or(""),
                        m.tags().unwrap_or(""),
                        String::from_utf8_lossy(&m.body)
                    );
                }
                let total =
                    received.fetch_add(msgs.len() as u64, Ordering::SeqCst) + msgs.len() as u64;
                if limit.is_some_and(|l| total >= l) {
                    enough.notify_one();
                }
                ConsumeStatus::Success
            }
        })
    };
    consumer.start(listener).await?;
    println!("Consumer Started.");
    tokio::select! {
        () = shutdown_signal() => {}
        () = enough.notified() => {}
    }
    consumer.shutdown().await;
    eprintln!(
        "quickstart-consumer: stopped after {} message(s)",
        received.load(Ordering::SeqCst)
    );
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let outcome = parse(&argv).and_then(|args| tokio::runtime::Runtime::new()?.block_on(run(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart-consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
