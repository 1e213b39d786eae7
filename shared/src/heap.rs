//! The process's allocator: mimalloc, counted.
//!
//! mimalloc (v2, without transparent huge pages) rather than glibc's `malloc`: the AWS SDK
//! allocates 400–470 times per call, and glibc's allocator was an eighth of a payment confirm's
//! CPU; with mimalloc a write request costs 3–32 % less CPU in the runs measured so far, and a
//! start nothing `perf stat` can see (docs/PERFORMANCE.md, "mimalloc"). v3 asks for transparent huge pages, whose zeroing cost every
//! start ~0.4 ms.
//!
//! Every allocation and free is counted on the thread that makes it (a thread-local cell: no lock,
//! no shared cache line, about a nanosecond). A function's runtime is current-thread, so its one
//! thread's counts are its requests'. With `ORDERSYNC_COUNT_ALLOCATIONS` set, each request's line
//! carries what was counted since the previous line ([`since_last_report`]): `make bench` reads
//! allocations per request from there, not from probes on a C library the functions no longer
//! allocate with.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::LazyLock;

use serde::Serialize;

#[global_allocator]
static ALLOCATOR: Counted<mimalloc::MiMalloc> = Counted(mimalloc::MiMalloc);

/// The environment variable that has each request's line report its [`Counts`].
pub const REPORT_VAR: &str = "ORDERSYNC_COUNT_ALLOCATIONS";

/// Allocations and frees on one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `alloc`, `alloc_zeroed` and `realloc`: each takes a block (or moves one).
    pub allocations: u64,
    pub frees: u64,
}

thread_local! {
    // `const` and without a destructor: a plain thread-local slot, which allocating from inside
    // the allocator cannot recurse into (a lazily initialised one could allocate).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    counter.with(|count| count.set(count.get().wrapping_add(1)));
}

/// An allocator that counts the calls into `A` on the calling thread.
pub struct Counted<A>(pub A);

// SAFETY: every call is passed to `A` unchanged, with its result; counting touches only the
// calling thread's cells, allocates nothing and cannot unwind.
//
// Not inlined: with fat LTO each method was inlined at every allocation site of the binary, count
// and all, ~0.1–0.2 MB a function (docs/PERFORMANCE.md); one call more per allocation is ~1 ns.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counted<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCATIONS);
        // SAFETY: the caller's contract is `A`'s.
        unsafe { self.0.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCATIONS);
        // SAFETY: as above.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&ALLOCATIONS);
        // SAFETY: as above.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(&FREES);
        // SAFETY: as above.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// With [`REPORT_VAR`] set: what this thread counted since the last call (or since it started),
/// the counts set back to zero. Without it: `None`, so that no line carries them on AWS.
pub fn since_last_report() -> Option<Counts> {
    static REPORTED: LazyLock<bool> = LazyLock::new(|| std::env::var_os(REPORT_VAR).is_some());
    if !*REPORTED {
        return None;
    }
    Some(Counts {
        allocations: ALLOCATIONS.with(|count| count.replace(0)),
        frees: FREES.with(|count| count.replace(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this thread has counted so far.
    fn counted() -> Counts {
        Counts {
            allocations: ALLOCATIONS.with(Cell::get),
            frees: FREES.with(Cell::get),
        }
    }

    #[test]
    fn every_allocation_and_free_on_this_thread_is_counted() {
        let before = counted();
        let mut boxed = std::hint::black_box(vec![1u8; 10]);
        boxed.reserve(1_000); // a realloc
        drop(std::hint::black_box(boxed));
        let after = counted();
        assert_eq!(after.allocations - before.allocations, 2);
        assert_eq!(after.frees - before.frees, 1);
    }

    #[test]
    fn another_threads_allocations_are_its_own() {
        // What spawning a thread allocates here, once the first spawn's one-time set-up is done.
        let spawn = |boxes: usize| {
            let before = counted();
            std::thread::scope(|scope| {
                scope.spawn(move || {
                    for _ in 0..boxes {
                        drop(std::hint::black_box(Box::new([0u8; 64])));
                    }
                    assert!(counted().allocations >= boxes as u64);
                });
            });
            counted().allocations - before.allocations
        };
        spawn(0);
        assert_eq!(spawn(100), spawn(0));
    }
}
