//! Compilation of a [`Graph`] into a [`Tape`], the [`Workspace`] that holds every mutable
//! buffer, and the three replays (`forward`, `vjp`, `jvp`).
//!
//! Buffer plan: every kept node owns one contiguous region of a single flat buffer, at an
//! offset that grows with the node's position (a reshape shares its operand's region instead).
//! The workspace holds three such buffers: values, cotangents and tangents, with the same
//! layout. Because operands come before their consumer, an instruction's own region lies after
//! all of its operands' regions: one `split_at_mut` per instruction gives the kernel its
//! output mutably and its operands immutably, without copies, `unsafe` or allocation.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var, numel};
use crate::ops::Op;

/// One kept node: its op (operands renamed to tape-local indices) and its buffer region.
#[derive(Clone)]
pub(crate) struct TNode {
    pub(crate) op: Op,
    pub(crate) shape: Vec<usize>,
    pub(crate) off: usize,
    pub(crate) len: usize,
    /// Per operand slot (in `for_each_operand` order): whether this instruction is the first
    /// writer of that operand's cotangent region in the reverse sweep, so it overwrites
    /// instead of accumulating and the region needs no zero-fill.
    pub(crate) first: Box<[bool]>,
}

#[derive(Debug, Clone)]
struct TInput {
    name: String,
    shape: Vec<usize>,
    len: usize,
    /// `None` when no output depends on this input (its cotangent is zero).
    node: Option<usize>,
}

static NEXT_TAPE_ID: AtomicU32 = AtomicU32::new(1);

/// A compiled graph: a fixed instruction order over the nodes the outputs need, and a buffer
/// plan. Immutable and `Send + Sync`; share one tape between threads, give each thread its own
/// [`Workspace`].
#[derive(Clone)]
pub struct Tape {
    id: u32,
    pub(crate) nodes: Vec<TNode>,
    /// Nodes that execute, in order (inputs, constants and reshapes do not).
    instrs: Vec<usize>,
    inputs: Vec<TInput>,
    outputs: Vec<usize>,
    /// Per output: whether its cotangent seed is the first write of its region (copy) or a
    /// later one (add: the same node, or a reshape of it, listed twice).
    seed_copy: Vec<bool>,
    total: usize,
    /// Scratch length for custom-op cotangents (the largest sum of operand lengths).
    scratch: usize,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("inputs", &self.inputs.iter().map(|i| (&i.name, &i.shape)).collect::<Vec<_>>())
            .field(
                "instructions",
                &self.instrs.iter().map(|&n| self.nodes[n].op.name()).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self.outputs.iter().map(|&n| &self.nodes[n].shape).collect::<Vec<_>>(),
            )
            .field("buffer_len", &self.total)
            .finish()
    }
}

/// All mutable state of replays: node values, cotangents, tangents and small bookkeeping.
/// Made by [`Tape::workspace`]; its buffers are allocated there, once.
#[derive(Debug, Clone)]
pub struct Workspace {
    tape: u32,
    pub(crate) vals: Vec<f64>,
    pub(crate) cots: Vec<f64>,
    pub(crate) tans: Vec<f64>,
    pub(crate) scratch: Vec<f64>,
    outputs: Vec<(usize, usize)>,
    forward_done: bool,
    /// Which inputs the last `vjp` wanted, and which nodes that made necessary.
    vjp_mask: Vec<bool>,
    pub(crate) need: Vec<bool>,
    vjp_valid: bool,
    /// Which inputs had tangents in the last `jvp`, and which nodes that made active.
    jvp_mask: Vec<bool>,
    pub(crate) active: Vec<bool>,
    jvp_valid: bool,
}

impl Workspace {
    /// The value of output `j` after [`Tape::forward`]. Panics if `j ≥ n_outputs`.
    pub fn output(&self, j: usize) -> &[f64] {
        let (off, len) = self.outputs[j];
        &self.vals[off..off + len]
    }

    /// Number of outputs of the tape this workspace belongs to.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }
}

impl Graph {
    /// Compiles the part of the graph that `outputs` depend on into a [`Tape`].
    ///
    /// Every declared input stays an input of the tape (in creation order), even when no output
    /// depends on it; its cotangent is then zero. The graph is left untouched and may be
    /// compiled again with other outputs.
    ///
    /// A peephole pass fuses `matmul → bias add → tanh/sigmoid/relu` chains into one dense
    /// instruction (values and derivatives as for the separate ops; see
    /// [`compile_unfused`](Graph::compile_unfused)).
    pub fn compile(&self, outputs: &[Var]) -> Result<Tape> {
        self.compile_with(outputs, true)
    }

    /// [`compile`](Graph::compile) without the fusion pass: one instruction per graph node.
    /// For tests and benchmarks of the fused instructions; results agree with `compile` to
    /// rounding (forward values bit for bit).
    pub fn compile_unfused(&self, outputs: &[Var]) -> Result<Tape> {
        self.compile_with(outputs, false)
    }

    fn compile_with(&self, outputs: &[Var], fuse: bool) -> Result<Tape> {
        if outputs.is_empty() {
            return Err(AutodiffError::NoOutputs);
        }
        let mut keep = vec![false; self.nodes.len()];
        for &o in outputs {
            keep[self.check(o)?] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if keep[i] {
                self.nodes[i].op.for_each_operand(|a| keep[a] = true);
            }
        }
        let out_idx: Vec<usize> = outputs.iter().map(|o| o.index()).collect();
        let mut fused =
            if fuse { self.fuse_dense(&mut keep, &out_idx) } else { vec![None; self.nodes.len()] };
        let mut map = vec![usize::MAX; self.nodes.len()];
        let mut nodes: Vec<TNode> = Vec::new();
        let mut total = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let op = fused[i].take().unwrap_or_else(|| node.op.clone()).remap(&map);
            let len = numel(&node.shape);
            let off = match op {
                Op::Reshape(a) => nodes[a].off,
                _ => {
                    total += len;
                    total - len
                }
            };
            map[i] = nodes.len();
            nodes.push(TNode { op, shape: node.shape.clone(), off, len, first: Box::new([]) });
        }
        let instrs: Vec<usize> = (0..nodes.len())
            .filter(|&n| !matches!(nodes[n].op, Op::Input(_) | Op::Constant(_) | Op::Reshape(_)))
            .collect();
        let outputs: Vec<usize> = out_idx.iter().map(|&o| map[o]).collect();
        // First writers of each cotangent region in the reverse sweep (a reshape writes its
        // operand's region). Output seeds come first; then instructions in reverse order,
        // operand slots in kernel order. Every needed region has a first writer that runs
        // whenever the region is needed (a consumer of a needed node is needed), so `vjp`
        // never zero-fills.
        let roots: Vec<usize> = {
            let mut r: Vec<usize> = (0..nodes.len()).collect();
            for n in 0..nodes.len() {
                if let Op::Reshape(a) = nodes[n].op {
                    r[n] = r[a];
                }
            }
            r
        };
        let root = |n: usize| roots[n];
        let mut written = vec![false; nodes.len()];
        let mut seed_copy = Vec::with_capacity(outputs.len());
        for &o in &outputs {
            let r = root(o);
            seed_copy.push(!written[r]);
            written[r] = true;
        }
        for &n in instrs.iter().rev() {
            let mut first = Vec::new();
            nodes[n].op.for_each_operand(|a| {
                let r = root(a);
                first.push(!written[r]);
                written[r] = true;
            });
            nodes[n].first = first.into_boxed_slice();
        }
        let inputs = self
            .inputs
            .iter()
            .map(|d| TInput {
                name: d.name.clone(),
                shape: d.shape.clone(),
                len: numel(&d.shape),
                node: keep[d.node].then(|| map[d.node]),
            })
            .collect();
        let scratch = nodes
            .iter()
            .map(|n| match &n.op {
                Op::Custom { args, .. } => args.iter().map(|&a| nodes[a].len).sum(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        Ok(Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            outputs,
            seed_copy,
            nodes,
            instrs,
            inputs,
            total,
            scratch,
        })
    }
}

fn length(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(AutodiffError::LengthMismatch { what, expected, got })
    }
}

impl Tape {
    /// Number of inputs (all declared inputs of the graph, in creation order).
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Name of input `i`. Panics if `i ≥ n_inputs`.
    pub fn input_name(&self, i: usize) -> &str {
        &self.inputs[i].name
    }

    /// Shape of input `i`. Panics if `i ≥ n_inputs`.
    pub fn input_shape(&self, i: usize) -> &[usize] {
        &self.inputs[i].shape
    }

    /// Number of elements of input `i`. Panics if `i ≥ n_inputs`.
    pub fn input_len(&self, i: usize) -> usize {
        self.inputs[i].len
    }

    /// Position of the input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|i| i.name == name)
    }

    /// Whether any output depends on input `i` (if not, its cotangent is always zero).
    pub fn input_is_used(&self, i: usize) -> bool {
        self.inputs[i].node.is_some()
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Shape of output `j`. Panics if `j ≥ n_outputs`.
    pub fn output_shape(&self, j: usize) -> &[usize] {
        &self.nodes[self.outputs[j]].shape
    }

    /// Number of elements of output `j`. Panics if `j ≥ n_outputs`.
    pub fn output_len(&self, j: usize) -> usize {
        self.nodes[self.outputs[j]].len
    }

    /// Number of instructions one replay executes.
    pub fn n_instructions(&self) -> usize {
        self.instrs.len()
    }

    /// Length of each of the workspace's three node buffers.
    pub fn buffer_len(&self) -> usize {
        self.total
    }

    /// A fresh workspace for this tape, with constants already in place. This is the one
    /// allocation; replays reuse it.
    pub fn workspace(&self) -> Workspace {
        let mut vals = vec![0.0; self.total];
        for n in &self.nodes {
            if let Op::Constant(c) = &n.op {
                vals[n.off..n.off + n.len].copy_from_slice(c);
            }
        }
        let nn = self.nodes.len();
        Workspace {
            tape: self.id,
            vals,
            cots: vec![0.0; self.total],
            tans: vec![0.0; self.total],
            scratch: vec![0.0; self.scratch],
            outputs: self.outputs.iter().map(|&o| (self.nodes[o].off, self.nodes[o].len)).collect(),
            forward_done: false,
            vjp_mask: vec![false; self.inputs.len()],
            need: vec![false; nn],
            vjp_valid: false,
            jvp_mask: vec![false; self.inputs.len()],
            active: vec![false; nn],
            jvp_valid: false,
        }
    }

    fn check_ws(&self, ws: &Workspace, after_forward: bool) -> Result<()> {
        if ws.tape != self.id {
            return Err(AutodiffError::WorkspaceMismatch);
        }
        if after_forward && !ws.forward_done {
            return Err(AutodiffError::ForwardNotRun);
        }
        Ok(())
    }

    /// Evaluates the tape at `inputs` (one slice per input, in creation order). Read results
    /// with [`Workspace::output`].
    pub fn forward(&self, ws: &mut Workspace, inputs: &[&[f64]]) -> Result<()> {
        self.check_ws(ws, false)?;
        length("number of inputs", self.inputs.len(), inputs.len())?;
        for (decl, x) in self.inputs.iter().zip(inputs) {
            length("input values", decl.len, x.len())?;
        }
        for (decl, x) in self.inputs.iter().zip(inputs) {
            if let Some(n) = decl.node {
                let off = self.nodes[n].off;
                ws.vals[off..off + decl.len].copy_from_slice(x);
            }
        }
        for &n in &self.instrs {
            self.exec_forward(n, &mut ws.vals);
        }
        ws.forward_done = true;
        Ok(())
    }

    /// Reverse sweep: given one cotangent `w[j]` per output, writes `in_cot[i] = Σ_j
    /// (∂out_j/∂input_i)ᵀ w[j]` (overwriting). An empty `in_cot[i]` means "not needed": work
    /// that only serves unneeded inputs is skipped. Call after [`forward`](Tape::forward).
    pub fn vjp(&self, ws: &mut Workspace, w: &[&[f64]], in_cot: &mut [&mut [f64]]) -> Result<()> {
        self.check_ws(ws, true)?;
        length("number of output cotangents", self.outputs.len(), w.len())?;
        for (j, wj) in w.iter().enumerate() {
            length("output cotangent", self.output_len(j), wj.len())?;
        }
        length("number of input cotangent slots", self.inputs.len(), in_cot.len())?;
        for (decl, c) in self.inputs.iter().zip(in_cot.iter()) {
            if !c.is_empty() {
                length("input cotangent", decl.len, c.len())?;
            }
        }
        let changed = !ws.vjp_valid
            || self
                .inputs
                .iter()
                .zip(in_cot.iter())
                .zip(&ws.vjp_mask)
                .any(|((d, c), &m)| (d.node.is_some() && !c.is_empty()) != m);
        if changed {
            for ((d, c), m) in self.inputs.iter().zip(in_cot.iter()).zip(ws.vjp_mask.iter_mut()) {
                *m = d.node.is_some() && !c.is_empty();
            }
            self.propagate(&ws.vjp_mask, &mut ws.need);
            ws.vjp_valid = true;
        }
        // No zero-fill: seeds and first writers overwrite (see `compile`).
        for ((&o, wj), &copy) in self.outputs.iter().zip(w).zip(&self.seed_copy) {
            if ws.need[o] {
                let c = &mut ws.cots[self.nodes[o].off..][..wj.len()];
                if copy {
                    c.copy_from_slice(wj);
                } else {
                    c.iter_mut().zip(wj.iter()).for_each(|(c, &wv)| *c += wv);
                }
            }
        }
        for &n in self.instrs.iter().rev() {
            if ws.need[n] {
                self.exec_vjp(n, ws);
            }
        }
        for (decl, c) in self.inputs.iter().zip(in_cot.iter_mut()) {
            if c.is_empty() {
                continue;
            }
            match decl.node {
                Some(n) => c.copy_from_slice(&ws.cots[self.nodes[n].off..][..decl.len]),
                None => c.fill(0.0),
            }
        }
        Ok(())
    }

    /// Forward-mode sweep: given one tangent per input (an empty slice is a zero tangent),
    /// writes `out_tan[j] = Σ_i ∂out_j/∂input_i · tangents[i]`; an empty `out_tan[j]` is not
    /// written. Call after [`forward`](Tape::forward).
    pub fn jvp(
        &self,
        ws: &mut Workspace,
        tangents: &[&[f64]],
        out_tan: &mut [&mut [f64]],
    ) -> Result<()> {
        self.check_ws(ws, true)?;
        length("number of input tangents", self.inputs.len(), tangents.len())?;
        for (decl, t) in self.inputs.iter().zip(tangents) {
            if !t.is_empty() {
                length("input tangent", decl.len, t.len())?;
            }
        }
        length("number of output tangent slots", self.outputs.len(), out_tan.len())?;
        for (j, t) in out_tan.iter().enumerate() {
            if !t.is_empty() {
                length("output tangent", self.output_len(j), t.len())?;
            }
        }
        let changed = !ws.jvp_valid
            || self
                .inputs
                .iter()
                .zip(tangents)
                .zip(&ws.jvp_mask)
                .any(|((d, t), &m)| (d.node.is_some() && !t.is_empty()) != m);
        if changed {
            for ((d, t), m) in self.inputs.iter().zip(tangents).zip(ws.jvp_mask.iter_mut()) {
                *m = d.node.is_some() && !t.is_empty();
            }
            self.propagate(&ws.jvp_mask, &mut ws.active);
            // Inactive nodes have zero tangent; active consumers read it, nobody writes it.
            for (n, node) in self.nodes.iter().enumerate() {
                if !ws.active[n] && !matches!(node.op, Op::Reshape(_)) {
                    ws.tans[node.off..node.off + node.len].fill(0.0);
                }
            }
            ws.jvp_valid = true;
        }
        for (decl, t) in self.inputs.iter().zip(tangents) {
            if let (Some(n), false) = (decl.node, t.is_empty()) {
                let off = self.nodes[n].off;
                ws.tans[off..off + decl.len].copy_from_slice(t);
            }
        }
        for &n in &self.instrs {
            if ws.active[n] {
                self.exec_jvp(n, ws);
            }
        }
        for (&o, t) in self.outputs.iter().zip(out_tan.iter_mut()) {
            if !t.is_empty() {
                t.copy_from_slice(&ws.tans[self.nodes[o].off..][..self.nodes[o].len]);
            }
        }
        Ok(())
    }

    /// `flag[n]` = node `n` depends on an input whose `mask` entry is set.
    fn propagate(&self, mask: &[bool], flag: &mut [bool]) {
        for n in 0..self.nodes.len() {
            flag[n] = match &self.nodes[n].op {
                Op::Input(k) => mask[*k],
                Op::Constant(_) => false,
                op => {
                    let mut any = false;
                    op.for_each_operand(|a| any |= flag[a]);
                    any
                }
            };
        }
    }
}
