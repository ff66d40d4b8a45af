//! Safe tar handling shared by import, load, save and export.
//!
//! Public API:
//! - [`unpack_layer`]`(reader: impl Read, dest: &Path) -> Result<UnpackStats, ArchiveError>`: unpacks one
//!   *uncompressed* layer tar into `dest` (an overlay lower dir), converting whiteouts to overlayfs form.
//! - [`unpack`]`(reader, dest, &UnpackOptions)`: the same with options (`whiteouts: false` writes `.wh.`
//!   files verbatim, for plain archives such as a `docker load` tarball).
//! - [`decompress`]`(reader) -> Result<Box<dyn Read + Send>, ArchiveError>`: sniffs gzip / zstd / plain
//!   tar (xz and bzip2 are recognised and refused with a clear error; zstd needs the default `zstd` feature).
//! - [`layer_from_dir`]`(upper: &Path, writer: impl Write) -> Result<(), ArchiveError>`: the reverse, an
//!   overlay upper dir to a layer tar (overlay whiteouts become `.wh.` entries).
//! - [`layer_from_dir_idmap`]`(upper, writer, Option<&IdentityMapping>)`: the same for a `--userns-remap`
//!   daemon: host owners are shifted back to container ids, so the layer is a normal one.
//!
//! `UnpackOptions::id_map` (for `--userns-remap`) shifts every owner into the host range (container id
//! `u` becomes the mapped host id; an id outside the mapping is an error naming the entry, as moby's
//! `idtools`); directories created implicitly and the destination itself belong to the mapped root.
//! - [`open_in_root`], [`tar_at`], [`unpack_at`], [`check_archive`]: the container archive API (`docker
//!   cp`, `docker export`): paths resolved inside a container root fd with `openat2(RESOLVE_IN_ROOT)`.
//! - [`DigestReader`]: a reader that sha256-hashes and counts what passes through it.
//! - [`clean_path`]: lexical cleaning of an archive member name, refusing absolute and escaping paths.
//!
//! Writes never follow symlinks: every parent directory is opened relative to its parent with
//! `O_NOFOLLOW | O_DIRECTORY` (openat-style resolution), so a symlink inside the layer cannot redirect a
//! write outside `dest`.

mod copy;
mod decompress;
mod digest;
mod error;
mod layer;
mod path;
mod unpack;

pub use copy::{
    link_target_in_root, open_dir_in_root, open_in_root, resolve_in_root, tar_at, ContainerPath, TarOptions,
};
pub use decompress::decompress;
pub use digest::DigestReader;
pub use error::{ArchiveError, MAX_ENTRY_SIZE};
pub use layer::{layer_from_dir, layer_from_dir_clamped, layer_from_dir_excluding, layer_from_dir_idmap};
pub use path::{clean_path, join_clean};
pub use unpack::{check_archive, unpack, unpack_at, unpack_layer, UnpackOptions, UnpackStats};

/// The overlayfs xattr marking a directory opaque (hides lower layers' contents).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The AUFS-style whiteout prefix used in layer tars (OCI image spec, layer.md).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker file in layer tars.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[cfg(test)]
mod tests;
