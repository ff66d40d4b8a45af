//! Engine API client
