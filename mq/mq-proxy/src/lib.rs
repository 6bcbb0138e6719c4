//! A RocketMQ 5.x gRPC endpoint (`apache.rocketmq.v2.MessagingService`) in
//! front of our 4.x brokers, the way RocketMQ 5's proxy serves its SDKs.
//!
//! Layout:
//! - [`pb`]: the messages and the service generated at build time from the
//!   vendored apache/rocketmq-apis protos (`proto/`).
//! - [`config`]: `rmq-proxy.json` ([`ProxyConfig`]).
//! - [`convert`]: 5.x messages to 4.x ones and back (tags, keys, message
//!   groups, delivery times, user properties).
//! - `service`: the RPCs, each a method of [`Proxy`] that returns a typed
//!   result; the tonic trait only unwraps requests and wraps answers.
//! - `sessions`: the clients' telemetry streams and settings, through
//!   which the broker's transaction check-backs reach 5.x producers.
//! - `transaction`: transaction ids and the check-back forwarder.
//! - `consumer` and `consume`: the 5.x consumption model (invisible time,
//!   receipt handles, acknowledgements, DLQ) on 4.x pulls and offsets; a
//!   tag or SQL filter expression travels with each pull (SQL checked
//!   here first, evaluated by the broker's property filter).
//! - [`status`]: the 5.x `Code`s and how 4.x failures map onto them.
//! - `auth`: ACL for 5.x clients (`enableACL`): their signatures and
//!   permissions checked against the brokers' `plain_acl.yml`.
//!
//! With ACL on, two checks apply: the proxy checks each 5.x call (the
//! caller's account, from its signed metadata), and the brokers check the
//! proxy's 4.x requests, signed with the proxy's own account (`accessKey`
//! / `secretKey` in `rmq-proxy.json`), which must own what every 5.x
//! client may do.
//!
//! Data flow of a send: SendMessage -> [`convert::outbound`] -> our 4.x
//! [`mq_client::Producer`] (route from the name server, SEND_MESSAGE_V2 to
//! the queue's master) -> a `SendResultEntry`. Like RocketMQ 5's Cluster
//! mode, the proxy holds no messages: the brokers do, over the 4.x
//! remoting protocol. Local mode (`mqbroker --enable-proxy`) is the same
//! proxy in the broker's process, pointed at its name server, whose sends
//! to that broker skip the connection ([`Proxy::start_local`]).

mod auth;
pub mod config;
mod consume;
mod consumer;
pub mod convert;
mod service;
mod sessions;
pub mod status;
mod transaction;

/// The generated protobuf messages and gRPC service of apache/rocketmq-apis.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("apache.rocketmq.v2");
}

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use mq_client::{
    AdminClient, ClientConfig, Credentials, InProcess, Producer, ProducerConfig,
    TransactionProducer,
};
use tokio::net::TcpListener;

pub use config::ProxyConfig;
pub use status::ProxyError;

use sessions::Sessions;

/// The group of the proxy's producer of ordinary messages.
pub const PRODUCER_GROUP: &str = "PROXY_GRPC_PRODUCER";
/// The group of the proxy's producer of half messages: the broker's
/// check-backs for 5.x transactions come to this group.
pub const TRANSACTION_PRODUCER_GROUP: &str = "PROXY_GRPC_TRANSACTION_PRODUCER";

/// Numbers the proxies of one process: each needs its own 4.x client
/// instance (one per client id), e.g. a broker with its in-process proxy.
fn next_instance() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("4.x client: {0}")]
    Client(#[from] mq_client::ClientError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("enableACL is on but the accounts file is unusable: {0}")]
    Acl(#[from] mq_acl::AclError),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The endpoint's state: the 4.x clients it talks to brokers with and the
/// 5.x clients' sessions. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    admin: AdminClient,
    producer: Producer,
    transactions: TransactionProducer,
    sessions: Arc<Sessions>,
    consumers: consumer::Consumers,
    /// The 5.x side's checks; `None` when `enableACL` is off.
    acl: Option<auth::Acl>,
    /// Set once the proxy stops: open telemetry streams end, so the
    /// graceful shutdown does not wait for clients to hang up.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// Starts the 4.x clients against `config.namesrv_addr` (name servers
    /// from `NAMESRV_ADDR` when empty), signed with the configured account;
    /// with `enableACL`, loads the accounts file (an unusable one is an
    /// error) and watches it on the current runtime.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, StartError> {
        Self::start_with(config, None).await
    }

    /// [`Proxy::start`] inside a broker's process (Local mode): sends and
    /// transaction ends for that broker's queues are served by `broker`
    /// without a connection; its other queues, and everything else, go over
    /// the 4.x protocol as in Cluster mode.
    pub async fn start_local(config: ProxyConfig, broker: InProcess) -> Result<Proxy, StartError> {
        Self::start_with(config, Some(broker)).await
    }

    async fn start_with(
        config: ProxyConfig,
        in_process: Option<InProcess>,
    ) -> Result<Proxy, StartError> {
        config.validate().map_err(StartError::Config)?;
        let acl = if config.enable_acl {
            let path = config.acl_path();
            let acl = auth::Acl::load(&path)?;
            tracing::info!(path = %path.display(), "ACL on for 5.x clients");
            Some(acl)
        } else {
            if config.access_key.is_some() {
                tracing::warn!(
                    "the proxy signs its 4.x requests with accessKey but enableACL is off: \
                     every 5.x client gets that account's rights"
                );
            }
            None
        };
        let credentials = match (&config.access_key, &config.secret_key) {
            (Some(access_key), Some(secret)) => {
                Some(Credentials::new(access_key.clone(), secret.0.clone()))
            }
            _ => None,
        };
        let client = ClientConfig::new(config.namesrv_addr.clone())
            .with_instance_name(format!(
                "mqproxy-{}-{}",
                std::process::id(),
                next_instance()
            ))
            .with_credentials(credentials)
            .with_in_process(in_process);
        let sessions = Arc::new(Sessions::default());
        let admin = AdminClient::start(client.clone()).await?;
        let producer = Producer::start(ProducerConfig::new(PRODUCER_GROUP), client.clone()).await?;
        let checker = Arc::new(transaction::CheckForwarder::new(sessions.clone()));
        let transactions = TransactionProducer::start(
            ProducerConfig::new(TRANSACTION_PRODUCER_GROUP),
            client.clone(),
            checker,
        )
        .await?;
        let consumers = consumer::Consumers::new(client);
        Ok(Proxy {
            inner: Arc::new(Inner {
                config,
                admin,
                producer,
                transactions,
                sessions,
                consumers,
                acl,
                closing: tokio::sync::watch::Sender::new(false),
            }),
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.inner.config
    }

    /// Binds the configured gRPC address.
    pub async fn bind(&self) -> Result<TcpListener, StartError> {
        let addr = SocketAddr::new(
            self.inner.config.grpc_server_address,
            self.inner.config.grpc_server_port,
        );
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// Serves the messaging service on `listener` until `shutdown`
    /// completes, then ends the telemetry streams (clients keep theirs
    /// open for their whole life), waits for the calls in flight (a long
    /// poll at most [`consumer::MAX_LONG_POLL`]) and closes the 4.x clients.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        // Answers go out at once: without TCP_NODELAY a response that
        // follows a small write waits for the client's delayed ACK (40 ms),
        // which was the p99 of 5.x sends.
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |stream| {
                let stream = stream?;
                stream.set_nodelay(true)?;
                Ok::<_, std::io::Error>(stream)
            },
        );
        let closing = self.clone();
        let shutdown = async move {
            shutdown.await;
            closing.inner.closing.send_replace(true);
            closing.inner.sessions.close_all();
        };
        let result = tonic::transport::Server::builder()
            .add_service(pb::messaging_service_server::MessagingServiceServer::new(
                self.clone(),
            ))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        self.shutdown().await;
        result
    }

    async fn shutdown(&self) {
        self.inner.sessions.close_all();
        self.inner.consumers.shutdown().await;
        self.inner.producer.shutdown().await;
        self.inner.transactions.shutdown().await;
        self.inner.admin.shutdown().await;
    }
}
