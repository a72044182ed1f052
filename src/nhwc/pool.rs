//! Recycled activation buffers.
//!
//! A 512 face passes through feature maps of up to 64 MiB per image. Fresh allocations of that
//! size are new pages from the kernel, zeroed on first touch: in perf profiles of the forward
//! pass, page faults and page clearing took about a tenth of the time. A buffer freed by one
//! layer is handed to the next one instead, so after the first forward pass the engine runs on
//! memory it already has.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers below this many floats come from the allocator directly (its own free lists serve
/// them well).
const MIN_POOLED: usize = 1 << 16;
/// Most bytes kept for reuse: beyond this the oldest kept buffers go back to the system, so
/// that buffers of a batch size no longer used do not stay forever. A 512 face at batch 4 keeps
/// about 0.9 GB.
const MAX_KEPT_BYTES: usize = 2 << 30;

static FREE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Networks alive; when the last one goes, the kept buffers go back to the system.
static USERS: Mutex<usize> = Mutex::new(0);

/// Held by each network for as long as it lives.
pub struct User(());

impl User {
    pub fn new() -> Self {
        *USERS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Self(())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            FREE.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// A float buffer that returns its memory to the pool when dropped.
pub struct Buf {
    /// Always at its full length; `len` is the part in use.
    vec: Vec<f32>,
    len: usize,
}

impl Buf {
    /// `len` floats whose contents are left over from earlier use: for outputs that are written
    /// in full.
    pub fn for_overwrite(len: usize) -> Self {
        if len >= MIN_POOLED {
            let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest buffer that fits, if it is not wastefully large.
            let best = (free.iter().enumerate())
                .filter(|(_, v)| v.len() >= len && v.len() <= 2 * len)
                .min_by_key(|(_, v)| v.len())
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Self { vec: free.swap_remove(i), len };
            }
        }
        Self { vec: vec![0.0; len], len }
    }

    pub fn from_vec(vec: Vec<f32>) -> Self {
        let len = vec.len();
        Self { vec, len }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if self.vec.len() < MIN_POOLED {
            return;
        }
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        free.push(std::mem::take(&mut self.vec));
        let mut kept: usize = free.iter().map(|v| v.len() * 4).sum();
        while kept > MAX_KEPT_BYTES {
            kept -= free.remove(0).len() * 4;
        }
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
        let mut copy = Self::for_overwrite(self.len);
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

    #[test]
    fn a_freed_buffer_is_reused_with_its_contents() {
        let mut a = Buf::for_overwrite(MIN_POOLED * 3 + 17);
        a.fill(7.0);
        let ptr = a.as_ptr();
        drop(a);
        // Another test may take it first; then this one gets fresh memory, which is fine.
        let b = Buf::for_overwrite(MIN_POOLED * 3);
        assert_eq!(b.len(), MIN_POOLED * 3);
        if b.as_ptr() == ptr {
            assert!(b.iter().all(|&v| v == 7.0));
        }
        let mut z = Buf::for_overwrite(MIN_POOLED * 2);
        z.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
        let c = z.clone();
        assert_eq!(&c[..], &z[..]);
    }
}
