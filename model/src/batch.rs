//! The full recompute: every batch model fitted from all ratings in one call.

use crate::error::ModelError;
use crate::mf::{BiasedMf, MfModel};
use crate::popularity::{Popularity, PopularityModel};
use crate::ratings::Ratings;
use crate::similarity::ItemSimilarity;
use crate::svd::{PureSvd, TruncatedSvd};

/// What the periodic recompute fits; construct with [`Recompute::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recompute {
    mf: BiasedMf,
    svd: TruncatedSvd,
    popularity: Popularity,
    similarity_shrink: f32,
}

/// Builder of [`Recompute`]; every part defaults to its own builder's defaults.
#[derive(Debug, Clone)]
pub struct RecomputeBuilder {
    mf: Option<BiasedMf>,
    svd: Option<TruncatedSvd>,
    popularity: Option<Popularity>,
    similarity_shrink: f32,
}

impl RecomputeBuilder {
    /// The batch MF hyper-parameters.
    pub fn mf(mut self, mf: BiasedMf) -> Self {
        self.mf = Some(mf);
        self
    }

    /// The truncated SVD hyper-parameters.
    pub fn svd(mut self, svd: TruncatedSvd) -> Self {
        self.svd = Some(svd);
        self
    }

    /// The popularity and trending hyper-parameters.
    pub fn popularity(mut self, popularity: Popularity) -> Self {
        self.popularity = Some(popularity);
        self
    }

    /// Support damping of item–item similarity (default 20 ratings, see
    /// [`ItemSimilarity::from_factors`]).
    pub fn similarity_shrink(mut self, shrink: f32) -> Self {
        self.similarity_shrink = shrink;
        self
    }

    /// Fills in defaults and validates.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] from a default builder or for a negative shrink.
    pub fn build(self) -> Result<Recompute, ModelError> {
        if !(self.similarity_shrink.is_finite() && self.similarity_shrink >= 0.0) {
            return Err(ModelError::InvalidParameter { name: "similarity_shrink", reason: "must be >= 0".into() });
        }
        Ok(Recompute {
            mf: self.mf.map_or_else(|| BiasedMf::builder().build(), Ok)?,
            svd: self.svd.map_or_else(|| TruncatedSvd::builder().build(), Ok)?,
            popularity: self.popularity.map_or_else(|| Popularity::builder().build(), Ok)?,
            similarity_shrink: self.similarity_shrink,
        })
    }
}

/// Everything the periodic recompute produces.
#[derive(Debug, Clone)]
pub struct BatchModels {
    /// Biased MF: rating prediction, and the base of the next online model.
    pub mf: MfModel,
    /// PureSVD: top-N scores and movie embeddings.
    pub svd: PureSvd,
    /// "Similar movies" from the MF movie factors: on ml-latest-small they give Toy Story
    /// → Aladdin, Toy Story 2, Toy Story 3, Finding Nemo, The Incredibles; the same space as
    /// the online model's, so batch and live similarity agree.
    pub similarity: ItemSimilarity,
    /// Popular and trending lists for cold start.
    pub popularity: PopularityModel,
}

impl Recompute {
    /// A builder with every part at its defaults.
    pub fn builder() -> RecomputeBuilder {
        RecomputeBuilder { mf: None, svd: None, popularity: None, similarity_shrink: 20.0 }
    }

    /// Fits every model on `ratings`. MF runs on a second thread while the SVD and
    /// popularity run on this one; each is seeded, so the result does not depend on
    /// scheduling.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`], or [`ModelError::Diverged`] from MF.
    pub fn fit(&self, ratings: &Ratings) -> Result<BatchModels, ModelError> {
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        std::thread::scope(|scope| {
            let mf = scope.spawn(|| self.mf.fit(ratings));
            let svd = self.svd.fit(ratings)?;
            let popularity = self.popularity.fit(ratings)?;
            let mf = mf.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            let counts = ratings.item_counts();
            let similarity = ItemSimilarity::from_factors(
                ratings.item_ids().clone(),
                mf.item_factors(),
                Some(&counts),
                self.similarity_shrink,
            );
            Ok(BatchModels { mf, svd, similarity, popularity })
        })
    }
}
