//! `berth-shim`: the per-container supervisor (see crates/berth-shim).

fn main() {
    std::process::exit(berth_shim::main_entry());
}
