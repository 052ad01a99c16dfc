//! The parser on another encoder's bytes: curl (nghttp2's HPACK, Huffman
//! and indexing) fetching 3 URLs over one HTTP/2 connection over TLS (ALPN
//! h2), seen as the server's plaintext reads and writes, held to curl's
//! own count of each body. (curl 7.88's prior knowledge fails a second
//! transfer on a kept connection, so TLS it is, as the test has.)

mod h2_wire;

use h2_wire::{Answer, SECRET, serve_tls, taken};
use tracer_user::proto::http2::{Role, Start, StreamEnd};

#[tokio::test]
async fn curl_three_urls_on_one_tls_connection() {
    let server = serve_tls(|path: &str| match path {
        "/big" => Answer::Body(200, 70_000),
        "/missing" => Answer::Body(404, 9),
        _ => Answer::Body(200, 2),
    })
    .await;
    let base = format!("https://{}", server.addr);
    let out = tokio::process::Command::new("curl")
        .args(["--http2", "-k", "-sS", "-H"])
        .arg(format!("Authorization: {SECRET}"))
        .args(["-w", "%{http_code} %{size_download} %{num_connects}\\n"])
        .args(["-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"])
        .arg(format!("{base}/a?page=1&token=t0k3n"))
        .arg(format!("{base}/big"))
        .arg(format!("{base}/missing"))
        .output()
        .await
        .expect("curl runs (the tests need curl with HTTP2)");
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server.task).await;
    // curl's view: status, body bytes, and one connection in all.
    let curl: Vec<(u16, u64, u32)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().expect("code"),
                f[1].parse().expect("size"),
                f[2].parse().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        curl.iter().map(|c| c.2).sum::<u32>(),
        1,
        "one connection: {curl:?}"
    );
    assert_eq!(taken(&server.paths), ["/a", "/big", "/missing"]);

    let log = taken(&server.log);
    let (reqs, notes) = h2_wire::parse(&log, Role::Server, Start::Preface, usize::MAX);
    assert_eq!(
        reqs.iter().map(|r| r.scheme.as_deref()).collect::<Vec<_>>(),
        [Some("https"); 3]
    );
    assert!(notes.is_empty(), "{notes:?}");
    let got: Vec<_> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_deref(),
                r.path.as_deref(),
                r.status,
                r.response_data_bytes,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("GET"),
                Some("/a?page=1&token=redacted"),
                Some(curl[0].0),
                curl[0].1
            ),
            (Some("GET"), Some("/big"), Some(curl[1].0), curl[1].1),
            (Some("GET"), Some("/missing"), Some(curl[2].0), curl[2].1),
        ]
    );
    for r in &reqs {
        assert_eq!(r.authority.as_deref(), Some(&base["https://".len()..]));
        assert_eq!((r.end, r.partial), (StreamEnd::Complete, false));
    }
    let shown = format!("{reqs:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("t0k3n"),
        "{shown}"
    );
}
