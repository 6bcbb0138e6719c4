//! A frame's extFields: a small list of string pairs that shares the
//! received frame's memory.
//!
//! A send carries about a dozen fields and is read a few times, so a list
//! searched in order does better than a map: decoding a binary header
//! slices the frame instead of allocating two strings and a tree node per
//! field; writing a typed header copies its values into one buffer of the
//! list's own (numbers formatted in place), with static keys. A key
//! appears at most once; inserting it again replaces its value, as a map
//! would.

use std::fmt::{self, Write as _};

/// One key or value: a static string, a slice of a received frame, or an
/// owned string, all read as `&str`.
pub type Text = bytestring::ByteString;

/// Room for a send's written values (group, topic, properties, numbers)
/// before the buffer grows.
const WRITTEN_GUESS: usize = 256;

#[derive(Clone)]
enum Value {
    Text(Text),
    /// `start..end` of [`Fields::written`].
    Written(u32, u32),
}

/// The extFields of one command.
#[derive(Clone, Default)]
pub struct Fields {
    entries: Vec<(Text, Value)>,
    /// The values a header wrote, back to back.
    written: String,
}

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Fields {
            entries: Vec::with_capacity(capacity),
            written: String::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        // The first byte settles most comparisons (SEND_MESSAGE_V2's keys
        // are one letter each) without a call to memcmp.
        let first = key.as_bytes().first();
        self.entries
            .iter()
            .position(|(k, _)| k.as_bytes().first() == first && &**k == key)
    }

    fn value<'a>(&'a self, value: &'a Value) -> &'a str {
        match value {
            Value::Text(text) => text,
            Value::Written(start, end) => &self.written[*start as usize..*end as usize],
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.value(&self.entries[i].1))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`; the value it replaces, if any.
    pub fn insert(&mut self, key: impl Into<Text>, value: impl Into<Text>) -> Option<Text> {
        let key = key.into();
        let value = Value::Text(value.into());
        match self.position(&key) {
            Some(i) => {
                let old = std::mem::replace(&mut self.entries[i].1, value);
                Some(self.owned(old))
            }
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    fn owned(&self, value: Value) -> Text {
        match value {
            Value::Text(text) => text,
            written => Text::from(self.value(&written)),
        }
    }

    /// Adds `key` with `value` written into the list's own buffer; the
    /// caller knows the key is not there yet (a header's own, distinct
    /// keys).
    pub(crate) fn append(&mut self, key: &'static str, value: impl fmt::Display) {
        debug_assert!(!self.contains_key(key), "{key} written twice");
        if self.written.capacity() == 0 {
            self.written.reserve(WRITTEN_GUESS);
        }
        let start = self.written.len();
        write!(self.written, "{value}").expect("writing to a String cannot fail");
        let range = Value::Written(start as u32, self.written.len() as u32);
        self.entries.push((Text::from_static(key), range));
    }

    /// Removes `key`; its value, if it was there.
    pub fn remove(&mut self, key: &str) -> Option<Text> {
        self.position(key).map(|i| {
            let (_, value) = self.entries.remove(i);
            self.owned(value)
        })
    }

    /// The pairs in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, self.value(v)))
    }

    /// The pairs sorted by key (what a signature covers).
    pub fn sorted(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        pairs
    }
}

/// Equal when they hold the same pairs, in any order.
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl<K: Into<Text>, V: Into<Text>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut fields = Fields::new();
        fields.extend(pairs);
        fields
    }
}

impl<K: Into<Text>, V: Into<Text>> Extend<(K, V)> for Fields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_once_and_the_last_value_wins() {
        let mut fields = Fields::new();
        assert_eq!(fields.insert("topic", "A"), None);
        fields.insert("queueId", "3");
        assert_eq!(
            fields.insert("topic", String::from("B")).as_deref(),
            Some("A")
        );
        assert_eq!(fields.len(), 2);
        assert_eq!(fields.get("topic"), Some("B"));
        assert!(fields.contains_key("queueId"));
        assert_eq!(fields.get("missing"), None);
        assert_eq!(fields.remove("queueId").as_deref(), Some("3"));
        assert_eq!(fields.remove("queueId"), None);
        assert_eq!(fields.iter().collect::<Vec<_>>(), [("topic", "B")]);
    }

    #[test]
    fn written_values_share_one_buffer_and_read_like_the_others() {
        let mut fields = Fields::with_capacity(4);
        fields.append("a", "group");
        fields.append("d", 4);
        fields.append("g", -1_700_000_000_000i64);
        fields.insert("x", "shared");
        assert_eq!(fields.get("a"), Some("group"));
        assert_eq!(fields.get("d"), Some("4"));
        assert_eq!(fields.get("g"), Some("-1700000000000"));
        assert_eq!(fields.written, "group4-1700000000000");
        assert_eq!(fields.insert("d", "5").as_deref(), Some("4"));
        assert_eq!(fields.get("d"), Some("5"));
        assert_eq!(fields.remove("a").as_deref(), Some("group"));
        let same: Fields = [("x", "shared"), ("g", "-1700000000000"), ("d", "5")]
            .into_iter()
            .collect();
        assert_eq!(fields, same);
        assert_eq!(fields.clone().get("g"), Some("-1700000000000"));
    }

    #[test]
    fn order_matters_for_sorting_only() {
        let a: Fields = [("b", "2"), ("a", "1"), ("c", "3")].into_iter().collect();
        let b: Fields = [("c", "3"), ("b", "2"), ("a", "1")].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(a.sorted(), [("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(format!("{a:?}"), r#"{"a": "1", "b": "2", "c": "3"}"#);
        let c: Fields = [("a", "1"), ("b", "2"), ("c", "4")].into_iter().collect();
        assert_ne!(a, c);
        let shorter: Fields = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_ne!(a, shorter);
    }
}
