//! Linux namespaces: which kinds exist, how a spec names them, and joining or
//! creating them. Joining happens by fd (opened in the parent, before any
//! namespace changes, so paths resolve in the caller's view).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Result, SysContext};

/// One namespace of the container: new (path None) or joined (path Some).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Namespace {
    pub kind: Kind,
    pub path: Option<PathBuf>,
}

/// The namespace kinds the engine knows, in the order they are joined:
/// user first (it decides what the others may do), mount last among joins so
/// earlier `/proc` paths still resolve.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    User,
    Ipc,
    Uts,
    Net,
    Pid,
    Cgroup,
    Time,
    Mount,
}

impl Kind {
    /// The name under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Net => "net",
            Kind::Pid => "pid",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
            Kind::Mount => "mnt",
        }
    }

    /// The name config.json uses.
    pub fn spec_name(self) -> &'static str {
        match self {
            Kind::Net => "network",
            Kind::Mount => "mount",
            other => other.proc_name(),
        }
    }

    /// The clone/unshare flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Kind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
            Kind::Mount => CloneFlags::CLONE_NEWNS,
        }
    }

    /// Every kind, in join order.
    pub const ALL: [Kind; 8] = [
        Kind::User,
        Kind::Ipc,
        Kind::Uts,
        Kind::Net,
        Kind::Pid,
        Kind::Cgroup,
        Kind::Time,
        Kind::Mount,
    ];
}

impl From<LinuxNamespaceType> for Kind {
    fn from(t: LinuxNamespaceType) -> Self {
        match t {
            LinuxNamespaceType::User => Kind::User,
            LinuxNamespaceType::Ipc => Kind::Ipc,
            LinuxNamespaceType::Uts => Kind::Uts,
            LinuxNamespaceType::Network => Kind::Net,
            LinuxNamespaceType::Pid => Kind::Pid,
            LinuxNamespaceType::Cgroup => Kind::Cgroup,
            LinuxNamespaceType::Time => Kind::Time,
            LinuxNamespaceType::Mount => Kind::Mount,
        }
    }
}

/// The container's namespace set.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Namespaces(pub Vec<Namespace>);

impl Namespaces {
    /// Whether the container has this kind at all (new or joined).
    pub fn has(&self, kind: Kind) -> bool {
        self.0.iter().any(|n| n.kind == kind)
    }

    /// Whether the container creates a new namespace of this kind.
    pub fn creates(&self, kind: Kind) -> bool {
        self.0.iter().any(|n| n.kind == kind && n.path.is_none())
    }

    /// Flags for the namespaces to create, excluding user (created first, on its own).
    pub fn unshare_flags(&self) -> CloneFlags {
        self.0
            .iter()
            .filter(|n| n.path.is_none() && n.kind != Kind::User)
            .fold(CloneFlags::empty(), |acc, n| acc | n.kind.flag())
    }
}

/// An opened namespace to join with setns.
#[derive(Debug)]
pub struct JoinFd {
    pub kind: Kind,
    pub fd: OwnedFd,
    pub what: String,
}

/// Opens every path-given namespace, sorted in join order. A namespace the
/// caller is already in is skipped (setns into one's own user namespace fails).
pub fn open_joins(paths: &[(Kind, PathBuf)]) -> Result<Vec<JoinFd>> {
    use std::os::unix::fs::MetadataExt;
    let mut fds = Vec::with_capacity(paths.len());
    for (kind, path) in paths {
        let file = std::fs::File::open(path)
            .ctx(|| format!("open {} namespace {}", kind.spec_name(), path.display()))?;
        let target = file.metadata().ctx(|| format!("stat {}", path.display()))?;
        let own = std::fs::metadata(format!("/proc/self/ns/{}", kind.proc_name()));
        if own.is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino()) {
            continue;
        }
        fds.push(JoinFd {
            kind: *kind,
            fd: file.into(),
            what: path.display().to_string(),
        });
    }
    fds.sort_by_key(|j| j.kind);
    Ok(fds)
}

/// Joins one opened namespace.
pub fn join(j: &JoinFd) -> Result<()> {
    setns(j.fd.as_fd(), j.kind.flag())
        .ctx(|| format!("join {} namespace {}", j.kind.spec_name(), j.what))
}

/// Creates the namespaces in `flags`.
pub fn create(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).ctx(|| format!("unshare namespaces {flags:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshare_flags_skip_user_and_joined() {
        let ns = Namespaces(vec![
            Namespace {
                kind: Kind::User,
                path: None,
            },
            Namespace {
                kind: Kind::Pid,
                path: None,
            },
            Namespace {
                kind: Kind::Net,
                path: Some("/var/run/netns/x".into()),
            },
        ]);
        assert_eq!(ns.unshare_flags(), CloneFlags::CLONE_NEWPID);
        assert!(ns.creates(Kind::User));
        assert!(ns.has(Kind::Net) && !ns.creates(Kind::Net));
    }

    #[test]
    fn names_match_spec_and_proc() {
        assert_eq!(Kind::Net.spec_name(), "network");
        assert_eq!(Kind::Mount.proc_name(), "mnt");
        assert_eq!(Kind::from(LinuxNamespaceType::Mount), Kind::Mount);
    }
}
