//! The engine's public error type: one enum whose variants callers branch on
//! (the CLI for exit codes and messages, the shim for ttrpc status codes).

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container with this id exists under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id already exists.
    #[error("container {0} already exists")]
    AlreadyExists(String),
    /// The operation is not allowed in the container's current status.
    #[error("{0}")]
    InvalidState(String),
    /// config.json (or a process.json) is malformed or asks for something invalid.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A caller-supplied argument is wrong (bad signal, bad id, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The container's init or exec process reported a failure while being set up.
    #[error("{0}")]
    Child(String),
    /// A hook failed or timed out.
    #[error("{0}")]
    Hook(String),
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::cgroups::Error),
    /// An I/O or syscall failure, naming what was being done.
    /// (The cause is part of the message, not a separate source, so that
    /// printing the error chain does not repeat it.)
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    /// Something is not supported by this build or host.
    #[error("{0}")]
    Unsupported(String),
}

/// Engine result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with a description of what was attempted.
    pub fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            what: what.into(),
            err: source.into(),
        }
    }

    /// Wraps a nix errno with what was attempted.
    pub fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::io(what, std::io::Error::from(errno))
    }

    /// Wraps an I/O error about a path.
    pub fn path(what: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::io(format!("{what} {}", path.display()), source)
    }
}

/// Extension to attach context to nix results.
pub(crate) trait SysContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
