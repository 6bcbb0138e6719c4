//! Client-side unique message ids (the `UNIQ_KEY` property), laid out as
//! RocketMQ's `MessageClientIDSetter` does so that tools can read them:
//!
//! `[ip:4][pid:2][instance hash:4][millis since month start:4][counter:2]`
//! as 32 upper case hex characters. The first 10 bytes are fixed per
//! process; the time and counter make each id unique (the counter wraps
//! after 65536 ids in one millisecond, which a client cannot reach).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::time::{civil_from_days, days_from_civil, now_millis};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Generates unique message ids.
#[derive(Debug)]
pub struct UniqueIdGenerator {
    prefix: String,
    counter: AtomicU32,
}

impl UniqueIdGenerator {
    /// A generator whose ids start with `ip`, `pid` and `salt`.
    pub fn new(ip: Ipv4Addr, pid: u32, salt: u32) -> Self {
        let mut fixed = Vec::with_capacity(10);
        fixed.extend_from_slice(&ip.octets());
        fixed.extend_from_slice(&(pid as u16).to_be_bytes());
        fixed.extend_from_slice(&salt.to_be_bytes());
        UniqueIdGenerator {
            prefix: hex(&fixed),
            counter: AtomicU32::new(0),
        }
    }

    /// The process-wide generator.
    pub fn global() -> &'static UniqueIdGenerator {
        static GLOBAL: OnceLock<UniqueIdGenerator> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let now = now_millis();
            UniqueIdGenerator::new(
                crate::config::local_ip(),
                std::process::id(),
                (now as u32) ^ (std::process::id().rotate_left(16)),
            )
        })
    }

    /// A new id for a message born at `now_millis` (Unix time).
    pub fn next_at(&self, now_millis: i64) -> String {
        let since_month = (now_millis - month_start_millis(now_millis)).max(0) as u32;
        let counter = self.counter.fetch_add(1, Ordering::Relaxed) as u16;
        let mut tail = [0u8; 6];
        tail[..4].copy_from_slice(&since_month.to_be_bytes());
        tail[4..].copy_from_slice(&counter.to_be_bytes());
        let mut id = String::with_capacity(32);
        id.push_str(&self.prefix);
        id.push_str(&hex(&tail));
        id
    }

    /// A new id for a message born now.
    pub fn next(&self) -> String {
        self.next_at(now_millis())
    }
}

/// A new unique message id from the process-wide generator.
pub fn create_unique_id() -> String {
    UniqueIdGenerator::global().next()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    out
}

/// Midnight UTC on the first day of the month of `millis`.
fn month_start_millis(millis: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let days = millis.div_euclid(DAY);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn layout_is_rocketmqs() {
        let generator = UniqueIdGenerator::new(Ipv4Addr::new(192, 168, 1, 2), 0x1234, 0xAABBCCDD);
        // 2023-11-14T22:13:20Z: 13 days, 22:13:20 after 2023-11-01T00:00Z.
        let now = 1_700_000_000_000;
        let since_month: u32 = (13 * 86_400 + 22 * 3600 + 13 * 60 + 20) * 1000;
        let id = generator.next_at(now);
        assert_eq!(id.len(), 32);
        assert_eq!(&id[..20], "C0A801021234AABBCCDD");
        assert_eq!(&id[20..28], format!("{since_month:08X}"));
        assert_eq!(&id[28..], "0000");
        assert_eq!(&generator.next_at(now)[28..], "0001");
    }

    #[test]
    fn ids_are_unique_and_hex() {
        let generator = UniqueIdGenerator::new(Ipv4Addr::LOCALHOST, 1, 2);
        let now = now_millis();
        let ids: HashSet<String> = (0..10_000).map(|_| generator.next_at(now)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| HEX.contains(&b))));
        let global = create_unique_id();
        assert_ne!(global, create_unique_id());
    }

    #[test]
    fn month_start_in_utc() {
        assert_eq!(month_start_millis(1_700_000_000_000), 1_698_796_800_000);
        assert_eq!(month_start_millis(1_698_796_800_000), 1_698_796_800_000);
        // Leap day 2024-02-29T12:00Z → 2024-02-01T00:00Z.
        assert_eq!(month_start_millis(1_709_208_000_000), 1_706_745_600_000);
    }
}
