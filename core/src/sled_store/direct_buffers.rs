//! The aligned buffers of direct (`O_DIRECT`) upload writes, shared by all uploads of a store.
//!
//! At most a fixed number exist, so however many large uploads run at once, their direct-write
//! memory stays bounded; an upload that finds too few free keeps writing through the page cache
//! (slower, never wrong). A few returned buffers are kept for the next upload: a fresh one is
//! two mebibytes of new pages to fault in.

use std::sync::{Arc, Mutex};

/// Size of one buffer: one direct write (a multiple of [`ALIGN`]).
pub(crate) const DIRECT_CHUNK: usize = 2 << 20;
/// Alignment of direct writes' memory, file offset and length: the largest logical block size
/// in common use.
pub(crate) const ALIGN: usize = 4096;
/// Buffers one upload needs: one filling while the other is written.
pub(crate) const PER_UPLOAD: usize = 2;
/// Returned buffers kept for reuse (one upload's worth: 4 MiB stays allocated at rest); beyond
/// that they are freed.
const KEEP_FREE: usize = PER_UPLOAD;

/// One buffer aligned for direct writes.
struct Aligned {
    /// `ALIGN` bytes longer than the buffer, which starts at `start`.
    raw: Vec<u8>,
    start: usize,
}

impl Aligned {
    fn new() -> Option<Aligned> {
        let raw = vec![0u8; DIRECT_CHUNK + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        (start < ALIGN).then_some(Aligned { raw, start })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + DIRECT_CHUNK]
    }
}

/// The store's budget of direct-write buffers.
pub(crate) struct DirectBuffers {
    state: Mutex<Budget>,
}

struct Budget {
    free: Vec<Aligned>,
    /// Buffers lent out now.
    lent: usize,
    /// Most buffers that may exist at once (free or lent).
    cap: usize,
}

impl DirectBuffers {
    /// A budget of `bytes` (in effect rounded down to whole uploads' worth of buffers; under
    /// one upload's worth turns direct writes off).
    pub(crate) fn new(bytes: usize) -> Arc<DirectBuffers> {
        Arc::new(DirectBuffers {
            state: Mutex::new(Budget {
                free: Vec::new(),
                lent: 0,
                cap: bytes / DIRECT_CHUNK,
            }),
        })
    }

    /// The buffers for one upload's direct writes, or `None` if the budget has not that many
    /// left (or memory could not be had).
    pub(crate) fn lend(self: &Arc<Self>) -> Option<[Lent; PER_UPLOAD]> {
        let mut reserved = {
            let mut b = self.state.lock().ok()?;
            // Free buffers are not lent, so what may still be lent is `cap - lent`.
            if b.cap.saturating_sub(b.lent) < PER_UPLOAD {
                return None;
            }
            b.lent += PER_UPLOAD;
            let n = b.free.len().min(PER_UPLOAD);
            let at = b.free.len() - n;
            b.free.split_off(at)
        };
        // New buffers are allocated outside the lock; the budget already counts them.
        while reserved.len() < PER_UPLOAD {
            match Aligned::new() {
                Some(a) => reserved.push(a),
                None => {
                    let lent_back = PER_UPLOAD - reserved.len();
                    for a in reserved {
                        self.give_back(Some(a));
                    }
                    for _ in 0..lent_back {
                        self.give_back(None);
                    }
                    return None;
                }
            }
        }
        let mut it = reserved.into_iter().map(|a| Lent {
            buf: Some(a),
            pool: Arc::clone(self),
        });
        Some([it.next()?, it.next()?])
    }

    /// Ends one loan: keeps the buffer for reuse or frees it.
    fn give_back(&self, buf: Option<Aligned>) {
        if let Ok(mut b) = self.state.lock() {
            b.lent = b.lent.saturating_sub(1);
            if let Some(a) = buf {
                if b.free.len() < KEEP_FREE {
                    b.free.push(a);
                }
            }
        }
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let b = self.state.lock().unwrap();
        (b.free.len(), b.lent)
    }
}

/// A buffer on loan from [`DirectBuffers`]; returned when dropped. A reused buffer still holds
/// an earlier upload's bytes: writers write out only what they filled.
pub(crate) struct Lent {
    buf: Option<Aligned>,
    pool: Arc<DirectBuffers>,
}

impl Lent {
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Some(a) => a.bytes_mut(),
            None => &mut [],
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give_back(self.buf.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loans_stay_within_the_budget_and_buffers_are_reused() {
        let pool = DirectBuffers::new(5 * DIRECT_CHUNK);
        let a = pool.lend().expect("room for one upload");
        let b = pool.lend().expect("room for two");
        assert!(pool.lend().is_none(), "a third would pass five buffers");
        assert_eq!(pool.counts(), (0, 4));
        let first = a[0].buf.as_ref().unwrap().raw.as_ptr();
        drop(a);
        assert_eq!(pool.counts(), (2, 2));
        let c = pool.lend().expect("the returned pair");
        assert_eq!(pool.counts(), (0, 4));
        assert!(
            c.iter()
                .any(|l| l.buf.as_ref().unwrap().raw.as_ptr() == first),
            "a returned buffer is lent again"
        );
        drop((b, c));
        assert_eq!(pool.counts(), (KEEP_FREE, 0));
        assert!(
            DirectBuffers::new(0).lend().is_none(),
            "0 turns direct writes off"
        );
    }

    #[test]
    fn a_buffer_is_aligned_and_whole() {
        let pool = DirectBuffers::new(PER_UPLOAD * DIRECT_CHUNK);
        let mut loan = pool.lend().unwrap();
        let bytes = loan[0].bytes_mut();
        assert_eq!(bytes.len(), DIRECT_CHUNK);
        assert_eq!(bytes.as_ptr() as usize % ALIGN, 0);
    }
}
