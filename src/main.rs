use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tokentally::cli::run(tokentally::cli::Cli::parse())
}
