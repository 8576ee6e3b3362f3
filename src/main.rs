fn main() -> std::process::ExitCode {
    akpkg::cli::main()
}
