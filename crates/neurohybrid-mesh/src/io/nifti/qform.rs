//! The NIfTI qform: a rotation stored as the quaternion `(b, c, d)` (with `a ≥ 0` implied),
//! a handedness factor `qfac` and voxel sizes, after nifti1.h "method 2" and
//! `nifti_quatern_to_mat44` / `nifti_mat44_to_quatern` in nifti1_io.c.

/// nifti1.h "method 2": `a = √(1 − b² − c² − d²)`; a slightly non-unit quaternion stored in
/// float32 is renormalized rather than rejected.
pub(super) fn quaternion_to_rotation(b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    let s = b * b + c * c + d * d;
    let (a, b, c, d) = if s > 1.0 {
        let n = s.sqrt();
        (0.0, b / n, c / n, d / n)
    } else {
        ((1.0 - s).sqrt(), b, c, d)
    };
    [
        [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
        [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
        [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ]
}

/// The qform parameters `(b, c, d, qfac)` of an affine's 3×3 part, after `mat44_to_quatern`
/// in nifti1_io.c: columns normalized, a negative determinant moved into `qfac`, then the
/// quaternion of the rotation by the branch with the largest pivot (numerically stable).
/// A sheared affine is only approximated by its qform; readers use the exact sform first.
pub(super) fn rotation_to_quaternion(m: &[[f64; 4]; 4]) -> (f64, f64, f64, f64) {
    let mut r = [[0.0; 3]; 3];
    for col in 0..3 {
        let norm = (0..3).map(|row| m[row][col] * m[row][col]).sum::<f64>().sqrt();
        let norm = if norm > 0.0 { norm } else { 1.0 };
        for row in 0..3 {
            r[row][col] = m[row][col] / norm;
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, b, c, d) = if trace > 0.5 {
        let a = 0.5 * trace.sqrt();
        (a, 0.25 * (r32 - r23) / a, 0.25 * (r13 - r31) / a, 0.25 * (r21 - r12) / a)
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            let b = 0.5 * xd.sqrt();
            (0.25 * (r32 - r23) / b, b, 0.25 * (r12 + r21) / b, 0.25 * (r13 + r31) / b)
        } else if yd > 1.0 {
            let c = 0.5 * yd.sqrt();
            (0.25 * (r13 - r31) / c, 0.25 * (r12 + r21) / c, c, 0.25 * (r23 + r32) / c)
        } else {
            let d = 0.5 * zd.max(0.0).sqrt().max(f64::MIN_POSITIVE);
            (0.25 * (r21 - r12) / d, 0.25 * (r13 + r31) / d, 0.25 * (r23 + r32) / d, d)
        }
    };
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    (sign * b, sign * c, sign * d, qfac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rot_z(theta: f64) -> [[f64; 4]; 4] {
        let (s, c) = theta.sin_cos();
        [[c, -s, 0.0, 1.0], [s, c, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    }

    #[test]
    fn quaternion_round_trips_rotations_and_reflections() {
        for theta in [0.0, 0.3, 1.5, 3.1, -2.0] {
            for flip in [1.0, -1.0] {
                let mut m = rot_z(theta);
                for row in m.iter_mut().take(3) {
                    row[2] *= flip;
                }
                let (b, c, d, qfac) = rotation_to_quaternion(&m);
                assert_eq!(qfac, flip);
                let r = quaternion_to_rotation(b, c, d);
                for row in 0..3 {
                    for col in 0..3 {
                        let want = m[row][col] * if col == 2 { qfac } else { 1.0 };
                        assert!((r[row][col] - want).abs() < 1e-12, "θ {theta} flip {flip}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_180_degree_rotation_takes_the_small_trace_branch() {
        // diag(1, −1, −1): trace + 1 = 0 < 0.5, so the xd branch is used.
        let m = [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0; 4]];
        let (b, c, d, qfac) = rotation_to_quaternion(&m);
        assert_eq!(qfac, 1.0);
        let r = quaternion_to_rotation(b, c, d);
        assert!((r[1][1] + 1.0).abs() < 1e-12 && (r[0][0] - 1.0).abs() < 1e-12);
    }
}
