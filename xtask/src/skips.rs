//! The tests that said `skipped: <why>`, gathered from libtest's output
//! (`--show-output` prints a passing test's output under a `---- NAME
//! stdout ----` header) and from the run's own steps, to be counted at the
//! end: a test that skips passes, so without this a green run can hide that
//! the kernel side never ran.

/// What a skip line starts with, in the tests and in xtask.
pub const MARK: &str = "skipped:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The test's name, or the part of the run (a guest kernel).
    pub what: String,
    pub why: String,
}

#[derive(Debug, Default)]
pub struct SkipLog {
    /// The test whose output libtest is printing now.
    current: Option<String>,
    /// Whether any test output was read: before that there is nothing to sum up.
    pub tests_ran: bool,
    pub skips: Vec<Skip>,
}

impl SkipLog {
    /// Reads one line of `cargo test -- --show-output`.
    pub fn observe(&mut self, line: &str) {
        self.tests_ran = true;
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.current = Some(name.to_string());
        } else if line.starts_with("test result:") {
            self.current = None;
        } else if let Some(at) = line.find(MARK) {
            let why = line[at + MARK.len()..].trim().to_string();
            let what = self
                .current
                .clone()
                .unwrap_or_else(|| "(a test)".to_string());
            if !self.skips.iter().any(|s| s.what == what && s.why == why) {
                self.skips.push(Skip { what, why });
            }
        }
    }

    /// A part of the run that was left out, said now and counted at the end.
    pub fn add(&mut self, what: String, why: String) {
        println!("{MARK} {what} {why}");
        self.skips.push(Skip { what, why });
    }

    /// The lines printed at the end of `cargo xtask test`.
    pub fn summary(&self) -> String {
        let mut out = format!("tests skipped: {}", self.skips.len());
        for s in &self.skips {
            out.push_str(&format!("\n  {}: {}", s.what, s.why));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_named_by_the_test_whose_output_says_so() {
        let mut log = SkipLog::default();
        for line in [
            "running 2 tests",
            "test attach_sees_curl ... ok",
            "test a_full_ring ... ok",
            "",
            "successes:",
            "",
            "---- attach_sees_curl stdout ----",
            "skipped: curl not installed",
            "",
            "---- a_full_ring stdout ----",
            "saw: 60 requests",
            "",
            "test result: ok. 2 passed; 0 failed",
            "skipped: printed outside any test",
        ] {
            log.observe(line);
        }
        assert_eq!(
            log.skips,
            [
                Skip {
                    what: "attach_sees_curl".into(),
                    why: "curl not installed".into()
                },
                Skip {
                    what: "(a test)".into(),
                    why: "printed outside any test".into()
                }
            ]
        );
        assert_eq!(
            log.summary(),
            "tests skipped: 2\n  attach_sees_curl: curl not installed\n  \
             (a test): printed outside any test"
        );
    }
}
