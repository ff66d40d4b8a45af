//! What `berth build` sends besides the context: `--secret`s (read here, sent in a header so they
//! are in no URL and no log line), `--ssh` agents (their sockets' paths: the daemon binds them
//! into the RUN containers, so it must run on this host) and every registry's credentials
//! (`X-Registry-Config`, as docker's CLI sends them).

use crate::StatusError;
use anyhow::Result;
use base64::Engine as _;
use std::collections::BTreeMap;

fn fail(msg: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, msg.to_string())
}

/// The most secret data one build sends (all secrets together).
const MAX_SECRETS: usize = 256 * 1024;

/// Reads `--secret` values: `id=ID,src=FILE` (`source=`), `id=ID,env=VAR` (`type=env|file`
/// choose when only `src`/`id` is given); with only an id, the variable of that name if it is
/// set, else the file of that name.
pub fn read_secrets(specs: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut total = 0;
    for spec in specs {
        let mut id = None;
        let mut src = None;
        let mut var = None;
        let mut typ = None;
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = field.split_once('=').unwrap_or((field, ""));
            match k.trim() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => var = Some(v.to_string()),
                "type" if v == "file" || v == "env" => typ = Some(v.to_string()),
                _ => {
                    return Err(fail(format!(
                        "invalid --secret {spec:?}: unknown field {field:?} (id=, src=, env=, type=file|env)"
                    ))
                    .into())
                }
            }
        }
        let id = match id.or_else(|| src.as_deref().and_then(|s| s.rsplit('/').next()).map(String::from)) {
            Some(id) if !id.is_empty() => id,
            _ => return Err(fail(format!("invalid --secret {spec:?}: an id is needed (id=NAME)")).into()),
        };
        let data = match (typ.as_deref(), src, var) {
            (Some("env"), src, None) => from_env(&id, src.as_deref().unwrap_or(&id), env)?,
            (_, None, Some(v)) => from_env(&id, &v, env)?,
            (_, Some(f), None) => from_file(&id, &f)?,
            (Some("file"), None, None) => from_file(&id, &id)?,
            (_, None, None) => match env(&id) {
                Some(v) => v.into_bytes(),
                None => from_file(&id, &id)?,
            },
            (_, Some(_), Some(_)) => {
                return Err(fail(format!("invalid --secret {spec:?}: give src= or env=, not both")).into())
            }
        };
        total += data.len();
        if total > MAX_SECRETS {
            return Err(fail(format!(
                "the build's secrets are larger than {} KiB together; pass a smaller file (secret {id})",
                MAX_SECRETS / 1024
            ))
            .into());
        }
        out.insert(id, data);
    }
    Ok(out)
}

fn from_env(id: &str, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>> {
    env(var)
        .map(String::into_bytes)
        .ok_or_else(|| fail(format!("secret {id}: the variable {var} is not set")).into())
}

fn from_file(id: &str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| fail(format!("secret {id}: reading {path}: {e}")).into())
}

/// The secrets header's value: base64url of a JSON object of id → base64 of the content.
pub fn secrets_header(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let map: BTreeMap<&str, String> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    let json = serde_json::to_vec(&map).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Reads `--ssh` values: `default` (the agent of `SSH_AUTH_SOCK`), `ID=SOCKET`; the sockets'
/// absolute paths by id.
pub fn ssh_sockets(specs: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, path) = match spec.split_once('=') {
            Some((id, path)) => (id.to_string(), path.to_string()),
            None => {
                let sock = env("SSH_AUTH_SOCK").filter(|s| !s.is_empty()).ok_or_else(|| {
                    fail(format!(
                        "--ssh {spec}: SSH_AUTH_SOCK is not set; start an agent or give {spec}=<socket>"
                    ))
                })?;
                (spec.clone(), sock)
            }
        };
        if path.contains(',') {
            return Err(fail(format!(
                "--ssh {spec}: berth forwards one agent socket per id (no key files)"
            ))
            .into());
        }
        let abs = std::path::absolute(&path).map_err(|e| fail(format!("--ssh {spec}: {path}: {e}")))?;
        out.insert(id, abs.display().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokenfile");
        std::fs::write(&file, "from-file").unwrap();
        let env = |k: &str| (k == "TOKEN" || k == "token").then(|| format!("var-{k}"));
        let specs = vec![
            format!("id=a,src={}", file.display()),
            "id=b,env=TOKEN".into(),
            "id=token".into(),
            format!("source={}", file.display()),
            "id=TOKEN,type=env".into(),
        ];
        let got = read_secrets(&specs, &env).unwrap();
        assert_eq!(got["a"], b"from-file");
        assert_eq!(got["b"], b"var-TOKEN");
        assert_eq!(got["token"], b"var-token", "only an id: the variable first");
        assert_eq!(got["TOKEN"], b"var-TOKEN");
        assert_eq!(got["tokenfile"], b"from-file", "src= alone is named by the file");
        assert_eq!(got.len(), 5);
        let back = secrets_header(&got);
        assert!(!back.contains('='));
        for bad in [
            "id=x,env=NOPE",
            "id=x,src=/nonexistent/f",
            "id=x,bogus=1",
            "src=",
            "id=x,src=a,env=B",
        ] {
            assert!(read_secrets(&[bad.to_string()], &env).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_agents_by_id() {
        let env = |k: &str| (k == "SSH_AUTH_SOCK").then(|| "/tmp/agent.sock".to_string());
        let got = ssh_sockets(&["default".into(), "work=/run/w.sock".into()], &env).unwrap();
        assert_eq!(got["default"], "/tmp/agent.sock");
        assert_eq!(got["work"], "/run/w.sock");
        assert!(ssh_sockets(&["default".into()], &|_| None).is_err());
        assert!(ssh_sockets(&["k=/a/id_rsa,/b/id_ed25519".into()], &env).is_err());
    }
}
