//! Tests of the remoting frame codec: both header encodings, golden frames,
//! truncation at every byte and refused lengths.

use super::*;

fn sample(serialize_type: SerializeType) -> RemotingCommand {
    RemotingCommand {
        serialize_type,
        ..RemotingCommand::request(10)
            .with_field("topic", "TopicTest")
            .with_field("queueId", 3)
            .with_remark("héllo")
            .with_body(&b"body bytes"[..])
    }
}

fn round_trip(cmd: &RemotingCommand) -> RemotingCommand {
    let bytes = cmd.to_bytes();
    let (decoded, used) = RemotingCommand::decode(&bytes, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(used, bytes.len());
    decoded
}

#[test]
fn json_and_binary_frames_round_trip() {
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let cmd = sample(st);
        assert_eq!(round_trip(&cmd), cmd);
        let mut response = RemotingCommand::response_to(&cmd, ResponseCode::TOPIC_NOT_EXIST)
            .with_remark("no such topic");
        response.opaque = 77;
        let back = round_trip(&response);
        assert!(back.is_response());
        assert_eq!(back.serialize_type, st);
        assert_eq!(back.response_code(), Some(ResponseCode::TOPIC_NOT_EXIST));
        assert_eq!(back, response);
    }
}

#[test]
fn oneway_flag_round_trips() {
    let cmd = RemotingCommand::request(34).oneway();
    assert!(round_trip(&cmd).is_oneway());
    assert!(!round_trip(&cmd).is_response());
}

#[test]
fn truncation_at_every_byte_asks_for_more() {
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let bytes = sample(st).to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(
                RemotingCommand::decode(&bytes[..cut], DEFAULT_MAX_FRAME_LEN),
                Ok(None),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn two_frames_back_to_back_decode_one_at_a_time() {
    let mut buf = BytesMut::new();
    sample(SerializeType::Json).encode(&mut buf);
    sample(SerializeType::RocketMq).encode(&mut buf);
    let (first, used) = RemotingCommand::decode(&buf, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(first.serialize_type, SerializeType::Json);
    let (second, used2) = RemotingCommand::decode(&buf[used..], DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(second.serialize_type, SerializeType::RocketMq);
    assert_eq!(used + used2, buf.len());
}

/// `decode_split` takes whole frames off the buffer, the same commands as
/// `decode`, with bodies pointing into the buffer's memory; a partial frame
/// leaves the buffer as it was.
#[test]
fn decode_split_takes_whole_frames_and_shares_the_body() {
    let mut whole = BytesMut::new();
    sample(SerializeType::Json).encode(&mut whole);
    sample(SerializeType::RocketMq).encode(&mut whole);
    RemotingCommand::request(34).encode(&mut whole);
    let whole = whole.freeze();
    for cut in 0..=whole.len() {
        let mut buf = BytesMut::from(&whole[..cut]);
        let mut got = Vec::new();
        while let Some(cmd) =
            RemotingCommand::decode_split(&mut buf, DEFAULT_MAX_FRAME_LEN).unwrap()
        {
            got.push(cmd);
        }
        let mut at = 0;
        let mut expected = Vec::new();
        while let Some((cmd, used)) =
            RemotingCommand::decode(&whole[at..cut], DEFAULT_MAX_FRAME_LEN).unwrap()
        {
            expected.push(cmd);
            at += used;
        }
        assert_eq!(got, expected, "cut at {cut}");
        assert_eq!(&buf[..], &whole[at..cut], "cut at {cut}: the rest stays");
    }
    let mut buf = BytesMut::from(&whole[..]);
    let base = buf.as_ptr() as usize;
    let first = RemotingCommand::decode_split(&mut buf, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    let body_at = first.body.as_ptr() as usize;
    assert!(
        (base..base + whole.len()).contains(&body_at),
        "the body is a slice of the read buffer, not a copy"
    );
    assert_eq!(&first.body[..], b"body bytes");
}

/// A binary header's keys and values are slices of the read buffer too:
/// decoding a send allocates no string per field.
#[test]
fn decode_split_shares_the_binary_header_fields() {
    let whole = sample(SerializeType::RocketMq).to_bytes();
    let mut buf = BytesMut::from(&whole[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + whole.len();
    let cmd = RemotingCommand::decode_split(&mut buf, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(cmd, sample(SerializeType::RocketMq));
    for (key, value) in cmd.ext_fields.iter() {
        assert!(range.contains(&(key.as_ptr() as usize)), "{key} was copied");
        assert!(
            range.contains(&(value.as_ptr() as usize)),
            "{value} was copied"
        );
    }
    assert_eq!(cmd.field("queueId"), Some("3"));
}

/// A key that is not UTF-8 is refused, as before.
#[test]
fn a_binary_field_that_is_not_utf8_is_refused() {
    let mut cmd = sample(SerializeType::RocketMq);
    cmd.ext_fields = Fields::new();
    cmd.ext_fields.insert("k", "\u{e9}");
    let mut bytes = cmd.to_bytes().to_vec();
    // The value's second byte: 0xC3 0xA9 becomes 0xC3 0x28.
    let at = bytes.len() - cmd.body.len() - 1;
    bytes[at] = 0x28;
    assert!(matches!(
        RemotingCommand::decode(&bytes, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::InvalidUtf8 {
            field: "extFields value",
            ..
        })
    ));
}

/// `decode_split` refuses what `decode` refuses.
#[test]
fn decode_split_refuses_bad_frames() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 7, 0, 0, 0][..]);
    assert_eq!(
        RemotingCommand::decode_split(&mut buf, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::UnknownSerializeType(7))
    );
    let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    assert!(matches!(
        RemotingCommand::decode_split(&mut buf, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
}

/// A JSON frame written by hand from the protocol description.
#[test]
fn golden_json_frame() {
    let header = br#"{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":401}"#;
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len() + 2) as u32).to_be_bytes());
    frame.extend_from_slice(&[0x00, 0x00, 0x00, header.len() as u8]);
    frame.extend_from_slice(header);
    frame.extend_from_slice(b"ok");
    let (cmd, used) = RemotingCommand::decode(&frame, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(used, frame.len());
    assert_eq!(cmd.code, 105);
    assert_eq!(cmd.opaque, 7);
    assert_eq!(cmd.version, 401);
    assert_eq!(cmd.language, LanguageCode::Java);
    assert_eq!(cmd.field("topic"), Some("T"));
    assert_eq!(&cmd.body[..], b"ok");
    // Our encoder writes the same fields; re-decoding gives the same command.
    assert_eq!(round_trip(&cmd), cmd);
}

/// A ROCKETMQ binary frame, byte by byte, and our encoding of it.
#[test]
fn golden_binary_frame() {
    #[rustfmt::skip]
    let frame: &[u8] = &[
        0, 0, 0, 41,          // total: 4 + 36 header + 1 body
        1, 0, 0, 36,          // type ROCKETMQ, header length 36
        0, 34,                // code 34 HEART_BEAT
        9,                    // language GO
        1, 145,               // version 401
        0, 0, 0, 5,           // opaque 5
        0, 0, 0, 2,           // flag: oneway
        0, 0, 0, 2, b'h', b'i', // remark "hi"
        0, 0, 0, 13,          // extFields length
        0, 3, b'k', b'e', b'y',
        0, 0, 0, 4, b'v', b'a', b'l', b'!',
        b'B',                 // body
    ];
    let (cmd, used) = RemotingCommand::decode(frame, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(used, frame.len());
    assert_eq!(cmd.code, 34);
    assert_eq!(cmd.language, LanguageCode::Go);
    assert_eq!(cmd.version, 401);
    assert_eq!(cmd.opaque, 5);
    assert!(cmd.is_oneway());
    assert_eq!(cmd.remark.as_deref(), Some("hi"));
    assert_eq!(cmd.field("key"), Some("val!"));
    assert_eq!(&cmd.body[..], b"B");
    assert_eq!(&cmd.to_bytes()[..], frame);
}

#[test]
fn oversized_frame_is_refused_from_the_prefix_alone() {
    let prefix = (DEFAULT_MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    assert_eq!(
        RemotingCommand::decode(&prefix, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::FrameTooLarge {
            length: DEFAULT_MAX_FRAME_LEN + 1,
            limit: DEFAULT_MAX_FRAME_LEN
        })
    );
    assert!(matches!(
        RemotingCommand::decode(&u32::MAX.to_be_bytes(), DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
}

#[test]
fn malformed_frames_are_typed_errors() {
    // Too small to hold the header-length word.
    assert_eq!(
        RemotingCommand::decode(&[0, 0, 0, 2, 0, 0], DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::FrameTooSmall { length: 2 })
    );
    // Header length beyond the frame.
    assert_eq!(
        RemotingCommand::decode(&[0, 0, 0, 5, 0, 0, 0, 9, b'{'], DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::HeaderTooLong {
            header_len: 9,
            frame_len: 5
        })
    );
    // Unknown serialize type.
    assert_eq!(
        RemotingCommand::decode(&[0, 0, 0, 4, 7, 0, 0, 0], DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::UnknownSerializeType(7))
    );
    // Garbage JSON.
    let garbage = [0, 0, 0, 7, 0, 0, 0, 3, b'x', b'y', b'z'];
    assert!(matches!(
        RemotingCommand::decode(&garbage, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::InvalidJsonHeader(_))
    ));
    // Binary header whose extFields length runs past the header.
    let bad = [
        0, 0, 0, 25, 1, 0, 0, 21, 0, 10, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    assert!(matches!(
        RemotingCommand::decode(&bad, DEFAULT_MAX_FRAME_LEN),
        Err(ProtocolError::Truncated {
            field: "extFields",
            ..
        })
    ));
}

#[test]
fn lenient_json_headers_from_clients_in_the_wild() {
    let cases: &[&str] = &[
        r#"{"code":34,"opaque":1}"#,
        r#"{"code":"34","language":"PYTHON","version":"0","opaque":"1","flag":"0"}"#,
        r#"{"code":34,"language":"UNKNOWN_LANG","opaque":1,"AccessKey":"ak","Signature":"s","OnsChannel":"ALIYUN","remark":null,"extFields":null}"#,
        r#"{"code":34,"language":12,"opaque":1,"extFields":{"n":5,"b":true,"x":null}}"#,
    ];
    for header in cases {
        let mut frame = Vec::new();
        frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
        frame.extend_from_slice(header.as_bytes());
        let (cmd, _) = RemotingCommand::decode(&frame, DEFAULT_MAX_FRAME_LEN)
            .unwrap_or_else(|e| panic!("{header}: {e}"))
            .unwrap();
        assert_eq!(cmd.code, 34, "{header}");
        assert_eq!(cmd.opaque, 1, "{header}");
    }
    let header = cases[3];
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header.as_bytes());
    let (cmd, _) = RemotingCommand::decode(&frame, DEFAULT_MAX_FRAME_LEN)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.language, LanguageCode::Rust);
    assert_eq!(cmd.field("n"), Some("5"));
    assert_eq!(cmd.field("b"), Some("true"));
    assert_eq!(cmd.field("x"), None);
}

#[test]
fn json_header_without_code_or_not_an_object_is_refused() {
    for header in [
        &br#"{"opaque":1}"#[..],
        b"[1,2]",
        br#"{"code":1.5}"#,
        br#"{"code":1,"extFields":[1]}"#,
    ] {
        let mut frame = Vec::new();
        frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
        frame.extend_from_slice(header);
        assert!(matches!(
            RemotingCommand::decode(&frame, DEFAULT_MAX_FRAME_LEN),
            Err(ProtocolError::InvalidJsonHeader(_))
        ));
    }
}
