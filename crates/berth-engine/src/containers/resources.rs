//! A running container's resources: pause/unpause (the cgroup freezer), stats, top, and update
//! (new limits written to the running cgroup and kept in the record).
//!
//! The engine reaches the container's cgroup directly (`berth_runtime::cgroups`, the path the run
//! plan gave the runtime: `<CgroupParent or /berth>/<id>`), as dockerd reaches it through runc: the
//! shim need not be involved, and this works the same for every runtime.

use super::{blocking, ContainerService};
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::registry::Container;
use crate::state::{Operation, Status, Transition};
use crate::stats::{self, Sample};
use berth_api::models::{HostConfig, Resources, RestartPolicy, RestartPolicyNameEnum};
use berth_runtime::cgroups;
use berth_types::time::now_rfc3339;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The body of `POST /containers/{id}/update`: resources, and the restart policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    /// New limits (zero or absent: unchanged).
    #[serde(flatten)]
    pub resources: Resources,
    /// A new restart policy.
    pub restart_policy: Option<RestartPolicy>,
}

/// What `GET /containers/{id}/top` answers.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResult {
    /// `ps`'s column titles.
    pub titles: Vec<String>,
    /// One row per process of the container.
    pub processes: Vec<Vec<String>>,
}

/// The cgroup path the run plan gives the runtime (see `berth_runtime::spec`).
pub(crate) fn cgroup_path(rec: &ContainerRecord) -> String {
    let parent = rec
        .host_config
        .cgroup_parent
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("/berth");
    format!("{}/{}", parent.trim_end_matches('/'), rec.id)
}

fn open_cgroup(path: &str) -> Result<Box<dyn cgroups::CgroupManager>> {
    Ok(cgroups::open(Path::new(cgroups::DEFAULT_ROOT), path)?)
}

/// Freezes or thaws a container's cgroup, off the executor.
async fn freeze(rec: &ContainerRecord, frozen: bool) -> Result<()> {
    let path = cgroup_path(rec);
    blocking(move || Ok(open_cgroup(&path)?.set_frozen(frozen)?)).await
}

/// Reads one sample of a container's cgroup and the host's counters.
async fn sample(rec: &ContainerRecord) -> Result<Sample> {
    let path = cgroup_path(rec);
    blocking(move || {
        let cgroup = open_cgroup(&path)?.stats()?;
        let (system_cpu_ns, online_cpus, host_memory) = stats::host_figures();
        Ok(Sample {
            read: now_rfc3339(),
            cgroup,
            system_cpu_ns,
            online_cpus,
            host_memory,
        })
    })
    .await
}

/// The rows of `ps` output whose PID is one of `pids`, split as dockerd splits them (the last
/// column keeps its spaces).
pub(crate) fn parse_ps(output: &str, pids: &[i32]) -> Result<TopResult> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() <= pid_col || fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields[..last].iter().map(|s| s.to_string()).collect();
        row.push(fields[last..].join(" "));
        processes.push(row);
    }
    Ok(TopResult { titles, processes })
}

/// The host's CPU count, for Docker's `--cpus` range check.
fn host_cpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1)
}

const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Checks an update against the container's current settings with dockerd's rules and messages;
/// returns the new host config and the resources to write into the running cgroup.
pub(crate) fn apply_update(hc: &HostConfig, u: &UpdateConfig, ncpu: i64) -> Result<(HostConfig, serde_json::Value)> {
    let bad = |m: &str| Err(EngineError::InvalidArgument(m.to_string()));
    let r = &u.resources;
    let mut new = hc.clone();
    let mut res = serde_json::Map::new();
    let memory = r.memory.unwrap_or(0);
    let swap = r.memory_swap.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB");
    }
    if swap < -1 {
        return bad("invalid value for memory swap: it must be -1 (unlimited) or at least the memory limit");
    }
    let cur_mem = hc.memory.unwrap_or(0);
    // What the runtime set for a container created with a memory limit and no swap (twice the limit).
    let cur_swap = match hc.memory_swap.unwrap_or(0) {
        0 if cur_mem > 0 => cur_mem.saturating_mul(2),
        s => s,
    };
    if memory != 0 && swap == 0 && cur_swap > 0 && memory > cur_swap {
        return bad(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
        );
    }
    let eff_mem = if memory != 0 { memory } else { cur_mem };
    if swap > 0 && (eff_mem == 0 || swap < eff_mem) {
        return bad("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if memory != 0 || swap != 0 {
        let mut m = serde_json::Map::new();
        if memory != 0 {
            new.memory = Some(memory);
        }
        m.insert("limit".into(), eff_mem.into());
        if swap != 0 {
            new.memory_swap = Some(swap);
            m.insert("swap".into(), swap.into());
        }
        if eff_mem > 0 {
            res.insert("memory".into(), m.into());
        }
    }
    let nano = r.nano_cpus.unwrap_or(0);
    let (quota, period) = (r.cpu_quota.unwrap_or(0), r.cpu_period.unwrap_or(0));
    if nano != 0 && period != 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if nano != 0 && quota != 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    if nano < 0 || nano > ncpu.saturating_mul(1_000_000_000) {
        return Err(EngineError::InvalidArgument(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if nano > 0 && (hc.cpu_period.unwrap_or(0) > 0 || hc.cpu_quota.unwrap_or(0) > 0) {
        return bad("Conflicting options: Nano CPUs cannot be updated as CPU Period or CPU Quota has already been set");
    }
    if (period != 0 || quota != 0) && hc.nano_cpus.unwrap_or(0) > 0 {
        return bad("Conflicting options: CPU Period or CPU Quota cannot be updated as NanoCPUs has already been set");
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
    }
    if quota > 0 && quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    let shares = r.cpu_shares.unwrap_or(0);
    if shares < 0 {
        return bad("invalid CPU shares: it must not be negative");
    }
    let mut cpu = serde_json::Map::new();
    if shares > 0 {
        new.cpu_shares = Some(shares);
        cpu.insert("shares".into(), shares.into());
    }
    if nano > 0 {
        new.nano_cpus = Some(nano);
        cpu.insert("period".into(), 100_000.into());
        cpu.insert("quota".into(), (nano.saturating_mul(100_000) / 1_000_000_000).into());
    }
    if period != 0 {
        new.cpu_period = Some(period);
        cpu.insert("period".into(), period.into());
    }
    if quota != 0 {
        new.cpu_quota = Some(quota);
        cpu.insert("quota".into(), quota.into());
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = r.pids_limit {
        if p > i64::from(i32::MAX) {
            return bad("invalid PIDs limit: it is beyond the kernel's range");
        }
        // 0 and -1 both mean unlimited (the API's "0 or -1 for unlimited").
        new.pids_limit = Some(if p <= 0 { 0 } else { p });
        res.insert("pids".into(), serde_json::json!({ "limit": p.max(0) }));
    }
    if let Some(p) = &u.restart_policy {
        let name = p.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let max = p.maximum_retry_count.unwrap_or(0);
        let restarts = !matches!(name, RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO);
        if restarts && hc.auto_remove.unwrap_or(false) {
            return bad("Restart policy cannot be updated because AutoRemove is enabled for the container");
        }
        if max < 0 {
            return bad("invalid restart policy: maximum retry count cannot be negative");
        }
        if max > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return bad("invalid restart policy: maximum retry count can only be used with 'on-failure'");
        }
        new.restart_policy = Some(p.clone());
    }
    Ok((new, serde_json::Value::Object(res)))
}

impl ContainerService {
    /// `POST /containers/{id}/pause`: freezes every process of the container.
    pub async fn pause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        rec.state.status.apply(Transition::Pause, &c.id, &rec.name)?;
        freeze(&rec, true)
            .await
            .map_err(|e| EngineError::Internal(format!("Cannot pause container {}: {e}", c.id)))?;
        c.transition(Transition::Pause, |_| {})?;
        c.save().await?;
        self.publish(&c, "pause", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        rec.state.status.apply(Transition::Unpause, &c.id, &rec.name)?;
        freeze(&rec, false)
            .await
            .map_err(|e| EngineError::Internal(format!("Cannot unpause container {}: {e}", c.id)))?;
        c.transition(Transition::Unpause, |_| {})?;
        c.save().await?;
        self.publish(&c, "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container so a signal that ends it is delivered (stop, `kill`, `rm -f`); the
    /// container counts as running again.
    pub(crate) async fn thaw_if_paused(&self, c: &Arc<Container>) {
        let rec = c.record();
        if rec.state.status != Status::Paused {
            return;
        }
        if let Err(e) = freeze(&rec, false).await {
            tracing::warn!("thawing container {}: {e}", berth_types::short_id(&c.id));
            return;
        }
        if c.transition(Transition::Unpause, |_| {}).is_ok() {
            c.save_later();
        }
    }

    /// `GET /containers/{id}/stats`: one object per second while `stream`, else one object (after a
    /// second, so `precpu_stats` is filled, unless `one_shot`). Ends when the container stops or the
    /// receiver is dropped.
    pub fn stats(
        self: &Arc<Self>,
        name: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<serde_json::Value>> {
        let c = self.lookup(name)?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut pre: Option<Sample> = None;
            loop {
                let rec = c.record();
                let cur = if matches!(rec.state.status, Status::Running | Status::Paused) {
                    sample(&rec).await.ok()
                } else {
                    None
                };
                if !stream && !one_shot && pre.is_none() && cur.is_some() {
                    pre = cur;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                let v = stats::to_json(&rec.name, &c.id, cur.as_ref(), pre.as_ref());
                if tx.send(v).await.is_err() || !stream || cur.is_none() {
                    return;
                }
                pre = cur;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(rx)
    }

    /// `GET /containers/{id}/top`: runs the host's `ps` and keeps the container's processes.
    pub async fn top(self: &Arc<Self>, name: &str, ps_args: Option<&str>) -> Result<TopResult> {
        let c = self.lookup(name)?;
        let rec = c.record();
        rec.state.status.check(Operation::Top, &c.id, &rec.name)?;
        let path = cgroup_path(&rec);
        let pids = blocking(move || Ok(open_cgroup(&path)?.pids()?)).await?;
        let args: Vec<String> = ps_args
            .filter(|a| !a.trim().is_empty())
            .unwrap_or("-ef")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("Error running ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `POST /containers/{id}/update`: validates, writes the new limits into the running cgroup,
    /// then keeps them in the record (durably). Refused limits change nothing. Returns warnings.
    pub async fn update(self: &Arc<Self>, name: &str, u: UpdateConfig) -> Result<Vec<String>> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        rec.state.status.check(Operation::Update, &c.id, &rec.name)?;
        let (new_hc, resources) = apply_update(&rec.host_config, &u, host_cpus())?;
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        let has_resources = resources.as_object().is_some_and(|m| !m.is_empty());
        if running && has_resources {
            let res: oci_spec::runtime::LinuxResources = serde_json::from_value(resources)
                .map_err(|e| EngineError::Internal(format!("encoding the new resources: {e}")))?;
            let path = cgroup_path(&rec);
            let id = c.id.clone();
            blocking(move || {
                open_cgroup(&path)?
                    .create(Some(&res))
                    .map_err(|e| EngineError::InvalidArgument(format!("Cannot update container {id}: {e}")))
            })
            .await?;
        }
        c.modify(|r| r.host_config = new_hc);
        c.save().await?;
        self.publish(&c, "update", &[]);
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container_only() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 08:00 ?        00:00:01 /sbin/init\n\
                   root         420     400  0 08:01 ?        00:00:00 sleep 1000 --flag\n";
        let t = parse_ps(out, &[420]).unwrap();
        assert_eq!(t.titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(
            t.processes,
            vec![vec![
                "root",
                "420",
                "400",
                "0",
                "08:01",
                "?",
                "00:00:00",
                "sleep 1000 --flag"
            ]]
        );
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    fn upd(v: serde_json::Value) -> UpdateConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn updates_follow_dockers_rules() {
        let hc = HostConfig::default();
        let (new, res) = apply_update(&hc, &upd(serde_json::json!({"Memory": 67108864, "PidsLimit": 20})), 2).unwrap();
        assert_eq!(new.memory, Some(67108864));
        assert_eq!(new.pids_limit, Some(20));
        assert_eq!(res["memory"]["limit"], 67108864);
        assert_eq!(res["pids"]["limit"], 20);
        let (new, res) = apply_update(&hc, &upd(serde_json::json!({"NanoCpus": 500000000})), 2).unwrap();
        assert_eq!(new.nano_cpus, Some(500000000));
        assert_eq!(res["cpu"]["quota"], 50000);
        let err = |v: serde_json::Value, hc: &HostConfig| apply_update(hc, &upd(v), 2).unwrap_err().to_string();
        assert_eq!(
            err(serde_json::json!({"Memory": 1024}), &hc),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(serde_json::json!({"NanoCpus": 3_000_000_000i64}), &hc),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            err(serde_json::json!({"Memory": 67108864, "MemorySwap": 1000000}), &hc),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert!(err(serde_json::json!({"CpuPeriod": 10}), &hc).starts_with("CPU cfs period"));
        let limited = HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        };
        assert!(err(serde_json::json!({"Memory": 256 << 20}), &limited).starts_with("Memory limit should be smaller"));
        let rm = HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        };
        assert_eq!(
            err(serde_json::json!({"RestartPolicy": {"Name": "always"}}), &rm),
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        );
        let (new, res) = apply_update(
            &hc,
            &upd(serde_json::json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})),
            2,
        )
        .unwrap();
        assert_eq!(new.restart_policy.unwrap().maximum_retry_count, Some(3));
        assert_eq!(res, serde_json::json!({}));
    }
}
