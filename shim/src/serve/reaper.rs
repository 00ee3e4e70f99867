//! The one place that waits for children: a task woken by SIGCHLD that
//! collects every exited child with `waitpid(-1, WNOHANG)`. The engine's
//! own `waitpid(pid)` calls for its intermediate processes happen inside
//! synchronous engine calls on this same (only) thread, so this task never
//! runs concurrently with them and cannot steal their status.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::sys::signal::Signal as Sig;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime_core::state::Root;
use tokio::signal::unix::Signal;

use super::events::Publisher;
use super::tables::{Exit, Tables};

/// `root` is the engine's state root, for killing what a container
/// without its own pid namespace leaves behind when its init exits.
pub async fn run(
    mut sigchld: Signal,
    tables: Arc<Mutex<Tables>>,
    events: Publisher,
    root: PathBuf,
) {
    let root = Root::new(&root);
    loop {
        // Drain first: signals coalesce, and children may have exited
        // before the stream existed.
        reap(&tables, &events, &root);
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}

fn reap(tables: &Mutex<Tables>, events: &Publisher, root: &Root) {
    loop {
        let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code as u32),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as u32),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        let exit = Exit {
            status,
            at: SystemTime::now(),
        };
        let kill_all =
            tables
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .exited(pid.as_raw(), exit, events);
        if let Some(id) = kill_all {
            match runtime_core::container::kill(root, &id, Sig::SIGKILL, true) {
                Ok(()) | Err(runtime_core::Error::InvalidState(_)) => {}
                Err(e) => log::warn!("kill the rest of {id}: {e}"),
            }
        }
    }
}
