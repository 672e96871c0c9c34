//! `filegate`: one file store served over FTP and HTTP at once.

mod cli;
mod config;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
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

/// Each argon2id check allocates 19 MiB. glibc raises its mmap threshold after the first such
/// buffer is freed, so later ones come from the heap and stay resident: a burst of logins left
/// the server tens of MiB larger for good. A fixed 1 MiB threshold keeps big buffers mmapped,
/// so they go back to the OS when freed.
#[allow(unsafe_code)]
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
