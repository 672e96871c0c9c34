//! `filegate`: one file store served over FTP and HTTP at once.

mod cli;
mod config;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filegate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
