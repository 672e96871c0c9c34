//! filegate's stateful side: an FTP server (RFC 959, 2389, 2428, 3659, 7151) on the shared store.
//!
//! # Layout
//! - [`config`]: [`FtpConfig`], the `[ftp]` table of the config file, and [`PortRange`].
//! - [`parser`]: framing of control lines and the nom parser from a line to a [`parser::Command`].
//! - [`reply`]: reply codes (one enum, one doc line per code) and reply encoding.
//! - [`session`]: the sans-IO session: `handle(command)` gives replies and a data-channel
//!   action; no sockets, no clock (time comes in as an argument).
//! - `commands/`: the session's command handlers, one file per command group.
//! - [`listing`]: `ls -l`, NLST and MLSD/MLST fact formatting, and UTC calendar dates.
//! - [`errors`]: the one place where store errors become FTP replies.
//! - [`server`]: the accept loop, connection limits, login blocking, graceful shutdown, and
//!   the worker runtimes (one event loop per CPU, no work stealing) the sessions run on.
//! - [`connection`]: one control connection: moves bytes between the socket and the session.
//! - [`data`]: passive and active data connections, transfers (sendfile, TYPE A conversion).
//! - `net_tests` (tests only): the tokio layer over loopback sockets, in-process.

// Tests may unwrap; the server code may not (the workspace lint warns, CI denies warnings).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod commands;
pub mod config;
pub mod connection;
pub mod data;
pub mod errors;
pub mod listing;
pub mod parser;
pub mod reply;
pub mod server;
pub mod session;

pub use config::{FtpConfig, PortRange};
pub use server::FtpServer;

#[cfg(test)]
mod net_tests;
