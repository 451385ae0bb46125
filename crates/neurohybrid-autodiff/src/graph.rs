//! The graph builder: inputs, constants and the bookkeeping every op builder shares.
//!
//! A [`Graph`] is append-only: every builder pushes one node whose operands already exist, so
//! node order is a topological order and [`Graph::compile`](crate::Graph::compile) never sorts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{AutodiffError, Result};
use crate::ops::Op;

/// A handle to a node of a [`Graph`]: cheap to copy, meaningful only in the graph that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var {
    pub(crate) graph: u32,
    pub(crate) index: u32,
}

impl Var {
    /// The node's position in its graph (creation order).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// One node: its shape and the op that produces it.
pub(crate) struct Node {
    pub(crate) shape: Vec<usize>,
    pub(crate) op: Op,
}

/// An input declaration: name and shape, in creation order.
#[derive(Debug, Clone)]
pub(crate) struct InputDecl {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) node: usize,
}

/// Every graph gets a fresh id so a [`Var`] from another graph is caught at build time.
static NEXT_GRAPH_ID: AtomicU32 = AtomicU32::new(1);

/// A differentiable computation under construction.
///
/// Build it once with [`input`](Graph::input), [`constant`](Graph::constant) and the op builders
/// (every one returns `Result<Var>`: shape errors surface here, not at replay), then
/// [`compile`](Graph::compile) it into a [`Tape`](crate::Tape).
pub struct Graph {
    pub(crate) id: u32,
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<InputDecl>,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.nodes.len())
            .field("inputs", &self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>())
            .finish()
    }
}

/// Number of elements of a shape (`[]` is a scalar: 1 element).
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            inputs: Vec::new(),
        }
    }

    /// Declares an input called `name` with `shape` (`&[]` for a scalar, row-major data).
    ///
    /// Inputs are numbered in creation order; replays take their values in that order.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Result<Var> {
        if self.inputs.iter().any(|i| i.name == name) {
            return Err(AutodiffError::DuplicateInput { name: name.to_string() });
        }
        let k = self.inputs.len();
        let v = self.push(shape.to_vec(), Op::Input(k));
        self.inputs.push(InputDecl {
            name: name.to_string(),
            shape: shape.to_vec(),
            node: v.index(),
        });
        Ok(v)
    }

    /// A constant tensor of `shape` with row-major `data` (its derivative is zero).
    pub fn constant(&mut self, shape: &[usize], data: Vec<f64>) -> Result<Var> {
        let expected = numel(shape);
        if data.len() != expected {
            return Err(AutodiffError::ConstantLength {
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(self.push(shape.to_vec(), Op::Constant(Arc::from(data))))
    }

    /// A rank-0 constant.
    pub fn scalar(&mut self, value: f64) -> Var {
        self.push(Vec::new(), Op::Constant(Arc::from(vec![value])))
    }

    /// The input called `name`, or [`AutodiffError::UnknownInput`].
    pub fn lookup(&self, name: &str) -> Result<Var> {
        self.inputs
            .iter()
            .find(|i| i.name == name)
            .map(|i| Var { graph: self.id, index: i.node as u32 })
            .ok_or_else(|| AutodiffError::UnknownInput { name: name.to_string() })
    }

    /// The shape of `v`.
    pub fn shape(&self, v: Var) -> Result<&[usize]> {
        self.check(v)?;
        Ok(&self.nodes[v.index()].shape)
    }

    /// Number of nodes built so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node has been built yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of declared inputs.
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }

    pub(crate) fn check(&self, v: Var) -> Result<usize> {
        if v.graph != self.id || v.index() >= self.nodes.len() {
            return Err(AutodiffError::ForeignVar { index: v.index() });
        }
        Ok(v.index())
    }

    /// Shape of a checked var, owned (builders need it while pushing).
    pub(crate) fn shape_of(&self, v: Var) -> Result<Vec<usize>> {
        Ok(self.shape(v)?.to_vec())
    }

    pub(crate) fn push(&mut self, shape: Vec<usize>, op: Op) -> Var {
        let index = u32::try_from(self.nodes.len()).expect("graph exceeds u32::MAX nodes");
        self.nodes.push(Node { shape, op });
        Var { graph: self.id, index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_unknown_inputs_are_errors() {
        let mut g = Graph::new();
        g.input("y", &[3]).unwrap();
        assert_eq!(g.input("y", &[2]), Err(AutodiffError::DuplicateInput { name: "y".into() }));
        assert!(matches!(g.lookup("p"), Err(AutodiffError::UnknownInput { .. })));
        assert_eq!(g.shape(g.lookup("y").unwrap()).unwrap(), &[3]);
    }

    #[test]
    fn vars_from_another_graph_are_rejected() {
        let mut g1 = Graph::new();
        let mut g2 = Graph::new();
        let a = g1.input("a", &[2]).unwrap();
        g2.input("b", &[2]).unwrap();
        assert!(matches!(g2.exp(a), Err(AutodiffError::ForeignVar { .. })));
    }

    #[test]
    fn constant_length_is_checked() {
        let mut g = Graph::new();
        assert!(matches!(
            g.constant(&[2, 2], vec![1.0; 3]),
            Err(AutodiffError::ConstantLength { expected: 4, got: 3, .. })
        ));
    }
}
