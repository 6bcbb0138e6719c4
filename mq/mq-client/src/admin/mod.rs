//! The admin client: what `mqadmin` needs, one file per area. Each file adds
//! `impl AdminClient` methods; a new admin call is a method in the right
//! file (or a new file) built on [`AdminClient::call_broker`] and
//! [`AdminClient::call_namesrv`].

mod broker;
mod cluster;
mod consumer;
mod group;
mod message;
mod namesrv;
mod offset;
mod stats;
mod topic;
mod transaction;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mq_protocol::RemotingCommand;

pub use topic::TopicSpec;

use crate::config::ClientConfig;
use crate::error::expect_success;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;

/// Administers name servers and brokers (RocketMQ's `DefaultMQAdminExt`).
/// Cheap to clone.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<AdminInner>,
}

struct AdminInner {
    instance: Arc<ClientInstance>,
    running: AtomicBool,
}

impl AdminClient {
    pub async fn start(client: ClientConfig) -> Result<AdminClient> {
        let instance = ClientInstance::acquire(&client)?;
        Ok(AdminClient {
            inner: Arc::new(AdminInner {
                instance,
                running: AtomicBool::new(true),
            }),
        })
    }

    pub(crate) fn instance(&self) -> Result<&Arc<ClientInstance>> {
        if self.inner.running.load(Ordering::SeqCst) {
            Ok(&self.inner.instance)
        } else {
            Err(ClientError::NotRunning("admin client"))
        }
    }

    /// Sends `request` to the broker at `addr`; anything but SUCCESS is an error.
    pub async fn call_broker(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand> {
        expect_success(self.instance()?.invoke(addr, request).await?)
    }

    /// Sends `request` to the name servers (the first that answers);
    /// anything but SUCCESS is an error.
    pub async fn call_namesrv(&self, request: RemotingCommand) -> Result<RemotingCommand> {
        expect_success(self.instance()?.invoke_namesrv(request).await?)
    }

    pub async fn shutdown(&self) {
        if self.inner.running.swap(false, Ordering::SeqCst) {
            self.inner.instance.release();
        }
    }
}
