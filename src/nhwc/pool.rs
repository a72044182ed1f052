//! Recycled activation buffers.
//!
//! A 512 face passes through feature maps of up to 64 MiB per image. Fresh allocations of that
//! size are new pages from the kernel, zeroed on first touch: in perf profiles of the forward
//! pass, page faults and page clearing took about a tenth of the time. A buffer freed by one
//! layer is handed to the next one instead, so after the first forward pass the engine runs on
//! memory it already has.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// Buffers below this many floats come from the allocator directly (its own free lists serve
/// them well).
const MIN_POOLED: usize = 1 << 16;
/// Most bytes the process-wide pool keeps for reuse: beyond this the oldest kept buffers go back
/// to the system, so that buffers of a batch size no longer used do not stay forever. A 512 face
/// at batch 4 keeps about 0.9 GB.
const MAX_KEPT_BYTES: usize = 2 << 30;

/// The pool every network and activation of the engine uses.
static GLOBAL: Pool = Pool::new(MAX_KEPT_BYTES);

/// Freed buffers kept for reuse, oldest first.
struct Pool {
    state: Mutex<State>,
    /// Most bytes kept; the oldest buffers beyond it are released.
    max_kept_bytes: usize,
}

struct State {
    free: Vec<Vec<f32>>,
    /// Networks alive; when the last one goes, the kept buffers go back to the system.
    users: usize,
}

impl Pool {
    const fn new(max_kept_bytes: usize) -> Self {
        Self { state: Mutex::new(State { free: Vec::new(), users: 0 }), max_kept_bytes }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `len` floats whose contents are left over from earlier use: for outputs that are written
    /// in full.
    fn for_overwrite(&'static self, len: usize) -> Buf {
        if len >= MIN_POOLED {
            let free = &mut self.state().free;
            // The smallest buffer that fits, if it is not wastefully large.
            let best = (free.iter().enumerate())
                .filter(|(_, v)| v.len() >= len && v.len() <= 2 * len)
                .min_by_key(|(_, v)| v.len())
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Buf { vec: free.swap_remove(i), len, pool: self };
            }
        }
        Buf { vec: vec![0.0; len], len, pool: self }
    }

    /// Registers a user of the pool, which keeps its buffers until the last user is dropped.
    fn user(&'static self) -> User {
        self.state().users += 1;
        User(self)
    }

    fn give_back(&self, vec: Vec<f32>) {
        if vec.len() < MIN_POOLED {
            return;
        }
        let free = &mut self.state().free;
        free.push(vec);
        let mut kept: usize = free.iter().map(|v| v.len() * 4).sum();
        while kept > self.max_kept_bytes {
            kept -= free.remove(0).len() * 4;
        }
    }
}

/// Held by each network for as long as it lives.
pub struct User(&'static Pool);

impl User {
    /// A user of the process-wide pool.
    pub fn new() -> Self {
        GLOBAL.user()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.users -= 1;
        if state.users == 0 {
            state.free.clear();
        }
    }
}

/// A float buffer that returns its memory to its pool when dropped.
pub struct Buf {
    /// Always at its full length; `len` is the part in use.
    vec: Vec<f32>,
    len: usize,
    pool: &'static Pool,
}

impl Buf {
    /// `len` floats from the process-wide pool, contents left over from earlier use: for
    /// outputs that are written in full.
    pub fn for_overwrite(len: usize) -> Self {
        GLOBAL.for_overwrite(len)
    }

    /// `vec` as a buffer that goes to the process-wide pool when dropped.
    pub fn from_vec(vec: Vec<f32>) -> Self {
        let len = vec.len();
        Self { vec, len, pool: &GLOBAL }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.vec));
    }
}

impl Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.vec[..self.len]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.vec[..self.len]
    }
}

impl Clone for Buf {
    fn clone(&self) -> Self {
        let mut copy = self.pool.for_overwrite(self.len);
        copy.copy_from_slice(self);
        copy
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf({} floats)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of its own for each test (the process-wide one is shared by the tests running at
    /// the same time), keeping up to `max_kept_bytes`.
    fn pool(max_kept_bytes: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(max_kept_bytes)))
    }

    impl Pool {
        /// Where the kept buffers start, oldest first.
        fn kept(&self) -> Vec<*const f32> {
            self.state().free.iter().map(|v| v.as_ptr()).collect()
        }
    }

    #[test]
    fn a_freed_buffer_is_handed_out_again_with_its_contents() {
        let pool = pool(MAX_KEPT_BYTES);
        let mut a = pool.for_overwrite(MIN_POOLED * 3 + 17);
        a.fill(7.0);
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(pool.kept(), [ptr]);
        let b = pool.for_overwrite(MIN_POOLED * 3);
        assert_eq!((b.as_ptr(), b.len()), (ptr, MIN_POOLED * 3), "the freed buffer, at the length asked for");
        assert!(b.iter().all(|&v| v == 7.0), "contents kept");
        assert!(pool.kept().is_empty());
        // A clone comes from the same pool, and goes back to it.
        drop(b);
        let mut z = pool.for_overwrite(MIN_POOLED * 2);
        assert_eq!(z.as_ptr(), ptr);
        z.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
        let c = z.clone();
        assert_eq!(&c[..], &z[..]);
        let cp = c.as_ptr();
        drop(c);
        assert_eq!(pool.kept(), [cp]);
    }

    #[test]
    fn small_buffers_bypass_the_pool_and_large_ones_take_the_tightest_fit() {
        let pool = pool(MAX_KEPT_BYTES);
        drop(pool.for_overwrite(MIN_POOLED - 1));
        assert!(pool.kept().is_empty(), "a small buffer was kept");
        let big = pool.for_overwrite(MIN_POOLED);
        let ptr = big.as_ptr();
        drop(big);
        // Small requests go to the allocator even when a kept buffer would fit...
        let small = pool.for_overwrite(MIN_POOLED / 2 + 1);
        assert_eq!(pool.kept(), [ptr]);
        drop(small);
        // A large request takes no kept buffer over twice its size...
        let big = pool.for_overwrite(MIN_POOLED * 4);
        let pb = big.as_ptr();
        drop(big);
        assert_eq!(pool.kept(), [ptr, pb]);
        let fresh = pool.for_overwrite(MIN_POOLED * 2 - 1);
        assert_eq!(pool.kept(), [ptr, pb]);
        drop(fresh);
        // ...and otherwise the tightest of those that fit.
        let pf = pool.kept()[2];
        let hold = pool.for_overwrite(MIN_POOLED * 4);
        let mid = pool.for_overwrite(MIN_POOLED * 3);
        let pm = mid.as_ptr();
        assert_eq!((hold.as_ptr(), pool.kept()), (pb, vec![ptr, pf]));
        drop((hold, mid));
        assert_eq!(pool.kept(), [ptr, pf, pb, pm]);
        assert_eq!(pool.for_overwrite(MIN_POOLED * 3).as_ptr(), pm);
        assert_eq!(pool.for_overwrite(MIN_POOLED * 2 - 2).as_ptr(), pf);
    }

    #[test]
    fn buffers_beyond_the_byte_budget_are_released_oldest_first() {
        let pool = pool(3 * MIN_POOLED * 4);
        let bufs: Vec<Buf> = (0..4).map(|_| pool.for_overwrite(MIN_POOLED)).collect();
        let ptrs: Vec<*const f32> = bufs.iter().map(|b| b.as_ptr()).collect();
        for (i, b) in bufs.into_iter().enumerate() {
            drop(b);
            assert_eq!(pool.kept(), ptrs[i.saturating_sub(2)..=i], "after freeing buffer {i}");
        }
        // A buffer larger than the whole budget is not kept at all.
        drop(pool.for_overwrite(4 * MIN_POOLED));
        assert!(pool.kept().is_empty());
    }

    #[test]
    fn the_last_user_leaving_releases_the_kept_buffers() {
        let pool = pool(MAX_KEPT_BYTES);
        let (first, second) = (pool.user(), pool.user());
        let ptr = pool.for_overwrite(MIN_POOLED).as_ptr();
        assert_eq!(pool.kept(), [ptr]);
        drop(first);
        assert_eq!(pool.kept(), [ptr], "released while a user remains");
        drop(second);
        assert!(pool.kept().is_empty(), "kept after the last user left");
        // A new user starts from an empty pool and fills it again.
        let _third = pool.user();
        drop(pool.for_overwrite(MIN_POOLED));
        assert_eq!(pool.kept().len(), 1);
    }
}
