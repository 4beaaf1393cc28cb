//! The random building blocks: a fixed xoshiro256++ generator seeded per purpose and entity,
//! normal and exponential draws, weighted picks and alias tables, proportional allocation.

use std::f64::consts::TAU;

use rand::{Rng, RngCore};
use schemas::splitmix::splitmix64;

/// Shares `total` out in proportion to `weights`, each index getting at least `min[i]` and at
/// most `max[i]`; the caller guarantees `sum(min) <= total <= sum(max)` for indices with
/// positive weight (and `min` only on those). Deterministic.
pub(super) fn allocate(total: u64, weights: &[f64], min: &[u32], max: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = min.to_vec();
    let mut left = total - out.iter().map(|&x| u64::from(x)).sum::<u64>();
    // Proportional passes; capped indices drop out and their share goes round again.
    while left > 0 {
        let open = |out: &[u32], i: usize| weights[i] > 0.0 && out[i] < max[i];
        let weight: f64 = (0..out.len()).filter(|&i| open(&out, i)).map(|i| weights[i]).sum();
        if weight <= 0.0 {
            break;
        }
        let mut given = 0u64;
        for i in 0..out.len() {
            if !open(&out, i) {
                continue;
            }
            let share = (left as f64 * weights[i] / weight).floor() as u64;
            let give = share.min(u64::from(max[i] - out[i]));
            out[i] += give as u32;
            given += give;
        }
        left -= given;
        if given == 0 {
            break;
        }
    }
    // The rounding remainder, one each, heaviest first.
    if left > 0 {
        let mut order: Vec<usize> = (0..out.len()).filter(|&i| weights[i] > 0.0).collect();
        order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
        while left > 0 {
            let before = left;
            for &i in &order {
                if left == 0 {
                    break;
                }
                if out[i] < max[i] {
                    out[i] += 1;
                    left -= 1;
                }
            }
            assert!(left < before, "allocate: capacity below total (validated by the caller)");
        }
    }
    out
}

/// Vose's alias method: fills `prob` and `alias` (local indices) for drawing from `weights`.
pub(super) fn build_alias(weights: &[f64], prob: &mut [f64], alias: &mut [u32]) {
    let n = weights.len();
    if n == 0 {
        return;
    }
    let total: f64 = weights.iter().sum();
    let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
    while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
        small.pop();
        prob[s] = scaled[s];
        alias[s] = l as u32;
        scaled[l] -= 1.0 - scaled[s];
        if scaled[l] < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    for i in small.into_iter().chain(large) {
        prob[i] = 1.0;
        alias[i] = i as u32;
    }
}

/// Index `i` with `cdf[i-1] <= x < cdf[i]`.
pub(super) fn pick_cdf(cdf: &[f64], x: f64) -> usize {
    cdf.iter().position(|&c| x < c).unwrap_or(cdf.len() - 1)
}

/// Index drawn in proportion to `weights` (summing to `total`) with `u` uniform in [0, 1).
pub(super) fn pick_weighted(weights: &[f64], total: f64, u: f64) -> usize {
    let mut x = u * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

pub(super) fn normal(rng: &mut Rng64) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

pub(super) fn exponential(rng: &mut Rng64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

/// Unix seconds of January 1st of `year` (proleptic Gregorian, UTC).
pub(super) fn jan_first(year: i64) -> i64 {
    let y = year - 1;
    let days = 365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400);
    days * 86_400
}

/// xoshiro256++ seeded through SplitMix64: small, fast, and fixed here so a seed means the
/// same data on every platform and `rand` release.
#[derive(Debug, Clone)]
pub(super) struct Rng64 {
    s: [u64; 4],
}

impl Rng64 {
    /// The random stream for one purpose (`stream`) and one entity (`id`) under `seed`.
    pub(super) fn stream(seed: u64, stream: u64, id: u64) -> Self {
        let mut x = splitmix64(seed ^ splitmix64(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ splitmix64(id)));
        let mut s = [0u64; 4];
        for v in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *v = splitmix64(x);
        }
        Self { s }
    }
}

impl RngCore for Rng64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
