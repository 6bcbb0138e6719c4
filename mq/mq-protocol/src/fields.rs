//! A frame's extFields: a small list of string pairs that shares the
//! received frame's memory.
//!
//! A send carries about a dozen fields and is read a few times, so a list
//! searched from the end does better than a map: decoding a binary header
//! slices the frame instead of allocating two strings and a tree node per
//! field, and the keys a header writes are static. A key appears at most
//! once; inserting it again replaces its value, as a map would.

use std::fmt;

/// One key or value: a static string, a slice of a received frame, or an
/// owned string, all read as `&str`.
pub type Text = bytestring::ByteString;

/// The extFields of one command.
#[derive(Clone, Default)]
pub struct Fields {
    entries: Vec<(Text, Text)>,
}

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Fields {
            entries: Vec::with_capacity(capacity),
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

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| &*self.entries[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`; the value it replaces, if any.
    pub fn insert(&mut self, key: impl Into<Text>, value: impl Into<Text>) -> Option<Text> {
        let key = key.into();
        let value = value.into();
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Adds `key`, which the caller knows is not there yet (a header's
    /// own, distinct keys).
    pub(crate) fn append(&mut self, key: &'static str, value: impl Into<Text>) {
        debug_assert!(!self.contains_key(key), "{key} written twice");
        self.entries.push((Text::from_static(key), value.into()));
    }

    /// Removes `key`; its value, if it was there.
    pub fn remove(&mut self, key: &str) -> Option<Text> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }

    /// The pairs in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
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
