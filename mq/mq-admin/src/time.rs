//! Timestamps as RocketMQ's tools print and read them, in UTC:
//! `2024-05-01 12:30:05,123` out, and `now`, Unix milliseconds or
//! `yyyy-MM-dd#HH:mm:ss:SSS` in (resetOffsetByTime, printMsg).

use anyhow::{anyhow, Result};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

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

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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
    Ok(days_from_civil(y, mo, d) * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + ms)
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
