//! Reading stored records back out of commit log bytes, and what the
//! dispatcher needs from each message to build consume queue and index
//! entries.
//!
//! The same parser serves three callers: `put` (right after the append, so a
//! message is readable as soon as the put returns), recovery (re-dispatching
//! what the consume queues and index lack) and `append_raw` (a slave's
//! replicated bytes). Every length read from disk is bounds-checked.

use mq_protocol::message::{
    property, sys_flag, BLANK_MAGIC_CODE, MESSAGE_MAGIC_CODE, MESSAGE_MAGIC_CODE_V2,
    NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, QUEUE_OFFSET_POSITION, SYS_FLAG_POSITION,
};

/// Topic whose consume queues hold delayed messages; their tagsCode is the
/// delivery time.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Smallest possible stored message: every fixed field, empty body, topic
/// and properties.
pub(crate) const MIN_MESSAGE_SIZE: usize =
    4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2;

/// Bytes of the blank record header: `[TOTALSIZE:4][BLANK_MAGIC_CODE:4]`.
pub(crate) const BLANK_HEADER: usize = 8;

/// What the dispatcher needs from one stored message; borrows the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DispatchRequest<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub commit_log_offset: u64,
    pub size: u32,
    pub queue_offset: i64,
    pub sys_flag: i32,
    pub store_timestamp: i64,
    pub tags_code: i64,
    pub keys: Option<&'a str>,
    pub uniq_key: Option<&'a str>,
}

impl DispatchRequest<'_> {
    /// PREPARED and ROLLBACK messages get no consume queue entry.
    pub(crate) fn goes_to_consume_queue(&self) -> bool {
        matches!(
            sys_flag::transaction_type(self.sys_flag),
            sys_flag::TRANSACTION_NOT_TYPE | sys_flag::TRANSACTION_COMMIT_TYPE
        )
    }

    /// ROLLBACK messages are not indexed (RocketMQ's IndexService).
    pub(crate) fn goes_to_index(&self) -> bool {
        sys_flag::transaction_type(self.sys_flag) != sys_flag::TRANSACTION_ROLLBACK_TYPE
    }
}

/// One record at a commit log position.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    /// A message `size` bytes long.
    Message(DispatchRequest<'a>),
    /// The blank record filling the rest of the segment.
    Blank,
    /// Zeros: the end of the written data.
    End,
}

/// Java's `String.hashCode()` (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// RocketMQ's tagsCode for an ordinary topic: the TAGS hash, sign-extended.
pub fn tags_code(tags: Option<&str>) -> i64 {
    tags.filter(|t| !t.is_empty())
        .map_or(0, |t| i64::from(java_string_hash(t)))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at.checked_add(4)?)
        .map(|s| i32::from_be_bytes(s.try_into().expect("4 bytes")))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at.checked_add(8)?)
        .map(|s| i64::from_be_bytes(s.try_into().expect("8 bytes")))
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    b.get(at..at.checked_add(2)?)
        .map(|s| i16::from_be_bytes(s.try_into().expect("2 bytes")))
}

/// The properties dispatch reads, found in one pass over an encoded
/// properties string without allocating (the first of a repeated name).
#[derive(Debug, Default, PartialEq, Eq)]
struct Dispatched<'a> {
    tags: Option<&'a str>,
    keys: Option<&'a str>,
    uniq_key: Option<&'a str>,
    timer_out_ms: Option<&'a str>,
    delay_level: Option<&'a str>,
}

impl<'a> Dispatched<'a> {
    fn scan(properties: &'a str) -> Self {
        let mut found = Dispatched::default();
        for (name, value) in properties
            .split(PROPERTY_SEPARATOR)
            .filter_map(|pair| pair.split_once(NAME_VALUE_SEPARATOR))
        {
            let slot = match name {
                property::TAGS => &mut found.tags,
                property::KEYS => &mut found.keys,
                property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX => &mut found.uniq_key,
                property::TIMER_OUT_MS => &mut found.timer_out_ms,
                property::DELAY_TIME_LEVEL => &mut found.delay_level,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }
}

/// Parses the record at the front of `buf`, which runs from the record's
/// position to the end of its segment's data. `position` is the record's
/// commit log offset (checked against its PHYSICALOFFSET). With
/// `verify_crc` the body CRC is checked. `Err` holds why the bytes are not a
/// valid record (a torn or corrupt tail, to recovery).
pub(crate) fn parse_record<'a>(
    buf: &'a [u8],
    position: u64,
    verify_crc: bool,
    delay_levels: &[i64],
) -> Result<Record<'a>, String> {
    let total = be_i32(buf, 0).ok_or("fewer than 4 bytes left")?;
    let magic = be_i32(buf, 4).ok_or("no room for a magic code")?;
    if magic == BLANK_MAGIC_CODE {
        return if usize::try_from(total).ok() == Some(buf.len()) {
            Ok(Record::Blank)
        } else {
            Err(format!(
                "blank record of {total} bytes does not fill the {} left",
                buf.len()
            ))
        };
    }
    if total == 0 && magic == 0 {
        return Ok(Record::End);
    }
    if magic != MESSAGE_MAGIC_CODE && magic != MESSAGE_MAGIC_CODE_V2 {
        return Err(format!("bad magic code {magic:#x}"));
    }
    let total = usize::try_from(total).map_err(|_| format!("negative size {total}"))?;
    if total < MIN_MESSAGE_SIZE {
        return Err(format!("size {total} below the minimum {MIN_MESSAGE_SIZE}"));
    }
    // A message always leaves room for a blank header after it.
    let room = buf
        .len()
        .checked_sub(BLANK_HEADER)
        .ok_or("segment tail too short")?;
    if total > room {
        return Err(format!(
            "size {total} runs past the segment ({room} usable)"
        ));
    }
    parse_exact(&buf[..total], position, verify_crc, delay_levels).map(Record::Message)
}

/// Parses one whole message record (`rec` is exactly TOTALSIZE bytes, as
/// just encoded or as received from a master) at commit log `position`.
pub(crate) fn parse_exact<'a>(
    rec: &'a [u8],
    position: u64,
    verify_crc: bool,
    delay_levels: &[i64],
) -> Result<DispatchRequest<'a>, String> {
    let total = be_i32(rec, 0).ok_or("fewer than 4 bytes")?;
    let magic = be_i32(rec, 4).ok_or("no room for a magic code")?;
    if magic != MESSAGE_MAGIC_CODE && magic != MESSAGE_MAGIC_CODE_V2 {
        return Err(format!("bad magic code {magic:#x}"));
    }
    if usize::try_from(total).ok() != Some(rec.len()) || rec.len() < MIN_MESSAGE_SIZE {
        return Err(format!(
            "TOTALSIZE {total} does not match the record's {} bytes",
            rec.len()
        ));
    }
    let req = parse_message(
        rec,
        magic == MESSAGE_MAGIC_CODE_V2,
        verify_crc,
        delay_levels,
    )?;
    if req.commit_log_offset != position {
        return Err(format!(
            "PHYSICALOFFSET {} differs from the position {position}",
            req.commit_log_offset
        ));
    }
    Ok(req)
}

/// Whether the record at the front of `rec` is a blank record.
pub(crate) fn is_blank(rec: &[u8]) -> bool {
    be_i32(rec, 4) == Some(BLANK_MAGIC_CODE)
}

/// Parses one whole message record (`rec.len()` == TOTALSIZE).
fn parse_message<'a>(
    rec: &'a [u8],
    v2: bool,
    verify_crc: bool,
    delay_levels: &[i64],
) -> Result<DispatchRequest<'a>, String> {
    let short = |field: &str| format!("record ends inside {field}");
    let body_crc = be_i32(rec, 8).ok_or_else(|| short("BODYCRC"))? as u32;
    let queue_id = be_i32(rec, 12).ok_or_else(|| short("QUEUEID"))?;
    let queue_offset = be_i64(rec, QUEUE_OFFSET_POSITION).ok_or_else(|| short("QUEUEOFFSET"))?;
    let phys = be_i64(rec, 28).ok_or_else(|| short("PHYSICALOFFSET"))?;
    let flag = be_i32(rec, SYS_FLAG_POSITION).ok_or_else(|| short("SYSFLAG"))?;
    let born_host_len = if flag & sys_flag::BORNHOST_V6 != 0 {
        20
    } else {
        8
    };
    let store_host_len = if flag & sys_flag::STOREHOST_V6 != 0 {
        20
    } else {
        8
    };
    let store_ts_at = 48 + born_host_len;
    let store_timestamp = be_i64(rec, store_ts_at).ok_or_else(|| short("STORETIMESTAMP"))?;
    let body_len_at = store_ts_at + 8 + store_host_len + 4 + 8;
    let body_len = be_i32(rec, body_len_at).ok_or_else(|| short("BODYLEN"))?;
    let body_len =
        usize::try_from(body_len).map_err(|_| format!("negative body length {body_len}"))?;
    let body_at = body_len_at + 4;
    let body_end = body_at
        .checked_add(body_len)
        .ok_or("body length overflows")?;
    let body = rec.get(body_at..body_end).ok_or_else(|| short("BODY"))?;
    if verify_crc {
        let computed = mq_protocol::message::body_crc(body);
        if computed != body_crc {
            return Err(format!(
                "body CRC {body_crc:#x} stored, {computed:#x} computed"
            ));
        }
    }
    let (topic_len, topic_at) = if v2 {
        let len = be_i16(rec, body_end).ok_or_else(|| short("TOPICLEN"))?;
        (
            usize::try_from(len).map_err(|_| "negative topic length")?,
            body_end + 2,
        )
    } else {
        (
            usize::from(*rec.get(body_end).ok_or_else(|| short("TOPICLEN"))?),
            body_end + 1,
        )
    };
    let topic_end = topic_at
        .checked_add(topic_len)
        .ok_or("topic length overflows")?;
    let topic = std::str::from_utf8(rec.get(topic_at..topic_end).ok_or_else(|| short("TOPIC"))?)
        .map_err(|_| "topic is not UTF-8")?;
    let props_len = be_i16(rec, topic_end).ok_or_else(|| short("PROPERTIESLEN"))?;
    let props_len = usize::try_from(props_len).map_err(|_| "negative properties length")?;
    let props_at = topic_end + 2;
    let props_end = props_at
        .checked_add(props_len)
        .ok_or("properties length overflows")?;
    if props_end != rec.len() {
        return Err(format!(
            "fields end at {props_end} but TOTALSIZE is {}",
            rec.len()
        ));
    }
    let properties =
        std::str::from_utf8(&rec[props_at..props_end]).map_err(|_| "properties are not UTF-8")?;
    // The store refuses NUL in topics and properties at put time, so a NUL
    // here is a torn tail (zeros) in the fields the body CRC does not cover.
    if verify_crc && (topic.contains('\0') || properties.contains('\0')) {
        return Err("NUL byte in topic or properties (torn record)".into());
    }

    let found = Dispatched::scan(properties);
    let tags_code = if topic == SCHEDULE_TOPIC {
        delivery_time(found.delay_level, store_timestamp, delay_levels)
    } else if topic == mq_protocol::topic::TIMER_TOPIC {
        // The broker's timer service rebuilds its index from these alone.
        found
            .timer_out_ms
            .and_then(|t| t.parse().ok())
            .unwrap_or(store_timestamp)
    } else {
        tags_code(found.tags)
    };
    Ok(DispatchRequest {
        topic,
        queue_id,
        commit_log_offset: u64::try_from(phys)
            .map_err(|_| format!("negative PHYSICALOFFSET {phys}"))?,
        size: rec.len() as u32,
        queue_offset,
        sys_flag: flag,
        store_timestamp,
        tags_code,
        keys: found.keys,
        uniq_key: found.uniq_key,
    })
}

/// Delivery time of a delayed message: store time plus its level's delay
/// (levels above the last one use the last; an unknown level adds 1 s, as
/// RocketMQ's ScheduleMessageService does).
fn delivery_time(level: Option<&str>, store_timestamp: i64, delay_levels: &[i64]) -> i64 {
    let level: usize = level.and_then(|l| l.parse().ok()).unwrap_or(0);
    let level = level.min(delay_levels.len());
    match level.checked_sub(1).and_then(|i| delay_levels.get(i)) {
        Some(delay) => store_timestamp.saturating_add(*delay),
        None => store_timestamp.saturating_add(1000),
    }
}

/// Store timestamp of an encoded message, if `rec` is long enough.
pub(crate) fn store_timestamp_of(rec: &[u8]) -> Option<i64> {
    let flag = be_i32(rec, SYS_FLAG_POSITION)?;
    let born_host_len = if flag & sys_flag::BORNHOST_V6 != 0 {
        20
    } else {
        8
    };
    be_i64(rec, 48 + born_host_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use mq_protocol::MessageRecord;

    fn encode(topic: &str, props: &str, phys: i64) -> BytesMut {
        let mut out = BytesMut::new();
        MessageRecord {
            topic,
            queue_id: 3,
            flag: 0,
            queue_offset: 9,
            commit_log_offset: phys,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: "1.2.3.4:5".parse().unwrap(),
            store_timestamp: 1_000_000,
            store_host: "[::1]:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: b"payload",
            properties: props,
        }
        .encode(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn java_hash_matches_known_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash("hello world"), 1_794_106_052);
        // Overflowing and non-ASCII (UTF-16 code units, a surrogate pair here).
        assert_eq!(
            java_string_hash("TopicTest#order-1"),
            "TopicTest#order-1"
                .encode_utf16()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
        assert_eq!(java_string_hash("é"), 233);
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn parses_a_message_and_its_dispatch_fields() {
        let props = "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}U1\u{2}";
        let mut seg = encode("T", props, 100).to_vec();
        let len = seg.len();
        seg.extend([0u8; 64]);
        let Record::Message(req) = parse_record(&seg, 100, true, &[]).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(req.topic, "T");
        assert_eq!(req.queue_id, 3);
        assert_eq!(req.queue_offset, 9);
        assert_eq!(req.size as usize, len);
        assert_eq!(req.store_timestamp, 1_000_000);
        assert_eq!(req.tags_code, 2_598_919);
        assert_eq!(req.keys, Some("k1 k2"));
        assert_eq!(req.uniq_key, Some("U1"));
        assert_eq!(store_timestamp_of(&seg), Some(1_000_000));
        assert!(
            parse_record(&seg, 101, true, &[]).is_err(),
            "wrong position"
        );
        assert!(matches!(
            parse_record(&seg[len..], 0, true, &[]),
            Ok(Record::End)
        ));
    }

    #[test]
    fn one_pass_finds_the_first_of_each_dispatched_property() {
        let props = "KEYS\u{1}k1\u{2}odd\u{2}TAGS\u{1}A\u{2}DELAY\u{1}3\u{2}\
                     TAGS\u{1}B\u{2}UNIQ_KEY\u{1}U\u{2}TIMER_OUT_MS\u{1}42\u{2}x\u{1}y";
        assert_eq!(
            Dispatched::scan(props),
            Dispatched {
                tags: Some("A"),
                keys: Some("k1"),
                uniq_key: Some("U"),
                timer_out_ms: Some("42"),
                delay_level: Some("3"),
            }
        );
        assert_eq!(Dispatched::scan(""), Dispatched::default());
    }

    #[test]
    fn schedule_topic_tags_code_is_delivery_time() {
        let levels = [1000, 5000];
        let mut seg = encode(SCHEDULE_TOPIC, "DELAY\u{1}2\u{2}", 0).to_vec();
        seg.extend([0u8; 8]);
        let Record::Message(req) = parse_record(&seg, 0, true, &levels).unwrap() else {
            panic!()
        };
        assert_eq!(req.tags_code, 1_005_000);
        let mut seg = encode(SCHEDULE_TOPIC, "DELAY\u{1}9\u{2}", 0).to_vec();
        seg.extend([0u8; 8]);
        let Record::Message(req) = parse_record(&seg, 0, true, &levels).unwrap() else {
            panic!()
        };
        assert_eq!(
            req.tags_code, 1_005_000,
            "levels above the last use the last"
        );
    }

    #[test]
    fn timer_topic_tags_code_is_its_due_time() {
        let timer = mq_protocol::topic::TIMER_TOPIC;
        let mut seg = encode(timer, "TIMER_OUT_MS\u{1}93600000\u{2}TAGS\u{1}A\u{2}", 0).to_vec();
        seg.extend([0u8; 8]);
        let Record::Message(req) = parse_record(&seg, 0, true, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(req.tags_code, 93_600_000);
        // Without a due time (not written by the broker): due at once.
        let mut seg = encode(timer, "TAGS\u{1}A\u{2}", 0).to_vec();
        seg.extend([0u8; 8]);
        let Record::Message(req) = parse_record(&seg, 0, true, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(req.tags_code, 1_000_000);
    }

    #[test]
    fn every_truncation_and_corruption_is_refused() {
        let rec = encode("T", "TAGS\u{1}A\u{2}", 0).to_vec();
        for cut in 1..rec.len() {
            let mut seg = rec[..cut].to_vec();
            seg.extend([0xEEu8; 8]);
            assert!(parse_record(&seg, 0, true, &[]).is_err(), "cut at {cut}");
        }
        let mut seg = rec.clone();
        seg.extend([0u8; 8]);
        // Magic, size, CRC and body corruption are always caught.
        // Body bytes are len-18..len-11 (then TOPICLEN, T, PROPERTIESLEN, 7 bytes).
        for i in (0..12).chain(rec.len() - 18..rec.len() - 11).chain(28..36) {
            let mut bad = seg.clone();
            bad[i] ^= 0x5A;
            assert!(parse_record(&bad, 0, true, &[]).is_err(), "byte {i}");
        }
    }

    #[test]
    fn blank_record_must_fill_the_segment() {
        let mut seg = vec![0u8; 32];
        seg[0..4].copy_from_slice(&32i32.to_be_bytes());
        seg[4..8].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
        assert!(matches!(
            parse_record(&seg, 0, true, &[]),
            Ok(Record::Blank)
        ));
        assert!(parse_record(&seg[..31], 0, true, &[]).is_err());
    }
}
