//! The Task service. Every RPC is implemented here (the generated defaults
//! answer NOT_FOUND where containerd needs UNIMPLEMENTED). Engine calls are
//! synchronous on the runtime's only thread, with the tables unlocked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskDelete, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::{EnumOrUnknown, Message, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use nix::sys::signal::Signal;
use runtime_core::container;
use runtime_core::state::Root;
use tokio::sync::Notify;

use super::events::Publisher;
use super::status::{RpcError, RpcResult};
use super::tables::{timestamp, Container, Proc, Tables};

/// The type URL containerd's runc shim gives `ProcessDetails` (typeurl
/// registers gogo types under their bare proto name).
const PROCESS_DETAILS_TYPE: &str = "containerd.runc.v1.ProcessDetails";

/// Settings fixed for the server's lifetime.
pub struct Config {
    /// Engine state root (`<root option>/<namespace>`).
    pub root: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The listening socket's file, unlinked as soon as Shutdown decides to
    /// exit (so a new `start` binds afresh instead of sharing a dying shim).
    pub socket: PathBuf,
    /// IoUid/IoGid: the owner given to a process's stdio FIFOs, so a
    /// process of a user namespace can reopen them (/proc/self/fd/N).
    pub io_owner: (u32, u32),
    /// SystemdCgroup: refused at Create (no systemd cgroup driver yet)
    /// rather than silently placing the container with cgroupfs.
    pub systemd_cgroup: bool,
    /// containerd namespace (for logging binaries' `CONTAINER_NAMESPACE`).
    pub namespace: String,
}

pub struct Service {
    pub(super) config: Config,
    pub(super) tables: Arc<Mutex<Tables>>,
    pub(super) events: Publisher,
    /// Notified when `Shutdown` finds no containers left.
    shutdown: Arc<Notify>,
    /// Set once Shutdown decided to exit: no new container may be created.
    closing: std::sync::atomic::AtomicBool,
}

impl Service {
    pub fn new(
        config: Config,
        tables: Arc<Mutex<Tables>>,
        events: Publisher,
        shutdown: Arc<Notify>,
    ) -> Service {
        Service {
            config,
            tables,
            events,
            shutdown,
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn root(&self) -> Root {
        Root::new(&self.config.root)
    }

    pub(super) fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) async fn do_start(&self, req: api::StartRequest) -> RpcResult<api::StartResponse> {
        if req.exec_id.is_empty() {
            self.start_init(&req.id)
        } else {
            self.start_exec(&req.id, &req.exec_id).await
        }
    }

    fn start_init(&self, id: &str) -> RpcResult<api::StartResponse> {
        let pid = {
            let t = self.tables();
            let c = container_of(&t, id)?;
            if c.init.started {
                return Err(RpcError::FailedPrecondition(format!(
                    "container {id} already started"
                )));
            }
            c.init.pid
        };
        container::start(&self.root(), id)?;
        // Marked and announced before this handler yields, so the reaper
        // cannot queue the TaskExit first.
        if let Some(c) = self.tables().containers.get_mut(id) {
            c.init.started = true;
        }
        self.events.publish(TaskStart {
            container_id: id.to_string(),
            pid: pid as u32,
            ..Default::default()
        });
        log::debug!("started container {id}");
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    pub(super) fn do_state(&self, req: api::StateRequest) -> RpcResult<api::StateResponse> {
        let t = self.tables();
        let c = container_of(&t, &req.id)?;
        let p = proc_of(c, &req.id, &req.exec_id)?;
        let exit = p.exited();
        let status = match (exit, p.started) {
            (Some(_), _) => api::Status::STOPPED,
            (None, true) => api::Status::RUNNING,
            (None, false) => api::Status::CREATED,
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: c.bundle.display().to_string(),
            pid: p.pid as u32,
            status: EnumOrUnknown::new(status),
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
            exit_status: exit.map_or(0, |e| e.status),
            exited_at: exit.map(|e| e.timestamp()).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    pub(super) fn do_kill(&self, req: api::KillRequest) -> RpcResult<Empty> {
        let sig = i32::try_from(req.signal)
            .ok()
            .and_then(|s| Signal::try_from(s).ok())
            .ok_or_else(|| RpcError::InvalidArgument(format!("invalid signal {}", req.signal)))?;
        let pid = {
            let t = self.tables();
            let c = container_of(&t, &req.id)?;
            let p = proc_of(c, &req.id, &req.exec_id)?;
            if p.exited().is_some() || (req.exec_id.is_empty() && c.held_init_exit.is_some()) {
                return Err(finished());
            }
            if !req.exec_id.is_empty() && !p.started {
                return Err(RpcError::FailedPrecondition(format!(
                    "exec {} not started",
                    req.exec_id
                )));
            }
            p.pid
        };
        if req.exec_id.is_empty() {
            match container::kill(&self.root(), &req.id, sig, req.all) {
                Ok(()) => {}
                Err(runtime_core::Error::InvalidState(_)) => return Err(finished()),
                Err(e) => return Err(e.into()),
            }
        } else {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| {
                if e == nix::errno::Errno::ESRCH {
                    finished()
                } else {
                    RpcError::Internal(format!("kill {pid}: {e}"))
                }
            })?;
        }
        Ok(Empty::new())
    }

    pub(super) fn do_delete(&self, req: api::DeleteRequest) -> RpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut t = self.tables();
            let c = t
                .containers
                .get_mut(&req.id)
                .ok_or_else(|| not_found(&req.id))?;
            let p = proc_of(c, &req.id, &req.exec_id)?;
            let exit = p.exited();
            if p.started && exit.is_none() {
                return Err(RpcError::FailedPrecondition(
                    "cannot delete a running process".into(),
                ));
            }
            let pid = p.pid;
            c.execs.remove(&req.exec_id);
            t.forget_pid(pid);
            return Ok(delete_response(pid, exit));
        }
        let (pid, exit, bundle, mounted) = {
            let t = self.tables();
            let c = container_of(&t, &req.id)?;
            let exit = c.init.exited();
            if c.init.started && exit.is_none() {
                return Err(RpcError::FailedPrecondition(
                    "cannot delete a running process".into(),
                ));
            }
            (c.init.pid, exit, c.bundle.clone(), c.mounted_rootfs)
        };
        match container::delete(&self.root(), &req.id, false) {
            Ok(()) | Err(runtime_core::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if mounted {
            crate::delete::unmount_rootfs(&bundle.join("rootfs"));
        }
        {
            let mut t = self.tables();
            if let Some(c) = t.containers.remove(&req.id) {
                let pids: Vec<i32> = c.execs.values().map(|p| p.pid).collect();
                for p in pids {
                    t.forget_pid(p);
                }
            }
            // A never-started init killed by the delete: its exit is of no
            // interest any more.
            t.forget_pid(pid);
        }
        let resp = delete_response(pid, exit);
        self.events.publish(TaskDelete {
            container_id: req.id.clone(),
            pid: resp.pid,
            exit_status: resp.exit_status,
            exited_at: resp.exited_at.clone(),
            id: req.id.clone(),
            ..Default::default()
        });
        log::debug!("deleted container {}", req.id);
        Ok(resp)
    }

    /// The container's processes; execs carry a `ProcessDetails` with
    /// their exec id, as containerd's runc shim does.
    pub(super) fn do_pids(&self, req: api::PidsRequest) -> RpcResult<api::PidsResponse> {
        let pids = container::pids(&self.root(), &req.id)?;
        let execs: HashMap<u32, String> = {
            let t = self.tables();
            let c = container_of(&t, &req.id)?;
            c.execs
                .iter()
                .filter(|(_, p)| p.started && p.exited().is_none())
                .map(|(id, p)| (p.pid as u32, id.clone()))
                .collect()
        };
        let details = |exec_id: &String| -> Option<Any> {
            let d = ProcessDetails {
                exec_id: exec_id.clone(),
                ..Default::default()
            };
            Some(Any {
                type_url: PROCESS_DETAILS_TYPE.to_string(),
                value: d.write_to_bytes().ok()?,
                ..Default::default()
            })
        };
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| api::ProcessInfo {
                    pid: pid as u32,
                    info: execs.get(&(pid as u32)).and_then(details).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    pub(super) fn do_resize_pty(&self, req: api::ResizePtyRequest) -> RpcResult<Empty> {
        let t = self.tables();
        let c = container_of(&t, &req.id)?;
        let p = proc_of(c, &req.id, &req.exec_id)?;
        // No terminal: nothing to resize (as containerd's runc shim).
        if let Some(console) = &p.console {
            console.resize(req.height, req.width)?;
        }
        Ok(Empty::new())
    }

    /// Closes a process's stdin. With a terminal the shim copies stdin and
    /// stops; otherwise the process reads the FIFO itself and sees EOF when
    /// its writer closes, so there is nothing to close here.
    pub(super) fn do_close_io(&self, req: api::CloseIORequest) -> RpcResult<Empty> {
        let t = self.tables();
        let c = container_of(&t, &req.id)?;
        let p = proc_of(c, &req.id, &req.exec_id)?;
        if req.stdin {
            if let Some(console) = &p.console {
                console.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    pub(super) async fn do_wait(&self, req: api::WaitRequest) -> RpcResult<api::WaitResponse> {
        let mut rx = {
            let t = self.tables();
            let c = container_of(&t, &req.id)?;
            proc_of(c, &req.id, &req.exec_id)?.exit.subscribe()
        };
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RpcError::NotFound(format!("process {} was deleted", req.id)))?
            .expect("waited for Some");
        Ok(api::WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(exit.timestamp()),
            ..Default::default()
        })
    }

    pub(super) fn do_connect(&self, req: api::ConnectRequest) -> RpcResult<api::ConnectResponse> {
        let task_pid = self
            .tables()
            .containers
            .get(&req.id)
            .map_or(0, |c| c.init.pid as u32);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub(super) fn do_shutdown(&self) -> RpcResult<Empty> {
        if self.tables().containers.is_empty() {
            log::debug!("shutdown: no containers left");
            self.closing
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::fs::remove_file(&self.config.socket);
            self.shutdown.notify_one();
        }
        Ok(Empty::new())
    }
}

pub(super) fn not_found(id: &str) -> RpcError {
    RpcError::NotFound(format!("container {id} not found"))
}

fn finished() -> RpcError {
    RpcError::NotFound("process already finished".into())
}

pub(super) fn container_of<'a>(t: &'a Tables, id: &str) -> RpcResult<&'a Container> {
    t.containers.get(id).ok_or_else(|| not_found(id))
}

pub(super) fn proc_of<'a>(c: &'a Container, id: &str, exec_id: &str) -> RpcResult<&'a Proc> {
    c.proc(exec_id)
        .ok_or_else(|| RpcError::NotFound(format!("exec {exec_id} of container {id} not found")))
}

fn delete_response(pid: i32, exit: Option<super::tables::Exit>) -> api::DeleteResponse {
    api::DeleteResponse {
        pid: pid as u32,
        exit_status: exit.map_or(0, |e| e.status),
        exited_at: MessageField::some(exit.map_or_else(
            || timestamp(std::time::SystemTime::now()),
            |e| e.timestamp(),
        )),
        ..Default::default()
    }
}

/// The engine forks from this thread: that is only sound while the process
/// has no other thread.
pub(super) fn assert_single_thread() {
    debug_assert_eq!(
        std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count()),
        1,
        "the shim server must be single-threaded when the engine forks"
    );
}
