//! Small readers over FHIR R4 JSON (borrowed `serde_json::Value`, never cloned): elements,
//! references, dates, quantities, and the profile's exclusions.

use chrono::NaiveDate;
use serde_json::Value;

use super::readers::view::Read;

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(crate) fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

pub(crate) fn resource_type(v: &Value) -> &str {
    str_at(v, "resourceType").unwrap_or("")
}

/// "Type/id" of a resource ("Type/?" without an id, which validation normally prevents).
pub(crate) fn reference_of(v: &Value) -> String {
    format!("{}/{}", resource_type(v), str_at(v, "id").unwrap_or("?"))
}

/// Normalises a FHIR Reference.reference to "Type/id" (absolute URLs and `_history` cut).
pub(crate) fn normalise_reference(r: &str) -> &str {
    let r = match r.find("/_history/") {
        Some(i) => &r[..i],
        None => r,
    };
    // Keep the last two path segments of an absolute URL.
    let mut parts = r.rsplitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(ty)) => {
            let start = r.len() - id.len() - ty.len() - 1;
            &r[start..]
        }
        _ => r,
    }
}

/// The references in an element (a Reference or an array of them), normalised.
pub(crate) fn references_in(element: Option<&Value>) -> Vec<&str> {
    match element {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| str_at(r, "reference"))
            .map(normalise_reference)
            .collect(),
        Some(r @ Value::Object(_)) => str_at(r, "reference")
            .map(normalise_reference)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Parses a FHIR date or dateTime to its calendar date (partial dates to their first day).
/// Hand-rolled: chrono's format parser dominated extraction time.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(r)?;
        digits.iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = num(0..4)? as i32;
    let (month, day) = match b.len() {
        4 => (1, 1),
        7 if b[4] == b'-' => (num(5..7)?, 1),
        n if n >= 10 && b[4] == b'-' && b[7] == b'-' => (num(5..7)?, num(8..10)?),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, month, day)
}

fn date_at(v: &Value, key: &str) -> Option<NaiveDate> {
    str_at(v, key).and_then(parse_date)
}

/// The clinical date of a resource: `effective[x]`, `onset[x]`, `performed[x]`,
/// `occurrence[x]` (ImagingStudy `started`), then `recordedDate` / `issued` / `authoredOn` /
/// `dateAsserted`. One pass over the resource's keys (rank = position in that order) rather
/// than a map lookup per candidate element.
pub(crate) fn clinical_date(v: &Value) -> Option<NaiveDate> {
    let obj = v.as_object()?;
    let mut best: Option<(u8, NaiveDate)> = None;
    for (k, x) in obj {
        let rank = match k.as_str() {
            "effectiveDateTime" | "effectivePeriod" | "effectiveInstant" => 0,
            "onsetDateTime" | "onsetPeriod" => 1,
            "performedDateTime" | "performedPeriod" => 2,
            "occurrenceDateTime" | "occurrencePeriod" => 3,
            "started" => 4,
            "recordedDate" => 5,
            "issued" => 6,
            "authoredOn" => 7,
            "dateAsserted" => 8,
            _ => continue,
        };
        if best.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        let date = match x {
            Value::String(s) => parse_date(s),
            Value::Object(_) => date_at(x, "start").or_else(|| date_at(x, "end")),
            _ => None,
        };
        if let Some(d) = date {
            best = Some((rank, d));
        }
    }
    best.map(|(_, d)| d)
}

/// Entered in error, refuted, not done or cancelled: the profile ignores these.
pub(crate) fn is_excluded<'a>(v: &impl Read<'a>) -> bool {
    if matches!(
        v.first_code("verificationStatus"),
        Some("entered-in-error" | "refuted")
    ) {
        return true;
    }
    matches!(
        v.str("status"),
        Some("entered-in-error" | "not-done" | "cancelled")
    )
}

/// A Quantity's value and unit (`code`, else `unit`).
pub(crate) fn quantity(v: &Value) -> Option<(f64, Option<&str>)> {
    let value = v.get("value")?.as_f64()?;
    Some((value, str_at(v, "code").or_else(|| str_at(v, "unit"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_parse_partial_and_full() {
        assert_eq!(parse_date("2026"), NaiveDate::from_ymd_opt(2026, 1, 1));
        assert_eq!(parse_date("2026-03"), NaiveDate::from_ymd_opt(2026, 3, 1));
        assert_eq!(
            parse_date("2026-03-04T10:00:00+02:00"),
            NaiveDate::from_ymd_opt(2026, 3, 4)
        );
        assert_eq!(parse_date("garbage"), None);
    }

    #[test]
    fn clinical_date_prefers_effective_then_recorded() {
        let v =
            json!({"effectivePeriod": {"start": "2025-01-02"}, "issued": "2025-02-01T00:00:00Z"});
        assert_eq!(clinical_date(&v), NaiveDate::from_ymd_opt(2025, 1, 2));
        let v = json!({"recordedDate": "2025-02-01"});
        assert_eq!(clinical_date(&v), NaiveDate::from_ymd_opt(2025, 2, 1));
    }

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalise_reference("https://ehr.example/fhir/Condition/abc/_history/2"),
            "Condition/abc"
        );
        assert_eq!(normalise_reference("Condition/abc"), "Condition/abc");
        assert_eq!(normalise_reference("#med1"), "#med1");
    }

    #[test]
    fn exclusions() {
        assert!(is_excluded(&&json!({"status": "entered-in-error"})));
        assert!(is_excluded(&&json!({"status": "not-done"})));
        assert!(is_excluded(
            &&json!({"verificationStatus": {"coding": [{"code": "refuted"}]}})
        ));
        assert!(!is_excluded(&&json!({"status": "final"})));
    }
}
