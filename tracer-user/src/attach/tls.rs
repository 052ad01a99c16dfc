//! HTTPS in attach: the OpenSSL libraries of a target, for the uprobes that
//! read its plaintext (tracer-ebpf's `openssl`): shared libssl files, and
//! OpenSSL linked statically into the executable or another mapped ELF,
//! found by symbol (`tls_symbols`).
//!
//! A uprobe is registered on a file and placed in every process that maps
//! it, now or later. So the probes go on the libssl the target maps and on
//! every libssl in the usual library folders under its root: a process
//! that has not loaded it yet (Python before `import ssl`, a shell about to
//! exec curl) is covered when it does.
use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::tls_symbols::{self, OpenSsl};

/// Folders searched under the target's root, besides what it maps.
const LIB_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// Whether a file name is a shared OpenSSL libssl (`libssl.so.3`,
/// `libssl.so.1.1`), not the unversioned development link.
pub fn is_libssl(file: &str) -> bool {
    file.strip_prefix("libssl.so.")
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// The libssl paths in a `/proc/PID/maps` text, in order, once each.
pub fn mapped_libssl(maps: &str) -> Vec<String> {
    mapped(maps, is_libssl)
}

/// Every libssl of process `pid`, as paths the tracer can open (through
/// `/proc/PID/root`), one per file (device and inode): the mapped ones
/// first, then those in [`LIB_DIRS`].
pub fn libssl_of(pid: u32) -> Vec<PathBuf> {
    libs_of(pid, is_libssl)
}

/// The paths of a `/proc/PID/maps` text whose file name `is` one wanted,
/// in order, once each.
pub fn mapped(maps: &str, is: fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let file = path.rsplit('/').next().unwrap_or("");
        if is(file) && !seen.iter().any(|p| p == path) {
            seen.push(path.to_string());
        }
    }
    seen
}

/// Every library of process `pid` whose file name `is` one wanted, as
/// [`libssl_of`] finds libssl.
pub fn libs_of(pid: u32, is: fn(&str) -> bool) -> Vec<PathBuf> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut candidates: Vec<PathBuf> = mapped(&maps, is).iter().map(|p| under(&root, p)).collect();
    for dir in LIB_DIRS {
        let Ok(entries) = std::fs::read_dir(under(&root, dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(is))
            .map(|e| e.path())
            .collect();
        found.sort();
        candidates.extend(found);
    }
    let mut files = HashSet::new();
    candidates
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .is_some_and(|m| files.insert((m.dev(), m.ino())))
        })
        .collect()
}

/// TLS libraries without a probe, by the start of their file name.
const UNPROBED: &[(&str, &str)] = &[
    ("libnss3.so", "NSS"),
    ("libwolfssl.so", "wolfSSL"),
    ("libmbedtls.so", "Mbed TLS"),
    ("libboringssl", "BoringSSL"),
];

/// The TLS libraries without a probe that a `/proc/PID/maps` text maps:
/// (name, path), once each.
pub fn mapped_unprobed(maps: &str) -> Vec<(&'static str, String)> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let file = path.rsplit('/').next().unwrap_or("");
        if let Some((_, name)) = UNPROBED.iter().find(|(start, _)| file.starts_with(start))
            && !found.iter().any(|(_, p)| p == path)
        {
            found.push((name, path.to_string()));
        }
    }
    found
}

/// An ELF file to put the OpenSSL uprobes on, and on which functions.
#[derive(Debug)]
pub struct SslFile {
    pub path: PathBuf,
    pub functions: Vec<&'static str>,
    /// Found by symbol in a file that is not a libssl: OpenSSL linked in.
    pub linked_in: bool,
}

/// Everything of OpenSSL in a process: what can be probed, and the
/// executables that link it without symbols (stripped), which cannot.
#[derive(Debug, Default)]
pub struct OpenSslOf {
    pub files: Vec<SslFile>,
    pub stripped: Vec<PathBuf>,
}

/// The OpenSSL of process `pid`: its libssl files ([`libssl_of`]), then
/// the executable and every other mapped ELF that defines the functions
/// (OpenSSL linked statically). `exe`: the program to look in instead of
/// the process's own maps (`run`'s child, held before its exec, still
/// maps the tracer).
pub fn openssl_of(pid: u32, exe: Option<&Path>) -> OpenSslOf {
    let mut found = OpenSslOf::default();
    let mut seen = HashSet::new();
    for path in libssl_of(pid) {
        if let Some(id) = file_id(&path) {
            seen.insert(id);
        }
        // A libssl without the symbols (unlikely) still gets the full set
        // tried, so the attach error says what is missing.
        let functions = match tls_symbols::inspect(&path, false) {
            OpenSsl::Symbols(f) => f,
            _ => tls_symbols::FUNCTIONS.to_vec(),
        };
        found.files.push(SslFile {
            path,
            functions,
            linked_in: false,
        });
    }
    let candidates: Vec<(PathBuf, bool)> = match exe {
        Some(exe) => vec![(exe.to_path_buf(), true)],
        None => linked_candidates(pid),
    };
    for (path, is_exe) in candidates {
        if !file_id(&path).is_some_and(|id| seen.insert(id)) {
            continue;
        }
        match tls_symbols::inspect(&path, is_exe) {
            OpenSsl::Symbols(functions) => found.files.push(SslFile {
                path,
                functions,
                linked_in: true,
            }),
            OpenSsl::Stripped => found.stripped.push(path),
            OpenSsl::Absent => {}
        }
    }
    found
}

/// The executable of `pid` first, then its other mapped executable ELF
/// files that are not a libssl; `true` marks the executable.
fn linked_candidates(pid: u32) -> Vec<(PathBuf, bool)> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    // The executable by its name under the target's root, for the notes;
    // /proc/PID/exe (the same inode) when it is gone or unreadable.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.to_str().map(|p| under(&root, p)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/exe")));
    let mut out = vec![(exe, true)];
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let perms = fields.nth(1).unwrap_or("");
        let Some(path) = fields.nth(3) else { continue };
        let file = path.rsplit('/').next().unwrap_or("");
        if perms.contains('x') && path.starts_with('/') && !is_libssl(file) {
            out.push((under(&root, path), false));
        }
    }
    out
}

/// A file's (device, inode); None when it cannot be read.
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino()))
}

/// `tracer check --pid PID`'s lines: each TLS library of the process, and
/// whether attach reads its plaintext (the uprobes are attached, to prove
/// it, when `probes` are loaded, and go when they are dropped). With
/// `--tls-plaintext off` nothing is attached: the probes are said to be off.
pub fn report(
    pid: u32,
    probes: Option<&mut crate::probes::Probes>,
    plaintext: super::TlsPlaintext,
) -> String {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return format!("\ntls libraries of pid {pid}: cannot read /proc/{pid}/maps\n");
    };
    let mapped = mapped_libssl(&maps);
    let mut out = format!("\ntls libraries of pid {pid}\n");
    let found = openssl_of(pid, None);
    let off = plaintext == super::TlsPlaintext::Off;
    let mut probes = probes.filter(|_| !off);
    for lib in &found.files {
        let shown = lib.path.display().to_string();
        let how = if lib.linked_in {
            "linked in, found by symbol"
        } else if mapped.iter().any(|m| shown.ends_with(m.as_str())) {
            "mapped"
        } else {
            "under its root, not mapped yet"
        };
        let can = match probes.as_deref_mut() {
            Some(p) => match p.attach_openssl(&lib.path, pid, &lib.functions) {
                Ok(()) => format!("readable: {} probed", tls_symbols::describe(&lib.functions)),
                Err(e) => format!("not readable: {e}"),
            },
            None if off => OFF.to_string(),
            None => "not checked: the probes did not load".to_string(),
        };
        out.push_str(&format!("  OpenSSL   {shown} ({how})  {can}\n"));
    }
    for path in &found.stripped {
        out.push_str(&format!(
            "  OpenSSL   {} (linked in, stripped: no symbols)  not readable: no probe for this TLS library\n",
            path.display()
        ));
    }
    let gnutls = super::gnutls::report(pid, &maps, probes.as_deref_mut(), off);
    out.push_str(&gnutls);
    for (name, path) in mapped_unprobed(&maps) {
        out.push_str(&format!(
            "  {name:<9} {path} (mapped)  not readable: no probe for this TLS library\n"
        ));
    }
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let go = match crate::probes::gotls::inspect(&exe) {
        Ok(None) => false,
        Ok(Some(go)) => {
            let can = match probes {
                Some(p) => match p.attach_go_tls(&exe, &go, pid) {
                    Ok(()) => "readable: crypto/tls (*Conn).Read/Write probed".to_string(),
                    Err(e) => format!("not readable: {e}"),
                },
                None if off => OFF.to_string(),
                None => "not checked: the probes did not load".to_string(),
            };
            out.push_str(&format!(
                "  Go        {} ({}, crypto/tls)  {can}\n",
                exe.display(),
                go.version
            ));
            true
        }
        Err(why) => {
            out.push_str(&format!(
                "  Go        {}  not readable: {why}\n",
                exe.display()
            ));
            true
        }
    };
    if found.files.is_empty() && found.stripped.is_empty() && gnutls.is_empty() && !go {
        out.push_str("  no OpenSSL mapped, linked in or under its root, and not a Go executable; rustls is not probed\n");
    }
    out
}

/// `check --pid`'s verdict on a probed library under `--tls-plaintext off`.
pub(super) const OFF: &str =
    "not read: TLS plaintext probes off (--tls-plaintext off); bytes, timing and handshakes only";

pub(super) fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versioned_shared_libssl_counts() {
        assert!(is_libssl("libssl.so.3"));
        assert!(is_libssl("libssl.so.1.1"));
        assert!(!is_libssl("libssl.so"));
        assert!(!is_libssl("libssl3.so"));
        assert!(!is_libssl("libcrypto.so.3"));
    }

    #[test]
    fn libraries_without_a_probe_are_named() {
        let maps = "\
7f00-7f01 r-xp 00000000 08:01 7 /usr/lib/x86_64-linux-gnu/libnss3.so
7f01-7f02 r--p 00001000 08:01 7 /usr/lib/x86_64-linux-gnu/libnss3.so
7f02-7f03 r-xp 00000000 08:01 8 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3
";
        assert_eq!(
            mapped_unprobed(maps),
            [("NSS", "/usr/lib/x86_64-linux-gnu/libnss3.so".to_string())]
        );
    }

    #[test]
    fn maps_give_each_libssl_once() {
        let maps = "\
7f00-7f01 r--p 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f01-7f02 r-xp 00001000 08:01 42 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f02-7f03 r--p 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f03-7f04 rw-p 00000000 00:00 0 
";
        assert_eq!(
            mapped_libssl(maps),
            vec!["/usr/lib/x86_64-linux-gnu/libssl.so.3"]
        );
    }

    #[test]
    fn this_process_finds_the_system_libssl_by_folder() {
        // The test binary maps no libssl; the folders still give it, once.
        let found = libssl_of(std::process::id());
        let system = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if cfg!(target_arch = "x86_64") && system.exists() {
            let inode = |p: &Path| std::fs::metadata(p).map(|m| m.ino()).ok();
            let same: Vec<_> = found.iter().filter(|p| inode(p) == inode(system)).collect();
            assert_eq!(same.len(), 1, "{found:?}");
        }
    }
}
