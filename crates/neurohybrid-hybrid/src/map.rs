//! [`DiffMap`]: a differentiable map `out = g(x; w)`, and [`TapeMap`], any network (or any
//! recorded graph) compiled once into a tape.

use crate::error::{HybridError, Result};
use neurohybrid_autodiff::{Graph, Tape, Var, Workspace};
use neurohybrid_nn::Layer;
use neurohybrid_system::ParamLayout;
use std::cell::RefCell;
use std::sync::Arc;

/// A differentiable map `out = g(x; w)`: a network, an observation model, a covariate model.
///
/// All buffers are flat `f64` slices; outputs are overwritten. Implementations used in hot
/// loops (every composition of this crate calls them once per right-hand side) should not
/// allocate per call.
pub trait DiffMap {
    /// Length of `x`.
    fn n_inputs(&self) -> usize;
    /// Length of `out`.
    fn n_outputs(&self) -> usize;
    /// Length of `w`.
    fn n_params(&self) -> usize;
    /// `out = g(x; w)`.
    fn eval(&self, x: &[f64], w: &[f64], out: &mut [f64]);
    /// `x_bar = (∂g/∂x)ᵀ cot`, `w_bar = (∂g/∂w)ᵀ cot`, both overwritten.
    ///
    /// An empty `x_bar` or `w_bar` means "not needed"; implementations may skip that work.
    fn vjp(&self, x: &[f64], w: &[f64], cot: &[f64], x_bar: &mut [f64], w_bar: &mut [f64]);
    /// `out = ∂g/∂x · v_x + ∂g/∂w · v_w`. An empty `v_x` or `v_w` is a zero tangent.
    fn jvp(&self, x: &[f64], w: &[f64], v_x: &[f64], v_w: &[f64], out: &mut [f64]);
}

impl<G: DiffMap + ?Sized> DiffMap for &G {
    fn n_inputs(&self) -> usize {
        (**self).n_inputs()
    }
    fn n_outputs(&self) -> usize {
        (**self).n_outputs()
    }
    fn n_params(&self) -> usize {
        (**self).n_params()
    }
    fn eval(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        (**self).eval(x, w, out)
    }
    fn vjp(&self, x: &[f64], w: &[f64], cot: &[f64], x_bar: &mut [f64], w_bar: &mut [f64]) {
        (**self).vjp(x, w, cot, x_bar, w_bar)
    }
    fn jvp(&self, x: &[f64], w: &[f64], v_x: &[f64], v_w: &[f64], out: &mut [f64]) {
        (**self).jvp(x, w, v_x, v_w, out)
    }
}

/// A [`DiffMap`] compiled once from an autodiff graph with inputs `"x"` and `"w"`.
///
/// [`TapeMap::new`] records a `neurohybrid_nn::Layer`; [`TapeMap::from_graph`] records any
/// graph (a cubed input followed by an MLP, a sigmoid-bounded parameter map, …). Every call
/// replays the tape in a workspace owned by the map (in a `RefCell`, like
/// `neurohybrid_system::TapeSystem`), so calls allocate nothing. The last forward point is
/// remembered: a `vjp`/`jvp` at the point of the preceding `eval` skips the forward replay.
/// `TapeMap` is `Send` but not `Sync`; `clone()` it per thread (clones share the tape).
pub struct TapeMap {
    tape: Arc<Tape>,
    n_in: usize,
    n_out: usize,
    n_w: usize,
    slot_x: usize,
    slot_w: Option<usize>,
    layout: ParamLayout,
    inner: RefCell<MapInner>,
}

/// Forward replays kept in a ring of `slots` workspaces, each keyed by its `[x..., w...]`
/// (compared bit for bit, found through a hash), so a VJP at any of the last `slots` forward
/// points replays only the reverse sweep. One slot (the default) is "the last point".
struct MapInner {
    ws: Vec<Workspace>,
    keys: Vec<Vec<f64>>,
    hashes: Vec<u64>,
    valid: Vec<bool>,
    /// The slot of the latest forward replay, and the next slot to overwrite.
    current: usize,
    next: usize,
}

impl std::fmt::Debug for TapeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeMap")
            .field("n_inputs", &self.n_in)
            .field("n_outputs", &self.n_out)
            .field("n_params", &self.n_w)
            .finish()
    }
}

impl Clone for TapeMap {
    fn clone(&self) -> Self {
        Self {
            tape: Arc::clone(&self.tape),
            n_in: self.n_in,
            n_out: self.n_out,
            n_w: self.n_w,
            slot_x: self.slot_x,
            slot_w: self.slot_w,
            layout: self.layout.clone(),
            inner: RefCell::new(MapInner::new(
                &self.tape,
                self.n_in + self.n_w,
                self.inner.borrow().ws.len(),
            )),
        }
    }
}

impl MapInner {
    fn new(tape: &Tape, len: usize, slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            ws: (0..slots).map(|_| tape.workspace()).collect(),
            keys: vec![vec![0.0; len]; slots],
            hashes: vec![0; slots],
            valid: vec![false; slots],
            current: 0,
            next: 0,
        }
    }
}

/// FNV-1a over the bits of `x` then `w`.
/// A cheap key for the forward cache's slot search: FNV-1a over the input only, in four
/// independent lanes. The parameters are left out on purpose: they change once per training
/// step while the input changes at every call, so hashing them (hundreds of values, one
/// serial multiply each) cost more than the forward pass it was saving on the spiral; a hash
/// match is always confirmed by [`same_point`] over input *and* parameters, so leaving them
/// out of the hash can cost a comparison, never a wrong hit.
fn point_hash(x: &[f64]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut lanes = [0xcbf2_9ce4_8422_2325_u64; 4];
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        for (h, v) in lanes.iter_mut().zip(c) {
            *h = (*h ^ v.to_bits()).wrapping_mul(PRIME);
        }
    }
    for (h, v) in lanes.iter_mut().zip(chunks.remainder()) {
        *h = (*h ^ v.to_bits()).wrapping_mul(PRIME);
    }
    lanes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |acc, h| (acc ^ h).wrapping_mul(PRIME))
}

fn same_point(key: &[f64], x: &[f64], w: &[f64]) -> bool {
    let (kx, kw) = key.split_at(x.len());
    kx.iter().zip(x).all(|(a, b)| a.to_bits() == b.to_bits())
        && kw.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// The parameter layout of a layer, from its named blocks (`"layer0.weight"`, …).
pub(crate) fn layer_layout(layer: &(impl Layer + ?Sized)) -> Result<ParamLayout> {
    let mut l = ParamLayout::new();
    let mut covered = 0;
    for b in layer.param_blocks() {
        if b.offset != covered {
            return Err(HybridError::InvalidConfig {
                what: format!("{} parameter blocks", layer.kind()),
                message: format!("block {:?} starts at {}, expected {covered}", b.name, b.offset),
            });
        }
        l.push(b.name.clone(), &b.shape)?;
        covered += b.len();
    }
    if covered != layer.n_params() {
        // Layers without named blocks (or with unnamed remainder): one block for the rest.
        l.push("w", &[layer.n_params() - covered])?;
    }
    Ok(l)
}

impl TapeMap {
    /// Compile `layer` applied to an input of shape `input_shape` (the flat input has the
    /// product of its entries; the output is the layer's output, flattened row-major).
    /// Parameter names are the layer's (`"layer0.weight"`, …).
    pub fn new(layer: &(impl Layer + ?Sized), input_shape: &[usize]) -> Result<Self> {
        let layout = layer_layout(layer)?;
        let n_w = layer.n_params();
        Self::from_graph(input_shape, n_w, |g, x, w| Ok(layer.forward(g, x, w)?))?
            .with_layout(layout)
    }

    /// Compile the graph that `build(g, x, w)` records, with `x` an input of shape
    /// `input_shape` and `w` a rank-1 input of length `n_params`; the returned `Var` is the
    /// output (any shape, flattened row-major). The layout is one block `"w"`; name the blocks
    /// with [`TapeMap::with_layout`].
    pub fn from_graph(
        input_shape: &[usize],
        n_params: usize,
        build: impl FnOnce(&mut Graph, Var, Var) -> Result<Var>,
    ) -> Result<Self> {
        let mut g = Graph::new();
        let x = g.input("x", input_shape)?;
        let w = g.input("w", &[n_params])?;
        let out = build(&mut g, x, w)?;
        let n_out: usize = g.shape(out)?.iter().product();
        let flat = g.reshape(out, &[n_out])?;
        let tape = g.compile(&[flat])?;
        let layout = ParamLayout::new().with("w", &[n_params])?;
        Self::from_tape(tape, layout)
    }

    /// Wrap a compiled tape with inputs `"x"` (and `"w"`, optional) and one output.
    pub fn from_tape(tape: impl Into<Arc<Tape>>, layout: ParamLayout) -> Result<Self> {
        let tape = tape.into();
        let bad = |message: String| HybridError::InvalidConfig { what: "map tape".into(), message };
        let slot_x = tape.input_index("x").ok_or_else(|| bad("no input named \"x\"".into()))?;
        let slot_w = tape.input_index("w");
        if tape.n_inputs() != 1 + usize::from(slot_w.is_some()) {
            return Err(bad(format!("expected inputs \"x\" and \"w\", has {}", tape.n_inputs())));
        }
        if tape.n_outputs() != 1 {
            return Err(bad(format!("expected one output, has {}", tape.n_outputs())));
        }
        let n_in = tape.input_len(slot_x);
        let n_w = slot_w.map_or(0, |i| tape.input_len(i));
        let n_out = tape.output_len(0);
        if layout.len() != n_w {
            return Err(HybridError::LengthMismatch {
                what: "map parameter layout".into(),
                expected: n_w,
                got: layout.len(),
            });
        }
        let inner = RefCell::new(MapInner::new(&tape, n_in + n_w, 1));
        Ok(Self { tape, n_in, n_out, n_w, slot_x, slot_w, layout, inner })
    }

    /// Replace the parameter layout (same total length).
    pub fn with_layout(mut self, layout: ParamLayout) -> Result<Self> {
        if layout.len() != self.n_w {
            return Err(HybridError::LengthMismatch {
                what: "map parameter layout".into(),
                expected: self.n_w,
                got: layout.len(),
            });
        }
        self.layout = layout;
        Ok(self)
    }

    /// Keep the last `slots` (≥ 1) forward replays instead of only the last one, so VJPs at
    /// any of those points skip their forward replay: a discrete adjoint whose forward pass is
    /// cached (`Checkpointing::All`) asks for VJPs at all stage points of the solve in reverse
    /// order, which one slot never serves. Memory: `slots` tape workspaces.
    pub fn with_forward_cache(mut self, slots: usize) -> Self {
        self.inner = RefCell::new(MapInner::new(&self.tape, self.n_in + self.n_w, slots));
        self
    }

    /// Names of the parameter blocks.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The compiled tape.
    pub fn tape(&self) -> &Arc<Tape> {
        &self.tape
    }

    /// The slot whose workspace holds the forward replay at `(x, w)`, replaying it if none.
    fn ensure_forward(&self, inner: &mut MapInner, x: &[f64], w: &[f64]) -> usize {
        let w = &w[..self.n_w];
        let c = inner.current;
        if inner.valid[c] && same_point(&inner.keys[c], x, w) {
            return c;
        }
        let slots = inner.ws.len();
        let hash = if slots > 1 { point_hash(x) } else { 0 };
        if slots > 1 {
            let found = (0..slots).find(|&k| {
                inner.valid[k] && inner.hashes[k] == hash && same_point(&inner.keys[k], x, w)
            });
            if let Some(k) = found {
                inner.current = k;
                return k;
            }
        }
        let k = inner.next;
        inner.next = (k + 1) % slots;
        let mut ins: [&[f64]; 2] = [&[], &[]];
        ins[self.slot_x] = x;
        if let Some(i) = self.slot_w {
            ins[i] = w;
        }
        self.tape
            .forward(&mut inner.ws[k], &ins[..self.tape.n_inputs()])
            .expect("input lengths were validated against the tape at construction");
        inner.keys[k][..self.n_in].copy_from_slice(x);
        inner.keys[k][self.n_in..].copy_from_slice(w);
        inner.hashes[k] = hash;
        inner.valid[k] = true;
        inner.current = k;
        k
    }
}

impl DiffMap for TapeMap {
    fn n_inputs(&self) -> usize {
        self.n_in
    }
    fn n_outputs(&self) -> usize {
        self.n_out
    }
    fn n_params(&self) -> usize {
        self.n_w
    }
    fn eval(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        let k = self.ensure_forward(&mut inner, x, w);
        out.copy_from_slice(inner.ws[k].output(0));
    }
    fn vjp(&self, x: &[f64], w: &[f64], cot: &[f64], x_bar: &mut [f64], w_bar: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        let ws = self.ensure_forward(&mut inner, x, w);
        let mut slots: [&mut [f64]; 2] = [&mut [], &mut []];
        let k = self.tape.n_inputs();
        if let Some(i) = self.slot_w {
            slots[i] = w_bar;
        } else {
            w_bar.fill(0.0);
        }
        slots[self.slot_x] = x_bar;
        self.tape
            .vjp(&mut inner.ws[ws], &[cot], &mut slots[..k])
            .expect("cotangent lengths were validated against the tape at construction");
    }
    fn jvp(&self, x: &[f64], w: &[f64], v_x: &[f64], v_w: &[f64], out: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        let ws = self.ensure_forward(&mut inner, x, w);
        let mut tans: [&[f64]; 2] = [&[], &[]];
        tans[self.slot_x] = v_x;
        if let Some(i) = self.slot_w {
            tans[i] = v_w;
        }
        let k = self.tape.n_inputs();
        self.tape
            .jvp(&mut inner.ws[ws], &tans[..k], &mut [out])
            .expect("tangent lengths were validated against the tape at construction");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_nn::{Activation, Init, Mlp, initialize};

    #[test]
    fn forward_cache_serves_earlier_points_with_the_same_results() {
        let net = Mlp::new(&[3, 5, 2], Activation::Tanh).unwrap();
        let one = TapeMap::new(&net, &[3]).unwrap();
        let ring = TapeMap::new(&net, &[3]).unwrap().with_forward_cache(4);
        let w = initialize(&net, Init::GlorotUniform, 5);
        let xs: Vec<[f64; 3]> =
            (0..6).map(|i| [0.1 * i as f64, -0.2, 0.3 + 0.05 * i as f64]).collect();
        let mut o = [0.0; 2];
        for x in &xs {
            ring.eval(x, &w, &mut o);
        }
        // Reverse order, as a discrete adjoint asks: the last 4 points are in the ring, the
        // first two were evicted and are replayed.
        for x in xs.iter().rev() {
            let (mut a, mut b) =
                ((vec![0.0; 3], vec![0.0; w.len()]), (vec![0.0; 3], vec![0.0; w.len()]));
            one.vjp(x, &w, &[0.7, -0.4], &mut a.0, &mut a.1);
            ring.vjp(x, &w, &[0.7, -0.4], &mut b.0, &mut b.1);
            assert_eq!(a, b);
            let (mut ja, mut jb) = ([0.0; 2], [0.0; 2]);
            one.jvp(x, &w, &[0.1, 0.2, -0.3], &[], &mut ja);
            ring.jvp(x, &w, &[0.1, 0.2, -0.3], &[], &mut jb);
            assert_eq!(ja, jb);
        }
        let mut w2 = w.clone();
        w2[3] += 1e-3;
        let (mut oa, mut ob) = ([0.0; 2], [0.0; 2]);
        one.eval(&xs[5], &w2, &mut oa);
        ring.eval(&xs[5], &w2, &mut ob);
        assert_eq!(oa, ob, "a changed w is a different point");
        assert_eq!(ring.clone().inner.borrow().ws.len(), 4, "clones keep the ring size");
    }

    #[test]
    fn tape_map_matches_finite_differences() {
        let net = Mlp::new(&[3, 5, 2], Activation::Tanh).unwrap();
        let map = TapeMap::new(&net, &[3]).unwrap();
        assert_eq!(
            (map.n_inputs(), map.n_outputs(), map.n_params()),
            (3, 2, 3 * 5 + 5 + 5 * 2 + 2)
        );
        assert_eq!(map.layout().range("layer0.bias").unwrap(), 15..20);
        let w = initialize(&net, Init::GlorotUniform, 3);
        let x = [0.3, -0.2, 0.7];
        let cot = [0.6, -1.1];
        let (mut xb, mut wb) = (vec![0.0; 3], vec![0.0; w.len()]);
        map.vjp(&x, &w, &cot, &mut xb, &mut wb);
        let f = |x: &[f64], w: &[f64]| {
            let mut o = [0.0; 2];
            map.eval(x, w, &mut o);
            o[0] * cot[0] + o[1] * cot[1]
        };
        let h = 1e-6;
        for i in 0..3 {
            let (mut a, mut b) = (x, x);
            a[i] += h;
            b[i] -= h;
            assert!(((f(&a, &w) - f(&b, &w)) / (2.0 * h) - xb[i]).abs() < 1e-8);
        }
        for j in [0, 7, 19, 26] {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[j] += h;
            b[j] -= h;
            assert!(((f(&x, &a) - f(&x, &b)) / (2.0 * h) - wb[j]).abs() < 1e-8);
        }
    }
}
