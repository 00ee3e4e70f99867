//! OOM events: each container's memory cgroup is watched through the
//! engine's [`OomWatch`] (an eventfd on v1, inotify on `memory.events` on
//! v2), and every new OOM kill is published as TaskOOM.
//!
//! Two paths, one check ([`Tables::check_oom`]): a task per container
//! waits for the watch's fd to turn readable (an OOM that kills a child
//! but not init), and the reaper checks before it publishes any exit of
//! the container, so a victim's TaskOOM always comes before its TaskExit
//! (the kernel signals the watch before it kills).

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use runtime_core::cgroups::oom::OomWatch;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::events::Publisher;
use super::tables::Tables;

/// The waiting task of one container; aborted when dropped (at Delete).
#[derive(Debug)]
pub struct OomTask(JoinHandle<()>);

impl Drop for OomTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the waiting task for container `id`, whose watch the caller
/// stores in its [`Tables`] entry.
pub fn spawn(
    watch: &OomWatch,
    id: String,
    tables: Arc<Mutex<Tables>>,
    events: Publisher,
) -> std::io::Result<OomTask> {
    let fd: OwnedFd = watch.fd().try_clone_to_owned()?;
    // SAFETY: an OwnedFd's descriptor stays open and the same for as long
    // as the AsyncFd owns it.
    let fd = unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
    Ok(OomTask(tokio::spawn(async move {
        loop {
            match fd.readable().await {
                Ok(mut ready) => ready.clear_ready(),
                Err(e) => {
                    log::warn!("oom watch of {id}: {e}");
                    return;
                }
            }
            let mut t = tables.lock().unwrap_or_else(|e| e.into_inner());
            if !t.check_oom(&id, &events) {
                return;
            }
        }
    })))
}
