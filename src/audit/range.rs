//! The time range of an audit query, `[from, to)`, as `rps-cds report|export` (`--from`,
//! `--to`) and `GET /admin`, `GET /admin/rules/stats` (`?from=&to=`) read its bounds: a date
//! YYYY-MM-DD (UTC; a `to` date includes that whole day) or an RFC 3339 date-time. Here, not in
//! `cli` or `http`, so that both read dates alike without importing each other.

use chrono::{DateTime, Days, NaiveDate, Utc};

/// Parses a `from` bound: a date means the start of that day in UTC.
pub(crate) fn parse_from(s: &str) -> Result<DateTime<Utc>, String> {
    parse_bound(s, false)
}

/// Parses a `to` bound (exclusive): a date means the start of the next day in UTC, so that
/// `to` 2026-06-30 includes the whole of 30 June.
pub(crate) fn parse_to(s: &str) -> Result<DateTime<Utc>, String> {
    parse_bound(s, true)
}

fn parse_bound(s: &str, after_the_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| {
            if after_the_day {
                d.checked_add_days(Days::new(1))
            } else {
                Some(d)
            }
        })
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_is_the_start_and_to_the_end_of_a_day() {
        assert_eq!(
            parse_from("2026-11-23").unwrap().to_rfc3339(),
            "2026-11-23T00:00:00+00:00"
        );
        // `--to` is exclusive: a date includes that whole day.
        assert_eq!(
            parse_to("2026-12-31").unwrap().to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_to("2026-11-23T10:00:00+01:00").unwrap().to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        assert!(parse_from("2026-13-01").is_err());
        assert!(parse_to("yesterday").is_err());
    }
}
