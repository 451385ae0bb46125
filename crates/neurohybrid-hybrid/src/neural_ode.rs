//! [`NeuralOde`]: `dy/dt = g(y (, t); w)` for any [`DiffMap`] (Chen et al. 2018,
//! arXiv:1806.07366).

use crate::error::{HybridError, Result};
use crate::map::{DiffMap, TapeMap};
use crate::network::Parameterized;
use neurohybrid_system::{
    CsrMatrix, Jacobian, JacobianColoring, Jvp, OdeSystem, ParamLayout, SparsityPattern, Vjp,
    dense_pattern,
};
use std::cell::RefCell;

/// `dy/dt = g(y; w)` (map inputs `n`) or `g([y, t]; w)` (map inputs `n + 1`, time last), with
/// `n = map.n_outputs()`. Parameters are the map's `w`.
///
/// The Jacobian is dense (`n` JVPs per matrix by default; [`NeuralOde::with_sparsity`] for a
/// batched state whose rows do not couple).
pub struct NeuralOde<G> {
    map: G,
    n: usize,
    time: bool,
    layout: ParamLayout,
    coloring: JacobianColoring,
    scratch: RefCell<Scratch>,
}

struct Scratch {
    /// `[y, t]` (or `y`), the map's input.
    x: Vec<f64>,
    /// `[v_y, 0]`.
    v: Vec<f64>,
    x_bar: Vec<f64>,
    seed: Vec<f64>,
    tangent: Vec<f64>,
}

impl Scratch {
    fn new(n_in: usize, n: usize) -> Self {
        Self {
            x: vec![0.0; n_in],
            v: vec![0.0; n_in],
            x_bar: vec![0.0; n_in],
            seed: vec![0.0; n],
            tangent: vec![0.0; n],
        }
    }
}

impl<G: Clone> Clone for NeuralOde<G> {
    fn clone(&self) -> Self {
        let s = self.scratch.borrow();
        Self {
            map: self.map.clone(),
            n: self.n,
            time: self.time,
            layout: self.layout.clone(),
            coloring: self.coloring.clone(),
            scratch: RefCell::new(Scratch::new(s.x.len(), self.n)),
        }
    }
}

impl<G> std::fmt::Debug for NeuralOde<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeuralOde")
            .field("n_states", &self.n)
            .field("time_input", &self.time)
            .finish()
    }
}

impl<G: DiffMap> NeuralOde<G> {
    /// `dy/dt = map(y (, t); w)`: `map.n_inputs()` is `map.n_outputs()` (autonomous) or one
    /// more (the time is the last input).
    pub fn new(map: G) -> Result<Self> {
        let (n, n_in) = (map.n_outputs(), map.n_inputs());
        let time = match n_in.checked_sub(n) {
            Some(0) => false,
            Some(1) => true,
            _ => {
                return Err(HybridError::InvalidConfig {
                    what: "neural ODE map".into(),
                    message: format!(
                        "{n_in} inputs for {n} outputs (need n inputs, or n + 1 with time)"
                    ),
                });
            }
        };
        let layout = ParamLayout::new().with("w", &[map.n_params()])?;
        let coloring = JacobianColoring::new(dense_pattern(n))?;
        Ok(Self { map, n, time, layout, coloring, scratch: RefCell::new(Scratch::new(n_in, n)) })
    }

    /// Use `pattern` for the state Jacobian (it must contain every structural nonzero).
    pub fn with_sparsity(mut self, pattern: SparsityPattern) -> Result<Self> {
        if pattern.major_dim() != self.n || pattern.minor_dim() != self.n {
            return Err(HybridError::LengthMismatch {
                what: "neural ODE Jacobian pattern".into(),
                expected: self.n,
                got: pattern.major_dim(),
            });
        }
        self.coloring = JacobianColoring::new(pattern)?;
        Ok(self)
    }

    /// Name the parameter blocks (total length `map.n_params()`).
    pub fn with_layout(mut self, layout: ParamLayout) -> Result<Self> {
        if layout.len() != self.map.n_params() {
            return Err(HybridError::LengthMismatch {
                what: "neural ODE parameter layout".into(),
                expected: self.map.n_params(),
                got: layout.len(),
            });
        }
        self.layout = layout;
        Ok(self)
    }

    /// Whether the map reads the time.
    pub fn has_time_input(&self) -> bool {
        self.time
    }

    /// The map.
    pub fn map(&self) -> &G {
        &self.map
    }

    /// The parameter layout (the map's blocks).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    fn load(&self, s: &mut Scratch, t: f64, y: &[f64]) {
        s.x[..self.n].copy_from_slice(y);
        if self.time {
            s.x[self.n] = t;
        }
    }
}

impl NeuralOde<TapeMap> {
    /// A neural ODE on a [`TapeMap`], keeping the map's parameter names.
    pub fn from_tape_map(map: TapeMap) -> Result<Self> {
        let layout = map.layout().clone();
        Self::new(map)?.with_layout(layout)
    }
}

impl<G> Parameterized for NeuralOde<G> {
    fn param_layout(&self) -> Result<ParamLayout> {
        Ok(self.layout.clone())
    }
}

impl<G: DiffMap> OdeSystem for NeuralOde<G> {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        self.map.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        if !self.time {
            return self.map.eval(y, p, dy);
        }
        let mut s = self.scratch.borrow_mut();
        self.load(&mut s, t, y);
        self.map.eval(&s.x, p, dy);
    }
}

impl<G: DiffMap> Vjp for NeuralOde<G> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        if !self.time {
            return self.map.vjp(y, p, w, w_y, w_p);
        }
        let mut s = self.scratch.borrow_mut();
        let s = &mut *s;
        self.load(s, t, y);
        self.map.vjp(&s.x, p, w, &mut s.x_bar, w_p);
        w_y.copy_from_slice(&s.x_bar[..self.n]);
    }
}

impl<G: DiffMap> Jvp for NeuralOde<G> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        if !self.time {
            return self.map.jvp(y, p, v_y, v_p, out);
        }
        let mut s = self.scratch.borrow_mut();
        let s = &mut *s;
        self.load(s, t, y);
        s.v[..self.n].copy_from_slice(v_y);
        s.v[self.n] = 0.0; // time is not perturbed
        self.map.jvp(&s.x, p, &s.v, v_p, out);
    }
}

impl<G: DiffMap> Jacobian for NeuralOde<G> {
    fn sparsity(&self) -> &SparsityPattern {
        self.coloring.pattern()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        // Take the scratch out of the cell so `fill` can call `jvp` (which borrows it).
        let (mut seed, mut tangent) = {
            let mut s = self.scratch.borrow_mut();
            (std::mem::take(&mut s.seed), std::mem::take(&mut s.tangent))
        };
        self.coloring.fill(self, t, y, p, &mut seed, &mut tangent, out);
        let mut s = self.scratch.borrow_mut();
        s.seed = seed;
        s.tangent = tangent;
    }
}
