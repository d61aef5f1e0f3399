//! Local-recurrence episodes (docs/clinical-spec.md §4.1 `recurrence_number`): records of a
//! recurrence (one Condition per lesion, duplicates, multifocal nodules, whatever their
//! current `clinicalStatus`) are one episode until the disease was completely resected
//! (R0/R1) or a record says there was no evidence of disease; only then does a later record
//! open the next episode.

use chrono::NaiveDate;

/// The episode number (1-based) of each record, given the records' detection dates in
/// ascending order and the dates at which the disease was gone (complete resections of
/// local disease, records of no evidence of disease). A record opens a new episode when such
/// a date lies on or after the previous record's detection and before its own.
pub(crate) fn episode_numbers(detected: &[NaiveDate], disease_gone: &[NaiveDate]) -> Vec<u32> {
    let mut out = Vec::with_capacity(detected.len());
    let mut n = 0u32;
    let mut previous: Option<NaiveDate> = None;
    for &d in detected {
        let new = match previous {
            None => true,
            Some(p) => disease_gone.iter().any(|&g| g >= p && g < d),
        };
        if new {
            n += 1;
        }
        out.push(n);
        previous = Some(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn records_without_a_resection_between_are_one_episode() {
        let detected = [d("2024-01-01"), d("2024-01-20"), d("2024-06-01")];
        assert_eq!(episode_numbers(&detected, &[]), [1, 1, 1]);
    }

    #[test]
    fn a_complete_resection_or_no_evidence_of_disease_opens_the_next() {
        let detected = [
            d("2024-01-01"),
            d("2024-01-20"),
            d("2025-06-01"),
            d("2026-09-01"),
        ];
        let gone = [d("2024-02-15"), d("2026-01-01")];
        assert_eq!(episode_numbers(&detected, &gone), [1, 1, 2, 3]);
        // A resection on the day of detection removes that recurrence.
        assert_eq!(
            episode_numbers(&[d("2024-01-01"), d("2025-01-01")], &[d("2024-01-01")]),
            [1, 2]
        );
        // A resection before the first record opens nothing.
        assert_eq!(
            episode_numbers(&[d("2024-01-01"), d("2025-01-01")], &[d("2023-01-01")]),
            [1, 1]
        );
        assert!(episode_numbers(&[], &gone).is_empty());
    }
}
