//! Movie factors laid out for scoring a whole catalogue fast.
//!
//! Row-major factors make a user×catalogue product load-bound (every row reloads the user
//! vector). Panels of [`PANEL`] movies stored factor-major (`panel[f * PANEL + lane]`) let one
//! broadcast user component update 32 accumulators that stay in registers, with no horizontal
//! sums; this is what brings top-N over ml-latest-small under 50 µs without LAPACK/BLAS.

use ndarray::{ArrayView1, ArrayView2};

/// Movies per panel.
pub(crate) const PANEL: usize = 32;

/// `out[lane] = biases[lane] + Σ_f user[f] · panel[f * PANEL + lane]`.
#[inline]
pub(crate) fn score_panel(panel: &[f32], biases: &[f32; PANEL], user: &[f32], out: &mut [f32; PANEL]) {
    let mut acc = [0f32; PANEL];
    for (row, &uf) in panel.as_chunks::<PANEL>().0.iter().zip(user) {
        for lane in 0..PANEL {
            acc[lane] += uf * row[lane];
        }
    }
    for lane in 0..PANEL {
        out[lane] = acc[lane] + biases[lane];
    }
}

/// `out[lane] = Σ_f panel[f * PANEL + lane]²`: squared row norms, for cosines.
#[inline]
pub(crate) fn panel_norms_sq(panel: &[f32], out: &mut [f32; PANEL]) {
    let mut acc = [0f32; PANEL];
    for row in panel.as_chunks::<PANEL>().0 {
        for lane in 0..PANEL {
            acc[lane] += row[lane] * row[lane];
        }
    }
    *out = acc;
}

/// Index of factor `f` of row `slot` inside a buffer of whole panels with `k` factors.
#[inline]
pub(crate) fn element(slot: usize, f: usize, k: usize) -> usize {
    (slot / PANEL) * k * PANEL + f * PANEL + slot % PANEL
}

/// An immutable catalogue of movie factors (and a per-movie additive bias) in panels.
#[derive(Debug, Clone)]
pub(crate) struct Panels {
    rows: usize,
    k: usize,
    data: Vec<f32>,
    biases: Vec<f32>,
}

impl Panels {
    /// Copies row-major `factors` (rows × k) and `biases` (zeros when `None`).
    pub(crate) fn from_rows(factors: ArrayView2<'_, f32>, biases: Option<ArrayView1<'_, f32>>) -> Self {
        let (rows, k) = factors.dim();
        let padded = rows.div_ceil(PANEL) * PANEL;
        let mut data = vec![0f32; padded * k];
        for (r, row) in factors.outer_iter().enumerate() {
            for (f, &v) in row.iter().enumerate() {
                data[element(r, f, k)] = v;
            }
        }
        let mut b = vec![0f32; padded];
        if let Some(biases) = biases {
            b[..rows].iter_mut().zip(biases).for_each(|(d, &s)| *d = s);
        }
        Self { rows, k, data, biases: b }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Scores every row against `user`, handing each panel's scores to `f(first_row, scores)`;
    /// lanes past `rows()` in the last panel are padding.
    #[inline]
    pub(crate) fn for_each_panel(&self, user: &[f32], mut f: impl FnMut(usize, &[f32; PANEL])) {
        debug_assert_eq!(user.len(), self.k);
        let mut out = [0f32; PANEL];
        let biases = self.biases.as_chunks::<PANEL>().0;
        if self.k == 0 {
            for (p, b) in biases.iter().enumerate() {
                f(p * PANEL, b);
            }
            return;
        }
        for (p, (panel, b)) in self.data.chunks_exact(self.k * PANEL).zip(biases).enumerate() {
            score_panel(panel, b, user, &mut out);
            f(p * PANEL, &out);
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn panel_scores_equal_row_dot_products_plus_bias() {
        let rows = 70;
        let k = 5;
        let m = Array2::from_shape_fn((rows, k), |(r, f)| ((r * 7 + f * 3) % 11) as f32 - 5.0);
        let b = ndarray::Array1::from_shape_fn(rows, |r| r as f32 * 0.5);
        let user = [1.0, -2.0, 0.5, 3.0, 0.25];
        let panels = Panels::from_rows(m.view(), Some(b.view()));
        let mut got = vec![f32::NAN; rows];
        panels.for_each_panel(&user, |base, s| {
            for (lane, &v) in s.iter().enumerate() {
                if base + lane < rows {
                    got[base + lane] = v;
                }
            }
        });
        for r in 0..rows {
            let want = b[r] + m.row(r).iter().zip(&user).map(|(a, b)| a * b).sum::<f32>();
            assert!((got[r] - want).abs() < 1e-4, "row {r}: {} vs {want}", got[r]);
        }
    }
}
