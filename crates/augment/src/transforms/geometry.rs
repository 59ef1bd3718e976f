//! The matrices of the geometric transforms, as albumentations builds them.

use super::warp;

/// albumentations `create_affine_transformation_matrix` with zero shear, centred at
/// `(w/2 - 0.5, h/2 - 0.5)`; returns the top two rows (source -> destination).
pub(super) fn affine_matrix(width: u32, height: u32, tx: f64, ty: f64, sx: f64, sy: f64, angle: f64) -> [f64; 6] {
    let (cx, cy) = (f64::from(width) / 2.0 - 0.5, f64::from(height) / 2.0 - 0.5);
    let rad = angle.rem_euclid(360.0).to_radians();
    let (s, c) = rad.sin_cos();
    type M = [[f64; 3]; 3];
    let mul = |a: M, b: M| -> M {
        let mut r = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
            }
        }
        r
    };
    let shift_tl = [[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]];
    let scale = [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]];
    let rot = [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]];
    let shear = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let trans = [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]];
    let shift_c = [[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]];
    // numpy evaluates `a @ b @ c ...` left to right.
    let m = mul(mul(mul(mul(mul(shift_c, trans), shear), rot), scale), shift_tl);
    [m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]]
}

/// `np.allclose(m, eye(3))`: albumentations skips the warp for an identity matrix.
pub(super) fn is_identity(m: &[f64; 6]) -> bool {
    let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    m.iter().zip(id).all(|(a, b): (&f64, f64)| (a - b).abs() <= 1e-8 + 1e-5 * b.abs())
}

/// albumentations `compute_perspective_params` + the `keep_size` rescale of `perspective`.
pub(super) fn perspective_matrix(points: [[f32; 2]; 4], width: u32, height: u32) -> [f64; 9] {
    let mut p = points;
    // adjust_dimension mutates the corners in place when a side is shorter than 2 px.
    fn adjust(p: &mut [[f32; 2]; 4], i: usize, j: usize) -> f32 {
        let (mut d1, mut d2) = (p[i], p[j]);
        let size = ((d1[0] - d2[0]).powi(2) + (d1[1] - d2[1]).powi(2)).sqrt();
        if size >= 2.0 {
            return size;
        }
        let step = (2.0 - size) / 2.0;
        for k in 0..2 {
            if d1[k] > d2[k] {
                d1[k] += step;
            }
        }
        for k in 0..2 {
            if d1[k] > d2[k] {
                d2[k] -= step;
            }
        }
        for k in 0..2 {
            if d1[k] <= d2[k] {
                d1[k] -= step;
            }
        }
        for k in 0..2 {
            if d1[k] <= d2[k] {
                d2[k] += step;
            }
        }
        p[i] = d1;
        p[j] = d2;
        2.0
    }
    // Corner order: 0 top-left, 1 top-right, 2 bottom-right, 3 bottom-left.
    let max_width = adjust(&mut p, 1, 0).max(adjust(&mut p, 2, 3));
    let max_height = adjust(&mut p, 2, 1).max(adjust(&mut p, 3, 0));
    let (max_width, max_height) = ((max_width as i64).max(1) as f64, (max_height as i64).max(1) as f64);
    let (w, h) = (width as f32, height as f32);
    let dst = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let m = warp::perspective_transform(&p, &dst);
    let (sx, sy) = (f64::from(width) / max_width, f64::from(height) / max_height);
    [m[0] * sx, m[1] * sx, m[2] * sx, m[3] * sy, m[4] * sy, m[5] * sy, m[6], m[7], m[8]]
}
