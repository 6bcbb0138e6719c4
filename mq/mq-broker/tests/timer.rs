//! Timer messages (RocketMQ 5's `TIMER_DELIVER_MS` / `TIMER_DELAY_SEC` /
//! `TIMER_DELAY_MS`) against raw remoting frames: held in
//! `rmq_sys_wheel_timer` until due, then delivered intact; kept across a
//! clean restart and a SIGKILL; refused when late, malformed, batched or
//! transactional.

mod common;

use std::time::Duration;

use common::*;
use mq_broker::metadata::timer::TimerCheckpoint;
use mq_protocol::message::{properties_to_string, sys_flag, BatchEntry, Properties};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};

const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";

fn checkpoint(root: &std::path::Path) -> TimerCheckpoint {
    TimerCheckpoint::load(&TimerCheckpoint::path(&root.join("config"))).unwrap()
}

/// Pulls queue 0 of `topic` until `want` messages arrived (or 20 s passed).
async fn eventually(
    c: &mq_remoting::RemotingClient,
    broker: &str,
    topic: &str,
    want: usize,
) -> Vec<MessageExt> {
    pull_all(c, broker, "g", topic, 1, want, Duration::from_secs(20)).await
}

#[tokio::test]
async fn a_timer_message_waits_for_its_time_then_arrives_intact() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Timed", 1).await;
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Timed", "*")]).await;

    let at = now_ms() + 2_000;
    let msg = with_property(
        with_property(
            message("Timed", 0, "TagT", "order-7", b"later"),
            "color",
            "red",
        ),
        "TIMER_DELIVER_MS",
        &at.to_string(),
    );
    let uniq = mq_protocol::message::string_to_properties(msg.0.properties.as_deref().unwrap())
        ["UNIQ_KEY"]
        .clone();
    send(&c, &broker.addr, msg).await;
    let early = pull(&c, &broker.addr, "g", "Timed", 0, 0, 0).await;
    assert!(early.messages.is_empty(), "not visible before its time");
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 1);

    let got = eventually(&c, &broker.addr, "Timed", 1).await;
    assert_eq!(got.len(), 1, "delivered once due");
    let msg = &got[0];
    assert!(
        msg.store_timestamp >= at,
        "stored at {} before its time {at}",
        msg.store_timestamp
    );
    assert_eq!(&msg.body[..], b"later");
    assert_eq!(msg.tags(), Some("TagT"));
    assert_eq!(msg.keys(), vec!["order-7"]);
    assert_eq!(msg.property("color"), Some("red"));
    assert_eq!(msg.msg_id(), uniq, "the message id is kept");
    assert_eq!(
        msg.property("TIMER_DELIVER_MS"),
        Some(at.to_string().as_str())
    );
    assert_eq!(msg.property("DELAY"), None, "not through a delay level");

    // A time already past is an ordinary message.
    let past = with_property(
        message("Timed", 0, "", "", b"now"),
        "TIMER_DELIVER_MS",
        &(now_ms() - 60_000).to_string(),
    );
    send(&c, &broker.addr, past).await;
    let now = pull(&c, &broker.addr, "g", "Timed", 0, 1, 0).await;
    assert_eq!(now.messages.len(), 1, "stored in its topic at once");
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 1);
}

#[tokio::test]
async fn a_timer_message_26_hours_ahead_is_accepted_and_still_pending_after_a_restart() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Tomorrow", 1).await;
    let sent_at = now_ms();
    send(
        &c,
        &broker.addr,
        with_property(
            message("Tomorrow", 0, "", "", b"in 26 h"),
            "TIMER_DELAY_SEC",
            "93600",
        ),
    )
    .await;
    broker.stop().await;

    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 1);
    assert_eq!(max_offset(&c, &broker.addr, "Tomorrow", 0).await, 0);
    // The timer service has not delivered it.
    assert_eq!(checkpoint(dir.path()).offset, 0, "offset 0 not delivered");
    // Its due time, as the timer topic's queue holds it.
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[(TIMER_TOPIC, "*")]).await;
    let viewed = pull(&c, &broker.addr, "g", TIMER_TOPIC, 0, 0, 0).await;
    assert_eq!(viewed.messages.len(), 1);
    let due: i64 = viewed.messages[0]
        .property("TIMER_OUT_MS")
        .unwrap()
        .parse()
        .unwrap();
    assert!(due >= sent_at + 93_600_000, "due {due}, sent {sent_at}");
    assert_eq!(viewed.messages[0].property("REAL_TOPIC"), Some("Tomorrow"));
    assert_eq!(max_offset(&c, &broker.addr, "Tomorrow", 0).await, 0);
}

#[tokio::test]
async fn a_due_message_survives_a_restart_before_delivery_and_is_not_delivered_twice() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Restarted", 1).await;
    // One far ahead first, so that the checkpoint has to record the later
    // offset delivered out of order.
    send(
        &c,
        &broker.addr,
        with_property(
            message("Restarted", 0, "", "", b"later"),
            "TIMER_DELAY_SEC",
            "3600",
        ),
    )
    .await;
    let at = now_ms() + 3_000;
    send(
        &c,
        &broker.addr,
        with_property(
            message("Restarted", 0, "", "", b"soon"),
            "TIMER_DELAY_MS",
            "3000",
        ),
    )
    .await;
    broker.stop().await;

    let mut broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Restarted", "*")]).await;
    let got = eventually(&c, &broker.addr, "Restarted", 1).await;
    assert_eq!(got.len(), 1, "delivered after the restart");
    assert_eq!(&got[0].body[..], b"soon");
    assert!(got[0].store_timestamp >= at, "not early");
    wait_until("the delivery to be checkpointed", WAIT, || async {
        checkpoint(dir.path())
            == TimerCheckpoint {
                offset: 0,
                delivered: vec![(1, 2)],
            }
    })
    .await;
    broker.stop().await;

    // A clean restart delivers nothing again: the checkpoint says so.
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    // Nothing observable says "the timer service will not deliver it
    // again"; give it a few of its ticks.
    watch_for_absence(Duration::from_millis(1_000)).await;
    assert_eq!(max_offset(&c, &broker.addr, "Restarted", 0).await, 1);
}

#[tokio::test]
async fn late_malformed_batched_and_transactional_timer_messages_are_refused() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let c = client();
    create_topic(&c, &broker.addr, "Refused", 1).await;
    let four_days = (now_ms() + 4 * 24 * 3_600_000).to_string();
    let cases = [
        ("TIMER_DELAY_SEC", "259201"),
        ("TIMER_DELIVER_MS", four_days.as_str()),
        ("TIMER_DELAY_MS", "259200001"),
        ("TIMER_DELAY_SEC", "-1"),
        ("TIMER_DELIVER_MS", "tomorrow"),
        ("TIMER_DELAY_MS", "2.5"),
    ];
    for (name, value) in cases {
        let response = send_raw(
            &c,
            &broker.addr,
            with_property(message("Refused", 0, "", "", b"x"), name, value),
        )
        .await;
        assert_eq!(
            code(&response),
            Some(ResponseCode::MESSAGE_ILLEGAL),
            "{name}={value}: {:?}",
            response.remark
        );
        assert!(
            response.remark.as_deref().unwrap_or("").contains("timer"),
            "{:?}",
            response.remark
        );
    }

    // Transactional.
    let mut half = with_property(
        with_property(message("Refused", 0, "", "", b"x"), "TRAN_MSG", "true"),
        "TIMER_DELAY_SEC",
        "10",
    );
    half.0.sys_flag = sys_flag::TRANSACTION_PREPARED_TYPE;
    let response = send_raw(&c, &broker.addr, half).await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::MESSAGE_ILLEGAL),
        "{:?}",
        response.remark
    );

    // A batch with one timer message in it.
    let entry = |timer: bool| {
        let mut properties = Properties::new();
        if timer {
            properties.insert("TIMER_DELAY_SEC".into(), "10".into());
        }
        BatchEntry {
            flag: 0,
            body: bytes::Bytes::from_static(b"b"),
            properties,
        }
    };
    let mut body = bytes::BytesMut::new();
    for timer in [false, true] {
        entry(timer).encode(&mut body).unwrap();
    }
    let (mut header, _) = message("Refused", 0, "", "", b"");
    header.batch = Some(true);
    header.properties = Some(properties_to_string(&Properties::new()));
    let request = RemotingCommand::request(request_code::SEND_BATCH_MESSAGE)
        .with_header(&header)
        .with_body(body.to_vec());
    let response = call(&c, &broker.addr, request).await;
    assert_eq!(
        code(&response),
        Some(ResponseCode::MESSAGE_ILLEGAL),
        "{:?}",
        response.remark
    );

    // Nothing of it was stored anywhere.
    assert_eq!(max_offset(&c, &broker.addr, "Refused", 0).await, 0);
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 0);
    assert_eq!(
        max_offset(&c, &broker.addr, "RMQ_SYS_TRANS_HALF_TOPIC", 0).await,
        0
    );

    // Exactly timerMaxDelaySec ahead is fine.
    send(
        &c,
        &broker.addr,
        with_property(
            message("Refused", 0, "", "", b"x"),
            "TIMER_DELAY_SEC",
            "259200",
        ),
    )
    .await;
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 1);
}

#[tokio::test]
async fn timer_max_delay_sec_and_timer_wheel_enable_come_from_the_config() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.timer_max_delay_sec = 60;
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, "Short", 1).await;
    let late = with_property(message("Short", 0, "", "", b"x"), "TIMER_DELAY_SEC", "61");
    assert_eq!(
        code(&send_raw(&c, &broker.addr, late).await),
        Some(ResponseCode::MESSAGE_ILLEGAL)
    );
    send(
        &c,
        &broker.addr,
        with_property(message("Short", 0, "", "", b"x"), "TIMER_DELAY_SEC", "60"),
    )
    .await;

    let off_dir = tempfile::tempdir().unwrap();
    let off = start_broker_with("broker-b", off_dir.path(), &ns.addr, |b, _| {
        b.timer_wheel_enable = false;
    })
    .await;
    create_topic(&c, &off.addr, "Short", 1).await;
    let timed = with_property(message("Short", 0, "", "", b"x"), "TIMER_DELAY_SEC", "5");
    let response = send_raw(&c, &off.addr, timed).await;
    assert_eq!(code(&response), Some(ResponseCode::SYSTEM_ERROR));
    assert!(response.remark.unwrap().contains("timerWheelEnable"));
}

#[tokio::test]
async fn a_timer_message_survives_a_sigkill_before_it_is_due() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ns.addr, "flushDiskType=SYNC_FLUSH\n");
    let c = client();
    let broker = BrokerProcess::spawn(&config);
    create_topic(&c, &broker.addr, "Crashed", 1).await;
    send(
        &c,
        &broker.addr,
        with_property(
            message("Crashed", 0, "", "", b"tomorrow"),
            "TIMER_DELAY_SEC",
            "93600",
        ),
    )
    .await;
    let at = now_ms() + 3_000;
    send(
        &c,
        &broker.addr,
        with_property(
            message("Crashed", 0, "", "", b"due"),
            "TIMER_DELIVER_MS",
            &at.to_string(),
        ),
    )
    .await;
    broker.kill();

    let broker = BrokerProcess::spawn(&config);
    let c = client();
    heartbeat_consumer(&c, &broker.addr, "c1", "g", &[("Crashed", "*")]).await;
    let got = eventually(&c, &broker.addr, "Crashed", 1).await;
    assert!(
        !got.is_empty(),
        "the due message is delivered after the crash\n{}",
        broker.log()
    );
    assert!(
        got.iter().all(|m| &m.body[..] == b"due"),
        "only the due one"
    );
    assert!(got[0].store_timestamp >= at);
    assert_eq!(max_offset(&c, &broker.addr, TIMER_TOPIC, 0).await, 2);
    let root = dir.path().join("store");
    wait_until("the delivery to be checkpointed", WAIT, || async {
        checkpoint(&root)
            == TimerCheckpoint {
                offset: 0,
                delivered: vec![(1, 2)],
            }
    })
    .await;
}
