//! Connectomes for the spreading models: the embedded synthetic Desikan–Killiany-like graph
//! and the real TVB DK-68 connectome, with region names, centres and Braak-like stage groups.
//!
//! Both use TVB's region order and names (`r_<region>` for the 34 right-hemisphere regions,
//! then `l_<region>`), so seeds, stage groups and results are comparable between them.

use std::path::Path;

use neurohybrid_mesh::io::read_tvb;
use neurohybrid_mesh::{Connectome, Graph, GraphDiffusion, LaplacianKind};

use crate::error::{AlzheimerError, Result};

/// The 34 Desikan–Killiany cortical regions of one hemisphere in TVB's `connectivity_68`
/// order, with approximate centroids in MNI space (mm, right hemisphere: `x > 0`) — rounded
/// values read off the DK atlas, good enough for a synthetic graph and for drawing; they are
/// not an atlas.
pub const DK_REGIONS: [(&str, [f64; 3]); 34] = [
    ("lateralorbitofrontal", [28.0, 32.0, -12.0]),
    ("parsorbitalis", [44.0, 38.0, -8.0]),
    ("frontalpole", [10.0, 64.0, -8.0]),
    ("medialorbitofrontal", [7.0, 42.0, -14.0]),
    ("parstriangularis", [46.0, 30.0, 8.0]),
    ("parsopercularis", [46.0, 14.0, 14.0]),
    ("rostralmiddlefrontal", [36.0, 44.0, 18.0]),
    ("superiorfrontal", [12.0, 28.0, 46.0]),
    ("caudalmiddlefrontal", [36.0, 10.0, 46.0]),
    ("precentral", [38.0, -12.0, 46.0]),
    ("paracentral", [8.0, -28.0, 60.0]),
    ("rostralanteriorcingulate", [6.0, 36.0, 4.0]),
    ("caudalanteriorcingulate", [6.0, 18.0, 28.0]),
    ("posteriorcingulate", [6.0, -14.0, 38.0]),
    ("isthmuscingulate", [8.0, -44.0, 18.0]),
    ("postcentral", [40.0, -26.0, 48.0]),
    ("supramarginal", [50.0, -38.0, 32.0]),
    ("superiorparietal", [24.0, -60.0, 52.0]),
    ("inferiorparietal", [44.0, -62.0, 30.0]),
    ("precuneus", [10.0, -58.0, 38.0]),
    ("cuneus", [8.0, -80.0, 20.0]),
    ("pericalcarine", [12.0, -82.0, 6.0]),
    ("lateraloccipital", [30.0, -88.0, 0.0]),
    ("lingual", [14.0, -68.0, -4.0]),
    ("fusiform", [34.0, -48.0, -18.0]),
    ("parahippocampal", [24.0, -32.0, -16.0]),
    ("entorhinal", [24.0, -8.0, -30.0]),
    ("temporalpole", [32.0, 12.0, -34.0]),
    ("inferiortemporal", [50.0, -30.0, -22.0]),
    ("middletemporal", [56.0, -30.0, -6.0]),
    ("bankssts", [50.0, -42.0, 10.0]),
    ("superiortemporal", [54.0, -14.0, 2.0]),
    ("transversetemporal", [44.0, -22.0, 10.0]),
    ("insula", [36.0, -2.0, 4.0]),
];

/// Names of the stage groups, in the order regions become abnormal.
pub const STAGE_NAMES: [&str; 5] = ["Braak I-II", "Braak III", "Braak IV", "Braak V", "Braak VI"];

/// The Braak-like stage group (0 = I–II … 4 = VI) of a DK region name (without hemisphere
/// prefix), after the DK mapping of tau-PET Braak regions used by Schöll et al. 2016 (Neuron
/// 89:971) and Maass et al. 2017 (NeuroImage 157:448): I–II entorhinal; III parahippocampal,
/// fusiform, lingual; IV cingulate, insula, inferior temporal, temporal pole; V the
/// association isocortex; VI primary sensorimotor and visual cortex.
pub fn stage_group(region: &str) -> Option<usize> {
    Some(match region {
        "entorhinal" => 0,
        "parahippocampal" | "fusiform" | "lingual" => 1,
        "caudalanteriorcingulate"
        | "rostralanteriorcingulate"
        | "posteriorcingulate"
        | "isthmuscingulate"
        | "insula"
        | "inferiortemporal"
        | "temporalpole" => 2,
        "pericalcarine" | "postcentral" | "cuneus" | "precentral" | "paracentral" => 4,
        r if DK_REGIONS.iter().any(|(n, _)| *n == r) => 3,
        _ => return None,
    })
}

/// Where a [`Brain`] came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum BrainSource {
    /// The embedded deterministic synthetic graph ([`Brain::synthetic_dk68`]).
    Synthetic,
    /// A TVB connectivity file or folder (the path).
    Tvb(String),
}

/// A connectome ready for the spreading models: weights normalized by their maximum, no
/// self-loops, region labels and centres, stage groups, and the Laplacian `L = diag(W1) − W`.
#[derive(Debug, Clone)]
pub struct Brain {
    connectome: Connectome,
    centres: Vec<[f64; 3]>,
    groups: Vec<Option<usize>>,
    diffusion: GraphDiffusion,
    source: BrainSource,
}

impl Brain {
    /// The embedded synthetic 68-region connectome, deterministic and download-free.
    ///
    /// Construction: the [`DK_REGIONS`] centres mirrored into two hemispheres; within a
    /// hemisphere each region connects to its 8 nearest regions with weight `exp(−d/20 mm)`
    /// (distance-dependent wiring, the exponential distance rule of Ercsey-Ravasz et al. 2013,
    /// Neuron 80:184), the union symmetrized; homotopic regions connect across the corpus
    /// callosum with weight 0.15. Weights are then normalized by their maximum.
    pub fn synthetic_dk68() -> Self {
        let centres = dk68_centres();
        let n = centres.len();
        let half = n / 2;
        let mut dense = vec![0.0; n * n];
        for h in 0..2 {
            let off = h * half;
            for i in 0..half {
                let mut d: Vec<(f64, usize)> = (0..half)
                    .filter(|&j| j != i)
                    .map(|j| (dist(&centres[off + i], &centres[off + j]), j))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for &(dij, j) in d.iter().take(8) {
                    let w = (-dij / 20.0).exp();
                    dense[(off + i) * n + off + j] = w;
                    dense[(off + j) * n + off + i] = w;
                }
            }
        }
        for i in 0..half {
            dense[i * n + half + i] = 0.15;
            dense[(half + i) * n + i] = 0.15;
        }
        let graph = Graph::from_dense(n, &dense).expect("symmetric finite non-negative weights");
        let connectome = Connectome::new(graph, dk68_labels())
            .expect("68 labels")
            .with_centres(centres)
            .expect("finite centres");
        Self::from_connectome(connectome, BrainSource::Synthetic)
            .expect("the synthetic connectome has labels and centres")
    }

    /// The real connectome from a TVB connectivity `.zip` or folder (e.g.
    /// `data/tvb/connectivity_68.zip` from `cargo xtask fetch-data tvb68`). Self-loops are
    /// dropped and weights normalized by their maximum.
    ///
    /// # Errors
    /// [`AlzheimerError::DataMissing`] if the path does not exist, [`AlzheimerError::Io`] for a
    /// bad file.
    pub fn from_tvb(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(AlzheimerError::DataMissing { path: path.display().to_string() });
        }
        let c = read_tvb(path)?;
        Self::from_connectome(c, BrainSource::Tvb(path.display().to_string()))
    }

    /// A brain from any labelled connectome (regions named `l_<dk>` / `r_<dk>` get stage
    /// groups; others get none). Without centres, regions are placed on a circle.
    ///
    /// # Errors
    /// [`AlzheimerError::Graph`] if the connectome's metadata are inconsistent.
    pub fn from_connectome(connectome: Connectome, source: BrainSource) -> Result<Self> {
        let graph = connectome.graph().without_self_loops().normalized_by_max();
        let n = graph.n_nodes();
        let centres = match connectome.centres() {
            Some(c) => c.to_vec(),
            None => (0..n)
                .map(|i| {
                    let a = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                    [60.0 * a.cos(), 60.0 * a.sin(), 0.0]
                })
                .collect(),
        };
        let labels = connectome.labels().to_vec();
        let groups = labels
            .iter()
            .map(|l| {
                let name = l.strip_prefix("l_").or_else(|| l.strip_prefix("r_")).unwrap_or(l);
                stage_group(name)
            })
            .collect();
        let connectome = Connectome::new(graph, labels)?.with_centres(centres.clone())?;
        let diffusion = GraphDiffusion::new(connectome.graph(), LaplacianKind::Combinatorial);
        Ok(Self { connectome, centres, groups, diffusion, source })
    }

    /// Number of regions.
    pub fn n_regions(&self) -> usize {
        self.connectome.n_regions()
    }

    /// Region labels.
    pub fn labels(&self) -> &[String] {
        self.connectome.labels()
    }

    /// Region centres (mm).
    pub fn centres(&self) -> &[[f64; 3]] {
        &self.centres
    }

    /// The normalized connectome.
    pub fn connectome(&self) -> &Connectome {
        &self.connectome
    }

    /// The graph-diffusion operator `−β L` (combinatorial Laplacian).
    pub fn diffusion(&self) -> &GraphDiffusion {
        &self.diffusion
    }

    /// Where this brain came from.
    pub fn source(&self) -> &BrainSource {
        &self.source
    }

    /// Stage group of each region (`None` for regions outside the DK cortical set).
    pub fn stage_groups(&self) -> &[Option<usize>] {
        &self.groups
    }

    /// The index of region `label`.
    ///
    /// # Errors
    /// [`AlzheimerError::UnknownRegion`].
    pub fn region(&self, label: &str) -> Result<usize> {
        self.connectome.region(label).ok_or_else(|| AlzheimerError::UnknownRegion {
            label: label.to_string(),
            n_regions: self.n_regions(),
        })
    }

    /// Default seed regions: left and right entorhinal cortex (tau's Braak I site).
    ///
    /// # Errors
    /// [`AlzheimerError::UnknownRegion`] if the connectome has no entorhinal labels.
    pub fn entorhinal(&self) -> Result<[usize; 2]> {
        Ok([self.region("l_entorhinal")?, self.region("r_entorhinal")?])
    }
}

fn dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// TVB order: the right hemisphere's 34 regions, then the left's.
fn dk68_labels() -> Vec<String> {
    let r = DK_REGIONS.iter().map(|(n, _)| format!("r_{n}"));
    let l = DK_REGIONS.iter().map(|(n, _)| format!("l_{n}"));
    r.chain(l).collect()
}

fn dk68_centres() -> Vec<[f64; 3]> {
    let r = DK_REGIONS.iter().map(|(_, c)| *c);
    let l = DK_REGIONS.iter().map(|(_, c)| [-c[0], c[1], c[2]]);
    r.chain(l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_graph_is_connected_symmetric_and_labelled() {
        let b = Brain::synthetic_dk68();
        assert_eq!(b.n_regions(), 68);
        let g = b.connectome().graph();
        assert!(g.is_connected());
        assert!((g.max_weight() - 1.0).abs() < 1e-15);
        let [l, r] = b.entorhinal().unwrap();
        assert_eq!(b.labels()[l], "l_entorhinal");
        assert!(g.weight(l, r).unwrap() > 0.0, "homotopic edge");
        assert!(b.stage_groups().iter().all(Option::is_some));
        let per_stage: Vec<usize> =
            (0..5).map(|s| b.stage_groups().iter().filter(|g| **g == Some(s)).count()).collect();
        assert_eq!(per_stage, [2, 6, 14, 36, 10]);
        assert!(matches!(b.region("l_hippocampus"), Err(AlzheimerError::UnknownRegion { .. })));
    }
}
