//! Docker Engine API wire types. The models are generated from the Engine API swagger
//! (`bollard-stubs`); this crate re-exports them and adds what the generated set lacks.

pub use bollard_stubs::models;

/// The newest Engine API version berth speaks.
pub const API_VERSION: &str = "1.47";
/// The oldest Engine API version berth accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// The body of every error response: `{"message": "..."}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    /// Human-readable error text.
    pub message: String,
}
