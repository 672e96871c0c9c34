//! `filegate`: one file store served over FTP and HTTP at once.

mod cli;
mod config;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics if stderr is closed.
            let _ = writeln!(std::io::stderr(), "filegate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
