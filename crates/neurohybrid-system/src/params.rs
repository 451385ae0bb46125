//! Named parameter blocks in one flat vector.
//!
//! Mechanistic and neural parameters share one `&[f64]` so optimizers, sensitivities and
//! checkpoints see a single vector; a [`ParamLayout`] remembers which range is which
//! (`"mech.D_w"`, `"nn.layer0.weight"`) and its shape.

use crate::error::{Result, SystemError};
use std::ops::Range;

/// One named block: a contiguous range of the flat parameter vector with a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBlock {
    name: String,
    range: Range<usize>,
    shape: Vec<usize>,
}

impl ParamBlock {
    /// The block's full name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its range in the flat vector.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
    /// Its shape (row-major); `[]` is a scalar.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.range.len()
    }
    /// Whether the block has no entries.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// An ordered list of named blocks tiling `0..len()` without gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamLayout {
    blocks: Vec<ParamBlock>,
    len: usize,
}

impl ParamLayout {
    /// An empty layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a block of the given shape (`&[]` for a scalar); returns its range.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize]) -> Result<Range<usize>> {
        let name = name.into();
        if self.blocks.iter().any(|b| b.name == name) {
            return Err(SystemError::DuplicateParam { name });
        }
        let size: usize = shape.iter().product();
        let range = self.len..self.len + size;
        self.len += size;
        self.blocks.push(ParamBlock { name, range: range.clone(), shape: shape.to_vec() });
        Ok(range)
    }

    /// Builder form of [`ParamLayout::push`].
    pub fn with(mut self, name: impl Into<String>, shape: &[usize]) -> Result<Self> {
        self.push(name, shape)?;
        Ok(self)
    }

    /// Append every block of `other` after this layout's blocks, names prefixed by
    /// `prefix` + `"."` (an empty prefix keeps names). Used by [`crate::Sum`]-style
    /// compositions whose parameter vector is the concatenation of the parts'.
    pub fn append(&mut self, prefix: &str, other: &ParamLayout) -> Result<()> {
        for b in &other.blocks {
            let name =
                if prefix.is_empty() { b.name.clone() } else { format!("{prefix}.{}", b.name) };
            self.push(name, &b.shape)?;
        }
        Ok(())
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the layout holds no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks in order.
    pub fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }

    /// The block called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&ParamBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The range of block `name`.
    pub fn range(&self, name: &str) -> Result<Range<usize>> {
        self.get(name)
            .map(ParamBlock::range)
            .ok_or_else(|| SystemError::UnknownParam { name: name.to_string() })
    }

    /// Block `name` of the flat vector `p`.
    pub fn slice<'a>(&self, name: &str, p: &'a [f64]) -> Result<&'a [f64]> {
        self.check_len(p.len())?;
        Ok(&p[self.range(name)?])
    }

    /// Block `name` of the flat vector `p`, mutably.
    pub fn slice_mut<'a>(&self, name: &str, p: &'a mut [f64]) -> Result<&'a mut [f64]> {
        self.check_len(p.len())?;
        let r = self.range(name)?;
        Ok(&mut p[r])
    }

    /// A zero vector of this layout's length.
    pub fn zeros(&self) -> Vec<f64> {
        vec![0.0; self.len]
    }

    fn check_len(&self, found: usize) -> Result<()> {
        if found == self.len {
            Ok(())
        } else {
            Err(SystemError::LengthMismatch { what: "parameter vector", expected: self.len, found })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_vector() {
        let l = ParamLayout::new()
            .with("mech.D_w", &[])
            .unwrap()
            .with("nn.layer0.weight", &[3, 2])
            .unwrap()
            .with("nn.layer0.bias", &[3])
            .unwrap();
        assert_eq!(l.len(), 10);
        assert_eq!(l.range("mech.D_w").unwrap(), 0..1);
        assert_eq!(l.range("nn.layer0.weight").unwrap(), 1..7);
        assert_eq!(l.get("nn.layer0.bias").unwrap().shape(), &[3]);
        let mut p: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(l.slice("nn.layer0.bias", &p).unwrap(), &[7.0, 8.0, 9.0]);
        l.slice_mut("mech.D_w", &mut p).unwrap()[0] = 42.0;
        assert_eq!(p[0], 42.0);
    }

    #[test]
    fn errors_name_the_offender() {
        let mut l = ParamLayout::new();
        l.push("a", &[2]).unwrap();
        assert_eq!(l.push("a", &[1]), Err(SystemError::DuplicateParam { name: "a".into() }));
        assert_eq!(l.range("b"), Err(SystemError::UnknownParam { name: "b".into() }));
        assert!(matches!(l.slice("a", &[0.0; 3]), Err(SystemError::LengthMismatch { .. })));
    }

    #[test]
    fn append_prefixes_names() {
        let nn = ParamLayout::new().with("w", &[2]).unwrap();
        let mut l = ParamLayout::new().with("mech.rho", &[]).unwrap();
        l.append("nn", &nn).unwrap();
        assert_eq!(l.range("nn.w").unwrap(), 1..3);
    }
}
