//! How an upload's bytes reach its temporary blob file, cheaply and ready for the final fsync.
//!
//! The first [`DIRECT_AFTER`] bytes go through the page cache, written back while the upload
//! still arrives. Past that, the file switches to `O_DIRECT`: whole aligned blocks go from two
//! reused buffers straight to the disk, one written on its own thread while the next fills (and
//! is hashed). Filling fresh page-cache pages was most of the server's
//! CPU in a large upload (and on this VM it is slow and erratic: new pages fault on the host),
//! while the disk had to be written before the reply anyway; bypassing the cache also keeps a
//! large upload from evicting what downloads need. A file system without direct I/O refuses
//! the flag (`F_SETFL` fails) and keeps the buffered path. Either way nothing is durable until
//! [`FileSink::finish`]'s fsync.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::direct_buffers::{DirectBuffers, Lent, ALIGN, DIRECT_CHUNK};

/// Bytes written through the page cache before switching to direct writes: small and medium
/// files stay cached for the downloads that often follow.
const DIRECT_AFTER: u64 = 8 << 20;
/// Buffered bytes are written back to disk in pieces of this size while the upload arrives, so
/// the final fsync finds little left to do.
const WRITEBACK_STEP: u64 = 8 << 20;
/// Pieces whose write-back may be in flight before the writer waits for the oldest.
const WRITEBACK_AHEAD: u64 = 8;

pub(crate) struct FileSink<'f> {
    file: &'f File,
    /// Where the buffers for direct writes come from.
    buffers: Arc<DirectBuffers>,
    /// Bytes in the file or handed to the direct writer, not counting the filling buffer.
    written: u64,
    writeback: Writeback,
    direct: DirectState,
}

enum DirectState {
    /// Still under [`DIRECT_AFTER`].
    NotYet,
    /// The file system said no, or the store's direct-write buffers were all in use:
    /// buffered to the end.
    Refused,
    On(Direct),
}

struct Direct {
    /// The buffer being filled.
    fill: Lent,
    /// The other buffer, until the writer first holds it.
    spare: Option<Lent>,
    /// Bytes in `fill`.
    pending: usize,
    /// Writes full buffers while the next one fills.
    writer: Writer,
}

impl<'f> FileSink<'f> {
    /// A sink writing `file` from offset `written` (what an append copied in already).
    pub fn new(file: &'f File, written: u64, buffers: Arc<DirectBuffers>) -> FileSink<'f> {
        FileSink {
            file,
            buffers,
            written,
            writeback: Writeback::from(written),
            direct: DirectState::NotYet,
        }
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if matches!(self.direct, DirectState::NotYet) && self.written >= DIRECT_AFTER {
            // Direct writes start at an aligned offset: the bytes up to it go buffered.
            let fill = (ALIGN - (self.written % ALIGN as u64) as usize) % ALIGN;
            let (head, rest) = data.split_at(fill.min(data.len()));
            self.write_buffered(head)?;
            data = rest;
            if !self.written.is_multiple_of(ALIGN as u64) {
                return Ok(());
            }
            self.direct = self.start_direct();
        }
        let DirectState::On(d) = &mut self.direct else {
            return self.write_buffered(data);
        };
        while !data.is_empty() {
            let n = (DIRECT_CHUNK - d.pending).min(data.len());
            d.fill.bytes_mut()[d.pending..d.pending + n].copy_from_slice(&data[..n]);
            d.pending += n;
            data = &data[n..];
            if d.pending == DIRECT_CHUNK {
                let spare = match d.writer.wait()? {
                    Some(b) => b,
                    None => d
                        .spare
                        .take()
                        .ok_or_else(|| io::Error::other("no spare buffer"))?,
                };
                let full = std::mem::replace(&mut d.fill, spare);
                d.writer.submit(full, self.written)?;
                self.written += DIRECT_CHUNK as u64;
                d.pending = 0;
            }
        }
        Ok(())
    }

    fn write_buffered(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        self.writeback.advance(self.file, self.written);
        Ok(())
    }

    /// Writes what is pending and makes the file durable.
    pub fn finish(mut self) -> io::Result<()> {
        if let DirectState::On(d) = &mut self.direct {
            d.writer.wait()?;
            let whole = d.pending / ALIGN * ALIGN;
            let buf = d.fill.bytes_mut();
            if whole > 0 {
                self.file.write_all_at(&buf[..whole], self.written)?;
                self.written += whole as u64;
            }
            // The unaligned tail goes through the page cache.
            set_direct(self.file, false)?;
            self.file
                .write_all_at(&buf[whole..d.pending], self.written)?;
            self.written += (d.pending - whole) as u64;
            d.pending = 0;
        }
        self.file.sync_data()
    }

    /// Turns direct writes on (the offset is aligned) if the file system takes them.
    fn start_direct(&self) -> DirectState {
        let Some([fill, spare]) = self.buffers.lend() else {
            return DirectState::Refused;
        };
        let writer = match self.file.try_clone().and_then(Writer::start) {
            Ok(w) => w,
            Err(_) => return DirectState::Refused,
        };
        if set_direct(self.file, true).is_err() {
            return DirectState::Refused;
        }
        DirectState::On(Direct {
            fill,
            spare: Some(spare),
            pending: 0,
            writer,
        })
    }
}

/// A thread that writes full buffers at their offsets, one at a time, and hands each buffer
/// back for reuse: the disk write of one overlaps the filling (and hashing) of the next.
struct Writer {
    jobs: Option<SyncSender<(Lent, u64)>>,
    done: Receiver<io::Result<Lent>>,
    thread: Option<std::thread::JoinHandle<()>>,
    in_flight: bool,
}

impl Writer {
    fn start(file: File) -> io::Result<Writer> {
        let (jobs, queue) = sync_channel::<(Lent, u64)>(1);
        let (report, done) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || {
                for (mut buf, at) in queue {
                    let r = file.write_all_at(buf.bytes_mut(), at).map(|()| buf);
                    if report.send(r).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: false,
        })
    }

    fn submit(&mut self, buf: Lent, at: u64) -> io::Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send((buf, at)).map_err(|_| gone())?;
        self.in_flight = true;
        Ok(())
    }

    /// Waits for the write in flight, if any; returns its buffer.
    fn wait(&mut self) -> io::Result<Option<Lent>> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(None);
        }
        self.done.recv().map_err(|_| gone())?.map(Some)
    }
}

fn gone() -> io::Error {
    io::Error::other("the blob writer thread ended")
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_DIRECT
    } else {
        flags - OFlag::O_DIRECT
    };
    fcntl(file, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Where the write-back of the buffered part stands.
struct Writeback {
    /// Write-back started for the bytes before this offset.
    started: u64,
    /// Write-back finished for the bytes before this offset.
    waited: u64,
}

impl Writeback {
    fn from(offset: u64) -> Writeback {
        Writeback {
            started: offset,
            waited: offset,
        }
    }

    /// The file now holds `size` bytes: starts the write-back of each whole new step, and waits
    /// for old steps beyond the allowed number in flight (which also slows the sender to what
    /// the disk takes). Failures only cost speed (the final fsync still decides), so they are
    /// ignored.
    fn advance(&mut self, file: &File, size: u64) {
        while size - self.started >= WRITEBACK_STEP {
            let _ = sync_file_range(file, self.started, WRITEBACK_STEP, false);
            self.started += WRITEBACK_STEP;
            if self.started - self.waited > WRITEBACK_STEP * WRITEBACK_AHEAD {
                let _ = sync_file_range(file, self.waited, WRITEBACK_STEP, true);
                self.waited += WRITEBACK_STEP;
            }
        }
    }
}

/// `sync_file_range(2)`: starts writing `len` bytes at `offset` back to disk and, if `wait`,
/// waits for them (and for any write-back already running on them). No metadata, no cache
/// flush: durability still comes from the fsync after the last byte.
#[allow(unsafe_code)]
fn sync_file_range(file: &File, offset: u64, len: u64, wait: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    let offset = i64::try_from(offset).map_err(io::Error::other)?;
    let len = i64::try_from(len).map_err(io::Error::other)?;
    // SAFETY: plain integers and a file descriptor that `file` keeps open for the call; the
    // kernel reads no memory of ours.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    /// Chunks of awkward sizes across the switch to direct writes, from an unaligned start
    /// (an append), end with exactly the bytes written.
    #[test]
    fn bytes_arrive_whole_across_the_switch_to_direct_writes() {
        let dir = tempfile::tempdir().unwrap();
        // A store-wide budget for one upload's buffers, and none (every buffer in use).
        for (base, total, budget) in [
            (0usize, 20_000_123usize, 8 << 20),
            (3, 9_000_000, 8 << 20),
            (0, 100, 8 << 20),
            (5, 16 << 20, 8 << 20),
            (0, 20_000_123, 0),
        ] {
            let path = dir.path().join(format!("f{base}-{total}-{budget}"));
            let mut file = File::create(&path).unwrap();
            let head = pattern(base, 1);
            file.write_all(&head).unwrap();
            let body = pattern(total, 2);
            let mut sink = FileSink::new(&file, base as u64, DirectBuffers::new(budget));
            let mut at = 0;
            let mut step = 1;
            while at < body.len() {
                let n = step.min(body.len() - at);
                sink.write(&body[at..at + n]).unwrap();
                at += n;
                step = (step * 7 + 12_345) % 1_500_000 + 1;
            }
            let went_direct = matches!(sink.direct, DirectState::On(_));
            if budget == 0 {
                assert!(!went_direct, "no buffers, no direct writes");
            }
            sink.finish().unwrap();
            assert_eq!(file.metadata().unwrap().len(), (base + total) as u64);
            let got = std::fs::read(&path).unwrap();
            assert!(
                got[..base] == head[..] && got[base..] == body[..],
                "{base}+{total}"
            );
            if total > (DIRECT_AFTER as usize) + DIRECT_CHUNK {
                // /tmp is a disk file system here; where O_DIRECT is refused this is moot.
                eprintln!("{base}+{total}: direct writes {went_direct}");
            }
        }
    }
}
