//! Small masked convolutions on 2D/3D voxel grids, for solver-in-the-loop correctors.
//!
//! "Same" cross-correlation (the convention of PyTorch's `Conv2d` and dfdx's `Conv2D`) with an
//! odd `k×k(×k)` stencil and zero padding. With a mask, inactive cells (outside the brain, CSF)
//! read as zero — so they never leak into active neighbours — and produce zero, which keeps a
//! learned correction from creating mass where the mechanistic solver has no unknowns. The op is
//! linear in the input and in the kernel separately, so forward, VJP and JVP are all the same
//! stencil loop read in different directions; every loop is parallel over cells.

use std::sync::Arc;

use neurohybrid_autodiff::{AutodiffError, CustomOp, Graph, Var};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::layer::{Layer, check_params};
use crate::parallel::{for_rows, for_rows_reduce};
use crate::params::{BlockKind, ParamBlock};

/// A masked "same" convolution on a 2D or 3D grid.
///
/// Input layout: channel-major `[in_channels, d0, d1(, d2)]` (row-major, last axis fastest), or
/// `[cells]` for one channel; output `[out_channels, d0, d1(, d2)]`, or `[cells]` when both the
/// input is rank 1 and `out_channels == 1`. Parameters: `weight`
/// `[out_channels, in_channels, k, k(, k)]` (the layout of PyTorch and dfdx), then `bias`
/// `[out_channels]` if enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    /// Grid extents, 2 or 3 of them.
    pub dims: Vec<usize>,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stencil width (odd: 1, 3, 5, ...).
    pub kernel: usize,
    /// Whether a per-output-channel bias is added (on active cells only).
    pub bias: bool,
    /// Active cells (`true`), row-major over `dims`; `None` means all active.
    pub mask: Option<Vec<bool>>,
}

impl Conv {
    /// A 3×3 (2D) or 3×3×3 (3D) convolution with bias and no mask.
    pub fn new(dims: &[usize], in_channels: usize, out_channels: usize) -> Result<Self> {
        let c = Conv {
            dims: dims.to_vec(),
            in_channels,
            out_channels,
            kernel: 3,
            bias: true,
            mask: None,
        };
        c.validate()?;
        Ok(c)
    }

    /// Sets the stencil width.
    pub fn with_kernel(mut self, kernel: usize) -> Result<Self> {
        self.kernel = kernel;
        self.validate()?;
        Ok(self)
    }

    /// Sets the mask of active cells.
    pub fn with_mask(mut self, mask: Vec<bool>) -> Result<Self> {
        self.mask = Some(mask);
        self.validate()?;
        Ok(self)
    }

    /// Enables or disables the bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Checks dimensions, channels, stencil and mask length.
    pub fn validate(&self) -> Result<()> {
        if !(2..=3).contains(&self.dims.len()) || self.dims.contains(&0) {
            return Err(NnError::config(
                "Conv dims",
                format!("need 2 or 3 positive extents, got {:?}", self.dims),
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(NnError::config("Conv channels", "channel counts must be positive"));
        }
        if self.kernel.is_multiple_of(2) {
            return Err(NnError::config(
                "Conv kernel",
                format!("stencil width {} must be odd", self.kernel),
            ));
        }
        if let Some(m) = &self.mask
            && m.len() != self.cells()
        {
            return Err(NnError::config(
                "Conv mask",
                format!("{} entries for {} cells", m.len(), self.cells()),
            ));
        }
        Ok(())
    }

    /// Number of grid cells.
    pub fn cells(&self) -> usize {
        self.dims.iter().product()
    }

    fn kernel_len(&self) -> usize {
        self.kernel.pow(self.dims.len() as u32)
    }
}

impl Layer for Conv {
    fn kind(&self) -> &'static str {
        "Conv"
    }
    fn n_params(&self) -> usize {
        self.out_channels * self.in_channels * self.kernel_len()
            + if self.bias { self.out_channels } else { 0 }
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        let nk = self.kernel_len();
        let mut shape = vec![self.out_channels, self.in_channels];
        shape.extend(std::iter::repeat_n(self.kernel, self.dims.len()));
        let mut blocks = vec![ParamBlock {
            name: "weight".into(),
            offset: 0,
            shape,
            kind: BlockKind::Weight {
                fan_in: self.in_channels * nk,
                fan_out: self.out_channels * nk,
            },
        }];
        if self.bias {
            blocks.push(ParamBlock {
                name: "bias".into(),
                offset: self.out_channels * self.in_channels * nk,
                shape: vec![self.out_channels],
                kind: BlockKind::Bias,
            });
        }
        blocks
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let cells = self.cells();
        let mut full = vec![self.in_channels];
        full.extend(&self.dims);
        let ok = (input.len() == 1 && self.in_channels == 1 && input[0] == cells)
            || input == full.as_slice()
            || input == [self.in_channels, cells];
        if !ok {
            return Err(NnError::InputShape {
                layer: "Conv",
                expected: format!(
                    "{full:?}, [{}, {cells}] or [{cells}] for one channel",
                    self.in_channels
                ),
                got: input.to_vec(),
            });
        }
        if input.len() == 1 && self.out_channels == 1 {
            return Ok(vec![cells]);
        }
        let mut out = vec![self.out_channels];
        out.extend(&self.dims);
        Ok(out)
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        check_params(g, p, self.n_params())?;
        let out_shape = self.output_shape(g.shape(x)?)?;
        let y = g.custom(Arc::new(ConvOp::new(self)), &[x, p])?;
        Ok(g.reshape(y, &out_shape)?)
    }
}

/// The stencil kernel behind [`Conv`]: operands `x`, `p` (kernel then bias), output rank 1
/// `[out_channels * cells]`.
pub(crate) struct ConvOp {
    dims: [usize; 3],
    cin: usize,
    cout: usize,
    nk: usize,
    bias: bool,
    mask: Option<Arc<[bool]>>,
    /// Stencil taps: (kernel index, offset per axis).
    taps: Vec<(usize, [isize; 3])>,
}

impl ConvOp {
    pub(crate) fn new(c: &Conv) -> Self {
        let mut dims = [1; 3];
        let mut ext = [1; 3];
        for (a, &d) in c.dims.iter().enumerate() {
            dims[a] = d;
            ext[a] = c.kernel;
        }
        let mut taps = Vec::new();
        for a in 0..ext[0] {
            for b in 0..ext[1] {
                for e in 0..ext[2] {
                    let off = |i: usize, k: usize| i as isize - (k / 2) as isize;
                    taps.push((
                        (a * ext[1] + b) * ext[2] + e,
                        [off(a, ext[0]), off(b, ext[1]), off(e, ext[2])],
                    ));
                }
            }
        }
        ConvOp {
            dims,
            cin: c.in_channels,
            cout: c.out_channels,
            nk: ext.iter().product(),
            bias: c.bias,
            mask: c.mask.as_ref().map(|m| Arc::from(m.as_slice())),
            taps,
        }
    }

    fn cells(&self) -> usize {
        self.dims.iter().product()
    }

    #[inline]
    fn active(&self, c: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[c])
    }

    /// Calls `f(kernel_index, neighbour)` for every in-bounds, active neighbour of cell `c`
    /// (at `c + offset`; `sign = -1` walks the mirrored stencil, for the input VJP).
    #[inline]
    fn neighbours(&self, c: usize, sign: isize, mut f: impl FnMut(usize, usize)) {
        let [_, d1, d2] = self.dims;
        let coords = [(c / (d1 * d2)) as isize, ((c / d2) % d1) as isize, (c % d2) as isize];
        for &(k, off) in &self.taps {
            let mut q = 0usize;
            let mut inside = true;
            for a in 0..3 {
                let v = coords[a] + sign * off[a];
                if v < 0 || v >= self.dims[a] as isize {
                    inside = false;
                    break;
                }
                q = q * self.dims[a] + v as usize;
            }
            if inside && self.active(q) {
                f(k, q);
            }
        }
    }

    fn kidx(&self, co: usize, ci: usize, k: usize) -> usize {
        (co * self.cin + ci) * self.nk + k
    }

    /// `out (+)= conv(x; kern) + bias` on active cells (zero elsewhere when overwriting).
    fn apply(&self, x: &[f64], kern: &[f64], bias: Option<&[f64]>, out: &mut [f64], add: bool) {
        let cells = self.cells();
        for co in 0..self.cout {
            let chan = &mut out[co * cells..(co + 1) * cells];
            for_rows(cells, 1, chan, |range, ys| {
                for (c, y) in range.zip(ys.iter_mut()) {
                    if !self.active(c) {
                        if !add {
                            *y = 0.0;
                        }
                        continue;
                    }
                    let mut acc = bias.map_or(0.0, |b| b[co]);
                    self.neighbours(c, 1, |k, q| {
                        for ci in 0..self.cin {
                            acc += kern[self.kidx(co, ci, k)] * x[ci * cells + q];
                        }
                    });
                    if add {
                        *y += acc;
                    } else {
                        *y = acc;
                    }
                }
            });
        }
    }
}

impl CustomOp for ConvOp {
    fn name(&self) -> &str {
        "nn.conv"
    }
    fn output_shape(&self, shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        let np = self.cout * self.cin * self.nk + if self.bias { self.cout } else { 0 };
        let ok = shapes.len() == 2
            && shapes[0].iter().product::<usize>() == self.cin * self.cells()
            && shapes[1].iter().product::<usize>() == np;
        if !ok {
            return Err(AutodiffError::Custom {
                op: self.name().into(),
                message: format!(
                    "operands {shapes:?} do not fit {} cells, {np} parameters",
                    self.cells()
                ),
            });
        }
        Ok(vec![self.cout * self.cells()])
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        let (x, p) = (inputs[0], inputs[1]);
        let nkern = self.cout * self.cin * self.nk;
        let bias = self.bias.then(|| &p[nkern..]);
        self.apply(x, &p[..nkern], bias, out, false);
    }

    fn vjp(&self, inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let (x, p) = (inputs[0], inputs[1]);
        let [x_cot, p_cot] = in_cot else { return };
        let cells = self.cells();
        if !x_cot.is_empty() {
            // x̄[ci, q] = Σ_co Σ_taps K[co, ci, k] ȳ[co, q - off]: the mirrored stencil, a gather
            // (no write conflicts, so parallel over q).
            for ci in 0..self.cin {
                let chan = &mut x_cot[ci * cells..(ci + 1) * cells];
                for_rows(cells, 1, chan, |range, xs| {
                    for (q, xq) in range.zip(xs.iter_mut()) {
                        if !self.active(q) {
                            continue;
                        }
                        let mut acc = 0.0;
                        self.neighbours(q, -1, |k, c| {
                            for co in 0..self.cout {
                                acc += p[self.kidx(co, ci, k)] * w[co * cells + c];
                            }
                        });
                        *xq += acc;
                    }
                });
            }
        }
        if !p_cot.is_empty() {
            let nkern = self.cout * self.cin * self.nk;
            for_rows_reduce(cells, 0, &mut [], p_cot, |range, _, part| {
                for c in range {
                    if !self.active(c) {
                        continue;
                    }
                    for co in 0..self.cout {
                        let wy = w[co * cells + c];
                        if wy == 0.0 {
                            continue;
                        }
                        if self.bias {
                            part[nkern + co] += wy;
                        }
                        self.neighbours(c, 1, |k, q| {
                            for ci in 0..self.cin {
                                part[self.kidx(co, ci, k)] += wy * x[ci * cells + q];
                            }
                        });
                    }
                }
            });
        }
    }

    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let (x, p) = (inputs[0], inputs[1]);
        let (tx, tp) = (tangents[0], tangents[1]);
        let nkern = self.cout * self.cin * self.nk;
        // Bilinear: d(conv(x; K) + b) = conv(ẋ; K) + conv(x; K̇) + ḃ.
        out_tan.iter_mut().for_each(|v| *v = 0.0);
        if !tx.is_empty() {
            self.apply(tx, &p[..nkern], None, out_tan, true);
        }
        if !tp.is_empty() {
            let bias = self.bias.then(|| &tp[nkern..]);
            self.apply(x, &tp[..nkern], bias, out_tan, true);
        }
    }
}
