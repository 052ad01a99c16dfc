//! Output: text for people, JSON Lines for machines, Chrome trace events.
mod check;

pub use check::check_table;
