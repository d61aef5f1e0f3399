//! Invocation ids, and card uuids that name their invocation.
//!
//! Feedback names a card by its uuid, and the audit trail must find the invocation that
//! returned it. Keeping a row per card in `card_index` for that lookup cost every group commit
//! an index insert per card (≈ 8 per call) and a B-tree of its own; it was the largest single
//! part of the writer's work per record. Instead, a card's uuid is its invocation's id with the
//! card's position (from 1) in the last two bytes, which are zero in every invocation id: the
//! invocation is found by clearing them. Both stay UUID version 7 and time-ordered. The two
//! bytes are random in the uuid crate's v7 (after its 42-bit counter, which is monotonic within
//! a process and seeded at random each millisecond), so ids stay unique within a process by
//! the counter, and between replicas by its random seed and the 16 random bits left.
//!
//! `card_index` still holds the cards whose uuid does not name its invocation (recorded before
//! this scheme, or made by a caller that chose its own uuids) and gets a row for any other card
//! when feedback on it is stored (the feedback rows refer to it and the reports read its rule
//! id).

use uuid::Uuid;

/// A new invocation id: UUID v7 with its last two bytes zero, so that its cards' uuids can
/// carry their position there ([`card_uuid`]).
pub fn new_invocation_id() -> Uuid {
    let mut bytes = *Uuid::now_v7().as_bytes();
    bytes[14] = 0;
    bytes[15] = 0;
    Uuid::from_bytes(bytes)
}

/// The uuid of the card at `position` (from 0) of the response to `invocation`; `None` when
/// `invocation` was not made by [`new_invocation_id`] or the position does not fit in two
/// bytes (65,535 cards): such a card keeps a uuid of its own and is indexed as before.
pub fn card_uuid(invocation: Uuid, position: usize) -> Option<Uuid> {
    let mut bytes = *invocation.as_bytes();
    if bytes[14..] != [0, 0] {
        return None;
    }
    let number = u16::try_from(position).ok()?.checked_add(1)?;
    bytes[14..].copy_from_slice(&number.to_be_bytes());
    Some(Uuid::from_bytes(bytes))
}

/// The invocation a card uuid names, if it is one made by [`card_uuid`]. Only a candidate: the
/// invocation must exist and list the card.
pub(super) fn invocation_of_card(card: Uuid) -> Option<Uuid> {
    let mut bytes = *card.as_bytes();
    if bytes[14..] == [0, 0] {
        return None;
    }
    bytes[14] = 0;
    bytes[15] = 0;
    Some(Uuid::from_bytes(bytes))
}

/// Whether `card` is found through its uuid alone (no `card_index` row needed when it is
/// recorded).
pub(super) fn names_its_invocation(card: Uuid, invocation: Uuid) -> bool {
    invocation_of_card(card) == Some(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_uuids_name_their_invocation_and_stay_version_7() {
        let invocation = new_invocation_id();
        assert_eq!(invocation.get_version_num(), 7);
        assert_eq!(invocation_of_card(invocation), None);
        let cards: Vec<Uuid> = (0..300)
            .map(|i| card_uuid(invocation, i).unwrap())
            .collect();
        for (i, card) in cards.iter().enumerate() {
            assert_eq!(card.get_version_num(), 7, "card {i}");
            assert_eq!(card.get_variant(), uuid::Variant::RFC4122, "card {i}");
            assert_eq!(invocation_of_card(*card), Some(invocation), "card {i}");
            assert!(names_its_invocation(*card, invocation));
        }
        let distinct: std::collections::BTreeSet<_> = cards.iter().collect();
        assert_eq!(distinct.len(), cards.len());
        assert_eq!(
            card_uuid(invocation, 65_534).map(|u| u.as_bytes()[14..].to_vec()),
            Some(vec![0xff, 0xff])
        );
        assert_eq!(card_uuid(invocation, 65_535), None);
    }

    #[test]
    fn other_uuids_name_no_invocation_or_another_one() {
        // An id not made here (a random v7 with non-zero last bytes) has no derived cards.
        let mut bytes = *Uuid::now_v7().as_bytes();
        bytes[15] = 7;
        let foreign = Uuid::from_bytes(bytes);
        assert_eq!(card_uuid(foreign, 0), None);
        // A card of one invocation does not name another.
        let (a, b) = (new_invocation_id(), new_invocation_id());
        assert_ne!(a, b);
        assert!(!names_its_invocation(card_uuid(a, 0).unwrap(), b));
        assert!(!names_its_invocation(foreign, a));
    }
}
