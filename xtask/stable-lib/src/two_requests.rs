//! A library user's program: two requests to a loopback server through the
//! traced client; the second must ride the first one's connection.
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use tracer_user::{ClientEvent, ClientOptions, TracedClientBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = serve_loopback()?;
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&hooks);
    let client = TracedClientBuilder::new(&ClientOptions::default())
        .trace(Arc::new(move |e: &ClientEvent| {
            if let Ok(mut v) = seen.lock() {
                v.push(e.hook.name());
            }
        }))
        .build()?;
    let url = format!("http://127.0.0.1:{port}/");
    let mut reused = Vec::new();
    for n in 1..=2 {
        let response = client.execute(n, client.reqwest().get(&url).build()?).await?;
        reused.push(response.reused());
        let body = response.text().await?;
        if body != "hello\n" {
            return Err(format!("request {n}: body {body:?}").into());
        }
    }
    let hooks = hooks.lock().map_err(|_| "hook log poisoned")?.clone();
    for want in ["GetConn", "ConnectDone", "GotConn", "PutIdleConn"] {
        if !hooks.contains(&want) {
            return Err(format!("no {want} hook in {hooks:?}").into());
        }
    }
    if reused != [Some(false), Some(true)] {
        return Err(format!("reuse {reused:?}, want [Some(false), Some(true)]").into());
    }
    println!("stable library: {} hooks, reuse {reused:?}", hooks.len());
    Ok(())
}

/// Answers every request on one keep-alive connection with a short body.
fn serve_loopback() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n";
                        if (&stream).write_all(answer.as_bytes()).is_err() {
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
