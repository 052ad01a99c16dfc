//! Shell completions and man pages, both generated from the clap
//! definitions so that they cannot disagree with the parser.
use std::{io, path::Path};

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::Cli;

/// `tracer completions SHELL`: the script on stdout.
pub fn completions(shell: Shell) -> i32 {
    clap_complete::generate(shell, &mut public_command(), "tracer", &mut io::stdout());
    crate::exit::SUCCESS
}

/// The command line without its hidden subcommands: clap_complete would
/// offer `__demo-server` and `__man` to every Tab.
fn public_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("tracer")
        .version(super::VERSION)
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// `tracer __man DIR`: tracer.1 and tracer-SUBCOMMAND.1 for each public
/// subcommand, as `cargo xtask dist` packs them.
pub fn man_pages(dir: &Path) -> i32 {
    match write_man_pages(dir) {
        Ok(()) => crate::exit::SUCCESS,
        Err(e) => {
            eprintln!("tracer: writing man pages to {}: {e}", dir.display());
            crate::exit::FAILED
        }
    }
}

fn write_man_pages(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Hidden subcommands get no page; `propagate_version` puts the version
    // in each page's footer.
    clap_mangen::generate_to(Cli::command().propagate_version(true), dir)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    fn public_subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect()
    }

    #[test]
    fn every_help_has_examples() {
        let mut cmd = Cli::command();
        assert!(
            cmd.render_help()
                .to_string()
                .contains("Examples:\n  tracer demo")
        );
        for name in public_subcommands() {
            let sub = cmd.find_subcommand_mut(&name).expect("subcommand");
            let help = sub.render_help().to_string();
            assert!(
                help.contains(&format!("Examples:\n  tracer {name}")),
                "`tracer {name} --help` has no Examples section:\n{help}"
            );
        }
    }

    /// Each shell's script knows every public subcommand and none of the
    /// hidden ones (the demo's server, the man page writer).
    #[test]
    fn completions_name_the_public_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut super::public_command(), "tracer", &mut script);
            let script = String::from_utf8(script).expect("UTF-8");
            for name in public_subcommands() {
                assert!(script.contains(&name), "{shell} lacks {name}");
            }
            for hidden in ["__man", "__demo-server"] {
                assert!(!script.contains(hidden), "{shell} offers {hidden}");
            }
        }
    }

    #[test]
    fn man_pages_one_per_public_subcommand() {
        let dir = std::env::temp_dir().join(format!("tracer-man-{}", std::process::id()));
        super::write_man_pages(&dir).expect("man pages");
        let mut pages: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        let mut want: Vec<String> = public_subcommands()
            .iter()
            .map(|n| format!("tracer-{n}.1"))
            .collect();
        want.push("tracer.1".into());
        want.sort();
        assert_eq!(pages, want);
        let trace = std::fs::read_to_string(dir.join("tracer-trace.1")).expect("page");
        assert!(trace.contains("\\-\\-expect"), "{trace}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
