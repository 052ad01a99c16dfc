fn main() {
    std::process::exit(tracer_user::cli::main());
}
