//! Error kinds shared by all crates; the API server maps each kind to Docker's HTTP status in one place.

/// The class of an error, independent of the subsystem that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with the object's state (HTTP 409).
    Conflict,
    /// The request itself is malformed or names a bad value (HTTP 400).
    InvalidArgument,
    /// The operation is refused by policy (HTTP 403).
    Forbidden,
    /// Credentials are missing or wrong, e.g. a registry login (HTTP 401).
    Unauthorized,
    /// Nothing to do: the object is already in the requested state (HTTP 304).
    NotModified,
    /// A dependency (runtime, shim, registry) is not reachable (HTTP 503).
    Unavailable,
    /// Anything else (HTTP 500).
    Internal,
    /// The operation is not supported for this object, e.g. reading a `none` log (HTTP 501).
    Unsupported,
}

impl ErrorKind {
    /// The HTTP status Docker's daemon answers for this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotModified => 304,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
            ErrorKind::Unsupported => 501,
        }
    }
}

/// Implemented by every library error so the API layer can pick a status code.
pub trait HasErrorKind {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

/// `e` and the errors under it, joined by `: ` (a cause whose text is already in the message is
/// not repeated): hyper's and rustls' top-level messages alone say little.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(String, #[source] Option<Box<E>>);

    #[test]
    fn the_chain_joins_causes_without_repeating_them() {
        let inner = E("connection reset".into(), None);
        let mid = E("connection error: connection reset".into(), Some(Box::new(inner)));
        let top = E("request failed".into(), Some(Box::new(mid)));
        assert_eq!(error_chain(&top), "request failed: connection error: connection reset");
    }
}
