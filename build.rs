//! Links `berth-shim` as a position-dependent executable: one shim runs per container, and a PIE
//! would dirty ~250 KB of relocated pages in each of them (measured with /proc/<pid>/smaps), which
//! is most of a shim's private memory.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
