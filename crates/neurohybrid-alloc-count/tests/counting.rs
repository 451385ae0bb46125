//! The counter sees this thread's allocations and reallocations, and nothing of other threads.

use neurohybrid_alloc_count::{Counting, allocations_in, counted};
use std::sync::{Arc, Barrier};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn allocations_and_reallocations_are_counted_frees_are_not() {
    let mut v: Vec<u64> = Vec::with_capacity(1);
    // Growing from capacity 1 to 1 000 reallocates at least once.
    let grown = allocations_in(|| v.extend(0..1000));
    assert!(grown >= 1, "{grown}");
    assert_eq!(allocations_in(|| drop(std::mem::take(&mut v))), 0);
    let (boxed, n) = counted(|| Box::new(7));
    assert_eq!((*boxed, n), (7, 1));
}

#[test]
fn other_threads_do_not_count() {
    let (start, done) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (s2, d2) = (Arc::clone(&start), Arc::clone(&done));
    let worker = std::thread::spawn(move || {
        s2.wait();
        for i in 0..100 {
            drop(vec![i as u8; 64]);
        }
        d2.wait();
    });
    // The worker allocates 100 times between the two barriers, inside this measurement.
    let n = allocations_in(|| {
        start.wait();
        done.wait();
    });
    worker.join().expect("the worker ran");
    assert_eq!(n, 0);
}
