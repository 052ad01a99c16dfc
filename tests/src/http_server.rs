//! A loopback HTTP/1.x server for the tests, with the behaviours they need
//! and its own count of connections and request bytes: the ground truth the
//! tracer's output is checked against.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// HTTP/1.1 keep-alive.
    KeepAlive,
    /// HTTP/1.1 with `Connection: close`, then close.
    Close,
    /// HTTP/1.0 answer without keep-alive, then close.
    Http10,
    /// Sends half the promised body, then resets the connection.
    ResetMidResponse,
    /// HTTP/1.1 keep-alive, head and body in two writes with Nagle on, as
    /// Python's `http.server` answers: the client's delayed ACK holds the
    /// body back by about 40 ms on a reused connection.
    SplitHeadBody,
    /// HTTP/1.1 keep-alive, a 64 KiB body: the head and the first half in
    /// one write, 100 ms of sleep, then the second half (a slow or
    /// streaming server, not a delayed ACK).
    SlowChunks,
    /// HTTP/1.1 keep-alive; closes a connection idle for this many ms.
    IdleClose(u64),
    /// Answers as keep-alive (no `Connection: close`), then closes at once,
    /// as Python's `http.server` does with `close_connection = True`.
    CloseUnannounced,
    /// HTTP/1.1 keep-alive, a chunked body: the head and two chunks in one
    /// write, 20 ms of sleep, then a third chunk and the last one.
    Chunked,
}

pub struct TestServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    request_bytes: Arc<Mutex<Vec<usize>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const BODY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// The body of [`Behaviour::SlowChunks`], sent in two halves.
const SLOW_BODY: usize = 64 * 1024;

impl TestServer {
    pub fn start(bind: &str, behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let request_bytes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, r, s) = (accepted.clone(), request_bytes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let r = r.clone();
                        std::thread::spawn(move || serve(conn, behaviour, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            addr,
            accepted,
            request_bytes,
            stop,
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Connections the server accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Bytes of each request as the server read them (head and body).
    pub fn request_bytes(&self) -> Vec<usize> {
        self.request_bytes
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, behaviour: Behaviour, sizes: &Mutex<Vec<usize>>) {
    let _ = conn.set_nonblocking(false);
    let idle = match behaviour {
        Behaviour::IdleClose(ms) => Duration::from_millis(ms),
        _ => Duration::from_secs(10),
    };
    let _ = conn.set_read_timeout(Some(idle));
    let Ok(writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    let mut writer = writer;
    loop {
        let (mut size, mut content_length, mut expect) = (0usize, 0usize, false);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(n) => size += n,
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                expect |= k.eq_ignore_ascii_case("expect") && v.trim() == "100-continue";
            }
        }
        // As a server should: go ahead, then read the body.
        if expect && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(mut s) = sizes.lock() {
            s.push(size + content_length);
        }
        let body: Vec<u8> = match behaviour {
            Behaviour::SlowChunks => (0..SLOW_BODY).map(|i| b'a' + (i % 26) as u8).collect(),
            _ => BODY.to_vec(),
        };
        let len = body.len();
        let response = match behaviour {
            Behaviour::KeepAlive
            | Behaviour::SplitHeadBody
            | Behaviour::SlowChunks
            | Behaviour::IdleClose(_)
            | Behaviour::CloseUnannounced => {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")
            }
            Behaviour::Chunked => {
                let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                let first = format!("{head}5\r\nhello\r\n1;x=y\r\n \r\n");
                if writer.write_all(first.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                "6\r\nworld!\r\n0\r\n\r\n".to_string()
            }
            Behaviour::Close => {
                format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n")
            }
            Behaviour::Http10 => format!("HTTP/1.0 200 OK\r\nContent-Length: {len}\r\n\r\n"),
            Behaviour::ResetMidResponse => {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", len * 100)
            }
        };
        let mut bytes = response.into_bytes();
        if behaviour == Behaviour::SplitHeadBody {
            if writer.write_all(&bytes).is_err() {
                return;
            }
            bytes.clear();
        }
        if behaviour != Behaviour::Chunked {
            bytes.extend_from_slice(&body);
        }
        if behaviour == Behaviour::SlowChunks {
            let second = bytes.split_off(bytes.len() - SLOW_BODY / 2);
            if writer.write_all(&bytes).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
            bytes = second;
        }
        if writer.write_all(&bytes).is_err() {
            return;
        }
        match behaviour {
            Behaviour::KeepAlive
            | Behaviour::SplitHeadBody
            | Behaviour::SlowChunks
            | Behaviour::Chunked
            | Behaviour::IdleClose(_) => continue,
            Behaviour::Close | Behaviour::Http10 | Behaviour::CloseUnannounced => return,
            Behaviour::ResetMidResponse => {
                // SO_LINGER 0: close sends RST instead of FIN.
                let linger = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                use std::os::fd::AsRawFd;
                // SAFETY: valid fd and option struct.
                unsafe {
                    libc::setsockopt(
                        writer.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        size_of::<libc::linger>() as libc::socklen_t,
                    )
                };
                std::thread::sleep(Duration::from_millis(20));
                return;
            }
        }
    }
}
