//! HTTP errors, and every status other than 200 that the handlers answer with (CORS
//! preflights are actix-cors's): the one API error type [`ApiError`] and its status mapping
//! (the engine's [`EvaluationError`] says what went wrong; `evaluation_status` says which
//! status that is). Every client mistake gets its 4xx with a FHIR OperationOutcome body naming
//! the JSON path; authentication failures get a bare 401 (no detail for an attacker).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::engine::EvaluationError;
use crate::fhir::outcome::{Issue, IssueCode, OperationOutcome};

pub(crate) const FHIR_JSON: &str = "application/fhir+json";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    Evaluation(#[from] EvaluationError),
    #[error("unknown CDS service {0}")]
    UnknownService(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("could not read the request body")]
    BodyRead,
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("too many request bytes in flight")]
    Busy,
    #[error("unauthorized")]
    Unauthorized,
    #[error("unknown card {0}")]
    UnknownCard(String),
    /// Feedback that does not match its card (a suggestion it never offered, an override
    /// reason it did not list); `path` is the JSON path in the feedback call.
    #[error("feedback does not match its card at {path}: {message}")]
    FeedbackMismatch { path: String, message: String },
    /// A query parameter that cannot be used (unparseable date, empty range); `parameters`
    /// names it (both bounds for a range that is empty).
    #[error("bad query parameter: {message}")]
    BadQuery {
        parameters: &'static [&'static str],
        message: String,
    },
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// `GET /readyz` when the instance cannot take hook calls (draining, audit store
    /// unreachable): the body is `{"status": why}`, not an OperationOutcome.
    #[error("not ready: {0}")]
    NotReady(&'static str),
}

impl ApiError {
    pub(crate) fn outcome(&self) -> Option<OperationOutcome> {
        let single = |code, msg: String| Some(OperationOutcome::single(Issue::error(code, msg)));
        match self {
            ApiError::Evaluation(e) => Some(e.outcome()),
            ApiError::UnknownService(id) => single(
                IssueCode::NotFound,
                format!("no CDS service with id {id:?}; GET /cds-services lists the services"),
            ),
            ApiError::NotFound => single(
                IssueCode::NotFound,
                "no such endpoint; GET /cds-services lists the services".to_owned(),
            ),
            ApiError::MethodNotAllowed(allowed) => single(
                IssueCode::NotSupported,
                format!("method not allowed; this endpoint accepts {allowed}"),
            ),
            ApiError::PayloadTooLarge(max) => single(
                IssueCode::TooLong,
                format!("request body is larger than {max} bytes"),
            ),
            ApiError::UnsupportedMediaType => single(
                IssueCode::NotSupported,
                "Content-Type must be application/json (or application/fhir+json)".to_owned(),
            ),
            ApiError::BodyRead => single(
                IssueCode::Structure,
                "the request body could not be read".to_owned(),
            ),
            ApiError::BodyTimeout(secs) => single(
                IssueCode::Timeout,
                format!("the request body did not arrive completely within {secs} s"),
            ),
            ApiError::Busy => single(
                IssueCode::Transient,
                "the service is reading too many large requests at once; retry shortly".to_owned(),
            ),
            ApiError::Unauthorized => None,
            ApiError::UnknownCard(uuid) => Some(OperationOutcome::single(
                Issue::error(
                    IssueCode::NotFound,
                    format!("card {uuid} was not issued by this service"),
                )
                .at("feedback.card"),
            )),
            ApiError::FeedbackMismatch { path, message } => Some(OperationOutcome::single(
                Issue::error(IssueCode::Invalid, message.clone()).at(path.clone()),
            )),
            ApiError::BadQuery {
                parameters,
                message,
            } => Some(OperationOutcome::single(parameters.iter().fold(
                Issue::error(IssueCode::Invalid, message.clone()),
                |i, p| i.at(*p),
            ))),
            ApiError::Unavailable(why) => {
                single(IssueCode::Exception, format!("service unavailable: {why}"))
            }
            ApiError::NotReady(_) => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Evaluation(e) => evaluation_status(e),
            ApiError::UnknownService(_) | ApiError::NotFound | ApiError::UnknownCard(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyRead | ApiError::FeedbackMismatch { .. } | ApiError::BadQuery { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::MethodNotAllowed(allowed) => {
                response.insert_header(("Allow", *allowed));
            }
            ApiError::Unauthorized => {
                response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Busy | ApiError::Evaluation(EvaluationError::Busy) => {
                response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        // The body may be partly unread (too large, stalled, not admitted): do not keep the
        // connection for another request.
        if matches!(
            self,
            ApiError::PayloadTooLarge(_) | ApiError::BodyTimeout(_) | ApiError::Busy
        ) {
            response.force_close();
        }
        match (self, self.outcome()) {
            (ApiError::NotReady(why), _) => response.json(serde_json::json!({"status": why})),
            (_, Some(outcome)) => response.content_type(FHIR_JSON).json(outcome),
            (_, None) => response.finish(),
        }
    }
}

/// The status of a hook or feedback call the engine could not answer: its own input is wrong
/// (400), the FHIR data it needs could not be fetched (412), too much input is being evaluated
/// at once (503, retry). No wildcard: a new engine error must be given its status here.
pub(super) fn evaluation_status(e: &EvaluationError) -> StatusCode {
    match e {
        EvaluationError::Malformed(_)
        | EvaluationError::TooDeep(_)
        | EvaluationError::Invalid(_) => StatusCode::BAD_REQUEST,
        EvaluationError::PrefetchUnavailable(_) => StatusCode::PRECONDITION_FAILED,
        EvaluationError::Busy => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::InvalidRequest;

    #[test]
    fn engine_errors_get_their_status_here() {
        let issue = || Issue::error(IssueCode::Invalid, "x");
        let cases = [
            (EvaluationError::Malformed("x".into()), 400),
            (EvaluationError::TooDeep(64), 400),
            (EvaluationError::Invalid(InvalidRequest(vec![issue()])), 400),
            (EvaluationError::PrefetchUnavailable(vec![issue()]), 412),
            (EvaluationError::Busy, 503),
        ];
        for (error, status) in cases {
            assert_eq!(evaluation_status(&error).as_u16(), status, "{error}");
            let response = ApiError::from(error).error_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get("content-type").unwrap(), FHIR_JSON);
        }
        let busy = ApiError::from(EvaluationError::Busy).error_response();
        assert_eq!(busy.headers().get("retry-after").unwrap(), "1");
    }

    #[test]
    fn not_ready_is_a_503_with_its_status_not_an_outcome() {
        let response = ApiError::NotReady("draining").error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert!(ApiError::NotReady("draining").outcome().is_none());
    }
}
