//! Container lifecycle verbs, one per file, over the on-disk [`State`].
//! Every verb takes the container's lock for its whole duration, so two
//! commands on one container never interleave.

pub(crate) mod create;
mod delete;
mod exec;
mod kill;
mod pause;
pub(crate) mod start;
mod stats;
mod update;

pub use create::{create, create_planned, CreateOptions};
pub use delete::delete;
pub use exec::{exec, ExecOptions};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use start::start;
pub use stats::stats;
pub use update::update;

use crate::error::{Error, Result};
use crate::state::{Lock, Root, State, Status};

/// Loads a container under its lock.
pub fn open(root: &Root, id: &str) -> Result<(State, Lock)> {
    crate::spec::validate_id(id)?;
    let dir = root.container_dir(id);
    if !dir.is_dir() {
        return Err(Error::NotFound(id.to_string()));
    }
    let lock = match Lock::take(&dir) {
        Ok(l) => l,
        // A concurrent delete removed the directory between the check and
        // the lock: the container is gone, say so (not "open .lock: ENOENT").
        Err(_) if !dir.is_dir() => return Err(Error::NotFound(id.to_string())),
        Err(e) => return Err(e),
    };
    let state = State::load(root, id)?;
    Ok((state, lock))
}

/// The OCI state of one container. Lock-free (state.json is replaced
/// atomically), so a container still being created shows as "creating".
pub fn state(root: &Root, id: &str) -> Result<serde_json::Value> {
    Ok(State::load(root, id)?.oci(root))
}

/// The status of one container, lock-free like [`state`].
pub fn status(root: &Root, id: &str) -> Result<Status> {
    Ok(State::load(root, id)?.status(root))
}

/// All containers' OCI states, sorted by id.
pub fn list(root: &Root) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(st) = State::load(root, &id) {
            out.push(st.oci(root));
        }
    }
    Ok(out)
}

/// Pids in the container's cgroup.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let (st, _lock) = open(root, id)?;
    let mut p = st.cgroup.pids()?;
    p.sort_unstable();
    Ok(p)
}

/// A watch for OOM kills in the container's memory cgroup (`None` when it
/// has no memory controller). The caller polls its fd.
pub fn oom_watch(root: &Root, id: &str) -> Result<Option<crate::cgroups::oom::OomWatch>> {
    let st = State::load(root, id)?;
    Ok(crate::cgroups::oom::OomWatch::open(&st.cgroup)?)
}

/// The status, or an error if the container is not in one of `allowed`.
pub(crate) fn require(st: &State, root: &Root, allowed: &[Status], verb: &str) -> Result<Status> {
    let s = st.status(root);
    if allowed.contains(&s) {
        return Ok(s);
    }
    Err(Error::InvalidState(match (verb, s) {
        ("start", Status::Running) => "cannot start an already running container".into(),
        ("start", Status::Stopped) => "cannot start a container that has stopped".into(),
        ("exec", Status::Stopped) => "cannot exec in a stopped container".into(),
        ("exec", Status::Paused) => "cannot exec in a paused container".into(),
        ("kill", _) => "container not running".into(),
        _ => format!("cannot {verb} container {} in status {s}", st.id),
    }))
}
