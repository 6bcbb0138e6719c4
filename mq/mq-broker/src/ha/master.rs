//! The master's replication server: one task per slave connection.
//!
//! A connection starts with the slave's report of its commit log end. The
//! master checks it (a record boundary of its own log, not past its end,
//! not before its first byte unless the slave is empty) and streams from
//! there; an empty slave (report 0) gets everything the master still has.
//! Later reports are acknowledgements: they may not go backwards nor past
//! what was sent. Anything else closes that connection only.
//!
//! The port is bounded like the remoting listeners: at most
//! [`MAX_CONNECTIONS`] open connections, counting those that have not
//! reported yet (more are closed at once, logged once per burst); every
//! report, the first included, must be complete within
//! `haHousekeepingInterval`, so a connection that never sends a byte or
//! stops in the middle of a report is closed (the idle and frame bounds in
//! one, as an 8-byte report has no useful partial state); and a transfer the
//! slave does not take within that interval closes the connection too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{info, warn};

use super::frame::{self, REPORT_LEN};
use super::HaService;

/// Open replication connections at most, reported or not; more are closed
/// at once. A group has a few slaves, so this only stops a flood of
/// connections that would each hold a task and a socket.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// Accepts slaves until stop.
pub(crate) async fn serve(listener: TcpListener, ha: Arc<HaService>, stop: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut refused: u64 = 0;
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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            // Closed at once (dropped); logged when a burst starts.
            if refused == 0 {
                warn!(%peer, max = MAX_CONNECTIONS, "refusing replication connections: too many open");
            }
            refused += 1;
            continue;
        };
        if refused > 0 {
            info!(refused, "accepting replication connections again");
            refused = 0;
        }
        let ha = ha.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            match serve_slave(&ha, stream, peer.to_string(), stop).await {
                Ok(()) => info!(%peer, "slave connection closed"),
                Err(why) => warn!(%peer, %why, "slave connection closed"),
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}

/// A write to the slave, which must be taken within the housekeeping
/// interval: a slave that stops reading is as gone as a silent one.
async fn within(
    ha: &HaService,
    write: impl std::future::Future<Output = std::io::Result<()>>,
    what: &str,
) -> Result<(), String> {
    match tokio::time::timeout(ha.settings.housekeeping, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{what} failed: {e}")),
        Err(_) => Err(format!(
            "{what} not taken by the slave within the housekeeping interval"
        )),
    }
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
            within(ha, wr.write_all_buf(&mut out), "transfer").await?;
            next += len;
            last_write = tokio::time::Instant::now();
            continue;
        }
        let heartbeat_at = last_write + ha.settings.heartbeat;
        if tokio::time::Instant::now() >= heartbeat_at {
            within(
                ha,
                wr.write_all(&frame::encode_header(next, 0)),
                "heartbeat",
            )
            .await?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::BrokerConfig;
    use crate::ha::HaSettings;

    /// Generous: the machine running the tests may be loaded.
    const LIMIT: Duration = Duration::from_secs(20);

    async fn master(
        dir: &std::path::Path,
        housekeeping_ms: u64,
    ) -> (std::net::SocketAddr, watch::Sender<bool>) {
        let mut store_config = mq_store::MessageStoreConfig::with_root(dir);
        store_config.maped_file_size_commit_log = 1 << 20;
        store_config.max_message_size = 64 * 1024;
        let store = Arc::new(mq_store::MessageStore::open(store_config.clone()).unwrap());
        let config = BrokerConfig {
            ha_housekeeping_interval: housekeeping_ms,
            ha_send_heartbeat_interval: 50,
            ..BrokerConfig::default()
        };
        let ha = Arc::new(HaService::new(
            HaSettings::new(&config, &store_config),
            store,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(serve(listener, ha, stop_rx));
        (addr, stop)
    }

    /// Whether the master closed `conn` within `wait` (end of stream or a
    /// reset), reading and dropping whatever it sent before.
    async fn closed_within(conn: &mut TcpStream, wait: Duration) -> bool {
        let mut buf = [0u8; 64];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    #[tokio::test]
    async fn connections_are_capped_even_before_they_report() {
        let dir = tempfile::tempdir().unwrap();
        // Silent connections are held for 5 s, longer than the checks below.
        let (addr, _stop) = master(dir.path(), 5_000).await;
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut extra, Duration::from_millis(3_000)).await,
            "connection {} must be closed at once",
            MAX_CONNECTIONS + 1
        );
        assert!(
            !closed_within(&mut silent[0], Duration::from_millis(100)).await,
            "the first connections stay until their report is due"
        );
        // Once the silent ones are gone, a slave gets in and is served.
        for conn in &mut silent {
            assert!(
                closed_within(conn, LIMIT).await,
                "a silent connection is closed"
            );
        }
        let mut slave = TcpStream::connect(addr).await.unwrap();
        slave.write_all(&0u64.to_be_bytes()).await.unwrap();
        let mut header = [0u8; super::frame::HEADER_LEN];
        tokio::time::timeout(LIMIT, slave.read_exact(&mut header))
            .await
            .expect("the master answers a slave's report in time")
            .unwrap();
    }

    #[tokio::test]
    async fn silent_and_half_sent_reports_are_closed_after_housekeeping() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _stop) = master(dir.path(), 300).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(&[0, 0, 0, 0]).await.unwrap();
        assert!(closed_within(&mut silent, LIMIT).await, "silent connection");
        assert!(closed_within(&mut half, LIMIT).await, "half a report");
        // A slave that reports and then goes quiet is dropped as well.
        let mut quiet = TcpStream::connect(addr).await.unwrap();
        quiet.write_all(&0u64.to_be_bytes()).await.unwrap();
        assert!(closed_within(&mut quiet, LIMIT).await, "quiet slave");
    }
}
