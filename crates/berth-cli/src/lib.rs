//! The berth command-line interface
