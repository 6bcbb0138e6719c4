//! The one error type of the protocol crate.

use thiserror::Error;

/// Why bytes could not be decoded (or a value could not be encoded).
///
/// Every variant carries enough structure for a caller to log a useful line
/// (which field, at which offset, how many bytes were needed) without the
/// protocol crate doing any logging itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The 4-byte length prefix claims more than the configured frame limit.
    /// Returned before any allocation for the frame is made.
    #[error("frame of {length} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { length: usize, limit: usize },
    /// The length prefix is smaller than the 4-byte header-length field.
    #[error("frame length {length} is smaller than the 4-byte header length field")]
    FrameTooSmall { length: usize },
    /// The header length does not fit inside the frame.
    #[error("header length {header_len} does not fit in a frame of {frame_len} bytes")]
    HeaderTooLong { header_len: usize, frame_len: usize },
    /// The serialize-type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown header serialize type {0}")]
    UnknownSerializeType(u8),
    /// A JSON header that is not a JSON object with an integer `code`.
    #[error("invalid JSON header: {0}")]
    InvalidJsonHeader(String),
    /// A field ran past the end of the bytes that hold it.
    #[error("truncated {field} at offset {offset}: needed {needed} bytes, had {had}")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        had: usize,
    },
    /// A length field read from the wire or disk is negative or absurd.
    #[error("invalid length {length} for {field} at offset {offset}")]
    InvalidLength {
        field: &'static str,
        offset: usize,
        length: i64,
    },
    /// A string field is not UTF-8.
    #[error("{field} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str, offset: usize },
    /// A stored message starts with a magic code we do not know.
    #[error("unknown message magic code {0:#010x}")]
    BadMagic(u32),
    /// The stored body CRC does not match the body.
    #[error("body CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BodyCrcMismatch { stored: u32, computed: u32 },
    /// The message TOTALSIZE field disagrees with the fields it covers.
    #[error("message total size {declared} disagrees with its fields ({actual} bytes)")]
    SizeMismatch { declared: usize, actual: usize },
    /// A value cannot be represented in the wire format (e.g. a topic longer
    /// than a length field allows).
    #[error("{field} is too long to encode: {length} bytes, limit {limit}")]
    TooLongToEncode {
        field: &'static str,
        length: usize,
        limit: usize,
    },
    /// A message id is not the hex encoding of host + port + offset.
    #[error("invalid message id {0:?}")]
    InvalidMessageId(String),
    /// A required header field (extFields entry) is missing.
    #[error("missing header field {0}")]
    MissingField(&'static str),
    /// A header field has a value of the wrong form.
    #[error("header field {field} has an invalid value {value:?}")]
    InvalidField { field: &'static str, value: String },
}
