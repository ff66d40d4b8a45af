//! `berth` starts berthd by itself when nothing answers on the default socket, and refuses to with
//! `--no-autostart`. The test runs in a private mount namespace with fresh tmpfs over /run/berth,
//! /var/lib/berth and /var/log, so the default paths are its own, and in a network namespace of its
//! own, so the default bridge it makes is too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::process::Command;

#[test]
fn cli_autostarts_the_daemon_on_the_default_socket() {
    let dir = std::env::temp_dir().join(format!("berth-autostart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rootfs = dir.join("rootfs.tar");
    std::fs::write(&rootfs, berth_testkit::busybox_rootfs_tar().expect("rootfs tar")).expect("writing rootfs tar");
    let bindir = common::bin("berth")
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let script = format!(
        r#"
set -u
for d in /run/berth /var/lib/berth /var/log; do mkdir -p $d && mount -t tmpfs tmpfs $d || exit 90; done
ip link set lo up || exit 89
export PATH={bindir}:$PATH
unset DOCKER_HOST BERTH_HOST
if berth --no-autostart ps 2>refusal.txt; then echo "--no-autostart started a daemon"; exit 91; fi
if BERTH_NO_AUTOSTART=1 berth ps 2>>refusal.txt; then echo "BERTH_NO_AUTOSTART started a daemon"; exit 92; fi
berth import -c 'CMD ["sh"]' {rootfs} bb >/dev/null || {{ cat /var/log/berth/berthd.log /run/berth/berthd.log >&2 2>/dev/null; exit 93; }}
berth run --rm bb echo autostarted
code=$?
berth ps -aq
kill "$(cat /run/berth/berthd.pid)"
exit $code
"#,
        rootfs = rootfs.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "sh", "-c", &script])
        .current_dir(&dir)
        .output()
        .expect("running unshare");
    let refusal = std::fs::read_to_string(dir.join("refusal.txt")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "autostarted\n");
    assert!(refusal.contains("Is the daemon running"), "{refusal}");
}
