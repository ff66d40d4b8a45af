//! The CLI built from this crate alone (`cargo run -p berth-cli --example berth-dev`), for
//! trying it without building the daemon crates.

fn main() {
    berth_cli::main();
}
