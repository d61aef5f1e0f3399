//! One process-wide budget of input bytes being read, parsed and evaluated at once
//! (`max_inflight_body_bytes`): request bodies (`http::body`) and the FHIR responses fetched
//! to complete prefetch (`fhir::client`) both hold their bytes here until the call is
//! answered, because the parsed chart costs a multiple of them. Beyond it a call is refused
//! with 503 and `Retry-After` instead of exhausting memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held by requests being read, parsed or evaluated, over the whole process: request
/// bodies and the FHIR data fetched for them.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    max: usize,
}

impl ByteBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Bytes currently reserved.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Reserves `n` bytes, or `None` when that would exceed the budget.
    pub fn reserve(self: &Arc<Self>, n: usize) -> Option<Reservation> {
        let mut r = Reservation {
            budget: Arc::clone(self),
            bytes: 0,
        };
        r.grow_to(n).then_some(r)
    }
}

/// Bytes held from a [`ByteBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<ByteBudget>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows the reservation by `n` bytes; false (and unchanged) when the budget is spent.
    pub fn add(&mut self, n: usize) -> bool {
        self.bytes
            .checked_add(n)
            .is_some_and(|total| self.grow_to(total))
    }

    /// Grows the reservation to `n` bytes; false (and unchanged) when the budget is spent.
    pub fn grow_to(&mut self, n: usize) -> bool {
        if n <= self.bytes {
            return true;
        }
        let extra = n - self.bytes;
        let max = self.budget.max;
        let grown = self
            .budget
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(extra).filter(|total| *total <= max)
            });
        if grown.is_ok() {
            self.bytes = n;
        }
        grown.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_returned_on_drop() {
        let budget = ByteBudget::new(100);
        let mut a = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none(), "60 + 50 > 100");
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.used(), 100);
        assert!(!a.grow_to(61));
        drop(b);
        assert!(a.grow_to(100));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(101).is_none());
        assert_eq!(budget.used(), 0);
    }
}
