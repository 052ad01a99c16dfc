fn main() {
    println!("tracer");
}
