//! A counting global allocator, so tests can assert "no allocation in steady state".

use neurohybrid_alloc_count::Counting;
pub use neurohybrid_alloc_count::allocations_in;

#[global_allocator]
static GLOBAL: Counting = Counting;
