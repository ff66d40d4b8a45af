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

/// `progressDetail` of a [`JsonMessage`] (moby `jsonmessage.JSONProgress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// Bytes expected (absent or 0 when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// A progress message in a JSON stream (`/images/create`, `/images/load`, `/images/{name}/push`;
/// moby `jsonmessage.JSONMessage`).
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
    /// Bytes done and expected (what clients draw their own bars from).
    #[serde(rename = "progressDetail", default, skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
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

impl JsonMessage {
    /// The error this message reports, if any (`errorDetail.message`, else `error`).
    pub fn error_message(&self) -> Option<&str> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .or(self.error.as_deref())
    }
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
