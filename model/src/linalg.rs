//! Small dense linear algebra in pure Rust (no LAPACK): a Jacobi eigensolver for the small
//! projected matrices of randomized SVD, a one-sided Jacobi SVD to check it against, and
//! Gram-based orthonormalisation for tall matrices.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Slice};

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: returns eigenvalues in
/// descending order and the matching orthonormal eigenvectors as columns.
///
/// Jacobi is slow for large matrices but unconditionally stable and accurate to machine
/// precision, which is what a 50–200 wide projected Gram matrix needs.
///
/// # Panics
/// If `a` is not square.
pub fn symmetric_eigen(a: ArrayView2<'_, f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "symmetric_eigen needs a square matrix");
    let mut m = a.to_owned();
    let mut v = Array2::<f64>::eye(n);
    let total: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[[i, j]] * m[[i, j]])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * total || total == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[[p, q]];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let rotation = jacobi_rotation(m[[p, p]], m[[q, q]], apq);
                // M <- Jᵀ M J on rows/columns p and q.
                rotate_columns(m.view_mut(), p, q, rotation);
                rotate_columns(m.view_mut().reversed_axes(), p, q, rotation);
                rotate_columns(v.view_mut(), p, q, rotation);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[[j, j]].total_cmp(&m[[i, i]]));
    let values = order.iter().map(|&i| m[[i, i]]).collect();
    let vectors = v.select(Axis(1), &order);
    (values, vectors)
}

/// The Jacobi rotation `(cos, sin)` that diagonalises the symmetric 2×2 matrix
/// `[[app, apq], [apq, aqq]]` (the smaller of the two angles that do).
fn jacobi_rotation(app: f64, aqq: f64, apq: f64) -> (f64, f64) {
    let theta = (aqq - app) / (2.0 * apq);
    let t = if theta == 0.0 { 1.0 } else { theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt()) };
    let c = 1.0 / (t * t + 1.0).sqrt();
    (c, t * c)
}

/// Rotates columns `p` and `q` of `a` by `(cos, sin)`.
fn rotate_columns(mut a: ArrayViewMut2<'_, f64>, p: usize, q: usize, (c, s): (f64, f64)) {
    for mut row in a.rows_mut() {
        let (x, y) = (row[p], row[q]);
        row[p] = c * x - s * y;
        row[q] = s * x + c * y;
    }
}

/// A thin SVD `a = u · diag(s) · vt` with singular values descending.
#[derive(Debug, Clone)]
pub struct DenseSvd {
    /// Left singular vectors as columns (m × r).
    pub u: Array2<f64>,
    /// Singular values, descending (r = min(m, n)).
    pub s: Array1<f64>,
    /// Right singular vectors as rows (r × n).
    pub vt: Array2<f64>,
}

/// Dense SVD by one-sided Jacobi (Hestenes) rotations of columns: the reference the sparse
/// randomized SVD is tested against, and usable on small matrices.
pub fn dense_svd(a: ArrayView2<'_, f64>) -> DenseSvd {
    let (m, n) = a.dim();
    if m < n {
        let t = dense_svd(a.t());
        return DenseSvd { u: t.vt.t().to_owned(), s: t.s, vt: t.u.t().to_owned() };
    }
    let mut w = a.to_owned(); // columns converge to u_j * s_j
    let mut v = Array2::<f64>::eye(n);
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (cp, cq) = (w.column(p), w.column(q));
                let alpha = cp.dot(&cp);
                let beta = cq.dot(&cq);
                let gamma = cp.dot(&cq);
                if gamma.abs() <= 1e-15 * (alpha * beta).sqrt() || gamma == 0.0 {
                    continue;
                }
                rotated = true;
                let rotation = jacobi_rotation(alpha, beta, gamma);
                rotate_columns(w.view_mut(), p, q, rotation);
                rotate_columns(v.view_mut(), p, q, rotation);
            }
        }
        if !rotated {
            break;
        }
    }
    let norms: Vec<f64> = (0..n).map(|j| w.column(j).dot(&w.column(j)).sqrt()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| norms[j].total_cmp(&norms[i]));
    let s: Array1<f64> = order.iter().map(|&j| norms[j]).collect();
    let mut u = Array2::<f64>::zeros((m, n));
    for (dst, &j) in order.iter().enumerate() {
        if norms[j] > 0.0 {
            u.column_mut(dst).assign(&(&w.column(j) / norms[j]));
        }
    }
    let vt = v.select(Axis(1), &order).t().to_owned();
    DenseSvd { u, s, vt }
}

/// Orthonormal basis of the column space of tall `y` (m × l), via the eigen-decomposition of
/// its Gram matrix (SVQB), applied twice for accuracy. Directions with relative energy below
/// `1e-12` (singular value ratio `1e-6`) are dropped, so the result may have fewer than `l` columns when `y` is rank-deficient.
pub fn orthonormalize(y: &Array2<f64>) -> Array2<f64> {
    let mut q = svqb(y);
    if q.ncols() > 0 {
        q = svqb(&q);
    }
    q
}

fn svqb(y: &Array2<f64>) -> Array2<f64> {
    let gram = y.t().dot(y);
    let (values, vectors) = symmetric_eigen(gram.view());
    let top = values.first().copied().unwrap_or(0.0).max(0.0);
    // Eigenvalues carry an absolute error near 1e-16 · top; below 1e-12 · top is noise.
    let keep = values.iter().take_while(|&&l| l > 1e-12 * top && l > 0.0).count();
    let mut w = vectors.slice_axis(Axis(1), Slice::from(..keep)).to_owned();
    for (j, mut col) in w.columns_mut().into_iter().enumerate() {
        col /= values[j].sqrt();
    }
    y.dot(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_matrix(m: usize, n: usize, seed: u64) -> Array2<f64> {
        let mut x = seed;
        Array2::from_shape_fn((m, n), |_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        })
    }

    #[test]
    fn jacobi_eigen_reconstructs_a_symmetric_matrix() {
        let b = test_matrix(12, 9, 1);
        let a = b.t().dot(&b);
        let (vals, vecs) = symmetric_eigen(a.view());
        assert!(vals.windows(2).into_iter().all(|w| w[0] >= w[1]));
        let rebuilt = vecs.dot(&Array2::from_diag(&vals)).dot(&vecs.t());
        assert!((&rebuilt - &a).iter().all(|d| d.abs() < 1e-10));
        let ortho = vecs.t().dot(&vecs);
        assert!((&ortho - &Array2::<f64>::eye(9)).iter().all(|d| d.abs() < 1e-10));
    }

    #[test]
    fn dense_svd_reconstructs_wide_and_tall_matrices() {
        for (m, n) in [(10, 6), (5, 8)] {
            let a = test_matrix(m, n, 7);
            let d = dense_svd(a.view());
            let rebuilt = d.u.dot(&Array2::from_diag(&d.s)).dot(&d.vt);
            assert!((&rebuilt - &a).iter().all(|x| x.abs() < 1e-10), "{m}x{n}");
            assert!(d.s.windows(2).into_iter().all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn orthonormalize_spans_the_input_and_drops_dependent_columns() {
        let base = test_matrix(40, 3, 3);
        // Six columns spanning only three directions.
        let y = ndarray::concatenate(Axis(1), &[base.view(), (&base * 2.0).view()]).unwrap();
        let q = orthonormalize(&y);
        assert_eq!(q.ncols(), 3);
        let qtq = q.t().dot(&q);
        assert!((&qtq - &Array2::<f64>::eye(3)).iter().all(|d| d.abs() < 1e-10));
        let residual = &base - &q.dot(&q.t().dot(&base));
        assert!(residual.iter().all(|d| d.abs() < 1e-10));
    }
}
