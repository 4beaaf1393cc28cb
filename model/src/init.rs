//! Seeded random initialisation, so every fit and every new online row is reproducible.

use ndarray::Array2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A standard normal sample (rand_distr's ziggurat: a few ns, where Box–Muller's `ln` and
/// `cos` made initialising a new online row a third of a prequential event's cost).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// A rows × cols matrix of N(0, std²) samples.
pub(crate) fn normal_matrix(rows: usize, cols: usize, std: f64, rng: &mut impl Rng) -> Array2<f64> {
    Array2::from_shape_simple_fn((rows, cols), || normal(rng) * std)
}

/// SplitMix64: decorrelates nearby seeds.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The initial factors of entity `id` in namespace `salt`: depends only on (seed, salt, id),
/// never on arrival order, so an online model is reproducible however events interleave.
pub(crate) fn factors_for(seed: u64, salt: u64, id: i64, k: usize, std: f32) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(mix(seed ^ mix(salt ^ mix(id as u64))));
    (0..k).map(|_| rng.sample::<f32, _>(StandardNormal) * std).collect()
}
