//! Runs a parsed command line: connects to the daemon and hands each command its arguments.

use anyhow::Result;

use crate::args::{BuilderCmd, Cli, Cmd, ContainerCmd, ImageCmd, ManifestCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::clientconfig::ClientConfig;
use crate::connect::{connect, ConnectOpts, TlsFlags};
use crate::StatusError;
use crate::{container, events, image, network, registry, system, volume};

/// Runs the parsed command; the result is the process exit code.
pub async fn dispatch(cli: Cli) -> Result<i32> {
    if let Some(dir) = cli.config.as_deref().filter(|d| !d.is_empty()) {
        crate::credentials::set_config_dir(dir);
    }
    let Some(cmd) = cli.cmd else {
        if cli.version {
            outln!(
                "berth version {}, build {}",
                env!("CARGO_PKG_VERSION"),
                option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
            );
            return Ok(0);
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(0);
    };
    // `image build` and `builder build` are `build`, as in docker.
    let mut cmd = match cmd {
        Cmd::Image(ImageCmd::Build(a)) | Cmd::Builder(BuilderCmd::Build(a)) => Cmd::Build(a),
        other => other,
    };
    match cmd {
        // Generated from the command definitions alone.
        Cmd::Completion(a) => return crate::completion::completion(a),
        Cmd::Man(a) => return crate::man::man(a),
        _ => {}
    }
    let config = ClientConfig::load();
    let copts = ConnectOpts {
        host: cli.host.clone(),
        context: cli.context.clone(),
        current_context: config.current_context.clone(),
        no_autostart: cli.no_autostart,
        tls: TlsFlags {
            tls: cli.tls,
            verify: cli.tlsverify,
            ca: cli.tlscacert.clone(),
            cert: cli.tlscert.clone(),
            key: cli.tlskey.clone(),
        },
    };
    // As the docker CLI, for every command (it checks while initializing).
    copts.check_conflict().map_err(|e| StatusError::new(1, e.to_string()))?;
    // `version` prints the client part even when the daemon is unreachable.
    match cmd {
        Cmd::Version(a) => return system::version(&copts, a).await,
        Cmd::Registry(a) => return system::registry(a),
        Cmd::Build(a) if a.build.print_ast.is_some() => return crate::build::print_ast(a.build),
        // Logging out only edits the client's config: no daemon needed.
        Cmd::Logout(a) => return registry::logout(a),
        Cmd::Compose(a) if crate::compose::is_offline(&a) => return crate::compose::compose_offline(a),
        Cmd::Info(a) | Cmd::System(SystemCmd::Info(a)) => return system::info(&copts, a).await,
        // Relays one connection: no negotiation first (see `system::dial_stdio`).
        Cmd::System(SystemCmd::DialStdio) => return system::dial_stdio(&copts).await,
        // Contexts live in the client's config directory.
        Cmd::Context(c) => return crate::context::context(&copts, c),
        // Manifest lists are made on the client, against the registry.
        Cmd::Manifest(ManifestCmd::Create(a)) => return crate::manifest::create(a).await,
        Cmd::Manifest(ManifestCmd::Annotate(a)) => return crate::manifest::annotate(a),
        Cmd::Manifest(ManifestCmd::Push(a)) => return crate::manifest::push(a).await,
        Cmd::Manifest(ManifestCmd::Rm(a)) => return crate::manifest::rm(a),
        Cmd::Manifest(ManifestCmd::Inspect(ref a)) => {
            if let Some(out) = crate::manifest::inspect_local(&a.names, a.verbose)? {
                crate::write_out(&format!("{out}\n"));
                return Ok(0);
            }
        }
        _ => {}
    }
    let is_run = matches!(cmd, Cmd::Run(_) | Cmd::Container(ContainerCmd::Run(_)));
    let client = match connect(&copts).await {
        Ok(c) => c,
        Err(e) if is_run => return Err(container::run_error("run", &e.to_string()).into()),
        Err(e) => return Err(e),
    };
    config.apply(&mut cmd, &client.host().to_string());
    let c = &client;
    match cmd {
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => container::run(c, a).await,
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => container::create(c, a).await,
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => container::start(c, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => container::stop(c, a, false).await,
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => container::stop(c, a, true).await,
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => container::kill(c, a).await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => container::rm(c, a).await,
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => container::ps(c, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => container::logs(c, a).await,
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => container::wait(c, a).await,
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => container::rename(c, a).await,
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => container::attach(c, a).await,
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => container::exec(c, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => container::prune(c, a).await,
        Cmd::Pause(a) | Cmd::Container(ContainerCmd::Pause(a)) => container::resources::pause(c, a, true).await,
        Cmd::Unpause(a) | Cmd::Container(ContainerCmd::Unpause(a)) => container::resources::pause(c, a, false).await,
        Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => container::resources::stats(c, a).await,
        Cmd::Top(a) | Cmd::Container(ContainerCmd::Top(a)) => container::resources::top(c, a).await,
        Cmd::Port(a) | Cmd::Container(ContainerCmd::Port(a)) => container::resources::port(c, a).await,
        Cmd::Update(a) | Cmd::Container(ContainerCmd::Update(a)) => container::resources::update(c, a).await,
        Cmd::Cp(a) | Cmd::Container(ContainerCmd::Cp(a)) => container::cp(c, a).await,
        Cmd::Export(a) | Cmd::Container(ContainerCmd::Export(a)) => container::export(c, a).await,
        Cmd::Diff(a) | Cmd::Container(ContainerCmd::Diff(a)) => container::diff(c, a).await,
        Cmd::Commit(a) | Cmd::Container(ContainerCmd::Commit(a)) => container::commit(c, a).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            system::inspect(c, a.format, a.size, Some("container"), a.names, false).await
        }
        Cmd::Image(ImageCmd::Inspect(a)) => system::inspect(c, a.format, a.size, Some("image"), a.names, false).await,
        Cmd::Inspect(a) => system::inspect(c, a.format, a.size, a.kind.as_deref(), a.names, true).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => image::images(c, a).await,
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => image::rmi(c, a).await,
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => image::tag(c, a).await,
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => image::import(c, a).await,
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => image::load(c, a).await,
        Cmd::Build(a) => crate::build::build(c, a).await,
        Cmd::Builder(BuilderCmd::Prune(a)) => crate::build::prune(c, a).await,
        Cmd::Compose(a) => crate::compose::compose(c, a).await,
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => image::save(c, a).await,
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => image::history(c, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => image::prune(c, a).await,
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => image::pull(c, a).await,
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => registry::push(c, a).await,
        Cmd::Login(a) => registry::login(c, a).await,
        Cmd::Search(a) => registry::search(c, a).await,
        Cmd::Manifest(ManifestCmd::Inspect(a)) => registry::manifest_inspect(c, a).await,
        Cmd::Network(NetworkCmd::Create(a)) => network::create(c, a).await,
        Cmd::Network(NetworkCmd::Ls(a)) => network::ls(c, a).await,
        Cmd::Network(NetworkCmd::Inspect(a)) => network::inspect(c, a).await,
        Cmd::Network(NetworkCmd::Rm(a)) => network::rm(c, a).await,
        Cmd::Network(NetworkCmd::Connect(a)) => network::connect(c, a).await,
        Cmd::Network(NetworkCmd::Disconnect(a)) => network::disconnect(c, a).await,
        Cmd::Network(NetworkCmd::Prune(a)) => network::prune(c, a).await,
        Cmd::Volume(VolumeCmd::Create(a)) => volume::create(c, a).await,
        Cmd::Volume(VolumeCmd::Ls(a)) => volume::ls(c, a).await,
        Cmd::Volume(VolumeCmd::Inspect(a)) => volume::inspect(c, a).await,
        Cmd::Volume(VolumeCmd::Rm(a)) => volume::rm(c, a).await,
        Cmd::Volume(VolumeCmd::Prune(a)) => volume::prune(c, a).await,
        Cmd::Events(a) | Cmd::System(SystemCmd::Events(a)) => events::events(c, a).await,
        Cmd::System(SystemCmd::Df(a)) => events::df(c, a).await,
        Cmd::System(SystemCmd::Prune(a)) => events::prune(c, a).await,
        Cmd::Version(_)
        | Cmd::Info(_)
        | Cmd::System(SystemCmd::Info(_) | SystemCmd::DialStdio)
        | Cmd::Registry(_)
        | Cmd::Logout(_)
        | Cmd::Completion(_)
        | Cmd::Context(_)
        | Cmd::Manifest(ManifestCmd::Create(_) | ManifestCmd::Annotate(_) | ManifestCmd::Push(_) | ManifestCmd::Rm(_))
        | Cmd::Man(_)
        // Turned into `Cmd::Build` above.
        | Cmd::Image(ImageCmd::Build(_))
        | Cmd::Builder(BuilderCmd::Build(_)) => Ok(0),
    }
}
