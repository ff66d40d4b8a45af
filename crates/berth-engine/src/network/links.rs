//! Legacy `--link`: the environment variables Docker gives the linking container, from the linked
//! container's address, exposed ports and environment.

use super::endpoints::LinkTarget;
use super::ports::ContainerPort;

/// Docker's link variables for one link, as `links.Link.ToEnv` writes them: `ALIAS_NAME`,
/// `ALIAS_PORT`, `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]` and `ALIAS_ENV_<var>`.
pub fn link_env(own_name: &str, link: &LinkTarget) -> Vec<String> {
    let alias: String = link
        .alias
        .chars()
        .map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() })
        .collect();
    let mut env = vec![format!("{alias}_NAME=/{own_name}/{}", link.alias)];
    let Some(ip) = link.ip else { return env };
    let mut ports: Vec<ContainerPort> = link.exposed.clone();
    ports.sort();
    if let Some(first) = ports.first() {
        env.push(format!("{alias}_PORT={}://{ip}:{}", first.proto.as_str(), first.port));
    }
    for p in &ports {
        let (proto, up) = (p.proto.as_str(), p.proto.as_str().to_ascii_uppercase());
        let prefix = format!("{alias}_PORT_{}_{up}", p.port);
        env.push(format!("{prefix}={proto}://{ip}:{}", p.port));
        env.push(format!("{prefix}_ADDR={ip}"));
        env.push(format!("{prefix}_PORT={}", p.port));
        env.push(format!("{prefix}_PROTO={proto}"));
    }
    for v in &link.env {
        if let Some((k, val)) = v.split_once('=') {
            if k != "HOME" && k != "PATH" {
                env.push(format!("{alias}_ENV_{k}={val}"));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Proto;

    #[test]
    fn env_as_docker() {
        let t = LinkTarget {
            name: "db".into(),
            alias: "my-db".into(),
            id: "0123456789abcdef".into(),
            ip: Some("172.17.0.3".parse().unwrap()),
            exposed: vec![
                ContainerPort {
                    port: 5432,
                    proto: Proto::Tcp,
                },
                ContainerPort {
                    port: 53,
                    proto: Proto::Udp,
                },
            ],
            env: vec!["PATH=/bin".into(), "PGDATA=/data".into()],
        };
        let e = link_env("web", &t);
        assert_eq!(e[0], "MY_DB_NAME=/web/my-db");
        assert!(e.contains(&"MY_DB_PORT=udp://172.17.0.3:53".to_string()), "{e:?}");
        assert!(e.contains(&"MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432".to_string()));
        assert!(e.contains(&"MY_DB_PORT_5432_TCP_ADDR=172.17.0.3".to_string()));
        assert!(e.contains(&"MY_DB_PORT_53_UDP_PROTO=udp".to_string()));
        assert!(e.contains(&"MY_DB_ENV_PGDATA=/data".to_string()));
        assert!(!e.iter().any(|v| v.starts_with("MY_DB_ENV_PATH")));
    }
}
