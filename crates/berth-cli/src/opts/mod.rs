//! `run`/`create` flags into the typed `POST /containers/create` body (`Config` + `HostConfig`,
//! the Engine API models), as the docker CLI's `parse()` does. Each concept has its module:
//! environment, ports, mounts and volumes, host settings.

pub(crate) mod env;
mod health;
mod host;
mod mounts;
pub(crate) mod netaddr;
mod network;
mod ports;

use berth_api::models::{
    ContainerConfig, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, NetworkingConfig,
};
use berth_api::ContainerCreateBody;

use crate::args::ContainerOpts;
use crate::units;
use berth_api::models::PortMap;
pub(crate) use host::{kv_map, memory_flag, non_empty, normalize_caps, parse_restart, parse_ulimit, security_opt};
pub(crate) use mounts::split_csv;
pub(crate) use netaddr::validate_link;
pub use network::adapt_to_api;
use ports::ExposedPorts;

/// Environment and file access the mapping needs, injected for tests.
pub struct Env<'a> {
    /// Looks up a variable of the CLI's environment (`-e KEY`, `--env-file` lines without `=`).
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a local file (`--env-file`, `--security-opt seccomp=<file>`).
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

/// The streams `run` attaches, as docker computes them: `-a` as given, else stdout and stderr
/// (and stdin with `-i`); nothing when detached.
fn attach_streams(o: &ContainerOpts, detach: bool) -> Result<(bool, bool, bool), String> {
    if detach {
        if !o.attach.is_empty() {
            return Err("conflicting options: cannot specify both --attach and --detach".into());
        }
        return Ok((false, false, false));
    }
    if o.attach.is_empty() {
        return Ok((o.interactive, true, true));
    }
    let (mut a_in, mut a_out, mut a_err) = (false, false, false);
    for a in &o.attach {
        match a.to_lowercase().as_str() {
            "stdin" => a_in = true,
            "stdout" => a_out = true,
            "stderr" => a_err = true,
            _ => {
                return Err(format!(
                    "invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                ))
            }
        }
    }
    Ok((a_in, a_out, a_err))
}

/// Builds the `POST /containers/create` body. `detach` is `run -d` (and always true for `create`).
pub fn create_body(o: &ContainerOpts, detach: bool, env: &Env<'_>) -> Result<ContainerCreateBody, String> {
    let image = o.image();
    if image.is_empty() {
        return Err("requires at least 1 argument".into());
    }
    let cmd: Vec<String> = o.args[1..].to_vec();
    let (a_in, a_out, a_err) = attach_streams(o, detach)?;
    if o.rm && o.restart.as_deref().is_some_and(|r| r != "no" && !r.is_empty()) {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }

    let mut envs = Vec::new();
    for f in &o.env_file {
        let content = (env.read_file)(f).map_err(|e| format!("open {f}: {e}"))?;
        envs.extend(env::parse_env_file(f, &content, env.lookup)?);
    }
    for e in &o.env {
        envs.push(env::expand_env(e, env.lookup));
    }

    let mut exposed = ExposedPorts::new();
    let mut bindings = PortMap::new();
    for p in &o.publish {
        ports::parse_publish(p, &mut exposed, &mut bindings)?;
    }
    for e in &o.expose {
        ports::parse_expose(e, &mut exposed)?;
    }
    let (binds, volumes) = mounts::split_volumes(&o.volume)?;
    let net = network::networking(o)?;
    // Flag values the docker CLI validates as it reads them (`invalid argument ... flag`).
    let checked = |items: &[String], flag: &str, check: fn(&str) -> Result<String, String>| {
        items
            .iter()
            .map(|v| check(v).map_err(|e| format!("invalid argument \"{v}\" for \"--{flag}\" flag: {e}")))
            .collect::<Result<Vec<_>, _>>()
    };
    let dns = checked(&o.dns, "dns", netaddr::validate_ip)?;
    let dns_search = checked(&o.dns_search, "dns-search", netaddr::validate_dns_search)?;
    let extra_hosts = checked(&o.add_host, "add-host", netaddr::validate_extra_host)?;

    let config = ContainerConfig {
        hostname: Some(o.hostname.clone().unwrap_or_default()),
        domainname: Some(o.domainname.clone().unwrap_or_default()),
        user: Some(o.user.clone().unwrap_or_default()),
        attach_stdin: Some(a_in),
        attach_stdout: Some(a_out),
        attach_stderr: Some(a_err),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: Some(o.tty),
        open_stdin: Some(o.interactive),
        stdin_once: Some(o.interactive && a_in && !detach),
        env: Some(envs),
        cmd: non_empty(cmd),
        image: Some(image.to_string()),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: Some(o.workdir.clone().unwrap_or_default()),
        entrypoint: o.entrypoint.as_ref().map(|e| vec![e.clone()]),
        labels: Some(kv_map(&o.label, "label")?),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        healthcheck: health::health_config(o)?,
        ..ContainerConfig::default()
    };

    let restart_policy = parse_restart(o.restart.as_deref().unwrap_or("no"))?;
    // `--log-opt` alone applies to the daemon's default driver (the docker CLI sends an empty Type).
    let log_config = match (&o.log_driver, o.log_opt.is_empty()) {
        (None, true) => None,
        (d, _) => Some(HostConfigLogConfig {
            typ: Some(d.clone().unwrap_or_default()),
            config: Some(kv_map(&o.log_opt, "log-opt")?),
        }),
    };
    let cgroupns_mode = match o.cgroupns.as_deref() {
        None => None,
        // Docker's own check (`--cgroupns` takes host or private).
        Some(c) => Some(
            c.parse::<HostConfigCgroupnsModeEnum>()
                .map_err(|_| "--cgroupns: invalid CGROUP mode".to_string())?,
        ),
    };
    let security_opts = o
        .security_opt
        .iter()
        .map(|s| security_opt(s, env))
        .collect::<Result<Vec<_>, _>>()?;
    let mounts = o
        .mount
        .iter()
        .map(|m| mounts::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let shm_size = match &o.shm_size {
        Some(s) => {
            Some(units::ram_in_bytes(s).map_err(|e| format!("invalid argument \"{s}\" for \"--shm-size\" flag: {e}"))?)
        }
        None => None,
    };
    let sysctls = if o.sysctl.is_empty() {
        None
    } else {
        Some(kv_map(&o.sysctl, "sysctl")?)
    };
    let memory = memory_flag("memory", o.memory.as_deref())?;
    let memory_swap = memory_flag("memory-swap", o.memory_swap.as_deref())?;
    let memory_reservation = memory_flag("memory-reservation", o.memory_reservation.as_deref())?;
    let nano_cpus = match &o.cpus {
        Some(c) => units::nano_cpus(c).map_err(|e| format!("invalid argument \"{c}\" for \"--cpus\" flag: {e}"))?,
        None => 0,
    };
    let host_config = HostConfig {
        binds: non_empty(binds),
        volumes_from: non_empty(o.volumes_from.clone()),
        volume_driver: Some(o.volume_driver.clone().unwrap_or_default()),
        network_mode: Some(net.mode),
        links: non_empty(o.link.clone()),
        publish_all_ports: Some(o.publish_all),
        port_bindings: Some(bindings),
        restart_policy: Some(restart_policy),
        auto_remove: Some(o.rm),
        log_config,
        cap_add: non_empty(normalize_caps(&o.cap_add)),
        cap_drop: non_empty(normalize_caps(&o.cap_drop)),
        cgroupns_mode,
        dns: Some(dns),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(dns_search),
        extra_hosts: non_empty(extra_hosts),
        group_add: non_empty(o.group_add.clone()),
        ipc_mode: Some(o.ipc.clone().unwrap_or_default()),
        pid_mode: Some(o.pid.clone().unwrap_or_default()),
        privileged: Some(o.privileged),
        readonly_rootfs: Some(o.read_only),
        security_opt: Some(security_opts),
        mounts: (!mounts.is_empty()).then_some(mounts),
        tmpfs: (!o.tmpfs.is_empty()).then(|| mounts::parse_tmpfs(&o.tmpfs)),
        uts_mode: Some(o.uts.clone().unwrap_or_default()),
        userns_mode: Some(o.userns.clone().unwrap_or_default()),
        shm_size,
        sysctls,
        runtime: o.runtime.clone(),
        init: o.init.then_some(true),
        // Resources (flattened into HostConfig).
        memory: Some(memory),
        memory_swap: Some(memory_swap),
        memory_reservation: Some(memory_reservation),
        cpu_shares: Some(o.cpu_shares.unwrap_or(0)),
        nano_cpus: Some(nano_cpus),
        cpuset_cpus: Some(o.cpuset_cpus.clone().unwrap_or_default()),
        pids_limit: o.pids_limit,
        ulimits: Some(
            o.ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        ..HostConfig::default()
    };

    Ok(ContainerCreateBody {
        config,
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(net.endpoints),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::{json, Value};

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn body(args: &[&str]) -> Result<Value, String> {
        let typed = typed_body(args)?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }

    fn typed_body(args: &[&str]) -> Result<ContainerCreateBody, String> {
        let mut argv = vec!["run"];
        argv.extend_from_slice(args);
        let t = T::try_parse_from(argv).map_err(|e| e.to_string())?;
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let read = |p: &str| -> std::io::Result<String> {
            match p {
                "envs" => Ok("# comment\nA=1\n\n  B=two words\nHOME_X\nUNSET_X\n".into()),
                "sec.json" => Ok("{ \"defaultAction\": \"SCMP_ACT_ALLOW\" }".into()),
                _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            }
        };
        create_body(
            &t.o,
            false,
            &Env {
                lookup: &lookup,
                read_file: &read,
            },
        )
    }

    #[test]
    fn run_flags_to_create_body() {
        // (args, JSON pointer, expected value)
        let cases: &[(&[&str], &str, Value)] = &[
            (&["busybox"], "/Image", json!("busybox")),
            (&["busybox"], "/Cmd", Value::Null),
            (
                &["busybox", "sh", "-c", "echo hi"],
                "/Cmd",
                json!(["sh", "-c", "echo hi"]),
            ),
            (&["busybox", "ls", "-l"], "/Labels", json!({})),
            (&["-l", "a=b", "-l", "c", "bb"], "/Labels", json!({"a": "b", "c": ""})),
            (
                &["-e", "A=1", "-e", "HOME_X", "-e", "NOPE", "bb"],
                "/Env",
                json!(["A=1", "HOME_X=/root", "NOPE"]),
            ),
            (
                &["--env-file", "envs", "-e", "C=3", "bb"],
                "/Env",
                json!(["A=1", "B=two words", "HOME_X=/root", "C=3"]),
            ),
            (&["-w", "/tmp", "-u", "1000:1000", "bb"], "/WorkingDir", json!("/tmp")),
            (&["-u", "nobody", "bb"], "/User", json!("nobody")),
            (&["--entrypoint", "", "bb"], "/Entrypoint", json!([""])),
            (&["--entrypoint", "/bin/sh", "bb"], "/Entrypoint", json!(["/bin/sh"])),
            (&["-h", "box", "bb"], "/Hostname", json!("box")),
            (&["-i", "bb"], "/OpenStdin", json!(true)),
            (&["-i", "bb"], "/AttachStdin", json!(true)),
            (&["-i", "bb"], "/StdinOnce", json!(true)),
            (&["-t", "bb"], "/Tty", json!(true)),
            (&["bb"], "/AttachStdout", json!(true)),
            (
                &["--stop-signal", "SIGINT", "--stop-timeout", "3", "bb"],
                "/StopSignal",
                json!("SIGINT"),
            ),
            (&["--stop-timeout", "3", "bb"], "/StopTimeout", json!(3)),
            (&["--rm", "bb"], "/HostConfig/AutoRemove", json!(true)),
            (&["--init", "bb"], "/HostConfig/Init", json!(true)),
            (&["--privileged", "bb"], "/HostConfig/Privileged", json!(true)),
            (&["--read-only", "bb"], "/HostConfig/ReadonlyRootfs", json!(true)),
            (
                &["--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "bb"],
                "/HostConfig/CapAdd",
                json!(["CAP_NET_ADMIN"]),
            ),
            (&["--cap-drop", "ALL", "bb"], "/HostConfig/CapDrop", json!(["ALL"])),
            (
                &["--cap-drop", "chown", "bb"],
                "/HostConfig/CapDrop",
                json!(["CAP_CHOWN"]),
            ),
            (&["bb"], "/HostConfig/CapDrop", Value::Null),
            (
                &["--security-opt", "no-new-privileges", "bb"],
                "/HostConfig/SecurityOpt",
                json!(["no-new-privileges"]),
            ),
            (
                &["--security-opt", "seccomp=sec.json", "bb"],
                "/HostConfig/SecurityOpt",
                json!(["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]),
            ),
            (&["-m", "512m", "bb"], "/HostConfig/Memory", json!(536870912)),
            (&["--memory-swap", "-1", "bb"], "/HostConfig/MemorySwap", json!(-1)),
            (
                &["--memory-swap", "1g", "bb"],
                "/HostConfig/MemorySwap",
                json!(1073741824),
            ),
            (&["--cpus", "0.5", "bb"], "/HostConfig/NanoCpus", json!(500000000)),
            (&["-c", "512", "bb"], "/HostConfig/CpuShares", json!(512)),
            (&["--pids-limit", "100", "bb"], "/HostConfig/PidsLimit", json!(100)),
            (
                &["--ulimit", "nofile=1024:2048", "bb"],
                "/HostConfig/Ulimits",
                json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
            ),
            (
                &["--ulimit", "nproc=10", "bb"],
                "/HostConfig/Ulimits",
                json!([{"Name": "nproc", "Soft": 10, "Hard": 10}]),
            ),
            (&["bb"], "/HostConfig/NetworkMode", json!("default")),
            (&["--network", "none", "bb"], "/HostConfig/NetworkMode", json!("none")),
            (&["--net", "host", "bb"], "/HostConfig/NetworkMode", json!("host")),
            (&["--runtime", "runc", "bb"], "/HostConfig/Runtime", json!("runc")),
            (
                &["--restart", "on-failure:3", "bb"],
                "/HostConfig/RestartPolicy",
                json!({"Name": "on-failure", "MaximumRetryCount": 3}),
            ),
            (
                &["--restart", "always", "bb"],
                "/HostConfig/RestartPolicy",
                json!({"Name": "always", "MaximumRetryCount": 0}),
            ),
            (
                &["--tmpfs", "/run:rw,size=64m", "--tmpfs", "/x", "bb"],
                "/HostConfig/Tmpfs",
                json!({"/run": "rw,size=64m", "/x": ""}),
            ),
            (
                &["-v", "/host:/c:ro", "bb"],
                "/HostConfig/Binds",
                json!(["/host:/c:ro"]),
            ),
            (&["-v", "/data", "bb"], "/Volumes", json!({"/data": {}})),
            (
                &["-p", "8080:80", "bb"],
                "/HostConfig/PortBindings",
                json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
            ),
            (
                &["-p", "127.0.0.1:53:53/udp", "bb"],
                "/HostConfig/PortBindings",
                json!({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}]}),
            ),
            (&["-p", "80", "bb"], "/ExposedPorts", json!({"80/tcp": {}})),
            (
                &["--expose", "7000-7001", "bb"],
                "/ExposedPorts",
                json!({"7000/tcp": {}, "7001/tcp": {}}),
            ),
            (&["--userns", "host", "bb"], "/HostConfig/UsernsMode", json!("host")),
            (&["--shm-size", "1g", "bb"], "/HostConfig/ShmSize", json!(1073741824)),
            (
                &["--sysctl", "net.ipv4.ip_forward=1", "bb"],
                "/HostConfig/Sysctls",
                json!({"net.ipv4.ip_forward": "1"}),
            ),
            (
                &["--mount", "type=bind,src=/a,dst=/b,readonly", "bb"],
                "/HostConfig/Mounts",
                json!([{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true}]),
            ),
            (
                &["--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777", "bb"],
                "/HostConfig/Mounts",
                json!([{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}}]),
            ),
            (
                &["-v", "data:/d:ro,nocopy", "-v", "/h:/c:rshared", "-v", "/anon", "bb"],
                "/HostConfig/Binds",
                json!(["data:/d:ro,nocopy", "/h:/c:rshared"]),
            ),
            (
                &["-v", "data:/d", "-v", "/anon", "bb"],
                "/Volumes",
                json!({"/anon": {}}),
            ),
            (&["-v", "data:/d", "bb"], "/Volumes", Value::Null),
            (
                &["--volumes-from", "db:ro", "--volumes-from", "cache", "bb"],
                "/HostConfig/VolumesFrom",
                json!(["db:ro", "cache"]),
            ),
            (&["bb"], "/HostConfig/VolumesFrom", Value::Null),
            (
                &["--volume-driver", "nfs", "bb"],
                "/HostConfig/VolumeDriver",
                json!("nfs"),
            ),
            (&["bb"], "/HostConfig/VolumeDriver", json!("")),
            (
                &["--mount", "source=data,target=/d,volume-subpath=s", "bb"],
                "/HostConfig/Mounts",
                json!([{"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"Subpath": "s"}}]),
            ),
            // Flags after the image belong to the command.
            (&["bb", "-l", "--rm"], "/Cmd", json!(["-l", "--rm"])),
            (&["bb", "-l", "--rm"], "/HostConfig/AutoRemove", json!(false)),
        ];
        for (args, pointer, want) in cases {
            let b = body(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            // A field left out of the body reads as `null` on the daemon's side.
            assert_eq!(
                b.pointer(pointer).unwrap_or(&Value::Null),
                want,
                "{args:?} {pointer}: {b}"
            );
        }
    }

    /// The daemon reads the body back into the same model: nothing is lost on the way.
    #[test]
    fn body_round_trips_through_the_daemon_type() {
        let b = body(&[
            "-it",
            "-p",
            "8080:80",
            "--mount",
            "type=tmpfs,target=/t",
            "--restart",
            "on-failure:2",
            "--cgroupns",
            "host",
            "--ulimit",
            "nofile=1:2",
            "bb",
            "sh",
        ])
        .unwrap();
        let parsed: ContainerCreateBody = serde_json::from_value(b.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), b);
        assert_eq!(b["HostConfig"]["CgroupnsMode"], "host");
        assert!(typed_body(&["--cgroupns", "nested", "bb"])
            .unwrap_err()
            .contains("invalid CGROUP mode"));
    }

    #[test]
    fn network_flags_to_create_body() {
        // (args, JSON pointer, expected value)
        let cases: &[(&[&str], &str, Value)] = &[
            (&["bb"], "/NetworkingConfig", json!({"EndpointsConfig": {}})),
            (&["--network", "net1", "bb"], "/HostConfig/NetworkMode", json!("net1")),
            // A lone network without endpoint options gets no entry, as with Docker.
            (
                &["--network", "net1", "bb"],
                "/NetworkingConfig/EndpointsConfig",
                json!({}),
            ),
            (
                &["--network", "front", "--net", "back", "bb"],
                "/NetworkingConfig/EndpointsConfig",
                json!({"front": {}, "back": {}}),
            ),
            (
                &["--network", "front", "--net", "back", "bb"],
                "/HostConfig/NetworkMode",
                json!("front"),
            ),
            (
                &[
                    "--network",
                    "front",
                    "--network-alias",
                    "web",
                    "--ip",
                    "10.1.0.5",
                    "--ip6",
                    "fd00::5",
                    "--link",
                    "db:database",
                    "--link-local-ip",
                    "169.254.7.7",
                    "--mac-address",
                    "02:42:ac:11:00:04",
                    "bb",
                ],
                "/NetworkingConfig/EndpointsConfig/front",
                json!({"Aliases": ["web"], "Links": ["db:database"], "MacAddress": "02:42:ac:11:00:04",
                       "IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.7.7"]}}),
            ),
            // The single-network flags apply to the first network only.
            (
                &["--network", "a", "--network", "b", "--network-alias", "x", "bb"],
                "/NetworkingConfig/EndpointsConfig",
                json!({"a": {"Aliases": ["x"]}, "b": {}}),
            ),
            (
                &[
                    "--network",
                    "name=a,alias=x,ip=10.0.0.9,driver-opt=k=v",
                    "--network",
                    "b",
                    "bb",
                ],
                "/NetworkingConfig/EndpointsConfig/a",
                json!({"Aliases": ["x"], "IPAMConfig": {"IPv4Address": "10.0.0.9"}, "DriverOpts": {"k": "v"}}),
            ),
            // `--ip` without a user network: accepted here, the daemon decides.
            (
                &["--ip", "172.17.0.9", "bb"],
                "/NetworkingConfig/EndpointsConfig/default",
                json!({"IPAMConfig": {"IPv4Address": "172.17.0.9"}}),
            ),
            // On the default bridge `--link` is a legacy link: HostConfig only.
            (&["--link", "db", "bb"], "/HostConfig/Links", json!(["db"])),
            (&["--link", "db", "bb"], "/NetworkingConfig/EndpointsConfig", json!({})),
            (
                &["--network", "n", "--link", "db:d", "bb"],
                "/HostConfig/Links",
                json!(["db:d"]),
            ),
            (&["bb"], "/HostConfig/Links", Value::Null),
            (&["-P", "bb"], "/HostConfig/PublishAllPorts", json!(true)),
            (&["--publish-all", "bb"], "/HostConfig/PublishAllPorts", json!(true)),
            (&["bb"], "/HostConfig/PublishAllPorts", json!(false)),
            (
                &["--dns", "1.1.1.1", "--dns", "0:0::1", "bb"],
                "/HostConfig/Dns",
                json!(["1.1.1.1", "::1"]),
            ),
            (&["bb"], "/HostConfig/Dns", json!([])),
            (
                &["--dns-search", "example.com", "--dns-search", ".", "bb"],
                "/HostConfig/DnsSearch",
                json!(["example.com", "."]),
            ),
            (
                &["--dns-option", "ndots:2", "--dns-opt", "use-vc", "bb"],
                "/HostConfig/DnsOptions",
                json!(["ndots:2", "use-vc"]),
            ),
            (
                &[
                    "--add-host",
                    "db:10.0.0.2",
                    "--add-host",
                    "gw=host-gateway",
                    "--add-host",
                    "v6=[::1]",
                    "bb",
                ],
                "/HostConfig/ExtraHosts",
                json!(["db:10.0.0.2", "gw:host-gateway", "v6:::1"]),
            ),
            (
                &["--domainname", "example.org", "bb"],
                "/Domainname",
                json!("example.org"),
            ),
            (
                &["-p", "8080:80", "-P", "--expose", "443", "bb"],
                "/ExposedPorts",
                json!({"80/tcp": {}, "443/tcp": {}}),
            ),
        ];
        for (args, pointer, want) in cases {
            let b = body(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                b.pointer(pointer).unwrap_or(&Value::Null),
                want,
                "{args:?} {pointer}: {b}"
            );
        }
    }

    #[test]
    fn mac_address_follows_the_api_version() {
        let mut b = typed_body(&["--network", "n", "--mac-address", "02:42:ac:11:00:04", "bb"]).unwrap();
        let mut old = b.clone();
        adapt_to_api(&mut b, "1.47");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v.get("MacAddress"), None);
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"]["n"]["MacAddress"],
            "02:42:ac:11:00:04"
        );
        adapt_to_api(&mut old, "1.43");
        let v = serde_json::to_value(&old).unwrap();
        assert_eq!(v["MacAddress"], "02:42:ac:11:00:04");
        assert_eq!(v["NetworkingConfig"]["EndpointsConfig"]["n"].get("MacAddress"), None);
    }

    #[test]
    fn network_flag_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--network", "host", "--network", "mynet", "bb"],
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            ),
            (&["--network", "a", "--network", "a", "bb"], "network \"a\" is specified multiple times"),
            (
                &["--network-alias", "x", "bb"],
                "network-scoped aliases are only supported for user-defined networks",
            ),
            (
                &["--network", "bridge", "--network-alias", "x", "bb"],
                "network-scoped aliases are only supported for user-defined networks",
            ),
            (
                &["--network", "name=a,alias=y", "--network-alias", "x", "bb"],
                "conflicting options: cannot specify both --network-alias and per-network alias",
            ),
            (
                &["--network", "name=a,ip=10.0.0.1", "--ip", "10.0.0.2", "bb"],
                "conflicting options: cannot specify both --ip and per-network IPv4 address",
            ),
            (
                &["--network", "name=a,bogus=1", "bb"],
                "invalid argument \"name=a,bogus=1\" for \"--network\" flag: invalid field key bogus",
            ),
            (&["--mac-address", "nope", "bb"], "nope is not a valid mac address"),
            (
                &["--link", "a:b:c", "bb"],
                "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c",
            ),
            (
                &["--dns", "dns.example", "bb"],
                "invalid argument \"dns.example\" for \"--dns\" flag: IP address is not correctly formatted: dns.example",
            ),
            (
                &["--add-host", "nohost", "bb"],
                "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\"",
            ),
            (
                &["--add-host", "h:1.2.3", "bb"],
                "invalid argument \"h:1.2.3\" for \"--add-host\" flag: invalid IP address in add-host: \"1.2.3\"",
            ),
            (
                &["--dns-search=-x", "bb"],
                "invalid argument \"-x\" for \"--dns-search\" flag: -x is not a valid domain",
            ),
        ];
        for (args, want) in cases {
            let e = body(args).unwrap_err();
            assert_eq!(&e, want, "{args:?}");
        }
    }

    #[test]
    fn run_flag_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["-m", "lots", "bb"],
                "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'",
            ),
            (&["--cpus", "x", "bb"], "--cpus"),
            (
                &["--rm", "--restart", "always", "bb"],
                "conflicting options: cannot specify both --restart and --rm",
            ),
            (&["--restart", "sometimes", "bb"], "unknown policy"),
            (&["--ulimit", "nofile", "bb"], "invalid ulimit argument"),
            (&["--env-file", "missing", "bb"], "open missing"),
            (&["-p", "1:2:3:4", "bb"], "invalid port format"),
            (&["-a", "stdfoo", "bb"], "valid streams"),
            (&["--mount", "type=bind,src=/a", "bb"], "target is required"),
            (&["--mount", "type=bind,bogus=1,target=/b", "bb"], "unexpected key"),
            (
                &["-v", "a::/b", "bb"],
                "invalid spec: a::/b: empty section between colons",
            ),
        ];
        for (args, want) in cases {
            let e = body(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    /// Every top-level and HostConfig key we send is a field of the spec's ContainerConfig /
    /// HostConfig (names checked against engine-api-v1.47.yaml).
    #[test]
    fn field_names_match_spec() {
        let spec = std::fs::read_to_string("/work/shared/specs/engine-api-v1.47.yaml");
        let Ok(spec) = spec else {
            eprintln!("skipping: engine API spec not present");
            return;
        };
        let b = body(&[
            "-e",
            "A=1",
            "-p",
            "80:80",
            "--init",
            "--runtime",
            "r",
            "--stop-signal",
            "S",
            "--stop-timeout",
            "1",
            "--tmpfs",
            "/t",
            "--shm-size",
            "1m",
            "--sysctl",
            "a=b",
            "--pids-limit",
            "1",
            "-v",
            "/d",
            "--log-driver",
            "json-file",
            "--cgroupns",
            "host",
            "-P",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:1",
            "--link",
            "db",
            "--network",
            "n",
            "--mac-address",
            "02:42:ac:11:00:04",
            "bb",
        ])
        .unwrap();
        let obj = b.as_object().unwrap();
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.extend(obj["HostConfig"].as_object().unwrap().keys());
        keys.extend(obj["NetworkingConfig"].as_object().unwrap().keys());
        keys.extend(
            b["NetworkingConfig"]["EndpointsConfig"]["n"]
                .as_object()
                .unwrap()
                .keys(),
        );
        for k in keys {
            assert!(
                spec.contains(&format!("\n        {k}:")) || spec.contains(&format!(" {k}:")),
                "{k} not in spec"
            );
        }
    }
}
