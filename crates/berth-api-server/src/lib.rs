//! Engine API HTTP routes
