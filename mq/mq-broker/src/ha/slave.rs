//! The slave's replication client: connect to the master's replication
//! address, report the local commit log end, append what arrives, and
//! acknowledge each append. Reconnects after any failure.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mq_store::MessageStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::frame;
use super::HaService;

/// Pause between connection attempts; short so that a restarted master is
/// picked up at once, and a refused connect costs nothing.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Longest a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How a replication session ended.
#[derive(Debug)]
enum Ended {
    Stopped,
    Failed(String),
    /// The master is behind this slave: replication stops for good.
    Diverged(String),
}

/// Runs until stop.
pub(crate) async fn run(ha: Arc<HaService>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let target = ha.master_ha_addr();
        let ended = match (ha.diverged(), target) {
            (Some(_), _) | (None, None) => None,
            (None, Some(addr)) => Some(session(&ha, &addr, stop.clone()).await),
        };
        ha.set_connected(false);
        match ended {
            Some(Ended::Stopped) => return,
            Some(Ended::Failed(why)) => {
                warn!(%why, "replication from the master stopped; reconnecting")
            }
            Some(Ended::Diverged(why)) => {
                error!(%why, path = %ha.diverged_path().display(), "this slave is ahead of its master: replication is off until the file is removed");
                if let Err(e) = std::fs::write(ha.diverged_path(), format!("{why}\n")) {
                    error!(error = %e, "cannot write the diverged marker");
                }
            }
            None => {}
        }
        tokio::select! {
            _ = crate::util::stopped(&mut stop) => return,
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

async fn report(stream: &mut TcpStream, offset: u64) -> Result<(), Ended> {
    stream
        .write_all(&frame::encode_report(offset))
        .await
        .map_err(|e| Ended::Failed(format!("report failed: {e}")))
}

async fn session(ha: &HaService, addr: &str, mut stop: watch::Receiver<bool>) -> Ended {
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Ended::Failed(format!("connect to {addr} failed: {e}")),
        Err(_) => return Ended::Failed(format!("connect to {addr} timed out")),
    };
    let _ = stream.set_nodelay(true);
    let store = ha.store().clone();
    let start = store.commit_log_max_offset();
    if let Err(e) = report(&mut stream, start).await {
        return e;
    }
    info!(master = addr, offset = start, "replicating from the master");
    ha.set_connected(true);
    let mut buf = BytesMut::with_capacity(ha.settings.batch + 4096);
    let mut heartbeat = tokio::time::interval(ha.settings.heartbeat);
    heartbeat.tick().await;
    loop {
        // Room for a whole batch: transfers already split off keep their
        // part of the old buffer.
        buf.reserve(ha.settings.batch);
        let read = tokio::select! {
            _ = crate::util::stopped(&mut stop) => return Ended::Stopped,
            _ = heartbeat.tick() => {
                if let Err(e) = report(&mut stream, store.commit_log_max_offset()).await {
                    return e;
                }
                continue;
            }
            r = tokio::time::timeout(ha.settings.housekeeping, stream.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) => return Ended::Failed("master silent past the housekeeping interval".into()),
            Ok(Err(e)) => return Ended::Failed(format!("read failed: {e}")),
            Ok(Ok(0)) => return Ended::Failed("master closed the connection".into()),
            Ok(Ok(_)) => {}
        }
        // Every whole transfer read so far is appended, then acknowledged
        // once: a SYNC_MASTER's waiting sends are released together.
        let mut appended = false;
        loop {
            let (offset, used) = match frame::decode_transfer(&buf, ha.settings.max_body) {
                Ok(Some((t, used))) => (t.offset, used),
                Ok(None) => break,
                Err(e) => return Ended::Failed(format!("bad frame from the master: {e}")),
            };
            let body = buf.split_to(used).freeze().slice(frame::HEADER_LEN..);
            if let Err(e) = apply(ha, &store, offset, &body).await {
                return e;
            }
            appended |= !body.is_empty();
        }
        if appended {
            if let Err(e) = report(&mut stream, store.commit_log_max_offset()).await {
                return e;
            }
        }
    }
}

/// Checks a transfer against the local commit log and appends its body.
async fn apply(
    ha: &HaService,
    store: &MessageStore,
    offset: u64,
    body: &[u8],
) -> Result<(), Ended> {
    let local = store.commit_log_max_offset();
    let empty = local == 0 && store.commit_log_min_offset() == 0;
    if offset < local {
        return Err(Ended::Diverged(format!(
            "the master stands at commit log offset {offset}, this slave at {local}"
        )));
    }
    if body.is_empty() {
        ha.set_master_offset(offset);
        return Ok(());
    }
    if offset != local && !empty {
        return Err(Ended::Failed(format!(
            "the master sent offset {offset}, this slave's end is {local}"
        )));
    }
    store
        .append_raw(offset, body)
        .await
        .map_err(|e| Ended::Failed(format!("appending replicated bytes failed: {e}")))?;
    ha.set_master_offset(offset + body.len() as u64);
    Ok(())
}
