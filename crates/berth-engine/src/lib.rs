//! The daemon core: container and image services
