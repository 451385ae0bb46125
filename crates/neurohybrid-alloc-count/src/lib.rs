//! A counting global allocator for the "no allocation in hot loops" tests.
//!
//! Install [`Counting`] as the global allocator of a test binary, then measure a closure with
//! [`allocations_in`]. Allocations (and reallocations) are counted **per thread**, so the test
//! harness's other threads, running other tests of the same binary at the same time, never
//! pollute a measurement — a process-wide counter would make such tests flaky. Deallocations
//! are not counted: freeing is not what the tests forbid.
//!
//! Because a global allocator is process-wide, each test file that installs it is its own test
//! binary (every file under `tests/` is). This crate depends on nothing and is only ever a
//! dev-dependency (`cargo xtask layers`, layer `Dev`).
//!
//! ```
//! use neurohybrid_alloc_count::{Counting, allocations_in};
//!
//! #[global_allocator]
//! static GLOBAL: Counting = Counting;
//!
//! let mut buf = vec![0.0_f64; 16]; // allocated before the measurement
//! let n = allocations_in(|| buf.iter_mut().for_each(|v| *v += 1.0));
//! assert_eq!(n, 0);
//! assert_eq!(allocations_in(|| drop(vec![1u8; 8])), 1);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations and reallocations made by this thread since it started.
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting each thread's allocations and reallocations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

fn bump() {
    // `try_with`: during thread teardown the thread-local may be gone; such allocations are
    // not inside any measurement.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counter is a const-initialised thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations and reallocations made by this thread so far (0 unless [`Counting`] is the
/// global allocator).
pub fn allocations() -> usize {
    COUNT.with(Cell::get)
}

/// Allocations and reallocations made by this thread while running `f`.
pub fn allocations_in(f: impl FnOnce()) -> usize {
    let before = allocations();
    f();
    allocations() - before
}

/// `f`'s result and the allocations this thread made while running it.
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = allocations();
    let r = f();
    (r, allocations() - before)
}
