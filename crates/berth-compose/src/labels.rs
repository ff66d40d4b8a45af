//! The labels Docker Compose puts on what it creates; berth puts the same ones, so a stack berth
//! started is one Docker Compose recognises, and the other way round.

/// The project a container, network or volume belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service a container runs.
pub const SERVICE: &str = "com.docker.compose.service";
/// The container's number within its service (`1`, `2`, …).
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// `True` for a one-off container (`compose run`), `False` otherwise.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// The project directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The compose files, comma-separated.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The digest of the service configuration the container was made from.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// The compose version that made it.
pub const VERSION: &str = "com.docker.compose.version";
/// The image the container was created from.
pub const IMAGE: &str = "com.docker.compose.image";
/// The service's dependencies: `name:condition:restart`, comma-separated.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The key of a network in the project's file.
pub const NETWORK: &str = "com.docker.compose.network";
/// The key of a volume in the project's file.
pub const VOLUME: &str = "com.docker.compose.volume";
/// The version berth writes in [`VERSION`]: the Compose v2 release whose behaviour berth follows.
pub const COMPOSE_VERSION: &str = "2.40.3";
