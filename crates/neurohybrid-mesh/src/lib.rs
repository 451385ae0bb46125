//! # neurohybrid-mesh
//!
//! Discretizations on brain anatomy: masked voxel grids with tissue maps, the finite-volume
//! diffusion operator `∇·(D(x)∇u)` with no-flux boundaries, a procedural brain phantom, and
//! (in the `graph` and `io` modules) connectome graphs and file formats.
//!
//! ## Grids and tissue
//!
//! A [`Grid`] is a 2D or 3D box of voxels (spacing in mm, a NIfTI-style affine) with a mask of
//! *active* cells; state vectors hold only the active cells, and [`Grid::gather`] /
//! [`Grid::scatter`] move fields between the full box and the active cells. [`TissueMaps`]
//! hold white matter, gray matter and CSF fractions per voxel. Both downsample by averaging
//! ([`Grid::downsample`], [`TissueMaps::downsample`], 1 mm → 2 mm → 4 mm; a [`MaskRule`]
//! decides which coarse cells are active) and slice to 2D ([`Grid::slice`], [`Plane`]).
//! [`Phantom`] is the embedded default anatomy (ellipsoidal brain, cortex, white-matter
//! core, ventricles), at any resolution.
//!
//! ## The diffusion operator
//!
//! `(A u)_i = (1/V) Σ_faces D_ij (V/h) (u_j − u_i)/h` with the harmonic-mean face
//! diffusivity and no flux across the mask boundary ([`fv::operator`] has the derivation and
//! citations). It conserves `Σ V u`, is symmetric in `⟨u, v⟩_V = Σ V u_i v_i` and negative
//! semidefinite. One operator, several forms:
//!
//! | type | D | role |
//! |---|---|---|
//! | [`DiffusionOperator`] | fixed per-cell field | matrix-free, rayon or sequential |
//! | [`TissueDiffusion`] | `D_w (p_wm + p_gm / R)`, `p = [D_w, R]` | calibration of D_w and R |
//! | [`FieldDiffusion`] | the parameter vector itself | a network predicts the D map |
//! | [`AssembledDiffusion`] | fixed per-cell field | CSR matrix for implicit solvers |
//!
//! Each offers `apply`, VJP, JVP and its Jacobian sparsity pattern, implements the
//! `neurohybrid-system` traits (`OdeSystem`, `Vjp`, `Jvp`, `Jacobian`) for `dy/dt = A(p) y`,
//! and records into a `neurohybrid-autodiff` graph as a [`CustomOp`](neurohybrid_autodiff::CustomOp)
//! ([`DiffusionOp`], [`TissueDiffusionOp`], [`FieldDiffusionOp`]).
//!
//! ```
//! use neurohybrid_mesh::{DiffusionOperator, Phantom, TissueDiffusion, TissueModel};
//!
//! let phantom = Phantom::new_2d(48, 56, 4.0)?; // 4 mm axial slice
//! let (grid, tissue) = (phantom.grid(), phantom.tissue());
//! let model = TissueModel { d_w: 0.12, r: 10.0 }; // mm²/day, white/gray ratio
//! let op = DiffusionOperator::from_tissue(grid, tissue, model)?;
//!
//! // A bump of tumour cells at the centre; diffusion moves it but keeps its mass.
//! let u: Vec<f64> = (0..grid.n_active())
//!     .map(|a| {
//!         let [x, y, _] = grid.world(grid.voxel_of(a).unwrap());
//!         (-(x * x + y * y) / 200.0).exp()
//!     })
//!     .collect();
//! let mut du = vec![0.0; u.len()];
//! op.apply(&u, &mut du)?;
//! let mass_rate: f64 = du.iter().sum::<f64>() * grid.cell_volume();
//! assert!(mass_rate.abs() < 1e-12 * du.iter().map(|x| x.abs()).sum::<f64>());
//!
//! // The assembled CSR matrix is the same operator.
//! let csr = op.assemble();
//! let mut du2 = vec![0.0; u.len()];
//! csr.apply(&u, &mut du2)?;
//! assert!(du.iter().zip(&du2).all(|(a, b)| (a - b).abs() < 1e-13));
//!
//! // Gradient of ⟨w, A(D_w, R) u⟩ with respect to [D_w, R], for calibration.
//! let td = TissueDiffusion::new(grid, tissue)?;
//! let mut w_p = [0.0; 2];
//! td.vjp(model, &u, &u, &mut [], &mut w_p)?;
//! assert!(w_p[0] < 0.0); // ⟨u, A u⟩ ≤ 0 and A is linear in D_w
//! # Ok::<(), neurohybrid_mesh::MeshError>(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod fv;
pub mod graph;
pub mod grid;
pub mod io;
pub mod phantom;
pub mod tissue;

pub use error::{MeshError, Result};
pub use fv::{
    AssembledDiffusion, DiffusionOp, DiffusionOperator, FieldDiffusion, FieldDiffusionOp,
    Parallelism, Stencil, TissueDiffusion, TissueDiffusionOp,
};
pub use graph::{Connectome, Graph, GraphDiffusion, GraphDiffusionOp, GraphError, LaplacianKind};
pub use grid::{Grid, MaskRule, Plane};
pub use io::IoError;
pub use phantom::Phantom;
pub use tissue::{TissueMaps, TissueModel};
