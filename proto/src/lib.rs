//! `rs-proto`: the protobuf messages containerd exchanges with the rs shim
//! and the pure decoding the shim needs around them. No I/O beyond reading a
//! `runtimeoptions.v1.Options.config_path` file; no ttrpc.
//!
//! - [`parse_start_stdin`] tells apart what containerd ≤ 2.2 (bare options
//!   `Any`) and ≥ 2.3 (`BootstrapParams`) write on `start` stdin.
//! - [`RuntimeOptions::from_any`] normalizes both options messages
//!   (`containerd.runc.v1.Options`, `runtimeoptions.v1.Options` + TOML).
//! - [`encode_bootstrap_result`] builds the `start` stdout reply.
//! - [`systemd_from_cgroups_path`] infers the cgroup driver from a path.

mod error;
mod messages;
mod options;
mod start;
mod wire;

pub use error::Error;
pub use messages::{
    BootstrapParams, BootstrapResult, Capability, Extension, LogLevel, RuncOptions,
    RuntimeConfigOptions, RUNC_OPTIONS_TYPE, RUNTIME_CONFIG_OPTIONS_TYPE,
};
pub use options::{systemd_from_cgroups_path, RuntimeOptions};
pub use start::{encode_bootstrap_result, parse_start_stdin, ShimProtocol, StartInput};

/// Re-exported so callers build and match `Any`s with the same prost version.
pub use prost_types::Any;
