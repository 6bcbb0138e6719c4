//! The replication wire format, RocketMQ's: pure functions over bytes.
//!
//! Slave → master, a report: `[max_offset:8 BE]`, the slave's commit log
//! end (what it has, and so where the master continues). Sent on connect,
//! after every append and as a heartbeat.
//!
//! Master → slave, a transfer: `[offset:8 BE][size:4 BE][body:size]`, the
//! commit log bytes starting at `offset` (whole records). `size = 0` is a
//! heartbeat that still says where the master stands.
//!
//! Offsets are Java longs on the wire: a value with the sign bit set is
//! refused, as is a negative or oversized body length.

use thiserror::Error;

/// Bytes of a report.
pub(crate) const REPORT_LEN: usize = 8;
/// Bytes of a transfer header.
pub(crate) const HEADER_LEN: usize = 12;

/// A malformed frame; the connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum FrameError {
    #[error("offset {0:#x} is negative as a Java long")]
    NegativeOffset(u64),
    #[error("transfer body size {0} is negative")]
    NegativeSize(i32),
    #[error("transfer body of {size} bytes is above the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
}

fn offset_at(buf: &[u8]) -> Result<u64, FrameError> {
    let raw = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
    if raw > i64::MAX as u64 {
        return Err(FrameError::NegativeOffset(raw));
    }
    Ok(raw)
}

/// Encodes a report.
pub(crate) fn encode_report(max_offset: u64) -> [u8; REPORT_LEN] {
    max_offset.to_be_bytes()
}

/// Decodes the report at the start of `buf`; `Ok(None)` when fewer than 8
/// bytes are there yet.
pub(crate) fn decode_report(buf: &[u8]) -> Result<Option<u64>, FrameError> {
    if buf.len() < REPORT_LEN {
        return Ok(None);
    }
    offset_at(buf).map(Some)
}

/// Encodes a transfer header for `size` bytes at `offset`.
pub(crate) fn encode_header(offset: u64, size: usize) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&offset.to_be_bytes());
    out[8..].copy_from_slice(&(size as i32).to_be_bytes());
    out
}

/// One transfer, borrowed from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transfer<'a> {
    pub offset: u64,
    pub body: &'a [u8],
}

/// Decodes the transfer at the start of `buf`: the transfer and the bytes it
/// used, or `Ok(None)` when it is not complete yet. The header is checked
/// before waiting for the body, so a bad length never makes the reader
/// buffer `max_body` bytes of garbage.
pub(crate) fn decode_transfer(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(Transfer<'_>, usize)>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let offset = offset_at(buf)?;
    let size = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
    let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if size > max_body {
        return Err(FrameError::TooLarge {
            size,
            max: max_body,
        });
    }
    let end = HEADER_LEN + size;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((
        Transfer {
            offset,
            body: &buf[HEADER_LEN..end],
        },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trip_golden_and_truncation() {
        let bytes = encode_report(0x0102_0304_0506_0708);
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decode_report(&bytes), Ok(Some(0x0102_0304_0506_0708)));
        for cut in 0..REPORT_LEN {
            assert_eq!(decode_report(&bytes[..cut]), Ok(None));
        }
        assert_eq!(
            decode_report(&[0xFF; 8]),
            Err(FrameError::NegativeOffset(u64::MAX))
        );
    }

    #[test]
    fn transfer_round_trip_golden_and_truncation() {
        let mut frame = encode_header(0x10, 3).to_vec();
        frame.extend_from_slice(b"abc");
        assert_eq!(
            frame,
            [0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        let (t, used) = decode_transfer(&frame, 1024).unwrap().unwrap();
        assert_eq!((t.offset, t.body, used), (0x10, &b"abc"[..], frame.len()));
        // Every split point of a read is "need more", never an error.
        for cut in 0..frame.len() {
            assert_eq!(decode_transfer(&frame[..cut], 1024), Ok(None));
        }
        // A heartbeat.
        let hb = encode_header(99, 0);
        let (t, used) = decode_transfer(&hb, 0).unwrap().unwrap();
        assert_eq!((t.offset, t.body.len(), used), (99, 0, HEADER_LEN));
    }

    #[test]
    fn two_transfers_in_one_read_decode_one_after_the_other() {
        let mut buf = encode_header(0, 2).to_vec();
        buf.extend_from_slice(b"xy");
        buf.extend_from_slice(&encode_header(2, 1));
        buf.push(b'z');
        let (first, used) = decode_transfer(&buf, 16).unwrap().unwrap();
        assert_eq!(first.body, b"xy");
        let (second, rest) = decode_transfer(&buf[used..], 16).unwrap().unwrap();
        assert_eq!((second.offset, second.body), (2, &b"z"[..]));
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn garbage_headers_are_errors_before_any_body_is_awaited() {
        let mut neg = encode_header(0, 0);
        neg[8..].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(decode_transfer(&neg, 16), Err(FrameError::NegativeSize(-5)));
        let big = encode_header(0, 17);
        assert_eq!(
            decode_transfer(&big, 16),
            Err(FrameError::TooLarge { size: 17, max: 16 })
        );
        let http = b"GET / HTTP/1.1\r\n\r\n";
        assert!(decode_transfer(http, 1 << 20).is_err());
        let mut fuzz = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1000 {
            let mut buf = [0u8; 32];
            for b in &mut buf {
                fuzz ^= fuzz << 13;
                fuzz ^= fuzz >> 7;
                fuzz ^= fuzz << 17;
                *b = fuzz as u8;
            }
            // Anything may come back but a panic or a body past the buffer.
            if let Ok(Some((t, used))) = decode_transfer(&buf, 64) {
                assert!(used <= buf.len() && t.body.len() + HEADER_LEN == used);
            }
        }
    }
}
