//! Exit codes: part of the contract (docs/src/output.md, "Exit codes").

/// Everything asked for worked.
pub const SUCCESS: i32 = 0;
/// A request or the trace failed; what was recorded is still printed.
pub const FAILED: i32 = 1;
/// Bad command line.
pub const USAGE: i32 = 2;
/// An `--expect` did not hold.
pub const EXPECT_FAILED: i32 = 3;
/// Missing privilege or kernel support.
pub const NO_SUPPORT: i32 = 4;
/// Interrupted by SIGINT.
pub const SIGINT: i32 = 130;
/// Interrupted by SIGTERM.
pub const SIGTERM: i32 = 143;
