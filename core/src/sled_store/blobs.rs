//! Immutable blob files, one per file version, beside the sled database.
//!
//! A blob is written to a temporary file in `tmp/`, fsynced, and renamed to `blobs/XX/ID` before
//! any metadata refers to it. Readers hold an open handle, so a blob unlinked after a newer
//! version is published stays readable to downloads that started on it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};

use super::direct_buffers::DirectBuffers;
use super::sink::FileSink;
use super::small_blobs::SmallBlobs;
use crate::error::{StoreError, StoreResult};
use crate::storage::{BodyStream, ByteStream};

/// Bodies up to this size are read in one go when a download opens.
const SMALL_READ: u64 = 64 * 1024;
/// Chunk size of larger downloads.
const READ_CHUNK: u64 = 256 * 1024;
/// Upload batches in flight between the receiving task and the writing thread: with
/// [`BATCH_BYTES`], what one upload holds in memory while the disk is the slower side.
const WRITE_QUEUE: usize = 4;
/// A batch stops growing at this many bytes (it may pass it by one chunk).
const BATCH_BYTES: usize = 1 << 20;

pub(crate) struct BlobDir {
    blobs: PathBuf,
    tmp: PathBuf,
    /// Bytes of small blobs recently read.
    small: SmallBlobs,
    /// Buffers for large uploads' direct writes, shared by all uploads.
    direct: Arc<DirectBuffers>,
}

/// What an upload leaves behind before it is published.
pub(crate) struct WrittenBlob {
    pub size: u64,
    pub digest: [u8; 32],
}

/// The prefix of an existing version an upload starts from (append, write from an offset).
pub(crate) struct Base {
    pub blob: u64,
    pub keep: u64,
}

enum Chunk {
    /// What the body had ready at once: one hand-over (and one wake-up of the writing thread)
    /// per batch, not per network read.
    Data(Vec<Bytes>),
    End,
}

impl BlobDir {
    /// The blob directories of `data_dir`, keeping up to `small_cache_bytes` of small blobs in
    /// memory, with up to `direct_write_bytes` of buffers for direct writes.
    pub fn open(
        data_dir: &Path,
        small_cache_bytes: usize,
        direct_write_bytes: usize,
    ) -> io::Result<BlobDir> {
        let dir = BlobDir {
            blobs: data_dir.join("blobs"),
            tmp: data_dir.join("tmp"),
            small: SmallBlobs::new(small_cache_bytes),
            direct: DirectBuffers::new(direct_write_bytes),
        };
        fs::create_dir_all(&dir.blobs)?;
        fs::create_dir_all(&dir.tmp)?;
        Ok(dir)
    }

    fn shard(&self, id: u64) -> PathBuf {
        self.blobs.join(format!("{:02x}", id & 0xff))
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.shard(id).join(format!("{id:016x}"))
    }

    /// Removes every temporary file (only called while nothing writes: at open).
    pub fn clear_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for e in fs::read_dir(&self.tmp)? {
            let e = e?;
            fs::remove_file(e.path())?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes every blob not in `referenced` (only called at open).
    pub fn sweep(&self, referenced: &HashSet<u64>) -> io::Result<usize> {
        let mut removed = 0;
        for shard in fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                fs::remove_file(shard.path())?;
                removed += 1;
                continue;
            }
            for e in fs::read_dir(shard.path())? {
                let e = e?;
                let id = e
                    .file_name()
                    .to_str()
                    .and_then(|n| u64::from_str_radix(n, 16).ok());
                if id.is_none_or(|id| !referenced.contains(&id)) {
                    fs::remove_file(e.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Unlinks blob `id`; open readers keep their bytes. A blob already gone is fine.
    pub fn remove(&self, id: u64) {
        self.small.remove(id);
        if let Err(e) = fs::remove_file(self.path(id)) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(blob = id, error = %e, "could not remove an unreferenced blob; the next open removes it");
            }
        }
    }

    /// Opens blob `id` (of `size` bytes) and streams `len` bytes from `offset`. The open file
    /// comes back too, unless the bytes came from memory.
    pub async fn open_read(
        &self,
        id: u64,
        size: u64,
        offset: u64,
        len: u64,
    ) -> io::Result<(Option<Arc<File>>, ByteStream)> {
        if size <= SMALL_READ {
            // Small blobs are read whole, in place (an open and one pread from the page cache
            // cost less than handing the work to another thread and back), and remembered.
            let (file, whole) = match self.small.get(id) {
                Some(whole) => (None, whole),
                None => {
                    let file = File::open(self.path(id))?;
                    let whole = read_exact_at(&file, 0, size)?;
                    self.small.insert(id, whole.clone());
                    (Some(Arc::new(file)), whole)
                }
            };
            let start = usize::try_from(offset.min(size)).map_err(io::Error::other)?;
            let end =
                usize::try_from(offset.saturating_add(len).min(size)).map_err(io::Error::other)?;
            let part = whole.slice(start..end);
            let body: ByteStream = if part.is_empty() {
                Box::pin(futures::stream::empty())
            } else {
                Box::pin(futures::stream::once(async move { Ok(part) }))
            };
            return Ok((file, body));
        }
        let path = self.path(id);
        let (file, first) = if len <= SMALL_READ {
            let file = File::open(path)?;
            let buf = read_exact_at(&file, offset, len)?;
            (file, Some(buf))
        } else {
            (
                tokio::task::spawn_blocking(move || File::open(path))
                    .await
                    .map_err(io::Error::other)??,
                None,
            )
        };
        let file = Arc::new(file);
        let body: ByteStream = match first {
            Some(buf) if buf.is_empty() => Box::pin(futures::stream::empty()),
            Some(buf) => Box::pin(futures::stream::once(async move { Ok(buf) })),
            None => {
                let f = Arc::clone(&file);
                Box::pin(futures::stream::try_unfold(
                    (offset, len),
                    move |(pos, left)| {
                        let f = Arc::clone(&f);
                        async move {
                            if left == 0 {
                                return Ok(None);
                            }
                            let n = left.min(READ_CHUNK);
                            let buf =
                                tokio::task::spawn_blocking(move || read_exact_at(&f, pos, n))
                                    .await
                                    .map_err(io::Error::other)??;
                            Ok(Some((buf, (pos + n, left - n))))
                        }
                    },
                ))
            }
        };
        Ok((Some(file), body))
    }

    /// Writes a new blob `id` from `base` (if any) followed by `body`, durably, and returns its
    /// size and digest. On any failure nothing is left behind.
    pub async fn write(
        &self,
        id: u64,
        base: Option<Base>,
        body: BodyStream,
    ) -> StoreResult<WrittenBlob> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(WRITE_QUEUE);
        let tmp_dir = self.tmp.clone();
        let base_path = base.as_ref().map(|b| (self.path(b.blob), b.keep));
        let shard = self.shard(id);
        let final_path = self.path(id);
        let direct = Arc::clone(&self.direct);
        let writer = tokio::task::spawn_blocking(move || {
            write_blob(&tmp_dir, base_path, rx, &shard, &final_path, direct)
        });
        let mut interrupted = None;
        // Fused: a batch may see the end before the next one is asked for.
        let mut body = body.fuse();
        loop {
            match next_batch(&mut body).await {
                Ok(None) => break,
                Ok(Some(batch)) => {
                    if tx.send(Chunk::Data(batch)).await.is_err() {
                        break; // the writer failed; its error is below
                    }
                }
                Err(e) => {
                    interrupted = Some(e);
                    break;
                }
            }
        }
        if interrupted.is_none() {
            let _ = tx.send(Chunk::End).await;
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))?;
        match interrupted {
            // Without `End` the writer publishes nothing, whatever it returned.
            Some(e) => Err(StoreError::Interrupted(e)),
            None => written,
        }
    }
}

/// The body's next chunk and whatever else it has ready, up to [`BATCH_BYTES`] (passed by at
/// most one chunk); `None` at its end. Empty chunks are dropped.
async fn next_batch(
    body: &mut futures::stream::Fuse<BodyStream>,
) -> io::Result<Option<Vec<Bytes>>> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut item = body.next().await;
    while let Some(next) = item.take() {
        let data = next?;
        bytes += data.len();
        if !data.is_empty() {
            batch.push(data);
        }
        if bytes < BATCH_BYTES {
            item = body.next().now_or_never().flatten();
        }
    }
    if batch.is_empty() && body.is_done() {
        return Ok(None);
    }
    Ok(Some(batch))
}

fn read_exact_at(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let n = usize::try_from(len).map_err(io::Error::other)?;
    let mut buf = BytesMut::zeroed(n);
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.freeze())
}

/// The blocking half of an upload: runs on the blocking pool, fed by a channel.
fn write_blob(
    tmp_dir: &Path,
    base: Option<(PathBuf, u64)>,
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    shard: &Path,
    final_path: &Path,
    direct: Arc<DirectBuffers>,
) -> StoreResult<WrittenBlob> {
    // Dropped (and deleted) on every early return.
    let mut tmp = tempfile::Builder::new()
        .prefix("up-")
        .tempfile_in(tmp_dir)?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    if let Some((base_path, keep)) = base {
        let mut src = match File::open(&base_path) {
            Ok(f) => f,
            // The base version was replaced meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Conflict),
            Err(e) => return Err(e.into()),
        };
        // copy_file_range under the hood: the kernel copies, we only hash.
        let copied = io::copy(&mut Read::by_ref(&mut src).take(keep), tmp.as_file_mut())?;
        if copied != keep {
            return Err(StoreError::Conflict);
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < keep {
            let n = (keep - pos).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..n], pos)?;
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        size = keep;
    }
    let mut complete = false;
    let mut sink = FileSink::new(tmp.as_file(), size, direct);
    while let Some(chunk) = rx.blocking_recv() {
        match chunk {
            Chunk::Data(batch) => {
                for data in batch {
                    hasher.update(&data);
                    sink.write(&data)?;
                    size += data.len() as u64;
                }
            }
            Chunk::End => {
                complete = true;
                break;
            }
        }
    }
    if !complete {
        return Err(StoreError::Interrupted(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upload ended early",
        )));
    }
    sink.finish()?;
    fs::create_dir_all(shard)?;
    tmp.persist(final_path)
        .map_err(|e| StoreError::from(e.error))?;
    File::open(shard)?.sync_all()?;
    Ok(WrittenBlob {
        size,
        digest: *hasher.finalize().as_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one upload may hold between the network and the disk stays bounded however fast
    /// the body arrives: batches stop at BATCH_BYTES (plus one chunk), and the end and errors
    /// come through.
    #[tokio::test]
    async fn batches_are_bounded_in_bytes() {
        let chunk = Bytes::from(vec![7u8; 100_000]);
        let chunks: Vec<io::Result<Bytes>> = (0..100)
            .map(|i| {
                Ok(if i % 10 == 0 {
                    Bytes::new()
                } else {
                    chunk.clone()
                })
            })
            .collect();
        let body: BodyStream = Box::pin(futures::stream::iter(chunks));
        let mut body = body.fuse();
        let mut total = 0;
        let mut batches = 0;
        while let Some(batch) = next_batch(&mut body).await.unwrap() {
            let bytes: usize = batch.iter().map(Bytes::len).sum();
            assert!(bytes < BATCH_BYTES + chunk.len(), "{bytes}");
            assert!(batch.iter().all(|b| !b.is_empty()));
            total += bytes;
            batches += 1;
        }
        assert_eq!(total, 90 * 100_000);
        assert!(batches >= 90 * 100_000 / (BATCH_BYTES + 100_000));
        assert!(
            next_batch(&mut body).await.unwrap().is_none(),
            "stays ended"
        );

        let failing: BodyStream = Box::pin(futures::stream::iter(vec![
            Ok(chunk.clone()),
            Err(io::Error::other("reset")),
        ]));
        assert!(next_batch(&mut failing.fuse()).await.is_err());
    }
}
