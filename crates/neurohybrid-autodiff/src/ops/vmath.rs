//! Branch-free `exp`, `tanh` and `sigmoid`, written so that loops over slices autovectorise,
//! and the runtime SIMD dispatch every elementwise loop of the crate runs under.
//!
//! Why not libm: `f64::tanh` is an opaque call per element (measured: 76 % of an MLP replay
//! was libm `tanh`), so a loop over it never vectorises. The kernels here are straight-line
//! IEEE arithmetic plus bit manipulation — no branches, no calls, no FMA — so LLVM turns a
//! loop over them into SSE2/AVX2 code, and because no operation is fused or reassociated the
//! result is bit-identical in every lane width and on every x86-64 machine.
//!
//! Accuracy (tested in this file against `f64::tanh` / `f64::exp` on dense sweeps): at most
//! 4 ulp; special values (±0, ±∞, NaN, subnormals) as in libm.
//!
//! Dispatch: kernels are declared with [`multiversion!`], which compiles them for baseline
//! x86-64 and for AVX2+FMA and picks one at runtime; the build itself stays generic x86-64.

// Constants keep the digits of their sources (fdlibm, Cephes) rather than the shortest
// round-tripping form.
#![allow(clippy::excessive_precision)]

/// `log2(e)`.
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// Cody–Waite split of ln 2 (fdlibm's): `LN2_HI` has 21 trailing zero bits, so `k · LN2_HI`
/// is exact for |k| < 2^21 and `x - k ln 2` loses nothing to cancellation.
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
/// `1.5 · 2^52`: adding it rounds to the nearest integer (ties to even) and leaves that
/// integer in the low mantissa bits (valid for |y| < 2^51); SSE2 has no vector `round`.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^r` for |r| ≤ ln2/2 (plus rounding slack): Taylor polynomial of degree 13, whose
/// truncation error (|r|^14/14! ≤ 4e-18) is below half an ulp of the result; Horner in
/// plain multiply/add (the rounding error, about 1 ulp, dominates).
#[inline(always)]
fn exp_poly(r: f64) -> f64 {
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p * r + c;
    }
    p
}

/// Range reduction `x = k ln2 + r`: returns `(e^r, k + 2048)` (the offset keeps `k`
/// non-negative so only logical shifts are needed, which SSE2 has for 64-bit lanes).
#[inline(always)]
fn reduce(x: f64) -> (f64, u64) {
    let t = x * LOG2_E + ROUND;
    let kf = t - ROUND;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let k_biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(2048);
    (exp_poly(r), k_biased)
}

/// `e^x` for every `f64`: overflow to `+∞` above 709.78, gradual underflow to subnormals and
/// 0 below −708.4, NaN → NaN.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // Clamping keeps k in [-1077, 1025]; NaN passes through `clamp` and poisons `p`.
    let (p, kb) = reduce(x.clamp(-746.0, 710.0));
    // 2^k = 2^k1 · 2^k2 with k1 = ⌊k/2⌋, both normal numbers: `p · 2^k1` is exact, and the
    // one rounding happens in the last product (subnormal or infinite results included).
    let h = kb >> 1; // k1 + 1024
    let s1 = f64::from_bits((h - 1) << 52); // biased exponent k1 + 1023
    let s2 = f64::from_bits((kb - h - 1) << 52); // biased exponent k2 + 1023
    p * s1 * s2
}

/// `e^x` for `x` in [-700, 700] (no overflow/underflow handling: one scale factor).
#[inline(always)]
fn exp_mid(x: f64) -> f64 {
    let (p, kb) = reduce(x);
    p * f64::from_bits((kb - 1025) << 52)
}

/// `tanh(x)`. For |x| < 0.625 Cephes' rational form `x + x³ P(x²)/Q(x²)` (Moshier, *Methods
/// and Programs for Mathematical Functions*, 1989: peak error 2.5e-16 on [-2, 2]), which
/// avoids the cancellation of `1 - 2/(e^{2|x|}+1)` near 0; above it that exp form, whose
/// subtraction from 1 then loses less than one ulp. Both branches are computed and one is
/// selected, with a single division: branch-free, so the loop vectorises.
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    const P: [f64; 3] = [
        -9.643_991_794_250_522_386_28e-1,
        -9.928_772_310_019_185_865_64e1,
        -1.614_687_684_417_084_479_52e3,
    ];
    const Q: [f64; 3] = [
        1.128_116_784_916_329_314_02e2,
        2.235_488_390_601_004_485_83e3,
        4.844_063_053_251_254_860_48e3,
    ];
    let a = x.abs();
    let s = a * a;
    let p = (P[0] * s + P[1]) * s + P[2];
    let q = ((s + Q[0]) * s + Q[1]) * s + Q[2];
    // e^{2|x|}, saturated: beyond |x| = 20 tanh rounds to ±1 anyway (1 - 2e^{-40} = 1).
    let a2 = 2.0 * a;
    let e = exp_mid(if a2 < 40.0 { a2 } else { 40.0 });
    // NaN goes to the rational branch, which propagates it.
    let small = a < 0.625 || a.is_nan();
    let (base, num, den) = if small { (a, a * s * p, q) } else { (1.0, -2.0, e + 1.0) };
    (base + num / den).copysign(x)
}

/// Logistic `1/(1+e^{-x})`, overflow-free: with `e = e^{-|x|} ≤ 1`, `1/(1+e)` for x ≥ 0 and
/// `e/(1+e)` for x < 0 (keeps full relative accuracy of tiny results).
#[inline(always)]
pub(crate) fn sigmoid(x: f64) -> f64 {
    let e = exp(-x.abs());
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// Defines `fn` items compiled twice — for baseline x86-64 and with AVX2 + FMA enabled — with
/// a runtime switch (`is_x86_feature_detected!`, cached by std) between them. The body is an
/// `#[inline(always)]` inner function, so LLVM vectorises it for each instruction set.
///
/// Why not `pulp::Arch::dispatch` with a closure: measured (callgrind + disassembly), LLVM did
/// not inline the bigger kernel closures into pulp's AVX2 function and left them scalar.
macro_rules! multiversion {
    ($($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block)*) => {$(
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) {
                    imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx2` was compiled for (checked
                    // just above); the body is safe code.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    )*};
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place (ordered bit patterns; 0 for equal values and for
    /// two NaNs).
    fn ulps(a: f64, b: f64) -> u64 {
        if a.is_nan() && b.is_nan() {
            return 0;
        }
        let key = |v: f64| {
            let i = v.to_bits() as i64;
            if i < 0 { i64::MIN - i } else { i }
        };
        key(a).abs_diff(key(b))
    }

    /// A dense sweep of `[lo, hi]` plus every special value.
    fn sweep(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut xs: Vec<f64> = (0..=n).map(|i| lo + (hi - lo) * i as f64 / n as f64).collect();
        // Around the branch points and a log-spaced sweep of small magnitudes.
        for c in [0.625, -0.625, 20.0, -20.0, 19.1, -19.1] {
            xs.extend((-50..=50).map(|i| c + f64::EPSILON * 8.0 * f64::from(i)));
        }
        for e in -320..3 {
            for m in [1.0, 1.7, 3.3, 7.9] {
                xs.push(m * 10f64.powi(e));
                xs.push(-m * 10f64.powi(e));
            }
        }
        xs.extend([0.0, -0.0, f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 5e-324, -5e-324]);
        xs.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MAX, f64::MIN]);
        xs
    }

    multiversion! {
        fn map_all(which: u8, xs: &[f64], ys: &mut [f64]) {
            match which {
                0 => for (y, &x) in ys.iter_mut().zip(xs) { *y = tanh(x); },
                1 => for (y, &x) in ys.iter_mut().zip(xs) { *y = exp(x); },
                _ => for (y, &x) in ys.iter_mut().zip(xs) { *y = sigmoid(x); },
            }
        }
    }

    /// Applies a kernel through a dispatched, vectorised slice loop (the path replays use).
    fn vectorised(which: u8, xs: &[f64]) -> Vec<f64> {
        let mut ys = vec![0.0; xs.len()];
        map_all(which, xs, &mut ys);
        ys
    }

    /// `which`: the kernel `f` as numbered in `map_all`.
    fn max_ulps(which: u8, f: fn(f64) -> f64, reference: fn(f64) -> f64, xs: &[f64]) -> (u64, f64) {
        let ys = vectorised(which, xs);
        let mut worst = (0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            // The scalar and vector paths must agree bit for bit (no FMA, no reassociation).
            assert_eq!(y.to_bits(), f(x).to_bits(), "vector lane differs from scalar at {x}");
            let d = ulps(y, reference(x));
            if d > worst.0 {
                worst = (d, x);
            }
        }
        worst
    }

    #[test]
    fn tanh_within_4_ulp_of_libm() {
        let xs = sweep(-30.0, 30.0, 2_000_000);
        let (d, at) = max_ulps(0, tanh, f64::tanh, &xs);
        eprintln!("tanh: max {d} ulp (at {at})");
        assert!(d <= 4, "tanh: {d} ulp at {at}");
    }

    #[test]
    fn tanh_special_values() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(5e-324), 5e-324);
        assert_eq!(tanh(-1e-310), -1e-310);
        assert_eq!(tanh(19.5), 1.0);
        assert_eq!(tanh(-700.0), -1.0);
        // Odd symmetry holds exactly.
        for x in [0.1, 0.624, 0.625, 3.0, 18.0] {
            assert_eq!(tanh(-x), -tanh(x));
        }
    }

    #[test]
    fn exp_within_4_ulp_of_libm() {
        // Normal range, then the overflow and gradual-underflow ends.
        let mut xs = sweep(-40.0, 40.0, 1_000_000);
        xs.extend(sweep(-745.2, 709.8, 200_000));
        xs.extend((0..2000).map(|i| -708.0 - 37.0 * f64::from(i) / 2000.0));
        let (d, at) = max_ulps(1, exp, f64::exp, &xs);
        eprintln!("exp: max {d} ulp (at {at})");
        assert!(d <= 4, "exp: {d} ulp at {at}");
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-746.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(5e-324), 1.0);
    }

    #[test]
    fn sigmoid_within_4_ulp_of_the_libm_formula() {
        fn reference(x: f64) -> f64 {
            if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
        }
        let mut xs = sweep(-40.0, 40.0, 1_000_000);
        xs.extend(sweep(-745.0, 745.0, 100_000));
        let (d, at) = max_ulps(2, sigmoid, reference, &xs);
        eprintln!("sigmoid: max {d} ulp (at {at})");
        assert!(d <= 4, "sigmoid: {d} ulp at {at}");
        assert_eq!(sigmoid(800.0), 1.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(f64::NAN).is_nan());
    }
}
