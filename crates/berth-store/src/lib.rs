//! Content store, image metadata and references
