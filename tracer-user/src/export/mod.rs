//! Sending what was traced to other systems' collectors.
pub mod otlp;
