//! What the examples share: a loopback server to trace when no URL is given.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers every request
/// with a short body; returns its port.
pub fn serve_loopback() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut writer = &stream;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(port)
}
