//! Integration tests of neurohybrid-nn (one test binary, one module per area).

mod checkpoint;
mod common;
#[cfg(feature = "dfdx")]
mod dfdx_adaptor;
mod dfdx_oracle;
mod gradients;
mod init_params;
mod optim;
mod pointwise;
