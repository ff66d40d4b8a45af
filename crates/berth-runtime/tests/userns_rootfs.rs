//! A container in a user namespace over a `--userns-remap` rootfs (layers shifted by the snapshotter):
//! `id` is root, root writes to `/`, `/root`, `/tmp`, `/dev` and a working directory the runtime
//! created, and those files land in the upper dir owned by the mapped root. Runs without the test
//! harness: `linux::create` clones like the single-threaded shim, which threads would make unsafe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_runtime::linux::{self, CreateOptions, RootfsMount, Stdio};
use berth_runtime::{build_spec, IdMap, NetworkMode, ResolvedUser, RuntimeConfig, SeccompMode};
use berth_snapshot::Snapshotter;
use berth_types::{Digest, IdentityMapping};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const BASE: u32 = 100_000;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: userns_rootfs needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-userns-rootfs")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    // The mapped root never walks these paths (the runtime mounts as host root), but keep them
    // traversable like Docker's 0711 data root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let map = IdentityMapping::single(BASE, BASE, 65_536);
    let snaps = Snapshotter::open_with_idmap(&dir.path().join("snapshots"), Some(map)).expect("snapshotter");
    let layer = berth_testkit::busybox_rootfs_tar().expect("busybox rootfs");
    let chain = Digest::sha256(&layer);
    snaps.apply_layer(&chain, None, &layer[..]).expect("apply layer");
    let rw = snaps.create_rw("c").expect("rw layer");
    let ms = snaps
        .rootfs_mount("c", std::slice::from_ref(&chain))
        .expect("mount spec");
    let rootfs_dir = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs_dir).expect("rootfs dir");

    let script = "id -u; id -g; stat -c %u:%g / /root /tmp /dev /dev/shm /work/sub; \
        touch /at-root /root/in-root /tmp/in-tmp /dev/in-dev ./in-cwd && rm /bin/yes && echo wrote; pwd";
    let m = IdMap {
        container_id: 0,
        host_id: BASE,
        size: 65_536,
    };
    let rc = RuntimeConfig {
        id: format!("userns{}", std::process::id()),
        args: ["sh", "-c", script].iter().map(|s| s.to_string()).collect(),
        hostname: "userns".into(),
        cwd: "/work/sub".into(),
        user: ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        },
        uid_mappings: vec![m],
        gid_mappings: vec![m],
        network: NetworkMode::New,
        seccomp: SeccompMode::Default,
        ..Default::default()
    };
    let spec = build_spec(&rc, &rootfs_dir).expect("spec");
    let rootfs = RootfsMount {
        fstype: ms.fstype.clone(),
        source: ms.source.clone(),
        options: ms.options.clone(),
        cwd: ms.cwd.as_ref().map(Into::into),
    };
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe");
    // SAFETY: both descriptors were just created and are owned here.
    let (out_r, out_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let opts = CreateOptions {
        spec: &spec,
        rootfs: &rootfs,
        stdio: Stdio::Fds {
            stdin: null.as_raw_fd(),
            stdout: out_w.as_raw_fd(),
            stderr: out_w.as_raw_fd(),
        },
        cgroup: None,
        seccomp_cache: None,
    };
    let created = linux::create(&opts).expect("create");
    let pid = created.pid();
    created.start().expect("start");
    drop(out_w);
    let mut out = String::new();
    std::fs::File::from(out_r)
        .read_to_string(&mut out)
        .expect("read output");
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "exit {status}: {out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["0", "0", "0:0", "0:0", "0:0", "0:0", "0:0", "0:0", "wrote", "/work/sub"],
        "{out}"
    );
    let owner = |p: &Path| {
        let md = std::fs::symlink_metadata(p).expect("stat");
        (md.uid(), md.gid())
    };
    for p in [
        "at-root",
        "root/in-root",
        "tmp/in-tmp",
        "work",
        "work/sub",
        "work/sub/in-cwd",
    ] {
        assert_eq!(owner(&rw.upper.join(p)), (BASE, BASE), "{p} in the upper dir");
    }
    // The container's changes map back to a normal layer.
    // The container's changes map back to a normal layer, the kernel's whiteout included.
    let mut diff = Vec::new();
    snaps.write_diff("c", &mut diff).expect("diff maps back");
    let mut entries = Vec::new();
    for e in tar::Archive::new(&diff[..]).entries().expect("diff tar") {
        let e = e.expect("entry");
        let h = e.header();
        entries.push((
            e.path().expect("path").display().to_string(),
            h.uid().expect("uid"),
            h.gid().expect("gid"),
        ));
    }
    for want in ["at-root", "root/in-root", "work/sub/in-cwd", "bin/.wh.yes"] {
        assert!(
            entries.iter().any(|(p, u, g)| p == want && (*u, *g) == (0, 0)),
            "{want} owned by 0:0 in {entries:?}"
        );
    }
    println!("userns_rootfs: ok");
}
