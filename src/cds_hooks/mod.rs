//! The CDS Hooks 2.0.1 model: requests, responses, cards, discovery and feedback.

pub mod discovery;
pub mod feedback;
pub mod request;
pub mod response;

pub use request::{EnvelopeSchemas, HookRequest, InvalidRequest};
pub use response::{Card, CdsResponse};
