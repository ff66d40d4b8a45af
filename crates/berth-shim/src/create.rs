//! Creating the container's init (berth's own runtime, or an external one) and the shim around it.

use crate::process::{Pending, Proc, StdioSetup};
use crate::protocol::ShimConfig;
use crate::serve::Shim;
use crate::{io_err, log, read_json, Args, ShimError};
use berth_runtime::linux::{self, CreateError, CreateOptions};
use berth_runtime::{cgroups, external::ExternalRuntime, sys};
use std::os::unix::net::UnixListener;
use std::path::Path;

fn create_error(e: impl std::fmt::Display) -> (ShimError, i32) {
    (
        ShimError::Create(CreateError {
            message: e.to_string(),
            exit_code: 125,
        }),
        125,
    )
}

impl Shim {
    /// Reads the bundle, creates the init (blocked before exec) and listens on the socket.
    pub(crate) fn create(args: &Args, sigfd: std::fs::File) -> Result<Shim, (ShimError, i32)> {
        let e125 = |e: ShimError| (e, 125);
        let cfg: ShimConfig = read_json(&args.bundle.join("shim.json")).map_err(e125)?;
        let spec: berth_runtime::oci_spec::runtime::Spec = read_json(&args.bundle.join("config.json")).map_err(e125)?;
        let log = log::JsonLog::open_rotating(&cfg.log_path, cfg.log_rotation)
            .map_err(io_err(format!("opening log {}", cfg.log_path)))
            .map_err(e125)?;

        // The container's stdio, and our ends of it. With a TTY the runtime makes the pty inside the
        // container and sends us its master on the console socket once the container is created.
        // The spec's `process.consoleSize` wins; the shim config carries Docker's `ConsoleSize`.
        let spec_size = spec
            .process()
            .as_ref()
            .and_then(|p| p.console_size())
            .map(|b| (b.height() as u16, b.width() as u16))
            .filter(|(h, w)| *h > 0 && *w > 0);
        let size = spec_size.or(cfg.console_size).unwrap_or((0, 0));
        let io = StdioSetup::new(cfg.tty, cfg.open_stdin, size).map_err(e125)?;

        let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        let cgroup = match &cgroups_path {
            Some(p) => {
                Some(cgroups::open(Path::new(cgroups::DEFAULT_ROOT), &p.to_string_lossy()).map_err(create_error)?)
            }
            None => None,
        };
        let rootfs = &cfg.rootfs;
        let seccomp_cache = args.socket.parent().map(|d| d.join(".seccomp-cache"));
        let (pid, pending, external) = match &cfg.runtime_path {
            None => {
                if let Some(cg) = &cgroup {
                    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
                    if let Err(e) = cg.create(resources) {
                        let _ = cg.remove();
                        return Err(create_error(e));
                    }
                }
                let opts = CreateOptions {
                    spec: &spec,
                    rootfs,
                    stdio: io.stdio,
                    cgroup: cgroup.as_deref(),
                    seccomp_cache: seccomp_cache.as_deref(),
                };
                match linux::create(&opts) {
                    Ok(c) => (c.pid(), Pending::Own(c), None),
                    Err(e) => {
                        if let Some(cg) = &cgroup {
                            let _ = cg.remove();
                        }
                        let code = e.exit_code;
                        return Err((ShimError::Create(e), code));
                    }
                }
            }
            Some(rt) => {
                let ext = ExternalRuntime {
                    runtime: rt.into(),
                    bundle: args.bundle.clone(),
                    id: cfg.id.clone(),
                };
                match ext.create(&spec, rootfs, io.stdio) {
                    Ok(pid) => (pid, Pending::External, Some(ext)),
                    Err(e) => {
                        let code = e.exit_code;
                        return Err((ShimError::Create(e), code));
                    }
                }
            }
        };
        drop(spec);
        let io = match io.finish() {
            Ok(io) => io,
            Err(e) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                return Err((e, 125));
            }
        };
        let init = Proc::new(None, pid, pending, io, cfg.stdin_once);
        sys::trim_heap();

        let _ = std::fs::remove_file(&args.socket);
        if let Some(dir) = args.socket.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let listener = UnixListener::bind(&args.socket)
            .map_err(io_err(format!("listening on {}", args.socket.display())))
            .map_err(e125)?;
        listener.set_nonblocking(true).map_err(io_err("socket")).map_err(e125)?;
        let socket_id = std::fs::symlink_metadata(&args.socket).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        Ok(Shim {
            cfg,
            bundle: args.bundle.clone(),
            socket: args.socket.clone(),
            socket_id,
            seccomp_cache,
            exec_base: None,
            procs: vec![init],
            exited_at: None,
            external,
            log,
            listener,
            conns: Vec::new(),
            cgroup,
            sigfd,
            out_map: Vec::new(),
        })
    }
}
