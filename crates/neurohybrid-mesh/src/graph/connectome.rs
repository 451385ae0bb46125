//! [`Connectome`]: a graph with region labels, centres and tract lengths.

use super::{Graph, GraphError, Result};

/// A graph with region metadata: labels, centres (mm) and tract lengths (mm).
#[derive(Debug, Clone, PartialEq)]
pub struct Connectome {
    graph: Graph,
    labels: Vec<String>,
    centres: Option<Vec<[f64; 3]>>,
    tract_lengths: Option<Vec<f64>>,
}

impl Connectome {
    /// A connectome from a graph and one label per node.
    ///
    /// # Errors
    /// [`GraphError::LengthMismatch`] if `labels.len() != graph.n_nodes()`.
    pub fn new(graph: Graph, labels: Vec<String>) -> Result<Self> {
        check_len("labels", graph.n_nodes(), labels.len())?;
        Ok(Self { graph, labels, centres: None, tract_lengths: None })
    }

    /// A connectome whose regions are labelled `region_0`, `region_1`, ….
    pub fn unlabelled(graph: Graph) -> Self {
        let labels = (0..graph.n_nodes()).map(|i| format!("region_{i}")).collect();
        Self { graph, labels, centres: None, tract_lengths: None }
    }

    /// Sets region centres (one `[x, y, z]` per node, mm).
    ///
    /// # Errors
    /// [`GraphError::LengthMismatch`], [`GraphError::InvalidValue`] (non-finite coordinate).
    pub fn with_centres(mut self, centres: Vec<[f64; 3]>) -> Result<Self> {
        check_len("centres", self.graph.n_nodes(), centres.len())?;
        if let Some((index, c)) =
            centres.iter().enumerate().find(|(_, c)| c.iter().any(|v| !v.is_finite()))
        {
            let value = *c.iter().find(|v| !v.is_finite()).expect("found above");
            return Err(GraphError::InvalidValue { what: "centre", index, value });
        }
        self.centres = Some(centres);
        Ok(self)
    }

    /// Sets tract lengths (dense row-major `n × n`, mm, finite and non-negative).
    ///
    /// # Errors
    /// [`GraphError::LengthMismatch`], [`GraphError::InvalidValue`].
    pub fn with_tract_lengths(mut self, lengths: Vec<f64>) -> Result<Self> {
        let n = self.graph.n_nodes();
        check_len("tract lengths", n * n, lengths.len())?;
        if let Some((index, &value)) =
            lengths.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(GraphError::InvalidValue { what: "tract length", index, value });
        }
        self.tract_lengths = Some(lengths);
        Ok(self)
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of regions.
    pub fn n_regions(&self) -> usize {
        self.graph.n_nodes()
    }

    /// Region labels, one per node.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The node with label `label`, if any.
    pub fn region(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// Region centres (mm), if known.
    pub fn centres(&self) -> Option<&[[f64; 3]]> {
        self.centres.as_deref()
    }

    /// Tract lengths (dense row-major `n × n`, mm), if known.
    pub fn tract_lengths(&self) -> Option<&[f64]> {
        self.tract_lengths.as_deref()
    }

    /// The same connectome with weights divided by the largest one (see
    /// [`Graph::normalized_by_max`]).
    pub fn normalized_by_max(&self) -> Connectome {
        Connectome { graph: self.graph.normalized_by_max(), ..self.clone() }
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got { Ok(()) } else { Err(GraphError::LengthMismatch { what, expected, got }) }
}
