//! rs engine: turns an OCI bundle into an isolated container and manages its
//! lifecycle. A synchronous library: no ttrpc, no CLI parsing. Front doors
//! (the `rsrun` CLI, the containerd shim) call [`container`]'s verbs.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod syscall;

pub use error::{Error, Result};
