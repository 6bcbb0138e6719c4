//! Which offset of a queue is safe to commit.

use std::collections::BTreeSet;

/// The messages of one queue pulled but not yet done with (consumed, or
/// handed back to the broker), and the next offset to pull.
///
/// The committable offset is the lowest offset still in flight, or the next
/// offset to pull when none is: a crash after a commit never skips a
/// message that was not finished (at-least-once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetTracker {
    in_flight: BTreeSet<i64>,
    next: i64,
}

impl OffsetTracker {
    /// A tracker that will pull from `next`.
    pub fn new(next: i64) -> Self {
        OffsetTracker {
            in_flight: BTreeSet::new(),
            next,
        }
    }

    /// A pull returned `offsets` (maybe fewer than it covered, after tag
    /// filtering) and said to continue at `next_begin`.
    pub fn pulled(&mut self, offsets: impl IntoIterator<Item = i64>, next_begin: i64) {
        self.in_flight.extend(offsets);
        self.next = next_begin;
    }

    /// Moves the pull position without messages (no new or no matching
    /// messages, offset moved).
    pub fn skip_to(&mut self, next_begin: i64) {
        self.next = next_begin;
    }

    /// The message at `offset` is done with.
    pub fn done(&mut self, offset: i64) {
        self.in_flight.remove(&offset);
    }

    pub fn next(&self) -> i64 {
        self.next
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The offset a commit may record now.
    pub fn committable(&self) -> i64 {
        self.in_flight.first().copied().unwrap_or(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_up_to_the_lowest_in_flight_message() {
        let mut t = OffsetTracker::new(10);
        assert_eq!(t.committable(), 10);
        t.pulled([10, 11, 12, 13], 14);
        assert_eq!(t.committable(), 10);
        // Later messages finishing first do not move the commit point.
        t.done(12);
        t.done(13);
        assert_eq!(t.committable(), 10);
        t.done(10);
        assert_eq!(t.committable(), 11);
        t.pulled([14, 15], 16);
        t.done(11);
        assert_eq!(t.committable(), 14);
        t.done(14);
        t.done(15);
        assert_eq!(t.committable(), 16);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn filtered_and_empty_pulls_move_the_position() {
        let mut t = OffsetTracker::new(0);
        // Offsets 0..5 pulled, only 3 matched the tag filter.
        t.pulled([3], 5);
        assert_eq!(t.committable(), 3);
        t.done(3);
        assert_eq!(t.committable(), 5);
        t.skip_to(9);
        assert_eq!(t.committable(), 9);
        assert_eq!(t.next(), 9);
        // Finishing an unknown offset changes nothing.
        t.done(100);
        assert_eq!(t.committable(), 9);
    }
}
