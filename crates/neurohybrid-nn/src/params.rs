//! Named blocks of a layer's flat parameter vector.
//!
//! A layer's parameters are one contiguous block of the model's shared parameter vector
//! (mechanistic and neural parameters side by side, DESIGN.md §3). Inside that block a layer
//! reports named sub-blocks (`"layer0.weight"`, `"layer0.bias"`) with their offsets, shapes and
//! fan-in/fan-out, which is what an upstream `ParamLayout` needs to name them and what the
//! initializers need to scale them.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// What a block holds: a weight (with the fans initializers scale by) or a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockKind {
    /// A weight tensor; `fan_in`/`fan_out` as in Glorot & Bengio (2010) (for a convolution the
    /// channel count times the stencil size, PyTorch's convention).
    Weight {
        /// Inputs feeding one output.
        fan_in: usize,
        /// Outputs fed by one input.
        fan_out: usize,
    },
    /// A bias vector (initialized to zero).
    Bias,
}

/// One named, contiguous sub-block of a parameter vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamBlock {
    /// Dotted name, e.g. `"layer1.weight"`.
    pub name: String,
    /// Offset from the start of the owning layer's block.
    pub offset: usize,
    /// Row-major shape (`[inputs, outputs]` for a dense weight).
    pub shape: Vec<usize>,
    /// Weight or bias.
    pub kind: BlockKind,
}

impl ParamBlock {
    /// Number of parameters in the block.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The block's index range in the owning layer's parameter vector.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }

    /// The same block seen from a parent: name prefixed with `prefix.` (if non-empty) and
    /// offset shifted by `offset`.
    pub fn nested(mut self, prefix: &str, offset: usize) -> Self {
        if !prefix.is_empty() {
            self.name = format!("{prefix}.{}", self.name);
        }
        self.offset += offset;
        self
    }
}

/// The index ranges of the blocks whose name starts with `prefix` (`"layer0"` selects
/// `"layer0.weight"` and `"layer0.bias"`, not `"layer01.weight"`): the input optimizers take to
/// freeze part of a model.
pub fn ranges_matching(blocks: &[ParamBlock], prefix: &str) -> Vec<Range<usize>> {
    blocks
        .iter()
        .filter(|b| {
            b.name == prefix
                || (b.name.starts_with(prefix) && b.name[prefix.len()..].starts_with('.'))
        })
        .map(ParamBlock::range)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(name: &str, offset: usize, n: usize) -> ParamBlock {
        ParamBlock { name: name.into(), offset, shape: vec![n], kind: BlockKind::Bias }
    }

    #[test]
    fn prefix_matching_respects_dots() {
        let blocks = vec![block("layer0.bias", 0, 3), block("layer01.bias", 3, 2)];
        assert_eq!(ranges_matching(&blocks, "layer0"), vec![0..3]);
        assert_eq!(ranges_matching(&blocks, "layer01.bias"), vec![3..5]);
        assert!(ranges_matching(&blocks, "layer").is_empty());
    }

    #[test]
    fn nesting_prefixes_and_shifts() {
        let b = block("bias", 2, 4).nested("layer3", 10);
        assert_eq!((b.name.as_str(), b.range()), ("layer3.bias", 12..16));
    }
}
