//! `berth`: the Docker-compatible command-line client.

fn main() {
    berth_cli::main();
}
