//! The CDS Hooks 2.0.1 model: requests, responses, cards, discovery and feedback.

pub mod kinds;

pub use kinds::{Hook, Indicator};
