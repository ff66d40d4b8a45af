//! Volume-style mounts through the real runtime, as root: a symlink in the image pointing out of the
//! rootfs, a process racing the runtime by swapping a destination component for a symlink to a host
//! directory (CVE-2021-30465), tmpfs size/mode/owner, read-only binds and bind propagation. Runs
//! without the test harness: `linux::create` clones like the single-threaded shim, which threads would
//! make unsafe (the racing process is forked, not a thread).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_runtime::cgroups::{self, CgroupManager};
use berth_runtime::linux::{self, CreateError, CreateOptions, RootfsMount, Stdio};
use berth_runtime::{build_spec, BindMount, NetworkMode, ResolvedUser, RuntimeConfig, SeccompMode};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Unmounts (lazily) what the test mounted on the host and removes the host directories it made,
/// whatever happens to the test.
#[derive(Default)]
struct Cleanup {
    mounts: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in &self.pids {
            // SAFETY: killing and reaping a process this test forked.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
        for m in self.mounts.iter().rev() {
            let c = CString::new(m.as_os_str().as_bytes()).unwrap();
            // SAFETY: c is a valid path; a lazy unmount of a mount this test made.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn host_mount(src: &Path, dst: &Path, fstype: &str, flags: libc::c_ulong) {
    let (s, d, t) = (cpath(src), cpath(dst), CString::new(fstype).unwrap());
    // SAFETY: valid NUL-terminated strings; a test mount, undone by Cleanup.
    let r = unsafe { libc::mount(s.as_ptr(), d.as_ptr(), t.as_ptr(), flags, std::ptr::null()) };
    assert_eq!(
        r,
        0,
        "mount {} on {}: {}",
        src.display(),
        dst.display(),
        std::io::Error::last_os_error()
    );
}

fn make_shared(p: &Path) {
    let c = cpath(p);
    // SAFETY: valid path; changes the propagation of a test mount.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_SHARED,
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "make-shared {}: {}", p.display(), std::io::Error::last_os_error());
}

/// Mount points of this (the host's) mount namespace.
fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

struct Run {
    started: Result<(), CreateError>,
    status: i32,
    out: String,
}

/// Runs `script` with busybox's sh in a container on the plain-directory rootfs `rootfs`, with the
/// binds of `binds` and the extra spec mounts `extra` (tmpfs).
fn run(rootfs: &Path, binds: Vec<BindMount>, extra: Vec<serde_json::Value>, script: &str) -> Run {
    run_in(rootfs, binds, extra, script, None, &[])
}

/// [`run`] in the cgroup `cgroup` (its directories mounted at `/sys/fs/cgroup`).
fn run_in(
    rootfs: &Path,
    binds: Vec<BindMount>,
    extra: Vec<serde_json::Value>,
    script: &str,
    cgroup: Option<&dyn CgroupManager>,
    cap_add: &[&str],
) -> Run {
    let rc = RuntimeConfig {
        id: format!("mounts{}", std::process::id()),
        args: ["/bin/busybox", "sh", "-c", script]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        hostname: "mounts".into(),
        cwd: "/".into(),
        user: ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        },
        network: NetworkMode::New,
        seccomp: SeccompMode::Unconfined,
        mounts: binds,
        cap_add: cap_add.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut spec = build_spec(&rc, rootfs).expect("spec");
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in extra {
        mounts.push(serde_json::from_value(m).expect("mount"));
    }
    spec.set_mounts(Some(mounts));
    let rootfs_mount = RootfsMount {
        fstype: String::new(),
        source: String::new(),
        options: Vec::new(),
        cwd: None,
    };
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe");
    // SAFETY: both descriptors were just created and are owned here.
    let (out_r, out_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let opts = CreateOptions {
        spec: &spec,
        rootfs: &rootfs_mount,
        stdio: Stdio::Fds {
            stdin: null.as_raw_fd(),
            stdout: out_w.as_raw_fd(),
            stderr: out_w.as_raw_fd(),
        },
        cgroup,
        seccomp_cache: None,
    };
    let created = match linux::create(&opts) {
        Ok(c) => c,
        Err(e) => {
            return Run {
                started: Err(e),
                status: -1,
                out: String::new(),
            }
        }
    };
    let pid = created.pid();
    let started = created.start();
    drop(out_w);
    let mut out = String::new();
    let _ = std::fs::File::from(out_r).read_to_string(&mut out);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let status = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Run { started, status, out }
}

fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    berth_testkit::busybox_rootfs(&rootfs).expect("busybox rootfs");
    for d in ["mnt", "race"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    rootfs
}

/// A name no other test in this process (nor another process) uses: the pid, then a counter (a clock
/// reading alone repeats when two threads ask in the same tick).
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn bind(source: &Path, destination: &str, readonly: bool, options: &[&str]) -> BindMount {
    BindMount {
        source: source.to_path_buf(),
        destination: destination.into(),
        readonly,
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every path under `p`, sorted.
fn tree(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![p.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// (a) `/mnt/target -> /../../../../tmp/<unique>` in the image: the bind lands at
/// `<rootfs>/tmp/<unique>/x`, the host's `/tmp/<unique>` is untouched.
fn symlink_out_of_the_rootfs(dir: &Path, cleanup: &mut Cleanup) {
    let rootfs = busybox_rootfs(&dir.join("a"));
    let name = format!("berth-escape-{}", unique());
    let host = Path::new("/tmp").join(&name);
    std::fs::create_dir(&host).unwrap();
    cleanup.dirs.push(host.clone());
    symlink(format!("/../../../../tmp/{name}"), rootfs.join("mnt/target")).unwrap();
    let vol = dir.join("a-vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("marker"), "volume\n").unwrap();
    // A symlink that stays inside the root is followed, as Docker does: `/data -> /var/data`.
    symlink("/var/data", rootfs.join("data")).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "file\n").unwrap();
    let r = run(
        &rootfs,
        vec![
            bind(&vol, "/mnt/target/x", false, &[]),
            bind(&vol, "/data", true, &[]),
            bind(&file, "/mnt/target/f/file.txt", true, &[]),
        ],
        vec![],
        "B=/bin/busybox; $B cat /mnt/target/x/marker /var/data/marker /mnt/target/f/file.txt; \
            $B touch /mnt/target/x/from-container",
    );
    r.started.as_ref().expect("start");
    assert_eq!((r.status, r.out.as_str()), (0, "volume\nvolume\nfile\n"));
    assert!(
        rootfs.join("var/data").is_dir(),
        "/data resolved to /var/data in the rootfs"
    );
    assert!(
        rootfs.join(format!("tmp/{name}/f/file.txt")).is_file(),
        "file mount point inside the rootfs"
    );
    assert!(
        rootfs.join(format!("tmp/{name}/x")).is_dir(),
        "mount point made inside the rootfs"
    );
    assert!(vol.join("from-container").exists(), "the volume was mounted");
    assert!(is_empty_dir(&host), "host dir untouched");
    assert!(!host_mount_points()
        .iter()
        .any(|m| m.starts_with(host.to_str().unwrap())));
    println!("symlink out of the rootfs: ok");
}

/// (b) A forked process swaps `/race/d` between a real directory and a symlink to a host directory
/// (`renameat2(RENAME_EXCHANGE)`, atomically, as fast as it can) while containers start: every start
/// succeeds with the mounts inside the rootfs or fails naming the destination; the host directory
/// never gets a mount nor a file.
fn race_with_a_symlink_swap(dir: &Path, cleanup: &mut Cleanup) {
    let rootfs = busybox_rootfs(&dir.join("b"));
    let host = dir.join("b-host");
    std::fs::create_dir(&host).unwrap();
    // The host dir is a shared mount and the containers get an `rshared` bind (so their `/` is
    // rshared): a mount landing on the host dir in a container's namespace would show on the host.
    host_mount(&host, &host, "", libc::MS_BIND);
    cleanup.mounts.push(host.clone());
    make_shared(&host);
    // The attacker prepared the targets on the host side, so a mount that follows the symlink lands.
    for i in 0..50 {
        std::fs::create_dir_all(host.join(format!("sub{i}/vol"))).unwrap();
        std::fs::create_dir_all(host.join(format!("t{i}/tmp"))).unwrap();
    }
    let before = tree(&host);
    let shared_vol = dir.join("b-shared");
    std::fs::create_dir(&shared_vol).unwrap();
    std::fs::create_dir(rootfs.join("race/d")).unwrap();
    symlink(&host, rootfs.join("race/alt")).unwrap();
    let vol = dir.join("b-vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("marker"), "volume\n").unwrap();
    let (d, alt) = (cpath(&rootfs.join("race/d")), cpath(&rootfs.join("race/alt")));
    // SAFETY: the test is single-threaded; the child only makes raw syscalls on prepared strings.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        loop {
            // SAFETY: both paths are valid NUL-terminated strings.
            unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    d.as_ptr(),
                    libc::AT_FDCWD,
                    alt.as_ptr(),
                    libc::RENAME_EXCHANGE,
                );
            }
        }
    }
    cleanup.pids.push(pid);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..50 {
        let r = run(
            &rootfs,
            vec![
                bind(&shared_vol, "/shared", false, &["rshared"]),
                bind(&vol, &format!("/race/d/sub{i}/vol"), false, &[]),
            ],
            vec![
                serde_json::json!({"destination": format!("/race/d/t{i}/tmp"), "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
            ],
            "true",
        );
        let new: Vec<_> = tree(&host).into_iter().filter(|p| !before.contains(p)).collect();
        assert!(new.is_empty(), "start {i}: appeared in the host dir: {new:?}");
        let h = format!("{}/", host.display());
        assert!(
            !host_mount_points().iter().any(|m| m.starts_with(&h)),
            "start {i}: a mount landed on the host dir"
        );
        match r.started {
            Ok(()) => {
                assert_eq!(r.status, 0, "{}", r.out);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.exit_code, 125, "{e}");
                assert!(e.message.contains("/race/d/"), "error names the destination: {e}");
                if refused == 0 {
                    println!("  refused: {e}");
                }
                refused += 1;
            }
        }
    }
    // SAFETY: stopping and reaping the racer this test forked.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    cleanup.pids.retain(|p| *p != pid);
    let h = format!("{}/", host.display());
    assert!(
        !host_mount_points().iter().any(|m| m.starts_with(&h)),
        "a mount landed on the host dir"
    );
    assert_eq!(tree(&host), before, "the host dir changed");
    assert!(std::fs::read_dir(&vol).unwrap().count() == 1, "volume untouched");
    println!("race with a symlink swap: ok ({ok} started, {refused} refused)");
}

/// (c) tmpfs: `size=` is enforced, `mode=`/`uid=`/`gid=` applied, Docker's `tmpfs-size`/`tmpfs-mode`
/// understood.
fn tmpfs_size_and_mode(dir: &Path) {
    let rootfs = busybox_rootfs(&dir.join("c"));
    let script = "B=/bin/busybox; $B stat -c '%a %u:%g' /run /t2; \
        $B dd if=/dev/zero of=/run/big bs=1024 count=2048 2>/dev/null && echo wrote-2m; $B stat -c %s /run/big; \
        $B dd if=/dev/zero of=/t2/big bs=1024 count=128 2>/dev/null && echo wrote-128k; $B stat -c %s /t2/big";
    let r = run(
        &rootfs,
        vec![],
        vec![
            serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                "options": ["rw", "noexec", "nosuid", "nodev", "size=1m", "mode=1777", "uid=1000", "gid=1000"]}),
            serde_json::json!({"destination": "/t2", "type": "tmpfs", "source": "tmpfs",
                "options": ["tmpfs-size=65536", "tmpfs-mode=700"]}),
        ],
        script,
    );
    r.started.as_ref().expect("start");
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines, ["1777 1000:1000", "700 0:0", "1048576", "65536"], "{}", r.out);
    println!("tmpfs size and mode: ok");
}

/// (d) A read-only bind refuses writes; the host source is unchanged.
fn readonly_bind(dir: &Path) {
    let rootfs = busybox_rootfs(&dir.join("d"));
    let vol = dir.join("d-vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "orig").unwrap();
    let script = "B=/bin/busybox; $B cat /ro/f; echo; \
        $B touch /ro/new 2>/dev/null && echo created; { echo x > /ro/f; } 2>/dev/null && echo overwritten; \
        $B touch /rw/new && echo rw-ok";
    let r = run(
        &rootfs,
        vec![
            bind(&vol, "/ro", true, &["nosuid", "nodev", "noexec"]),
            bind(&vol, "/rw", false, &[]),
        ],
        vec![],
        script,
    );
    r.started.as_ref().expect("start");
    assert_eq!(r.out, "orig\nrw-ok\n");
    assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "orig");
    println!("read-only bind: ok");
}

/// (e) An `rshared` bind sees a mount made later on the host under its source (so does an `rslave`
/// one), an `rprivate` bind of the same source does not; a mount made in the container under the
/// `rshared` bind reaches the host (Docker's `rootfsPropagation: rshared`), the rootfs mount does not.
fn propagation(dir: &Path, cleanup: &mut Cleanup) {
    let rootfs = busybox_rootfs(&dir.join("e"));
    let src = dir.join("e-src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    host_mount(&src, &src, "", libc::MS_BIND);
    cleanup.mounts.push(src.clone());
    make_shared(&src);
    let script = "B=/bin/busybox; i=0; while [ ! -e /shared/sub/marker ] && [ $i -lt 100 ]; do $B sleep 0.1; i=$((i+1)); done; \
        $B cat /shared/sub/marker; [ -e /slave/sub/marker ] && echo slave-sees; [ -e /private/sub/marker ] && echo private-sees; \
        $B mkdir /shared/up && $B mount -t tmpfs -o size=64k tmpfs /shared/up && echo mounted-inside; true";
    let rc_binds = vec![
        bind(&src, "/shared", false, &["rshared"]),
        bind(&src, "/slave", false, &["rslave"]),
        bind(&src, "/private", false, &["rprivate"]),
    ];
    // The container waits for the marker; mount it on the host once the container runs.
    let rootfs2 = rootfs.clone();
    let src2 = src.clone();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), 0) }, 0);
    // SAFETY: single-threaded; the child mounts on the host after a delay then exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let sub = src2.join("sub");
        let (s, t) = (cpath(&sub), c"tmpfs");
        // SAFETY: valid strings; mounts a tmpfs under the shared source, then writes the marker.
        let r = unsafe { libc::mount(t.as_ptr(), s.as_ptr(), t.as_ptr(), 0, std::ptr::null()) };
        let code = if r == 0 && std::fs::write(sub.join("marker"), "propagated\n").is_ok() {
            0
        } else {
            1
        };
        // SAFETY: ends the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    cleanup.pids.push(pid);
    cleanup.mounts.push(src.join("sub"));
    cleanup.mounts.push(src.join("up"));
    let r = run_in(&rootfs2, rc_binds, vec![], script, None, &["SYS_ADMIN"]);
    let mut status = 0;
    // SAFETY: reaping the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    cleanup.pids.retain(|p| *p != pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "host mount failed"
    );
    r.started.as_ref().expect("start");
    assert_eq!(r.out, "propagated\nslave-sees\nmounted-inside\n");
    let points = host_mount_points();
    let up = src.join("up");
    assert!(
        points.iter().any(|m| Path::new(m) == up),
        "the container's mount under the rshared bind reached the host"
    );
    assert!(
        !points.iter().any(|m| m.starts_with(rootfs.to_str().unwrap())),
        "the rootfs mount leaked to the host"
    );
    println!("propagation: ok");
}

/// (f) `/sys/fs/cgroup`: the container's own cgroup directories, mounted (through the same safe
/// resolution) read-only.
fn cgroup_mount(dir: &Path) {
    let root = Path::new(cgroups::DEFAULT_ROOT);
    let cg = match cgroups::open(root, &format!("/berth-test/mounts-{}", unique())) {
        Ok(cg) => cg,
        Err(e) => {
            println!("cgroup mount: skipped ({e})");
            return;
        }
    };
    cg.create(None).expect("create cgroup");
    let rootfs = busybox_rootfs(&dir.join("f"));
    let v2 = root.join("cgroup.controllers").exists();
    let probe = if v2 {
        "/sys/fs/cgroup/cgroup.procs"
    } else {
        "/sys/fs/cgroup/memory/cgroup.procs"
    };
    let script = format!(
        "B=/bin/busybox; $B cat {probe} >/dev/null && echo readable; $B touch /sys/fs/cgroup/x 2>/dev/null && echo writable; echo done"
    );
    let r = run_in(&rootfs, vec![], vec![], &script, Some(cg.as_ref()), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while cg.remove().is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    r.started.as_ref().expect("start");
    assert_eq!(
        r.out.split_whitespace().collect::<Vec<_>>(),
        ["readable", "done"],
        "{}",
        r.out
    );
    println!("cgroup mount: ok");
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: mounts needs root");
        return;
    }
    if berth_testkit::busybox_path().is_err() {
        eprintln!("SKIP: no busybox");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-mounts")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cleanup = Cleanup::default();
    // `MOUNTS_ONLY=race` (or any part of a case's name) runs just the matching cases.
    let only = std::env::var("MOUNTS_ONLY").unwrap_or_default();
    let want = |name: &str| name.contains(only.as_str());
    if want("symlink") {
        symlink_out_of_the_rootfs(dir.path(), &mut cleanup);
    }
    if want("tmpfs") {
        tmpfs_size_and_mode(dir.path());
    }
    if want("readonly") {
        readonly_bind(dir.path());
    }
    if want("propagation") {
        propagation(dir.path(), &mut cleanup);
    }
    if want("cgroup") {
        cgroup_mount(dir.path());
    }
    if want("race") {
        race_with_a_symlink_swap(dir.path(), &mut cleanup);
    }
    drop(cleanup);
    println!("mounts: ok");
}
