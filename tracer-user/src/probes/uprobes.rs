//! Uprobes: getaddrinfo in libc (DNS), OpenSSL's SSL_read/SSL_write, and
//! Go's crypto/tls (see `gotls`), each attached through [`Probes::attach_uprobe`].
use std::path::Path;

use aya::programs::{
    ProgramError, UProbe,
    uprobe::{UProbeAttachLocation, UProbeScope},
};

use super::{ProbeError, Probes};

impl Probes {
    /// Loads `program` (the first time: one program may be attached at
    /// several points) and attaches it at `point` (a symbol or a file
    /// offset) in the ELF file `target`, firing for process `pid` only (0:
    /// every process, and the kernel's filter picks).
    pub(crate) fn attach_uprobe<'a>(
        &mut self,
        program: &'static str,
        point: impl Into<UProbeAttachLocation<'a>>,
        target: &Path,
        pid: u32,
    ) -> Result<(), ProbeError> {
        let scope = std::num::NonZeroU32::new(pid)
            .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        let point = point.into();
        // As errors name it: `lib:SSL_write`, `exe+0x4a2f0`.
        let at = match &point {
            UProbeAttachLocation::Symbol(s) => format!(":{s}"),
            UProbeAttachLocation::SymbolOffset(s, o) => format!(":{s}+{o:#x}"),
            UProbeAttachLocation::AbsoluteOffset(o) => format!("+{o:#x}"),
        };
        let fail = |source| ProbeError::Program {
            program,
            hook: format!("uprobe {}{at}", target.display()),
            source,
        };
        let prog = self
            .ebpf
            .program_mut(program)
            .ok_or(ProgramError::UnexpectedProgramType)
            .map_err(fail)?;
        let probe: &mut UProbe = prog.try_into().map_err(fail)?;
        match probe.load() {
            Ok(()) | Err(ProgramError::AlreadyLoaded) => {}
            Err(e) => return Err(fail(e)),
        }
        let id = probe.attach(point, target, scope).map_err(fail)?;
        // Owned, to be detached side by side with the others (see Drop).
        let link = probe.take_link(id).map_err(fail)?;
        self.uprobe_links.push(link);
        Ok(())
    }

    /// Attaches the `getaddrinfo` uprobe and uretprobe to the libc at
    /// `libc` (as the target maps it), firing for process `pid` only.
    pub fn attach_getaddrinfo(&mut self, libc: &Path, pid: u32) -> Result<(), ProbeError> {
        for program in ["tracer_dns_enter", "tracer_dns_exit"] {
            self.attach_uprobe(program, "getaddrinfo", libc, pid)?;
        }
        Ok(())
    }

    /// Attaches the OpenSSL uprobes on `functions` (of `SSL_write`,
    /// `SSL_write_ex`, `SSL_read`, `SSL_read_ex`: the entry, and one
    /// uretprobe on each) in the ELF file `lib`, a libssl or a program
    /// that links OpenSSL in, firing for process `pid` only (0: every
    /// process, and the kernel's filter picks). The programs are loaded on
    /// the first call.
    pub fn attach_openssl(
        &mut self,
        lib: &Path,
        pid: u32,
        functions: &[&'static str],
    ) -> Result<(), ProbeError> {
        const ENTRIES: [(&str, &str); 4] = [
            ("SSL_write", "tracer_ssl_write"),
            ("SSL_write_ex", "tracer_ssl_write_ex"),
            ("SSL_read", "tracer_ssl_read"),
            ("SSL_read_ex", "tracer_ssl_read_ex"),
        ];
        for (function, entry) in ENTRIES {
            if !functions.contains(&function) {
                continue;
            }
            for program in [entry, "tracer_ssl_return"] {
                self.attach_uprobe(program, function, lib, pid)?;
            }
        }
        Ok(())
    }

    /// Attaches OpenSSL's `SSL_write`/`SSL_read` programs and their
    /// uretprobe to GnuTLS's `gnutls_record_send`/`gnutls_record_recv` in
    /// `lib`, firing for process `pid` only (0: every process). Same
    /// arguments; their `ssize_t` return is read as an `int`, which holds
    /// any record's count (at most 16 KiB) and GnuTLS's negative errors.
    pub fn attach_gnutls(&mut self, lib: &Path, pid: u32) -> Result<(), ProbeError> {
        for (function, entry) in [
            ("gnutls_record_send", "tracer_ssl_write"),
            ("gnutls_record_recv", "tracer_ssl_read"),
        ] {
            for program in [entry, "tracer_ssl_return"] {
                self.attach_uprobe(program, function, lib, pid)?;
            }
        }
        Ok(())
    }
}
