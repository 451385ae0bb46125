//! [`TapeSystem`]: a right-hand side recorded once as an autodiff graph, replayed as an
//! [`OdeSystem`] with exact VJP, JVP and (colored) Jacobian.

use crate::error::{Result, SystemError};
use crate::sparsity::{CsrMatrix, JacobianColoring, dense_pattern};
use crate::traits::{Jacobian, Jvp, OdeSystem, Vjp};
use nalgebra_sparse::pattern::SparsityPattern;
use neurohybrid_autodiff::{Tape, Workspace};
use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

/// `f(t, y, p)` compiled from a graph with inputs `"y"` (`[n]`), optionally `"t"` (`[]`) and
/// `"p"` (`[m]`), and one output of shape `[n]`.
///
/// Every call replays the compiled tape in a [`Workspace`] owned by this system and allocated
/// once, so `rhs`, `vjp`, `jvp` and `jacobian` allocate nothing. The workspace sits in a
/// `RefCell`: methods take `&self` like every `OdeSystem`, a borrow check is one flag test, and
/// no lock is needed because a solve is single-threaded. `TapeSystem` is therefore `Send` but
/// not `Sync`: for parallel solves `clone()` it per thread — clones share the immutable tape
/// (`Arc`) and get their own workspace.
///
/// The last forward point is remembered: a `vjp`/`jvp` at the point of the preceding `rhs` (the
/// common case in steppers and adjoints) skips the forward replay.
pub struct TapeSystem {
    tape: Arc<Tape>,
    n: usize,
    m: usize,
    /// Positions of `t`, `y`, `p` among the tape inputs (`None`: not an input).
    slot_t: Option<usize>,
    slot_y: usize,
    slot_p: Option<usize>,
    /// The Jacobian's coloring, built on first use: the default dense `n × n` pattern costs
    /// O(n²) memory and a greedy coloring, which a system that is only ever integrated
    /// explicitly (or that gets [`TapeSystem::with_sparsity`] next) should not pay for.
    coloring: OnceCell<JacobianColoring>,
    inner: RefCell<Inner>,
}

struct Inner {
    ws: Workspace,
    /// `[t, y..., p...]` of the last forward replay.
    last: Vec<f64>,
    last_valid: bool,
    seed: Vec<f64>,
    tangent: Vec<f64>,
}

impl std::fmt::Debug for TapeSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeSystem").field("n_states", &self.n).field("n_params", &self.m).finish()
    }
}

impl Clone for TapeSystem {
    fn clone(&self) -> Self {
        Self {
            tape: Arc::clone(&self.tape),
            n: self.n,
            m: self.m,
            slot_t: self.slot_t,
            slot_y: self.slot_y,
            slot_p: self.slot_p,
            coloring: self.coloring.clone(),
            inner: RefCell::new(Inner::new(&self.tape, self.n, self.m)),
        }
    }
}

impl Inner {
    fn new(tape: &Tape, n: usize, m: usize) -> Self {
        Self {
            ws: tape.workspace(),
            last: vec![0.0; 1 + n + m],
            last_valid: false,
            seed: vec![0.0; n],
            tangent: vec![0.0; n],
        }
    }
}

fn signature(reason: String) -> SystemError {
    SystemError::TapeSignature { reason }
}

impl TapeSystem {
    /// Wrap a compiled tape; its Jacobian uses a dense pattern (`n` JVPs per Jacobian), colored
    /// on the first Jacobian request, not here.
    pub fn new(tape: impl Into<Arc<Tape>>) -> Result<Self> {
        let tape = tape.into();
        let slot_y =
            tape.input_index("y").ok_or_else(|| signature("no input named \"y\"".into()))?;
        let slot_t = tape.input_index("t");
        let slot_p = tape.input_index("p");
        for i in 0..tape.n_inputs() {
            if Some(i) != slot_t && i != slot_y && Some(i) != slot_p {
                return Err(signature(format!("unexpected input {:?}", tape.input_name(i))));
            }
        }
        let rank1 = |i: usize, what: &str| -> Result<usize> {
            match tape.input_shape(i) {
                [k] => Ok(*k),
                s => Err(signature(format!("input {what:?} must have shape [k], has {s:?}"))),
            }
        };
        let n = rank1(slot_y, "y")?;
        let m = slot_p.map(|i| rank1(i, "p")).transpose()?.unwrap_or(0);
        if let Some(i) = slot_t
            && !tape.input_shape(i).is_empty()
        {
            return Err(signature(format!(
                "input \"t\" must be a scalar, has {:?}",
                tape.input_shape(i)
            )));
        }
        if tape.n_outputs() != 1 || tape.output_shape(0) != [n] {
            return Err(signature(format!("need one output of shape [{n}]")));
        }
        let coloring = OnceCell::new();
        let inner = RefCell::new(Inner::new(&tape, n, m));
        Ok(Self { tape, n, m, slot_t, slot_y, slot_p, coloring, inner })
    }

    /// Use `pattern` (`n × n`, containing every structural nonzero of `∂f/∂y`) for the Jacobian,
    /// so it costs one JVP per color instead of `n`.
    pub fn with_sparsity(mut self, pattern: SparsityPattern) -> Result<Self> {
        if pattern.major_dim() != self.n {
            return Err(SystemError::LengthMismatch {
                what: "Jacobian pattern rows",
                expected: self.n,
                found: pattern.major_dim(),
            });
        }
        self.coloring = OnceCell::from(JacobianColoring::new(pattern)?);
        Ok(self)
    }

    /// The compiled tape.
    pub fn tape(&self) -> &Arc<Tape> {
        &self.tape
    }

    /// Put `t`, `y`, `p` into the slots of a tape-input array.
    fn arrange<'a>(
        &self,
        t: &'a [f64],
        y: &'a [f64],
        p: &'a [f64],
        out: &mut [&'a [f64]; 3],
    ) -> usize {
        out[self.slot_y] = y;
        if let Some(i) = self.slot_t {
            out[i] = t;
        }
        if let Some(i) = self.slot_p {
            out[i] = p;
        }
        self.tape.n_inputs()
    }

    /// Replay forward at `(t, y, p)` unless the workspace already holds that point.
    fn ensure_forward(&self, inner: &mut Inner, t: f64, y: &[f64], p: &[f64]) {
        let same = inner.last_valid
            && inner.last[0].to_bits() == t.to_bits()
            && inner.last[1..=self.n].iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
            && inner.last[1 + self.n..].iter().zip(p).all(|(a, b)| a.to_bits() == b.to_bits());
        if same {
            return;
        }
        let tt = [t];
        let mut ins: [&[f64]; 3] = [&[], &[], &[]];
        let k = self.arrange(&tt, y, p, &mut ins);
        self.tape
            .forward(&mut inner.ws, &ins[..k])
            .expect("input lengths were validated against the tape at construction");
        inner.last[0] = t;
        inner.last[1..=self.n].copy_from_slice(y);
        inner.last[1 + self.n..].copy_from_slice(&p[..self.m]);
        inner.last_valid = true;
    }
}

impl OdeSystem for TapeSystem {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        self.m
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        self.ensure_forward(&mut inner, t, y, p);
        dy.copy_from_slice(inner.ws.output(0));
    }
}

impl Vjp for TapeSystem {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        self.ensure_forward(&mut inner, t, y, p);
        let inner = &mut *inner;
        // Slots in tape-input order: t's cotangent is not needed (empty, so pruned); y's and
        // p's are the caller's buffers.
        let mut slots: [&mut [f64]; 3] = [&mut [], &mut [], &mut []];
        slots[self.slot_y] = w_y;
        if let Some(i) = self.slot_p {
            slots[i] = w_p;
        }
        let k = self.tape.n_inputs();
        self.tape
            .vjp(&mut inner.ws, &[w], &mut slots[..k])
            .expect("cotangent lengths were validated against the tape at construction");
    }
}

impl Jvp for TapeSystem {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let mut inner = self.inner.borrow_mut();
        self.ensure_forward(&mut inner, t, y, p);
        let inner = &mut *inner;
        let zero_t: &[f64] = &[]; // time is not perturbed
        let mut tans: [&[f64]; 3] = [&[], &[], &[]];
        let k = self.arrange(zero_t, v_y, v_p, &mut tans);
        self.tape
            .jvp(&mut inner.ws, &tans[..k], &mut [out])
            .expect("tangent lengths were validated against the tape at construction");
    }
}

impl TapeSystem {
    /// The coloring in use: the one given by [`TapeSystem::with_sparsity`], or the dense one.
    fn coloring(&self) -> &JacobianColoring {
        self.coloring.get_or_init(|| {
            JacobianColoring::new(dense_pattern(self.n))
                .expect("a dense n x n pattern is square, the only thing the coloring checks")
        })
    }
}

impl Jacobian for TapeSystem {
    fn sparsity(&self) -> &SparsityPattern {
        self.coloring().pattern()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        // Take the scratch out of the cell so `fill` can call `jvp` (which borrows the cell).
        let (mut seed, mut tangent) = {
            let mut inner = self.inner.borrow_mut();
            (std::mem::take(&mut inner.seed), std::mem::take(&mut inner.tangent))
        };
        self.coloring().fill(self, t, y, p, &mut seed, &mut tangent, out);
        let mut inner = self.inner.borrow_mut();
        inner.seed = seed;
        inner.tangent = tangent;
    }
}
