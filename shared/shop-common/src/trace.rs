//! Trace context: one W3C `traceparent` per saga, from the HTTP request
//! that starts it through the calls between services and the events'
//! message properties to the consumers, so that every log line of one saga
//! carries the same `trace_id` (and, once the order exists, its
//! `order_id`).
//!
//! How it travels:
//! - An HTTP request continues the caller's valid `traceparent` header, or
//!   starts a new trace (the frame ([`crate::service::observed`]) opens the request's span with
//!   `trace_id` and, from a `baggage: order_id=<uuid>` entry, `order_id`).
//! - While the request is handled, its [`Trace`] is the task's current one
//!   ([`scope`], [`current`]); [`crate::client::ServiceClient`] sends it on
//!   as `traceparent` (a child span id) and `baggage`.
//! - [`crate::events::sign`] puts it on every event as the message
//!   property [`PROPERTY`]; a consumer continues it ([`from_message`]).
//!
//! Everything read here is hostile input: a header or property that is not
//! exactly a W3C trace context (lower-case hex of the right lengths, not
//! all zeros, version not `ff`, bounded length) is ignored and a new trace
//! started. Spans are not exported (no OTLP): the trace id correlates log
//! lines.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;

use uuid::Uuid;

/// The HTTP header and the message property that carry the context.
pub const HEADER: &str = "traceparent";
/// The message property name (RocketMQ user property) of the context.
pub const PROPERTY: &str = "traceparent";
/// The W3C baggage header, which carries the saga's order id between
/// services (`order_id=<uuid>`).
pub const BAGGAGE: &str = "baggage";

/// Longest `traceparent` accepted: version 00 is 55 characters; a future
/// version may append fields, but not without bound.
const MAX_LEN: usize = 256;
/// Longest `baggage` header read.
const MAX_BAGGAGE_LEN: usize = 1024;

/// A W3C trace context: `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    /// The id of the span that sent it (the caller's).
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// Why a `traceparent` value was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    #[error("longer than {MAX_LEN} characters")]
    TooLong,
    #[error("not version-traceid-parentid-flags")]
    Shape,
    #[error("not lower-case hex")]
    NotHex,
    #[error("version ff is invalid")]
    InvalidVersion,
    #[error("version 00 has exactly four fields")]
    TrailingData,
    #[error("an all-zero trace id or parent id")]
    Zero,
}

impl TraceParent {
    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> TraceParent {
        let mut trace_id = [0u8; 16];
        fill_nonzero(&mut trace_id);
        let mut parent_id = [0u8; 8];
        fill_nonzero(&mut parent_id);
        TraceParent {
            trace_id,
            parent_id,
            flags: 0x01,
        }
    }

    /// The same trace with a new span id: what this process sends on.
    pub fn child(&self) -> TraceParent {
        let mut parent_id = [0u8; 8];
        fill_nonzero(&mut parent_id);
        TraceParent { parent_id, ..*self }
    }

    /// Parses a `traceparent` value by the W3C rules: a known version 00
    /// has exactly 55 characters; a later version (not `ff`) may have more
    /// after a `-`, which is ignored.
    pub fn parse(value: &str) -> Result<TraceParent, TraceParentError> {
        if value.len() > MAX_LEN {
            return Err(TraceParentError::TooLong);
        }
        let bytes = value.as_bytes();
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(TraceParentError::Shape);
        }
        let version = hex_byte(&bytes[0..2])?;
        if version == 0xff {
            return Err(TraceParentError::InvalidVersion);
        }
        if bytes.len() > 55 {
            if version == 0 {
                return Err(TraceParentError::TrailingData);
            }
            if bytes[55] != b'-' {
                return Err(TraceParentError::Shape);
            }
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&bytes[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&bytes[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&bytes[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return Err(TraceParentError::Zero);
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id as 32 lower-case hex digits, as log lines show it.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

/// `value` as a trace context, or a new one when it is absent or invalid.
pub fn continue_or_start(value: Option<&str>) -> TraceParent {
    value
        .and_then(|v| TraceParent::parse(v).ok())
        .map_or_else(TraceParent::new_root, |parent| parent.child())
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

fn fill_nonzero(bytes: &mut [u8]) {
    loop {
        getrandom::fill(bytes).expect("the operating system's random source works");
        if bytes.iter().any(|b| *b != 0) {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Two lower-case hex digits (upper case is invalid in a traceparent).
fn hex_byte(pair: &[u8]) -> Result<u8, TraceParentError> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(TraceParentError::NotHex),
    };
    Ok(digit(pair[0])? << 4 | digit(pair[1])?)
}

/// The order id of a `baggage` header: its `order_id=<uuid>` entry (W3C
/// baggage: comma-separated `key=value` members, properties after `;`).
/// Anything that is not a UUID is ignored.
pub fn order_id_from_baggage(value: &str) -> Option<Uuid> {
    if value.len() > MAX_BAGGAGE_LEN {
        return None;
    }
    value.split(',').find_map(|member| {
        let member = member.split(';').next()?;
        let (key, value) = member.split_once('=')?;
        (key.trim() == "order_id")
            .then(|| Uuid::parse_str(value.trim()).ok())
            .flatten()
    })
}

/// The trace of the work a task is doing: its context, and the order the
/// saga is about once it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    pub parent: TraceParent,
    pub order_id: Option<Uuid>,
}

impl Trace {
    /// A new trace about no order yet.
    pub fn new_root() -> Trace {
        Trace {
            parent: TraceParent::new_root(),
            order_id: None,
        }
    }
}

tokio::task_local! {
    static CURRENT: RefCell<Trace>;
}

/// Runs `work` with `trace` as the task's current trace.
pub async fn scope<F: Future>(trace: Trace, work: F) -> F::Output {
    CURRENT.scope(RefCell::new(trace), work).await
}

/// The task's current trace, if it runs inside [`scope`].
pub fn current() -> Option<Trace> {
    CURRENT.try_with(|trace| *trace.borrow()).ok()
}

/// The saga is now about `order_id`: later calls and events carry it, and
/// the current span (the request's, which declares `order_id`) records it.
pub fn set_order_id(order_id: Uuid) {
    let _ = CURRENT.try_with(|trace| trace.borrow_mut().order_id = Some(order_id));
    tracing::Span::current().record("order_id", tracing::field::display(order_id));
}

/// The headers a call made now carries: `traceparent` (a child of the
/// current trace) and the order id as `baggage`; none outside a trace.
pub fn outgoing_headers() -> Vec<(&'static str, String)> {
    let Some(trace) = current() else {
        return Vec::new();
    };
    let mut headers = vec![(HEADER, trace.parent.child().to_string())];
    if let Some(order_id) = trace.order_id {
        headers.push((BAGGAGE, format!("order_id={order_id}")));
    }
    headers
}

/// `message` with the current trace in its [`PROPERTY`] (a new trace
/// outside one: an event always starts or continues one).
pub fn inject(message: mq_client::Message) -> mq_client::Message {
    let parent = current().map_or_else(TraceParent::new_root, |t| t.parent.child());
    message.with_property(PROPERTY, parent.to_string())
}

/// The trace a consumer continues for `msg`: its valid [`PROPERTY`], else
/// a new one; the order id from the body's `order_id` field (all the
/// shop's events have one), if it is a UUID.
pub fn from_message(msg: &mq_client::MessageExt) -> Trace {
    #[derive(serde::Deserialize)]
    struct AboutOrder {
        order_id: Uuid,
    }
    Trace {
        parent: continue_or_start(msg.property(PROPERTY)),
        order_id: serde_json::from_slice::<AboutOrder>(&msg.body)
            .ok()
            .map(|about| about.order_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let parsed = TraceParent::parse(VALID).unwrap();
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            parsed.parent_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.to_string(), VALID);
        let child = parsed.child();
        assert_eq!(child.trace_id, parsed.trace_id);
        assert_ne!(child.parent_id, parsed.parent_id);
        assert_eq!(TraceParent::parse(&child.to_string()).unwrap(), child);
    }

    #[test]
    fn a_later_version_may_append_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        let parsed = TraceParent::parse(later).unwrap();
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // What we send on is version 00.
        assert!(parsed.child().to_string().starts_with("00-4bf92f"));
    }

    #[test]
    fn hostile_values_are_refused() {
        use TraceParentError::*;
        let long = format!(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-{}",
            "a".repeat(300)
        );
        let cases = [
            ("", Shape),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                Shape,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                NotHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                NotHex,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                InvalidVersion,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                Zero,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                Zero,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                TrailingData,
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                Shape,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\u{e9}",
                NotHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\u{e9}1",
                TrailingData,
            ),
            (long.as_str(), TooLong),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceParent::parse(value), Err(expected), "{value:?}");
        }
        // A multi-byte character where a separator belongs is a shape error,
        // never a panic on a char boundary.
        for cut in 0..VALID.len() {
            let mut mangled = VALID.as_bytes().to_vec();
            mangled[cut] = b'\xc3';
            if let Ok(s) = std::str::from_utf8(&mangled) {
                assert!(TraceParent::parse(s).is_err());
            }
            assert!(TraceParent::parse(&VALID[..cut]).is_err());
        }
    }

    #[test]
    fn an_invalid_or_missing_header_starts_a_new_trace() {
        let continued = continue_or_start(Some(VALID));
        assert_eq!(continued.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let fresh = continue_or_start(Some("00-garbage"));
        assert_ne!(fresh.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(fresh.trace_id, [0; 16]);
        assert_ne!(continue_or_start(None).trace_id, fresh.trace_id);
    }

    #[test]
    fn baggage_gives_the_order_id_only_when_it_is_a_uuid() {
        let id = Uuid::new_v4();
        assert_eq!(order_id_from_baggage(&format!("order_id={id}")), Some(id));
        assert_eq!(
            order_id_from_baggage(&format!("a=b, order_id = {id};p=1,c=d")),
            Some(id)
        );
        assert_eq!(order_id_from_baggage("order_id=1\nINFO forged line"), None);
        assert_eq!(order_id_from_baggage("other=x"), None);
        assert_eq!(order_id_from_baggage(&"x".repeat(2000)), None);
    }

    #[tokio::test]
    async fn calls_inside_a_trace_carry_it_and_its_order() {
        assert!(outgoing_headers().is_empty());
        let trace = Trace::new_root();
        let order_id = Uuid::new_v4();
        scope(trace, async move {
            set_order_id(order_id);
            let headers = outgoing_headers();
            let sent = TraceParent::parse(&headers[0].1).unwrap();
            assert_eq!(headers[0].0, HEADER);
            assert_eq!(sent.trace_id, trace.parent.trace_id);
            assert_eq!(headers[1], (BAGGAGE, format!("order_id={order_id}")));
            let message = inject(mq_client::Message::new("T", b"{}".to_vec()));
            let property = TraceParent::parse(message.property(PROPERTY).unwrap()).unwrap();
            assert_eq!(property.trace_id, trace.parent.trace_id);
        })
        .await;
    }
}
