//! `cargo xtask docs`: the book (docs/, mdBook) into target/book/, after
//! checking its internal links and the README's: a link to a page or a
//! heading that does not exist fails, as mdBook itself would not say.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::shell;

/// Pinned: the book is built the same everywhere. Installed from crates.io
/// without the `serve`/`watch` features (a web server the build never uses).
const MDBOOK_VERSION: &str = "0.5.4";

pub fn run() -> Result<PathBuf> {
    let root = shell::workspace_root()?;
    let broken = check_links(&root)?;
    if !broken.is_empty() {
        bail!("broken links:\n  {}", broken.join("\n  "));
    }
    let mdbook = ensure_mdbook()?;
    let dest = root.join("target/book");
    shell::status(
        Command::new(mdbook)
            .arg("build")
            .arg(root.join("docs"))
            .arg("--dest-dir")
            .arg(&dest),
        "mdbook build",
    )?;
    println!(
        "docs: {} (links checked)",
        dest.join("index.html").display()
    );
    Ok(dest)
}

/// In cargo's bin folder, like bpf-linker, so that a fresh clone (CI's)
/// does not build it again: about 3 minutes alone, 10 on a busy machine.
fn ensure_mdbook() -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let bin = home.join("bin/mdbook");
    let have = shell::output(Command::new(&bin).arg("--version")).unwrap_or_default();
    if have.trim() == format!("mdbook v{MDBOOK_VERSION}") {
        return Ok(bin);
    }
    eprintln!("setup: building mdbook {MDBOOK_VERSION} from crates.io (a few minutes, once)");
    shell::status(
        shell::cargo()
            .args(["install", "mdbook", "--locked", "--version", MDBOOK_VERSION])
            .args(["--no-default-features", "--features", "search", "--root"])
            .arg(&home),
        "installing mdbook (cargo install, needs crates.io)",
    )?;
    Ok(bin)
}

/// mdBook's id of a heading: lower case; letters, digits, `-` and `_`
/// kept, spaces to `-`, the rest dropped.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |l| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Targets of inline links `](target)` in the prose of `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

/// Every relative link in docs/src/*.md and README.md, and every page in
/// SUMMARY.md, checked; returns the broken ones as "file: link (why)".
pub fn check_links(root: &Path) -> Result<Vec<String>> {
    let src = root.join("docs/src");
    let mut files: Vec<PathBuf> = fs::read_dir(&src)
        .with_context(|| format!("reading {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let summary = fs::read_to_string(src.join("SUMMARY.md"))?;
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    let mut broken = Vec::new();
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name
            && name != "SUMMARY.md"
            && !listed.contains(&name)
        {
            broken.push(format!(
                "SUMMARY.md: {name} is not listed (mdBook would leave it out)"
            ));
        }
    }
    files.push(root.join("README.md"));
    for f in &files {
        let text = fs::read_to_string(f)?;
        let dir = f.parent().context("file without a folder")?;
        for link in links(&text) {
            if let Some(why) = check_link(dir, f, &text, &link) {
                let shown = f.strip_prefix(root).unwrap_or(f).display();
                broken.push(format!("{shown}: {link} ({why})"));
            }
        }
    }
    Ok(broken)
}

fn check_link(dir: &Path, file: &Path, text: &str, link: &str) -> Option<String> {
    if link.contains("://") || link.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
    let target_text = if path.is_empty() {
        text.to_string()
    } else {
        let target = dir.join(path);
        if !target.exists() {
            return Some(format!("no file {}", target.display()));
        }
        if file.starts_with(dir) && dir.ends_with("docs/src") && path.starts_with("..") {
            return Some("outside the book: the built book has no such page".into());
        }
        match fs::read_to_string(&target) {
            Ok(t) => t,
            Err(_) => return None,
        }
    };
    if !anchor.is_empty() && !anchors(&target_text).contains(anchor) {
        return Some(format!("no heading with id #{anchor}"));
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_match_mdbooks_ids() {
        assert_eq!(super::slug(" HTTPS in attach"), "https-in-attach");
        assert_eq!(
            super::slug(" JSON Lines (`--format json`)"),
            "json-lines---format-json"
        );
    }

    /// The book's and the README's internal links all resolve.
    #[test]
    fn book_and_readme_links_resolve() {
        let root = crate::shell::workspace_root().unwrap();
        let broken = super::check_links(&root).unwrap();
        assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    }

    /// The control: a link to a missing heading is caught.
    #[test]
    fn a_missing_heading_is_caught() {
        let dir = std::path::Path::new("/nonexistent");
        let why = super::check_link(dir, dir, "# Only\n", "#other");
        assert_eq!(why.as_deref(), Some("no heading with id #other"));
        assert_eq!(super::check_link(dir, dir, "# Only\n", "#only"), None);
    }
}
