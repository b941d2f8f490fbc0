//! Civil dates as day counts (Howard Hinnant's algorithms), for the few
//! date computations the sources need (ages, visit dates): a dependency
//! would be larger than these twenty lines.

/// The ISO date (`YYYY-MM-DD`) of a day count since 1970-01-01.
pub fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day count since 1970-01-01 of a text starting with `YYYY-MM-DD`.
pub fn days_of(text: &str) -> Option<i64> {
    let y: i64 = text.get(0..4)?.parse().ok()?;
    let m: i64 = text.get(5..7)?.parse().ok()?;
    let d: i64 = text.get(8..10)?.parse().ok()?;
    if text.as_bytes().get(4) != Some(&b'-') || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(47_482), "2100-01-01");
        assert_eq!(iso_date(47_482 + 59), "2100-03-01");
        for d in [-800_000, -1, 0, 59, 47_482, 70_000, 120_000] {
            assert_eq!(days_of(&iso_date(d)), Some(d));
        }
        assert_eq!(days_of("2164-10-23 21:09:00"), days_of("2164-10-23"));
        assert_eq!(days_of("2164/10/23"), None);
    }
}
