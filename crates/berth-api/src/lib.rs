//! Docker Engine API wire types. The models are generated from the Engine API swagger
//! (`bollard-stubs`); this crate re-exports them and adds what the generated set lacks.

pub use bollard_stubs::models;

pub mod detach;
pub mod stream;

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

/// `POST /containers/create` body: the container config with the host and networking configs beside it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ContainerCreateBody {
    /// The container's own configuration.
    #[serde(flatten)]
    pub config: models::ContainerConfig,
    /// Host-dependent configuration.
    #[serde(rename = "HostConfig", default, skip_serializing_if = "Option::is_none")]
    pub host_config: Option<models::HostConfig>,
    /// Network attachments.
    #[serde(rename = "NetworkingConfig", default, skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<models::NetworkingConfig>,
}

/// A progress message in a JSON stream (`/images/create`, `/images/load`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct JsonMessage {
    /// Text output (`Loaded image: ...\n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Status line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Object the status is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Progress bar text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Error text; the stream ends after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Structured error.
    #[serde(rename = "errorDetail", default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<JsonError>,
    /// Extra data of the operation (`{"ID": "sha256:..."}` after a build or import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

/// `errorDetail` of a [`JsonMessage`] (moby `jsonmessage.JSONError`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct JsonError {
    /// Numeric code, when the daemon has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
