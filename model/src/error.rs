//! The one error type of the crate.

/// Why a model could not be configured, fitted or updated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A builder was given a value outside its valid range; caught at `build()` so a bad
    /// configuration fails before hours of training, not during it.
    #[error("invalid hyper-parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The builder method.
        name: &'static str,
        /// The accepted range.
        reason: String,
    },
    /// Fitting needs at least one rating.
    #[error("no ratings to fit on")]
    EmptyRatings,
    /// A rating is NaN, infinite or outside the model's rating scale.
    #[error("rating {value} of user {user} for movie {item} is not a finite value in [{min}, {max}]")]
    InvalidRating {
        /// MovieLens user id.
        user: i64,
        /// MovieLens movie id.
        item: i64,
        /// The offending value.
        value: f32,
        /// Lowest accepted rating.
        min: f32,
        /// Highest accepted rating.
        max: f32,
    },
    /// Training produced a non-finite loss: the learning rate is too high for the data.
    #[error("training diverged at epoch {epoch}; lower the learning rate")]
    Diverged {
        /// 0-based epoch whose loss was not finite.
        epoch: usize,
    },
    /// More distinct users or movies than dense `u32` indices can address.
    #[error("more than {max} distinct {what}")]
    TooManyIds {
        /// "users" or "movies".
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Two inputs that must describe the same data do not, e.g. a batch model and ratings it
    /// was not fitted on.
    #[error("mismatched inputs: {0}")]
    Mismatch(String),
    /// The online model reached its configured movie capacity.
    #[error("the online model is full ({capacity} movies); raise `max_items`")]
    CapacityExceeded {
        /// The configured capacity.
        capacity: usize,
    },
}
