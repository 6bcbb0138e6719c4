//! Remoting frames: the unit of every request and response on a RocketMQ
//! connection.
//!
//! Wire: `[total:4 BE][type:1][header_len:3 BE][header][body]`, where `total`
//! counts everything after itself (`4 + header_len + body_len`), `type` is the
//! header serialize type (0 = JSON, 1 = ROCKETMQ binary) and `header_len` is
//! the length of the header alone.
//!
//! The JSON header is an object `{"code","language","version","opaque","flag",
//! "remark","extFields","serializeTypeCurrentRPC"}`. The ROCKETMQ header is
//! `[code:2][language:1][version:2][opaque:4][flag:4][remark_len:4][remark]
//! [ext_len:4]{[key_len:2][key][val_len:4][val]}*`, all big-endian.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::code::{LanguageCode, ResponseCode, OUR_VERSION};
use crate::error::ProtocolError;
use crate::header::{Fields, Text};
use crate::reader::Reader;

/// Largest frame accepted by default (RocketMQ's `frameMaxLength`, 16 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The length prefix plus the serialize-type/header-length word.
const PREFIX_LEN: usize = 8;

/// Room reserved for a header before encoding it: a send's binary header
/// fits.
const BINARY_HEADER_GUESS: usize = 256;

/// Bits of the `flag` field.
pub mod flag {
    /// Set on responses; clear on requests.
    pub const RESPONSE: i32 = 1;
    /// Set on one-way requests, which get no response.
    pub const ONEWAY: i32 = 1 << 1;
}

/// How the header of a frame is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeType {
    #[default]
    Json,
    RocketMq,
}

impl SerializeType {
    pub fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    pub fn from_code(code: u8) -> Result<Self, ProtocolError> {
        match code {
            0 => Ok(SerializeType::Json),
            1 => Ok(SerializeType::RocketMq),
            other => Err(ProtocolError::UnknownSerializeType(other)),
        }
    }
}

/// One request or response: RocketMQ's `RemotingCommand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code, or response code on a response.
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    /// Correlates a response with its request; responses echo it.
    pub opaque: i32,
    /// See [`flag`].
    pub flag: i32,
    pub remark: Option<String>,
    /// The typed request/response header, flattened to strings (on a
    /// received frame, slices of it).
    pub ext_fields: Fields,
    pub body: Bytes,
    /// How this command's header is (or will be) serialized. Replies use the
    /// serialize type of the request they answer.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A new request with our language and version and an opaque of 0 (the
    /// connection assigns the opaque when it sends).
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::OURS,
            version: OUR_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: Fields::new(),
            body: Bytes::new(),
            serialize_type: SerializeType::Json,
        }
    }

    /// The response to `request` with `code`: same opaque and serialize type,
    /// the response flag set.
    pub fn response_to(request: &RemotingCommand, code: ResponseCode) -> Self {
        RemotingCommand {
            code: code.into(),
            language: LanguageCode::OURS,
            version: OUR_VERSION,
            opaque: request.opaque,
            flag: flag::RESPONSE,
            remark: None,
            ext_fields: Fields::new(),
            body: Bytes::new(),
            serialize_type: request.serialize_type,
        }
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_field(mut self, key: impl Into<Text>, value: impl ToString) -> Self {
        self.ext_fields.insert(key, value.to_string());
        self
    }

    pub fn oneway(mut self) -> Self {
        self.flag |= flag::ONEWAY;
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & flag::RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & flag::ONEWAY != 0
    }

    /// An extFields entry.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key)
    }

    /// The response code, if this is a response with a code we know.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_i32(self.code)
    }

    /// Appends the whole frame (length prefix included) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        // The two length words are filled in once the header is written.
        out.reserve(PREFIX_LEN + BINARY_HEADER_GUESS + self.body.len());
        out.put_u64(0);
        match self.serialize_type {
            SerializeType::Json => out.put_slice(&self.json_header()),
            SerializeType::RocketMq => self.put_binary_header(out),
        }
        let header_len = out.len() - start - PREFIX_LEN;
        out.put_slice(&self.body);
        let total = 4 + header_len + self.body.len();
        out[start..start + 4].copy_from_slice(&(total as u32).to_be_bytes());
        let word =
            (u32::from(self.serialize_type.code()) << 24) | (header_len as u32 & 0x00FF_FFFF);
        out[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
    }

    /// The whole frame as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame ("need
    /// more bytes" is not an error), and `Ok(Some((command, consumed)))` when
    /// it does. A length prefix above `max_frame_len` is rejected as soon as
    /// the prefix is readable, before anything is allocated for the frame.
    pub fn decode(
        buf: &[u8],
        max_frame_len: usize,
    ) -> Result<Option<(Self, usize)>, ProtocolError> {
        let Some(consumed) = whole_frame(buf, max_frame_len)? else {
            return Ok(None);
        };
        let frame = Bytes::copy_from_slice(&buf[..consumed]);
        Ok(Some((Self::decode_frame(frame)?, consumed)))
    }

    /// Like [`decode`](Self::decode), but takes the frame off the front of
    /// `buf` when it is whole, and the body and the binary header's fields
    /// share `buf`'s memory instead of being copied (the connection's read
    /// buffer allocates anew only once the frames still held fill it).
    pub fn decode_split(
        buf: &mut BytesMut,
        max_frame_len: usize,
    ) -> Result<Option<Self>, ProtocolError> {
        let Some(consumed) = whole_frame(buf, max_frame_len)? else {
            return Ok(None);
        };
        Self::decode_frame(buf.split_to(consumed).freeze()).map(Some)
    }

    /// The command in `frame`, one whole frame with its length prefix.
    fn decode_frame(frame: Bytes) -> Result<Self, ProtocolError> {
        let frame_len = frame.len() - 4;
        let word = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let serialize_type = SerializeType::from_code((word >> 24) as u8)?;
        let header_len = (word & 0x00FF_FFFF) as usize;
        if header_len > frame_len - 4 {
            return Err(ProtocolError::HeaderTooLong {
                header_len,
                frame_len,
            });
        }
        let header = frame.slice(PREFIX_LEN..PREFIX_LEN + header_len);
        let mut command = match serialize_type {
            SerializeType::Json => decode_json_header(&header)?,
            SerializeType::RocketMq => decode_binary_header(&header)?,
        };
        command.serialize_type = serialize_type;
        if frame.len() > PREFIX_LEN + header_len {
            command.body = frame.slice(PREFIX_LEN + header_len..);
        }
        Ok(command)
    }

    fn json_header(&self) -> Vec<u8> {
        let mut header = Map::new();
        header.insert("code".into(), self.code.into());
        header.insert("language".into(), self.language.name().into());
        header.insert("version".into(), self.version.into());
        header.insert("opaque".into(), self.opaque.into());
        header.insert("flag".into(), self.flag.into());
        if let Some(remark) = &self.remark {
            header.insert("remark".into(), remark.clone().into());
        }
        if !self.ext_fields.is_empty() {
            let fields = self
                .ext_fields
                .iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            header.insert("extFields".into(), Value::Object(fields));
        }
        header.insert("serializeTypeCurrentRPC".into(), "JSON".into());
        serde_json::to_vec(&Value::Object(header)).expect("a JSON map always serializes")
    }

    /// Appends the ROCKETMQ binary header to `out`.
    fn put_binary_header(&self, out: &mut BytesMut) {
        // Codes and versions are 16-bit in this header type, as in RocketMQ.
        out.put_i16(self.code as i16);
        out.put_u8(self.language.code());
        out.put_i16(self.version as i16);
        out.put_i32(self.opaque);
        out.put_i32(self.flag);
        match self.remark.as_deref() {
            Some(remark) if !remark.is_empty() => {
                out.put_i32(remark.len() as i32);
                out.put_slice(remark.as_bytes());
            }
            _ => out.put_i32(0),
        }
        let ext_len_at = out.len();
        out.put_i32(0);
        for (key, value) in self.ext_fields.iter() {
            out.put_i16(key.len() as i16);
            out.put_slice(key.as_bytes());
            out.put_i32(value.len() as i32);
            out.put_slice(value.as_bytes());
        }
        let ext_len = (out.len() - ext_len_at - 4) as i32;
        out[ext_len_at..ext_len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
    }
}

/// The length of the frame at the front of `buf`, prefix included, once
/// `buf` holds all of it.
fn whole_frame(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(frame_len) = frame_length(buf, max_frame_len)? else {
        return Ok(None);
    };
    let consumed = 4 + frame_len;
    Ok((buf.len() >= consumed).then_some(consumed))
}

/// The length a frame claims (the bytes after the 4-byte prefix), once the
/// prefix is readable. Validates it against `max_frame_len` and the minimum.
pub fn frame_length(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if length > max_frame_len {
        return Err(ProtocolError::FrameTooLarge {
            length,
            limit: max_frame_len,
        });
    }
    if length < PREFIX_LEN - 4 {
        return Err(ProtocolError::FrameTooSmall { length });
    }
    Ok(Some(length))
}

fn invalid_json(why: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidJsonHeader(why.into())
}

/// Reads an integer that a lenient peer may send as a number or a numeric
/// string.
fn json_int(value: Option<&Value>, field: &str) -> Result<Option<i64>, ProtocolError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid_json(format!("{field} is not an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid_json(format!("{field} is not an integer"))),
        Some(_) => Err(invalid_json(format!("{field} is not an integer"))),
    }
}

fn json_i32(value: Option<&Value>, field: &str) -> Result<i32, ProtocolError> {
    json_int(value, field)?.map_or(Ok(0), |v| {
        i32::try_from(v).map_err(|_| invalid_json(format!("{field} is out of range")))
    })
}

fn decode_json_header(header: &[u8]) -> Result<RemotingCommand, ProtocolError> {
    let value: Value = serde_json::from_slice(header).map_err(|e| invalid_json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(invalid_json("the header is not a JSON object"));
    };
    if json_int(map.get("code"), "code")?.is_none() {
        return Err(invalid_json("the header has no code"));
    }
    let language = match map.get("language") {
        Some(Value::String(name)) => LanguageCode::from_name(name),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map_or(LanguageCode::Other, LanguageCode::from_code),
        _ => LanguageCode::Other,
    };
    let remark = match map.get("remark") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(other) => Some(other.to_string()),
    };
    let mut ext_fields = Fields::new();
    match map.get("extFields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (key, value) in fields {
                let value = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ext_fields.insert(key.clone(), value);
            }
        }
        Some(_) => return Err(invalid_json("extFields is not an object")),
    }
    Ok(RemotingCommand {
        code: json_i32(map.get("code"), "code")?,
        language,
        version: json_i32(map.get("version"), "version")?,
        opaque: json_i32(map.get("opaque"), "opaque")?,
        flag: json_i32(map.get("flag"), "flag")?,
        remark,
        ext_fields,
        body: Bytes::new(),
        serialize_type: SerializeType::Json,
    })
}

fn decode_binary_header(header: &Bytes) -> Result<RemotingCommand, ProtocolError> {
    let mut r = Reader::new(header);
    let code = r.i16("code")?.into();
    let language = LanguageCode::from_code(r.u8("language")?);
    let version = r.i16("version")?.into();
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.len_i32("remark length")?;
    let remark = if remark_len == 0 {
        None
    } else {
        Some(r.str(remark_len, "remark")?.to_owned())
    };
    let ext_len = r.len_i32("extFields length")?;
    let ext_at = r.position();
    let ext = r.bytes(ext_len, "extFields")?;
    // A send has 13 fields; most other requests fewer.
    let mut ext_fields = Fields::with_capacity(16);
    let mut fields = Reader::new(ext);
    while fields.remaining() > 0 {
        let key_len = fields.len_i16("extFields key length")?;
        let key = shared_text(header, ext_at, &mut fields, key_len, "extFields key")?;
        let value_len = fields.len_i32("extFields value length")?;
        let value = shared_text(header, ext_at, &mut fields, value_len, "extFields value")?;
        ext_fields.insert(key, value);
    }
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: Bytes::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

/// The next `len` bytes of `fields` (which reads `header` from `fields_at`
/// on) as text that shares `header`'s memory, checked as UTF-8 once.
fn shared_text(
    header: &Bytes,
    fields_at: usize,
    fields: &mut Reader<'_>,
    len: usize,
    what: &'static str,
) -> Result<Text, ProtocolError> {
    let at = fields_at + fields.position();
    fields.bytes(len, what)?;
    Text::try_from(header.slice(at..at + len)).map_err(|_| ProtocolError::InvalidUtf8 {
        field: what,
        offset: at,
    })
}

#[cfg(test)]
mod tests;
