//! Message body compression: the producer zlib-compresses large bodies and
//! sets `COMPRESSED` in the sys flag; pulls and queries inflate them again.

use std::io::Write;

use bytes::Bytes;
use mq_protocol::message::sys_flag;
use mq_protocol::MessageExt;

use crate::error::{ClientError, Result};

/// zlib at level 5, as Java's producer compresses.
pub(crate) fn compress(body: &[u8]) -> Bytes {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("compressing into memory cannot fail")
}

/// Inflates a zlib body.
pub(crate) fn decompress(body: &[u8]) -> std::io::Result<Bytes> {
    let mut decoder = flate2::write::ZlibDecoder::new(Vec::new());
    decoder.write_all(body)?;
    decoder.finish().map(Bytes::from)
}

/// Inflates a compressed body in place and clears the flag.
pub(crate) fn inflate(msg: &mut MessageExt) -> Result<()> {
    if msg.sys_flag & sys_flag::COMPRESSED != 0 {
        msg.body = decompress(&msg.body).map_err(|source| ClientError::Io {
            path: format!("body of message {}", msg.msg_id()),
            source,
        })?;
        msg.sys_flag &= !sys_flag::COMPRESSED;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_round_trips() {
        let body = vec![b'x'; 10_000];
        let packed = compress(&body);
        assert!(packed.len() < 1000);
        assert_eq!(decompress(&packed).unwrap(), Bytes::from(body));
    }
}
