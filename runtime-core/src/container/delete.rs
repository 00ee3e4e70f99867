//! `delete`: remove a stopped (or, with force, any) container: every
//! process in its cgroup, the cgroup, poststop hooks, the state dir.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::hooks::{self, Point};
use crate::state::{self, Lock, Root, State, Status};

/// Deletes container `id`.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    crate::spec::validate_id(id)?;
    let dir = root.container_dir(id);
    if !dir.is_dir() {
        return Err(Error::NotFound(id.to_string()));
    }
    let _lock = Lock::take(&dir)?;
    let st = match State::load(root, id) {
        Ok(st) => st,
        // Removed by a racing delete while we waited for the lock.
        Err(Error::NotFound(_))
            if !dir.join(state::FIFO).exists() && !dir.join(state::CONFIG).exists() =>
        {
            return Err(Error::NotFound(id.to_string()))
        }
        // A create that died half-way: nothing but the dir to remove.
        Err(Error::NotFound(_)) if force => return remove_dir(&dir, id),
        Err(e) => return Err(e),
    };
    let status = st.status(root);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::InvalidState(format!(
            "cannot delete container {id} that is not stopped: {status}"
        )));
    }
    kill_all(&st)?;
    st.cgroup.destroy()?;
    if !st.poststop.is_empty() {
        let state = hooks::state_json(id, "stopped", st.pid, &st.bundle, &st.annotations);
        if let Err(e) = hooks::run_all(Point::Poststop, &st.poststop, &state) {
            log::warn!("{e}");
        }
    }
    remove_dir(&dir, id)
}

fn remove_dir(dir: &std::path::Path, id: &str) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(id.to_string())),
        Err(e) => Err(Error::path("remove", dir, e)),
    }
}

/// SIGKILLs init and everything else in the cgroup (thawing it if paused),
/// and waits until the cgroup is empty and init is gone.
fn kill_all(st: &State) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(100);
    loop {
        let init_alive = state::process_matches(st.pid, st.start_time);
        if init_alive {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        }
        let pids = st.cgroup.pids().unwrap_or_default();
        for p in &pids {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
        // A paused container: on v1 the SIGKILLs take effect only once
        // thawed. Thawed after they are sent, so no process runs again.
        if st.cgroup.frozen() {
            st.cgroup.thaw()?;
        }
        if !init_alive && pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::InvalidState(format!(
                "container {} processes {pids:?} did not exit after SIGKILL",
                st.id
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
