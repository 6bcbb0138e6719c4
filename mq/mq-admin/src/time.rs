//! Timestamps as RocketMQ's tools print and read them, in UTC:
//! `2024-05-01 12:30:05,123` out, and `now`, Unix milliseconds or
//! `yyyy-MM-dd#HH:mm:ss:SSS` in (resetOffsetByTime, printMsg).

use anyhow::{anyhow, Result};
use mq_client::time::{civil_from_days, days_from_civil};

/// `ms` as `yyyy-MM-dd HH:mm:ss,SSS` (UTC).
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02},{:03}",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

pub use mq_client::time::now_millis as now_ms;

/// `now`, Unix milliseconds, or `yyyy-MM-dd#HH:mm:ss:SSS` (UTC).
pub fn parse_timestamp(text: &str) -> Result<i64> {
    let text = text.trim();
    if text == "now" {
        return Ok(now_ms());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow!("bad time {text:?}: use now, milliseconds since 1970, or yyyy-MM-dd#HH:mm:ss:SSS")
    };
    let (date, clock) = text.split_once('#').ok_or_else(bad)?;
    let date: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let clock: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let (&[y, mo, d], &[h, mi, s, ms]) = (date.as_slice(), clock.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
        || !(0..1000).contains(&ms)
    {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo as u32, d as u32) * 86_400_000
        + h * 3_600_000
        + mi * 60_000
        + s * 1000
        + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00,000");
        assert_eq!(format_ms(1_709_210_096_789), "2024-02-29 12:34:56,789");
        assert_eq!(
            parse_timestamp("2024-02-29#12:34:56:789").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(parse_timestamp("1234").unwrap(), 1234);
        assert!((parse_timestamp("now").unwrap() - now_ms()).abs() < 10_000);
        for bad in [
            "2024-13-01#00:00:00:000",
            "yesterday",
            "2024-01-01#00:00:00",
            "",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }
}
