//! RUN's `--mount`s: `cache`, `tmpfs`, `bind` (of the context, or of a stage's or image's files),
//! `secret` (a file or variable from the client, never in the image, its history or the cache key)
//! and `ssh` (the client's agent socket, when the daemon runs on the client's host).

use super::{bad, BuildContext, Stage};
use crate::{EngineError, Result};
use berth_api::models::Mount;
use berth_dockerfile::Instruction;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A RUN's `--mount=type=bind,from=`: the mount's position among the step's mounts, the image
/// (ID) and the path in it.
pub(super) struct MountImage {
    pub index: usize,
    pub image: String,
    pub source: String,
}

/// Whether a RUN bind-mounts something (`--mount` without a type binds).
pub(super) fn has_bind_mount(step: &Instruction) -> bool {
    step.flags
        .iter()
        .filter_map(|f| f.strip_prefix("--mount="))
        .any(|spec| mount_fields(spec).get("type").is_none_or(|t| t == "bind"))
}

/// The `key=value` fields of a `--mount=` spec (a bare key is `true`), keys lower-cased.
pub(super) fn mount_fields(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.trim().to_ascii_lowercase(), "true".into()),
        })
        .collect()
}

/// A secret's content, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}

/// What RUN's mounts are made from besides the step itself.
pub(super) struct MountInputs<'a> {
    pub ctx: &'a BuildContext,
    /// Where `type=cache` directories live.
    pub cache_root: &'a Path,
    /// The files of each `bind,from=` mount (by the mount's position), taken out of their image.
    pub from_roots: &'a BTreeMap<usize, PathBuf>,
    /// The client's secrets, by id.
    pub secrets: &'a BTreeMap<String, Secret>,
    /// The client's ssh agent sockets on this host, by id.
    pub ssh: &'a BTreeMap<String, PathBuf>,
    /// A private directory (removed after the step) for the secrets' files.
    pub secret_dir: &'a Path,
}

/// A RUN's mounts and the variables its mounts set (`secret,env=`, `SSH_AUTH_SOCK`).
#[derive(Debug, Default)]
pub(super) struct RunMounts {
    pub mounts: Vec<Mount>,
    pub env: Vec<String>,
}

/// RUN's `--mount`s as container mounts: `cache` (a directory under `cache_root` kept across
/// builds, by `id` or target), `tmpfs`, `bind` of a context path or of a `from=` stage's or
/// image's files (read-only unless `rw`; either is the build's private copy), `secret` (a file
/// written for the step, bound read-only, or a variable with `env=`) and `ssh` (the agent socket).
pub(super) fn run_mounts(step: &Instruction, s: &Stage, inputs: &MountInputs<'_>) -> Result<RunMounts> {
    use berth_api::models::{MountTmpfsOptions, MountTypeEnum};
    let (ctx, cache_root, from_roots) = (inputs.ctx, inputs.cache_root, inputs.from_roots);
    let mut out = RunMounts::default();
    let mut ssh_count = 0;
    for (index, spec) in step.flags.iter().filter_map(|f| f.strip_prefix("--mount=")).enumerate() {
        let kv = mount_fields(spec);
        let typ = kv.get("type").map_or("bind", String::as_str);
        let yes = |k: &str| kv.get(k).is_some_and(|v| v == "true" || v == "1");
        let given_target = kv
            .get("target")
            .or_else(|| kv.get("dst"))
            .or_else(|| kv.get("destination"));
        match typ {
            "secret" => {
                let id = kv
                    .get("id")
                    .cloned()
                    .or_else(|| given_target.and_then(|t| t.rsplit('/').next()).map(String::from))
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| bad(format!("RUN --mount={spec}: a secret needs an id or a target")))?;
                let Some(secret) = inputs.secrets.get(&id) else {
                    if yes("required") {
                        return Err(bad(format!(
                            "secret {id} not found: pass it with --secret id={id},src=<file> (RUN --mount={spec})"
                        )));
                    }
                    continue;
                };
                if let Some(var) = kv.get("env") {
                    let value = String::from_utf8(secret.0.clone())
                        .map_err(|_| bad(format!("secret {id} is not text, so it cannot be the variable {var}")))?;
                    out.env.push(format!("{var}={value}"));
                    if given_target.is_none() {
                        continue;
                    }
                }
                let target = match given_target {
                    Some(t) => absolute(s, &s.expand(t)?),
                    None => format!("/run/secrets/{id}"),
                };
                let mode = match kv.get("mode") {
                    Some(m) => u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                        bad(format!(
                            "RUN --mount={spec}: invalid mode {m:?}: an octal mode is needed"
                        ))
                    })?,
                    None => 0o400,
                };
                let num = |k: &str| -> Result<u32> {
                    kv.get(k).map_or(Ok(0), |v| {
                        v.parse()
                            .map_err(|_| bad(format!("RUN --mount={spec}: {k} must be a number")))
                    })
                };
                let file = inputs.secret_dir.join(format!("{index}-{}", berth_types::new_id()));
                write_secret(&file, &secret.0, mode, num("uid")?, num("gid")?)?;
                out.mounts.push(Mount {
                    target: Some(target),
                    source: Some(file.display().to_string()),
                    typ: Some(MountTypeEnum::BIND),
                    read_only: Some(true),
                    ..Default::default()
                });
                continue;
            }
            "ssh" => {
                let id = kv.get("id").cloned().unwrap_or_else(|| "default".into());
                let Some(socket) = inputs.ssh.get(&id) else {
                    if yes("required") {
                        return Err(bad(format!(
                            "no ssh agent {id} was forwarded: build with --ssh {id} (RUN --mount={spec})"
                        )));
                    }
                    continue;
                };
                let target = match given_target {
                    Some(t) => absolute(s, &s.expand(t)?),
                    None => format!("/run/buildkit/ssh_agent.{ssh_count}"),
                };
                if ssh_count == 0 {
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                }
                ssh_count += 1;
                out.mounts.push(Mount {
                    target: Some(target),
                    source: Some(socket.display().to_string()),
                    typ: Some(MountTypeEnum::BIND),
                    ..Default::default()
                });
                continue;
            }
            _ => {}
        }
        let target = given_target.ok_or_else(|| bad(format!("RUN --mount={spec}: a target is needed")))?;
        let target = s.expand(target)?;
        let target = if target.starts_with('/') {
            berth_dockerfile::clean_path(&target)
        } else {
            berth_dockerfile::clean_path(&format!("{}/{target}", s.workdir()))
        };
        let m = match typ {
            "cache" => {
                use sha2::Digest as _;
                let id = kv.get("id").cloned().unwrap_or_else(|| target.clone());
                let name = hex::encode(sha2::Sha256::digest(id.as_bytes()));
                let dir = cache_root.join(&name[..32]);
                std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
                Mount {
                    target: Some(target),
                    source: Some(dir.display().to_string()),
                    typ: Some(MountTypeEnum::BIND),
                    read_only: Some(yes("ro") || yes("readonly")),
                    ..Default::default()
                }
            }
            "tmpfs" => Mount {
                target: Some(target),
                typ: Some(MountTypeEnum::TMPFS),
                tmpfs_options: kv
                    .get("size")
                    .and_then(|v| v.parse::<i64>().ok())
                    .map(|size| MountTmpfsOptions {
                        size_bytes: Some(size),
                        ..Default::default()
                    }),
                ..Default::default()
            },
            "bind" => {
                // The build context, or the files taken out of the `from=` stage or image.
                let (base, place) = match from_roots.get(&index) {
                    Some(root) => (root.clone(), "the from= image"),
                    None if kv.contains_key("from") => {
                        return Err(EngineError::Internal(format!(
                            "RUN --mount={spec}: its image was not prepared"
                        )))
                    }
                    None => (ctx.root.clone(), "the build context"),
                };
                let src = kv
                    .get("source")
                    .or_else(|| kv.get("src"))
                    .cloned()
                    .unwrap_or_else(|| ".".into());
                let src = s.expand(&src)?;
                let rel = berth_dockerfile::clean_path(&src);
                let rel = rel.trim_start_matches('/');
                if rel == ".." || rel.starts_with("../") {
                    return Err(bad(format!("forbidden path outside the build context: {src}")));
                }
                let host = if rel.is_empty() || rel == "." {
                    base.clone()
                } else {
                    base.join(rel)
                };
                // Every component must be a real directory or file: a symlink would make the
                // bind reach outside (the kernel follows it on the host).
                let mut walk = base.clone();
                for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
                    walk.push(comp);
                    match std::fs::symlink_metadata(&walk) {
                        Ok(m) if m.file_type().is_symlink() => {
                            return Err(bad(format!(
                                "RUN --mount source {src}: {comp} is a symlink; bind a real path of {place}"
                            )))
                        }
                        Ok(_) => {}
                        Err(_) => return Err(bad(format!("RUN --mount source {src}: not found in {place}"))),
                    }
                }
                Mount {
                    target: Some(target),
                    source: Some(host.display().to_string()),
                    typ: Some(MountTypeEnum::BIND),
                    read_only: Some(!(yes("rw") || yes("readwrite"))),
                    ..Default::default()
                }
            }
            other => return Err(bad(format!("RUN --mount: unknown mount type {other:?}"))),
        };
        out.mounts.push(m);
    }
    Ok(out)
}

/// A mount target: absolute, or relative to the stage's working directory.
fn absolute(s: &Stage, target: &str) -> String {
    if target.starts_with('/') {
        berth_dockerfile::clean_path(target)
    } else {
        berth_dockerfile::clean_path(&format!("{}/{target}", s.workdir()))
    }
}

/// Writes a secret's file (created private, then given its owner and mode).
fn write_secret(path: &Path, data: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let io = |e| EngineError::io("writing the secret file", path, e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(())
}
