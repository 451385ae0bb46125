//! Integration tests of neurohybrid-linalg (one binary, one module per area).

mod alloc_count;
mod common;
mod dense;
mod krylov;
mod newton;
mod sparse_cholesky;
mod sparse_lu;
