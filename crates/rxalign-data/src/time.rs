//! Visit times, parsed with `jiff`: a time is refused unless it names a real
//! date (and time), and visits are ordered by the instant a time names, never
//! by its spelling.
//!
//! Accepted: a date (`2130-04-02`), or a date and a time joined by `T` or a
//! space (`2130-04-02T10:15`, `2130-04-02 10:15:30.25`), optionally followed
//! by `Z` or an offset (`+02:00`), as RFC 3339 and ISO 8601 write them. A
//! date alone stands for the start of its day; a time without an offset is
//! read as UTC. Time-zone names (`[Europe/Paris]`) are refused: give the
//! offset instead.

use std::cmp::Ordering;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

/// A parsed visit time: the instant it names, and whether the text gave an
/// offset (times with and without one cannot be compared honestly). Times
/// compare, and are equal, by instant alone.
#[derive(Clone, Copy, Debug)]
pub struct VisitTime {
    instant: Timestamp,
    date: Date,
    has_offset: bool,
}

impl VisitTime {
    /// Parses a visit time; the message says why a text is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: String| {
            Err(format!(
                "`{text}` is not a date or date-time (YYYY-MM-DD, optionally THH:MM[:SS[.fff]] and Z or ±HH:MM): {why}"
            ))
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return refuse("it is empty".into());
        }
        if trimmed != text {
            return refuse("it has leading or trailing spaces".into());
        }
        if text.contains('[') {
            return refuse("time-zone names are not read; give the offset (for example +01:00)".into());
        }
        // The date part must be written out: `YYYY-MM-DD`, then nothing, or
        // `T`/space and a time (jiff also reads compact forms, which visit
        // files never mean).
        let b = text.as_bytes();
        let shaped = b.len() >= 10
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'-'
            && b[8..10].iter().all(u8::is_ascii_digit)
            && (b.len() == 10 || (matches!(b[10], b'T' | b't' | b' ') && b.len() >= 16 && b[13] == b':'));
        if !shaped {
            return refuse("the shape is wrong".into());
        }
        if b.len() == 10 {
            return match Date::from_str(text) {
                Ok(date) => Ok(Self::civil(
                    date.to_datetime(jiff::civil::Time::midnight()),
                    false,
                )),
                Err(e) => refuse(e.to_string()),
            };
        }
        let time_part = &text[11..];
        let has_offset = time_part.ends_with(['Z', 'z']) || time_part.contains(['+', '-']);
        if has_offset {
            // jiff's timestamp parser reads a space as the separator too.
            return match Timestamp::from_str(text) {
                Ok(instant) => {
                    let date = DateTime::from_str(&text[..10])
                        .map(|d| d.date())
                        .map_err(|e| e.to_string());
                    match date {
                        Ok(date) => Ok(Self {
                            instant,
                            date,
                            has_offset: true,
                        }),
                        Err(e) => refuse(e),
                    }
                }
                Err(e) => refuse(e.to_string()),
            };
        }
        match DateTime::from_str(text) {
            Ok(dt) => Ok(Self::civil(dt, false)),
            Err(e) => refuse(e.to_string()),
        }
    }

    fn civil(dt: DateTime, has_offset: bool) -> Self {
        // Every civil date-time jiff accepts lies within the range UTC can
        // express, so this cannot fail; a failure would mean a jiff bug.
        let instant = Offset::UTC.to_timestamp(dt).unwrap_or(if dt.date().year() < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        });
        Self {
            instant,
            date: dt.date(),
            has_offset,
        }
    }

    /// The instant this time names (a time without an offset read as UTC).
    pub fn instant(&self) -> Timestamp {
        self.instant
    }

    /// The calendar date as written.
    pub fn date(&self) -> Date {
        self.date
    }

    /// Whether the text gave `Z` or an offset.
    pub fn has_offset(&self) -> bool {
        self.has_offset
    }

    /// Whole days from `self`'s date to `later`'s date (negative when
    /// `later` is earlier).
    pub fn days_until(&self, later: &Self) -> i64 {
        (later.date - self.date).get_days().into()
    }
}

impl PartialEq for VisitTime {
    fn eq(&self, other: &Self) -> bool {
        self.instant == other.instant
    }
}

impl Eq for VisitTime {}

impl std::hash::Hash for VisitTime {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.instant.hash(state);
    }
}

impl PartialOrd for VisitTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for VisitTime {
    /// By instant; equal instants compare equal whatever their spelling.
    fn cmp(&self, other: &Self) -> Ordering {
        self.instant.cmp(&other.instant)
    }
}

/// The ISO date (`YYYY-MM-DD`) of a day count since 1970-01-01, for the
/// synthetic clinic's visits.
pub fn iso_date(days: i64) -> String {
    let epoch = jiff::civil::date(1970, 1, 1);
    let span = i32::try_from(days)
        .ok()
        .and_then(|d| jiff::Span::new().try_days(d).ok())
        .and_then(|s| epoch.checked_add(s).ok());
    span.map_or_else(|| format!("(day {days} is out of range)"), |d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> VisitTime {
        VisitTime::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dates_and_date_times_in_every_accepted_spelling() {
        for ok in [
            "2130-01-31",
            "2130-01-31T10:00",
            "2130-01-31 10:00:59",
            "2014-12-19T11:10:19Z",
            "2014-12-19T11:10:19.123456789Z",
            "2014-12-19 11:10:19+05:30",
            "2014-12-19T11:10:19-08:00",
            "2024-02-29",
        ] {
            VisitTime::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn what_is_not_a_real_date_or_time_is_refused() {
        for bad in [
            "2023-02-31",
            "2023-02-29",
            "2130-13-01",
            "2130-01-31T25:99",
            "2130-01-31T10:60",
            "2130-01-31 24:00:01",
            "31/01/2130",
            "2130-1-1",
            "21300131",
            "2130-01-31T10",
            "2130-01-31T10:00[Europe/Paris]",
            " 2130-01-31",
            "2130-01-31T10:00+26:00",
            "yesterday",
            "",
        ] {
            let e = VisitTime::parse(bad).expect_err(bad);
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn order_is_by_instant_not_by_spelling() {
        // As strings, "2014-12-19 12:00" < "2014-12-19T11:00": the space sorts
        // first. As instants the T one is earlier.
        assert!(t("2014-12-19T11:00") < t("2014-12-19 12:00"));
        assert_eq!(t("2014-12-19T11:10:19Z"), t("2014-12-19 11:10:19"));
        assert_eq!(
            t("2014-12-19T12:00+01:00").cmp(&t("2014-12-19T11:00Z")),
            Ordering::Equal
        );
        assert!(t("2014-12-19T00:30+02:00") < t("2014-12-18T23:00Z"));
        assert!(t("2014-12-19") < t("2014-12-19T00:00:01"));
        assert!(t("2014-12-19T10:00:00.5") > t("2014-12-19T10:00:00.25"));
        // A date with an offset keeps the calendar date as written.
        assert_eq!(
            t("2014-12-19T00:30+02:00").date(),
            jiff::civil::date(2014, 12, 19)
        );
    }

    #[test]
    fn days_between_dates_and_iso_dates() {
        assert_eq!(t("2100-01-01").days_until(&t("2100-03-01 10:00")), 59);
        assert_eq!(t("2100-03-01").days_until(&t("2100-01-01")), -59);
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(47_482), "2100-01-01");
        assert_eq!(iso_date(47_482 + 59), "2100-03-01");
        assert_eq!(iso_date(-1), "1969-12-31");
    }
}
