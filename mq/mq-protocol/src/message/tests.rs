//! Tests of the message codec: round trips, golden bytes, truncation and
//! corruption, message ids and batch bodies.

use super::*;

fn sample() -> MessageExt {
    let mut properties = Properties::new();
    properties.insert(property::TAGS.into(), "TagA".into());
    properties.insert(property::KEYS.into(), "order-1 order-2".into());
    properties.insert(
        property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(),
        "7F0000010001ABCD".into(),
    );
    MessageExt {
        topic: "TopicTest".into(),
        queue_id: 2,
        flag: 0,
        queue_offset: 17,
        commit_log_offset: 4096,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: "10.0.0.7:50123".parse().unwrap(),
        store_timestamp: 1_700_000_000_005,
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body_crc: body_crc(b"Hello RocketMQ"),
        body: Bytes::from_static(b"Hello RocketMQ"),
        properties,
        store_size: 0,
    }
}

fn encoded(msg: &MessageExt) -> BytesMut {
    let mut out = BytesMut::new();
    msg.encode(&mut out).unwrap();
    out
}

#[test]
fn message_round_trips() {
    let msg = sample();
    let bytes = encoded(&msg);
    let (back, used) = MessageExt::decode(&bytes, true).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(
        back,
        MessageExt {
            store_size: used,
            ..msg
        }
    );
    assert_eq!(back.tags(), Some("TagA"));
    assert_eq!(back.keys(), vec!["order-1", "order-2"]);
    assert_eq!(back.msg_id(), "7F0000010001ABCD");
}

#[test]
fn ipv6_hosts_and_long_topics_round_trip() {
    let mut msg = sample();
    msg.born_host = "[::1]:1234".parse().unwrap();
    msg.store_host = "[fe80::1]:10911".parse().unwrap();
    msg.topic = "t".repeat(300);
    let bytes = encoded(&msg);
    assert_eq!(
        i32::from_be_bytes(bytes[4..8].try_into().unwrap()),
        MESSAGE_MAGIC_CODE_V2
    );
    let (back, _) = MessageExt::decode(&bytes, true).unwrap();
    assert_eq!(back.born_host, msg.born_host);
    assert_eq!(back.store_host, msg.store_host);
    assert_eq!(back.topic, msg.topic);
    assert_ne!(back.sys_flag & sys_flag::BORNHOST_V6, 0);
    assert_ne!(back.sys_flag & sys_flag::STOREHOST_V6, 0);
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let bytes = encoded(&sample());
    for cut in 0..bytes.len() {
        assert!(
            MessageExt::decode(&bytes[..cut], false).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn properties_are_found_without_decoding_the_body() {
    let msg = sample();
    let bytes = encoded(&msg);
    let want = properties_to_string(&msg.properties);
    assert_eq!(record_properties(&bytes), Ok(want.as_str()));
    // With IPv6 hosts and a long topic (MAGICCODE v2) too.
    let mut v6 = sample();
    v6.born_host = "[::1]:1234".parse().unwrap();
    v6.store_host = "[fe80::1]:10911".parse().unwrap();
    v6.topic = "t".repeat(300);
    assert_eq!(record_properties(&encoded(&v6)), Ok(want.as_str()));
    for cut in 0..bytes.len() {
        assert!(record_properties(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = bytes.clone();
    bad[4] ^= 0xff;
    assert!(matches!(
        record_properties(&bad),
        Err(ProtocolError::BadMagic(_))
    ));
}

#[test]
fn corrupted_body_fails_the_crc_check() {
    let mut bytes = encoded(&sample());
    let body_at = bytes.len()
        - 1
        - "TopicTest".len()
        - 2
        - properties_to_string(&sample().properties).len()
        - 1;
    bytes[body_at] ^= 0xFF;
    assert!(matches!(
        MessageExt::decode(&bytes, true),
        Err(ProtocolError::BodyCrcMismatch { .. })
    ));
    assert!(MessageExt::decode(&bytes, false).is_ok());
}

#[test]
fn bad_magic_and_blank_records_are_refused() {
    let mut bytes = encoded(&sample());
    bytes[4..8].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
    assert_eq!(
        MessageExt::decode(&bytes, false),
        Err(ProtocolError::BadMagic(BLANK_MAGIC_CODE as u32))
    );
}

#[test]
fn total_size_disagreeing_with_fields_is_refused() {
    let mut bytes = encoded(&sample());
    bytes.put_u8(0);
    let total = bytes.len() as i32;
    bytes[0..4].copy_from_slice(&total.to_be_bytes());
    assert!(matches!(
        MessageExt::decode(&bytes, false),
        Err(ProtocolError::SizeMismatch { .. })
    ));
}

/// A stored message written field by field from the layout description.
#[test]
fn golden_stored_message() {
    let props = "TAGS\u{1}A\u{2}";
    let mut b: Vec<u8> = Vec::new();
    let total: i32 = 4
        + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + 8
        + 8
        + 8
        + 4
        + 8
        + (4 + 2)
        + (1 + 1)
        + (2 + props.len() as i32);
    b.extend(total.to_be_bytes());
    b.extend([0xDA, 0xA3, 0x20, 0xA7]); // MAGICCODE
    b.extend((crc32fast::hash(b"hi") & 0x7FFF_FFFF).to_be_bytes());
    b.extend(1i32.to_be_bytes()); // QUEUEID
    b.extend(0i32.to_be_bytes()); // FLAG
    b.extend(5i64.to_be_bytes()); // QUEUEOFFSET
    b.extend(1000i64.to_be_bytes()); // PHYSICALOFFSET
    b.extend(0i32.to_be_bytes()); // SYSFLAG
    b.extend(11i64.to_be_bytes()); // BORNTIMESTAMP
    b.extend([192, 168, 0, 1, 0, 0, 0x1F, 0x90]); // BORNHOST 192.168.0.1:8080
    b.extend(12i64.to_be_bytes()); // STORETIMESTAMP
    b.extend([127, 0, 0, 1, 0, 0, 0x2A, 0x9F]); // STOREHOST 127.0.0.1:10911
    b.extend(0i32.to_be_bytes()); // RECONSUMETIMES
    b.extend(0i64.to_be_bytes()); // PREPAREDTRANSACTIONOFFSET
    b.extend(2i32.to_be_bytes());
    b.extend(b"hi");
    b.push(1);
    b.extend(b"T");
    b.extend((props.len() as i16).to_be_bytes());
    b.extend(props.as_bytes());
    assert_eq!(b.len(), total as usize);

    let (msg, _) = MessageExt::decode(&b, true).unwrap();
    assert_eq!(msg.topic, "T");
    assert_eq!(msg.queue_id, 1);
    assert_eq!(msg.queue_offset, 5);
    assert_eq!(msg.commit_log_offset, 1000);
    assert_eq!(msg.born_host, "192.168.0.1:8080".parse().unwrap());
    assert_eq!(msg.store_host, "127.0.0.1:10911".parse().unwrap());
    assert_eq!(msg.tags(), Some("A"));
    assert_eq!(&encoded(&msg)[..], &b[..]);
    assert_eq!(msg.offset_msg_id(), "7F00000100002A9F00000000000003E8");
}

#[test]
fn message_id_round_trips_and_rejects_garbage() {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let id = encode_message_id(host, 0x0012_3456_789A);
    assert_eq!(id, "7F00000100002A9F000000123456789A");
    assert_eq!(decode_message_id(&id).unwrap(), (host, 0x0012_3456_789A));
    let v6: SocketAddr = "[::1]:10911".parse().unwrap();
    assert_eq!(
        decode_message_id(&encode_message_id(v6, 9)).unwrap(),
        (v6, 9)
    );
    for bad in [
        "",
        "XYZ",
        "7F00000100002A9F000000123456789",
        "ZZ00000100002A9F000000123456789A",
        "é000000100002A9F000000123456789A",
    ] {
        assert!(decode_message_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn properties_round_trip_and_skip_junk() {
    let mut p = Properties::new();
    p.insert("A".into(), "1".into());
    p.insert("KEYS".into(), "k1 k2".into());
    assert_eq!(string_to_properties(&properties_to_string(&p)), p);
    assert_eq!(properties_to_string(&p), "A\u{1}1\u{2}KEYS\u{1}k1 k2\u{2}");
    let junk = string_to_properties("noseparator\u{2}B\u{1}2\u{2}\u{2}");
    assert_eq!(junk.len(), 1);
    assert_eq!(junk["B"], "2");
}

#[test]
fn batch_round_trips_and_truncation_fails() {
    let entries = vec![
        BatchEntry {
            flag: 0,
            body: Bytes::from_static(b"one"),
            properties: [("TAGS".to_string(), "a".to_string())].into(),
        },
        BatchEntry {
            flag: 3,
            body: Bytes::from_static(b""),
            properties: Properties::new(),
        },
    ];
    let mut buf = BytesMut::new();
    entries[0].encode(&mut buf).unwrap();
    let first_len = buf.len();
    entries[1].encode(&mut buf).unwrap();
    assert_eq!(BatchEntry::decode_all(&buf).unwrap(), entries);
    assert_eq!(
        BatchEntry::decode_all(&buf[..first_len]).unwrap(),
        entries[..1]
    );
    for cut in (1..buf.len()).filter(|&cut| cut != first_len) {
        assert!(BatchEntry::decode_all(&buf[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn decode_all_reads_consecutive_messages() {
    let mut buf = encoded(&sample());
    let mut second = sample();
    second.queue_offset = 18;
    second.encode(&mut buf).unwrap();
    let all = MessageExt::decode_all(&buf).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].queue_offset, 18);
}
