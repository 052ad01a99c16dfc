//! `trace`'s exit code: a failed request, a signal, or an `--expect` that
//! did not hold (the README's exit codes).
use crate::{cli::Expect, exit, timeline::Trace};

pub fn exit_code(trace: &Trace, expect: Option<Expect>, interrupted: Option<i32>) -> i32 {
    if let Some(code) = interrupted {
        return code;
    }
    if trace.summary.failed > 0 {
        return exit::FAILED;
    }
    let Some(expect) = expect else {
        return exit::SUCCESS;
    };
    let holds = match expect {
        // Every request after the first reused, confirmed by the kernel when
        // the kernel was watching.
        Expect::Reuse => trace
            .requests
            .iter()
            .skip(1)
            .all(|t| t.verdict.reused && (!trace.kernel || t.verdict.kernel_confirmed)),
        Expect::New => trace.requests.iter().all(|t| !t.verdict.reused),
    };
    // A connection opened after request 1 had its own is a regression of
    // reuse even when no request rode it (a losing happy-eyeballs attempt
    // during request 1 is not).
    let late = trace
        .connections
        .iter()
        .filter(|c| expect == Expect::Reuse && c.after_first_conn);
    let mut late_found = false;
    for c in late {
        late_found = true;
        let ridden = if c.unused() {
            "no request rode it".to_string()
        } else {
            let by: Vec<String> = c.ridden_by.iter().map(u32::to_string).collect();
            format!("request {} rode it", by.join(", "))
        };
        eprintln!(
            "tracer: --expect reuse: connection cookie {} -> {} was opened {}; {ridden}",
            c.cookie,
            c.remote,
            c.when.of(c.during)
        );
    }
    if holds && !late_found {
        exit::SUCCESS
    } else {
        let late = if late_found {
            ", and a connection was opened after request 1 had its own"
        } else {
            ""
        };
        eprintln!(
            "tracer: --expect {} did not hold: {} of {} requests reused a connection{late}",
            expect.as_str(),
            trace.summary.reused,
            trace.summary.requests
        );
        exit::EXPECT_FAILED
    }
}
