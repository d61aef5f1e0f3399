//! The CDS Hooks 2.0.1 model: requests, responses, cards, discovery and feedback.

pub mod discovery;
pub(crate) mod feedback;
pub mod request;
pub(crate) mod response;

pub use request::{EnvelopeSchemas, HookRequest, InvalidRequest};
pub use response::{Card, CdsResponse};
