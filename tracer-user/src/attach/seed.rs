//! Connections that existed before the attach: socket inodes from
//! /proc/PID/fd, their 4-tuples and states from the target's
//! /proc/PID/net/tcp{,6}. The kernel names their cookie on first send/recv.
use std::{
    collections::HashMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use tracer_ebpf::tcp_state;

/// A TCP socket the target held when tracing started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededSocket {
    pub fd: i32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u32,
}

impl SeededSocket {
    pub fn is_listener(&self) -> bool {
        self.state == tcp_state::LISTEN
    }
}

/// The target's TCP sockets, by fd.
pub fn seed(pid: u32) -> Vec<SeededSocket> {
    let mut inodes: HashMap<u64, i32> = HashMap::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            let fd = entry.file_name().to_string_lossy().parse::<i32>().ok();
            let link = fs::read_link(entry.path()).ok();
            let inode = link
                .as_ref()
                .and_then(|l| socket_inode(&l.to_string_lossy()));
            if let (Some(fd), Some(inode)) = (fd, inode) {
                inodes.insert(inode, fd);
            }
        }
    }
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for row in text.lines().skip(1).filter_map(parse_row) {
            if let Some(&fd) = inodes.get(&row.inode) {
                found.push(SeededSocket {
                    fd,
                    local: row.local,
                    remote: row.remote,
                    state: row.state,
                });
            }
        }
    }
    found.sort_by_key(|s| s.fd);
    found
}

/// "socket:[12345]" -> 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[derive(Debug, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u32,
    inode: u64,
}

/// One line of /proc/net/tcp{,6}: "sl local rem st queues tr retr uid timeout inode".
fn parse_row(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        local: parse_addr(f.get(1)?)?,
        remote: parse_addr(f.get(2)?)?,
        state: u32::from_str_radix(f.get(3)?, 16).ok()?,
        inode: f.get(9)?.parse().ok()?,
    })
}

/// "0100007F:1F90" (IPv4) or 32 hex digits (IPv6): 32-bit words in host
/// byte order, then the port in hex.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Equal addresses, where `::ffff:a.b.c.d` equals `a.b.c.d`.
pub fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |s: SocketAddr| SocketAddr::new(s.ip().to_canonical(), s.port());
    canon(a) == canon(b)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a failed parse should fail the test loudly"
)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_rows() {
        let v4 = "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 20 4 30 10 -1";
        let r = parse_row(v4).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(r.local, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(r.remote, "127.0.0.1:50000".parse().unwrap());
        }
        assert_eq!((r.state, r.inode), (tcp_state::ESTABLISHED, 424242));
        let v6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1";
        let r = parse_row(v6).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(r.local, "[::1]:8080".parse().unwrap());
        }
        assert_eq!(r.state, tcp_state::LISTEN);
        assert_eq!(parse_row("  sl  local_address rem_address   st"), None);
        assert_eq!(socket_inode("socket:[99]"), Some(99));
        assert_eq!(socket_inode("pipe:[99]"), None);
    }

    #[test]
    fn finds_own_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let seeded = seed(std::process::id());
        let local = c.local_addr().unwrap();
        assert!(
            seeded
                .iter()
                .any(|s| s.local == local && s.state == tcp_state::ESTABLISHED),
            "{seeded:?}"
        );
        assert!(seeded.iter().any(|s| s.is_listener()));
        assert!(same_addr(
            "[::ffff:127.0.0.1]:1".parse().unwrap(),
            "127.0.0.1:1".parse().unwrap()
        ));
    }
}
