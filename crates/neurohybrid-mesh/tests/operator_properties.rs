//! Algebraic properties of the finite-volume diffusion operator on random masked grids
//! (proptest): mass conservation, symmetry in the volume-weighted inner product, negative
//! semidefiniteness, matrix-free = assembled, sequential = parallel, JVP/VJP dot identities,
//! parameter VJPs against finite differences; and the same operator through the autodiff tape
//! and the `neurohybrid-system` traits.

use neurohybrid_autodiff::{Graph, check};
use neurohybrid_mesh::{
    AssembledDiffusion, DiffusionOperator, FieldDiffusion, Grid, MaskRule, Parallelism, Phantom,
    Plane, TissueDiffusion, TissueMaps, TissueModel,
};
use neurohybrid_system::{Jacobian, Jvp, OdeSystem, Vjp};
use proptest::prelude::*;

/// A random problem: a masked 2D or 3D grid, per-voxel tissue fractions (some pure CSF),
/// a D field with exact zeros, and random vectors.
#[derive(Debug, Clone)]
struct Case {
    grid: Grid,
    tissue: TissueMaps,
    d: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
    vd: Vec<f64>,
    model: TissueModel,
}

fn cases() -> impl Strategy<Value = Case> {
    (prop::bool::ANY, 1usize..7, 1usize..7, 1usize..6, prop::array::uniform3(0.5f64..3.0))
        .prop_flat_map(|(three_d, nx, ny, nz, h)| {
            let nz = if three_d { nz } else { 1 };
            let nv = nx * ny * nz;
            (
                Just((three_d, [nx, ny, nz], h)),
                prop::collection::vec(0u8..4, nv),
                prop::collection::vec((0u8..5, 0.0f64..1.0, 0.0f64..1.0), nv),
                prop::collection::vec((0u8..4, -2.0f64..1.0), nv),
                prop::collection::vec(prop::array::uniform4(-1.0f64..1.0), nv),
                (0.02f64..1.5, 5.0f64..20.0),
            )
        })
        .prop_map(|((three_d, shape, h), mask, tis, dlog, vecs, (d_w, r))| {
            let mut mask: Vec<bool> = mask.iter().map(|&m| m != 0).collect();
            mask[0] = true;
            let grid = if three_d {
                Grid::new_3d(shape, h, mask).unwrap()
            } else {
                Grid::new_2d([shape[0], shape[1]], [h[0], h[1]], mask).unwrap()
            };
            // Tissue: class 0 is pure CSF; otherwise wm/gm split of a random total.
            let (mut wm, mut gm, mut csf) = (vec![], vec![], vec![]);
            for &(c, a, b) in &tis {
                if c == 0 {
                    wm.push(0.0);
                    gm.push(0.0);
                    csf.push(1.0);
                } else {
                    wm.push(a * b);
                    gm.push((1.0 - a) * b);
                    csf.push(1.0 - b);
                }
            }
            let tissue = TissueMaps::new(wm, gm, csf).unwrap();
            let act = grid.active_voxels();
            let d = act
                .iter()
                .map(|&v| if dlog[v].0 == 0 { 0.0 } else { 10f64.powf(dlog[v].1) })
                .collect();
            let pick = |k: usize| act.iter().map(|&v| vecs[v][k]).collect::<Vec<f64>>();
            Case {
                u: pick(0),
                v: pick(1),
                w: pick(2),
                vd: pick(3),
                grid,
                tissue,
                d,
                model: TissueModel { d_w, r },
            }
        })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Natural size of `Σ_i V (A u)_i`-type sums: `V · Σ_ij c_ij · (|u_i| + |u_j|) ≤ 2 V ‖u‖∞ Σ|A_ii|`.
fn scale(op: &AssembledDiffusion, vol: f64, umax: f64) -> f64 {
    let (offsets, cols, vals) = op.matrix().csr_data();
    let diag: f64 = (0..op.n())
        .map(|i| {
            (offsets[i]..offsets[i + 1]).find(|&k| cols[k] == i).map_or(0.0, |k| vals[k].abs())
        })
        .sum();
    2.0 * vol * umax.max(1e-300) * diag + 1e-300
}

fn apply(op: &DiffusionOperator, u: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; u.len()];
    op.apply(u, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conserves_mass_symmetric_and_negative_semidefinite(c in cases()) {
        let op = DiffusionOperator::new(&c.grid, c.d.clone()).unwrap();
        let asm = op.assemble();
        let vol = c.grid.cell_volume();
        let s = scale(&asm, vol, 1.0);
        let (au, av) = (apply(&op, &c.u), apply(&op, &c.v));
        // Mass Σ V u is conserved: Σ V (A u) = 0.
        let mass_rate: f64 = au.iter().map(|x| vol * x).sum();
        prop_assert!(mass_rate.abs() <= 1e-12 * s, "Σ V Au = {mass_rate}, scale {s}");
        // ⟨v, A u⟩_V = ⟨A v, u⟩_V and ⟨u, A u⟩_V ≤ 0.
        let (vau, avu) = (vol * dot(&c.v, &au), vol * dot(&av, &c.u));
        prop_assert!((vau - avu).abs() <= 1e-12 * s);
        prop_assert!(vol * dot(&c.u, &au) <= 1e-12 * s);
        // The assembled matrix is exactly symmetric.
        let m = asm.matrix();
        for (i, j, &a) in m.triplet_iter() {
            prop_assert_eq!(m.get_entry(j, i).unwrap().into_value(), a);
        }
    }

    #[test]
    fn matrix_free_assembled_sequential_parallel_agree(c in cases()) {
        let op = DiffusionOperator::new(&c.grid, c.d.clone()).unwrap();
        let seq = op.clone().with_parallelism(Parallelism::Sequential);
        let asm = op.assemble();
        let tol = 1e-13 * scale(&asm, 1.0, 1.0);
        let mf = apply(&op, &c.u);
        prop_assert_eq!(&apply(&seq, &c.u), &mf); // bit-identical rows
        // Cached face coefficients = the on-the-fly kernel, to the bit.
        let mut fly = vec![0.0; c.u.len()];
        FieldDiffusion::new(&c.grid).apply(&c.d, &c.u, &mut fly).unwrap();
        prop_assert_eq!(&fly, &mf);
        let mut op2 = DiffusionOperator::new(&c.grid, vec![1.0; c.u.len()]).unwrap();
        op2.set_diffusivity(&c.d).unwrap();
        prop_assert_eq!(&apply(&op2, &c.u), &mf);
        let mut a = vec![0.0; c.u.len()];
        asm.apply(&c.u, &mut a).unwrap();
        for (x, y) in mf.iter().zip(&a) {
            prop_assert!((x - y).abs() <= tol, "{x} vs {y}");
        }
        // VJPs: matrix-free (A w, by symmetry) vs the CSR transpose product.
        let (mut w1, mut w2) = (vec![0.0; c.u.len()], vec![0.0; c.u.len()]);
        op.vjp(&c.w, &mut w1).unwrap();
        asm.vjp(&c.w, &mut w2).unwrap();
        for (x, y) in w1.iter().zip(&w2) {
            prop_assert!((x - y).abs() <= tol);
        }
        // Refilling the CSR values for a new D equals assembling afresh.
        let mut asm2 = AssembledDiffusion::new(&c.grid, &vec![1.0; c.u.len()]).unwrap();
        asm2.refill(&c.d).unwrap();
        prop_assert_eq!(asm2.matrix().values(), asm.matrix().values());
        // Parameter gradients: sequential and rayon sums agree to rounding.
        let td = TissueDiffusion::new(&c.grid, &c.tissue).unwrap();
        let tds = td.clone().with_parallelism(Parallelism::Sequential);
        let (mut g1, mut g2) = ([0.0; 2], [0.0; 2]);
        td.vjp(c.model, &c.u, &c.w, &mut [], &mut g1).unwrap();
        tds.vjp(c.model, &c.u, &c.w, &mut [], &mut g2).unwrap();
        for k in 0..2 {
            prop_assert!((g1[k] - g2[k]).abs() <= 1e-12 * (g1[k].abs() + 1.0));
        }
    }

    #[test]
    fn jvp_vjp_dot_identities(c in cases()) {
        let n = c.u.len();
        // Tissue parameters: ⟨w, J(v_u, v_p)⟩ = ⟨Jᵀw|_u, v_u⟩ + ⟨Jᵀw|_p, v_p⟩.
        let td = TissueDiffusion::new(&c.grid, &c.tissue).unwrap();
        let vp = [c.vd[0], 3.0 * c.vd[n - 1]];
        let mut jv = vec![0.0; n];
        td.jvp(c.model, &c.u, &c.v, &vp, &mut jv).unwrap();
        let (mut wu, mut wp) = (vec![0.0; n], [0.0; 2]);
        td.vjp(c.model, &c.u, &c.w, &mut wu, &mut wp).unwrap();
        let lhs = dot(&c.w, &jv);
        let rhs = dot(&wu, &c.v) + dot(&wp, &vp);
        let mag = dot(&c.w.iter().map(|x| x.abs()).collect::<Vec<_>>(), &jv.iter().map(|x| x.abs()).collect::<Vec<_>>());
        prop_assert!((lhs - rhs).abs() <= 1e-12 * (mag + lhs.abs() + 1e-300));
        // Per-cell D field.
        let fd = FieldDiffusion::new(&c.grid);
        fd.jvp(&c.d, &c.u, &c.v, &c.vd, &mut jv).unwrap();
        let mut wd = vec![0.0; n];
        fd.vjp_u(&c.d, &c.w, &mut wu).unwrap();
        fd.vjp_d(&c.d, &c.u, &c.w, &mut wd).unwrap();
        let lhs = dot(&c.w, &jv);
        let rhs = dot(&wu, &c.v) + dot(&wd, &c.vd);
        let mag = dot(&c.w.iter().map(|x| x.abs()).collect::<Vec<_>>(), &jv.iter().map(|x| x.abs()).collect::<Vec<_>>())
            + dot(&wd.iter().map(|x| x.abs()).collect::<Vec<_>>(), &c.vd.iter().map(|x| x.abs()).collect::<Vec<_>>());
        prop_assert!((lhs - rhs).abs() <= 1e-12 * (mag + 1e-300), "{lhs} vs {rhs}");
    }

    #[test]
    fn parameter_vjps_match_finite_differences(c in cases()) {
        let n = c.u.len();
        let td = TissueDiffusion::new(&c.grid, &c.tissue).unwrap();
        let phi = |m: TissueModel| {
            let mut out = vec![0.0; n];
            td.apply(m, &c.u, &mut out).unwrap();
            dot(&c.w, &out)
        };
        let mut wp = [0.0; 2];
        td.vjp(c.model, &c.u, &c.w, &mut [], &mut wp).unwrap();
        let m = c.model;
        let hw = 1e-5 * m.d_w;
        let hr = 1e-5 * m.r;
        let fd_w = (phi(TissueModel { d_w: m.d_w + hw, ..m }) - phi(TissueModel { d_w: m.d_w - hw, ..m })) / (2.0 * hw);
        let fd_r = (phi(TissueModel { r: m.r + hr, ..m }) - phi(TissueModel { r: m.r - hr, ..m })) / (2.0 * hr);
        // Natural sizes: Σ|w||Au| / D_w and / R (the gradient is at most of that order).
        let mut au = vec![0.0; n];
        td.apply(m, &c.u, &mut au).unwrap();
        let size: f64 = c.w.iter().zip(&au).map(|(w, a)| (w * a).abs()).sum::<f64>() + 1e-300;
        prop_assert!((wp[0] - fd_w).abs() <= 1e-6 * (wp[0].abs() + size / m.d_w), "D_w: {} vs {fd_w}", wp[0]);
        prop_assert!((wp[1] - fd_r).abs() <= 1e-6 * (wp[1].abs() + size / m.r), "R: {} vs {fd_r}", wp[1]);
        // Per-cell D, at cells with D > 0 (central differences stay in D ≥ 0).
        let fdiff = FieldDiffusion::new(&c.grid);
        let mut wd = vec![0.0; n];
        fdiff.vjp_d(&c.d, &c.u, &c.w, &mut wd).unwrap();
        let psi = |d: &[f64]| {
            let mut out = vec![0.0; n];
            fdiff.apply(d, &c.u, &mut out).unwrap();
            dot(&c.w, &out)
        };
        for k in (0..n).filter(|&k| c.d[k] > 0.0).take(6) {
            let h = 1e-5 * c.d[k];
            let mut dp = c.d.clone();
            dp[k] += h;
            let mut dm = c.d.clone();
            dm[k] -= h;
            let fd = (psi(&dp) - psi(&dm)) / (2.0 * h);
            let size: f64 = fdiff.stencil().neighbors(k).chain([k]).map(|j| c.w[j].abs()).sum::<f64>()
                * 4.0 / c.grid.spacing().iter().map(|h| h * h).fold(f64::INFINITY, f64::min);
            prop_assert!((wd[k] - fd).abs() <= 1e-6 * (wd[k].abs() + size), "D[{k}]: {} vs {fd}", wd[k]);
        }
    }

    #[test]
    fn tape_and_system_traits_agree_with_direct_calls(c in cases()) {
        let n = c.u.len();
        let p = [c.model.d_w, c.model.r];
        let td = TissueDiffusion::new(&c.grid, &c.tissue).unwrap();
        let fdiff = FieldDiffusion::new(&c.grid);
        let op = td.operator(c.model).unwrap();
        // One graph with all three ops: out0 = A u, out1 = A(p) u, out2 = A(D) u.
        let mut g = Graph::new();
        let u = g.input("u", &[n]).unwrap();
        let pv = g.input("p", &[2]).unwrap();
        let dv = g.input("d", &[n]).unwrap();
        let o0 = op.record(&mut g, u).unwrap();
        let o1 = td.record(&mut g, u, pv).unwrap();
        let o2 = fdiff.record(&mut g, u, dv).unwrap();
        let tape = g.compile(&[o0, o1, o2]).unwrap();
        let mut ws = tape.workspace();
        tape.forward(&mut ws, &[&c.u, &p, &c.d]).unwrap();
        let direct = apply(&op, &c.u);
        prop_assert_eq!(ws.output(0), &direct[..]);
        prop_assert_eq!(ws.output(1), &direct[..]);
        let mut ad = vec![0.0; n];
        fdiff.apply(&c.d, &c.u, &mut ad).unwrap();
        prop_assert_eq!(ws.output(2), &ad[..]);
        // Tape VJP = direct VJPs summed over the three outputs.
        let (mut tu, mut tp, mut tdd) = (vec![0.0; n], vec![0.0; 2], vec![0.0; n]);
        tape.vjp(&mut ws, &[&c.w, &c.v, &c.vd], &mut [&mut tu, &mut tp, &mut tdd]).unwrap();
        let (mut e0, mut e1, mut e2, mut ep, mut ed) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], [0.0; 2], vec![0.0; n]);
        op.vjp(&c.w, &mut e0).unwrap();
        td.vjp(c.model, &c.u, &c.v, &mut e1, &mut ep).unwrap();
        fdiff.vjp_u(&c.d, &c.vd, &mut e2).unwrap();
        fdiff.vjp_d(&c.d, &c.u, &c.vd, &mut ed).unwrap();
        for i in 0..n {
            let e = e0[i] + e1[i] + e2[i];
            prop_assert!((tu[i] - e).abs() <= 1e-12 * (e0[i].abs() + e1[i].abs() + e2[i].abs() + 1e-300));
        }
        prop_assert_eq!(&tp[..], &ep[..]);
        prop_assert_eq!(&tdd, &ed);
        // Tape JVP/VJP dot identity (autodiff's checker).
        let dotc = check::check_jvp_vjp_dot(&tape, &[&c.u, &p, &c.d], &[&c.v, &[0.3, -0.7], &c.vd], &[&c.w, &c.v, &c.u]).unwrap();
        prop_assert!(dotc.rel_err <= 1e-10, "{dotc:?}");

        // System traits: rhs = apply; VJP/JVP; the Jacobian equals the assembled matrix.
        let mut dy = vec![0.0; n];
        OdeSystem::rhs(&td, 0.0, &c.u, &p, &mut dy);
        prop_assert_eq!(&dy, &direct);
        let mut jac = Jacobian::jacobian_matrix(&td);
        Jacobian::jacobian(&td, 0.0, &c.u, &p, &mut jac);
        let asm = op.assemble();
        prop_assert_eq!(jac.values(), asm.matrix().values());
        let mut jac_op = Jacobian::jacobian_matrix(&op);
        Jacobian::jacobian(&op, 0.0, &c.u, &[], &mut jac_op);
        prop_assert_eq!(jac_op.values(), asm.matrix().values());
        let mut jac_f = Jacobian::jacobian_matrix(&fdiff);
        Jacobian::jacobian(&fdiff, 0.0, &c.u, &c.d, &mut jac_f);
        let asm_f = AssembledDiffusion::new(&c.grid, &c.d).unwrap();
        prop_assert_eq!(jac_f.values(), asm_f.matrix().values());
        prop_assert_eq!(OdeSystem::n_params(&fdiff), n);
        let (mut sy, mut sp) = (vec![0.0; n], vec![0.0; 2]);
        Vjp::vjp(&td, 0.0, &c.u, &p, &c.v, &mut sy, &mut sp);
        prop_assert_eq!(&sy, &e1);
        prop_assert_eq!(&sp[..], &ep[..]);
        let mut sj = vec![0.0; n];
        Jvp::jvp(&asm, 0.0, &c.u, &[], &c.v, &[], &mut sj);
        let mut aj = vec![0.0; n];
        asm.apply(&c.v, &mut aj).unwrap();
        prop_assert_eq!(&sj, &aj);
    }
}

#[test]
fn tape_ops_reject_wrong_operand_shapes() {
    let g0 = Grid::full_2d([3, 2], [1.0, 1.0]).unwrap();
    let op = DiffusionOperator::new(&g0, vec![1.0; 6]).unwrap();
    let mut g = Graph::new();
    let u = g.input("u", &[5]).unwrap();
    assert!(op.record(&mut g, u).is_err());
    let fd = FieldDiffusion::new(&g0);
    let u6 = g.input("u6", &[6]).unwrap();
    let d5 = g.input("d5", &[5]).unwrap();
    assert!(fd.record(&mut g, u6, d5).is_err());
}

#[test]
fn autodiff_checker_agrees_on_tissue_parameter_gradient() {
    // Finite differences through the compiled tape, on a 2D phantom.
    let ph = Phantom::new_2d(20, 24, 6.0).unwrap();
    let td = TissueDiffusion::new(ph.grid(), ph.tissue()).unwrap();
    let n = td.n();
    let mut g = Graph::new();
    let u = g.input("u", &[n]).unwrap();
    let p = g.input("p", &[2]).unwrap();
    let out = td.record(&mut g, u, p).unwrap();
    let tape = g.compile(&[out]).unwrap();
    let uv: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 / 101.0).collect();
    let w: Vec<f64> = (0..n).map(|i| ((i * 104729) % 97) as f64 / 97.0 - 0.5).collect();
    let chk = check::check_vjp(&tape, &[&uv, &[0.12, 10.0]], &[&w]).unwrap();
    assert!(chk.max_rel_err < 1e-6, "{}", chk.max_rel_err);
}

#[test]
fn phantom_operator_conserves_mass_across_resolutions() {
    // 3D phantom at 4 mm, coarsened to 8 mm and 16 mm: each level's operator conserves mass
    // and the coarse masks nest as the rules promise.
    let ph = Phantom::new_3d(44, 54, 44, 4.0).unwrap();
    let (g, t) = (ph.grid(), ph.tissue());
    let m = TissueModel::default();
    let mut level = (g.clone(), t.clone());
    for _ in 0..2 {
        let (lg, lt) = &level;
        let op = DiffusionOperator::from_tissue(lg, lt, m).unwrap();
        let u: Vec<f64> = (0..op.n()).map(|i| (i as f64 * 0.37).sin()).collect();
        let au = apply(&op, &u);
        let mass: f64 = au.iter().sum::<f64>() * lg.cell_volume();
        let s: f64 = au.iter().map(|x| x.abs()).sum::<f64>() * lg.cell_volume();
        assert!(mass.abs() <= 1e-12 * s);
        let any = lg.downsample(2, MaskRule::Any).unwrap();
        let maj = lg.downsample(2, MaskRule::Majority).unwrap();
        assert!(maj.mask().iter().zip(any.mask()).all(|(&a, &b)| !a || b));
        let ct = lt.downsample(lg, 2).unwrap();
        // Whole-box tissue volume is kept (the phantom's box dims are even at these levels).
        let vol = |x: &[f64], gg: &Grid| x.iter().sum::<f64>() * gg.cell_volume();
        assert!((vol(lt.wm(), lg) - vol(ct.wm(), &maj)).abs() <= 1e-9 * vol(lt.wm(), lg));
        level = (maj, ct);
    }
    // A sagittal slice of the phantom is a valid 2D problem.
    let sg = g.slice(Plane::Sagittal, 22).unwrap();
    let st = t.slice(g, Plane::Sagittal, 22).unwrap();
    let op = DiffusionOperator::from_tissue(&sg, &st, m).unwrap();
    assert_eq!(op.n(), sg.n_active());
}
