//! The Task service. Every RPC is implemented here (the generated defaults
//! answer NOT_FOUND where containerd needs UNIMPLEMENTED). Engine calls are
//! synchronous on the runtime's only thread, with the tables unlocked.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::{EnumOrUnknown, MessageField};
use nix::sys::signal::Signal;
use runtime_core::container::{self, CreateOptions, ExecOptions};
use runtime_core::state::Root;
use tokio::sync::Notify;

use super::events::Publisher;
use super::io;
use super::status::{RpcError, RpcResult};
use super::tables::{timestamp, Container, Proc, Tables};

/// Settings fixed for the server's lifetime.
pub struct Config {
    /// Engine state root (`<root option>/<namespace>`).
    pub root: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The listening socket's file, unlinked as soon as Shutdown decides to
    /// exit (so a new `start` binds afresh instead of sharing a dying shim).
    pub socket: PathBuf,
}

pub struct Service {
    config: Config,
    tables: Arc<Mutex<Tables>>,
    events: Publisher,
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

    fn root(&self) -> Root {
        Root::new(&self.config.root)
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn do_create(
        &self,
        req: api::CreateTaskRequest,
    ) -> RpcResult<api::CreateTaskResponse> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            // A `start` raced our Shutdown and shared this socket: refuse
            // rather than create a container we would abandon on exit.
            return Err(RpcError::FailedPrecondition("shim is shutting down".into()));
        }
        if req.terminal {
            return Err(RpcError::Unimplemented(
                "terminal tasks are not supported yet".into(),
            ));
        }
        if !req.checkpoint.is_empty() {
            return Err(RpcError::Unimplemented("restore from checkpoint".into()));
        }
        if self.tables().containers.contains_key(&req.id) {
            return Err(RpcError::AlreadyExists(format!(
                "container {} already exists",
                req.id
            )));
        }
        let bundle = PathBuf::from(&req.bundle);
        let mounted = io::mount_rootfs(&bundle, &req.rootfs)?;
        let created = io::open_stdio(&req.stdin, &req.stdout, &req.stderr).and_then(|stdio| {
            assert_single_thread();
            let opts = CreateOptions {
                id: req.id.clone(),
                bundle: bundle.clone(),
                no_pivot: self.config.no_pivot,
                no_new_keyring: self.config.no_new_keyring,
                stdio: Some(stdio),
                ..Default::default()
            };
            Ok(container::create(&self.root(), opts)?)
        });
        let state = match created {
            Ok(s) => s,
            Err(e) => {
                if mounted {
                    crate::delete::unmount_rootfs(&bundle.join("rootfs"));
                }
                return Err(e);
            }
        };
        let pid = state.pid;
        if let Err(e) = std::fs::write(bundle.join("init.pid"), pid.to_string()) {
            log::warn!("write {}/init.pid: {e}", bundle.display());
        }
        let mut init = Proc::new(
            req.stdin.clone(),
            req.stdout.clone(),
            req.stderr.clone(),
            false,
        );
        init.pid = pid;
        {
            let mut t = self.tables();
            t.containers.insert(
                req.id.clone(),
                Container {
                    bundle,
                    mounted_rootfs: mounted,
                    init,
                    execs: Default::default(),
                    held_init_exit: None,
                },
            );
            t.register(&req.id, "", pid, &self.events);
        }
        log::info!("created container {} (init {pid})", req.id);
        self.events.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    pub(super) fn do_start(&self, req: api::StartRequest) -> RpcResult<api::StartResponse> {
        if req.exec_id.is_empty() {
            self.start_init(&req.id)
        } else {
            self.start_exec(&req.id, &req.exec_id)
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
        log::info!("started container {id}");
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> RpcResult<api::StartResponse> {
        let (process, stdin, stdout, stderr) = {
            let t = self.tables();
            let c = container_of(&t, id)?;
            if c.init.exited().is_some() || c.held_init_exit.is_some() {
                return Err(RpcError::FailedPrecondition(format!(
                    "container {id} init has exited"
                )));
            }
            let p = proc_of(c, id, exec_id)?;
            if p.started {
                return Err(RpcError::FailedPrecondition(format!(
                    "exec {exec_id} already started"
                )));
            }
            let spec = p
                .spec
                .clone()
                .ok_or_else(|| RpcError::Internal("exec without a process spec".into()))?;
            (spec, p.stdin.clone(), p.stdout.clone(), p.stderr.clone())
        };
        let stdio = io::open_stdio(&stdin, &stdout, &stderr)?;
        assert_single_thread();
        let pid = container::exec(
            &self.root(),
            id,
            ExecOptions {
                process,
                console_socket: None,
                pid_file: None,
                preserve_fds: 0,
                stdio: Some(stdio),
            },
        )?;
        {
            let mut t = self.tables();
            match t
                .containers
                .get_mut(id)
                .and_then(|c| c.execs.get_mut(exec_id))
            {
                Some(p) => {
                    p.pid = pid;
                    p.started = true;
                }
                None => log::warn!("exec {exec_id} of {id} vanished while starting"),
            }
            t.register(id, exec_id, pid, &self.events);
        }
        self.events.publish(TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        });
        log::info!("started exec {exec_id} in {id} (pid {pid})");
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    pub(super) fn do_exec(&self, req: api::ExecProcessRequest) -> RpcResult<Empty> {
        if req.terminal {
            return Err(RpcError::Unimplemented(
                "terminal execs are not supported yet".into(),
            ));
        }
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| RpcError::InvalidArgument("exec without a process spec".into()))?;
        let process: oci_spec::runtime::Process = serde_json::from_slice(&spec.value)
            .map_err(|e| RpcError::InvalidArgument(format!("exec process spec: {e}")))?;
        if process.terminal().unwrap_or(false) {
            return Err(RpcError::Unimplemented(
                "terminal execs are not supported yet".into(),
            ));
        }
        {
            let mut t = self.tables();
            let c = t
                .containers
                .get_mut(&req.id)
                .ok_or_else(|| not_found(&req.id))?;
            if c.init.exited().is_some() || c.held_init_exit.is_some() {
                return Err(RpcError::FailedPrecondition(format!(
                    "container {} init has exited",
                    req.id
                )));
            }
            if req.exec_id.is_empty() || c.execs.contains_key(&req.exec_id) {
                return Err(RpcError::AlreadyExists(format!(
                    "id {} already in use",
                    req.exec_id
                )));
            }
            let mut p = Proc::new(
                req.stdin.clone(),
                req.stdout.clone(),
                req.stderr.clone(),
                false,
            );
            p.spec = Some(process);
            c.execs.insert(req.exec_id.clone(), p);
        }
        self.events.publish(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(Empty::new())
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
        log::info!("deleted container {}", req.id);
        Ok(resp)
    }

    pub(super) fn do_pids(&self, req: api::PidsRequest) -> RpcResult<api::PidsResponse> {
        let pids = container::pids(&self.root(), &req.id)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| api::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
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
            log::info!("shutdown: no containers left");
            self.closing
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::fs::remove_file(&self.config.socket);
            self.shutdown.notify_one();
        }
        Ok(Empty::new())
    }
}

fn not_found(id: &str) -> RpcError {
    RpcError::NotFound(format!("container {id} not found"))
}

fn finished() -> RpcError {
    RpcError::NotFound("process already finished".into())
}

fn container_of<'a>(t: &'a Tables, id: &str) -> RpcResult<&'a Container> {
    t.containers.get(id).ok_or_else(|| not_found(id))
}

fn proc_of<'a>(c: &'a Container, id: &str, exec_id: &str) -> RpcResult<&'a Proc> {
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
fn assert_single_thread() {
    debug_assert_eq!(
        std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count()),
        1,
        "the shim server must be single-threaded when the engine forks"
    );
}
