//! Privacy of HTTPS plaintext in attach: the heads read by the OpenSSL
//! uprobes follow plaintext HTTP's rules. A bearer token in
//! `Authorization:` and a `?token=` query value never reach any output
//! format; the request line (query value redacted), Host and status do.
use std::process::Command;

use tracer_tests::{
    process::{Proc, attach},
    tls_server::{TlsServer, can_run_or_skip},
};

const BEARER: &str = "b3arer-s3cret";
const TOKEN: &str = "qu3ry-t0ken";

#[test]
fn https_credentials_reach_no_output_format() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("secrets");
    let url = format!("https://127.0.0.1:{}/p?token={TOKEN}&page=2", server.port);
    for format in ["text", "json", "chrome"] {
        let script = format!(
            "read go && exec curl -sSk -o /dev/null -H 'Authorization: Bearer {BEARER}' '{url}'"
        );
        let mut curl = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
        let mut tracer = attach(curl.pid(), format);
        curl.go_and_succeed();
        let (out, err) = (tracer.exit_0_stdout(), tracer.stderr());
        println!("{format}:\n{out}{err}");
        // The request was read from the plaintext...
        assert!(out.contains("/p?token=redacted&page=2"), "{format}: {out}");
        if format == "text" {
            assert!(out.contains("-> 200"), "{out}");
        }
        // ...and none of its credentials, nor any other header, is printed.
        for leak in [BEARER, TOKEN, "Authorization", "User-Agent", "curl/"] {
            assert!(
                !out.contains(leak) && !err.contains(leak),
                "{format} leaked {leak}: {out}{err}"
            );
        }
    }
    let seen = format!("GET /p?token={TOKEN}&page=2");
    assert_eq!(server.log(), [seen.as_str(), seen.as_str(), seen.as_str()]);
}
