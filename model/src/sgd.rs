//! The one SGD step of biased matrix factorisation, shared by online updates and offline
//! training so both optimise exactly the same objective.

use ndarray::{ArrayViewMut1, Zip};

use crate::error::ModelError;

/// Step sizes, penalties and the safety bounds of one SGD update.
///
/// Biases and factors get separate rates and penalties: biases carry most of the signal and
/// tolerate a lighter penalty, factors overfit without a heavier one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    /// Learning rate of the user and movie biases.
    pub lr_bias: f32,
    /// Learning rate of the latent factors.
    pub lr_factor: f32,
    /// L2 penalty on biases.
    pub reg_bias: f32,
    /// L2 penalty on factors.
    pub reg_factor: f32,
    /// Largest |rating - prediction| a step acts on, so one wild event moves little.
    pub max_error: f32,
    /// Bound on each factor component and each bias, so nothing can run away.
    pub max_value: f32,
}

impl Default for SgdParams {
    fn default() -> Self {
        Self { lr_bias: 0.01, lr_factor: 0.01, reg_bias: 0.005, reg_factor: 0.04, max_error: 4.5, max_value: 4.5 }
    }
}

impl SgdParams {
    /// Checks every field is finite and in range.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let check = |name, v: f32, ok: bool, reason: &str| {
            if v.is_finite() && ok { Ok(()) } else { Err(ModelError::InvalidParameter { name, reason: reason.into() }) }
        };
        check("lr_bias", self.lr_bias, self.lr_bias > 0.0 && self.lr_bias < 1.0, "must be in (0, 1)")?;
        check("lr_factor", self.lr_factor, self.lr_factor > 0.0 && self.lr_factor < 1.0, "must be in (0, 1)")?;
        check("reg_bias", self.reg_bias, self.reg_bias >= 0.0, "must be >= 0")?;
        check("reg_factor", self.reg_factor, self.reg_factor >= 0.0, "must be >= 0")?;
        check("max_error", self.max_error, self.max_error > 0.0, "must be > 0")?;
        check("max_value", self.max_value, self.max_value > 0.0, "must be > 0")
    }

    /// The same parameters with both learning rates multiplied by `factor` (schedules).
    pub fn scaled(&self, factor: f32) -> Self {
        Self { lr_bias: self.lr_bias * factor, lr_factor: self.lr_factor * factor, ..*self }
    }
}

/// `v` limited to `[-m, m]`, written as two selects so the loop vectorises to min/max.
#[inline(always)]
fn clip(v: f32, m: f32) -> f32 {
    let v = if v > m { m } else { v };
    if v < -m { -m } else { v }
}

/// Returns `(p·q, |p|², |q|²)`, on slices when both views are contiguous (the offline case)
/// and strided otherwise (the online model keeps movies in scoring panels).
#[inline]
fn dot_and_norms(p: &ArrayViewMut1<'_, f32>, q: &ArrayViewMut1<'_, f32>) -> (f32, f32, f32) {
    if let (Some(a), Some(b)) = (p.as_slice(), q.as_slice()) {
        let mut d = [0f32; 8];
        let mut na = [0f32; 8];
        let mut nb = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..8 {
                d[l] += x[l] * y[l];
                na[l] += x[l] * x[l];
                nb[l] += y[l] * y[l];
            }
        }
        let (mut s, mut sa, mut sb) = (d.iter().sum::<f32>(), na.iter().sum::<f32>(), nb.iter().sum::<f32>());
        for (x, y) in ra.iter().zip(rb) {
            s += x * y;
            sa += x * x;
            sb += y * y;
        }
        (s, sa, sb)
    } else {
        Zip::from(p).and(q).fold((0f32, 0f32, 0f32), |(s, sa, sb), &x, &y| (s + x * y, sa + x * x, sb + y * y))
    }
}

/// One stochastic gradient step of biased MF on the rating `rating` of user `user` for movie
/// `item`, where the prediction is `global_mean + user_bias + item_bias + user·item`.
/// Returns the prediction error `rating - prediction` measured before the step.
///
/// The step is bounded three ways so replays and re-ratings cannot blow the model up:
/// the error is clipped to `max_error`; the step is shrunk when its first-order effect on the
/// prediction would overshoot the rating; biases and factor components are clipped to
/// `max_value`. Contiguous views (offline training) take a vectorised path, strided views
/// (the online model's scoring panels) a general one.
///
/// # Panics
/// If `user` and `item` differ in length.
#[inline]
pub fn sgd_step(
    global_mean: f32,
    user_bias: &mut f32,
    item_bias: &mut f32,
    user: ArrayViewMut1<'_, f32>,
    item: ArrayViewMut1<'_, f32>,
    rating: f32,
    params: &SgdParams,
) -> f32 {
    let rates = BiasRates { user: params.lr_bias, item: params.lr_bias };
    sgd_step_with(global_mean, user_bias, item_bias, user, item, rating, params, rates)
}

/// Learning rates of the two biases in one step, when they differ from `SgdParams::lr_bias`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasRates {
    /// Rate of the user's bias.
    pub user: f32,
    /// Rate of the movie's bias.
    pub item: f32,
}

impl BiasRates {
    /// Rates that start near a running mean's `1 / (n + warmup)` for an entity's `n`-th rating
    /// and settle at `floor`: a bias seen a few times moves fast (a new user's first ratings
    /// say most about their offset), one seen often moves at the configured rate.
    pub fn warming(floor: f32, warmup: f32, user_n: usize, item_n: usize) -> Self {
        let rate = |n: usize| floor.max(1.0 / (n as f32 + warmup));
        Self { user: rate(user_n), item: rate(item_n) }
    }
}

/// [`sgd_step`] with per-bias learning rates (`params.lr_bias` is not used).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn sgd_step_with(
    global_mean: f32,
    user_bias: &mut f32,
    item_bias: &mut f32,
    mut user: ArrayViewMut1<'_, f32>,
    mut item: ArrayViewMut1<'_, f32>,
    rating: f32,
    params: &SgdParams,
    rates: BiasRates,
) -> f32 {
    assert_eq!(user.len(), item.len(), "user and item factors differ in length");
    let (dot, pp, qq) = dot_and_norms(&user, &item);
    let error = rating - (global_mean + *user_bias + *item_bias + dot);
    let mut e = error.clamp(-params.max_error, params.max_error);
    // First-order change of the prediction per unit error; keep it below 1 (no overshoot).
    let gain = rates.user + rates.item + params.lr_factor * (pp + qq);
    if gain > 1.0 {
        e /= gain;
    }
    if !e.is_finite() {
        return error;
    }
    let m = params.max_value;
    *user_bias = clip(*user_bias + rates.user * (e - params.reg_bias * *user_bias), m);
    *item_bias = clip(*item_bias + rates.item * (e - params.reg_bias * *item_bias), m);
    let (lr, reg) = (params.lr_factor, params.reg_factor);
    let update = |p: &mut f32, q: &mut f32| {
        let (p0, q0) = (*p, *q);
        *p = clip(p0 + lr * (e * q0 - reg * p0), m);
        *q = clip(q0 + lr * (e * p0 - reg * q0), m);
    };
    match (user.as_slice_mut(), item.as_slice_mut()) {
        (Some(a), Some(b)) => a.iter_mut().zip(b.iter_mut()).for_each(|(p, q)| update(p, q)),
        _ => Zip::from(&mut user).and(&mut item).for_each(update),
    }
    error
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    use super::*;

    fn predict(mu: f32, bu: f32, bi: f32, p: &Array1<f32>, q: &Array1<f32>) -> f32 {
        mu + bu + bi + p.dot(q)
    }

    #[test]
    fn an_sgd_step_moves_the_prediction_toward_the_rating() {
        for rating in [0.5f32, 5.0] {
            let mut p = Array1::from_vec((0..16).map(|i| (i as f32 * 0.37).sin() * 0.1).collect());
            let mut q = Array1::from_vec((0..16).map(|i| (i as f32 * 0.91).cos() * 0.1).collect());
            let (mut bu, mut bi) = (0.1, -0.2);
            let before = predict(3.5, bu, bi, &p, &q);
            let err = sgd_step(3.5, &mut bu, &mut bi, p.view_mut(), q.view_mut(), rating, &SgdParams::default());
            let after = predict(3.5, bu, bi, &p, &q);
            assert!((err - (rating - before)).abs() < 1e-6);
            assert!((rating - after).abs() < (rating - before).abs(), "{before} -> {after} for {rating}");
            assert_eq!((after - before).signum(), (rating - before).signum());
        }
    }

    #[test]
    fn strided_and_contiguous_views_take_the_same_step() {
        let p0: Vec<f32> = (0..24).map(|i| (i as f32 * 0.3).sin() * 0.2).collect();
        let q0: Vec<f32> = (0..24).map(|i| (i as f32 * 0.7).cos() * 0.2).collect();
        let params = SgdParams { lr_factor: 0.05, ..SgdParams::default() };
        let (mut p, mut q) = (Array1::from_vec(p0.clone()), Array1::from_vec(q0.clone()));
        let (mut bu, mut bi) = (0.0, 0.0);
        sgd_step(3.0, &mut bu, &mut bi, p.view_mut(), q.view_mut(), 4.0, &params);
        // The same item stored as column 1 of a 24 x 3 matrix: stride 3.
        let mut panel = Array2::<f32>::zeros((24, 3));
        panel.column_mut(1).assign(&Array1::from_vec(q0));
        let mut p2 = Array1::from_vec(p0);
        let (mut bu2, mut bi2) = (0.0, 0.0);
        sgd_step(3.0, &mut bu2, &mut bi2, p2.view_mut(), panel.column_mut(1), 4.0, &params);
        assert!((&p - &p2).iter().all(|d| d.abs() < 1e-6));
        assert!((&q - &panel.column(1)).iter().all(|d| d.abs() < 1e-6));
        assert_eq!((bu, bi), (bu2, bi2));
    }

    #[test]
    fn replaying_one_event_many_times_keeps_the_model_finite_and_bounded() {
        // Deliberately aggressive rates: without the overshoot guard this oscillates and grows.
        let params = SgdParams { lr_bias: 0.5, lr_factor: 0.9, reg_bias: 0.0, reg_factor: 0.0, ..SgdParams::default() };
        let mut p = Array1::from_elem(64, 0.5f32);
        let mut q = Array1::from_elem(64, 0.5f32);
        let (mut bu, mut bi) = (0.0f32, 0.0f32);
        for _ in 0..100_000 {
            sgd_step(3.5, &mut bu, &mut bi, p.view_mut(), q.view_mut(), 5.0, &params);
        }
        let all = p.iter().chain(q.iter()).chain([&bu, &bi]);
        assert!(all.clone().all(|v| v.is_finite() && v.abs() <= params.max_value));
        let pred = predict(3.5, bu, bi, &p, &q);
        assert!((pred - 5.0).abs() < 1e-3, "prediction {pred}");
    }

    #[test]
    fn a_nan_rating_leaves_the_parameters_untouched() {
        let mut p = Array1::from_elem(4, 0.1f32);
        let mut q = Array1::from_elem(4, 0.1f32);
        let (mut bu, mut bi) = (0.0f32, 0.0f32);
        sgd_step(3.5, &mut bu, &mut bi, p.view_mut(), q.view_mut(), f32::NAN, &SgdParams::default());
        assert!(p.iter().chain(q.iter()).all(|&v| v == 0.1) && bu == 0.0 && bi == 0.0);
    }
}
