//! The floor for the harness's one-session small-file workload (c): a minimal FTP responder
//! that does only the system calls a 4 KiB RETR can't do without, so that filegate's and
//! pure-ftpd's server CPU per download can be read against what the kernel alone costs on this
//! machine. Not a server: no auth, no limits, one session at a time, blocking I/O, no logging.
//!
//! Per download it makes the calls filegate makes on its fast path, in the same order: a
//! blocking `recv` of PASV, one `send` of 227, a blocking `recv` of RETR, `accept`, one `send`
//! of the (cached) file with MSG_MORE, `shutdown`, `close`, one `send` of 150 and 226 together.
//! What filegate spends above it is its own work (the runtime, the session, the transfer log).
//!
//! `cargo run --release -p filegate-bench --bin ftp_floor -- --root DIR --port P --passive Q`;
//! `bench/peers.sh --floor --only small` runs it beside filegate and the peers.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Directory the paths of RETR and SIZE are resolved in.
    #[arg(long)]
    root: PathBuf,
    /// Control port on 127.0.0.1.
    #[arg(long, default_value_t = 23741)]
    port: u16,
    /// The one passive port every PASV/EPSV answers with.
    #[arg(long, default_value_t = 23742)]
    passive: u16,
}

/// Longest command line accepted, as in filegate.
const MAX_LINE: u64 = 4096;
/// Largest file served (from memory); RETR of a larger one gets 550.
const MAX_FILE: u64 = 1 << 20;

fn main() -> Result<()> {
    let args = Args::parse();
    let control = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let passive = TcpListener::bind((Ipv4Addr::LOCALHOST, args.passive))
        .with_context(|| format!("binding 127.0.0.1:{}", args.passive))?;
    let mut files = Files {
        root: args.root,
        cache: HashMap::new(),
    };
    eprintln!(
        "ftp_floor: 127.0.0.1:{} (passive {})",
        args.port, args.passive
    );
    for conn in control.incoming() {
        let Ok(conn) = conn else { continue };
        if let Err(e) = session(conn, &passive, args.passive, &mut files) {
            eprintln!("ftp_floor: session ended: {e}");
        }
    }
    Ok(())
}

/// File bodies, read once: filegate serves 4 KiB files from memory too.
struct Files {
    root: PathBuf,
    cache: HashMap<String, Vec<u8>>,
}

impl Files {
    fn path(&self, name: &str) -> Option<PathBuf> {
        let rel = Path::new(name.trim_start_matches('/'));
        rel.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| self.root.join(rel))
    }

    fn size(&self, name: &str) -> Option<u64> {
        Some(std::fs::metadata(self.path(name)?).ok()?.len())
    }

    /// A small file's body; `None` for a missing or large one (the floor is for workload c).
    fn get(&mut self, name: &str) -> Option<&[u8]> {
        if !self.cache.contains_key(name) {
            if self.size(name)? > MAX_FILE {
                return None;
            }
            let body = std::fs::read(self.path(name)?).ok()?;
            self.cache.insert(name.to_owned(), body);
        }
        self.cache.get(name).map(Vec::as_slice)
    }
}

fn session(
    conn: TcpStream,
    passive: &TcpListener,
    passive_port: u16,
    files: &mut Files,
) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 floor\r\n")?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if Read::by_ref(&mut lines)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?
            == 0
        {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        match verb.to_ascii_uppercase().as_str() {
            "USER" => out.write_all(b"331 any password\r\n")?,
            "PASS" => out.write_all(b"230 in\r\n")?,
            "TYPE" => out.write_all(b"200 ok\r\n")?,
            "PASV" => out.write_all(
                format!(
                    "227 =127,0,0,1,{},{}\r\n",
                    passive_port >> 8,
                    passive_port & 0xff
                )
                .as_bytes(),
            )?,
            "EPSV" => out.write_all(format!("229 (|||{passive_port}|)\r\n").as_bytes())?,
            "SIZE" => match files.size(arg) {
                Some(len) => out.write_all(format!("213 {len}\r\n").as_bytes())?,
                None => out.write_all(b"550 no\r\n")?,
            },
            "RETR" => {
                // Whatever waits on the port, unchecked: fine for the harness, which connects
                // once per PASV; a client that abandons a data connection would get it served.
                let (data, _) = passive.accept()?;
                let reply: &[u8] = match files.get(arg) {
                    Some(body) => {
                        send_then_fin(&data, body)?;
                        b"150 go\r\n226 done\r\n"
                    }
                    None => b"550 no\r\n",
                };
                drop(data);
                out.write_all(reply)?;
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 not here\r\n")?,
        }
    }
}

/// The body, then FIN in the same segment, as filegate's small-file path does.
fn send_then_fin(data: &TcpStream, body: &[u8]) -> io::Result<()> {
    let sock = socket2::SockRef::from(data);
    let mut sent = 0;
    while sent < body.len() {
        match sock.send_with_flags(&body[sent..], libc::MSG_MORE | libc::MSG_NOSIGNAL)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => sent += n,
        }
    }
    data.shutdown(Shutdown::Write)
}
