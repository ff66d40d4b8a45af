//! Test helpers (dev-dependency only): a busybox root filesystem and image tarballs made from Debian's
//! `busybox-static`, since no registry is reachable from the test machines.

pub mod http;
pub mod image;
pub mod rootfs;

pub use image::{busybox_image_tar, busybox_image_tar_with, busybox_rootfs_tar};
pub use rootfs::{busybox_path, busybox_rootfs};
