//! The RPCs of `MessagingService`. Each is a method of [`Proxy`] returning
//! `Result<_, ProxyError>`; the tonic trait impl at the bottom turns that
//! into the response's `Status` (RocketMQ's SDKs read the status inside
//! the response, not the gRPC status, which stays OK).

use std::pin::Pin;

use mq_client::{LocalTransactionState, SendStatus};
use mq_protocol::message::decode_message_id;
use mq_protocol::route::TopicRouteData;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Streaming};
use tracing::{debug, warn};

use crate::auth::{Guarded, Principal};
use crate::convert::{self, SendKind};
use crate::pb::messaging_service_server::MessagingService;
use crate::pb::telemetry_command::Command;
use crate::pb::*;
use crate::sessions::OUTBOX_LEN;
use crate::status::{self, ProxyError};
use crate::transaction::HalfRef;
use crate::Proxy;

/// The metadata key of the client's id (every 5.x SDK sends it).
pub(crate) const CLIENT_ID: &str = "x-mq-client-id";

/// RocketMQ's permission bits of a queue.
const PERM_READ: i32 = 4;
const PERM_WRITE: i32 = 2;

fn client_id<T>(request: &Request<T>) -> Result<String, ProxyError> {
    request
        .metadata()
        .get(CLIENT_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ProxyError::new(Code::ClientIdRequired, "no x-mq-client-id header"))
}

/// The 5.x message queues of a 4.x route, all reached through `endpoints`.
pub(crate) fn message_queues(
    topic: &str,
    route: &TopicRouteData,
    endpoints: &Endpoints,
) -> Vec<MessageQueue> {
    let mut queues = Vec::new();
    let mut datas = route.queue_datas.clone();
    datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    for data in &datas {
        let count = data.read_queue_nums.max(data.write_queue_nums).max(0);
        for id in 0..count {
            let read = id < data.read_queue_nums && data.perm & PERM_READ != 0;
            let write = id < data.write_queue_nums && data.perm & PERM_WRITE != 0;
            let permission = match (read, write) {
                (true, true) => Permission::ReadWrite,
                (true, false) => Permission::Read,
                (false, true) => Permission::Write,
                (false, false) => Permission::None,
            };
            queues.push(MessageQueue {
                topic: Some(Resource {
                    resource_namespace: String::new(),
                    name: topic.to_owned(),
                }),
                id,
                permission: permission as i32,
                broker: Some(Broker {
                    name: data.broker_name.clone(),
                    id: 0,
                    endpoints: Some(endpoints.clone()),
                }),
                accept_message_types: vec![
                    MessageType::Normal as i32,
                    MessageType::Fifo as i32,
                    MessageType::Delay as i32,
                    MessageType::Transaction as i32,
                ],
            });
        }
    }
    queues
}

impl Proxy {
    /// The ACL check of one call: nothing when ACL is off.
    fn guard<T: Guarded>(&self, request: &Request<T>) -> Result<(), ProxyError> {
        let Some(acl) = &self.inner.acl else {
            return Ok(());
        };
        let remote = request.remote_addr().map(|a| a.ip());
        acl.check(remote, request.metadata(), &request.get_ref().needs())
            .inspect_err(|error| debug!(?remote, %error, "ACL refused a 5.x call"))
    }

    pub(crate) async fn route(&self, topic: &str) -> Result<TopicRouteData, ProxyError> {
        let route = self.inner.admin.topic_route(topic).await.map_err(|error| {
            let proxy_error = ProxyError::from(error);
            if proxy_error.code == Code::TopicNotFound {
                ProxyError::new(Code::TopicNotFound, format!("topic {topic} does not exist"))
            } else {
                proxy_error
            }
        })?;
        if route.queue_datas.is_empty() {
            return Err(ProxyError::new(
                Code::TopicNotFound,
                format!("topic {topic} has no queues"),
            ));
        }
        Ok(route)
    }

    pub(crate) async fn query_route(
        &self,
        request: QueryRouteRequest,
    ) -> Result<Vec<MessageQueue>, ProxyError> {
        let topic = convert::topic_name(request.topic.as_ref())?;
        let endpoints = request
            .endpoints
            .filter(|e| !e.addresses.is_empty())
            .ok_or_else(|| ProxyError::bad_request("the request names no endpoints"))?;
        let route = self.route(&topic).await?;
        Ok(message_queues(&topic, &route, &endpoints))
    }

    async fn send_one(
        &self,
        client_id: &str,
        message: Message,
    ) -> Result<SendResultEntry, ProxyError> {
        let outbound = convert::outbound(message)?;
        let topic = outbound.message.topic.clone();
        let (result, transaction_id) = match outbound.kind {
            SendKind::Normal | SendKind::Delay => (
                self.inner
                    .producer
                    .send(outbound.message)
                    .await
                    .map_err(|e| status::delivery_time_refusal(e.into()))?,
                None,
            ),
            SendKind::Fifo { group } => (
                self.inner
                    .producer
                    .send_ordered(outbound.message, &group)
                    .await?,
                None,
            ),
            SendKind::Transaction => {
                self.inner.sessions.add_topic(client_id, &topic);
                let (result, handle) = self.inner.transactions.send_half(outbound.message).await?;
                let half = HalfRef {
                    broker_addr: handle.broker_addr,
                    commit_log_offset: handle.commit_log_offset,
                    queue_offset: handle.queue_offset,
                };
                (result, Some(half.encode()))
            }
        };
        let code = match result.status {
            SendStatus::SendOk => Code::Ok,
            SendStatus::FlushDiskTimeout => Code::MasterPersistenceTimeout,
            SendStatus::FlushSlaveTimeout => Code::SlavePersistenceTimeout,
            SendStatus::SlaveNotAvailable => Code::HaNotAvailable,
        };
        let offset = match decode_message_id(&result.offset_msg_id) {
            Ok(_) => result.queue_offset,
            Err(_) => -1,
        };
        Ok(SendResultEntry {
            status: Some(Status {
                code: code as i32,
                message: format!("{:?}", result.status),
            }),
            message_id: result.msg_id,
            transaction_id: transaction_id.unwrap_or_default(),
            offset,
            recall_handle: String::new(),
        })
    }

    pub(crate) async fn send_message(
        &self,
        client_id: &str,
        request: SendMessageRequest,
    ) -> (Status, Vec<SendResultEntry>) {
        if request.messages.is_empty() {
            return (
                ProxyError::bad_request("no messages to send").status(),
                vec![],
            );
        }
        let mut entries = Vec::with_capacity(request.messages.len());
        for message in request.messages {
            let message_id = message
                .system_properties
                .as_ref()
                .map(|s| s.message_id.clone())
                .unwrap_or_default();
            let entry = match self.send_one(client_id, message).await {
                Ok(entry) => entry,
                Err(error) => {
                    debug!(%error, "send refused");
                    SendResultEntry {
                        status: Some(error.status()),
                        message_id,
                        ..Default::default()
                    }
                }
            };
            entries.push(entry);
        }
        let codes: Vec<i32> = entries
            .iter()
            .map(|e| e.status.as_ref().map_or(0, |s| s.code))
            .collect();
        let overall = if codes.iter().all(|c| *c == codes[0]) {
            entries[0].status.clone().unwrap_or_else(status::ok)
        } else {
            Status {
                code: Code::MultipleResults as i32,
                message: "the messages have different results".into(),
            }
        };
        (overall, entries)
    }

    pub(crate) async fn end_transaction(
        &self,
        request: EndTransactionRequest,
    ) -> Result<(), ProxyError> {
        let topic = convert::topic_name(request.topic.as_ref())?;
        let half = HalfRef::decode(&request.transaction_id)?;
        let state = match request.resolution() {
            TransactionResolution::Commit => LocalTransactionState::Commit,
            TransactionResolution::Rollback => LocalTransactionState::Rollback,
            TransactionResolution::Unspecified => {
                return Err(ProxyError::bad_request(
                    "the resolution is neither COMMIT nor ROLLBACK",
                ))
            }
        };
        let handle = half.handle(&topic, &request.message_id);
        self.inner
            .transactions
            .end_transaction(&handle, state)
            .await?;
        Ok(())
    }

    /// The policy of the consumer group `settings` name, read from a
    /// master serving the first subscribed topic; `None` for producers or
    /// when no broker answers.
    async fn group_policy(&self, settings: &Settings) -> Option<crate::consumer::GroupPolicy> {
        let Some(settings::PubSub::Subscription(subscription)) = &settings.pub_sub else {
            return None;
        };
        let group = subscription.group.as_ref().map(|g| g.name.as_str())?;
        if let Some(policy) = self.inner.consumers.cached_policy(group) {
            return Some(policy);
        }
        let topic = subscription
            .subscriptions
            .iter()
            .find_map(|s| s.topic.as_ref())?;
        let route = self.route(&topic.name).await.ok()?;
        let master = route
            .broker_datas
            .iter()
            .find_map(|b| b.broker_addrs.get(&0))?;
        Some(
            self.inner
                .consumers
                .policy(&self.inner.admin, group, master)
                .await,
        )
    }

    /// The settings the proxy answers a client's settings with: the
    /// client's own, completed with the server side's values (for a
    /// consumer, its group's FIFO flag and delivery attempts).
    fn answer_settings(
        &self,
        mut settings: Settings,
        policy: Option<crate::consumer::GroupPolicy>,
    ) -> Settings {
        use settings::PubSub;
        if let Some(policy) = policy {
            if let Some(PubSub::Subscription(subscription)) = &mut settings.pub_sub {
                subscription.fifo = Some(policy.fifo || subscription.fifo.unwrap_or(false));
            }
            if let Some(backoff) = settings.backoff_policy.as_mut() {
                backoff.max_attempts = policy.max_attempts;
            }
        }
        let max_attempts = policy.map_or(DEFAULT_MAX_ATTEMPTS, |p| p.max_attempts);
        match &mut settings.pub_sub {
            Some(PubSub::Publishing(publishing)) => {
                publishing.max_body_size = MAX_BODY_SIZE;
            }
            Some(PubSub::Subscription(subscription)) => {
                subscription.receive_batch_size.get_or_insert(32);
                subscription
                    .long_polling_timeout
                    .get_or_insert(prost_types::Duration {
                        seconds: 20,
                        nanos: 0,
                    });
            }
            None => {}
        }
        settings.backoff_policy.get_or_insert(RetryPolicy {
            max_attempts,
            strategy: Some(retry_policy::Strategy::ExponentialBackoff(
                ExponentialBackoff {
                    initial: Some(prost_types::Duration {
                        seconds: 1,
                        nanos: 0,
                    }),
                    max: Some(prost_types::Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    multiplier: 2.0,
                },
            )),
        });
        settings
    }

    /// One command a client sent on its telemetry stream; the answer to
    /// send back, if any.
    async fn on_telemetry(
        &self,
        client_id: &str,
        principal: &Principal,
        command: TelemetryCommand,
    ) -> Option<TelemetryCommand> {
        match command.command {
            Some(Command::Settings(settings)) => {
                if let Some(acl) = &self.inner.acl {
                    if let Err(error) = acl.authorize(principal, &settings.needs()) {
                        debug!(client_id, %error, "ACL refused a client's settings");
                        return Some(TelemetryCommand {
                            status: Some(error.status()),
                            command: None,
                        });
                    }
                }
                let policy = self.group_policy(&settings).await;
                let answer = self.answer_settings(settings, policy);
                // Kept as answered: a consumer group that is FIFO on the
                // broker is FIFO for this client too.
                self.inner.sessions.set_settings(client_id, answer.clone());
                Some(TelemetryCommand {
                    status: Some(status::ok()),
                    command: Some(Command::Settings(answer)),
                })
            }
            // Answers to commands an operator asked the proxy to send; the
            // proxy sends none of those, so an answer is only noted.
            Some(Command::ThreadStackTrace(answer)) => {
                debug!(
                    client_id,
                    nonce = answer.nonce,
                    "thread stack trace received"
                );
                None
            }
            Some(Command::VerifyMessageResult(answer)) => {
                debug!(
                    client_id,
                    nonce = answer.nonce,
                    "verify message result received"
                );
                None
            }
            Some(other) => Some(TelemetryCommand {
                status: Some(
                    ProxyError::bad_request(format!(
                        "{} is a command of the server, not of a client",
                        command_name(&other)
                    ))
                    .status(),
                ),
                command: None,
            }),
            None => Some(TelemetryCommand {
                status: Some(
                    ProxyError::bad_request("a telemetry command without a command").status(),
                ),
                command: None,
            }),
        }
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Settings(_) => "Settings",
        Command::ThreadStackTrace(_) => "ThreadStackTrace",
        Command::VerifyMessageResult(_) => "VerifyMessageResult",
        Command::RecoverOrphanedTransactionCommand(_) => "RecoverOrphanedTransactionCommand",
        Command::PrintThreadStackTraceCommand(_) => "PrintThreadStackTraceCommand",
        Command::VerifyMessageCommand(_) => "VerifyMessageCommand",
        Command::ReconnectEndpointsCommand(_) => "ReconnectEndpointsCommand",
        Command::NotifyUnsubscribeLiteCommand(_) => "NotifyUnsubscribeLiteCommand",
    }
}

/// The largest body a producer may send (our broker's `maxMessageSize`
/// default, 4 MiB).
const MAX_BODY_SIZE: i32 = 4 * 1024 * 1024;
/// Delivery attempts before a message goes to the dead letter queue
/// (RocketMQ's 16 retries plus the first delivery).
pub(crate) const DEFAULT_MAX_ATTEMPTS: i32 = 17;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// The call's deadline from its `grpc-timeout` header (`<digits><unit>`).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    use std::time::Duration;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl MessagingService for Proxy {
    async fn query_route(
        &self,
        request: Request<QueryRouteRequest>,
    ) -> Result<Response<QueryRouteResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::query_route(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(QueryRouteResponse {
            status: Some(status::of(&result)),
            message_queues: result.unwrap_or_default(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, tonic::Status> {
        let result = self
            .guard(&request)
            .and_then(|()| client_id(&request).map(drop));
        Ok(Response::new(HeartbeatResponse {
            status: Some(status::of(&result)),
        }))
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, tonic::Status> {
        let client = match self.guard(&request).and_then(|()| client_id(&request)) {
            Ok(id) => id,
            Err(error) => {
                return Ok(Response::new(SendMessageResponse {
                    status: Some(error.status()),
                    entries: vec![],
                }))
            }
        };
        let (status, entries) = Proxy::send_message(self, &client, request.into_inner()).await;
        Ok(Response::new(SendMessageResponse {
            status: Some(status),
            entries,
        }))
    }

    async fn query_assignment(
        &self,
        request: Request<QueryAssignmentRequest>,
    ) -> Result<Response<QueryAssignmentResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::query_assignment(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(QueryAssignmentResponse {
            status: Some(status::of(&result)),
            assignments: result.unwrap_or_default(),
        }))
    }

    type ReceiveMessageStream = BoxStream<ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        request: Request<ReceiveMessageRequest>,
    ) -> Result<Response<Self::ReceiveMessageStream>, tonic::Status> {
        use receive_message_response::Content;
        let deadline = grpc_timeout(request.metadata());
        let result = match self.guard(&request).and_then(|()| client_id(&request)) {
            Ok(client) => self.receive(&client, request.into_inner(), deadline).await,
            Err(error) => Err(error),
        };
        let answers: Vec<Content> = match result {
            Ok(received) if received.messages.is_empty() => vec![Content::Status(
                ProxyError::new(Code::MessageNotFound, "no new message").status(),
            )],
            Ok(received) => std::iter::once(Content::Status(status::ok()))
                .chain(received.messages.into_iter().map(Content::Message))
                .collect(),
            Err(error) => vec![Content::Status(error.status())],
        };
        let stream = tokio_stream::iter(answers.into_iter().map(|content| {
            Ok(ReceiveMessageResponse {
                content: Some(content),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn ack_message(
        &self,
        request: Request<AckMessageRequest>,
    ) -> Result<Response<AckMessageResponse>, tonic::Status> {
        let acked = match self.guard(&request) {
            Ok(()) => self.ack(request.into_inner()).await,
            Err(error) => Err(error),
        };
        let (status, entries) = match acked {
            Ok(answer) => answer,
            Err(error) => (error.status(), vec![]),
        };
        Ok(Response::new(AckMessageResponse {
            status: Some(status),
            entries,
        }))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<Response<ForwardMessageToDeadLetterQueueResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => self.forward_to_dlq(request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(ForwardMessageToDeadLetterQueueResponse {
            status: Some(status::of(&result)),
        }))
    }

    type PullMessageStream = BoxStream<PullMessageResponse>;

    async fn pull_message(
        &self,
        request: Request<PullMessageRequest>,
    ) -> Result<Response<Self::PullMessageStream>, tonic::Status> {
        use pull_message_response::Content;
        let pulled = match self.guard(&request) {
            Ok(()) => self.pull(request.into_inner()).await,
            Err(error) => Err(error),
        };
        let answers: Vec<Content> = match pulled {
            Ok((messages, next)) => std::iter::once(Content::Status(status::ok()))
                .chain(messages.into_iter().map(Content::Message))
                .chain(std::iter::once(Content::NextOffset(next)))
                .collect(),
            Err(error) => vec![Content::Status(error.status())],
        };
        let stream = tokio_stream::iter(answers.into_iter().map(|content| {
            Ok(PullMessageResponse {
                content: Some(content),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn update_offset(
        &self,
        request: Request<UpdateOffsetRequest>,
    ) -> Result<Response<UpdateOffsetResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::update_offset(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(UpdateOffsetResponse {
            status: Some(status::of(&result)),
        }))
    }

    async fn get_offset(
        &self,
        request: Request<GetOffsetRequest>,
    ) -> Result<Response<GetOffsetResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::get_offset(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(GetOffsetResponse {
            status: Some(status::of(&result)),
            offset: result.unwrap_or(-1),
        }))
    }

    async fn query_offset(
        &self,
        request: Request<QueryOffsetRequest>,
    ) -> Result<Response<QueryOffsetResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::query_offset(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(QueryOffsetResponse {
            status: Some(status::of(&result)),
            offset: result.unwrap_or(-1),
        }))
    }

    async fn end_transaction(
        &self,
        request: Request<EndTransactionRequest>,
    ) -> Result<Response<EndTransactionResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::end_transaction(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            debug!(%error, "EndTransaction refused");
        }
        Ok(Response::new(EndTransactionResponse {
            status: Some(status::of(&result)),
        }))
    }

    type TelemetryStream = BoxStream<TelemetryCommand>;

    async fn telemetry(
        &self,
        request: Request<Streaming<TelemetryCommand>>,
    ) -> Result<Response<Self::TelemetryStream>, tonic::Status> {
        let client = client_id(&request).map_err(|e| tonic::Status::invalid_argument(e.message))?;
        let principal = match &self.inner.acl {
            None => Principal::Trusted,
            Some(acl) => {
                let remote = request.remote_addr().map(|a| a.ip());
                match acl.authenticate(remote, request.metadata()) {
                    Ok(principal) => principal,
                    Err(error) => {
                        // Answered in the stream, as every refusal, then closed.
                        debug!(client, %error, "ACL refused a telemetry stream");
                        let refusal = TelemetryCommand {
                            status: Some(error.status()),
                            command: None,
                        };
                        return Ok(Response::new(Box::pin(tokio_stream::iter([Ok(refusal)]))));
                    }
                }
            }
        };
        let mut closing = self.inner.closing.subscribe();
        if *closing.borrow() {
            return Err(tonic::Status::unavailable("the proxy is stopping"));
        }
        let mut inbound = request.into_inner();
        let (outbox, rx) = mpsc::channel(OUTBOX_LEN);
        let generation = self.inner.sessions.open(&client, outbox.clone());
        let proxy = self.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = inbound.next() => next,
                    // The proxy stops: end the answer stream (this task
                    // holds one of its senders, the sessions the other).
                    _ = closing.wait_for(|closing| *closing) => None,
                };
                let Some(next) = next else { break };
                match next {
                    Ok(command) => {
                        if let Some(answer) = proxy.on_telemetry(&client, &principal, command).await
                        {
                            if outbox.send(Ok(answer)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Err(error) => {
                        warn!(client, %error, "telemetry stream failed");
                        break;
                    }
                }
            }
            proxy.inner.sessions.close(&client, generation);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn notify_client_termination(
        &self,
        request: Request<NotifyClientTerminationRequest>,
    ) -> Result<Response<NotifyClientTerminationResponse>, tonic::Status> {
        let result = self
            .guard(&request)
            .and_then(|()| client_id(&request))
            .map(|id| self.inner.sessions.terminate(&id));
        Ok(Response::new(NotifyClientTerminationResponse {
            status: Some(status::of(&result)),
        }))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<ChangeInvisibleDurationRequest>,
    ) -> Result<Response<ChangeInvisibleDurationResponse>, tonic::Status> {
        let result = match self.guard(&request) {
            Ok(()) => Proxy::change_invisible_duration(self, request.into_inner()).await,
            Err(error) => Err(error),
        };
        Ok(Response::new(ChangeInvisibleDurationResponse {
            status: Some(status::of(&result)),
            receipt_handle: result.unwrap_or_default(),
        }))
    }

    async fn recall_message(
        &self,
        request: Request<RecallMessageRequest>,
    ) -> Result<Response<RecallMessageResponse>, tonic::Status> {
        let refused = self.guard(&request).err().unwrap_or_else(|| {
            ProxyError::new(Code::Unsupported, "recalling messages is not supported")
        });
        Ok(Response::new(RecallMessageResponse {
            status: Some(refused.status()),
            message_id: String::new(),
        }))
    }

    async fn sync_lite_subscription(
        &self,
        request: Request<SyncLiteSubscriptionRequest>,
    ) -> Result<Response<SyncLiteSubscriptionResponse>, tonic::Status> {
        let refused = self
            .guard(&request)
            .err()
            .unwrap_or_else(|| ProxyError::new(Code::Unsupported, "lite topics are not supported"));
        Ok(Response::new(SyncLiteSubscriptionResponse {
            status: Some(refused.status()),
        }))
    }
}
