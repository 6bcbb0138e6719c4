//! The quickstart producer, as RocketMQ's
//! `tools.sh org.apache.rocketmq.example.quickstart.Producer`: sends 1,000
//! messages "Hello RocketMQ i" with tag TagA to TopicTest and prints each
//! send result.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 quickstart-producer [-n ADDR] [-t TOPIC] [-c COUNT]
//! ```
//!
//! With ACL on, it signs as `mqadmin` does: `ROCKETMQ_ACCESS_KEY` and
//! `ROCKETMQ_SECRET_KEY`, else `$ROCKETMQ_HOME/conf/tools.yml`.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use mq_client::{
    ClientConfig, Credentials, Message, Producer, ProducerConfig, SendResult, SendStatus,
};

struct Args {
    namesrv: String,
    topic: String,
    count: u32,
}

fn parse(argv: &[String]) -> Result<Args> {
    let mut args = Args {
        namesrv: std::env::var("NAMESRV_ADDR").unwrap_or_default(),
        topic: "TopicTest".to_owned(),
        count: 1000,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "-n" => args.namesrv = value.clone(),
            "-t" => args.topic = value.clone(),
            "-c" => {
                args.count = value
                    .parse()
                    .map_err(|_| anyhow!("-c must be a number, got {value:?}"))?
            }
            other => bail!(
                "unknown option {other} (use -n ADDR, -t TOPIC, -c COUNT)\n{}",
                mq_client::credentials::TOOLS_HELP
            ),
        }
    }
    if args.namesrv.is_empty() {
        bail!("no name server: set NAMESRV_ADDR or use -n");
    }
    Ok(args)
}

fn status(s: SendStatus) -> &'static str {
    match s {
        SendStatus::SendOk => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

async fn run(args: Args) -> Result<()> {
    let client = ClientConfig::new(args.namesrv)
        .with_instance_name(format!("quickstart-producer-{}", std::process::id()))
        .with_credentials(Credentials::for_tools()?);
    let producer = Producer::start(
        ProducerConfig::new("please_rename_unique_group_name"),
        client,
    )
    .await?;
    let result = async {
        for i in 0..args.count {
            let msg = Message::new(args.topic.clone(), format!("Hello RocketMQ {i}").into_bytes())
                .with_tags("TagA");
            let sent = send_with_retries(&producer, msg).await?;
            println!(
                "SendResult [sendStatus={}, msgId={}, offsetMsgId={}, messageQueue=MessageQueue [topic={}, brokerName={}, queueId={}], queueOffset={}]",
                status(sent.status),
                sent.msg_id,
                sent.offset_msg_id,
                sent.queue.topic,
                sent.queue.broker_name,
                sent.queue.queue_id,
                sent.queue_offset
            );
        }
        Ok(())
    }
    .await;
    producer.shutdown().await;
    result
}

/// Sends `msg`, trying again after a second when a send fails (a route
/// that is not there yet, a broker restarting), as RocketMQ's quickstart
/// keeps going after an exception; gives up after the third failure.
async fn send_with_retries(producer: &Producer, msg: Message) -> Result<SendResult> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match producer.send(msg.clone()).await {
            Ok(sent) => return Ok(sent),
            Err(e) if attempt < ATTEMPTS => {
                eprintln!("quickstart-producer: send failed ({e}); trying again in 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let outcome = parse(&argv).and_then(|args| tokio::runtime::Runtime::new()?.block_on(run(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart-producer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
