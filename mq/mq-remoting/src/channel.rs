//! One live connection, seen from either end, and the tasks that drive it.
//!
//! A connection is full duplex: either side sends requests and both sides
//! answer them. The driver reads frames in one task and writes in another;
//! every incoming request is polled once in the read loop and, if it is not
//! done then, moves to a task of its own, so a slow request (a long poll)
//! never holds up the ones behind it; the answers of the requests that
//! finished at once go to the writer together, one write per read. Every
//! incoming response is matched by opaque to the [`Channel::invoke`]
//! waiting for it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use mq_protocol::frame::flag;
use mq_protocol::{RemotingCommand, ResponseCode};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::connection::{Connection, FrameReader, FrameWriter};
use crate::deadline::{ReadLimit, ReadLimits};
use crate::error::{HandlerError, RemotingError};

/// Frames waiting for the writer task. A full queue makes senders wait,
/// which pushes back on a peer that does not read its responses.
const OUTBOUND_QUEUE: usize = 4096;

/// The writer stops gathering queued frames into one write at this size.
const MAX_WRITE_BATCH: usize = 1024 * 1024;

/// How long a closing connection may take to send its last frames.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// Default cap on requests of one connection being handled at once. Beyond
/// it a request is answered SYSTEM_BUSY at once, as RocketMQ does when its
/// processor pool is full; long polls count against it.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 4096;

static NEXT_CHANNEL_ID: AtomicU64 = AtomicU64::new(1);

/// Serves the requests a peer sends over a connection.
///
/// The same trait serves both ends: the name server and the broker implement
/// it for clients' requests, and the client implements it for the requests a
/// broker sends back (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED,
/// GET_CONSUMER_RUNNING_INFO).
#[async_trait]
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one request. `Ok(Some(response))` is sent back with the
    /// request's opaque and serialize type filled in; `Ok(None)` sends
    /// nothing; `Err(e)` sends SYSTEM_ERROR with `e` as the remark. Nothing
    /// is ever sent for a oneway request.
    ///
    /// Requests of one connection run concurrently; `channel` can be cloned
    /// and kept to call the peer back later.
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError>;

    /// A connection opened.
    fn on_open(&self, _channel: &Channel) {}

    /// A connection closed (peer gone, bad frame, [`Channel::close`] or
    /// shutdown). Called once per channel, after its pending invokes failed.
    fn on_close(&self, _channel: &Channel) {}
}

/// A handler that answers every request REQUEST_CODE_NOT_SUPPORTED: for
/// clients that expect no requests from servers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotSupportedHandler;

#[async_trait]
impl RequestHandler for NotSupportedHandler {
    async fn handle(
        &self,
        _channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        Ok(Some(not_supported(&request)))
    }
}

/// The REQUEST_CODE_NOT_SUPPORTED answer to `request`, with RocketMQ's remark.
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
        .with_remark(format!("request type {} not supported", request.code))
}

/// A cloneable handle on one live connection: who is at the other end, and
/// a way to send it requests.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    outbound: mpsc::Sender<Outbound>,
    pending: Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>,
    next_opaque: AtomicI32,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for Channel {}

impl Channel {
    /// Unique within the process; stable for the life of the connection.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves once the connection is closed.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.subscribe();
        // An error means the sender is gone, which also means closed.
        wait_true(&mut closed).await;
    }

    /// Closes the connection: requests in flight are abandoned, pending
    /// invokes fail with [`RemotingError::ConnectionClosed`].
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Sends `request` and waits up to `timeout` for its response. The opaque
    /// is assigned here. The response is returned whatever its code (see
    /// [`check_success`](crate::check_success)).
    pub async fn invoke(
        &self,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let opaque = self.next_opaque();
        request.opaque = opaque;
        request.flag &= !(flag::RESPONSE | flag::ONEWAY);
        let code = request.code;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(opaque, tx);
        // Checked after inserting: the driver marks the channel closed before
        // it drops the pending senders, so one of the two sees the other.
        if self.is_closed() {
            self.lock_pending().remove(&opaque);
            return Err(self.closed_error());
        }
        let exchange = async {
            self.inner
                .outbound
                .send(Outbound::Command(request))
                .await
                .map_err(|_| self.closed_error())?;
            rx.await.map_err(|_| self.closed_error())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => {
                if result.is_err() {
                    self.lock_pending().remove(&opaque);
                }
                result
            }
            Err(_) => {
                self.lock_pending().remove(&opaque);
                Err(RemotingError::Timeout {
                    addr: self.inner.peer.to_string(),
                    code,
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    /// Sends `request` as a oneway request: no response is expected.
    pub async fn oneway(&self, mut request: RemotingCommand) -> Result<(), RemotingError> {
        request.opaque = self.next_opaque();
        request.flag = (request.flag & !flag::RESPONSE) | flag::ONEWAY;
        self.send(request).await
    }

    /// Queues a frame as it is.
    async fn send(&self, command: RemotingCommand) -> Result<(), RemotingError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.inner
            .outbound
            .send(Outbound::Command(command))
            .await
            .map_err(|_| self.closed_error())
    }

    /// Queues frames already encoded, in order, for one write.
    async fn send_encoded(&self, frames: BytesMut) -> Result<(), RemotingError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.inner
            .outbound
            .send(Outbound::Encoded(frames))
            .await
            .map_err(|_| self.closed_error())
    }

    fn next_opaque(&self) -> i32 {
        // Wraps after 2^31 requests, as RocketMQ's counter does.
        self.inner.next_opaque.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<RemotingCommand>>> {
        // The map stays consistent even if a holder panicked.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn closed_error(&self) -> RemotingError {
        RemotingError::ConnectionClosed {
            addr: self.inner.peer.to_string(),
        }
    }
}

/// Limits of one driven connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriveConfig {
    pub max_frame_len: usize,
    pub max_in_flight: usize,
    /// Servers only; clients read without deadlines.
    pub read_limits: ReadLimits,
}

/// Starts driving `stream`: returns its channel and the task that finishes
/// when the connection is closed and `on_close` has run.
///
/// When `stop` turns true the driver stops reading, lets the requests in
/// flight finish and send their responses, then closes.
pub(crate) fn spawn_connection(
    stream: tokio::net::TcpStream,
    handler: Arc<dyn RequestHandler>,
    config: DriveConfig,
    stop: Option<watch::Receiver<bool>>,
) -> std::io::Result<(Channel, tokio::task::JoinHandle<()>)> {
    let local = stream.local_addr()?;
    let mut connection = Connection::new(stream, config.max_frame_len)?;
    connection.set_read_limits(config.read_limits);
    let peer = connection.peer_addr();
    let (reader, writer) = connection.into_split();
    let (outbound, queue) = mpsc::channel(OUTBOUND_QUEUE);
    let (closed, _) = watch::channel(false);
    let channel = Channel {
        inner: Arc::new(Inner {
            id: NEXT_CHANNEL_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            local,
            outbound,
            pending: Mutex::new(HashMap::new()),
            next_opaque: AtomicI32::new(1),
            closed,
        }),
    };
    handler.on_open(&channel);
    let task = tokio::spawn(drive(
        reader,
        writer,
        queue,
        channel.clone(),
        handler,
        config,
        stop,
    ));
    Ok((channel, task))
}

/// Why the read loop ended.
enum End {
    /// The peer went away, sent garbage, or someone closed the channel:
    /// abandon requests in flight.
    Abandon,
    /// Graceful shutdown: finish requests in flight first.
    Drain,
}

async fn drive(
    mut reader: FrameReader,
    writer: FrameWriter,
    queue: mpsc::Receiver<Outbound>,
    channel: Channel,
    handler: Arc<dyn RequestHandler>,
    config: DriveConfig,
    mut stop: Option<watch::Receiver<bool>>,
) {
    let peer = channel.peer_addr();
    let writer_task = tokio::spawn(write_loop(writer, queue, channel.clone()));
    let mut serving = Serving {
        channel: channel.clone(),
        handler,
        permits: Arc::new(Semaphore::new(config.max_in_flight)),
        in_flight: JoinSet::new(),
        answers: BytesMut::new(),
    };
    let mut closed = channel.inner.closed.subscribe();
    let end = loop {
        while serving.in_flight.try_join_next().is_some() {}
        let frame = tokio::select! {
            frame = reader.read_frame() => frame,
            _ = wait_true(&mut closed) => break End::Abandon,
            _ = stopped(&mut stop) => break End::Drain,
        };
        let command = match frame {
            Ok(Some(command)) => command,
            Ok(None) => {
                debug!(%peer, channel = channel.id(), "peer closed the connection");
                break End::Abandon;
            }
            Err(RemotingError::ReadTimeout {
                limit: ReadLimit::Idle,
                ..
            }) if !serving.in_flight.is_empty() => {
                // Silent while its requests are still being handled (long
                // polls): not idle, as in Netty's all-idle state.
                continue;
            }
            Err(error @ RemotingError::ReadTimeout { .. }) => {
                // Debug, not warn: a crowd of idle connections expiring
                // together must not flood the log.
                debug!(%peer, channel = channel.id(), %error, "closing connection");
                break End::Abandon;
            }
            Err(error) => {
                warn!(%peer, channel = channel.id(), %error, "closing connection");
                break End::Abandon;
            }
        };
        serving.frame(command).await;
        // The frames that arrived with this one are served before the next
        // read, and the answers of those that finished at once leave
        // together, in one write.
        let bad_frame = loop {
            match reader.buffered_frame() {
                Ok(Some(command)) => serving.frame(command).await,
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        serving.send_answers().await;
        if let Some(error) = bad_frame {
            warn!(%peer, channel = channel.id(), %error, "closing connection");
            break End::Abandon;
        }
    };
    let mut in_flight = serving.in_flight;
    match end {
        End::Drain => while in_flight.join_next().await.is_some() {},
        End::Abandon => in_flight.shutdown().await,
    }
    // The writer sends what is queued, then stops; a peer that does not read
    // gets a grace period, not a hung connection.
    channel.close();
    let mut writer_task = AbortOnDrop(writer_task);
    if tokio::time::timeout(WRITER_GRACE, writer_task.await_result())
        .await
        .is_err()
    {
        debug!(%peer, "peer does not read; dropping unsent frames");
    }
    drop(writer_task);
    // Dropping the senders fails every pending invoke with ConnectionClosed.
    let pending: Vec<_> = channel.lock_pending().drain().collect();
    drop(pending);
    drop(reader);
    debug!(%peer, channel = channel.id(), "connection closed");
    serving.handler.on_close(&channel);
}

/// What the read loop of one connection needs to serve the frames it reads.
struct Serving {
    channel: Channel,
    handler: Arc<dyn RequestHandler>,
    /// One per request being handled ([`DriveConfig::max_in_flight`]).
    permits: Arc<Semaphore>,
    /// The requests that did not finish when first polled.
    in_flight: JoinSet<()>,
    /// Answers of requests that finished when first polled, encoded, not
    /// yet handed to the writer.
    answers: BytesMut,
}

impl Serving {
    /// Serves one frame: a response goes to the invoke waiting for it; a
    /// request is handled. The handler is polled here once, in the read
    /// loop's task: most requests (a send under ASYNC_FLUSH, a heartbeat)
    /// finish in that poll, so they cost no task of their own and no wake-up
    /// of another thread. One that is still pending after it (a long poll, a
    /// SYNC_FLUSH send waiting for its flush) moves to a task of its own and
    /// answers from there, so it holds up nothing behind it.
    async fn frame(&mut self, command: RemotingCommand) {
        if command.is_response() {
            let waiter = self.channel.lock_pending().remove(&command.opaque);
            match waiter {
                // The invoker may have timed out meanwhile; that is fine.
                Some(waiter) => drop(waiter.send(command)),
                None => warn!(
                    peer = %self.channel.peer_addr(),
                    opaque = command.opaque,
                    code = command.code,
                    "response to an unknown or expired opaque dropped"
                ),
            }
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            warn!(peer = %self.channel.peer_addr(), code = command.code, "too many requests in flight on one connection; answering SYSTEM_BUSY");
            if !command.is_oneway() {
                RemotingCommand::response_to(&command, ResponseCode::SYSTEM_BUSY)
                    .with_remark("[OVERLOAD] too many requests in flight on this connection")
                    .encode(&mut self.answers);
            }
            return;
        };
        let mut answer = Box::pin(answer(self.handler.clone(), self.channel.clone(), command));
        let first = std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(response) => {
                if let Some(response) = response {
                    response.encode(&mut self.answers);
                }
                drop(permit);
                if self.answers.len() >= MAX_WRITE_BATCH {
                    self.send_answers().await;
                }
            }
            Poll::Pending => {
                let channel = self.channel.clone();
                self.in_flight.spawn(async move {
                    if let Some(response) = answer.await {
                        let code = response.code;
                        if channel.send(response).await.is_err() {
                            debug!(peer = %channel.peer_addr(), code, "connection closed before the response was sent");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }

    /// Hands the answers gathered so far to the writer.
    async fn send_answers(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        let answers = self.answers.split();
        if self.channel.send_encoded(answers).await.is_err() {
            debug!(peer = %self.channel.peer_addr(), "connection closed before the responses were sent");
        }
    }
}

/// Resolves when the watched flag is true (or its sender is gone).
async fn wait_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|value| *value).await;
}

/// Resolves when `stop` turns true; never when there is no `stop`.
async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    match stop {
        Some(stop) => {
            let stopped = stop.wait_for(|stop| *stop).await.is_ok();
            if !stopped {
                // The sender is gone without asking to stop: never stop.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Handles one request and returns what to answer: the handler's response
/// with the request's opaque and serialize type, SYSTEM_ERROR with the
/// reason when it failed or panicked, nothing for a oneway request.
async fn answer(
    handler: Arc<dyn RequestHandler>,
    channel: Channel,
    request: RemotingCommand,
) -> Option<RemotingCommand> {
    let oneway = request.is_oneway();
    let code = request.code;
    let mut template = RemotingCommand::response_to(&request, ResponseCode::SUCCESS);
    template.version = request.version;
    // A panic in the handler becomes a SYSTEM_ERROR answer instead of a
    // silent loss (and of the read loop, which polls it first).
    let outcome = match CatchUnwind(handler.handle(&channel, request)).await {
        Ok(outcome) => outcome,
        Err(panic) => Err(format!("request handler failed: {}", panic_message(&*panic)).into()),
    };
    if oneway {
        if let Err(error) = outcome {
            warn!(peer = %channel.peer_addr(), code, %error, "oneway request failed");
        }
        return None;
    }
    match outcome {
        Ok(Some(mut response)) => {
            response.opaque = template.opaque;
            response.serialize_type = template.serialize_type;
            response.flag = (response.flag | flag::RESPONSE) & !flag::ONEWAY;
            Some(response)
        }
        Ok(None) => None,
        Err(error) => {
            debug!(peer = %channel.peer_addr(), code, %error, "request failed");
            template.code = ResponseCode::SYSTEM_ERROR.into();
            template.remark = Some(error.to_string());
            Some(template)
        }
    }
}

/// Polls a future, turning a panic in it into an error.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The message a panic was raised with, as the standard library prints it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = panic.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked".to_owned()
    }
}

/// A task handle that aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn await_result(&mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the writer task is given: a frame to encode, or frames already
/// encoded (the answers the read loop gathered).
#[derive(Debug)]
enum Outbound {
    Command(RemotingCommand),
    Encoded(BytesMut),
}

/// Queues what is waiting in `queue`, up to [`MAX_WRITE_BATCH`] bytes.
fn drain_into(writer: &mut FrameWriter, queue: &mut mpsc::Receiver<Outbound>) {
    while writer.buffered() < MAX_WRITE_BATCH {
        match queue.try_recv() {
            Ok(outbound) => writer.queue_outbound(outbound),
            Err(_) => break,
        }
    }
}

impl FrameWriter {
    fn queue_outbound(&mut self, outbound: Outbound) {
        match outbound {
            Outbound::Command(command) => self.queue(&command),
            Outbound::Encoded(frames) => self.queue_encoded(&frames),
        }
    }
}

async fn write_loop(
    mut writer: FrameWriter,
    mut queue: mpsc::Receiver<Outbound>,
    channel: Channel,
) {
    let mut closed = channel.inner.closed.subscribe();
    loop {
        let outbound = tokio::select! {
            biased;
            outbound = queue.recv() => outbound,
            _ = wait_true(&mut closed) => {
                // Send what was queued before the close, then stop.
                while let Ok(outbound) = queue.try_recv() {
                    writer.queue_outbound(outbound);
                }
                if writer.buffered() > 0 {
                    let _ = writer.flush().await;
                }
                return;
            }
        };
        let Some(outbound) = outbound else { return };
        writer.queue_outbound(outbound);
        drain_into(&mut writer, &mut queue);
        if writer.buffered() < MAX_WRITE_BATCH {
            // Let the request tasks that are ready run first: responses
            // finishing in the same pass go out in this write instead of
            // one write each. With nothing else ready this returns at once.
            tokio::task::yield_now().await;
            drain_into(&mut writer, &mut queue);
        }
        if let Err(error) = writer.flush().await {
            debug!(peer = %channel.peer_addr(), %error, "write failed; closing connection");
            channel.close();
            return;
        }
    }
}
