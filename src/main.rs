use std::process::ExitCode;

fn main() -> ExitCode {
    allerta::cli::main()
}
