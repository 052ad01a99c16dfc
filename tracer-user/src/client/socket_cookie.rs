//! The kernel's cookie of a socket the client connected, read with
//! `getsockopt(SO_COOKIE)`: the exact key that joins a request to the
//! kernel's events. reqwest hides the socket, so the fd is found among the
//! process's own: the one socket whose local and peer addresses are the
//! connection's. While the connection lives no other socket has that pair,
//! unlike a 4-tuple looked up later in the kernel's events, which a closed
//! socket and its successor can share.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

type AddrFn = unsafe extern "C" fn(RawFd, *mut libc::sockaddr, *mut libc::socklen_t) -> i32;

/// A connected socket of this process: its fd, and the cookie that tells it
/// apart from whatever socket the fd number holds after it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketId {
    fd: RawFd,
    pub(crate) cookie: u64,
}

impl SocketId {
    /// This process's socket connected from `local` to `remote`.
    pub(crate) fn find(local: SocketAddr, remote: SocketAddr) -> Option<SocketId> {
        let fds = std::fs::read_dir("/proc/self/fd").ok()?;
        let fd = fds
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
            .find(|&fd| {
                address(fd, libc::getsockname) == Some(local)
                    && address(fd, libc::getpeername) == Some(remote)
            })?;
        Some(SocketId {
            fd,
            cookie: so_cookie(fd)?,
        })
    }

    /// The socket is still open and the peer has not closed its side: no
    /// FIN or RST came in (TCP state ESTABLISHED).
    pub(crate) fn established(&self) -> bool {
        if so_cookie(self.fd) != Some(self.cookie) {
            return false; // closed; the fd may hold another socket now
        }
        // SAFETY: an all-zero tcp_info is a valid value.
        let mut info: libc::tcp_info = unsafe { zeroed() };
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: info and len describe a buffer of the right size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        rc == 0 && info.tcpi_state == TCP_ESTABLISHED
    }
}

/// `TCP_ESTABLISHED` of the kernel's `tcp_states.h`.
const TCP_ESTABLISHED: u8 = 1;

fn address(fd: RawFd, query: AddrFn) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len describe a buffer large enough for any family;
    // a non-socket fd just makes the call fail with ENOTSOCK.
    let rc = unsafe { query(fd, (&raw mut storage).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin: libc::sockaddr_in = unsafe { *(&raw const storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6: libc::sockaddr_in6 = unsafe { *(&raw const storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
        }
        _ => None,
    }
}

fn so_cookie(fd: RawFd) -> Option<u64> {
    let mut cookie = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: cookie and len describe an 8-byte buffer, as SO_COOKIE needs.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    (rc == 0 && cookie != 0).then_some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_connected_loopback_socket_and_sees_it_closed() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let local = client.local_addr().expect("local");
        let remote = client.peer_addr().expect("peer");
        let id = SocketId::find(local, remote).expect("the client socket");
        assert_eq!(Some(id.cookie), so_cookie(client.as_raw_fd()));
        assert_ne!(
            Some(id.cookie),
            so_cookie(server.as_raw_fd()),
            "not the peer's"
        );
        assert_eq!(
            SocketId::find(local, local),
            None,
            "no socket has that pair"
        );
        assert!(id.established());
        drop(server); // its FIN: the client's side goes to CLOSE_WAIT
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!id.established(), "the peer closed");
        drop(client);
        assert!(!id.established(), "closed");
    }
}
