//! Reading request bodies within limits: a size cap (a declared `Content-Length` over it is
//! refused before any byte is read), a read timeout (a stalled body cannot hold a connection),
//! and a process-wide budget of body bytes being read and evaluated at once, so that many
//! concurrent large charts cannot exhaust memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;

use super::ApiError;

/// Body bytes held by requests being read, parsed or evaluated, over the whole process.
#[derive(Debug)]
pub struct BodyBudget {
    used: AtomicUsize,
    max: usize,
}

impl BodyBudget {
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

/// Bytes held from a [`BodyBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Reservation {
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

/// The limits [`read_body`] applies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Reads the body within `limits`, holding its bytes in `budget` for as long as the returned
/// reservation lives (the caller keeps it until the request is evaluated: the parsed JSON
/// costs a multiple of the bytes).
///
/// - `Content-Length` over the limit → 413 before reading;
/// - more bytes than the limit → 413 as soon as they arrive, nothing more is read;
/// - the budget cannot cover the body → 503 (the caller may retry);
/// - the body not complete within the timeout → 408.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limits: BodyLimits,
    budget: &Arc<BodyBudget>,
) -> Result<(web::BytesMut, Reservation), ApiError> {
    let max = limits.max_bytes;
    let declared = declared_length(req)?;
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let declared = declared.map_or(0, |n| n as usize);
    let mut reservation = budget.reserve(declared).ok_or(ApiError::Busy)?;
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared);
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| match e {
                actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge(max),
                _ => ApiError::BodyRead,
            })?;
            let len = body.len() + chunk.len();
            if len > max {
                return Err(ApiError::PayloadTooLarge(max));
            }
            if !reservation.grow_to(len) {
                return Err(ApiError::Busy);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(limits.timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout(limits.timeout.as_secs()))??;
    Ok((body, reservation))
}

/// The `Content-Length` the client declared; a value that is not a number is a bad request.
fn declared_length(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    match req.headers().get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or(ApiError::BodyRead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_returned_on_drop() {
        let budget = BodyBudget::new(100);
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
