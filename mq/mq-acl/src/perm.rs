//! Permissions as RocketMQ's `Permission`: a bit set of DENY, ANY, PUB and
//! SUB, parsed from `DENY`, `PUB`, `SUB`, `PUB|SUB` (or `SUB|PUB`).

use std::fmt;

/// A permission bit set, numbered as RocketMQ's `Permission` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm(u8);

impl Perm {
    /// Nothing is allowed; wins over every other bit.
    pub const DENY: Perm = Perm(1);
    /// Either PUB or SUB will do (a need, never owned).
    pub const ANY: Perm = Perm(1 << 1);
    /// Publish to a topic.
    pub const PUB: Perm = Perm(1 << 2);
    /// Subscribe to a topic, or consume as a group.
    pub const SUB: Perm = Perm(1 << 3);
    /// Both.
    pub const PUB_SUB: Perm = Perm((1 << 2) | (1 << 3));

    /// Parses a permission as a file writes it; `None` for anything else
    /// (RocketMQ's `checkResourcePerms` refuses those at load).
    pub fn parse(text: &str) -> Option<Perm> {
        match text.trim() {
            "DENY" => Some(Perm::DENY),
            "PUB" => Some(Perm::PUB),
            "SUB" => Some(Perm::SUB),
            "PUB|SUB" | "SUB|PUB" => Some(Perm::PUB_SUB),
            _ => None,
        }
    }

    /// Whether an account owning `self` may do what needs `needed`
    /// (RocketMQ's `checkPermission`: DENY refuses all; ANY takes PUB or SUB).
    pub fn allows(self, needed: Perm) -> bool {
        if self.0 & Perm::DENY.0 != 0 {
            return false;
        }
        if needed.0 & Perm::ANY.0 != 0 {
            return self.0 & Perm::PUB_SUB.0 != 0;
        }
        needed.0 & self.0 != 0
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match *self {
            Perm::DENY => "DENY",
            Perm::ANY => "ANY",
            Perm::PUB => "PUB",
            Perm::SUB => "SUB",
            Perm::PUB_SUB => "PUB|SUB",
            _ => "?",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check_as_rocketmq() {
        assert_eq!(Perm::parse(" PUB|SUB "), Some(Perm::PUB_SUB));
        assert_eq!(Perm::parse("SUB|PUB"), Some(Perm::PUB_SUB));
        assert_eq!(Perm::parse("READ"), None);
        assert!(Perm::PUB_SUB.allows(Perm::SUB));
        assert!(Perm::PUB.allows(Perm::PUB));
        assert!(!Perm::SUB.allows(Perm::PUB));
        assert!(!Perm::DENY.allows(Perm::SUB));
        assert!(Perm::SUB.allows(Perm::ANY));
        assert!(!Perm::DENY.allows(Perm::ANY));
    }
}
