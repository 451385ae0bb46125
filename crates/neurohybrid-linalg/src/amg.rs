//! Smoothed-aggregation algebraic multigrid (SA-AMG) as a symmetric preconditioner.
//!
//! Setup (Vaněk, Mandel & Brezina, *Computing* 56, 1996; the defaults of pyamg's
//! `smoothed_aggregation_solver`):
//!
//! 1. strength of connection `|a_ij| ≥ θ √|a_ii a_jj|` (`θ = 0.08`);
//! 2. greedy aggregation in three passes: a node whose strong neighbours are all free roots an
//!    aggregate with them; remaining nodes join a neighbouring aggregate; what is left forms
//!    aggregates with its free strong neighbours;
//! 3. tentative prolongator `P₀` (one column per aggregate, the normalised constant vector on
//!    it: the near-null space of a diffusion operator), smoothed once by damped Jacobi,
//!    `P = (I − ω D⁻¹A) P₀`, `ω = (4/3)/ρ(D⁻¹A)` with `ρ` bounded by Gershgorin;
//! 4. Galerkin coarse operator `A_c = Pᵀ A P`, recursively until `max_coarse` unknowns (solved
//!    by dense LU) or until coarsening stalls (then the coarsest level is only smoothed).
//!
//! A *refresh* ([`Amg::update`]) keeps the aggregates and `P` and recomputes only the Galerkin
//! products numerically in their fixed patterns (no allocation). For an iteration matrix
//! `W = M − hγJ` with a fixed `P` this *is* the linear combination `PᵀMP − hγ PᵀJP` of the
//! brief's pencil, so one setup serves many step sizes. A refresh is exact; it is only the
//! *quality* of `P` that can degrade when `A` changes character (e.g. `hγ` grows by orders of
//! magnitude and connections that were weak become strong), which is why
//! [`Amg::update`] re-runs the setup when the matrix's off-diagonal weight has moved by more
//! than [`AmgConfig::resetup_ratio`].
//!
//! The cycle is a V-cycle with `ν` forward Gauss–Seidel sweeps before and `ν` backward sweeps
//! after the coarse correction, and an exact (or symmetric-smoothed) coarsest solve: the
//! preconditioner `B ≈ A⁻¹` is then symmetric positive definite for SPD `A`, so CG stays valid
//! (tested). For a nonsymmetric `A` it is still a usable GMRES preconditioner.

use faer::Mat;

use crate::dense::DenseLu;
use crate::error::{LinalgError, Result};
use crate::krylov::Preconditioner;
use crate::solver::LinearSolver;
use crate::sparse::{SparseMatrix, SparsePattern};

/// The smoother of every level of [`Amg`]; both keep the V-cycle symmetric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmgSmoother {
    /// Damped Jacobi `x ← x + ω D⁻¹(b − Ax)`, `ω = (4/3)/ρ(D⁻¹A)` (Gershgorin bound), the
    /// same sweep before and after the coarse correction (it is self-adjoint in the `A` inner
    /// product). The first sweep from `x = 0` costs no product. Default: on the 256²
    /// Fisher–KPP `W` a Gauss–Seidel sweep took ~4 matrix–vector products of time, its row
    /// recursion being latency-bound, for a modestly better rate (ADR 0018).
    #[default]
    Jacobi,
    /// Forward Gauss–Seidel before, backward after (symmetric Gauss–Seidel over the cycle).
    GaussSeidel,
}

/// Settings of [`Amg`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmgConfig {
    /// Strength threshold `θ` of `|a_ij| ≥ θ √|a_ii a_jj|` (default 0.08, Vaněk et al.).
    pub strength: f64,
    /// Stop coarsening at this many unknowns; the coarsest level is solved by dense LU
    /// (default 100).
    pub max_coarse: usize,
    /// At most this many levels, the finest included (default 12).
    pub max_levels: usize,
    /// Smoothing sweeps before and after the coarse correction (default 1).
    pub sweeps: usize,
    /// The smoother (default damped Jacobi).
    pub smoother: AmgSmoother,
    /// Smooth the tentative prolongator (smoothed aggregation, default) or use it as is
    /// (plain aggregation: sparser coarse operators, a weaker and not grid-independent
    /// V-cycle on the Laplacian; on the 256² Fisher–KPP `W` 25 % more CG iterations for
    /// ~10 % less time, ADR 0018).
    pub smoothed: bool,
    /// [`Amg::update`] re-runs the full setup when the off-diagonal weight
    /// `s = Σ|a_ij, i≠j| / Σ|a_ii|` differs from the setup's by more than this factor either way
    /// (default 2). For `W = I − hγJ`, `s` grows with `hγ`.
    pub resetup_ratio: f64,
}

impl Default for AmgConfig {
    fn default() -> Self {
        Self {
            strength: 0.08,
            max_coarse: 100,
            max_levels: 12,
            sweeps: 1,
            smoother: AmgSmoother::Jacobi,
            smoothed: true,
            resetup_ratio: 2.0,
        }
    }
}

impl AmgConfig {
    /// Rejects a negative or non-finite `strength`, `sweeps = 0`, `max_levels = 0` and
    /// `resetup_ratio < 1`.
    pub fn validate(&self) -> Result<()> {
        let bad = |what| Err(LinalgError::InvalidConfig { what });
        if !(self.strength >= 0.0 && self.strength.is_finite()) {
            return bad("AMG strength must be finite and >= 0");
        }
        if self.sweeps == 0 || self.max_levels == 0 {
            return bad("AMG sweeps and max_levels must be >= 1");
        }
        if self.resetup_ratio.is_nan() || self.resetup_ratio < 1.0 {
            return bad("AMG resetup_ratio must be >= 1");
        }
        Ok(())
    }
}

/// One level above the coarsest: its operator, smoother data, and the transfer operators to
/// the next level with the intermediate product used by the numeric refresh.
#[derive(Debug, Clone)]
struct Level {
    a: SparseMatrix,
    inv_diag: Vec<f64>,
    /// Jacobi damping `(4/3)/ρ_Gershgorin(D⁻¹A)`.
    omega: f64,
    /// `n × n_c`.
    p: SparseMatrix,
    /// `Pᵀ`, `n_c × n`.
    r: SparseMatrix,
    /// `A P`, `n × n_c` (fixed pattern, refreshed numerically).
    ap: SparseMatrix,
    /// Scratch residual.
    res: Vec<f64>,
}

// One per hierarchy; boxing the LU would only add an indirection per coarse solve.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Coarsest {
    /// Dense LU of the coarsest matrix.
    Direct { lu: DenseLu, dense: Mat<f64> },
    /// Smoothing only (coarsening stalled above `max_coarse`, e.g. a strongly diagonally
    /// dominant `A`): `2ν` Jacobi sweeps with `ω = 1/ρ_Gershgorin(D⁻¹A)`, or `ν` symmetric
    /// Gauss–Seidel pairs.
    Smooth { inv_diag: Vec<f64>, omega: f64, tmp: Vec<f64> },
}

/// Smoothed-aggregation AMG hierarchy; see the module docs. Implements [`Preconditioner`]
/// (one V-cycle from a zero initial guess per application).
#[derive(Debug)]
pub struct Amg {
    config: AmgConfig,
    levels: Vec<Level>,
    /// Operator of the coarsest level.
    coarse_a: SparseMatrix,
    coarsest: Coarsest,
    /// Right-hand sides and iterates per level (index 0 unused: the caller's slices).
    b: Vec<Vec<f64>>,
    x: Vec<Vec<f64>>,
    /// Off-diagonal weight of the matrix of the last full setup.
    setup_weight: f64,
    /// Column markers for the numeric sparse products.
    marker: Vec<usize>,
    setups: usize,
}

impl Amg {
    /// Builds the hierarchy for the square matrix `a` (every diagonal entry stored and nonzero).
    pub fn new(a: &SparseMatrix, config: AmgConfig) -> Result<Self> {
        config.validate()?;
        let mut amg = Self {
            config,
            levels: Vec::new(),
            coarse_a: a.clone(),
            coarsest: Coarsest::Smooth { inv_diag: Vec::new(), omega: 1.0, tmp: Vec::new() },
            b: Vec::new(),
            x: Vec::new(),
            setup_weight: 0.0,
            marker: Vec::new(),
            setups: 0,
        };
        amg.setup(a)?;
        Ok(amg)
    }

    /// Number of levels, the finest and the coarsest included.
    pub fn n_levels(&self) -> usize {
        self.levels.len() + 1
    }

    /// Unknowns per level, finest first.
    pub fn level_sizes(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.a.nrows()).chain([self.coarse_a.nrows()]).collect()
    }

    /// Operator complexity `Σ nnz(A_l) / nnz(A_0)` (work of a V-cycle relative to the finest
    /// level's smoothing).
    pub fn operator_complexity(&self) -> f64 {
        let fine =
            self.levels.first().map_or(self.coarse_a.pattern().nnz(), |l| l.a.pattern().nnz());
        let total: usize = self.levels.iter().map(|l| l.a.pattern().nnz()).sum::<usize>()
            + self.coarse_a.pattern().nnz();
        total as f64 / fine as f64
    }

    /// Full setups run so far (the first included); [`Amg::update`] may add some.
    pub fn setups(&self) -> usize {
        self.setups
    }

    /// New values for the matrix: with the same pattern and an off-diagonal weight within
    /// [`AmgConfig::resetup_ratio`] of the setup's, only the Galerkin products are recomputed
    /// (in place, with the aggregates and `P` kept); otherwise the setup runs again.
    pub fn update(&mut self, a: &SparseMatrix) -> Result<()> {
        let fine = self.levels.first().map_or(&self.coarse_a, |l| &l.a);
        let w = off_diagonal_weight(a)?;
        let ratio = self.config.resetup_ratio;
        let same = fine.pattern().same_as(a.pattern());
        let close = w <= self.setup_weight * ratio && w * ratio >= self.setup_weight;
        if !same || !close || (self.setup_weight == 0.0) != (w == 0.0) {
            return self.setup(a);
        }
        a.check_finite()?;
        if self.levels.is_empty() {
            self.coarse_a.set_values(a.values())?;
        } else {
            self.levels[0].a.set_values(a.values())?;
            for l in 0..self.levels.len() {
                let (head, tail) = self.levels.split_at_mut(l + 1);
                let lev = &mut head[l];
                inverse_diagonal(&lev.a, &mut lev.inv_diag)?;
                lev.omega = (4.0 / 3.0) / gershgorin(&lev.a, &lev.inv_diag);
                spgemm_numeric(&lev.a, &lev.p, &mut lev.ap, &mut self.marker);
                let next = match tail.first_mut() {
                    Some(n) => &mut n.a,
                    None => &mut self.coarse_a,
                };
                spgemm_numeric(&lev.r, &lev.ap, next, &mut self.marker);
            }
        }
        self.factor_coarsest()
    }

    fn setup(&mut self, a: &SparseMatrix) -> Result<()> {
        if a.nrows() != a.ncols() {
            return Err(LinalgError::NotSquare { nrows: a.nrows(), ncols: a.ncols() });
        }
        a.check_finite()?;
        self.setup_weight = off_diagonal_weight(a)?;
        self.levels.clear();
        let mut current = a.clone();
        while self.levels.len() + 1 < self.config.max_levels
            && current.nrows() > self.config.max_coarse
        {
            let mut inv_diag = Vec::new();
            inverse_diagonal(&current, &mut inv_diag)?;
            let (agg, n_agg) = aggregate(&current, self.config.strength);
            // Stalled coarsening (weak connections: W ≈ its diagonal): stop, smooth there.
            if n_agg == 0 || 10 * n_agg > 9 * current.nrows() {
                break;
            }
            let p = if !self.config.smoothed {
                tentative_prolongator(&agg, n_agg)?
            } else {
                smoothed_prolongator(&current, &inv_diag, &agg, n_agg)?
            };
            let r = transpose(&p)?;
            let mut ap = spgemm_symbolic(&current, &p)?;
            self.marker.resize(self.marker.len().max(current.nrows()).max(n_agg), usize::MAX);
            spgemm_numeric(&current, &p, &mut ap, &mut self.marker);
            let mut coarse = spgemm_symbolic(&r, &ap)?;
            spgemm_numeric(&r, &ap, &mut coarse, &mut self.marker);
            let n = current.nrows();
            let omega = (4.0 / 3.0) / gershgorin(&current, &inv_diag);
            self.levels.push(Level { a: current, inv_diag, omega, p, r, ap, res: vec![0.0; n] });
            current = coarse;
        }
        self.coarse_a = current;
        let sizes = self.level_sizes();
        self.b = sizes.iter().map(|&n| vec![0.0; n]).collect();
        self.x = sizes.iter().map(|&n| vec![0.0; n]).collect();
        self.b[0] = Vec::new();
        self.x[0] = Vec::new();
        let nc = self.coarse_a.nrows();
        self.coarsest = if nc <= self.config.max_coarse {
            Coarsest::Direct { lu: DenseLu::new(nc), dense: Mat::zeros(nc, nc) }
        } else {
            Coarsest::Smooth { inv_diag: Vec::new(), omega: 1.0, tmp: vec![0.0; nc] }
        };
        self.setups += 1;
        self.factor_coarsest()
    }

    fn factor_coarsest(&mut self) -> Result<()> {
        match &mut self.coarsest {
            Coarsest::Direct { lu, dense } => {
                self.coarse_a.write_dense(dense.as_mut())?;
                lu.factorize(dense)
            }
            Coarsest::Smooth { inv_diag, omega, .. } => {
                inverse_diagonal(&self.coarse_a, inv_diag)?;
                *omega = 1.0 / gershgorin(&self.coarse_a, inv_diag);
                Ok(())
            }
        }
    }

    /// One V-cycle for `A x = b` from `x = 0`.
    fn vcycle(&mut self, b0: &[f64], x0: &mut [f64]) {
        let nl = self.levels.len();
        let sweeps = self.config.sweeps;
        let gs = self.config.smoother == AmgSmoother::GaussSeidel;
        // Down: pre-smooth, then residual and restriction `b_c = Pᵀ(b − A x)` in one pass.
        for l in 0..nl {
            let (bl, bn) = self.b.split_at_mut(l + 1);
            let (xl, _) = self.x.split_at_mut(l + 1);
            let lev = &mut self.levels[l];
            let (b, x): (&[f64], &mut [f64]) =
                if l == 0 { (b0, &mut *x0) } else { (&bl[l], &mut xl[l]) };
            if gs {
                x.fill(0.0);
                for _ in 0..sweeps {
                    gauss_seidel(&lev.a, &lev.inv_diag, b, x, false);
                }
            } else {
                // First Jacobi sweep from zero: x = ω D⁻¹ b.
                let w = lev.omega;
                x.iter_mut().zip(b.iter().zip(&lev.inv_diag)).for_each(|(x, (b, d))| {
                    *x = w * d * b;
                });
                for _ in 1..sweeps {
                    lev.res.copy_from_slice(x);
                    jacobi(&lev.a, &lev.inv_diag, w, b, &lev.res, x);
                }
            }
            residual_restrict(&lev.a, &lev.p, x, b, &mut bn[0]);
        }
        // Coarsest.
        {
            let (b, x): (&[f64], &mut [f64]) =
                if nl == 0 { (b0, &mut *x0) } else { (&self.b[nl], &mut self.x[nl]) };
            match &mut self.coarsest {
                Coarsest::Direct { lu, .. } => {
                    x.copy_from_slice(b);
                    // The LU was factorized successfully and the length matches.
                    if lu.solve_in_place(x).is_err() {
                        x.fill(f64::NAN);
                    }
                }
                Coarsest::Smooth { inv_diag, omega, tmp } => {
                    x.fill(0.0);
                    if gs {
                        for _ in 0..sweeps {
                            gauss_seidel(&self.coarse_a, inv_diag, b, x, false);
                            gauss_seidel(&self.coarse_a, inv_diag, b, x, true);
                        }
                    } else {
                        for _ in 0..2 * sweeps {
                            tmp.copy_from_slice(x);
                            jacobi(&self.coarse_a, inv_diag, *omega, b, tmp, x);
                        }
                    }
                }
            }
        }
        // Up: prolongate, post-smooth (the adjoint of the pre-smoother).
        for l in (0..nl).rev() {
            let (bl, _) = self.b.split_at_mut(l + 1);
            let (xl, xn) = self.x.split_at_mut(l + 1);
            let lev = &mut self.levels[l];
            let (b, x): (&[f64], &mut [f64]) =
                if l == 0 { (b0, &mut *x0) } else { (&bl[l], &mut xl[l]) };
            if gs {
                prolong_add(&lev.p, &xn[0], x, None);
                for _ in 0..sweeps {
                    gauss_seidel(&lev.a, &lev.inv_diag, b, x, true);
                }
            } else {
                // res = x + P x_c, then x = res + ω D⁻¹(b − A res): no copy back.
                prolong_add(&lev.p, &xn[0], x, Some(&mut lev.res));
                jacobi(&lev.a, &lev.inv_diag, lev.omega, b, &lev.res, x);
                for _ in 1..sweeps {
                    lev.res.copy_from_slice(x);
                    jacobi(&lev.a, &lev.inv_diag, lev.omega, b, &lev.res, x);
                }
            }
        }
    }
}

impl Preconditioner for Amg {
    fn apply(&mut self, r: &[f64], z: &mut [f64]) {
        self.vcycle(r, z);
    }
    /// The V-cycle of a symmetric `A` is symmetric; for a nonsymmetric `A` this is the same
    /// cycle (an approximation of `A⁻¹`, not of `A⁻ᵀ`), adequate only as a preconditioner.
    fn apply_transpose(&mut self, r: &[f64], z: &mut [f64]) {
        self.vcycle(r, z);
    }
}

/// `Σ|a_ij, i≠j| / Σ|a_ii|`; a zero or missing diagonal entry is [`LinalgError::Singular`].
fn off_diagonal_weight(a: &SparseMatrix) -> Result<f64> {
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let (mut off, mut diag) = (0.0, 0.0);
    for i in 0..a.nrows() {
        let mut d = 0.0;
        for k in rp[i]..rp[i + 1] {
            if ci[k] == i {
                d = v[k];
            } else {
                off += v[k].abs();
            }
        }
        if d == 0.0 {
            return Err(LinalgError::Singular { pivot: Some(i) });
        }
        diag += d.abs();
    }
    Ok(off / diag)
}

fn inverse_diagonal(a: &SparseMatrix, out: &mut Vec<f64>) -> Result<()> {
    out.resize(a.nrows(), 0.0);
    for (i, o) in out.iter_mut().enumerate() {
        let d = a.pattern().diagonal_position(i).map_or(0.0, |p| a.values()[p]);
        if d == 0.0 || !d.is_finite() {
            return Err(LinalgError::Singular { pivot: Some(i) });
        }
        *o = 1.0 / d;
    }
    Ok(())
}

/// One Gauss–Seidel sweep `x_i += (b_i − (A x)_i)/a_ii`, rows in order (`backward`: reversed).
fn gauss_seidel(a: &SparseMatrix, inv_diag: &[f64], b: &[f64], x: &mut [f64], backward: bool) {
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let mut row = |i: usize| {
        let mut s = b[i];
        for k in rp[i]..rp[i + 1] {
            s -= v[k] * x[ci[k]];
        }
        x[i] += s * inv_diag[i];
    };
    if backward {
        (0..a.nrows()).rev().for_each(&mut row);
    } else {
        (0..a.nrows()).for_each(&mut row);
    }
}

/// `x_out = x + ω D⁻¹(b − A x)`.
fn jacobi(a: &SparseMatrix, inv_diag: &[f64], omega: f64, b: &[f64], x: &[f64], out: &mut [f64]) {
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    for (i, o) in out.iter_mut().enumerate() {
        let mut s = b[i];
        for k in rp[i]..rp[i + 1] {
            s -= v[k] * x[ci[k]];
        }
        *o = x[i] + omega * inv_diag[i] * s;
    }
}

/// `b_c = Pᵀ(b − A x)`, the residual scattered through `P`'s rows as it is computed.
fn residual_restrict(a: &SparseMatrix, p: &SparseMatrix, x: &[f64], b: &[f64], bc: &mut [f64]) {
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let (prp, pci, pv) = (p.pattern().row_ptr(), p.pattern().col_idx(), p.values());
    bc.fill(0.0);
    for i in 0..a.nrows() {
        let mut s = b[i];
        for k in rp[i]..rp[i + 1] {
            s -= v[k] * x[ci[k]];
        }
        for k in prp[i]..prp[i + 1] {
            bc[pci[k]] += pv[k] * s;
        }
    }
}

/// `x += P x_c`, or `out = x + P x_c` when `out` is given.
fn prolong_add(p: &SparseMatrix, xc: &[f64], x: &mut [f64], out: Option<&mut [f64]>) {
    let (rp, ci, v) = (p.pattern().row_ptr(), p.pattern().col_idx(), p.values());
    let row = |i: usize| (rp[i]..rp[i + 1]).map(|k| v[k] * xc[ci[k]]).sum::<f64>();
    match out {
        Some(out) => {
            for (i, (o, xi)) in out.iter_mut().zip(x.iter()).enumerate() {
                *o = xi + row(i);
            }
        }
        None => {
            for (i, xi) in x.iter_mut().enumerate() {
                *xi += row(i);
            }
        }
    }
}

/// Gershgorin bound `max_i Σ_j |a_ij| / |a_ii|` of `ρ(D⁻¹A)`.
fn gershgorin(a: &SparseMatrix, inv_diag: &[f64]) -> f64 {
    let (rp, v) = (a.pattern().row_ptr(), a.values());
    (0..a.nrows())
        .map(|i| v[rp[i]..rp[i + 1]].iter().map(|x| x.abs()).sum::<f64>() * inv_diag[i].abs())
        .fold(0.0, f64::max)
}

/// Greedy three-pass aggregation on the strength graph; returns each node's aggregate and
/// the number of aggregates.
fn aggregate(a: &SparseMatrix, theta: f64) -> (Vec<usize>, usize) {
    const FREE: usize = usize::MAX;
    let n = a.nrows();
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let diag: Vec<f64> =
        (0..n).map(|i| a.pattern().diagonal_position(i).map_or(0.0, |p| v[p]).abs()).collect();
    let strong = |i: usize, k: usize| {
        let j = ci[k];
        j != i && v[k].abs() >= theta * (diag[i] * diag[j]).sqrt() && v[k] != 0.0
    };
    let mut agg = vec![FREE; n];
    let mut n_agg = 0;
    // Pass 1: roots whose strong neighbourhood is entirely free.
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        let mut has_strong = false;
        let mut all_free = true;
        for k in rp[i]..rp[i + 1] {
            if strong(i, k) {
                has_strong = true;
                all_free &= agg[ci[k]] == FREE;
            }
        }
        if !has_strong || !all_free {
            // Isolated nodes (no strong neighbour) stay singletons in pass 3.
            continue;
        }
        agg[i] = n_agg;
        for k in rp[i]..rp[i + 1] {
            if strong(i, k) {
                agg[ci[k]] = n_agg;
            }
        }
        n_agg += 1;
    }
    // Pass 2: join the aggregate of a strongly connected, already aggregated neighbour.
    let pass1 = agg.clone();
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        if let Some(k) = (rp[i]..rp[i + 1]).find(|&k| strong(i, k) && pass1[ci[k]] != FREE) {
            agg[i] = pass1[ci[k]];
        }
    }
    // Pass 3: the rest aggregate with their free strong neighbours (or alone).
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        agg[i] = n_agg;
        for k in rp[i]..rp[i + 1] {
            if strong(i, k) && agg[ci[k]] == FREE {
                agg[ci[k]] = n_agg;
            }
        }
        n_agg += 1;
    }
    (agg, n_agg)
}

/// `P₀[i, agg(i)] = 1/√|agg|` (plain aggregation).
fn tentative_prolongator(agg: &[usize], n_agg: usize) -> Result<SparseMatrix> {
    let mut size = vec![0usize; n_agg];
    agg.iter().for_each(|&g| size[g] += 1);
    let n = agg.len();
    let values = agg.iter().map(|&g| 1.0 / (size[g] as f64).sqrt()).collect();
    SparseMatrix::new(SparsePattern::new(n, n_agg, (0..=n).collect(), agg.to_vec())?, values)
}

/// `P = (I − ω D⁻¹A) P₀` with `P₀[i, agg(i)] = 1/√|agg|`, `ω = (4/3)/ρ`, `ρ` the Gershgorin
/// bound of `D⁻¹A`.
fn smoothed_prolongator(
    a: &SparseMatrix,
    inv_diag: &[f64],
    agg: &[usize],
    n_agg: usize,
) -> Result<SparseMatrix> {
    let n = a.nrows();
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let mut size = vec![0usize; n_agg];
    agg.iter().for_each(|&g| size[g] += 1);
    let p0: Vec<f64> = agg.iter().map(|&g| 1.0 / (size[g] as f64).sqrt()).collect();
    let omega = (4.0 / 3.0) / gershgorin(a, inv_diag);
    let mut row_ptr = Vec::with_capacity(n + 1);
    let mut col_idx = Vec::new();
    let mut values = Vec::new();
    let mut acc = vec![0.0; n_agg];
    let mut cols: Vec<usize> = Vec::new();
    let mut mark = vec![false; n_agg];
    row_ptr.push(0);
    for i in 0..n {
        cols.clear();
        let mut add = |c: usize, w: f64, cols: &mut Vec<usize>| {
            if !mark[c] {
                mark[c] = true;
                cols.push(c);
            }
            acc[c] += w;
        };
        add(agg[i], p0[i], &mut cols);
        for k in rp[i]..rp[i + 1] {
            let j = ci[k];
            add(agg[j], -omega * inv_diag[i] * v[k] * p0[j], &mut cols);
        }
        cols.sort_unstable();
        for &c in &cols {
            col_idx.push(c);
            values.push(acc[c]);
            acc[c] = 0.0;
            mark[c] = false;
        }
        row_ptr.push(col_idx.len());
    }
    SparseMatrix::new(SparsePattern::new(n, n_agg, row_ptr, col_idx)?, values)
}

fn transpose(a: &SparseMatrix) -> Result<SparseMatrix> {
    let (m, n) = (a.nrows(), a.ncols());
    let (rp, ci, v) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let mut count = vec![0usize; n + 1];
    ci.iter().for_each(|&j| count[j + 1] += 1);
    for j in 0..n {
        count[j + 1] += count[j];
    }
    let mut next = count.clone();
    let mut col_idx = vec![0; ci.len()];
    let mut values = vec![0.0; ci.len()];
    for i in 0..m {
        for k in rp[i]..rp[i + 1] {
            let dst = next[ci[k]];
            col_idx[dst] = i;
            values[dst] = v[k];
            next[ci[k]] += 1;
        }
    }
    SparseMatrix::new(SparsePattern::new(n, m, count, col_idx)?, values)
}

/// The pattern of `A B` (sorted columns), values zero.
fn spgemm_symbolic(a: &SparseMatrix, b: &SparseMatrix) -> Result<SparseMatrix> {
    let (m, n) = (a.nrows(), b.ncols());
    let (arp, aci) = (a.pattern().row_ptr(), a.pattern().col_idx());
    let (brp, bci) = (b.pattern().row_ptr(), b.pattern().col_idx());
    let mut mark = vec![false; n];
    let mut cols = Vec::new();
    let mut row_ptr = Vec::with_capacity(m + 1);
    let mut col_idx = Vec::new();
    row_ptr.push(0);
    for i in 0..m {
        cols.clear();
        for &k in &aci[arp[i]..arp[i + 1]] {
            for &j in &bci[brp[k]..brp[k + 1]] {
                if !mark[j] {
                    mark[j] = true;
                    cols.push(j);
                }
            }
        }
        cols.sort_unstable();
        for &j in &cols {
            mark[j] = false;
        }
        col_idx.extend_from_slice(&cols);
        row_ptr.push(col_idx.len());
    }
    Ok(SparseMatrix::zeros(SparsePattern::new(m, n, row_ptr, col_idx)?))
}

/// `C = A B` into `C`'s pattern (from [`spgemm_symbolic`]); `marker` has at least `ncols(C)`
/// entries, all `usize::MAX`, and is left so.
fn spgemm_numeric(a: &SparseMatrix, b: &SparseMatrix, c: &mut SparseMatrix, marker: &mut [usize]) {
    let (arp, aci, av) = (a.pattern().row_ptr(), a.pattern().col_idx(), a.values());
    let (brp, bci, bv) = (b.pattern().row_ptr(), b.pattern().col_idx(), b.values());
    let pattern = c.pattern().clone();
    let (crp, cci) = (pattern.row_ptr(), pattern.col_idx());
    let cv = c.values_mut();
    for i in 0..a.nrows() {
        for k in crp[i]..crp[i + 1] {
            marker[cci[k]] = k;
            cv[k] = 0.0;
        }
        for ka in arp[i]..arp[i + 1] {
            let (k, w) = (aci[ka], av[ka]);
            for kb in brp[k]..brp[k + 1] {
                cv[marker[bci[kb]]] += w * bv[kb];
            }
        }
        for k in crp[i]..crp[i + 1] {
            marker[cci[k]] = usize::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::{Cg, IdentityPreconditioner, KrylovConfig};

    /// `shift·I + L` with `L` the 5-point Laplacian (unit spacing) on the cells of an `m × m`
    /// grid where `inside(r, c)` holds; Dirichlet (`boundary = true`: missing neighbours still
    /// count on the diagonal) or no-flux.
    fn grid_matrix(
        m: usize,
        shift: f64,
        dirichlet: bool,
        inside: impl Fn(usize, usize) -> bool,
    ) -> SparseMatrix {
        let mut index = vec![usize::MAX; m * m];
        let mut n = 0;
        for r in 0..m {
            for c in 0..m {
                if inside(r, c) {
                    index[r * m + c] = n;
                    n += 1;
                }
            }
        }
        let mut t = Vec::new();
        for r in 0..m {
            for c in 0..m {
                let i = index[r * m + c];
                if i == usize::MAX {
                    continue;
                }
                let mut d = shift;
                let nbrs = [(r.wrapping_sub(1), c), (r + 1, c), (r, c.wrapping_sub(1)), (r, c + 1)];
                for (rr, cc) in nbrs {
                    let j = if rr < m && cc < m { index[rr * m + cc] } else { usize::MAX };
                    if j != usize::MAX {
                        t.push((i, j, -1.0));
                        d += 1.0;
                    } else if dirichlet {
                        d += 1.0;
                    }
                }
                t.push((i, i, d));
            }
        }
        SparseMatrix::from_triplets(n, n, &t).unwrap()
    }

    fn laplacian(m: usize) -> SparseMatrix {
        grid_matrix(m, 0.0, true, |_, _| true)
    }

    /// Asymptotic convergence factor of the stationary iteration `e ← (I − B A) e`.
    fn vcycle_rate(a: &SparseMatrix, smoother: AmgSmoother) -> f64 {
        let n = a.nrows();
        let mut amg = Amg::new(a, AmgConfig { smoother, ..AmgConfig::default() }).unwrap();
        let mut e: Vec<f64> = (0..n).map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0).collect();
        let (mut ae, mut be) = (vec![0.0; n], vec![0.0; n]);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut rate = 0.0;
        for _ in 0..12 {
            let before = norm(&e);
            a.matvec(&e, &mut ae).unwrap();
            amg.apply(&ae, &mut be);
            e.iter_mut().zip(&be).for_each(|(x, y)| *x -= y);
            rate = norm(&e) / before;
        }
        rate
    }

    #[test]
    fn vcycle_rate_on_the_laplacian_is_grid_independent() {
        for (smoother, bound) in [(AmgSmoother::GaussSeidel, 0.5), (AmgSmoother::Jacobi, 0.7)] {
            let rates: Vec<f64> =
                [32, 64, 128].iter().map(|&m| vcycle_rate(&laplacian(m), smoother)).collect();
            eprintln!("{smoother:?}: V-cycle convergence factors on 32², 64², 128²: {rates:?}");
            for &r in &rates {
                assert!(r < bound, "{smoother:?}: {rates:?}");
            }
            let spread = rates.iter().cloned().fold(0.0, f64::max)
                - rates.iter().cloned().fold(1.0, f64::min);
            assert!(spread < 0.15, "{smoother:?}: {rates:?}");
        }
    }

    fn pcg_iters(a: &mut SparseMatrix, pc: &mut dyn Preconditioner) -> usize {
        let n = a.nrows();
        let b: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
        let mut x = vec![0.0; n];
        let out = Cg::new(KrylovConfig::default().rtol(1e-8)).solve(a, pc, &b, &mut x).unwrap();
        assert!(out.is_converged(), "{out:?}");
        out.iterations
    }

    #[test]
    fn cg_with_amg_iterations_are_grid_independent() {
        for shift in [0.0, 0.05] {
            let mut counts = Vec::new();
            for m in [64, 256] {
                let mut a = grid_matrix(m, shift, true, |_, _| true);
                let mut amg = Amg::new(&a, AmgConfig::default()).unwrap();
                let with = pcg_iters(&mut a, &mut amg);
                let without = pcg_iters(&mut a, &mut IdentityPreconditioner);
                assert!(with * 5 < without, "m = {m}: {with} vs {without}");
                counts.push(with);
            }
            eprintln!("shift {shift}: CG+AMG iterations on 64², 256²: {counts:?}");
            assert!(counts[1] <= counts[0] + 3 && counts[1] <= 20, "shift {shift}: {counts:?}");
        }
    }

    #[test]
    fn the_preconditioner_is_symmetric_positive_definite() {
        // A masked (disk-shaped) no-flux domain, shifted like W = I + hγ D L.
        let a = grid_matrix(40, 0.1, false, |r, c| {
            let (x, y) = (r as f64 - 19.5, c as f64 - 19.5);
            x * x + y * y < 380.0
        });
        let n = a.nrows();
        for smoother in [AmgSmoother::Jacobi, AmgSmoother::GaussSeidel] {
            let mut amg = Amg::new(&a, AmgConfig { smoother, ..AmgConfig::default() }).unwrap();
            assert!(amg.n_levels() >= 3, "{:?}", amg.level_sizes());
            let mut rng = 12345u64;
            let mut rand = || {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            };
            for _ in 0..5 {
                let u: Vec<f64> = (0..n).map(|_| rand()).collect();
                let v: Vec<f64> = (0..n).map(|_| rand()).collect();
                let (mut bu, mut bv) = (vec![0.0; n], vec![0.0; n]);
                amg.apply(&u, &mut bu);
                amg.apply(&v, &mut bv);
                let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
                let (vbu, ubv) = (dot(&v, &bu), dot(&u, &bv));
                assert!((vbu - ubv).abs() <= 1e-12 * vbu.abs().max(ubv.abs()), "{vbu} vs {ubv}");
                assert!(dot(&u, &bu) > 0.0);
            }
        }
    }

    #[test]
    fn refresh_recomputes_the_galerkin_product_exactly() {
        let m = 24;
        let a1 = grid_matrix(m, 1.0, false, |_, _| true);
        let a2 = grid_matrix(m, 0.7, false, |_, _| true);
        let mut amg = Amg::new(&a1, AmgConfig::default()).unwrap();
        amg.update(&a2).unwrap();
        assert_eq!(amg.setups(), 1, "a close matrix keeps the aggregates");
        // Coarse operator equals Pᵀ A₂ P computed densely.
        let p = amg.levels[0].p.to_dense();
        let dense = p.transpose() * a2.to_dense() * &p;
        let next = if amg.levels.len() > 1 { &amg.levels[1].a } else { &amg.coarse_a };
        let got = next.to_dense();
        for i in 0..got.nrows() {
            for j in 0..got.ncols() {
                assert!((got[(i, j)] - dense[(i, j)]).abs() < 1e-12, "({i}, {j})");
            }
        }
        // Far from the setup's weight: the hierarchy is rebuilt.
        amg.update(&grid_matrix(m, 100.0, false, |_, _| true)).unwrap();
        assert_eq!(amg.setups(), 2);
    }

    #[test]
    fn diagonally_dominant_matrices_stop_coarsening_and_bad_input_is_an_error() {
        // All connections weak: no aggregation, the "hierarchy" is one smoothed level.
        let a = grid_matrix(30, 1e3, false, |_, _| true);
        let mut amg = Amg::new(&a, AmgConfig::default()).unwrap();
        assert_eq!(amg.n_levels(), 1);
        let b = vec![1.0; a.nrows()];
        let mut x = vec![0.0; a.nrows()];
        amg.apply(&b, &mut x);
        assert!(x.iter().all(|v| (v - 1e-3).abs() < 1e-6));
        let zero_diag =
            SparseMatrix::from_triplets(2, 2, &[(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0)]).unwrap();
        assert!(matches!(
            Amg::new(&zero_diag, AmgConfig::default()),
            Err(LinalgError::Singular { pivot: Some(1) })
        ));
        let cfg = AmgConfig { sweeps: 0, ..AmgConfig::default() };
        assert!(Amg::new(&a, cfg).is_err());
    }
}
