//! A project's stack on an engine: the networks, volumes and containers that carry its labels, and
//! the operations that converge them on the model (`up`), take them away (`down`) or act on them
//! (`start`, `stop`, `kill`, …). Everything goes through the Engine API, so berthd and dockerd
//! serve it alike; what happens is told to a [`Reporter`], which the CLI draws.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use berth_client::{Client, Filters};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::convert::{self, ContainerContext, ConvertError};
use crate::labels;
use crate::model::{Model, Service};

/// What failed while acting on a stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The engine refused or failed a request.
    #[error("{action}: {source}")]
    Engine {
        /// What was being done (`creating network shop_default`).
        action: String,
        /// The engine's answer.
        #[source]
        source: berth_client::Error,
    },
    /// A service could not be turned into a container.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A dependency did not reach the condition a service waits for.
    #[error("dependency failed to start: {0}")]
    Dependency(String),
    /// Something the project needs is not there (an external network, a service).
    #[error("{0}")]
    Missing(String),
    /// A service or resource that cannot be expressed to the Engine API, or an answer that could
    /// not be read.
    #[error("{0}")]
    Invalid(String),
    /// `depends_on` goes round in a circle.
    #[error("dependency cycle detected: {0}")]
    Cycle(String),
}

impl StackError {
    fn engine(action: impl Into<String>) -> impl FnOnce(berth_client::Error) -> StackError {
        let action = action.into();
        move |source| StackError::Engine { action, source }
    }
}

type Result<T, E = StackError> = std::result::Result<T, E>;

/// The kind of object an [`Event`] is about, as Compose's progress names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// A container.
    Container,
    /// An image (pull, build).
    Image,
}

impl Kind {
    /// The word Compose prints.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Network => "Network",
            Kind::Volume => "Volume",
            Kind::Container => "Container",
            Kind::Image => "Image",
        }
    }
}

/// One step on one object: `Container shop-web-1 Started`.
#[derive(Debug, Clone)]
pub struct Event {
    /// What kind of object.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Compose's word for the step (`Creating`, `Created`, `Started`, `Healthy`, `Removed`, …).
    pub status: String,
    /// Whether the step is a finished one (drawn with a tick) or under way.
    pub done: bool,
}

/// Where a stack tells what it does.
pub trait Reporter: Send + Sync {
    /// One step happened.
    fn event(&self, e: Event);
    /// A warning for the user.
    fn warn(&self, message: &str);
}

/// A container of the project as the engine lists it.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its ID.
    pub id: String,
    /// Its name (without the leading slash).
    pub name: String,
    /// The service label.
    pub service: String,
    /// The container-number label.
    pub number: u32,
    /// The config-hash label.
    pub hash: String,
    /// The image label (the image ID it was made from).
    pub image: String,
    /// `running`, `exited`, …
    pub state: String,
    /// The raw list entry, for `ps`.
    pub summary: Value,
}

impl Container {
    fn from_summary(v: &Value) -> Self {
        let label = |k: &str| v["Labels"][k].as_str().unwrap_or_default().to_string();
        let name = v["Names"][0]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        Container {
            id: v["Id"].as_str().unwrap_or_default().to_string(),
            name,
            service: label(labels::SERVICE),
            number: label(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
            hash: label(labels::CONFIG_HASH),
            image: label(labels::IMAGE),
            state: v["State"].as_str().unwrap_or_default().to_string(),
            summary: v.clone(),
        }
    }

    /// Whether it runs (or is paused or restarting).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }
}

/// Options of `up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Only these services (and their dependencies unless `no_deps`); all when empty.
    pub services: Vec<String>,
    /// Do not bring up dependencies of the named services.
    pub no_deps: bool,
    /// Recreate containers even when their configuration did not change.
    pub force_recreate: bool,
    /// Never recreate existing containers.
    pub no_recreate: bool,
    /// Create without starting.
    pub no_start: bool,
    /// Remove containers of services the model no longer has.
    pub remove_orphans: bool,
    /// `--scale service=N`.
    pub scale: BTreeMap<String, u32>,
    /// Wait for running services to be healthy (or running, without a health check).
    pub wait: bool,
    /// How long `--wait` waits.
    pub wait_timeout: Option<Duration>,
    /// Stop timeout for recreated containers.
    pub timeout: Option<i64>,
}

/// Options of `down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Also remove named volumes of the project and anonymous volumes of its containers.
    pub volumes: bool,
    /// Remove containers of services the model no longer has.
    pub remove_orphans: bool,
    /// `--rmi local|all`: remove images built for services, or all the services' images.
    pub rmi: Option<String>,
    /// Stop timeout.
    pub timeout: Option<i64>,
}

/// A project on an engine.
pub struct Stack<'a> {
    /// The engine.
    pub client: &'a Client,
    /// The model.
    pub model: &'a Model,
    /// The project directory (a label on containers).
    pub working_dir: String,
    /// The compose files, comma-separated (a label on containers).
    pub config_files: String,
    /// The interpolation environment (for secrets from `environment:`).
    pub environment: BTreeMap<String, String>,
    /// Where steps are told.
    pub reporter: &'a dyn Reporter,
}

fn report(r: &dyn Reporter, kind: Kind, name: &str, status: &str, done: bool) {
    r.event(Event {
        kind,
        name: name.to_string(),
        status: status.to_string(),
        done,
    });
}

impl<'a> Stack<'a> {
    /// The project's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    fn project_filter(&self) -> Filters {
        let mut f = Filters::new();
        f.insert("label".into(), vec![format!("{}={}", labels::PROJECT, self.name())]);
        f
    }

    /// The project's containers: with `oneoff`, only `run` containers, else only service ones.
    pub async fn containers(&self, all: bool, oneoff: bool) -> Result<Vec<Container>> {
        let mut f = self.project_filter();
        if let Some(l) = f.get_mut("label") {
            l.push(format!("{}={}", labels::ONEOFF, if oneoff { "True" } else { "False" }));
        }
        let list = self
            .client
            .container_list(all, None, false, &f)
            .await
            .map_err(StackError::engine("listing the project's containers"))?;
        let mut out: Vec<Container> = list.iter().map(Container::from_summary).collect();
        out.sort_by(|a, b| a.service.cmp(&b.service).then(a.number.cmp(&b.number)));
        Ok(out)
    }

    /// The services named, with their dependencies (unless `no_deps`), in dependency order
    /// (dependencies first); every service when none is named.
    pub fn services_in_order(&self, named: &[String], no_deps: bool) -> Result<Vec<String>> {
        for n in named {
            if !self.model.services.contains_key(n) {
                return Err(StackError::Missing(format!("no such service: {n}")));
            }
        }
        let mut wanted: BTreeSet<String> = if named.is_empty() {
            self.model.services.keys().cloned().collect()
        } else {
            named.iter().cloned().collect()
        };
        if !no_deps {
            let mut stack: Vec<String> = wanted.iter().cloned().collect();
            while let Some(s) = stack.pop() {
                if let Some(svc) = self.model.services.get(&s) {
                    for d in svc.depends_on.keys() {
                        if self.model.services.contains_key(d) && wanted.insert(d.clone()) {
                            stack.push(d.clone());
                        }
                    }
                }
            }
        }
        topo_order(self.model, &wanted)
    }

    /// Dependency levels: each level's services depend only on earlier levels.
    fn levels(&self, order: &[String]) -> Vec<Vec<String>> {
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out: Vec<Vec<String>> = Vec::new();
        for s in order {
            let l = self.model.services[s]
                .depends_on
                .keys()
                .filter_map(|d| level.get(d.as_str()).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            level.insert(s, l);
            if out.len() <= l {
                out.resize(l + 1, Vec::new());
            }
            out[l].push(s.clone());
        }
        out
    }

    /// Creates the project's networks and volumes that are missing; external ones must exist.
    pub async fn ensure_resources(&self, services: &[String]) -> Result<()> {
        let mut nets: BTreeSet<String> = BTreeSet::new();
        let mut vols: BTreeSet<String> = BTreeSet::new();
        for s in services {
            let svc = &self.model.services[s];
            nets.extend(svc.network_keys());
            for v in &svc.volumes {
                if let (true, Some(src)) = (v.kind == "volume", &v.source) {
                    vols.insert(src.clone());
                }
            }
        }
        for key in nets {
            self.ensure_network(&key).await?;
        }
        for key in vols {
            self.ensure_volume(&key).await?;
        }
        Ok(())
    }

    async fn ensure_network(&self, key: &str) -> Result<()> {
        let def = self.model.networks.get(key).cloned().flatten().unwrap_or_default();
        let name = convert::network_name(self.model, key);
        match self.client.network_inspect(&name).await {
            Ok(existing) => {
                let owner = existing["Labels"][labels::PROJECT].as_str().unwrap_or_default();
                if def.external != Some(true) && !owner.is_empty() && owner != self.name() {
                    self.reporter.warn(&format!(
                        "a network with name {name} exists but was not created for project \"{}\".\nSet `external: true` to use an existing network",
                        self.name()
                    ));
                }
                return Ok(());
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(StackError::engine(format!("inspecting network {name}"))(e)),
        }
        if def.external == Some(true) {
            return Err(StackError::Missing(format!(
                "network {name} declared as external, but could not be found"
            )));
        }
        report(self.reporter, Kind::Network, &name, "Creating", false);
        let mut labels_map = def.labels.clone();
        labels_map.insert(labels::PROJECT.into(), self.name().into());
        labels_map.insert(labels::NETWORK.into(), key.into());
        labels_map.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        let ipam = def.ipam.as_ref().map(|i| {
            json!({
                "Driver": i.driver.clone().unwrap_or_else(|| "default".into()),
                "Config": i.config.iter().map(|p| {
                    let mut c = serde_json::Map::new();
                    if let Some(s) = &p.subnet { c.insert("Subnet".into(), json!(s)); }
                    if let Some(s) = &p.ip_range { c.insert("IPRange".into(), json!(s)); }
                    if let Some(s) = &p.gateway { c.insert("Gateway".into(), json!(s)); }
                    if !p.aux_addresses.is_empty() { c.insert("AuxiliaryAddresses".into(), json!(p.aux_addresses)); }
                    Value::Object(c)
                }).collect::<Vec<_>>(),
                "Options": i.options,
            })
        });
        let mut req = json!({
            "Name": name,
            "Driver": def.driver.clone().unwrap_or_else(|| "bridge".into()),
            "Internal": def.internal,
            "Attachable": def.attachable,
            "Labels": labels_map,
            "Options": def.driver_opts.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
        });
        if let (Some(o), Some(ipam)) = (req.as_object_mut(), ipam) {
            o.insert("IPAM".into(), ipam);
        }
        if let (Some(o), Some(v6)) = (req.as_object_mut(), def.enable_ipv6) {
            o.insert("EnableIPv6".into(), json!(v6));
        }
        let req = serde_json::from_value(req).map_err(|e| {
            StackError::Invalid(format!(
                "network {key}: the definition does not fit the Engine API: {e}"
            ))
        })?;
        match self.client.network_create(&req).await {
            Ok(_) => {}
            // Another `up` made it meanwhile.
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(StackError::engine(format!("creating network {name}"))(e)),
        }
        report(self.reporter, Kind::Network, &name, "Created", true);
        Ok(())
    }

    async fn ensure_volume(&self, key: &str) -> Result<()> {
        let def = self.model.volumes.get(key).cloned().flatten().unwrap_or_default();
        let name = convert::volume_name(self.model, key);
        match self.client.volume_inspect(&name).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(StackError::engine(format!("inspecting volume {name}"))(e)),
        }
        if def.external == Some(true) {
            return Err(StackError::Missing(format!("external volume \"{name}\" not found")));
        }
        report(self.reporter, Kind::Volume, &name, "Creating", false);
        let mut labels_map = def.labels.clone();
        labels_map.insert(labels::PROJECT.into(), self.name().into());
        labels_map.insert(labels::VOLUME.into(), key.into());
        labels_map.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        let req = json!({
            "Name": name,
            "Driver": def.driver.clone().unwrap_or_else(|| "local".into()),
            "DriverOpts": def.driver_opts.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "Labels": labels_map,
        });
        let req = serde_json::from_value(req).map_err(|e| {
            StackError::Invalid(format!("volume {key}: the definition does not fit the Engine API: {e}"))
        })?;
        self.client
            .volume_create(&req)
            .await
            .map_err(StackError::engine(format!("creating volume {name}")))?;
        report(self.reporter, Kind::Volume, &name, "Created", true);
        Ok(())
    }

    /// The ID of an image on the engine.
    async fn image_id(&self, image: &str) -> Result<String> {
        let raw = self
            .client
            .image_inspect_raw(image)
            .await
            .map_err(StackError::engine(format!("inspecting image {image}")))?;
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|e| StackError::Invalid(format!("image {image}: unreadable inspect answer: {e}")))?;
        Ok(v["Id"].as_str().unwrap_or_default().to_string())
    }

    /// Services whose image is not on the engine: (service, image, whether it has a build).
    pub async fn missing_images(&self, services: &[String]) -> Result<Vec<(String, String, bool)>> {
        let mut out = Vec::new();
        for s in services {
            let svc = &self.model.services[s];
            let image = convert::image_name(self.name(), s, svc);
            match self.client.image_inspect_raw(&image).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => out.push((s.clone(), image, svc.build.is_some())),
                Err(e) => return Err(StackError::engine(format!("inspecting image {image}"))(e)),
            }
        }
        Ok(out)
    }

    /// `up`: converges the services on the model, level by level of `depends_on`, the services of
    /// one level side by side; a service waits for its dependencies' conditions before it starts.
    pub async fn up(&self, o: &UpOptions) -> Result<()> {
        let order = self.services_in_order(&o.services, o.no_deps)?;
        self.ensure_resources(&order).await?;
        let existing = self.containers(true, false).await?;
        self.handle_orphans(&existing, o.remove_orphans, o.timeout).await?;
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        let mut recreated: BTreeSet<String> = BTreeSet::new();
        for level in self.levels(&order) {
            let results = join_all(level.iter().map(|s| {
                let mine: Vec<Container> = existing.iter().filter(|c| &c.service == s).cloned().collect();
                let (ids, recreated) = (&ids, &recreated);
                async move {
                    let r = self.converge_service(s, mine, o, ids).await;
                    // `depends_on: {x: {restart: true}}`: a dependency made anew restarts this
                    // service's containers that were kept.
                    let restart = match &r {
                        Ok((_, false)) => self.model.services[s]
                            .depends_on
                            .iter()
                            .any(|(d, dep)| dep.restart && recreated.contains(d)),
                        _ => false,
                    };
                    if restart && !o.no_start {
                        if let Err(e) = self
                            .each(std::slice::from_ref(s), Action::Restart { timeout: o.timeout })
                            .await
                        {
                            return (s.clone(), Err(e));
                        }
                    }
                    (s.clone(), r)
                }
            }))
            .await;
            for (s, r) in results {
                let (first, made) = r?;
                if made {
                    recreated.insert(s.clone());
                }
                if let Some(id) = first {
                    ids.insert(s, id);
                }
            }
        }
        if o.wait && !o.no_start {
            self.wait_healthy(&order, o.wait_timeout).await?;
        }
        Ok(())
    }

    /// Compose's warning about containers of services the model no longer has.
    fn warn_orphans<'c>(&self, orphans: impl Iterator<Item = &'c Container>) {
        let names: Vec<&str> = orphans.map(|c| c.name.as_str()).collect();
        self.reporter.warn(&format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
    }

    async fn handle_orphans(&self, existing: &[Container], remove: bool, timeout: Option<i64>) -> Result<()> {
        let orphans: Vec<&Container> = existing
            .iter()
            .filter(|c| !self.model.services.contains_key(&c.service))
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        if !remove {
            self.warn_orphans(orphans.iter().copied());
            return Ok(());
        }
        join_all(orphans.into_iter().map(|c| self.remove_container(c, timeout, false)))
            .await
            .into_iter()
            .collect()
    }

    /// Brings one service to its desired containers; answers the first container's ID and whether
    /// any container was made anew.
    async fn converge_service(
        &self,
        name: &str,
        mut existing: Vec<Container>,
        o: &UpOptions,
        ids: &BTreeMap<String, String>,
    ) -> Result<(Option<String>, bool)> {
        let svc = &self.model.services[name];
        self.wait_dependencies(name, svc).await?;
        let want = o.scale.get(name).copied().unwrap_or_else(|| svc.replicas());
        let hash = convert::config_hash(svc);
        let image_id = self.image_id(&convert::image_name(self.name(), name, svc)).await?;
        existing.sort_by_key(|c| c.number);
        // Scale down: the highest numbers go.
        while existing.len() > want as usize {
            if let Some(c) = existing.pop() {
                self.remove_container(&c, o.timeout, false).await?;
            }
        }
        let mut first = None;
        let mut made = false;
        let mut used: BTreeSet<u32> = existing.iter().map(|c| c.number).collect();
        for c in &existing {
            // As Compose: a changed configuration, or an image that moved under its tag.
            let changed = c.hash != hash || (!c.image.is_empty() && c.image != image_id);
            let stale = o.force_recreate || (!o.no_recreate && changed);
            let id = if stale {
                made = true;
                self.recreate(name, svc, c, &hash, ids, o.timeout).await?
            } else {
                if !o.no_start && !c.is_running() {
                    self.start_container(&c.name, &c.id).await?;
                } else if !o.no_start {
                    report(self.reporter, Kind::Container, &c.name, "Running", true);
                }
                c.id.clone()
            };
            first.get_or_insert(id);
        }
        let mut n = 1;
        for _ in existing.len()..want as usize {
            while used.contains(&n) {
                n += 1;
            }
            used.insert(n);
            let (id, cname) = self.create_container(name, svc, n, &hash, ids, false, None).await?;
            made = true;
            if !o.no_start {
                self.start_container(&cname, &id).await?;
            }
            first.get_or_insert(id);
        }
        Ok((first, made))
    }

    async fn wait_dependencies(&self, name: &str, svc: &Service) -> Result<()> {
        for (dep, d) in &svc.depends_on {
            if !self.model.services.contains_key(dep) {
                if d.required {
                    return Err(StackError::Missing(format!(
                        "service {name} depends on undefined service {dep}"
                    )));
                }
                continue;
            }
            if d.condition == "service_started" {
                continue;
            }
            let containers: Vec<Container> = self
                .containers(true, false)
                .await?
                .into_iter()
                .filter(|c| &c.service == dep)
                .collect();
            for c in containers {
                let r = match d.condition.as_str() {
                    "service_healthy" => self.wait_container_healthy(&c, None).await,
                    "service_completed_successfully" => self.wait_container_exit_zero(dep, &c).await,
                    _ => Ok(()),
                };
                match r {
                    Err(e) if !d.required => self.reporter.warn(&e.to_string()),
                    other => other?,
                }
            }
        }
        Ok(())
    }

    async fn wait_container_healthy(&self, c: &Container, deadline: Option<Instant>) -> Result<()> {
        report(self.reporter, Kind::Container, &c.name, "Waiting", false);
        let mut delay = Duration::from_millis(20);
        loop {
            let v = self
                .client
                .container_inspect(&c.id)
                .await
                .map_err(StackError::engine(format!("inspecting container {}", c.name)))?;
            let health = &v["State"]["Health"]["Status"];
            match health.as_str() {
                Some("healthy") => {
                    report(self.reporter, Kind::Container, &c.name, "Healthy", true);
                    return Ok(());
                }
                Some("unhealthy") => {
                    return Err(StackError::Dependency(format!("container {} is unhealthy", c.name)));
                }
                Some(_) => {}
                None => {
                    return Err(StackError::Dependency(format!(
                        "container {} has no healthcheck configured",
                        c.name
                    )))
                }
            }
            if v["State"]["Running"] != json!(true) && v["State"]["Restarting"] != json!(true) {
                return Err(StackError::Dependency(format!(
                    "container {} exited ({})",
                    c.name, v["State"]["ExitCode"]
                )));
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(StackError::Dependency(format!(
                    "timeout waiting for container {} to be healthy",
                    c.name
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    async fn wait_container_exit_zero(&self, service: &str, c: &Container) -> Result<()> {
        report(self.reporter, Kind::Container, &c.name, "Waiting", false);
        let resp = self
            .client
            .container_wait(&c.id, "not-running")
            .await
            .map_err(StackError::engine(format!("waiting for container {}", c.name)))?;
        let (code, _) = Client::wait_result(resp)
            .await
            .map_err(StackError::engine(format!("waiting for container {}", c.name)))?;
        if code != 0 {
            return Err(StackError::Dependency(format!(
                "service \"{service}\" didn't complete successfully: exit {code}"
            )));
        }
        report(self.reporter, Kind::Container, &c.name, "Exited", true);
        Ok(())
    }

    /// `--wait`: every running container of `services` healthy (or just running, without a check).
    async fn wait_healthy(&self, services: &[String], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let containers: Vec<Container> = self
            .containers(true, false)
            .await?
            .into_iter()
            .filter(|c| services.contains(&c.service))
            .collect();
        let waits = containers.iter().map(|c| async move {
            let v = self
                .client
                .container_inspect(&c.id)
                .await
                .map_err(StackError::engine(format!("inspecting container {}", c.name)))?;
            if v["State"]["Health"].is_object() {
                self.wait_container_healthy(c, deadline).await
            } else if v["State"]["Running"] == json!(true) {
                report(self.reporter, Kind::Container, &c.name, "Healthy", true);
                Ok(())
            } else {
                Err(StackError::Dependency(format!(
                    "container {} exited ({})",
                    c.name, v["State"]["ExitCode"]
                )))
            }
        });
        join_all(waits).await.into_iter().collect()
    }

    /// Creates one container of a service (numbered `number`); one-off containers take `name`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_container(
        &self,
        service_name: &str,
        svc: &Service,
        number: u32,
        hash: &str,
        ids: &BTreeMap<String, String>,
        oneoff: bool,
        name: Option<String>,
    ) -> Result<(String, String)> {
        let cname = name.unwrap_or_else(|| convert::container_name(self.name(), service_name, svc, number));
        let image = convert::image_name(self.name(), service_name, svc);
        let mut shared = ids.clone();
        // `network_mode: service:X` and `volumes_from: X` need X's container even when X is not
        // part of this `up`.
        let refs: Vec<String> = svc
            .network_mode
            .iter()
            .filter_map(|m| m.strip_prefix("service:").map(str::to_string))
            .chain(
                svc.volumes_from
                    .iter()
                    .map(|v| v.split(':').next().unwrap_or_default().to_string()),
            )
            .collect();
        for r in refs {
            if !shared.contains_key(&r) && self.model.services.contains_key(&r) {
                if let Some(c) = self.containers(true, false).await?.into_iter().find(|c| c.service == r) {
                    shared.insert(r, c.id);
                }
            }
        }
        let image_id = self.image_id(&image).await?;
        let ctx = ContainerContext {
            project: self.name(),
            working_dir: &self.working_dir,
            config_files: &self.config_files,
            number,
            oneoff,
            name: &cname,
            config_hash: hash,
            image: &image,
            image_id: &image_id,
            service_containers: &shared,
        };
        let (body, later) = convert::create_body(self.model, service_name, svc, &ctx)?;
        report(self.reporter, Kind::Container, &cname, "Creating", false);
        let body: berth_api::ContainerCreateBody = serde_json::from_value(body).map_err(|e| {
            StackError::Invalid(format!(
                "service {service_name}: the container does not fit the Engine API: {e}"
            ))
        })?;
        let created = self
            .client
            .container_create(Some(&cname), svc.platform.as_deref(), &body)
            .await
            .map_err(StackError::engine(format!("creating container {cname}")))?;
        let id = created.id;
        for (net, endpoint) in later {
            let req = json!({"Container": id, "EndpointConfig": endpoint});
            let req = serde_json::from_value(req)
                .map_err(|e| StackError::Invalid(format!("service {service_name}: network {net}: {e}")))?;
            self.client
                .network_connect(&net, &req)
                .await
                .map_err(StackError::engine(format!(
                    "connecting container {cname} to network {net}"
                )))?;
        }
        self.copy_inline_files(&id, svc).await?;
        report(self.reporter, Kind::Container, &cname, "Created", true);
        Ok((id, cname))
    }

    async fn copy_inline_files(&self, id: &str, svc: &Service) -> Result<()> {
        for (path, content, mode) in convert::inline_files(self.model, svc, &self.environment) {
            let (dir, file) = match path.rsplit_once('/') {
                Some(("", f)) => ("/".to_string(), f.to_string()),
                Some((d, f)) => (d.to_string(), f.to_string()),
                None => ("/".to_string(), path.clone()),
            };
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(mode);
            h.set_mtime(0);
            let tar = b
                .append_data(&mut h, &file, content.as_slice())
                .and_then(|_| b.into_inner())
                .map_err(|e| StackError::Invalid(format!("packing {path}: {e}")))?;
            // The directory may not exist in the image: make it with an archive of its own.
            let mut d = tar::Builder::new(Vec::new());
            let mut dh = tar::Header::new_gnu();
            dh.set_entry_type(tar::EntryType::Directory);
            dh.set_mode(0o755);
            dh.set_size(0);
            dh.set_mtime(0);
            let dir_rel = dir.trim_start_matches('/');
            if !dir_rel.is_empty() {
                let dtar = d
                    .append_data(&mut dh, format!("{dir_rel}/"), std::io::empty())
                    .and_then(|_| d.into_inner())
                    .map_err(|e| StackError::Invalid(format!("packing {dir}: {e}")))?;
                self.client
                    .copy_to_container(id, "/", berth_client::body::full(dtar), false, false)
                    .await
                    .map_err(StackError::engine(format!("creating {dir} in the container")))?;
            }
            self.client
                .copy_to_container(id, &dir, berth_client::body::full(tar), false, false)
                .await
                .map_err(StackError::engine(format!("copying {path} into the container")))?;
        }
        Ok(())
    }

    async fn recreate(
        &self,
        name: &str,
        svc: &Service,
        old: &Container,
        hash: &str,
        ids: &BTreeMap<String, String>,
        timeout: Option<i64>,
    ) -> Result<String> {
        report(self.reporter, Kind::Container, &old.name, "Recreate", false);
        if old.is_running() {
            self.client
                .container_stop(&old.id, timeout, None)
                .await
                .map_err(StackError::engine(format!("stopping container {}", old.name)))?;
        }
        let short = old.id.get(..12).unwrap_or(&old.id);
        let tmp = format!("{short}_{}", old.name);
        self.client
            .container_rename(&old.id, &tmp)
            .await
            .map_err(StackError::engine(format!("renaming container {}", old.name)))?;
        let (id, cname) = self
            .create_container(name, svc, old.number, hash, ids, false, Some(old.name.clone()))
            .await?;
        self.client
            .container_remove(&old.id, true, false)
            .await
            .map_err(StackError::engine(format!("removing container {}", old.name)))?;
        report(self.reporter, Kind::Container, &cname, "Recreated", true);
        self.start_container(&cname, &id).await?;
        Ok(id)
    }

    /// Starts one container, telling it.
    pub async fn start_container(&self, name: &str, id: &str) -> Result<()> {
        report(self.reporter, Kind::Container, name, "Starting", false);
        self.client
            .container_start(id)
            .await
            .map_err(StackError::engine(format!("starting container {name}")))?;
        report(self.reporter, Kind::Container, name, "Started", true);
        Ok(())
    }

    async fn remove_container(&self, c: &Container, timeout: Option<i64>, volumes: bool) -> Result<()> {
        if c.is_running() {
            report(self.reporter, Kind::Container, &c.name, "Stopping", false);
            match self.client.container_stop(&c.id, timeout, None).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(StackError::engine(format!("stopping container {}", c.name))(e)),
            }
            report(self.reporter, Kind::Container, &c.name, "Stopped", true);
        }
        report(self.reporter, Kind::Container, &c.name, "Removing", false);
        match self.client.container_remove(&c.id, true, volumes).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(StackError::engine(format!("removing container {}", c.name))(e)),
        }
        report(self.reporter, Kind::Container, &c.name, "Removed", true);
        Ok(())
    }

    /// `down`: stops and removes the containers (dependents first), then the networks, and with
    /// the options the volumes and images.
    pub async fn down(&self, o: &DownOptions) -> Result<()> {
        let mut containers = self.containers(true, false).await?;
        containers.extend(self.containers(true, true).await?);
        let known: Vec<Container>;
        let orphans: Vec<Container>;
        (known, orphans) = containers
            .into_iter()
            .partition(|c| self.model.services.contains_key(&c.service));
        // Taken down by name without its files: every container of the project goes.
        let by_name = self.model.services.is_empty();
        let remove_orphans = o.remove_orphans || by_name;
        if !orphans.is_empty() && !remove_orphans {
            self.warn_orphans(orphans.iter());
        }
        let order = topo_order(self.model, &self.model.services.keys().cloned().collect())?;
        let levels = self.levels(&order);
        if remove_orphans {
            join_all(orphans.iter().map(|c| self.remove_container(c, o.timeout, o.volumes)))
                .await
                .into_iter()
                .collect::<Result<()>>()?;
        }
        for level in levels.iter().rev() {
            join_all(
                known
                    .iter()
                    .filter(|c| level.contains(&c.service))
                    .map(|c| self.remove_container(c, o.timeout, o.volumes)),
            )
            .await
            .into_iter()
            .collect::<Result<()>>()?;
        }
        // Networks the project made (never external ones).
        let f = self.project_filter();
        let nets = self
            .client
            .network_list(&f)
            .await
            .map_err(StackError::engine("listing the project's networks"))?;
        let net_names: Vec<String> = if by_name {
            nets.iter()
                .filter_map(|n| n["Name"].as_str().map(String::from))
                .collect()
        } else {
            self.model
                .networks
                .iter()
                .filter(|(_, def)| def.as_ref().and_then(|d| d.external) != Some(true))
                .map(|(key, _)| convert::network_name(self.model, key))
                .filter(|name| nets.iter().any(|n| n["Name"] == json!(name)))
                .collect()
        };
        for name in net_names {
            report(self.reporter, Kind::Network, &name, "Removing", false);
            match self.client.network_remove(&name).await {
                Ok(()) => report(self.reporter, Kind::Network, &name, "Removed", true),
                Err(e) if e.is_not_found() => {}
                Err(e) => self.reporter.warn(&format!("network {name}: {e}")),
            }
        }
        if o.volumes {
            let listed = self
                .client
                .volume_list(&f)
                .await
                .map_err(StackError::engine("listing the project's volumes"))?;
            let ours: Vec<String> = listed
                .volumes
                .iter()
                .filter_map(|v| v["Name"].as_str().map(String::from))
                .collect();
            let vol_names: Vec<String> = if by_name {
                ours
            } else {
                self.model
                    .volumes
                    .iter()
                    .filter(|(_, def)| def.as_ref().and_then(|d| d.external) != Some(true))
                    .map(|(key, _)| convert::volume_name(self.model, key))
                    .filter(|name| ours.contains(name))
                    .collect()
            };
            for name in vol_names {
                report(self.reporter, Kind::Volume, &name, "Removing", false);
                match self.client.volume_remove(&name, false).await {
                    Ok(()) => report(self.reporter, Kind::Volume, &name, "Removed", true),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => self.reporter.warn(&format!("volume {name}: {e}")),
                }
            }
        }
        if let Some(rmi) = &o.rmi {
            let mut images = BTreeSet::new();
            for (s, svc) in &self.model.services {
                if rmi == "all" || svc.image.is_none() {
                    images.insert(convert::image_name(self.name(), s, svc));
                }
            }
            for image in images {
                match self.client.image_remove(&image, false, false).await {
                    Ok(_) => report(self.reporter, Kind::Image, &image, "Removed", true),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => self.reporter.warn(&format!("image {image}: {e}")),
                }
            }
        }
        Ok(())
    }

    /// The project's containers of `services` (all when empty), for the verbs that act on each.
    pub async fn select(&self, services: &[String], all: bool) -> Result<Vec<Container>> {
        for s in services {
            if !self.model.services.contains_key(s) {
                return Err(StackError::Missing(format!("no such service: {s}")));
            }
        }
        Ok(self
            .containers(all, false)
            .await?
            .into_iter()
            .filter(|c| services.is_empty() || services.contains(&c.service))
            .collect())
    }

    /// `stop`: dependents first.
    pub async fn stop(&self, services: &[String], timeout: Option<i64>) -> Result<()> {
        let containers = self.select(services, false).await?;
        let order = topo_order(self.model, &self.model.services.keys().cloned().collect())?;
        // Dependents first; containers of services the model does not have (a project stopped by
        // name, without its files) before all.
        let unknown: Vec<String> = containers
            .iter()
            .filter(|c| !self.model.services.contains_key(&c.service))
            .map(|c| c.service.clone())
            .collect();
        let mut levels = self.levels(&order);
        levels.push(unknown);
        for level in levels.iter().rev() {
            join_all(
                containers
                    .iter()
                    .filter(|c| level.contains(&c.service))
                    .map(|c| async move {
                        report(self.reporter, Kind::Container, &c.name, "Stopping", false);
                        self.client
                            .container_stop(&c.id, timeout, None)
                            .await
                            .map_err(StackError::engine(format!("stopping container {}", c.name)))?;
                        report(self.reporter, Kind::Container, &c.name, "Stopped", true);
                        Ok::<(), StackError>(())
                    }),
            )
            .await
            .into_iter()
            .collect::<Result<()>>()?;
        }
        Ok(())
    }

    /// `start`: dependencies first, waiting for their conditions.
    pub async fn start(&self, services: &[String]) -> Result<()> {
        let containers = self.select(services, true).await?;
        let order = self.services_in_order(services, true)?;
        let unknown: Vec<String> = containers
            .iter()
            .filter(|c| !self.model.services.contains_key(&c.service))
            .map(|c| c.service.clone())
            .collect();
        let mut levels = self.levels(&order);
        levels.insert(0, unknown);
        for level in levels {
            for s in &level {
                if let Some(svc) = self.model.services.get(s) {
                    self.wait_dependencies(s, svc).await?;
                }
            }
            join_all(
                containers
                    .iter()
                    .filter(|c| level.contains(&c.service) && !c.is_running())
                    .map(|c| self.start_container(&c.name, &c.id)),
            )
            .await
            .into_iter()
            .collect::<Result<()>>()?;
        }
        Ok(())
    }

    /// `restart`: the services' containers, then those of services that depend on them with
    /// `restart: true` (all when none is named).
    pub async fn restart(&self, services: &[String], timeout: Option<i64>) -> Result<()> {
        self.each(services, Action::Restart { timeout }).await?;
        if services.is_empty() {
            return Ok(());
        }
        let dependents: Vec<String> = self
            .model
            .services
            .iter()
            .filter(|(name, svc)| {
                !services.contains(name)
                    && svc
                        .depends_on
                        .iter()
                        .any(|(d, dep)| dep.restart && services.contains(d))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if dependents.is_empty() {
            return Ok(());
        }
        self.each(&dependents, Action::Restart { timeout }).await
    }

    /// `restart`, `kill`, `pause`, `unpause`, `rm`: one request per container, side by side.
    pub async fn each(&self, services: &[String], action: Action<'_>) -> Result<()> {
        // `restart` takes stopped containers too, as Compose's does.
        let all = matches!(action, Action::Remove { .. } | Action::Restart { .. });
        let containers = self.select(services, all).await?;
        let steps = containers.iter().map(|c| async move {
            let (doing, done) = action.words();
            report(self.reporter, Kind::Container, &c.name, doing, false);
            let r = match action {
                Action::Restart { timeout } => self.client.container_restart(&c.id, timeout, None).await,
                Action::Kill { signal } => self.client.container_kill(&c.id, signal).await,
                Action::Pause => self.client.container_pause(&c.id).await,
                Action::Unpause => self.client.container_unpause(&c.id).await,
                Action::Remove { volumes } => {
                    if c.is_running() {
                        return Ok(());
                    }
                    self.client.container_remove(&c.id, false, volumes).await
                }
            };
            r.map_err(StackError::engine(format!(
                "{} container {}",
                doing.to_lowercase(),
                c.name
            )))?;
            report(self.reporter, Kind::Container, &c.name, done, true);
            Ok::<(), StackError>(())
        });
        join_all(steps).await.into_iter().collect()
    }
}

/// A verb applied to each container by [`Stack::each`].
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// `restart`.
    Restart {
        /// Seconds to wait before killing.
        timeout: Option<i64>,
    },
    /// `kill`.
    Kill {
        /// The signal.
        signal: Option<&'a str>,
    },
    /// `pause`.
    Pause,
    /// `unpause`.
    Unpause,
    /// `rm` (stopped containers only).
    Remove {
        /// Also their anonymous volumes.
        volumes: bool,
    },
}

impl Action<'_> {
    fn words(&self) -> (&'static str, &'static str) {
        match self {
            Action::Restart { .. } => ("Restarting", "Started"),
            Action::Kill { .. } => ("Killing", "Killed"),
            Action::Pause => ("Pausing", "Paused"),
            Action::Unpause => ("Unpausing", "Unpaused"),
            Action::Remove { .. } => ("Removing", "Removed"),
        }
    }
}

/// `wanted` in dependency order (dependencies first, then by name); a cycle is an error naming it.
pub fn topo_order(model: &Model, wanted: &BTreeSet<String>) -> Result<Vec<String>> {
    fn visit(
        model: &Model,
        wanted: &BTreeSet<String>,
        s: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        if done.contains(s) {
            return Ok(());
        }
        if let Some(i) = path.iter().position(|p| p == s) {
            let mut cycle: Vec<String> = path[i..].to_vec();
            cycle.push(s.to_string());
            return Err(StackError::Cycle(cycle.join(" -> ")));
        }
        path.push(s.to_string());
        if let Some(svc) = model.services.get(s) {
            for d in svc.depends_on.keys() {
                if wanted.contains(d) {
                    visit(model, wanted, d, path, done, out)?;
                }
            }
        }
        path.pop();
        done.insert(s.to_string());
        out.push(s.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    let mut done = BTreeSet::new();
    for s in wanted {
        visit(model, wanted, s, &mut Vec::new(), &mut done, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(deps: &[(&str, &[&str])]) -> Model {
        let mut services = serde_json::Map::new();
        for (s, ds) in deps {
            let d: serde_json::Map<String, Value> = ds
                .iter()
                .map(|d| (d.to_string(), json!({"condition": "service_started"})))
                .collect();
            services.insert(s.to_string(), json!({"image": "busybox", "depends_on": d}));
        }
        Model::from_json(&json!({"name": "p", "services": services})).unwrap()
    }

    #[test]
    fn dependencies_come_first() {
        let m = model(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        let all: BTreeSet<String> = m.services.keys().cloned().collect();
        let order = topo_order(&m, &all).unwrap();
        let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
        assert!(pos("db") < pos("api") && pos("cache") < pos("api") && pos("api") < pos("web"));
    }

    #[test]
    fn a_cycle_is_named() {
        let m = model(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        let all: BTreeSet<String> = m.services.keys().cloned().collect();
        let e = topo_order(&m, &all).unwrap_err().to_string();
        assert_eq!(e, "dependency cycle detected: a -> b -> c -> a");
    }
}
