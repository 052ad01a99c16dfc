//! The kernel's set of traced processes holds 1024: children past that are
//! not followed, and the tracer counts them and says so, exactly.
use tracer_tests::{process::can_trace_or_skip, tracer_bin::tracer};

/// The size of `TRACED_TGIDS` in the eBPF object.
const SET: usize = 1024;

#[test]
fn children_past_a_full_set_are_counted() {
    if !can_trace_or_skip() {
        return;
    }
    // Every sleep outlives the loop that starts them (about 2 s here), so
    // no slot frees up: sh takes one, 1023 sleeps the rest.
    let children = 1100;
    let script = format!("i=0; while [ $i -lt {children} ]; do sleep 6 & i=$((i+1)); done; wait");
    let run = tracer(&[
        "run",
        "--format",
        "json",
        "-o",
        "/dev/null",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = children - (SET - 1);
    let note = format!(
        "note: {expected} child processes not followed: the kernel's set of traced processes was full"
    );
    assert!(
        run.stderr.contains(&note),
        "{}",
        run.stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let followed = run.stderr.matches(" started by ").count();
    assert_eq!(followed, SET - 1, "children followed");
    println!("saw: {followed} followed, {note}");
}
