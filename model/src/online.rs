//! The online biased MF model: one SGD step per rating event, new users and movies added on
//! first sight, updated by the consumer while serving threads read.
//!
//! Concurrency without a global lock: users live in a `DashMap` (sharded locks); movies live
//! in fixed-size blocks of [`BLOCK`] rows, each behind its own `RwLock`, reached through a
//! pre-sized table of `OnceLock`s so finding a block never locks. An update holds one user
//! shard, then one movie block; `predict` reads in the same order (so no cycle can form), every
//! other reader holds one lock at a time and copies out what it needs, so nothing hands out a
//! guard. Movie blocks store factors in scoring panels, so top-N scans
//! the live model as fast as a frozen one.

use std::collections::{BTreeMap, btree_map};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use ndarray::ArrayViewMut1;

use crate::Recommender;
use crate::error::ModelError;
use crate::explain::{Reason, cosine, reasons};
use crate::ids::{IdBuildHasher, ItemId, UserId};
use crate::init::factors_for;
use crate::mf::MfModel;
use crate::panel::{PANEL, element, panel_norms_sq, score_panel};
use crate::ratings::Ratings;
use crate::sgd::{BiasRates, SgdParams, sgd_step_with};
use crate::topn::{Query, Scored, Selector};

mod state;
pub use state::{ItemRecord, OnlineState, RatedRecord, UserRecord};

/// Movies per lock: small enough that an update blocks few readers, large enough that a
/// catalogue scan takes few locks (ml-latest-small: 38).
pub const BLOCK: usize = 256;
const USER_SALT: u64 = 1;
const ITEM_SALT: u64 = 2;

/// Settings of the online model; construct with [`OnlineModel::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineConfig {
    factors: usize,
    sgd: SgdParams,
    init_std: f32,
    seed: u64,
    rating_range: (f32, f32),
    max_items: usize,
    prior_mean: f32,
    shrink: f32,
    bias_warmup: Option<f32>,
}

/// Builder of [`OnlineConfig`].
#[derive(Debug, Clone)]
pub struct OnlineConfigBuilder(OnlineConfig);

impl Default for OnlineConfigBuilder {
    fn default() -> Self {
        Self(OnlineConfig {
            factors: 64,
            sgd: SgdParams { lr_bias: 0.02, lr_factor: 0.02, reg_bias: 0.01, reg_factor: 0.05, ..SgdParams::default() },
            init_std: 0.05,
            seed: 42,
            rating_range: (0.5, 5.0),
            max_items: 1 << 22,
            prior_mean: 3.5,
            shrink: 10.0,
            bias_warmup: Some(5.0),
        })
    }
}

impl OnlineConfigBuilder {
    /// Latent factors of a model started empty (default 64); a model re-based on a batch
    /// model takes the batch model's count instead.
    pub fn factors(mut self, k: usize) -> Self {
        self.0.factors = k;
        self
    }

    /// Per-event SGD parameters (default: rates 0.02, penalties 0.01 biases / 0.05 factors).
    pub fn sgd(mut self, sgd: SgdParams) -> Self {
        self.0.sgd = sgd;
        self
    }

    /// Spread of a new user's or movie's random factors (default 0.05).
    pub fn init_std(mut self, std: f32) -> Self {
        self.0.init_std = std;
        self
    }

    /// Seed of new rows' factors (default 42); a row depends only on the seed and its id.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }

    /// Accepted ratings and the clip of predictions (default 0.5 to 5.0).
    pub fn rating_range(mut self, min: f32, max: f32) -> Self {
        self.0.rating_range = (min, max);
        self
    }

    /// Most movies the model can hold (default 4 Mi); the block table is sized for it.
    pub fn max_items(mut self, n: usize) -> Self {
        self.0.max_items = n;
        self
    }

    /// The global mean before any rating arrives (default 3.5).
    pub fn prior_mean(mut self, mean: f32) -> Self {
        self.0.prior_mean = mean;
        self
    }

    /// Support damping of [`OnlineModel::similar`]: cosines are scaled by `n / (n + shrink)`
    /// for a movie with `n` ratings (default 10).
    pub fn shrink(mut self, shrink: f32) -> Self {
        self.0.shrink = shrink;
        self
    }

    /// Bias learning rates that start at `1 / (n + warmup)` for a user's or movie's `n`-th
    /// rating and settle at the SGD `lr_bias` (default 5). This is what lets a new user's first
    /// ratings set their offset quickly; users and movies with many ratings are unaffected.
    pub fn bias_warmup(mut self, warmup: f32) -> Self {
        self.0.bias_warmup = Some(warmup);
        self
    }

    /// Every bias step at the SGD `lr_bias`, however new the user or movie.
    pub fn no_bias_warmup(mut self) -> Self {
        self.0.bias_warmup = None;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] for bad SGD parameters, an empty or non-finite rating
    /// range, a negative spread or shrink, or zero capacity.
    pub fn build(self) -> Result<OnlineConfig, ModelError> {
        let c = self.0;
        c.sgd.validate()?;
        let bad = |name, reason: &str| Err(ModelError::InvalidParameter { name, reason: reason.into() });
        let (lo, hi) = c.rating_range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return bad("rating_range", "must be finite with min <= max");
        }
        if !(c.init_std.is_finite() && c.init_std >= 0.0) {
            return bad("init_std", "must be finite and >= 0");
        }
        if !(c.shrink.is_finite() && c.shrink >= 0.0) {
            return bad("shrink", "must be finite and >= 0");
        }
        if c.bias_warmup.is_some_and(|w| !(w.is_finite() && w > 0.0)) {
            return bad("bias_warmup", "must be finite and > 0");
        }
        if c.max_items == 0 || c.max_items > u32::MAX as usize {
            return bad("max_items", "must be in 1..=u32::MAX");
        }
        if !c.prior_mean.is_finite() {
            return bad("prior_mean", "must be finite");
        }
        Ok(c)
    }
}

impl OnlineConfig {
    /// Latent factors of a model started empty.
    pub fn factors(&self) -> usize {
        self.factors
    }

    /// Per-event SGD parameters.
    pub fn sgd(&self) -> SgdParams {
        self.sgd
    }

    /// Accepted ratings and the clip of predictions.
    pub fn rating_range(&self) -> (f32, f32) {
        self.rating_range
    }

    /// Most movies the model can hold.
    pub fn max_items(&self) -> usize {
        self.max_items
    }

    /// Spread of new rows' random factors.
    pub fn init_std(&self) -> f32 {
        self.init_std
    }

    /// See [`OnlineConfigBuilder::bias_warmup`].
    pub fn bias_warmup(&self) -> Option<f32> {
        self.bias_warmup
    }
}

/// What an event did to the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update {
    /// One SGD step was taken.
    Applied {
        /// `rating − prediction` before the step (prequential error).
        error: f32,
        /// What [`Recommender::predict`] said for this pair just before the event (clipped,
        /// from the mean and parameters before it): a prequential test without a second lookup.
        prediction: f32,
        /// The user was seen for the first time.
        new_user: bool,
        /// The movie was seen for the first time.
        new_item: bool,
    },
    /// The same rating with the same timestamp was already learned (an at-least-once replay).
    Duplicate,
    /// A newer rating of this pair was already learned; the older one is ignored, as the
    /// store does.
    Outdated,
}

/// A copy of a user's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct UserState {
    /// Rating offset of the user.
    pub bias: f32,
    /// Latent factors.
    pub factors: Vec<f32>,
    /// Distinct movies rated.
    pub n_ratings: usize,
}

/// A copy of a movie's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    /// Rating offset of the movie.
    pub bias: f32,
    /// Latent factors.
    pub factors: Vec<f32>,
    /// Distinct users who rated it.
    pub n_ratings: u32,
}

#[derive(Debug, Clone, Copy)]
struct Rated {
    item: u32,
    rating: f32,
    timestamp: i64,
}

/// A user's latest rating per movie, ordered by dense movie index. A B-tree, not a sorted
/// `Vec`: an active user's new rating lands mid-list, and shifting thousands of entries per
/// event cost more than the SGD step itself.
#[derive(Debug, Default, Clone)]
struct RatedSet(BTreeMap<u32, (f32, i64)>);

impl RatedSet {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = Rated> + '_ {
        self.0.iter().map(|(&item, &(rating, timestamp))| Rated { item, rating, timestamp })
    }
}

impl FromIterator<Rated> for RatedSet {
    /// A pair listed twice keeps the later entry.
    fn from_iter<I: IntoIterator<Item = Rated>>(iter: I) -> Self {
        Self(iter.into_iter().map(|r| (r.item, (r.rating, r.timestamp))).collect())
    }
}

#[derive(Debug)]
struct UserRow {
    bias: f32,
    factors: Vec<f32>,
    rated: RatedSet,
    /// SGD steps taken on this user since the model was built (a change counter for caches).
    steps: u64,
}

#[derive(Debug)]
struct BlockData {
    /// `BLOCK / PANEL` panels of `k × PANEL`.
    factors: Vec<f32>,
    biases: Vec<f32>,
    ids: Vec<Option<ItemId>>,
    counts: Vec<u32>,
}

#[derive(Debug)]
struct ItemBlock(RwLock<BlockData>);

impl ItemBlock {
    fn new(k: usize) -> Self {
        Self(RwLock::new(BlockData {
            factors: vec![0.0; BLOCK * k],
            biases: vec![0.0; BLOCK],
            ids: vec![None; BLOCK],
            counts: vec![0; BLOCK],
        }))
    }

    // A panic mid-update leaves at worst one half-updated float row: keep serving.
    fn read(&self) -> RwLockReadGuard<'_, BlockData> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BlockData> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlockData {
    /// Copies a movie's factors out of its panel (stride [`PANEL`]) into `out`.
    fn gather(&self, slot: usize, out: &mut [f32]) {
        let start = element(slot, 0, out.len());
        self.factors[start..].iter().step_by(PANEL).zip(out.iter_mut()).for_each(|(s, d)| *d = *s);
    }

    /// Writes a movie's factors back into its panel.
    fn scatter(&mut self, slot: usize, from: &[f32]) {
        let start = element(slot, 0, from.len());
        self.factors[start..].iter_mut().step_by(PANEL).zip(from).for_each(|(d, s)| *d = *s);
    }

    fn copy_factors(&self, slot: usize, k: usize) -> Vec<f32> {
        (0..k).map(|f| self.factors[element(slot, f, k)]).collect()
    }
}

#[derive(Debug)]
struct Inner {
    config: OnlineConfig,
    k: usize,
    users: DashMap<UserId, UserRow, IdBuildHasher>,
    item_index: DashMap<ItemId, u32, IdBuildHasher>,
    blocks: Box<[OnceLock<Box<ItemBlock>>]>,
    n_items: AtomicUsize,
    /// Running sum (f64 bits) and count of distinct ratings, for the global mean.
    sum: AtomicU64,
    count: AtomicU64,
}

/// The live model: a cheap-to-clone handle (an `Arc` inside) shared by the consumer and the
/// serving threads. Every method copies values out.
#[derive(Debug, Clone)]
pub struct OnlineModel {
    inner: std::sync::Arc<Inner>,
}

impl OnlineModel {
    /// A builder with the default settings.
    pub fn builder() -> OnlineConfigBuilder {
        OnlineConfigBuilder::default()
    }

    /// An empty model that learns from the first event on.
    pub fn new(config: OnlineConfig) -> Self {
        let k = config.factors;
        Self::with_k(config, k)
    }

    fn with_k(config: OnlineConfig, k: usize) -> Self {
        let slots = config.max_items.div_ceil(BLOCK);
        Self {
            inner: std::sync::Arc::new(Inner {
                k,
                users: DashMap::with_hasher(IdBuildHasher::default()),
                item_index: DashMap::with_hasher(IdBuildHasher::default()),
                blocks: (0..slots).map(|_| OnceLock::new()).collect(),
                n_items: AtomicUsize::new(0),
                sum: AtomicU64::new(0f64.to_bits()),
                count: AtomicU64::new(0),
                config,
            }),
        }
    }

    /// A model re-based on a batch model: its parameters, plus the ratings it was fitted on
    /// (needed to skip seen movies and to recognise replays). Takes its factor count from
    /// `mf`; the rest of `config` applies to the events that follow.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] if `mf` was not fitted on `ratings`;
    /// [`ModelError::CapacityExceeded`] if it holds more movies than `config` allows.
    pub fn from_batch(config: OnlineConfig, mf: &MfModel, ratings: &Ratings) -> Result<Self, ModelError> {
        if mf.item_ids().ids() != ratings.item_ids().ids() || mf.user_ids().ids() != ratings.user_ids().ids() {
            return Err(ModelError::Mismatch("the batch model was not fitted on these ratings".into()));
        }
        if ratings.n_items() > config.max_items {
            return Err(ModelError::CapacityExceeded { capacity: config.max_items });
        }
        let k = mf.factors();
        let model = Self::with_k(config, k);
        let inner = &model.inner;
        let counts = ratings.item_counts();
        let (qf, qb) = (mf.item_factors(), mf.item_bias());
        for (b, first) in (0..ratings.n_items()).step_by(BLOCK).enumerate() {
            let mut data = ItemBlock::new(k);
            let d = data.0.get_mut().unwrap_or_else(PoisonError::into_inner);
            for idx in first..(first + BLOCK).min(ratings.n_items()) {
                let slot = idx - first;
                for (f, &v) in qf.row(idx).iter().enumerate() {
                    d.factors[element(slot, f, k)] = v;
                }
                d.biases[slot] = qb[idx];
                d.counts[slot] = counts[idx];
                let id = ratings.item_ids().id(idx as u32);
                d.ids[slot] = Some(id);
                inner.item_index.insert(id, idx as u32);
            }
            let _ = inner.blocks[b].set(Box::new(data));
        }
        inner.n_items.store(ratings.n_items(), Ordering::Release);
        let (pf, pb) = (mf.user_factors(), mf.user_bias());
        for u in 0..ratings.n_users() as u32 {
            let (items, values, times) = ratings.user_row(u);
            let rated = items
                .iter()
                .zip(values)
                .zip(times)
                .map(|((&item, &rating), &timestamp)| Rated { item, rating, timestamp })
                .collect();
            let row = UserRow { bias: pb[u as usize], factors: pf.row(u as usize).to_vec(), rated, steps: 0 };
            inner.users.insert(ratings.user_ids().id(u), row);
        }
        let sum: f64 = ratings.values().iter().map(|&v| f64::from(v)).sum();
        inner.sum.store(sum.to_bits(), Ordering::Release);
        inner.count.store(ratings.len() as u64, Ordering::Release);
        Ok(model)
    }

    /// Latent factors per user and movie.
    pub fn factors(&self) -> usize {
        self.inner.k
    }

    /// The settings.
    pub fn config(&self) -> &OnlineConfig {
        &self.inner.config
    }

    /// Users seen so far.
    pub fn n_users(&self) -> usize {
        self.inner.users.len()
    }

    /// Movies seen so far.
    pub fn n_items(&self) -> usize {
        self.inner.n_items.load(Ordering::Acquire).min(self.inner.config.max_items)
    }

    /// Mean of the distinct ratings learned (the configured prior before the first).
    pub fn global_mean(&self) -> f32 {
        let n = self.inner.count.load(Ordering::Acquire);
        if n == 0 {
            return self.inner.config.prior_mean;
        }
        (f64::from_bits(self.inner.sum.load(Ordering::Acquire)) / n as f64) as f32
    }

    fn add_to_mean(&self, delta: f64, count: u64) {
        let inner = &self.inner;
        let _ = inner
            .sum
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some((f64::from_bits(b) + delta).to_bits()));
        inner.count.fetch_add(count, Ordering::AcqRel);
    }

    fn block(&self, idx: u32) -> Option<&ItemBlock> {
        self.inner.blocks.get(idx as usize / BLOCK)?.get().map(|b| &**b)
    }

    /// The dense index of `item`, allocating and initialising its row on first sight.
    fn item_slot(&self, item: ItemId) -> Result<(u32, bool), ModelError> {
        let inner = &self.inner;
        if let Some(idx) = inner.item_index.get(&item) {
            return Ok((*idx, false));
        }
        match inner.item_index.entry(item) {
            Entry::Occupied(e) => Ok((*e.get(), false)),
            Entry::Vacant(e) => {
                let cap = inner.config.max_items;
                let idx = inner.n_items.fetch_add(1, Ordering::AcqRel);
                if idx >= cap {
                    return Err(ModelError::CapacityExceeded { capacity: cap });
                }
                let block = inner.blocks[idx / BLOCK].get_or_init(|| Box::new(ItemBlock::new(inner.k)));
                let init = factors_for(inner.config.seed, ITEM_SALT, item, inner.k, inner.config.init_std);
                {
                    let mut d = block.write();
                    let slot = idx % BLOCK;
                    for (f, v) in init.into_iter().enumerate() {
                        d.factors[element(slot, f, inner.k)] = v;
                    }
                    d.ids[slot] = Some(item);
                }
                e.insert(idx as u32);
                Ok((idx as u32, true))
            }
        }
    }

    /// Learns one rating event: one bounded SGD step, unless it is a replay ([`Update::Duplicate`])
    /// or older than the pair's last rating ([`Update::Outdated`]). Creates the user and the
    /// movie on first sight. A re-rating with a newer timestamp steps toward the new value.
    ///
    /// # Errors
    /// [`ModelError::InvalidRating`] for a non-finite rating or one outside the configured
    /// range; [`ModelError::CapacityExceeded`] when a new movie does not fit.
    pub fn update(&self, user: UserId, item: ItemId, rating: f32, timestamp: i64) -> Result<Update, ModelError> {
        let inner = &self.inner;
        let (lo, hi) = inner.config.rating_range;
        if !(rating.is_finite() && rating >= lo && rating <= hi) {
            return Err(ModelError::InvalidRating { user, item, value: rating, min: lo, max: hi });
        }
        let (idx, new_item) = self.item_slot(item)?;
        let mut new_user = false;
        let mut row = inner.users.entry(user).or_insert_with(|| {
            new_user = true;
            let factors = factors_for(inner.config.seed, USER_SALT, user, inner.k, inner.config.init_std);
            UserRow { bias: 0.0, factors, rated: RatedSet::default(), steps: 0 }
        });
        let mu_before = self.global_mean();
        let first_rating = match row.rated.0.entry(idx) {
            btree_map::Entry::Occupied(mut e) => {
                let (prev_rating, prev_timestamp) = *e.get();
                if timestamp < prev_timestamp {
                    return Ok(Update::Outdated);
                }
                if timestamp == prev_timestamp && rating == prev_rating {
                    return Ok(Update::Duplicate);
                }
                e.insert((rating, timestamp));
                self.add_to_mean(f64::from(rating) - f64::from(prev_rating), 0);
                false
            }
            btree_map::Entry::Vacant(e) => {
                e.insert((rating, timestamp));
                self.add_to_mean(f64::from(rating), 1);
                true
            }
        };
        let mu = self.global_mean();
        let Some(block) = self.block(idx) else {
            return Err(ModelError::CapacityExceeded { capacity: inner.config.max_items });
        };
        let mut data = block.write();
        let slot = idx as usize % BLOCK;
        if first_rating {
            data.counts[slot] += 1;
        }
        // The step runs on a contiguous copy of the movie's factors: a strided view works too
        // (`sgd_step` accepts one) but costs two scalar passes over 64 cache lines.
        let mut stack = [0f32; 128];
        let mut heap = Vec::new();
        let q = if inner.k <= stack.len() {
            &mut stack[..inner.k]
        } else {
            heap.resize(inner.k, 0.0);
            &mut heap[..]
        };
        data.gather(slot, q);
        row.steps += 1;
        let sgd = &inner.config.sgd;
        let rates = match inner.config.bias_warmup {
            Some(w) => BiasRates::warming(sgd.lr_bias, w, row.rated.len(), data.counts[slot] as usize),
            None => BiasRates { user: sgd.lr_bias, item: sgd.lr_bias },
        };
        let biases = row.bias + data.biases[slot];
        let UserRow { bias, factors, .. } = &mut *row;
        let p = ArrayViewMut1::from(&mut factors[..]);
        let error =
            sgd_step_with(mu, bias, &mut data.biases[slot], p, ArrayViewMut1::from(&mut *q), rating, sgd, rates);
        data.scatter(slot, q);
        // `predict` has no factor term for a pair it did not know; else recover the dot product
        // from the step's error instead of computing it twice.
        let dot = if new_user || new_item { 0.0 } else { rating - error - mu - biases };
        let prediction = (mu_before + biases + dot).clamp(lo, hi);
        Ok(Update::Applied { error, prediction, new_user, new_item })
    }

    /// A copy of the user's parameters, if known.
    pub fn user(&self, user: UserId) -> Option<UserState> {
        let row = self.inner.users.get(&user)?;
        Some(UserState { bias: row.bias, factors: row.factors.clone(), n_ratings: row.rated.len() })
    }

    /// How many SGD steps this user's row has taken in this model (0 if unknown): it changes
    /// whenever a rating of theirs is learned, so a cached list of theirs can be checked cheaply.
    pub fn user_steps(&self, user: UserId) -> u64 {
        self.inner.users.get(&user).map_or(0, |r| r.steps)
    }

    /// A copy of the movie's parameters, if known.
    pub fn item(&self, item: ItemId) -> Option<ItemState> {
        let idx = *self.inner.item_index.get(&item)?;
        let data = self.block(idx)?.read();
        let slot = idx as usize % BLOCK;
        Some(ItemState {
            bias: data.biases[slot],
            factors: data.copy_factors(slot, self.inner.k),
            n_ratings: data.counts[slot],
        })
    }

    /// The user's latest rating of each movie they rated, by ascending movie index.
    pub fn rated(&self, user: UserId) -> Vec<(ItemId, f32)> {
        let rated: Vec<Rated> = self.inner.users.get(&user).map(|r| r.rated.iter().collect()).unwrap_or_default();
        rated.iter().filter_map(|r| Some((self.item_id(r.item)?, r.rating))).collect()
    }

    /// Which of `items` the user has rated, in the same order (all false for an unknown user):
    /// a cheap check for serving, which must never show a rated movie, even in a list kept
    /// from before the rating.
    pub fn rated_among(&self, user: UserId, items: &[ItemId]) -> Vec<bool> {
        let indices: Vec<Option<u32>> = items.iter().map(|i| self.inner.item_index.get(i).map(|x| *x)).collect();
        let Some(row) = self.inner.users.get(&user) else { return vec![false; items.len()] };
        indices.iter().map(|i| i.is_some_and(|i| row.rated.0.contains_key(&i))).collect()
    }

    /// The user's latest rating of each movie they rated with its time, in (time, movie id)
    /// order: the live history the top-N model reads at request time.
    pub fn history(&self, user: UserId) -> Vec<(ItemId, f32, i64)> {
        let rated: Vec<Rated> = self.inner.users.get(&user).map(|r| r.rated.iter().collect()).unwrap_or_default();
        let mut h: Vec<(ItemId, f32, i64)> =
            rated.iter().filter_map(|r| Some((self.item_id(r.item)?, r.rating, r.timestamp))).collect();
        h.sort_by_key(|r| (r.2, r.0));
        h
    }

    fn item_id(&self, idx: u32) -> Option<ItemId> {
        self.block(idx)?.read().ids[idx as usize % BLOCK]
    }

    /// Number of distinct users who rated `item` (0 if unknown).
    pub fn item_count(&self, item: ItemId) -> u32 {
        self.item(item).map_or(0, |s| s.n_ratings)
    }

    /// Scores every live movie panel by panel, one block lock at a time, handing
    /// `f(first_row, scores, squared norms, block)` each panel while its block is read-locked.
    /// `cosine` leaves biases out and computes the norms.
    fn scan(&self, user: &[f32], cosine: bool, mut f: impl FnMut(usize, &[f32; PANEL], &[f32; PANEL], &BlockData)) {
        let (k, n) = (self.inner.k, self.n_items());
        let mut scores = [0f32; PANEL];
        let mut sq = [1f32; PANEL];
        let zeros = [0f32; PANEL];
        for b in 0..n.div_ceil(BLOCK) {
            let Some(block) = self.inner.blocks[b].get() else { continue };
            let data = block.read();
            for p in 0..BLOCK / PANEL {
                let base = b * BLOCK + p * PANEL;
                if base >= n {
                    break;
                }
                let panel = &data.factors[p * k * PANEL..(p + 1) * k * PANEL];
                let biases = if cosine { &zeros } else { &data.biases.as_chunks::<PANEL>().0[p] };
                score_panel(panel, biases, user, &mut scores);
                if cosine {
                    panel_norms_sq(panel, &mut sq);
                }
                f(base, &scores, &sq, &data);
            }
        }
    }

    /// The movies most similar to `item` by cosine of live factors, damped for movies with
    /// few ratings; never `item` itself. Empty if the movie is unknown.
    pub fn similar(&self, item: ItemId, query: &Query<'_>) -> Vec<Scored> {
        let Some(target) = self.item(item) else { return Vec::new() };
        let norm = target.factors.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Vec::new();
        }
        let unit: Vec<f32> = target.factors.iter().map(|x| x / norm).collect();
        let shrink = self.inner.config.shrink;
        let n = self.n_items();
        let mut sel = Selector::new(query.n());
        self.scan(&unit, true, |base, scores, sq, data| {
            for lane in 0..PANEL.min(n - base) {
                let slot = (base + lane) % BLOCK;
                let (Some(id), c) = (data.ids[slot], data.counts[slot] as f32) else { continue };
                if id == item || sq[lane] == 0.0 {
                    continue;
                }
                let cos = scores[lane] / sq[lane].sqrt();
                sel.offer(id, cos * c / (c + shrink), || query.accepts(id));
            }
        });
        sel.into_sorted()
    }

    /// The rated movies of `user` that most explain recommending `item` (see [`Reason`]).
    pub fn explain(&self, user: UserId, item: ItemId, n: usize) -> Vec<Reason> {
        let Some(target) = self.item(item) else { return Vec::new() };
        let rated = self.rated(user);
        let mu = self.global_mean();
        reasons(
            rated
                .into_iter()
                .filter(|r| r.0 != item)
                .filter_map(|(j, r)| Some((j, r, cosine(&target.factors, &self.item(j)?.factors)))),
            mu,
            n,
        )
    }
}

impl Recommender for OnlineModel {
    /// Unknown users or movies fall back to the biases that exist, else the global mean.
    /// Reads in place (one user shard and one movie block, no copies): prequential evaluation
    /// and per-pair predictions call this once per event.
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let inner = &self.inner;
        let mut s = self.global_mean();
        let row = inner.users.get(&user);
        if let Some(row) = &row {
            s += row.bias;
        }
        let idx = inner.item_index.get(&item).map(|i| *i);
        if let Some(idx) = idx
            && let Some(block) = self.block(idx)
        {
            let data = block.read();
            let slot = idx as usize % BLOCK;
            s += data.biases[slot];
            if let Some(row) = &row {
                let start = element(slot, 0, inner.k);
                let column = data.factors[start..].iter().step_by(PANEL);
                s += row.factors.iter().zip(column).map(|(a, b)| a * b).sum::<f32>();
            }
        }
        let (lo, hi) = inner.config.rating_range;
        s.clamp(lo, hi)
    }

    /// Scores are unclipped predicted ratings from the live factors, so a rating just learned
    /// changes the next list. An unknown user is ranked by movie bias alone.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let (p, bias, seen) = match self.inner.users.get(&user) {
            Some(row) => (row.factors.clone(), row.bias, row.rated.0.keys().copied().collect::<Vec<u32>>()),
            None => (vec![0.0; self.inner.k], 0.0, Vec::new()),
        };
        let offset = self.global_mean() + bias;
        let n = self.n_items();
        let mut sel = Selector::new(query.n());
        self.scan(&p, false, |base, scores, _, data| {
            sel.offer_panel(base, n, scores, offset, &seen, query, |r| data.ids[r % BLOCK]);
        });
        sel.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mf::BiasedMf;

    fn model(k: usize) -> OnlineModel {
        OnlineModel::new(OnlineModel::builder().factors(k).build().unwrap())
    }

    #[test]
    fn new_users_and_movies_are_added_on_first_sight() {
        let m = model(8);
        let got = m.update(1, 100, 4.0, 10).unwrap();
        assert!(matches!(got, Update::Applied { new_user: true, new_item: true, .. }));
        let got = m.update(2, 100, 3.0, 11).unwrap();
        assert!(matches!(got, Update::Applied { new_user: true, new_item: false, .. }));
        assert_eq!((m.n_users(), m.n_items(), m.item_count(100)), (2, 1, 2));
        assert!((m.global_mean() - 3.5).abs() < 1e-6);
        m.update(2, 200, 5.0, 12).unwrap();
        assert_eq!(m.rated_among(1, &[200, 100, 300]), [false, true, false]);
        assert_eq!(m.rated_among(2, &[200, 100, 300]), [true, true, false]);
        assert_eq!(m.rated_among(3, &[100]), [false], "an unknown user rated nothing");
    }

    #[test]
    fn a_replayed_event_is_recognised_and_an_older_one_ignored() {
        let m = model(8);
        m.update(1, 100, 4.0, 10).unwrap();
        let before = m.item(100).unwrap();
        for _ in 0..1000 {
            assert_eq!(m.update(1, 100, 4.0, 10).unwrap(), Update::Duplicate);
            assert_eq!(m.update(1, 100, 1.0, 5).unwrap(), Update::Outdated);
        }
        assert_eq!(m.item(100).unwrap(), before);
        assert!(matches!(m.update(1, 100, 2.0, 20).unwrap(), Update::Applied { .. }));
        assert_eq!(m.rated(1), vec![(100, 2.0)]);
        assert!((m.global_mean() - 2.0).abs() < 1e-6, "a re-rating replaces, it does not add");
    }

    #[test]
    fn re_ratings_hammering_one_pair_keep_the_model_finite_and_bounded() {
        let m = model(64);
        for t in 0..20_000 {
            let r = if t % 2 == 0 { 0.5 } else { 5.0 };
            m.update(7, 9, r, t).unwrap();
        }
        let (u, i) = (m.user(7).unwrap(), m.item(9).unwrap());
        let bound = m.config().sgd().max_value;
        assert!(
            u.factors.iter().chain(&i.factors).chain([&u.bias, &i.bias]).all(|v| v.is_finite() && v.abs() <= bound)
        );
        let p = m.predict(7, 9);
        assert!((0.5..=5.0).contains(&p));
    }

    #[test]
    fn an_sgd_event_moves_the_live_prediction_toward_the_rating() {
        let m = model(16);
        m.update(1, 1, 3.0, 0).unwrap();
        m.update(2, 2, 3.0, 0).unwrap();
        let before = m.predict(1, 2);
        m.update(1, 2, 5.0, 1).unwrap();
        assert!(m.predict(1, 2) > before);
    }

    #[test]
    fn an_update_reports_the_prediction_made_just_before_it() {
        // A stream with new users, new movies, known pairs and a re-rating.
        let m = OnlineModel::new(OnlineModel::builder().factors(8).bias_warmup(5.0).build().unwrap());
        let mut events: Vec<(i64, i64, f32, i64)> =
            (0..400).map(|t| (t % 17, (t * 7) % 23, 0.5 + ((t * 13) % 10) as f32 * 0.5, t)).collect();
        events.push((3, 5, 1.0, 10_000));
        for (u, i, r, t) in events {
            let before = m.predict(u, i);
            match m.update(u, i, r, t).unwrap() {
                Update::Applied { prediction, .. } => {
                    assert!((prediction - before).abs() < 1e-5, "{prediction} vs {before}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn warming_bias_rates_let_a_new_users_first_ratings_set_their_offset() {
        let sgd = SgdParams { lr_bias: 0.02, lr_factor: 0.02, reg_bias: 0.0, reg_factor: 0.0, ..SgdParams::default() };
        let build = |warm: bool| {
            let b = OnlineModel::builder().factors(4).init_std(0.0).sgd(sgd).no_bias_warmup();
            OnlineModel::new(if warm { b.bias_warmup(1.0) } else { b }.build().unwrap())
        };
        let (plain, warm) = (build(false), build(true));
        for m in [&plain, &warm] {
            // Everyone rates 3.0; then user 99, a harsh critic, rates three movies 1.0.
            for u in 0..20 {
                for i in 0..5 {
                    m.update(u, i, 3.0, 0).unwrap();
                }
            }
            for i in 0..3 {
                m.update(99, i, 1.0, 1).unwrap();
            }
        }
        let (p, w) = (plain.predict(99, 4), warm.predict(99, 4));
        assert!(w < p - 0.5, "warm {w} vs plain {p}");
        assert!(w >= 0.5 && (1.0..=2.0).contains(&w), "{w}");
        // Validation: a warmup must be positive.
        assert!(OnlineModel::builder().bias_warmup(0.0).build().is_err());
    }

    #[test]
    fn an_out_of_range_rating_is_rejected() {
        let m = model(4);
        assert!(matches!(m.update(1, 1, 7.0, 0), Err(ModelError::InvalidRating { .. })));
        assert!(matches!(m.update(1, 1, f32::NAN, 0), Err(ModelError::InvalidRating { .. })));
        assert_eq!(m.n_users(), 0);
    }

    #[test]
    fn seen_movies_never_come_back_and_blocks_past_the_first_are_scanned() {
        let m = model(8);
        // 600 movies span three blocks.
        for i in 0..600 {
            m.update(i % 7, 1000 + i, 1.0 + (i % 9) as f32 * 0.5, i).unwrap();
        }
        let seen: Vec<ItemId> = m.rated(3).into_iter().map(|r| r.0).collect();
        let got = m.recommend(3, &Query::top(600));
        assert_eq!(got.len(), 600 - seen.len());
        assert!(got.iter().all(|s| !seen.contains(&s.item)));
        let allowed: std::collections::HashSet<ItemId> = (1000..1010).collect();
        let got = m.recommend(3, &Query::top(5).within(&allowed).exclude([1001]));
        assert!(got.iter().all(|s| allowed.contains(&s.item) && s.item != 1001 && !seen.contains(&s.item)));
    }

    #[test]
    fn a_full_model_refuses_new_movies_but_keeps_learning_known_ones() {
        let m = OnlineModel::new(OnlineModel::builder().factors(4).max_items(2).build().unwrap());
        m.update(1, 1, 4.0, 0).unwrap();
        m.update(1, 2, 4.0, 0).unwrap();
        assert_eq!(m.update(1, 3, 4.0, 0), Err(ModelError::CapacityExceeded { capacity: 2 }));
        assert!(matches!(m.update(2, 1, 4.0, 0), Ok(Update::Applied { .. })));
        assert_eq!(m.recommend(2, &Query::top(10)).len(), 1);
    }

    #[test]
    fn a_model_rebased_on_a_batch_model_predicts_like_it() {
        let rows: Vec<(i64, i64, f32, i64)> = (1..=40)
            .flat_map(|u| {
                (1..=30)
                    .filter(move |i| (u * 7 + i) % 4 != 0)
                    .map(move |i| (u, i, ((u + i) % 9) as f32 * 0.5 + 1.0, u + i))
            })
            .collect();
        let ratings = Ratings::from_rows(rows).unwrap();
        let mf = BiasedMf::builder().factors(6).epochs(5).build().unwrap().fit(&ratings).unwrap();
        let online = OnlineModel::from_batch(OnlineModel::builder().build().unwrap(), &mf, &ratings).unwrap();
        assert_eq!(online.factors(), 6);
        for (u, i) in [(1, 2), (17, 30), (40, 5)] {
            assert!((online.predict(u, i) - mf.predict(u, i)).abs() < 1e-4);
        }
        assert_eq!(online.recommend(3, &Query::top(5)), mf.recommend(3, &Query::top(5)));
        // Replaying a training rating is recognised.
        let r = ratings.iter().next().unwrap();
        assert_eq!(online.update(r.user, r.item, r.value, r.timestamp).unwrap(), Update::Duplicate);
    }

    #[test]
    fn concurrent_updates_and_reads_from_several_threads_work() {
        let m = model(32);
        let writers = 3;
        let per_writer = 3000i64;
        std::thread::scope(|s| {
            for w in 0..writers {
                let m = m.clone();
                s.spawn(move || {
                    for e in 0..per_writer {
                        // Users overlap across writers, movies are shared: real contention.
                        let (u, i) = ((e * 7 + w) % 50, (e * 13 + w * 5) % 700);
                        m.update(u, i, 1.0 + (e % 9) as f32 * 0.5, e * writers + w).unwrap();
                    }
                });
            }
            for _ in 0..2 {
                let m = m.clone();
                s.spawn(move || {
                    for e in 0..400 {
                        let got = m.recommend(e % 50, &Query::top(10));
                        assert!(got.iter().all(|x| x.score.is_finite()));
                        let p = m.predict(e % 50, e % 700);
                        assert!((0.5..=5.0).contains(&p));
                        let _ = m.similar(e % 700, &Query::top(5));
                    }
                });
            }
        });
        assert_eq!(m.n_items(), 700);
        assert_eq!(m.n_users(), 50);
        let total: u32 = (0..700).map(|i| m.item_count(i)).sum();
        let distinct: usize = (0..50).map(|u| m.rated(u).len()).sum();
        assert_eq!(total as usize, distinct);
        assert!((0..700).all(|i| m.item(i).unwrap().factors.iter().all(|v| v.is_finite())));
    }
}
