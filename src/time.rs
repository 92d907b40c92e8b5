//! Dates and "ago": every way umc writes a time. Pure: the time, and "now", are always given.
//!
//! Dates are RFC 1123 as HTTP writes them (`Sat, 09 Nov 2024 10:00:00 GMT`), with the zone
//! each reader wants: `GMT` for HTTP and the console, `UTC` for Debian archives and umc-admin,
//! `+0000` for changelogs. httpdate writes them all, and panics past the year 9999, so every
//! function here clamps a time to 1970..=9999 first, or refuses one outside it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second a four-digit-year date can name (9999-12-31 23:59:59 UTC).
pub const LAST_DATE: i64 = 253_402_300_799;

/// `unix` as a `SystemTime` clamped to 1970..=9999, the range RFC 1123 dates (and `httpdate`)
/// can write. Stored times are checked on the way in; this keeps every date written from a
/// stored time total even so.
pub fn system_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.clamp(0, LAST_DATE) as u64)
}

/// The date as HTTP writes it (`Sat, 09 Nov 2024 10:00:00 GMT`), clamped to 1970..=9999:
/// `Last-Modified`, and the full time the console shows next to an [`ago`].
pub fn http_date(unix: i64) -> String {
    httpdate::fmt_http_date(system_time(unix))
}

/// The date as Debian archives write it (`Sat, 09 Nov 2024 10:00:00 UTC`), clamped to
/// 1970..=9999: the Release `Date`, and the times umc-admin prints.
pub fn release_date(unix: i64) -> String {
    in_zone(unix, "UTC")
}

/// RFC 2822 date in UTC (`Wed, 25 Nov 2026 18:00:00 +0000`), as Debian changelogs write it;
/// `None` outside the years 1970 to 9999 (a changelog refuses such a time rather than clamp it).
pub fn rfc2822(unix: i64) -> Option<String> {
    (0..=LAST_DATE)
        .contains(&unix)
        .then(|| in_zone(unix, "+0000"))
}

/// [`http_date`] with `zone` for its `GMT`.
fn in_zone(unix: i64, zone: &str) -> String {
    let date = http_date(unix);
    match date.strip_suffix("GMT") {
        Some(rest) => format!("{rest}{zone}"),
        None => date,
    }
}

/// How [`span`] and [`ago`] write a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// `59 s`, `1 min`, `1 h`, `3 d`: the next unit from its first whole one, short (the
    /// console's lists).
    Short,
    /// `119 s`, `2 min`, `2 h`, `2 days`: a unit until two of the next, spelled out (node
    /// states' reasons, umc-admin).
    Long,
}

/// A duration of `secs` (negative counts as 0) in whole units, e.g. `3 min`.
pub fn span(secs: i64, units: Units) -> String {
    let secs = secs.max(0);
    let (k, day) = match units {
        Units::Short => (1, "d"),
        Units::Long => (2, "days"),
    };
    if secs < 60 * k {
        format!("{secs} s")
    } else if secs < 3600 * k {
        format!("{} min", secs / 60)
    } else if secs < 86_400 * k {
        format!("{} h", secs / 3600)
    } else {
        format!("{} {day}", secs / 86_400)
    }
}

/// "3 min ago", for a time `t` before `now` (a later `t` is "0 s ago").
pub fn ago(now: i64, t: i64, units: Units) -> String {
    format!("{} ago", span(now - t, units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_total() {
        // httpdate panics past the year 9999; a stored time out there must print, not panic
        // (review finding 9: `umc-admin log` exited 101 on an imported far-future time).
        assert_eq!(release_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 UTC");
        assert_eq!(release_date(400_000_000_000), release_date(LAST_DATE));
        assert_eq!(release_date(i64::MIN), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(release_date(1), "Thu, 01 Jan 1970 00:00:01 UTC");
        assert_eq!(http_date(400_000_000_000), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(release_date(1_700_000_070), "Tue, 14 Nov 2023 22:14:30 UTC");
    }

    #[test]
    fn rfc2822_dates_and_range() {
        for (t, date) in [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (1_795_629_600, "Wed, 25 Nov 2026 18:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (LAST_DATE, "Fri, 31 Dec 9999 23:59:59 +0000"),
        ] {
            assert_eq!(rfc2822(t).as_deref(), Some(date), "at {t}");
        }
        // httpdate panics past 9999 and cannot go before 1970: the guard answers None.
        for t in [-1, i64::MIN, LAST_DATE + 1, i64::MAX] {
            assert_eq!(rfc2822(t), None, "at {t}");
        }
    }

    #[test]
    fn short_ago_reads_well() {
        let ago = |now, t| ago(now, t, Units::Short);
        assert_eq!(ago(100, 100), "0 s ago");
        assert_eq!(ago(159, 100), "59 s ago");
        assert_eq!(ago(200, 100), "1 min ago");
        assert_eq!(ago(100 + 3599, 100), "59 min ago");
        assert_eq!(ago(100 + 7200, 100), "2 h ago");
        assert_eq!(ago(100 + 86_399, 100), "23 h ago");
        assert_eq!(ago(100 + 3 * 86_400, 100), "3 d ago");
        assert_eq!(ago(0, 100), "0 s ago", "future times clamp");
    }

    #[test]
    fn long_spans_keep_a_unit_until_two_of_the_next() {
        let span = |s| span(s, Units::Long);
        assert_eq!(span(-3), "0 s");
        assert_eq!(span(119), "119 s");
        assert_eq!(span(120), "2 min");
        assert_eq!(span(7199), "119 min");
        assert_eq!(span(7200), "2 h");
        assert_eq!(span(172_799), "47 h");
        assert_eq!(span(172_800), "2 days");
        assert_eq!(ago(1000, 100, Units::Long), "15 min ago");
    }
}
