//! Times as the pages show and read them, in UTC.

use mq_client::time::{civil_from_days, days_from_civil};

pub use mq_client::time::now_millis;

/// `ms` as `yyyy-mm-dd hh:mm:ss.SSS` (UTC); `-` for zero or less (never).
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_owned();
    }
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// `now`, `yyyy-mm-dd hh:mm[:ss]` (a space or `T` between; what a
/// `datetime-local` input sends) in UTC, or Unix milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Some(now_millis());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let (date, clock) = text.split_once([' ', 'T'])?;
    let date: Vec<&str> = date.split('-').collect();
    let clock: Vec<&str> = clock.split(':').collect();
    let [y, mo, d] = date.as_slice() else {
        return None;
    };
    let (h, mi, s) = match clock.as_slice() {
        [h, mi] => (*h, *mi, "0"),
        [h, mi, s] => (*h, *mi, *s),
        _ => return None,
    };
    let num = |s: &str, max: i64| s.parse::<i64>().ok().filter(|n| (0..=max).contains(n));
    let (y, mo, d) = (num(y, 9999)?, num(mo, 12)?, num(d, 31)?);
    let (h, mi, s) = (num(h, 23)?, num(mi, 59)?, num(s, 59)?);
    if y < 1970 || mo == 0 || d == 0 {
        return None;
    }
    Some(
        days_from_civil(y, mo as u32, d as u32) * 86_400_000
            + h * 3_600_000
            + mi * 60_000
            + s * 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(format_ms(1_709_210_096_789), "2024-02-29 12:34:56.789");
        assert_eq!(format_ms(0), "-");
        assert_eq!(parse_time("2024-02-29 12:34:56"), Some(1_709_210_096_000));
        assert_eq!(parse_time("2024-02-29T12:34"), Some(1_709_210_040_000));
        assert_eq!(parse_time("1234"), Some(1234));
        assert!((parse_time("now").unwrap() - now_millis()).abs() < 10_000);
        for bad in [
            "",
            "yesterday",
            "2024-13-01 00:00",
            "2024-01-01 24:00",
            "-5",
            "2024-01-01",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
