//! OCI runtime spec generation and the Linux container runtime
