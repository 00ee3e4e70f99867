//! `stats`: one sample of a container's cgroup statistics (`runc events --stats`, the
//! shim's Stats RPC).

use crate::cgroups::Stats;
use crate::error::{Error, Result};
use crate::state::{Root, State, Status};

/// The statistics of container `id`'s cgroup. Lock-free, like `state` (it only reads), so
/// a stream of samples never holds up a lifecycle verb. A stopped container has none
/// (its cgroup may already be gone): InvalidState, as runc.
pub fn stats(root: &Root, id: &str) -> Result<Stats> {
    let st = State::load(root, id)?;
    if matches!(st.status(root), Status::Stopped | Status::Creating) {
        return Err(Error::InvalidState(format!(
            "container with id {id} is not running"
        )));
    }
    Ok(st.cgroup.stats()?)
}
