//! Another process making the same loopback traffic as the tests, so they
//! can check that the tracer reports nothing of it.
fn main() {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    match tracer_tests::exchange(&bind, 100, 200) {
        Ok(ex) => println!("{} {} {}", ex.local, ex.remote, ex.cookie),
        Err(e) => {
            eprintln!("loopback-pair: {e}");
            std::process::exit(1);
        }
    }
}
