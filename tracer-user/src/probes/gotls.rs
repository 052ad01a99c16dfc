//! Attaching tracer-ebpf's `gotls` uprobes to a Go executable.
use aya::programs::{UProbe, uprobe::UProbeScope};

use super::{ProbeError, Probes};
use crate::attach::gotls::GoTls;

impl Probes {
    /// The crypto/tls uprobes on the Go executable `exe` (entries of
    /// `(*Conn).Write`, `Read`, `clientHandshake`, `serverHandshake` and
    /// every RET of them, and the entries of `syscall.read`/`write`; see
    /// `GoTls`), firing
    /// for process `pid` only (0: every process the kernel's filter lets
    /// through). The programs are loaded on the first call.
    pub fn attach_go_tls(
        &mut self,
        exe: &std::path::Path,
        go: &GoTls,
        pid: u32,
    ) -> Result<(), ProbeError> {
        let scope = std::num::NonZeroU32::new(pid)
            .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        for &(program, offset) in &go.points {
            let fail = |source| ProbeError::Program {
                program,
                hook: format!("uprobe {}+{offset:#x}", exe.display()),
                source,
            };
            let prog = self
                .ebpf
                .program_mut(program)
                .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
                .map_err(fail)?;
            let probe: &mut UProbe = prog.try_into().map_err(fail)?;
            match probe.load() {
                Ok(()) | Err(aya::programs::ProgramError::AlreadyLoaded) => {}
                Err(e) => return Err(fail(e)),
            }
            probe.attach(offset, exe, scope).map_err(fail)?;
        }
        Ok(())
    }
}
