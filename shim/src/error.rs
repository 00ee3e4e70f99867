//! The shim binary's one error type for the `start` and `delete` actions.
//! Their text is what containerd shows the user (`start` output becomes the
//! error message on a non-zero exit), so every variant names what failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required flag (or its BootstrapParams fallback) is missing.
    #[error("{0}")]
    Usage(String),

    /// A file-system or socket call failed on `path`.
    #[error("{op} {path}: {source}", path = path.display())]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A call without a natural path failed.
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The bundle's config.json could not be used.
    #[error("bundle config.json: {0}")]
    Spec(String),

    /// The runtime options containerd sent could not be decoded.
    #[error("runtime options: {0}")]
    Options(#[from] rs_proto::Error),

    /// Joining the shim cgroup failed.
    #[error("join shim cgroup {cgroup:?}: {reason}")]
    Cgroup { cgroup: String, reason: String },
}

impl Error {
    pub fn path(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Path {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
