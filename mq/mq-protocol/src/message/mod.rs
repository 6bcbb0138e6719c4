//! RocketMQ's message format: how a message is laid out in the commit log and
//! in PULL_MESSAGE response bodies, its properties string, its sys flags, and
//! the batch body of SEND_BATCH_MESSAGE.
//!
//! Wire (all big-endian):
//! ```text
//! [TOTALSIZE:4][MAGICCODE:4][BODYCRC:4][QUEUEID:4][FLAG:4][QUEUEOFFSET:8]
//! [PHYSICALOFFSET:8][SYSFLAG:4][BORNTIMESTAMP:8][BORNHOST:8|20]
//! [STORETIMESTAMP:8][STOREHOSTADDRESS:8|20][RECONSUMETIMES:4]
//! [PREPAREDTRANSACTIONOFFSET:8][BODYLEN:4][BODY][TOPICLEN:1|2][TOPIC]
//! [PROPERTIESLEN:2][PROPERTIES]
//! ```
//! A host is `[ip:4|16][port:4]`; the 16-byte form is flagged in SYSFLAG.
//! TOPICLEN is one byte under [`MESSAGE_MAGIC_CODE`] and two under
//! [`MESSAGE_MAGIC_CODE_V2`]. BODYCRC is the IEEE CRC-32 of the body with the
//! top bit cleared, as RocketMQ computes it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::reader::Reader;

/// Magic code of a message whose topic length is one byte.
pub const MESSAGE_MAGIC_CODE: i32 = -626_843_481; // 0xDAA320A7
/// Magic code of a message whose topic length is two bytes.
pub const MESSAGE_MAGIC_CODE_V2: i32 = -626_843_477; // 0xDAA320AB
/// Magic code of the blank record that fills the end of a commit log file.
pub const BLANK_MAGIC_CODE: i32 = -875_286_124; // 0xCBD43194

/// Byte position of QUEUEOFFSET inside a stored message.
pub const QUEUE_OFFSET_POSITION: usize = 20;
/// Byte position of PHYSICALOFFSET inside a stored message.
pub const PHYSICAL_OFFSET_POSITION: usize = 28;
/// Byte position of SYSFLAG inside a stored message.
pub const SYS_FLAG_POSITION: usize = 36;
/// Byte position of BORNTIMESTAMP inside a stored message.
pub const BORN_TIMESTAMP_POSITION: usize = 40;
/// Byte position of BORNHOST inside a stored message.
pub const BORN_HOST_POSITION: usize = 48;

/// Largest topic name (bytes) the one-byte topic length can hold.
pub const MAX_TOPIC_LEN_V1: usize = i8::MAX as usize;
/// Largest properties string (bytes): its length field is a signed short.
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// Bits of SYSFLAG.
pub mod sys_flag {
    pub const COMPRESSED: i32 = 0x1;
    pub const MULTI_TAGS: i32 = 0x1 << 1;
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    pub const TRANSACTION_PREPARED_TYPE: i32 = 0x1 << 2;
    pub const TRANSACTION_COMMIT_TYPE: i32 = 0x2 << 2;
    pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0x3 << 2;
    pub const BORNHOST_V6: i32 = 0x1 << 4;
    pub const STOREHOST_V6: i32 = 0x1 << 5;

    /// The transaction type bits of a sys flag.
    pub fn transaction_type(flag: i32) -> i32 {
        flag & TRANSACTION_ROLLBACK_TYPE
    }

    /// `flag` with its transaction type replaced by `kind`.
    pub fn with_transaction_type(flag: i32, kind: i32) -> i32 {
        (flag & !TRANSACTION_ROLLBACK_TYPE) | kind
    }
}

/// Names of the message properties RocketMQ defines and we use.
pub mod property {
    pub const KEYS: &str = "KEYS";
    pub const TAGS: &str = "TAGS";
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const CONSUME_START_TIMESTAMP: &str = "CONSUME_START_TIME";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    pub const TRANSACTION_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    pub const CLUSTER: &str = "CLUSTER";
    /// RocketMQ 5 timer: absolute delivery time (ms since the epoch).
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// RocketMQ 5 timer: delivery delay from the send, in seconds.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// RocketMQ 5 timer: delivery delay from the send, in milliseconds.
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Set by the broker on a timer message: the absolute time (ms) it is
    /// due. A message that carries it is not timed again.
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
}

/// How a broker's remark refusing a message's timer properties begins
/// (RocketMQ's wording); the 5.x proxy answers ILLEGAL_DELIVERY_TIME for it.
pub const TIMER_MESSAGE_ILLEGAL: &str = "timer message illegal";

/// Separates a property name from its value.
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Separates one property from the next.
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// Message properties. Ordered so that encoding is deterministic.
pub type Properties = BTreeMap<String, String>;

/// Encodes properties as `name\u0001value\u0002` pairs.
pub fn properties_to_string(properties: &Properties) -> String {
    let mut out =
        String::with_capacity(properties.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (name, value) in properties {
        out.push_str(name);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(value);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Decodes a properties string. Pieces without a name/value separator are
/// skipped, as RocketMQ does.
pub fn string_to_properties(s: &str) -> Properties {
    s.split(PROPERTY_SEPARATOR)
        .filter_map(|pair| pair.split_once(NAME_VALUE_SEPARATOR))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A KEYS property split on spaces as RocketMQ does (no keys when absent).
pub fn split_keys(keys: Option<&str>) -> Vec<&str> {
    keys.map(|k| k.split(' ').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default()
}

/// RocketMQ's body checksum: CRC-32 (IEEE) with the top bit cleared.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

fn host_len(addr: &SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    }
}

fn put_host(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(i32::from(addr.port()));
}

fn read_host(
    r: &mut Reader<'_>,
    v6: bool,
    field: &'static str,
) -> Result<SocketAddr, ProtocolError> {
    let ip = if v6 {
        let octets: [u8; 16] = r.bytes(16, field)?.try_into().expect("16 bytes");
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        let octets: [u8; 4] = r.bytes(4, field)?.try_into().expect("4 bytes");
        IpAddr::V4(Ipv4Addr::from(octets))
    };
    let port = r.i32(field)?;
    Ok(SocketAddr::new(ip, port as u16))
}

/// A message as it is written: borrowed fields, with the properties already
/// in their string form, so that the broker can encode straight from a
/// request without building owned values.
#[derive(Debug, Clone, Copy)]
pub struct MessageRecord<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    /// Host-address bits are set from `born_host`/`store_host` on encode.
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub properties: &'a str,
}

impl MessageRecord<'_> {
    fn topic_len_bytes(&self) -> usize {
        if self.topic.len() > MAX_TOPIC_LEN_V1 {
            2
        } else {
            1
        }
    }

    /// TOTALSIZE of the encoded record.
    pub fn encoded_len(&self) -> usize {
        4 + 4
            + 4
            + 4
            + 4
            + 8
            + 8
            + 4
            + 8
            + host_len(&self.born_host)
            + 8
            + host_len(&self.store_host)
            + 4
            + 8
            + 4
            + self.body.len()
            + self.topic_len_bytes()
            + self.topic.len()
            + 2
            + self.properties.len()
    }

    /// Checks the lengths that the format limits.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.topic.len() > i16::MAX as usize {
            return Err(ProtocolError::TooLongToEncode {
                field: "topic",
                length: self.topic.len(),
                limit: i16::MAX as usize,
            });
        }
        if self.properties.len() > MAX_PROPERTIES_LEN {
            return Err(ProtocolError::TooLongToEncode {
                field: "properties",
                length: self.properties.len(),
                limit: MAX_PROPERTIES_LEN,
            });
        }
        if self.encoded_len() > i32::MAX as usize {
            return Err(ProtocolError::TooLongToEncode {
                field: "message",
                length: self.encoded_len(),
                limit: i32::MAX as usize,
            });
        }
        Ok(())
    }

    /// Appends the record to `out`; returns its length.
    pub fn encode(&self, out: &mut BytesMut) -> Result<usize, ProtocolError> {
        self.validate()?;
        let total = self.encoded_len();
        let mut sys_flag = self.sys_flag & !(sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6);
        if self.born_host.is_ipv6() {
            sys_flag |= sys_flag::BORNHOST_V6;
        }
        if self.store_host.is_ipv6() {
            sys_flag |= sys_flag::STOREHOST_V6;
        }
        let v2 = self.topic_len_bytes() == 2;
        out.reserve(total);
        out.put_i32(total as i32);
        out.put_i32(if v2 {
            MESSAGE_MAGIC_CODE_V2
        } else {
            MESSAGE_MAGIC_CODE
        });
        out.put_u32(body_crc(self.body));
        out.put_i32(self.queue_id);
        out.put_i32(self.flag);
        out.put_i64(self.queue_offset);
        out.put_i64(self.commit_log_offset);
        out.put_i32(sys_flag);
        out.put_i64(self.born_timestamp);
        put_host(out, &self.born_host);
        out.put_i64(self.store_timestamp);
        put_host(out, &self.store_host);
        out.put_i32(self.reconsume_times);
        out.put_i64(self.prepared_transaction_offset);
        out.put_i32(self.body.len() as i32);
        out.put_slice(self.body);
        if v2 {
            out.put_i16(self.topic.len() as i16);
        } else {
            out.put_u8(self.topic.len() as u8);
        }
        out.put_slice(self.topic.as_bytes());
        out.put_i16(self.properties.len() as i16);
        out.put_slice(self.properties.as_bytes());
        Ok(total)
    }
}

/// A decoded stored message: RocketMQ's `MessageExt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body_crc: u32,
    pub body: Bytes,
    pub properties: Properties,
    /// TOTALSIZE as stored.
    pub store_size: usize,
}

impl MessageExt {
    /// Encodes the message (BODYCRC recomputed from the body).
    pub fn encode(&self, out: &mut BytesMut) -> Result<usize, ProtocolError> {
        let properties = properties_to_string(&self.properties);
        self.record(&properties).encode(out)
    }

    /// A borrowed record of this message with `properties` as its string.
    pub fn record<'a>(&'a self, properties: &'a str) -> MessageRecord<'a> {
        MessageRecord {
            topic: &self.topic,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            commit_log_offset: self.commit_log_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            properties,
        }
    }

    /// Decodes one message from the front of `buf`; returns it and its size.
    /// With `verify_crc`, a body whose CRC differs from BODYCRC is an error.
    pub fn decode(buf: &[u8], verify_crc: bool) -> Result<(Self, usize), ProtocolError> {
        let mut head = Reader::new(buf);
        let total = head.len_i32("TOTALSIZE")?;
        if total > buf.len() {
            return Err(ProtocolError::Truncated {
                field: "message",
                offset: 0,
                needed: total,
                had: buf.len(),
            });
        }
        let mut r = Reader::new(&buf[..total]);
        r.i32("TOTALSIZE")?;
        let magic = r.i32("MAGICCODE")?;
        let v2 = match magic {
            MESSAGE_MAGIC_CODE => false,
            MESSAGE_MAGIC_CODE_V2 => true,
            other => return Err(ProtocolError::BadMagic(other as u32)),
        };
        let body_crc_stored = r.i32("BODYCRC")? as u32;
        let queue_id = r.i32("QUEUEID")?;
        let flag = r.i32("FLAG")?;
        let queue_offset = r.i64("QUEUEOFFSET")?;
        let commit_log_offset = r.i64("PHYSICALOFFSET")?;
        let sys_flag = r.i32("SYSFLAG")?;
        let born_timestamp = r.i64("BORNTIMESTAMP")?;
        let born_host = read_host(&mut r, sys_flag & sys_flag::BORNHOST_V6 != 0, "BORNHOST")?;
        let store_timestamp = r.i64("STORETIMESTAMP")?;
        let store_host = read_host(
            &mut r,
            sys_flag & sys_flag::STOREHOST_V6 != 0,
            "STOREHOSTADDRESS",
        )?;
        let reconsume_times = r.i32("RECONSUMETIMES")?;
        let prepared_transaction_offset = r.i64("PREPAREDTRANSACTIONOFFSET")?;
        let body_len = r.len_i32("BODYLEN")?;
        let body = r.bytes(body_len, "BODY")?;
        if verify_crc {
            let computed = body_crc(body);
            if computed != body_crc_stored {
                return Err(ProtocolError::BodyCrcMismatch {
                    stored: body_crc_stored,
                    computed,
                });
            }
        }
        let topic_len = if v2 {
            r.len_i16("TOPICLEN")?
        } else {
            usize::from(r.u8("TOPICLEN")?)
        };
        let topic = r.str(topic_len, "TOPIC")?.to_owned();
        let properties_len = r.len_i16("PROPERTIESLEN")?;
        let properties = string_to_properties(r.str(properties_len, "PROPERTIES")?);
        if r.position() != total {
            return Err(ProtocolError::SizeMismatch {
                declared: total,
                actual: r.position(),
            });
        }
        Ok((
            MessageExt {
                topic,
                queue_id,
                flag,
                queue_offset,
                commit_log_offset,
                sys_flag,
                born_timestamp,
                born_host,
                store_timestamp,
                store_host,
                reconsume_times,
                prepared_transaction_offset,
                body_crc: body_crc_stored,
                body: Bytes::copy_from_slice(body),
                properties,
                store_size: total,
            },
            total,
        ))
    }

    /// Decodes every message in `buf` (a PULL_MESSAGE response body).
    pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Self>, ProtocolError> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (msg, used) = Self::decode(buf, false)?;
            out.push(msg);
            buf = &buf[used..];
        }
        Ok(out)
    }

    /// The offset message id: store host and commit log offset in hex.
    pub fn offset_msg_id(&self) -> String {
        encode_message_id(self.store_host, self.commit_log_offset)
    }

    /// The client-assigned unique id, else the offset message id, as
    /// RocketMQ's consumers report `msgId`.
    pub fn msg_id(&self) -> String {
        self.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .map_or_else(|| self.offset_msg_id(), str::to_owned)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// KEYS, split on spaces as RocketMQ does.
    pub fn keys(&self) -> Vec<&str> {
        split_keys(self.property(property::KEYS))
    }
}

/// The PROPERTIES string of the encoded message at the front of `buf`,
/// found by skipping the other fields and the body unread (RocketMQ's
/// `MessageDecoder.decodeProperties`): what a property filter needs of a
/// stored message.
pub fn record_properties(buf: &[u8]) -> Result<&str, ProtocolError> {
    let mut r = Reader::new(buf);
    let total = r.len_i32("TOTALSIZE")?;
    let v2 = match r.i32("MAGICCODE")? {
        MESSAGE_MAGIC_CODE => false,
        MESSAGE_MAGIC_CODE_V2 => true,
        other => return Err(ProtocolError::BadMagic(other as u32)),
    };
    // BODYCRC, QUEUEID, FLAG, QUEUEOFFSET, PHYSICALOFFSET.
    r.bytes(SYS_FLAG_POSITION - 8, "PHYSICALOFFSET")?;
    let flag = r.i32("SYSFLAG")?;
    let host = |v6: bool| if v6 { 16 + 4 } else { 4 + 4 };
    // BORNTIMESTAMP, BORNHOST, STORETIMESTAMP, STOREHOSTADDRESS,
    // RECONSUMETIMES, PREPAREDTRANSACTIONOFFSET.
    let skip = 8
        + host(flag & sys_flag::BORNHOST_V6 != 0)
        + 8
        + host(flag & sys_flag::STOREHOST_V6 != 0)
        + 4
        + 8;
    r.bytes(skip, "PREPAREDTRANSACTIONOFFSET")?;
    let body_len = r.len_i32("BODYLEN")?;
    r.bytes(body_len, "BODY")?;
    let topic_len = if v2 {
        r.len_i16("TOPICLEN")?
    } else {
        usize::from(r.u8("TOPICLEN")?)
    };
    r.bytes(topic_len, "TOPIC")?;
    let properties_len = r.len_i16("PROPERTIESLEN")?;
    let properties = r.str(properties_len, "PROPERTIES")?;
    if r.position() != total {
        return Err(ProtocolError::SizeMismatch {
            declared: total,
            actual: r.position(),
        });
    }
    Ok(properties)
}

/// The offset message id of a message: `[ip:4|16][port:4][offset:8]` as upper
/// case hex (32 characters for IPv4).
pub fn encode_message_id(store_host: SocketAddr, commit_log_offset: i64) -> String {
    let mut bytes = BytesMut::with_capacity(28);
    put_host(&mut bytes, &store_host);
    bytes.put_i64(commit_log_offset);
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Splits an offset message id into the store host and commit log offset.
pub fn decode_message_id(id: &str) -> Result<(SocketAddr, i64), ProtocolError> {
    let invalid = || ProtocolError::InvalidMessageId(id.to_owned());
    if id.len() != 32 && id.len() != 56 {
        return Err(invalid());
    }
    let bytes = (0..id.len())
        .step_by(2)
        .map(|i| {
            id.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let mut r = Reader::new(&bytes);
    let host = read_host(&mut r, bytes.len() == 28, "message id host").map_err(|_| invalid())?;
    let offset = r.i64("message id offset").map_err(|_| invalid())?;
    Ok((host, offset))
}

/// One message of a SEND_BATCH_MESSAGE body.
///
/// Wire: `[TOTALSIZE:4][MAGICCODE:4 = 0][BODYCRC:4 = 0][FLAG:4][BODYLEN:4][BODY]
/// [PROPERTIESLEN:2][PROPERTIES]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    pub flag: i32,
    pub body: Bytes,
    pub properties: Properties,
}

impl BatchEntry {
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let properties = properties_to_string(&self.properties);
        if properties.len() > MAX_PROPERTIES_LEN {
            return Err(ProtocolError::TooLongToEncode {
                field: "properties",
                length: properties.len(),
                limit: MAX_PROPERTIES_LEN,
            });
        }
        let total = 4 + 4 + 4 + 4 + 4 + self.body.len() + 2 + properties.len();
        out.put_i32(total as i32);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(self.flag);
        out.put_i32(self.body.len() as i32);
        out.put_slice(&self.body);
        out.put_i16(properties.len() as i16);
        out.put_slice(properties.as_bytes());
        Ok(())
    }

    /// Decodes every entry of a batch body.
    pub fn decode_all(buf: &[u8]) -> Result<Vec<Self>, ProtocolError> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while r.remaining() > 0 {
            let start = r.position();
            let total = r.len_i32("batch TOTALSIZE")?;
            r.i32("batch MAGICCODE")?;
            r.i32("batch BODYCRC")?;
            let flag = r.i32("batch FLAG")?;
            let body_len = r.len_i32("batch BODYLEN")?;
            let body = Bytes::copy_from_slice(r.bytes(body_len, "batch BODY")?);
            let properties_len = r.len_i16("batch PROPERTIESLEN")?;
            let properties = string_to_properties(r.str(properties_len, "batch PROPERTIES")?);
            if r.position() - start != total {
                return Err(ProtocolError::SizeMismatch {
                    declared: total,
                    actual: r.position() - start,
                });
            }
            out.push(BatchEntry {
                flag,
                body,
                properties,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
