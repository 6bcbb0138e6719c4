//! Transactional messages through the broker: half messages are invisible,
//! commit delivers once, rollback never, unknown outcomes are checked back,
//! outcomes survive restarts, and too many checks discard the message.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mq_protocol::header::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, SendMessageResponseHeader,
};
use mq_protocol::message::{decode_message_id, sys_flag};
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};
use mq_remoting::{async_trait, Channel, HandlerError, RequestHandler};

const GROUP: &str = "tx-producer";

fn half(topic: &str, body: &[u8]) -> (mq_protocol::header::SendMessageRequestHeader, Vec<u8>) {
    let mut msg = with_property(message(topic, 0, "T", "", body), "TRAN_MSG", "true");
    msg = with_property(msg, "PGROUP", GROUP);
    msg.0.producer_group = GROUP.into();
    msg.0.sys_flag = sys_flag::TRANSACTION_PREPARED_TYPE;
    msg
}

fn end(sent: &SendMessageResponseHeader, outcome: i32, from_check: bool) -> RemotingCommand {
    let (_, commit_log_offset) = decode_message_id(&sent.msg_id).unwrap();
    RemotingCommand::request(request_code::END_TRANSACTION).with_header(
        &EndTransactionRequestHeader {
            topic: None,
            producer_group: GROUP.into(),
            tran_state_table_offset: sent.queue_offset,
            commit_log_offset,
            commit_or_rollback: outcome,
            from_transaction_check: Some(from_check),
            msg_id: sent.msg_id.clone(),
            transaction_id: sent.transaction_id.clone(),
        },
    )
}

/// What a consumer sees of `topic` within `within`, returning early once
/// `want` messages arrived.
async fn consumer_sees(
    c: &mq_remoting::RemotingClient,
    broker: &str,
    topic: &str,
    want: usize,
    within: Duration,
) -> Vec<MessageExt> {
    heartbeat_consumer(c, broker, "consumer-1", "tx-consumer", &[(topic, "*")]).await;
    pull_all(c, broker, "tx-consumer", topic, 1, want, within).await
}

/// Everything queue 0 of `topic` holds now, as a consumer pulls it. Exact
/// right after an acknowledged END_TRANSACTION: the broker writes the
/// committed message before it answers.
async fn delivered_now(
    c: &mq_remoting::RemotingClient,
    broker: &str,
    topic: &str,
) -> Vec<MessageExt> {
    heartbeat_consumer(c, broker, "consumer-1", "tx-consumer", &[(topic, "*")]).await;
    pull_to_end(c, broker, "tx-consumer", topic, 0).await
}

/// The half messages the broker still waits on an outcome for
/// (GET_TRANSACTION_HALF_STATUS, what operators see).
async fn pending_halves(
    c: &mq_remoting::RemotingClient,
    broker: &str,
) -> Vec<mq_broker::transaction::PendingHalf> {
    let status = call(
        c,
        broker,
        RemotingCommand::request(request_code::GET_TRANSACTION_HALF_STATUS),
    )
    .await;
    let status: mq_broker::transaction::HalfStatus = serde_json::from_slice(&status.body).unwrap();
    status.pending
}

/// What queue 0 of `topic` holds once no half message is pending: a half
/// message gets one outcome only, so nothing can be committed after that.
async fn delivered_when_settled(
    c: &mq_remoting::RemotingClient,
    broker: &str,
    topic: &str,
) -> Vec<MessageExt> {
    wait_for("every half message to have an outcome", || async {
        pending_halves(c, broker).await.is_empty().then_some(())
    })
    .await;
    delivered_now(c, broker, topic).await
}

#[tokio::test]
async fn commit_delivers_once_and_rollback_never() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        // No check-back during this test.
        b.transaction_time_out = 3_600_000;
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, "Tx", 1).await;
    let committed = send(&c, &broker.addr, half("Tx", b"commit me")).await;
    let rolled_back = send(&c, &broker.addr, half("Tx", b"roll me back")).await;
    assert!(committed.transaction_id.is_some());
    assert!(
        delivered_now(&c, &broker.addr, "Tx").await.is_empty(),
        "half messages are invisible"
    );
    assert_eq!(pending_halves(&c, &broker.addr).await.len(), 2);

    for _ in 0..3 {
        // Repeated outcomes are harmless.
        let r = call(
            &c,
            &broker.addr,
            end(&committed, sys_flag::TRANSACTION_COMMIT_TYPE, false),
        )
        .await;
        assert_eq!(code(&r), Some(ResponseCode::SUCCESS), "{:?}", r.remark);
        let r = call(
            &c,
            &broker.addr,
            end(&rolled_back, sys_flag::TRANSACTION_ROLLBACK_TYPE, false),
        )
        .await;
        assert_eq!(code(&r), Some(ResponseCode::SUCCESS), "{:?}", r.remark);
    }
    // A late contrary outcome changes nothing either.
    call(
        &c,
        &broker.addr,
        end(&rolled_back, sys_flag::TRANSACTION_COMMIT_TYPE, false),
    )
    .await;

    let seen = delivered_when_settled(&c, &broker.addr, "Tx").await;
    assert_eq!(seen.len(), 1, "committed exactly once, rolled back never");
    assert_eq!(&seen[0].body[..], b"commit me");
    assert_eq!(seen[0].property("TRAN_MSG"), None);
    assert_eq!(
        sys_flag::transaction_type(seen[0].sys_flag),
        sys_flag::TRANSACTION_COMMIT_TYPE
    );

    // An END_TRANSACTION that points at no half message is refused.
    let mut bogus = committed.clone();
    bogus.msg_id = mq_protocol::message::encode_message_id("127.0.0.1:1".parse().unwrap(), 1 << 40);
    let r = call(
        &c,
        &broker.addr,
        end(&bogus, sys_flag::TRANSACTION_COMMIT_TYPE, false),
    )
    .await;
    assert_eq!(code(&r), Some(ResponseCode::SYSTEM_ERROR));
}

/// Outcomes for many halves at once, several for each, under SYNC_FLUSH
/// (where each outcome's writes wait for a flush): every half gets exactly
/// one outcome. Halves told only "commit" are delivered once, halves told
/// only "roll back" never, halves told both at once at most once.
#[tokio::test]
async fn concurrent_outcomes_give_each_half_exactly_one() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, s| {
        b.transaction_time_out = 3_600_000;
        s.flush_disk_type = mq_store::FlushDiskType::SyncFlush;
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, "TxMany", 1).await;
    const EACH: usize = 20;
    let mut halves = Vec::new();
    for kind in ["commit", "rollback", "both"] {
        for i in 0..EACH {
            let body = format!("{kind} {i}");
            let sent = send(&c, &broker.addr, half("TxMany", body.as_bytes())).await;
            halves.push((kind, sent));
        }
    }
    let mut calls = tokio::task::JoinSet::new();
    for (kind, sent) in &halves {
        let outcomes: &[(i32, bool)] = match *kind {
            "commit" => &[
                (sys_flag::TRANSACTION_COMMIT_TYPE, false),
                (sys_flag::TRANSACTION_COMMIT_TYPE, false),
                (sys_flag::TRANSACTION_COMMIT_TYPE, true),
            ],
            "rollback" => &[
                (sys_flag::TRANSACTION_ROLLBACK_TYPE, false),
                (sys_flag::TRANSACTION_ROLLBACK_TYPE, true),
            ],
            _ => &[
                (sys_flag::TRANSACTION_COMMIT_TYPE, false),
                (sys_flag::TRANSACTION_ROLLBACK_TYPE, true),
                (sys_flag::TRANSACTION_COMMIT_TYPE, true),
            ],
        };
        for &(outcome, from_check) in outcomes {
            let (c, addr, request) = (
                c.clone(),
                broker.addr.clone(),
                end(sent, outcome, from_check),
            );
            calls.spawn(async move { call(&c, &addr, request).await });
        }
    }
    while let Some(r) = calls.join_next().await {
        let r = r.unwrap();
        assert_eq!(code(&r), Some(ResponseCode::SUCCESS), "{:?}", r.remark);
    }
    let seen = delivered_when_settled(&c, &broker.addr, "TxMany").await;
    let bodies: Vec<String> = seen
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    let mut unique = bodies.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        bodies.len(),
        "a half delivered twice: {bodies:?}"
    );
    for i in 0..EACH {
        assert!(
            bodies.contains(&format!("commit {i}")),
            "commit {i} lost: {bodies:?}"
        );
    }
    assert!(
        !bodies.iter().any(|b| b.starts_with("rollback")),
        "a rolled back half delivered: {bodies:?}"
    );
}

/// A producer that answers check-backs with a fixed outcome.
struct Checker {
    outcome: i32,
    checks: Arc<AtomicUsize>,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
}

fn checker(
    outcome: i32,
) -> (
    Checker,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    let checks = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    (
        Checker {
            outcome,
            checks: checks.clone(),
            bodies: bodies.clone(),
        },
        checks,
        bodies,
    )
}

#[async_trait]
impl RequestHandler for Checker {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        if request.code != request_code::CHECK_TRANSACTION_STATE {
            return Ok(Some(mq_remoting::not_supported(&request)));
        }
        self.checks.fetch_add(1, Ordering::SeqCst);
        let header: CheckTransactionStateRequestHeader = request.header()?;
        let (msg, _) = MessageExt::decode(&request.body, false)?;
        assert_eq!(msg.topic, "Tx", "the check carries the real topic");
        self.bodies
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&msg.body).into_owned());
        if self.outcome != sys_flag::TRANSACTION_NOT_TYPE {
            let end = RemotingCommand::request(request_code::END_TRANSACTION)
                .with_header(&EndTransactionRequestHeader {
                    topic: header.topic.clone(),
                    producer_group: GROUP.into(),
                    tran_state_table_offset: header.tran_state_table_offset,
                    commit_log_offset: header.commit_log_offset,
                    commit_or_rollback: self.outcome,
                    from_transaction_check: Some(true),
                    msg_id: header.msg_id.clone().unwrap_or_default(),
                    transaction_id: header.transaction_id.clone(),
                })
                .oneway();
            channel.oneway(end).await?;
        }
        Ok(None)
    }
}

#[tokio::test]
async fn an_unknown_outcome_is_checked_back_and_committed() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let (handler, checks, checked) = checker(sys_flag::TRANSACTION_COMMIT_TYPE);
    let producer = client_with(Arc::new(handler));
    create_topic(&producer, &broker.addr, "Tx", 1).await;
    heartbeat_producer(&producer, &broker.addr, "producer-1", GROUP).await;
    let sent = send(&producer, &broker.addr, half("Tx", b"decided later")).await;
    call(
        &producer,
        &broker.addr,
        end(&sent, sys_flag::TRANSACTION_NOT_TYPE, false),
    )
    .await;

    let c = client();
    let seen = consumer_sees(&c, &broker.addr, "Tx", 1, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 1, "the check-back committed the message");
    let again = delivered_when_settled(&c, &broker.addr, "Tx").await;
    assert_eq!(again.len(), 1, "and only once, though checks may repeat");
    assert!(checks.load(Ordering::SeqCst) >= 1);
    assert!(checked.lock().unwrap().iter().all(|b| b == "decided later"));
}

#[tokio::test]
async fn a_second_producer_of_the_group_answers_when_the_first_is_gone_and_outcomes_survive_restart(
) {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.transaction_time_out = 3_600_000
    })
    .await;
    // The first producer sends a half message and one committed message, then dies.
    {
        let first = client();
        create_topic(&first, &broker.addr, "Tx", 1).await;
        heartbeat_producer(&first, &broker.addr, "producer-1", GROUP).await;
        let done = send(
            &first,
            &broker.addr,
            half("Tx", b"committed before restart"),
        )
        .await;
        call(
            &first,
            &broker.addr,
            end(&done, sys_flag::TRANSACTION_COMMIT_TYPE, false),
        )
        .await;
        send(&first, &broker.addr, half("Tx", b"pending across restart")).await;
    }
    broker.stop().await;
    // After a restart with short check timings, a new producer of the group answers.
    let broker = start_broker("broker-a", dir.path(), &ns.addr).await;
    let (handler, checks, bodies) = checker(sys_flag::TRANSACTION_COMMIT_TYPE);
    let second = client_with(Arc::new(handler));
    heartbeat_producer(&second, &broker.addr, "producer-2", GROUP).await;
    let c = client();
    let seen = consumer_sees(&c, &broker.addr, "Tx", 2, Duration::from_secs(10)).await;
    let mut delivered: Vec<_> = seen
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        vec!["committed before restart", "pending across restart"]
    );
    assert!(checks.load(Ordering::SeqCst) >= 1);
    assert!(
        bodies
            .lock()
            .unwrap()
            .iter()
            .all(|b| b == "pending across restart"),
        "only the pending half is checked"
    );
}

#[tokio::test]
async fn a_half_message_checked_too_often_is_discarded_not_delivered() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.transaction_check_max = 2
    })
    .await;
    let (handler, checks, checked) = checker(sys_flag::TRANSACTION_NOT_TYPE);
    let undecided = client_with(Arc::new(handler));
    create_topic(&undecided, &broker.addr, "Tx", 1).await;
    heartbeat_producer(&undecided, &broker.addr, "producer-1", GROUP).await;
    send(&undecided, &broker.addr, half("Tx", b"never decided")).await;

    let c = client();
    heartbeat_consumer(
        &c,
        &broker.addr,
        "ops",
        "ops",
        &[("TRANS_CHECK_MAX_TIME_TOPIC", "*")],
    )
    .await;
    let kept = pull_all(
        &c,
        &broker.addr,
        "ops",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        1,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(kept.len(), 1, "kept for operators");
    assert_eq!(kept[0].property("REAL_TOPIC"), Some("Tx"));
    assert_eq!(
        checks.load(Ordering::SeqCst),
        2,
        "checked transactionCheckMax times"
    );
    assert_eq!(
        *checked.lock().unwrap(),
        vec!["never decided", "never decided"]
    );
    // Operators see no pending half any more, and it was never delivered.
    assert!(
        delivered_when_settled(&c, &broker.addr, "Tx")
            .await
            .is_empty(),
        "never delivered"
    );
    assert!(pending_halves(&c, &broker.addr).await.is_empty());
}

#[tokio::test]
async fn operators_see_pending_half_messages() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_with("broker-a", dir.path(), &ns.addr, |b, _| {
        b.transaction_time_out = 3_600_000
    })
    .await;
    let c = client();
    create_topic(&c, &broker.addr, "Tx", 1).await;
    send(&c, &broker.addr, half("Tx", b"a")).await;
    let done = send(&c, &broker.addr, half("Tx", b"b")).await;
    call(
        &c,
        &broker.addr,
        end(&done, sys_flag::TRANSACTION_ROLLBACK_TYPE, false),
    )
    .await;
    let pending = pending_halves(&c, &broker.addr).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].topic, "Tx");
    assert_eq!(pending[0].producer_group, GROUP);
    assert_eq!(pending[0].check_times, 0);
}
