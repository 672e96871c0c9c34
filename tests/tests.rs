//! One integration-test binary (faster to build than one per file).
//!
//! # Layout
//! - `common`: starting a real `filegate serve` on free loopback ports, finding client tools.
//! - `attacks`: hostile clients against a real server.
//! - `cli`: the command line (config, users, lock messages).
//! - `compare`: `filegate compare --embedded --quick` reports every row with plausible numbers.
//! - `faults`: a full disk under a running server.
//! - `ftp`: the FTP front end with lftp, curl and Python's ftplib.
//! - `load`: FTP and HTTP clients at once on overlapping paths.
//! - `http`: the HTTP gateway with curl, an HTTP client crate and a browser.

// Tests say "this cannot fail here" with unwrap; the lint guards the product code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod cli;
mod common;
mod compare;
mod faults;
mod ftp;
mod http;
mod load;
