//! The one JSON error body of the HTTP API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every 4xx/5xx answer carries this body, e.g. `{"detail": "movie 42 not found"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub detail: String,
}
