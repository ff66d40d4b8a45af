//! Registry commands: login, logout, push, search, manifest inspect. The daemon talks to the
//! registry; the CLI keeps the credentials (config.json, credential helpers) and sends them in
//! `X-Registry-Auth`, as the docker CLI does.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Result;
use berth_client::{AuthConfig, Client};
use berth_credentials::{config_key, DockerConfig, DOCKER_HUB_KEY};
use serde_json::{json, Value};

use crate::args::{LoginArgs, LogoutArgs, ManifestInspectArgs, PushArgs, SearchArgs};
use crate::credentials::{for_header, load_config, registry_of};
use crate::filters::parse_filters;
use crate::format::{ellipsis, json_indent, Format};
use crate::progress::{display_stream, Target};
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// Whether a credential helper, not the file, holds the secrets of `key`.
fn uses_helper(config: &DockerConfig, key: &str) -> bool {
    let raw = config.raw();
    let named = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    named(raw.get("credsStore"))
        || raw
            .get("credHelpers")
            .and_then(Value::as_object)
            .is_some_and(|h| h.iter().any(|(k, v)| config_key(k) == key && named(Some(v))))
}

/// Reads a line from stdin; `hide` turns the terminal's echo off while typing (passwords).
fn read_line(prompt: &str, hide: bool) -> Result<String, StatusError> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::os::fd::AsFd;
    crate::write_out(prompt);
    let stdin = std::io::stdin();
    let saved = if hide {
        termios::tcgetattr(stdin.as_fd()).ok()
    } else {
        None
    };
    if let Some(s) = &saved {
        let mut quiet = s.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if let Some(s) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, s);
        crate::write_out("\n");
    }
    res.map_err(|e| fail(format!("Error: reading from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `docker login [SERVER]`.
pub async fn login(client: &Client, a: LoginArgs) -> Result<i32> {
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if a.password_stdin {
            return Err(fail("--password and --password-stdin are mutually exclusive").into());
        }
    }
    let mut password = a.password.clone();
    if a.password_stdin {
        if a.username.as_deref().unwrap_or_default().is_empty() {
            return Err(fail("Must provide --username with --password-stdin").into());
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| fail(format!("Error: reading the password from stdin: {e}")))?;
        password = Some(s.trim_end_matches('\n').trim_end_matches('\r').to_string());
    }
    // docker treats `docker.io` as Docker Hub's index server too.
    let server = match a.server.clone() {
        Some(s) if !s.is_empty() && s != berth_credentials::DOCKER_HUB_DOMAIN => s,
        _ => DOCKER_HUB_KEY.to_string(),
    };
    let key = config_key(&server);
    let mut config = load_config()?;

    // Stored credentials first, as docker does when no user or password is given.
    if a.username.is_none() && password.is_none() {
        if let Ok(Some(stored)) = config.try_get(&key) {
            let mut msg = "Authenticating with existing credentials...".to_string();
            if !stored.username.is_empty() {
                msg.push_str(&format!(" [Username: {}]", stored.username));
            }
            eprintln!("{msg}");
            let mut auth = for_header(stored);
            auth.serveraddress = server.clone();
            match client.auth(&auth).await {
                Ok(resp) => {
                    finish_login(&mut config, &key, auth, resp)?;
                    return Ok(0);
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
        }
    }

    let interactive = a.username.is_none() || password.is_none();
    if interactive && !std::io::stdin().is_terminal() {
        return Err(fail("Error: Cannot perform an interactive login from a non TTY device").into());
    }
    let username = match a.username.clone() {
        Some(u) => u,
        None => {
            // docker offers the stored user name as the default.
            let default_user = config.get(&key).map(|c| c.username).filter(|u| !u.is_empty());
            match default_user {
                Some(d) => {
                    let typed = read_line(&format!("Username ({d}): "), false)?;
                    if typed.trim().is_empty() {
                        d
                    } else {
                        typed
                    }
                }
                None => read_line("Username: ", false)?,
            }
        }
    };
    let username = username.trim().to_string();
    if username.is_empty() {
        return Err(fail("Error: Non-null Username Required").into());
    }
    let password = match password {
        Some(p) => p,
        None => read_line("Password: ", true)?,
    };
    if password.is_empty() {
        return Err(fail("Error: Password Required").into());
    }
    let auth = AuthConfig {
        username,
        password,
        serveraddress: server,
        ..Default::default()
    };
    let resp = client.auth(&auth).await.map_err(fail)?;
    finish_login(&mut config, &key, auth, resp)?;
    Ok(0)
}

/// Stores what a successful `/auth` returned (the identity token when the registry issued one,
/// else the password) and prints docker's messages.
fn finish_login(
    config: &mut DockerConfig,
    key: &str,
    mut auth: AuthConfig,
    resp: berth_client::AuthResponse,
) -> Result<(), StatusError> {
    if !resp.identity_token.is_empty() {
        auth.password.clear();
        auth.identitytoken = resp.identity_token;
    }
    config
        .store(key, &auth)
        .map_err(|e| fail(format!("Error saving credentials: {e}")))?;
    if !uses_helper(config, key) {
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n",
            config.path().display()
        );
    }
    let status = if resp.status.is_empty() {
        "Login Succeeded"
    } else {
        resp.status.as_str()
    };
    outln!("{status}");
    Ok(())
}

/// `docker logout [SERVER]`: only the client's config changes.
pub fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| DOCKER_HUB_KEY.to_string());
    let key = config_key(&server);
    let mut config = load_config()?;
    // docker only checks non-default registries; Docker Hub always gets the removal message.
    if key != DOCKER_HUB_KEY && !matches!(config.try_get(&key), Ok(Some(_))) && !uses_helper(&config, &key) {
        outln!("Not logged in to {key}");
        return Ok(0);
    }
    outln!("Removing login credentials for {key}");
    if let Err(e) = config.erase(&key) {
        eprintln!("WARNING: could not erase credentials: {key}: {e}");
    }
    Ok(0)
}

/// `docker push [-a] [-q] NAME[:TAG]`.
pub async fn push(client: &Client, a: PushArgs) -> Result<i32> {
    let named = berth_types::Reference::parse_name_only(&a.image)
        .map_err(|_| fail(format!("invalid reference format: {}", a.image)))?;
    if named.digest().is_some() {
        return Err(fail("cannot push a digest reference").into());
    }
    if a.all_tags && named.tag().is_some() {
        return Err(fail("tag can't be used with --all-tags/-a").into());
    }
    let reference = if !a.all_tags && named.tag().is_none() {
        if !a.quiet {
            outln!("Using default tag: latest");
        }
        berth_types::Reference::parse(&a.image).map_err(fail)?
    } else {
        named
    };
    let mut auth = crate::credentials::auth_for(reference.domain());
    if auth.serveraddress.is_empty() && !auth.is_anonymous() {
        auth.serveraddress = config_key(reference.domain());
    }
    let tag = if a.all_tags { None } else { reference.tag() };
    let body = client
        .image_push(&reference.familiar_repository(), tag, &auth)
        .await
        .map_err(fail)?;
    let target = if a.quiet { Target::Discard } else { Target::Stdout };
    display_stream(body, target, |_| {}).await?;
    if a.quiet {
        outln!("{reference}");
    }
    Ok(0)
}

const SEARCH_HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];

/// The rows of `docker search` (its `searchContext`).
fn search_rows(items: &[berth_client::SearchItem], trunc: bool) -> Vec<Value> {
    let ok = |b: bool| if b { "[OK]" } else { "" };
    items
        .iter()
        .map(|i| {
            let desc = i.description.replace(['\n', '\r'], " ");
            json!({
                "Name": i.name,
                "Description": if trunc { ellipsis(&desc, 45) } else { desc },
                "StarCount": i.star_count.to_string(),
                "IsOfficial": ok(i.is_official),
                "IsAutomated": ok(i.is_automated),
            })
        })
        .collect()
}

/// `docker search TERM`.
pub async fn search(client: &Client, a: SearchArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let auth = crate::credentials::auth_for(&registry_of(&a.term));
    let items = client
        .image_search(&a.term, a.limit, &filters, &auth)
        .await
        .map_err(fail)?;
    let fmt = match a.format.as_deref() {
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ => "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}".to_string(),
    };
    let f = Format::parse(&fmt).map_err(fail)?;
    crate::write_out(
        &f.render_rows(&search_rows(&items, !a.no_trunc), SEARCH_HEADERS)
            .map_err(fail)?,
    );
    Ok(0)
}

/// `docker manifest inspect NAME`, answered by the daemon's `GET /distribution/{name}/json`.
pub async fn manifest_inspect(client: &Client, a: ManifestInspectArgs) -> Result<i32> {
    let [name] = a.names.as_slice() else {
        return Err(fail("a list and an image are inspected from the local store only").into());
    };
    let reference =
        berth_types::Reference::parse(name).map_err(|_| fail(format!("invalid reference format: {name}")))?;
    let auth = crate::credentials::auth_for(reference.domain());
    let v = client.distribution_inspect(name, &auth).await.map_err(fail)?;
    let shown = if a.verbose {
        json!({"Ref": reference.to_string(), "Descriptor": v["Descriptor"], "Platforms": v["Platforms"]})
    } else {
        v["Descriptor"].clone()
    };
    let mut out = json_indent(&shown.to_string(), "   ");
    out.push('\n');
    crate::write_out(&out);
    let _ = std::io::stdout().flush();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_table() {
        let items: Vec<berth_client::SearchItem> = serde_json::from_value(json!([
            {"name": "busybox", "description": "Busybox base image.", "star_count": 3300, "is_official": true},
            {"name": "someone/busybox", "description": "a very long description\nthat goes on and on and on and on", "star_count": 1}
        ]))
        .unwrap();
        let f = Format::parse("table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}").unwrap();
        let out = f.render_rows(&search_rows(&items, true), SEARCH_HEADERS).unwrap();
        assert_eq!(
            out,
            "NAME              DESCRIPTION                                     STARS     OFFICIAL\n\
             busybox           Busybox base image.                             3300      [OK]\n\
             someone/busybox   a very long description that goes on and on …   1         \n"
        );
    }
}
