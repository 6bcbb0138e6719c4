//! Remote address patterns of `globalWhiteRemoteAddresses` and an account's
//! `whiteRemoteAddress`, as RocketMQ's `RemoteAddressStrategyFactory` reads
//! them: `*` (anyone), an exact address, IPv4 segments with a trailing `*`
//! (`192.168.0.*`, `10.*`), a range in a segment (`192.168.1.1-5`), a brace
//! list in the last segment (`192.168.1.{1,2,3}`), and comma lists of these.
//! IPv6 addresses match exactly.

use std::net::IpAddr;

/// One IPv4 segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Range(u8, u8),
    Any,
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Anyone,
    Exact(IpAddr),
    V4([Segment; 4]),
    V4Choice([u8; 3], Vec<u8>),
}

/// A remote address white list entry (possibly a comma list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressPattern {
    alternatives: Vec<Pattern>,
}

impl AddressPattern {
    /// Parses a pattern; a blank one matches nobody. The error says what is wrong.
    pub fn parse(text: &str) -> Result<AddressPattern, String> {
        let text = text.trim();
        let mut alternatives = Vec::new();
        if text.is_empty() {
            return Ok(AddressPattern { alternatives });
        }
        if let Some((prefix, list)) = text.strip_suffix('}').and_then(|t| t.split_once('{')) {
            alternatives.push(choice(prefix, list).ok_or_else(|| bad(text))?);
            return Ok(AddressPattern { alternatives });
        }
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            alternatives.push(one(part).ok_or_else(|| bad(part))?);
        }
        Ok(AddressPattern { alternatives })
    }

    /// Whether `addr` is on this list.
    pub fn matches(&self, addr: IpAddr) -> bool {
        let ip = canonical(addr);
        self.alternatives.iter().any(|p| match (p, ip) {
            (Pattern::Anyone, _) => true,
            (Pattern::Exact(want), ip) => *want == ip,
            (Pattern::V4(segments), IpAddr::V4(v4)) => {
                segments.iter().zip(v4.octets()).all(|(s, o)| match s {
                    Segment::Any => true,
                    Segment::Range(lo, hi) => (*lo..=*hi).contains(&o),
                })
            }
            (Pattern::V4Choice(head, last), IpAddr::V4(v4)) => {
                let o = v4.octets();
                o[..3] == head[..] && last.contains(&o[3])
            }
            _ => false,
        })
    }
}

fn bad(text: &str) -> String {
    format!("invalid remote address pattern {text:?}")
}

/// An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) compares as its IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

fn one(part: &str) -> Option<Pattern> {
    if part == "*" || part == "*.*.*.*" {
        return Some(Pattern::Anyone);
    }
    if let Ok(ip) = part.parse::<IpAddr>() {
        return Some(Pattern::Exact(canonical(ip)));
    }
    let given: Vec<&str> = part.split('.').collect();
    if given.len() > 4 {
        return None;
    }
    let mut segments = [Segment::Any, Segment::Any, Segment::Any, Segment::Any];
    let mut wildcard = false;
    for (i, seg) in given.iter().enumerate() {
        segments[i] = if *seg == "*" {
            wildcard = true;
            Segment::Any
        } else if wildcard {
            // RocketMQ allows `*` only as the tail: `10.*.1.1` is an error.
            return None;
        } else if let Some((lo, hi)) = seg.split_once('-') {
            let (lo, hi) = (lo.parse::<u8>().ok()?, hi.parse::<u8>().ok()?);
            if lo > hi {
                return None;
            }
            Segment::Range(lo, hi)
        } else {
            let n = seg.parse::<u8>().ok()?;
            Segment::Range(n, n)
        };
    }
    // Fewer than four segments only with a trailing `*` (`192.168.*`).
    (given.len() == 4 || wildcard).then_some(Pattern::V4(segments))
}

fn choice(prefix: &str, list: &str) -> Option<Pattern> {
    let head: Vec<u8> = prefix
        .strip_suffix('.')?
        .split('.')
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let last: Vec<u8> = list
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let head: [u8; 3] = head.try_into().ok()?;
    (!last.is_empty()).then_some(Pattern::V4Choice(head, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, addr: &str) -> bool {
        AddressPattern::parse(pattern)
            .unwrap()
            .matches(addr.parse().unwrap())
    }

    #[test]
    fn rocketmq_patterns() {
        assert!(m("*", "8.8.8.8"));
        assert!(m("192.168.0.*", "192.168.0.77"));
        assert!(!m("192.168.0.*", "192.168.1.77"));
        assert!(m("10.*", "10.1.2.3"));
        assert!(m("192.168.1.1-5", "192.168.1.5"));
        assert!(!m("192.168.1.1-5", "192.168.1.6"));
        assert!(m("192.168.1.{1,2,3}", "192.168.1.2"));
        assert!(!m("192.168.1.{1,2,3}", "192.168.1.4"));
        assert!(m("127.0.0.1, 10.0.0.*", "10.0.0.9"));
        assert!(m("127.0.0.1", "::ffff:127.0.0.1"));
        assert!(m("::1", "::1"));
        assert!(!m("", "127.0.0.1"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in [
            "300.1.1.1",
            "10.*.1.1",
            "1.2.3",
            "1.2.3.9-4",
            "1.2.{a}",
            "x",
        ] {
            assert!(AddressPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
