//! The master's replication server: one task per slave connection.
//!
//! A connection starts with the slave's report of its commit log end. The
//! master checks it (a record boundary of its own log, not past its end,
//! not before its first byte unless the slave is empty) and streams from
//! there; an empty slave (report 0) gets everything the master still has.
//! Later reports are acknowledgements: they may not go backwards nor past
//! what was sent. Anything else closes that connection only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{info, warn};

use super::frame::{self, REPORT_LEN};
use super::HaService;

/// Connected slaves at most; more are refused (a group has a few).
const MAX_SLAVES: usize = 16;

/// Accepts slaves until stop.
pub(crate) async fn serve(listener: TcpListener, ha: Arc<HaService>, stop: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let mut stop_rx = stop.clone();
        let accepted = tokio::select! {
            _ = crate::util::stopped(&mut stop_rx) => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accepting a replication connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if ha.slave_count() >= MAX_SLAVES {
            warn!(%peer, "too many slaves; refusing a replication connection");
            continue;
        }
        let ha = ha.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            match serve_slave(&ha, stream, peer.to_string(), stop).await {
                Ok(()) => info!(%peer, "slave connection closed"),
                Err(why) => warn!(%peer, %why, "slave connection closed"),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}

/// Reads one report (8 bytes) within the housekeeping interval.
async fn read_report(rd: &mut OwnedReadHalf, ha: &HaService) -> Result<u64, String> {
    let mut buf = [0u8; REPORT_LEN];
    match tokio::time::timeout(ha.settings.housekeeping, rd.read_exact(&mut buf)).await {
        Err(_) => Err("slave silent past the housekeeping interval".into()),
        Ok(Err(e)) => Err(format!("read failed: {e}")),
        Ok(Ok(_)) => frame::decode_report(&buf)
            .map_err(|e| e.to_string())
            .map(|o| o.expect("8 bytes")),
    }
}

/// Where to stream from for a slave that reports `reported`, or why not.
/// `Err((reason, tell))`: `tell` says whether to send the slave the
/// master's end before closing (it is ahead of the master).
fn start_offset(ha: &HaService, reported: u64) -> Result<u64, (String, bool)> {
    let store = ha.store();
    let (min, max) = (store.commit_log_min_offset(), store.commit_log_max_offset());
    if reported == 0 {
        return Ok(min);
    }
    if reported > max {
        return Err((
            format!("slave reports offset {reported}, past the master's end {max}"),
            true,
        ));
    }
    if reported < min {
        return Err((
            format!("slave reports offset {reported}, before the master's first byte {min}"),
            false,
        ));
    }
    if !store.is_record_boundary(reported) {
        return Err((
            format!("slave reports offset {reported}, not a record boundary of the master"),
            false,
        ));
    }
    Ok(reported)
}

async fn serve_slave(
    ha: &Arc<HaService>,
    stream: TcpStream,
    peer: String,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let reported = read_report(&mut rd, ha).await?;
    let from = match start_offset(ha, reported) {
        Ok(from) => from,
        Err((why, tell)) => {
            if tell {
                let end = ha.store().commit_log_max_offset();
                let _ = wr.write_all(&frame::encode_header(end, 0)).await;
            }
            return Err(why);
        }
    };
    info!(%peer, reported, from, "slave connected");
    let id = ha.add_slave(peer, reported);
    let sent = Arc::new(AtomicU64::new(from));
    let reader = {
        let ha = ha.clone();
        let sent = sent.clone();
        tokio::spawn(async move { read_acks(&ha, id, rd, reported, &sent).await })
    };
    tokio::pin!(reader);
    let result = tokio::select! {
        r = stream_log(ha, &mut wr, from, &sent) => r,
        r = &mut reader => r.unwrap_or_else(|e| Err(format!("reader task failed: {e}"))),
        _ = crate::util::stopped(&mut stop) => Ok(()),
    };
    reader.abort();
    ha.remove_slave(id);
    result
}

/// Takes acknowledgements until the connection fails or lies.
async fn read_acks(
    ha: &HaService,
    id: u64,
    mut rd: OwnedReadHalf,
    mut last: u64,
    sent: &AtomicU64,
) -> Result<(), String> {
    loop {
        let offset = read_report(&mut rd, ha).await?;
        let limit = sent.load(Ordering::Acquire).max(last);
        if offset < last || offset > limit {
            return Err(format!(
                "slave acknowledged {offset}, outside {last}..={limit} (previous ack, bytes sent)"
            ));
        }
        last = offset;
        ha.acknowledge(id, offset);
    }
}

/// Sends the commit log from `next` on, and a heartbeat whenever nothing was
/// sent for `haSendHeartbeatInterval`.
async fn stream_log(
    ha: &HaService,
    wr: &mut OwnedWriteHalf,
    mut next: u64,
    sent: &AtomicU64,
) -> Result<(), String> {
    let store = ha.store().clone();
    let notify = store.new_message_notify();
    let mut last_write = tokio::time::Instant::now();
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if next < store.commit_log_min_offset() {
            return Err(format!("offset {next} was deleted before the slave got it"));
        }
        if let Some(body) = store.read_commit_log(next, ha.settings.batch) {
            let header = frame::encode_header(next, body.len());
            let mut out = Buf::chain(&header[..], body.clone());
            let len = body.len() as u64;
            // Count the bytes as sent before they are: an acknowledgement
            // cannot arrive before the write, and must not be refused.
            sent.store(next + len, Ordering::Release);
            wr.write_all_buf(&mut out)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            next += len;
            last_write = tokio::time::Instant::now();
            continue;
        }
        let heartbeat_at = last_write + ha.settings.heartbeat;
        if tokio::time::Instant::now() >= heartbeat_at {
            wr.write_all(&frame::encode_header(next, 0))
                .await
                .map_err(|e| format!("heartbeat failed: {e}"))?;
            last_write = tokio::time::Instant::now();
            continue;
        }
        tokio::select! {
            _ = &mut notified => {
                // Let the sends woken with us append first: one transfer
                // (and one acknowledgement) then carries them all.
                tokio::task::yield_now().await;
            }
            _ = tokio::time::sleep_until(heartbeat_at) => {}
        }
    }
}
