//! Where attach and run put the HTTPS probes: OpenSSL's uprobes on every
//! libssl of the traced processes and on every file that links OpenSSL in
//! (see `tls`), GnuTLS's (see `gnutls`) and Go's crypto/tls (see `gotls`),
//! with the notes that say what is read and what is not.
use std::path::PathBuf;

use tracer_ebpf::tgid_flags;

use super::{io_unknown, tls, tls_symbols};
use crate::probes::Probes;
use crate::probes::gotls::inspect;

/// The OpenSSL uprobes on every libssl of processes `pids` and on every
/// file that links OpenSSL in (see `tls`), firing for `scope` (0: any
/// process the kernel's filter lets through): the `tgid_flags` bit that
/// turns the join on, and notes saying what is read (attach and run).
/// `exe`: the program that `run` is about to exec, looked in by symbol.
fn probe_openssl(
    probes: &mut Probes,
    pids: &[u32],
    exe: Option<&std::path::Path>,
    scope: u32,
) -> (u8, Vec<String>) {
    // The plaintext finds its socket through the send/recv hooks.
    if io_unknown(probes) {
        return (
            0,
            vec!["https: no plaintext without the send/recv tracepoints (Linux 6.3+)".to_string()],
        );
    }
    let mut found = tls::OpenSslOf::default();
    for &pid in pids {
        let of = tls::openssl_of(pid, exe);
        // Once per file: several targets see the same one under their roots.
        for file in of.files {
            let id = tls::file_id(&file.path);
            if !found.files.iter().any(|f| tls::file_id(&f.path) == id) {
                found.files.push(file);
            }
        }
        found.stripped.extend(of.stripped);
    }
    let mut notes: Vec<String> = found
        .stripped
        .iter()
        .map(|p| format!("https: {} links OpenSSL in without symbols (stripped): no probe; its TLS connections show timing and bytes only", p.display()))
        .collect();
    if found.files.is_empty() {
        if notes.is_empty() {
            notes.push("https: no libssl in the process or under its root, and no OpenSSL linked in: HTTPS connections show timing and bytes only".to_string());
        }
        return (0, notes);
    }
    // One note per probed subset: "SSL_read/SSL_write probed in A, B".
    let mut probed: Vec<(String, Vec<String>)> = Vec::new();
    let mut failed = Vec::new();
    for file in &found.files {
        let shown = if file.linked_in {
            format!("{} (linked in, by symbol)", file.path.display())
        } else {
            file.path.display().to_string()
        };
        match probes.attach_openssl(&file.path, scope, &file.functions) {
            // Every other file would be refused the same way: say it once.
            Err(ref e) if let Some(why) = e.uprobe_refused() => {
                notes.push(format!(
                    "https: no OpenSSL probe: {REFUSED} (perf_event_open: {why}); HTTPS connections show timing and bytes only"
                ));
                return (0, notes);
            }
            Ok(()) => {
                let what = tls_symbols::describe(&file.functions);
                match probed.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, paths)) => paths.push(shown),
                    None => probed.push((what, vec![shown])),
                }
            }
            Err(e) => failed.push(format!("{shown}: {e}")),
        }
    }
    for (what, paths) in &probed {
        notes.push(format!(
            "https: OpenSSL {what} probed in {}: HTTP/1.x requests of its TLS connections are read from the plaintext",
            paths.join(", ")
        ));
    }
    if !failed.is_empty() {
        notes.push(format!(
            "https: no OpenSSL probe ({}): those TLS connections show timing and bytes only",
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

/// `--tls-plaintext`: whether the uprobes that read TLS plaintext are
/// placed. Each of their hits is a trap in the traced process, paid on
/// every TLS read and write; off keeps bytes, timing and handshakes, which
/// come from the send/recv hooks alone.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPlaintext {
    #[default]
    On,
    Off,
}

/// Why no uprobe at all could be placed, as the notes say it.
pub(crate) const REFUSED: &str = "the kernel refuses uprobes to a tracer without CAP_SYS_ADMIN";

/// The note attach and run print when `--tls-plaintext off` leaves the
/// probes out.
pub(crate) const PLAINTEXT_OFF_NOTE: &str = "https: TLS plaintext probes off (--tls-plaintext off): TLS connections show bytes, timing and handshakes; no request is read from their plaintext";

/// The one line attach prints when it placed plaintext probes: what they
/// cost a busy server (README, Benchmarks, workload 11) and the way out.
pub(crate) const PLAINTEXT_COST_NOTE: &str = "note: the TLS plaintext probes cost: every TLS read and write of the process now traps into a uprobe (on the bench's nginx, 85 us of worker CPU per request, 0.30 of its untraced rate); --tls-plaintext off keeps bytes, timing and handshakes without them";

/// HTTPS plaintext through OpenSSL (libraries of `pids`, or linked into
/// `exe`) and Go's crypto/tls (the executables `exes`): the flag and the
/// notes of both; "no libssl" is left out when a Go probe covers it.
/// Nothing is placed when `plaintext` is off.
pub(crate) fn probe_tls(
    probes: &mut Probes,
    pids: &[u32],
    exe: Option<&std::path::Path>,
    exes: &[PathBuf],
    scope: u32,
    plaintext: TlsPlaintext,
) -> (u8, Vec<String>) {
    if plaintext == TlsPlaintext::Off {
        return (0, vec![PLAINTEXT_OFF_NOTE.to_string()]);
    }
    let (ssl, mut notes) = probe_openssl(probes, pids, exe, scope);
    if io_unknown(probes) {
        return (ssl, notes);
    }
    // The kernel refuses every uprobe alike: OpenSSL's note said it once.
    if notes.iter().any(|n| n.contains(REFUSED)) {
        return (ssl, notes);
    }
    let (gnutls, gnutls_notes) = super::gnutls::probe_gnutls(probes, pids, scope);
    let (go, go_notes) = probe_go(probes, exes, scope);
    if (go | gnutls) != 0 && ssl == 0 {
        notes.retain(|n| !n.starts_with("https: no libssl"));
    }
    notes.extend(gnutls_notes);
    notes.extend(go_notes);
    (ssl | gnutls | go, notes)
}

/// The crypto/tls probes on each Go executable of `exes` (paths the
/// tracer can open), firing for `scope` (0: any traced process): the
/// `tgid_flags` bit that turns the join on, and a note per executable.
fn probe_go(probes: &mut Probes, exes: &[std::path::PathBuf], scope: u32) -> (u8, Vec<String>) {
    let mut flag = 0;
    let mut notes = Vec::new();
    for exe in exes {
        match inspect(exe) {
            Ok(None) => {}
            Ok(Some(go)) => match probes.attach_go_tls(exe, &go, scope) {
                Ok(()) => {
                    flag = tracer_ebpf::tgid_flags::TLS_PLAINTEXT;
                    notes.push(format!(
                        "https: Go crypto/tls (*Conn).Read/Write probed in {} ({}, {} returns): HTTP/1.x requests of its TLS connections are read from the plaintext",
                        exe.display(),
                        go.version,
                        go.returns()
                    ));
                }
                Err(e) => notes.push(format!(
                    "https: no Go crypto/tls probe in {} ({e}): its TLS connections show timing and bytes only",
                    exe.display()
                )),
            },
            Err(why) => notes.push(format!(
                "https: no Go crypto/tls probe in {} ({why}): its TLS connections show timing and bytes only",
                exe.display()
            )),
        }
    }
    (flag, notes)
}
