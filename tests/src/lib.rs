//! Helpers for tracer's end-to-end tests: loopback traffic with known byte
//! counts, socket cookies, and kernel event collection.
pub mod http;
pub mod otlp_receiver;
pub mod process;
pub mod run_cmd;
pub mod tls_server;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use tracer_user::probes::{EventStream, KernelEvent};

pub mod http_server;
pub mod tracer_bin;

/// What the client side of [`exchange`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// `getsockopt(SO_COOKIE)` of the client socket.
    pub cookie: u64,
    /// The client socket's fd (closed by the time `exchange` returns).
    pub fd: i32,
}

/// The kernel's cookie for a socket, as userspace sees it.
pub fn so_cookie(sock: &impl AsRawFd) -> u64 {
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    assert_eq!(
        rc,
        0,
        "getsockopt(SO_COOKIE): {}",
        std::io::Error::last_os_error()
    );
    cookie
}

/// Starts a listener on `bind` (port 0), connects to it, sends `send` bytes,
/// receives `recv` bytes from the server, and closes. Blocking; bounded by
/// socket timeouts.
pub fn exchange(bind: &str, send: usize, recv: usize) -> std::io::Result<Exchange> {
    let listener = TcpListener::bind(bind)?;
    let server_addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut conn, _) = listener.accept()?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = vec![0u8; send];
        conn.read_exact(&mut buf)?;
        conn.write_all(&vec![b'r'; recv])?;
        // Wait for the client's close so both sides end cleanly.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest)?;
        Ok(buf.len())
    });
    let mut client = TcpStream::connect_timeout(&server_addr, Duration::from_secs(5))?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let ex = Exchange {
        local: client.local_addr()?,
        remote: server_addr,
        cookie: so_cookie(&client),
        fd: client.as_raw_fd(),
    };
    client.write_all(&vec![b's'; send])?;
    let mut buf = vec![0u8; recv];
    client.read_exact(&mut buf)?;
    drop(client);
    server
        .join()
        .map_err(|_| std::io::Error::other("server thread panicked"))??;
    Ok(ex)
}

/// Collects events until `done` holds for the events so far, or `limit`.
pub async fn collect_until(
    stream: &mut EventStream,
    limit: Duration,
    done: impl Fn(&[KernelEvent]) -> bool,
) -> Vec<KernelEvent> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while !done(&events) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(left, stream.next_batch(&mut events)).await;
    }
    stream.drain(&mut events);
    events
}
