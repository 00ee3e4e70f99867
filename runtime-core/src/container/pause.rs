//! `pause` and `resume`: freeze and thaw every process of a container
//! through its cgroup's freezer. The status `paused` is not stored: it is
//! read back from the freezer (see `State::status`).

use crate::container::open;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Freezes a running (or, as runc allows, created) container.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    let (st, _lock) = open(root, id)?;
    if !matches!(st.status(root), Status::Running | Status::Created) {
        // runc's ErrNotRunning, also for a container already paused.
        return Err(Error::InvalidState("container not running".into()));
    }
    st.cgroup.freeze()?;
    log::debug!("paused {id}");
    Ok(())
}

/// Thaws a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    let (st, _lock) = open(root, id)?;
    if st.status(root) != Status::Paused {
        return Err(Error::InvalidState("container not paused".into()));
    }
    st.cgroup.thaw()?;
    log::debug!("resumed {id}");
    Ok(())
}
