//! fastjson's JSON dialect: maps keyed by objects.
//!
//! Java's RocketMQ writes several admin bodies with fastjson, which writes a
//! `Map<MessageQueue, V>` with the key object itself in key position:
//!
//! ```text
//! {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"maxOffset":3}}}
//! ```
//!
//! That is not JSON, and Java clients expect exactly that. [`Value`] is a
//! JSON value whose object keys may be any value; [`Value::parse`] reads the
//! dialect (and plain JSON, and bare numeric keys), [`Value::to_text`]
//! writes it. The typed bodies build a [`Value`] with [`keyed_map`] for
//! their object-keyed maps and read one back with [`read_keyed_map`]; every
//! other part goes through serde via [`Value::from_serde`] and
//! [`Value::to_serde`].
//!
//! fastjson also leaves numeric map keys unquoted
//! (`"brokerAddrs":{0:"10.0.0.1:10911"}`); [`quote_numeric_keys`] turns
//! such text into JSON for serde (the route bodies).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Nesting deeper than this is refused: bodies come off the wire.
const MAX_DEPTH: usize = 64;

/// Why a fastjson text or value could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FastjsonError {
    #[error("fastjson: {what} at byte {offset}")]
    Syntax { what: &'static str, offset: usize },
    #[error("fastjson: {0}")]
    Shape(String),
}

/// A JSON value whose object keys may be values of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Value>),
    /// Entries in text order; keys need not be strings.
    Object(Vec<(Value, Value)>),
}

impl Value {
    /// Reads fastjson (or JSON) text.
    pub fn parse(text: &str) -> Result<Value, FastjsonError> {
        Parser::new(text).document()
    }

    /// Reads fastjson bytes (UTF-8).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Value, FastjsonError> {
        let text = std::str::from_utf8(bytes).map_err(|e| FastjsonError::Syntax {
            what: "invalid UTF-8",
            offset: e.valid_up_to(),
        })?;
        Value::parse(text)
    }

    /// Writes the value: keys are written as values (a string key quoted,
    /// an object key as an object).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Value::String(s) => {
                // serde_json's string escaping is JSON's.
                out.push_str(&serde_json::Value::String(s.clone()).to_string());
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    k.write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// A value from anything serde can write as JSON.
    pub fn from_serde<T: Serialize>(value: &T) -> Value {
        from_json(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
    }

    /// Reads the value as `T`. Object keys must be strings or numbers (a
    /// number key becomes its text); an object key is a shape error.
    pub fn to_serde<T: DeserializeOwned>(&self) -> Result<T, FastjsonError> {
        let json = to_json(self)?;
        serde_json::from_value(json).map_err(|e| FastjsonError::Shape(e.to_string()))
    }

    /// An object with string keys.
    pub fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (Value::String(k.to_owned()), v))
                .collect(),
        )
    }

    /// The entry of an object whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Number(n),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (Value::String(k), from_json(v)))
                .collect(),
        ),
    }
}

fn to_json(value: &Value) -> Result<serde_json::Value, FastjsonError> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::Value::Number(n.clone()),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Value::Object(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(FastjsonError::Shape(format!(
                            "an object key {} where a string key was expected",
                            k.to_text()
                        )))
                    }
                };
                map.insert(key, to_json(v)?);
            }
            serde_json::Value::Object(map)
        }
    })
}

/// A map keyed by values (e.g. `MessageQueue`) as fastjson writes it.
pub fn keyed_map<'a, K, V>(entries: impl IntoIterator<Item = (&'a K, &'a V)>) -> Value
where
    K: Serialize + 'a,
    V: Serialize + 'a,
{
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from_serde(k), Value::from_serde(v)))
            .collect(),
    )
}

/// Reads a map written by [`keyed_map`] (or by fastjson); an absent or
/// null map is empty.
pub fn read_keyed_map<K, V>(value: Option<&Value>) -> Result<Vec<(K, V)>, FastjsonError>
where
    K: DeserializeOwned,
    V: DeserializeOwned,
{
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(k, v)| Ok((k.to_serde()?, v.to_serde()?)))
            .collect(),
        Some(other) => Err(FastjsonError::Shape(format!(
            "expected a map, got {}",
            other.to_text()
        ))),
    }
}

/// Puts quotes around the object keys that are bare numbers
/// (`{0:"a",-1:"b"}` becomes `{"0":"a","-1":"b"}`), leaving everything
/// else, strings and whitespace included, as it is: fastjson text that is
/// JSON but for those keys becomes JSON. Borrows when no key needed quoting;
/// an error when the text is not fastjson at all.
pub fn quote_numeric_keys(text: &str) -> Result<Cow<'_, str>, FastjsonError> {
    let mut p = Parser::new(text);
    p.document()?;
    if p.number_keys.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut fixed = String::with_capacity(text.len() + 2 * p.number_keys.len());
    let mut copied = 0;
    // Spans are in text order: keys are recorded as they are read, and a
    // number has no keys inside it.
    for (start, end) in p.number_keys {
        fixed.push_str(&text[copied..start]);
        fixed.push('"');
        fixed.push_str(&text[start..end]);
        fixed.push('"');
        copied = end;
    }
    fixed.push_str(&text[copied..]);
    Ok(Cow::Owned(fixed))
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Byte spans of the object keys that were numbers.
    number_keys: Vec<(usize, usize)>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            bytes: text.as_bytes(),
            pos: 0,
            number_keys: Vec::new(),
        }
    }

    /// One value and nothing after it but whitespace.
    fn document(&mut self) -> Result<Value, FastjsonError> {
        let value = self.value(0)?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(value)
    }

    fn error(&self, what: &'static str) -> FastjsonError {
        FastjsonError::Syntax {
            what,
            offset: self.pos,
        }
    }

    fn skip_ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), FastjsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, FastjsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end")),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(entries));
                }
                loop {
                    self.skip_ws();
                    let key_start = self.pos;
                    let key = self.value(depth + 1)?;
                    if matches!(key, Value::Number(_)) {
                        self.number_keys.push((key_start, self.pos));
                    }
                    self.expect(b':', "expected ':'")?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Object(entries));
                        }
                        _ => return Err(self.error("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.error("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn word(&mut self, word: &'static str, value: Value) -> Result<Value, FastjsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected word"))
        }
    }

    fn number(&mut self) -> Result<Value, FastjsonError> {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        let number: serde_json::Number = text.parse().map_err(|_| FastjsonError::Syntax {
            what: "invalid number",
            offset: start,
        })?;
        Ok(Value::Number(number))
    }

    fn hex4(&mut self) -> Result<u32, FastjsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, FastjsonError> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.pos += 1;
            }
            // The input is a &str and we stop only at ASCII bytes, so the
            // slice is on character boundaries.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default());
            match self.bytes.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.pos += 1;
                    let escaped = *self
                        .bytes
                        .get(self.pos)
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                0x10000
                                    + ((high - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                high
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::body::MessageQueue;

    const JAVA: &str = r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"lastUpdateTimestamp":1700000000000,"maxOffset":12,"minOffset":0},{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}}}"#;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Offsets {
        min_offset: i64,
        max_offset: i64,
        last_update_timestamp: i64,
    }

    #[test]
    fn reads_and_rewrites_a_java_topic_stats_table() {
        let value = Value::parse(JAVA).unwrap();
        let table: Vec<(MessageQueue, Offsets)> = read_keyed_map(value.get("offsetTable")).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].0.queue_id, 0);
        assert_eq!(table[0].0.topic, "TopicTest");
        assert_eq!(table[0].1.max_offset, 12);
        // Golden: written back byte for byte as Java wrote it.
        assert_eq!(value.to_text(), JAVA);
        let rebuilt =
            Value::object([("offsetTable", keyed_map(table.iter().map(|(k, v)| (k, v))))]);
        // serde_json sorts field names, as fastjson does: the same text.
        assert_eq!(rebuilt.to_text(), JAVA);
        let again: Vec<(MessageQueue, Offsets)> =
            read_keyed_map(Value::parse(&rebuilt.to_text()).unwrap().get("offsetTable")).unwrap();
        assert_eq!(again, table);
    }

    #[test]
    fn numeric_keys_plain_json_and_escapes() {
        let v = Value::parse(r#"{0:"a", "k" : [1, -2.5e3, true, null, "\u00e9\n\"\ud83d\ude00"]}"#)
            .unwrap();
        let plain: BTreeMap<String, serde_json::Value> = v.to_serde().unwrap();
        assert_eq!(plain["0"], "a");
        assert_eq!(plain["k"][4], "é\n\"😀");
        assert_eq!(
            Value::parse(&v.to_text()).unwrap(),
            v,
            "what we write reads back the same"
        );
    }

    #[test]
    fn quotes_bare_numeric_keys_only_outside_strings() {
        assert_eq!(
            quote_numeric_keys(r#"{0:"a", 1 : "b",-1:"c"}"#).unwrap(),
            r#"{"0":"a", "1" : "b","-1":"c"}"#
        );
        // Strings that look like keys, numbers as values and array items stay.
        let untouched = r#"{"k":"{0:1}","n":[1,2,{"x":3}],"v":10,"e":"\"{5:6}"}"#;
        assert!(matches!(
            quote_numeric_keys(untouched),
            Ok(Cow::Borrowed(_))
        ));
        // Nested maps.
        assert_eq!(
            quote_numeric_keys(r#"{"a":{"brokerAddrs":{0:"x",12:"y"}}}"#).unwrap(),
            r#"{"a":{"brokerAddrs":{"0":"x","12":"y"}}}"#
        );
        // Empty and truncated input is an error, not a panic.
        assert!(quote_numeric_keys("").is_err());
        assert!(quote_numeric_keys("{12").is_err());
        assert!(quote_numeric_keys("{-").is_err());
    }

    #[test]
    fn object_keys_are_not_plain_json() {
        let v = Value::parse(JAVA).unwrap();
        let err = v.to_serde::<serde_json::Value>().unwrap_err();
        assert!(matches!(err, FastjsonError::Shape(_)), "{err}");
    }

    #[test]
    fn every_truncation_is_an_error_and_never_panics() {
        for end in 0..JAVA.len() {
            assert!(Value::parse(&JAVA[..end]).is_err(), "prefix {end}");
        }
        for bad in [
            "{1}",
            "{\"a\" 1}",
            "[1,]",
            "tru",
            "\"\\x\"",
            "01x",
            "{} {}",
            "\"\\u12\"",
        ] {
            assert!(Value::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Value::parse(&deep).is_err());
    }
}
