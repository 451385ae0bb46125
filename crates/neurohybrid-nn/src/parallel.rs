//! Deterministic chunked parallelism for the fused kernels (pointwise networks, convolutions).
//!
//! Work over `n` items is cut into tasks whose size depends on `n` only, never on the thread
//! count, and per-task partial sums (parameter gradients) are added in task order: results are
//! bit-identical whatever the size of rayon's pool. Small problems (an ODE right-hand side on a
//! few hundred graph nodes, called millions of times) run on the calling thread with no task
//! overhead. Scratch space lives in thread-local buffers that grow once, so replays do not
//! allocate after warm-up.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

/// Below this many items a kernel runs on the calling thread.
pub(crate) const PAR_MIN: usize = 4096;

/// Items per task for `n` items: at most 64 tasks (bounds the partial-sum memory), at least
/// 1024 items each (amortizes scheduling).
pub(crate) fn task_size(n: usize) -> usize {
    n.div_ceil(64).max(1024)
}

thread_local! {
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    static SLOTS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f64>>>,
    len: usize,
    f: impl FnOnce(&mut [f64]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (rayon ran another kernel while this one waits): a
        // one-off buffer keeps it correct.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Runs `f` with a scratch slice of `len` values (contents unspecified).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    with_buffer(&SCRATCH, len, f)
}

/// Calls `f(range, rows)` over disjoint item ranges, `rows` being the matching rows of `out`
/// (`row_len` values per item).
pub(crate) fn for_rows(
    n: usize,
    row_len: usize,
    out: &mut [f64],
    f: impl Fn(Range<usize>, &mut [f64]) + Sync,
) {
    if n < PAR_MIN || row_len == 0 {
        f(0..n, out);
        return;
    }
    let ts = task_size(n);
    out.par_chunks_mut(ts * row_len).enumerate().for_each(|(t, rows)| {
        let start = t * ts;
        f(start..start + rows.len() / row_len, rows)
    });
}

/// Calls `f(range, rows, partial)` over disjoint item ranges and adds the `partial` sums
/// (length `acc.len()`, zeroed per task) into `acc` in task order. `rows` are the matching rows
/// of `out` (`row_len` values per item), or empty slices when `out` is empty.
pub(crate) fn for_rows_reduce(
    n: usize,
    row_len: usize,
    out: &mut [f64],
    acc: &mut [f64],
    f: impl Fn(Range<usize>, &mut [f64], &mut [f64]) + Sync,
) {
    if n < PAR_MIN {
        // Accumulating straight into `acc` is the same sum (f adds into `partial`).
        f(0..n, out, acc);
        return;
    }
    let ts = task_size(n);
    let tasks = n.div_ceil(ts);
    let k = acc.len();
    with_buffer(&SLOTS, tasks * k, |slots| {
        slots.iter_mut().for_each(|s| *s = 0.0);
        if out.is_empty() || row_len == 0 {
            let run = |(t, slot): (usize, &mut [f64])| {
                let start = t * ts;
                f(start..(start + ts).min(n), &mut [], slot)
            };
            if k == 0 {
                (0..tasks).into_par_iter().for_each(|t| run((t, &mut [])));
            } else {
                slots.par_chunks_mut(k).enumerate().for_each(run);
            }
        } else if k == 0 {
            out.par_chunks_mut(ts * row_len).enumerate().for_each(|(t, rows)| {
                let start = t * ts;
                f(start..start + rows.len() / row_len, rows, &mut [])
            });
        } else {
            out.par_chunks_mut(ts * row_len).zip(slots.par_chunks_mut(k)).enumerate().for_each(
                |(t, (rows, slot))| {
                    let start = t * ts;
                    f(start..start + rows.len() / row_len, rows, slot)
                },
            );
        }
        for slot in slots.chunks(k.max(1)).take(if k == 0 { 0 } else { tasks }) {
            for (a, s) in acc.iter_mut().zip(slot) {
                *a += s;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_matches_serial_sum_for_large_n() {
        let n = 50_000;
        let mut rows = vec![0.0; n];
        let mut acc = vec![1.0; 2];
        for_rows_reduce(n, 1, &mut rows, &mut acc, |r, rows, part| {
            for (i, row) in r.clone().zip(rows.iter_mut()) {
                *row = i as f64;
                part[0] += i as f64;
                part[1] += 1.0;
            }
        });
        assert_eq!(acc, vec![1.0 + (n * (n - 1) / 2) as f64, 1.0 + n as f64]);
        assert!(rows.iter().enumerate().all(|(i, &r)| r == i as f64));
    }
}
