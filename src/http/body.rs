//! Reading request bodies within limits: a size cap (a declared `Content-Length` over it is
//! refused before any byte is read), a read timeout (a stalled body cannot hold a connection),
//! and the process-wide [`crate::budget::ByteBudget`] of bytes being read and evaluated at
//! once, so that many concurrent large charts cannot exhaust memory; and the JSON content
//! type that hook and feedback bodies must declare.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;

use super::ApiError;
pub(crate) use crate::budget::{ByteBudget as BodyBudget, Reservation};

/// The limits [`read_body`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
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
pub(crate) async fn read_body(
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

/// CDS Hooks bodies are JSON; anything else is a 415, not a parse error.
pub(super) fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/fhir+json" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}
