//! Frame I/O over one TCP connection.
//!
//! [`Connection`] owns the socket and its buffers and offers only
//! [`read_frame`](Connection::read_frame) and
//! [`write_frame`](Connection::write_frame). For full-duplex use it splits
//! into a [`FrameReader`] and a [`FrameWriter`], which the connection driver
//! runs in separate tasks.

use std::net::SocketAddr;

use bytes::BytesMut;
use mq_protocol::frame::frame_length;
use mq_protocol::ProtocolError;
use mq_protocol::RemotingCommand;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::deadline::{ReadLimits, ReadTimer};
use crate::error::RemotingError;

/// Initial read buffer size: most requests and responses fit.
const READ_BUFFER: usize = 8 * 1024;

/// The most the read buffer grows ahead of the bytes that actually arrived,
/// so a peer that announces a large (but allowed) frame and then stalls costs
/// us at most this much.
const MAX_READ_AHEAD: usize = 1024 * 1024;

/// A TCP connection that reads and writes whole frames.
#[derive(Debug)]
pub struct Connection {
    reader: FrameReader,
    writer: FrameWriter,
}

impl Connection {
    /// Wraps `stream`; frames whose length prefix exceeds `max_frame_len` are
    /// refused before anything is allocated for them.
    pub fn new(stream: TcpStream, max_frame_len: usize) -> std::io::Result<Self> {
        let peer = stream.peer_addr()?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok(Connection {
            reader: FrameReader {
                half: read,
                buf: BytesMut::with_capacity(READ_BUFFER),
                max_frame_len,
                peer,
                timer: None,
            },
            writer: FrameWriter {
                half: write,
                // Grows with the first frames written: a connection that
                // never gets an answer (an idle one) holds no write buffer,
                // about a quarter of its memory.
                buf: BytesMut::new(),
                peer,
            },
        })
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.reader.peer
    }

    /// See [`FrameReader::set_read_limits`].
    pub fn set_read_limits(&mut self, limits: ReadLimits) {
        self.reader.set_read_limits(limits);
    }

    /// See [`FrameReader::read_frame`].
    pub async fn read_frame(&mut self) -> Result<Option<RemotingCommand>, RemotingError> {
        self.reader.read_frame().await
    }

    /// Writes one frame and sends it.
    pub async fn write_frame(&mut self, command: &RemotingCommand) -> Result<(), RemotingError> {
        self.writer.queue(command);
        self.writer.flush().await
    }

    pub fn into_split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }
}

/// The reading half of a [`Connection`].
#[derive(Debug)]
pub struct FrameReader {
    half: OwnedReadHalf,
    buf: BytesMut,
    max_frame_len: usize,
    peer: SocketAddr,
    /// Deadlines, on servers only (see [`crate::deadline`]).
    timer: Option<ReadTimer>,
}

impl FrameReader {
    /// Limits how long the peer may stay silent between frames and take to
    /// finish a frame; past either, [`read_frame`](Self::read_frame) fails
    /// with [`RemotingError::ReadTimeout`]. The period starts now.
    pub fn set_read_limits(&mut self, limits: ReadLimits) {
        self.timer = (!limits.is_unlimited()).then(|| ReadTimer::new(limits));
    }

    /// The next frame; `Ok(None)` when the peer closed the connection cleanly
    /// between frames.
    ///
    /// Cancel safe: bytes already read stay in the buffer, so this can be
    /// raced in `select!`.
    pub async fn read_frame(&mut self) -> Result<Option<RemotingCommand>, RemotingError> {
        loop {
            if let Some(command) = self.buffered_frame()? {
                return Ok(Some(command));
            }
            // The prefix, once readable, has been checked against the limit
            // by `decode`; only then do we make room for the frame.
            let wanted = match frame_length(&self.buf, self.max_frame_len) {
                Ok(Some(length)) => (4 + length).saturating_sub(self.buf.len()),
                _ => READ_BUFFER,
            };
            self.buf.reserve(wanted.clamp(1, MAX_READ_AHEAD));
            let partial = !self.buf.is_empty();
            let armed = self.timer.as_mut().is_some_and(|timer| timer.arm(partial));
            let read = match (&mut self.timer, armed) {
                (Some(timer), true) => tokio::select! {
                    // Data first: no random branch order, and a frame that
                    // arrives with its deadline still counts.
                    biased;
                    read = self.half.read_buf(&mut self.buf) => read,
                    limit = timer.expired() => {
                        return Err(RemotingError::ReadTimeout {
                            addr: self.peer.to_string(),
                            limit,
                            after_ms: timer.limits().millis(limit),
                            buffered: self.buf.len(),
                        });
                    }
                },
                _ => self.half.read_buf(&mut self.buf).await,
            }
            .map_err(|source| RemotingError::Io {
                addr: self.peer.to_string(),
                source,
            })?;
            if read == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(RemotingError::Io {
                        addr: self.peer.to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!(
                                "connection closed in the middle of a frame ({} bytes buffered)",
                                self.buf.len()
                            ),
                        ),
                    })
                };
            }
        }
    }
}

impl FrameReader {
    /// The next frame if it is already buffered whole; never reads.
    pub fn buffered_frame(&mut self) -> Result<Option<RemotingCommand>, RemotingError> {
        self.buffered_frame_inner()
            .map_err(|source| RemotingError::Frame {
                addr: self.peer.to_string(),
                source,
            })
    }

    fn buffered_frame_inner(&mut self) -> Result<Option<RemotingCommand>, ProtocolError> {
        let command = RemotingCommand::decode_split(&mut self.buf, self.max_frame_len)?;
        if command.is_some() {
            if let Some(timer) = &mut self.timer {
                timer.frame_done();
            }
        }
        Ok(command)
    }
}

/// The writing half of a [`Connection`]: frames are queued, then flushed
/// with one write.
#[derive(Debug)]
pub struct FrameWriter {
    half: OwnedWriteHalf,
    buf: BytesMut,
    peer: SocketAddr,
}

impl FrameWriter {
    /// Encodes `command` into the write buffer.
    pub fn queue(&mut self, command: &RemotingCommand) {
        command.encode(&mut self.buf);
    }

    /// Appends frames already encoded to the write buffer. They are
    /// copied, so that their buffer returns to its owner for reuse.
    pub fn queue_encoded(&mut self, frames: &[u8]) {
        self.buf.extend_from_slice(frames);
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), RemotingError> {
        let result = self.half.write_all(&self.buf).await;
        self.buf.clear();
        result.map_err(|source| RemotingError::Io {
            addr: self.peer.to_string(),
            source,
        })
    }
}
