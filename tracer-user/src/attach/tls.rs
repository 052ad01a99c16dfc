//! HTTPS in attach: the OpenSSL libraries of a target, for the uprobes that
//! read its plaintext (tracer-ebpf's `openssl`).
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
    let mut seen = Vec::new();
    for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let file = path.rsplit('/').next().unwrap_or("");
        if is_libssl(file) && !seen.iter().any(|p| p == path) {
            seen.push(path.to_string());
        }
    }
    seen
}

/// Every libssl of process `pid`, as paths the tracer can open (through
/// `/proc/PID/root`), one per file (device and inode): the mapped ones
/// first, then those in [`LIB_DIRS`].
pub fn libssl_of(pid: u32) -> Vec<PathBuf> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut candidates: Vec<PathBuf> = mapped_libssl(&maps)
        .iter()
        .map(|p| under(&root, p))
        .collect();
    for dir in LIB_DIRS {
        let Ok(entries) = std::fs::read_dir(under(&root, dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(is_libssl))
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
    ("libgnutls.so", "GnuTLS"),
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

/// `tracer check --pid PID`'s lines: each TLS library of the process, and
/// whether attach reads its plaintext (the uprobes are attached, to prove
/// it, when `probes` are loaded, and go when they are dropped).
pub fn report(pid: u32, probes: Option<&mut crate::probes::Probes>) -> String {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return format!("\ntls libraries of pid {pid}: cannot read /proc/{pid}/maps\n");
    };
    let mapped = mapped_libssl(&maps);
    let mut out = format!("\ntls libraries of pid {pid}\n");
    let libs = libssl_of(pid);
    let mut probes = probes;
    for lib in &libs {
        let shown = lib.display().to_string();
        let how = if mapped.iter().any(|m| shown.ends_with(m.as_str())) {
            "mapped"
        } else {
            "under its root, not mapped yet"
        };
        let can = match probes.as_deref_mut() {
            Some(p) => match p.attach_openssl(lib, pid) {
                Ok(()) => "readable: SSL_read/SSL_write probed".to_string(),
                Err(e) => format!("not readable: {e}"),
            },
            None => "not checked: the probes did not load".to_string(),
        };
        out.push_str(&format!("  OpenSSL   {shown} ({how})  {can}\n"));
    }
    for (name, path) in mapped_unprobed(&maps) {
        out.push_str(&format!(
            "  {name:<9} {path} (mapped)  not readable: no probe for this TLS library\n"
        ));
    }
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let go = match super::gotls::inspect(&exe) {
        Ok(None) => false,
        Ok(Some(go)) => {
            let can = match probes {
                Some(p) => match p.attach_go_tls(&exe, &go, pid) {
                    Ok(()) => "readable: crypto/tls (*Conn).Read/Write probed".to_string(),
                    Err(e) => format!("not readable: {e}"),
                },
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
    if libs.is_empty() && !go {
        out.push_str("  no libssl mapped or under its root, not a Go executable; rustls and statically linked OpenSSL are not probed\n");
    }
    out
}

fn under(root: &Path, path: &str) -> PathBuf {
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
7f00-7f01 r-xp 00000000 08:01 7 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3
7f01-7f02 r--p 00001000 08:01 7 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3
";
        assert_eq!(
            mapped_unprobed(maps),
            [(
                "GnuTLS",
                "/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3".to_string()
            )]
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
