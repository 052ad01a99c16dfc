//! HTTPS through GnuTLS (wget, curl-gnutls, many Debian daemons): uprobes on
//! `gnutls_record_send`/`gnutls_record_recv` in every `libgnutls.so.N` the
//! target maps or has under its root (see `tls` for why both).
//!
//! They have `SSL_write`/`SSL_read`'s shape (session, buffer, size; the
//! byte count or a negative error returned), so OpenSSL's programs serve
//! them, and the plaintext joins its socket the same way: by the send/recv
//! the thread makes inside the call. GnuTLS's own transport pointer would
//! need private struct offsets that nothing here can know.
use std::path::PathBuf;

use tracer_ebpf::tgid_flags;

use super::tls;
use crate::probes::Probes;

/// Whether a file name is a shared GnuTLS (`libgnutls.so.30`), not the
/// unversioned development link nor `libgnutls-dane`/`libgnutlsxx`.
pub fn is_libgnutls(file: &str) -> bool {
    file.strip_prefix("libgnutls.so.")
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// Every libgnutls of processes `pids`, once per file.
fn libgnutls_of(pids: &[u32]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for &pid in pids {
        for path in tls::libs_of(pid, is_libgnutls) {
            let id = tls::file_id(&path);
            if !found.iter().any(|f| tls::file_id(f) == id) {
                found.push(path);
            }
        }
    }
    found
}

/// The GnuTLS uprobes on every libgnutls of `pids`, firing for `scope` (0:
/// any traced process): the `tgid_flags` bit that turns the join on, and a
/// note per outcome. No libgnutls: no note (most programs have none).
pub(crate) fn probe_gnutls(probes: &mut Probes, pids: &[u32], scope: u32) -> (u8, Vec<String>) {
    let mut probed = Vec::new();
    let mut failed = Vec::new();
    for lib in libgnutls_of(pids) {
        match probes.attach_gnutls(&lib, scope) {
            Ok(()) => probed.push(lib.display().to_string()),
            // Every other file would be refused the same way: say it once.
            Err(ref e) if let Some(why) = e.uprobe_refused() => {
                let note = format!(
                    "https: no GnuTLS probe: {} (perf_event_open: {why}); HTTPS connections show timing and bytes only",
                    super::tls_probes::REFUSED
                );
                return (0, vec![note]);
            }
            Err(e) => failed.push(format!("{}: {e}", lib.display())),
        }
    }
    let mut notes = Vec::new();
    if !probed.is_empty() {
        notes.push(format!(
            "https: GnuTLS gnutls_record_send/gnutls_record_recv probed in {}: HTTP/1.x requests of its TLS connections are read from the plaintext",
            probed.join(", ")
        ));
    }
    if !failed.is_empty() {
        notes.push(format!(
            "https: no GnuTLS probe ({}): those TLS connections show timing and bytes only",
            failed.join("; ")
        ));
    }
    let flag = if probed.is_empty() {
        0
    } else {
        tgid_flags::TLS_PLAINTEXT
    };
    (flag, notes)
}

/// `check --pid`'s GnuTLS lines: each libgnutls of `pid` (its `/proc` maps
/// text `maps`), and whether its plaintext is read (the probes are
/// attached to prove it when `probes` are loaded and `off` is not set).
pub fn report(pid: u32, maps: &str, probes: Option<&mut Probes>, off: bool) -> String {
    let mapped = tls::mapped(maps, is_libgnutls);
    let mut probes = probes;
    let mut out = String::new();
    for lib in tls::libs_of(pid, is_libgnutls) {
        let shown = lib.display().to_string();
        let how = if mapped.iter().any(|m| shown.ends_with(m.as_str())) {
            "mapped"
        } else {
            "under its root, not mapped yet"
        };
        let can = match probes.as_deref_mut() {
            _ if off => tls::OFF.to_string(),
            Some(p) => match p.attach_gnutls(&lib, pid) {
                Ok(()) => "readable: gnutls_record_send/gnutls_record_recv probed".to_string(),
                Err(e) => format!("not readable: {e}"),
            },
            None => "not checked: the probes did not load".to_string(),
        };
        out.push_str(&format!("  GnuTLS    {shown} ({how})  {can}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versioned_shared_libgnutls_counts() {
        assert!(is_libgnutls("libgnutls.so.30"));
        assert!(is_libgnutls("libgnutls.so.30.34.3"));
        assert!(!is_libgnutls("libgnutls.so"));
        assert!(!is_libgnutls("libgnutls-dane.so.0"));
        assert!(!is_libgnutls("libgnutlsxx.so.30"));
        assert!(!is_libgnutls("libgnutls-openssl.so.27"));
    }

    #[test]
    fn maps_give_each_libgnutls_once() {
        let maps = "\
7f00-7f01 r--p 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3
7f01-7f02 r-xp 00001000 08:01 42 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3
7f02-7f03 r-xp 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libgnutls-dane.so.0.4.1
";
        assert_eq!(
            tls::mapped(maps, is_libgnutls),
            vec!["/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3"]
        );
    }
}
