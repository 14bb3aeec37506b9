//! RFC 3339 times, both ways, without a date-time crate (the client stays small in the browser):
//! the `started` timestamp of a service's STATS, written in UTC with microseconds from the wall
//! clock (`web_time`, so it works in the browser), and the times nats-server writes (a stored
//! message's, a KV entry's, when a stream or a consumer was made), read into a `SystemTime`.
//!
//! Each half is used by one optional part (services write, JetStream reads).
#![cfg_attr(not(all(feature = "jetstream", feature = "service")), allow(dead_code))]

use std::time::Duration;

use web_time::{SystemTime, UNIX_EPOCH};

/// Now, as `2024-05-06T07:08:09.123456Z`.
pub(crate) fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_nanos())
}

/// Seconds and nanoseconds since the Unix epoch as RFC 3339 in UTC, with 6 fraction digits: Go and
/// JavaScript read any number of digits, but nats-py's micro types parse `started` with `%f`,
/// which takes at most 6.
pub(crate) fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, http://howardhinnant.github.io/date_algorithms.html).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The instant of an RFC 3339 time as nats-server writes them (`2024-05-06T07:08:09.123456789Z`,
/// or with an offset `+02:00`); `None` for anything else, and for times before 1970 (the server
/// writes `0001-01-01T00:00:00Z` for "never").
///
/// It slices only with `get` and `split_at_checked`: a `str` slice that may panic brings the
/// standard library's panic message for it (a `char` formatted with `Debug`, and the Unicode
/// tables that takes) into every build that reads a KV entry's time, 3.7 KB of the gzipped KV
/// client.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = text.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at_checked(at)?;
        let (oh, om) = offset.get(1..)?.split_once(':')?;
        let (oh, om) = (num(oh)?, num(om)?);
        if oh > 23 || om > 59 {
            return None;
        }
        let secs = oh * 3600 + om * 60;
        (clock, if offset.starts_with('-') { -secs } else { secs })
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let mut parts = hms.splitn(3, ':');
    let (h, mi, s) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    // Four-digit years keep the arithmetic below far from overflowing.
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if y > 9999
        || !(1..=12).contains(&m)
        || !(1..=month_days).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let nanos = match fraction {
        None => 0,
        Some(fraction) => {
            // Digits past the ninth are below a nanosecond: checked, not counted.
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits = fraction.get(..9).unwrap_or(fraction);
            num(digits)? * 10i64.pow(9 - digits.len() as u32)
        }
    };
    let secs =
        days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((m + 9) % 12); // [0, 11], March first
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // Leap days: 2000 is a leap year (divisible by 400), 1900 and 2100 are not.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-25_509), (1900, 2, 28));
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // 1969-01-01 .. 2101-01-01: dates advance by exactly one day, months and years roll over.
        let mut prev = civil_from_days(-365);
        assert_eq!(prev, (1969, 1, 1));
        for days in -364..=47_847 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = d == 1 && ((y, m) == (py, pm + 1) || (y, m, pm) == (py + 1, 1, 12));
            assert!(next_day || next_month, "{prev:?} -> {:?}", (y, m, d));
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            assert!(d <= len[m as usize - 1], "{y}-{m}-{d}");
            prev = (y, m, d);
        }
        assert_eq!(prev, (2101, 1, 1));
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        // `date -u -d @1709251199` = Thu Feb 29 23:59:59 UTC 2024
        assert_eq!(rfc3339(1_709_251_199, 5_000), "2024-02-29T23:59:59.000005Z");
        assert_eq!(
            rfc3339(1_735_689_600, 123_456_789),
            "2025-01-01T00:00:00.123456Z"
        );
        assert_eq!(now_rfc3339().len(), 27);
    }

    #[test]
    fn rfc3339_times_as_the_server_writes_them() {
        let at = |secs: u64, nanos: u32| Some(UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), at(0, 0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789Z"),
            at(1_709_208_000, 123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5Z"),
            at(1_709_208_000, 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.1234567890123456789Z"),
            at(1_709_208_000, 123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T14:30:00+02:30"),
            at(1_709_208_000, 0)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T09:00:00-03:00"),
            at(1_709_208_000, 0)
        );
        // Go's zero time ("never") and garbage.
        for bad in [
            "0001-01-01T00:00:00Z",
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-02-29T12:00:00",
            "2024-02-29T12:00:00.Z",
            "2024-02-29T12:00:00.12x4Z",
            "2024-02-29T25:00:00Z",
            "2024-02-29T12:00:00+0200",
            "2024-02-29T12:00:00+99999999999999999:00",
            "2024-02-29T12:00:00+24:00",
            "-2024-02-29T12:00:00Z",
            "99999999999999999-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        // days_from_civil undoes civil_from_days, every day of 1969–2101.
        for days in -365..=47_848 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
