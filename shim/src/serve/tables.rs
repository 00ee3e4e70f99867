//! What the server knows about its containers and their processes, behind
//! one `std::sync::Mutex` that is never held across an `.await` or an
//! engine call. Exit statuses live here until `Delete` (containerd asks
//! for them again after a restart).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use containerd_shim_protos::events::task::{TaskExit, TaskOOM};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use tokio::sync::watch;

use super::console::Console;
use super::events::Publisher;
use super::logger::Logger;
use super::oom::OomTask;

/// How and when a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit code, or 128 + signal.
    pub status: u32,
    pub at: SystemTime,
}

impl Exit {
    pub fn timestamp(&self) -> Timestamp {
        timestamp(self.at)
    }
}

pub fn timestamp(at: SystemTime) -> Timestamp {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

/// One process: a container's init or one of its execs.
#[derive(Debug)]
pub struct Proc {
    /// 0 until started (execs only; init has its pid from Create).
    pub pid: i32,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub started: bool,
    /// Execs: the OCI process (JSON) from the Exec request.
    pub spec: Option<oci_spec::runtime::Process>,
    /// None while alive; watched by `Wait`.
    pub exit: watch::Sender<Option<Exit>>,
    /// The pty master and its copies, for a process with a terminal.
    pub console: Option<Console>,
    /// The logging binary of a `binary://` process.
    pub logger: Option<Logger>,
}

impl Proc {
    pub fn new(stdin: String, stdout: String, stderr: String, terminal: bool) -> Proc {
        Proc {
            pid: 0,
            stdin,
            stdout,
            stderr,
            terminal,
            started: false,
            spec: None,
            exit: watch::channel(None).0,
            console: None,
            logger: None,
        }
    }

    pub fn exited(&self) -> Option<Exit> {
        *self.exit.borrow()
    }
}

#[derive(Debug)]
pub struct Container {
    pub bundle: PathBuf,
    /// Whether Create mounted `<bundle>/rootfs` (Delete unmounts it).
    pub mounted_rootfs: bool,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    /// Init's exit, held back until the running execs have exited.
    pub held_init_exit: Option<Exit>,
    /// No pid namespace of its own: when init exits, whatever is left in
    /// its cgroup is killed (a pid namespace does that by itself).
    pub kill_all_on_exit: bool,
    /// OOM kills in its memory cgroup, and the task waiting on them.
    pub oom: Option<(runtime_core::cgroups::oom::OomWatch, OomTask)>,
}

impl Container {
    pub fn proc(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    fn running_execs(&self) -> bool {
        self.execs
            .values()
            .any(|p| p.started && p.exited().is_none())
    }
}

/// Exits of pids nobody has registered are kept (at most this many).
const UNCLAIMED_MAX: usize = 1024;

#[derive(Debug, Default)]
pub struct Tables {
    pub containers: HashMap<String, Container>,
    /// pid → (container id, exec id; "" for init).
    by_pid: HashMap<i32, (String, String)>,
    unclaimed: HashMap<i32, Exit>,
}

impl Tables {
    /// Registers `pid` as process `exec_id` of container `id` right after
    /// the engine forked it (no `.await` in between); an exit the reaper
    /// already collected for it is applied at once.
    pub fn register(&mut self, id: &str, exec_id: &str, pid: i32, events: &Publisher) {
        self.by_pid
            .insert(pid, (id.to_string(), exec_id.to_string()));
        if let Some(exit) = self.unclaimed.remove(&pid) {
            self.exited(pid, exit, events);
        }
    }

    pub fn forget_pid(&mut self, pid: i32) {
        self.by_pid.remove(&pid);
    }

    /// Records the exit of `pid` (from the reaper) and publishes TaskExit;
    /// init's exit waits for the container's running execs. Returns the
    /// container whose remaining processes must be killed now (init exited
    /// without a pid namespace of its own).
    pub fn exited(&mut self, pid: i32, exit: Exit, events: &Publisher) -> Option<String> {
        let Some((id, exec_id)) = self.by_pid.remove(&pid) else {
            if self.unclaimed.len() >= UNCLAIMED_MAX {
                self.unclaimed.clear();
            }
            self.unclaimed.insert(pid, exit);
            return None;
        };
        self.check_oom(&id, events);
        let c = self.containers.get_mut(&id)?;
        log::debug!(
            "container {id} process {pid} ({exec_id:?}) exited: {}",
            exit.status
        );
        if exec_id.is_empty() {
            let kill_all = c.kill_all_on_exit.then(|| id.clone());
            if c.running_execs() {
                c.held_init_exit = Some(exit);
                return kill_all;
            }
            finish(&id, "", &c.init, exit, events);
            return kill_all;
        } else {
            if let Some(p) = c.execs.get(&exec_id) {
                finish(&id, &exec_id, p, exit, events);
            }
            if !c.running_execs() {
                if let Some(held) = c.held_init_exit.take() {
                    finish(&id, "", &c.init, held, events);
                }
            }
        }
        None
    }
}

impl Tables {
    /// Publishes TaskOOM if container `id` had an OOM kill since the last
    /// check; false when the container is gone.
    pub fn check_oom(&mut self, id: &str, events: &Publisher) -> bool {
        let Some(c) = self.containers.get_mut(id) else {
            return false;
        };
        if let Some((watch, _)) = c.oom.as_mut() {
            if watch.take() > 0 {
                log::debug!("container {id}: OOM kill");
                events.publish(TaskOOM {
                    container_id: id.to_string(),
                    ..Default::default()
                });
            }
        }
        true
    }
}

fn finish(id: &str, exec_id: &str, p: &Proc, exit: Exit, events: &Publisher) {
    p.exit.send_replace(Some(exit));
    events.publish(TaskExit {
        container_id: id.to_string(),
        id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
        pid: p.pid as u32,
        exit_status: exit.status,
        exited_at: MessageField::some(exit.timestamp()),
        ..Default::default()
    });
}
