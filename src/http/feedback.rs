//! `POST /cds-services/{id}/feedback`: the clinician's accept / override of a card, checked
//! against the card the service issued and committed to the audit store before the 200.

use actix_web::{HttpRequest, HttpResponse, web};

use super::body::check_json_content_type;
use super::{ApiError, AppState};
use crate::audit::{FeedbackRecord, StorageError};
use crate::cds_hooks::discovery;
use crate::cds_hooks::feedback::Feedback;
use crate::engine::EvaluationError;

pub(super) async fn feedback_handler(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service_id = path.into_inner();
    if discovery::service(&service_id).is_none() {
        return Err(ApiError::UnknownService(service_id));
    }
    state.authenticate(&req).await?;
    check_json_content_type(&req)?;
    let (body, _reservation) = state.read_body(&req, payload).await?;
    let value = state.engine.parse_body(&body)?;
    let feedback =
        Feedback::from_value(value, &state.engine.envelopes).map_err(EvaluationError::from)?;
    let records: Vec<FeedbackRecord> = feedback
        .feedback
        .iter()
        .map(|f| {
            let reason = f.override_reason.as_ref().and_then(|r| r.reason.as_ref());
            FeedbackRecord {
                card: f.card,
                outcome: f.outcome.as_str().to_owned(),
                accepted_suggestions: f
                    .accepted_suggestions
                    .iter()
                    .map(|s| s.id.clone())
                    .collect(),
                override_reason_code: reason.and_then(|r| r.code.clone()),
                override_reason_system: reason.and_then(|r| r.system.clone()),
                override_reason_display: reason.and_then(|r| r.display.clone()),
                user_comment: f
                    .override_reason
                    .as_ref()
                    .and_then(|r| r.user_comment.clone()),
                outcome_timestamp: f.outcome_timestamp,
            }
        })
        .collect();
    // 200 only once the feedback is committed.
    let stored = state
        .audit
        .record_feedback(&service_id, &records)
        .await
        .map_err(|e| match e {
            StorageError::UnknownCard(uuid) => ApiError::UnknownCard(uuid.to_string()),
            StorageError::FeedbackMismatch { path, message } => {
                ApiError::FeedbackMismatch { path, message }
            }
            other => {
                tracing::error!(error = %other, "feedback could not be stored");
                ApiError::Unavailable("feedback could not be stored")
            }
        })?;
    tracing::info!(service = %service_id, new = stored.new, duplicates = stored.duplicates, "feedback stored");
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"stored": stored.new, "duplicates": stored.duplicates})))
}
