//! Layer unpacking and overlayfs snapshots
