//! Protocol parsers fed with bytes the probes captured from other
//! processes: they never panic on what they are given, and report what
//! they cannot know as `None`.

pub mod http2;
