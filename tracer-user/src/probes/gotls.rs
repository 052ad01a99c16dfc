//! tracer-ebpf's `gotls` uprobes: where they go in a Go executable
//! (`find`), and attaching them.

mod find;

pub use find::{GoTls, NoProbe, inspect};

use super::{ProbeError, Probes};

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
        for &(program, offset) in &go.points {
            self.attach_uprobe(program, offset, exe, pid)?;
        }
        Ok(())
    }
}
