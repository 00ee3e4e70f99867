//! The RPCs that make processes: `Create` (a container, its init blocked
//! before exec), `Exec` (registers a process) and `Start` of an exec, with
//! their stdio: FIFOs and log URIs opened by [`io`], or a terminal whose
//! master the engine sends back over a socketpair ([`console`]).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskCreate, TaskExecAdded, TaskExecStarted, TaskIO};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::MessageField;
use runtime_core::container::{self, CreateOptions, ExecOptions};

use super::console::{self, Console};
use super::io;
use super::service::{assert_single_thread, container_of, not_found, proc_of, Service};
use super::status::{RpcError, RpcResult};
use super::tables::{Container, Proc};

/// What a process is spawned with: its stdio fds (or, with a terminal,
/// the engine's end of the console socket) and what the shim keeps.
struct Prepared {
    stdio: Option<[OwnedFd; 3]>,
    console_socket: Option<(OwnedFd, OwnedFd)>,
    logger: Option<super::logger::Logger>,
}

/// A process's stdio as containerd named it (copied out of the tables, so
/// no lock is held while a logger starts).
struct IoUris {
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
}

impl IoUris {
    fn of(p: &Proc) -> IoUris {
        IoUris {
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
        }
    }
}

impl Service {
    async fn prepare(&self, p: &IoUris, id: &str) -> RpcResult<Prepared> {
        if p.terminal {
            return Ok(Prepared {
                stdio: None,
                console_socket: Some(console::socket_pair()?),
                logger: None,
            });
        }
        let s = io::open_stdio(&p.stdin, &p.stdout, &p.stderr, id, &self.config.namespace).await?;
        if self.config.io_owner != (0, 0) {
            io::chown_fifos(&s.fds, self.config.io_owner)?;
        }
        Ok(Prepared {
            stdio: Some(s.fds),
            console_socket: None,
            logger: s.logger,
        })
    }

    pub(super) async fn do_create(
        &self,
        req: api::CreateTaskRequest,
    ) -> RpcResult<api::CreateTaskResponse> {
        if self.is_closing() {
            // A `start` raced our Shutdown and shared this socket: refuse
            // rather than create a container we would abandon on exit.
            return Err(RpcError::FailedPrecondition("shim is shutting down".into()));
        }
        if !req.checkpoint.is_empty() {
            return Err(RpcError::Unimplemented("restore from checkpoint".into()));
        }
        if self.config.systemd_cgroup {
            return Err(RpcError::Unimplemented(
                "SystemdCgroup = true: rs has no systemd cgroup driver yet; \
                 set SystemdCgroup = false (cgroupfs)"
                    .into(),
            ));
        }
        let exists = || {
            self.tables()
                .containers
                .contains_key(&req.id)
                .then(|| RpcError::AlreadyExists(format!("container {} already exists", req.id)))
        };
        if let Some(e) = exists() {
            return Err(e);
        }
        let mut init = Proc::new(
            req.stdin.clone(),
            req.stdout.clone(),
            req.stderr.clone(),
            req.terminal,
        );
        let bundle = PathBuf::from(&req.bundle);
        let mut prepared = self.prepare(&IoUris::of(&init), &req.id).await?;
        // Preparing may have waited for a logger: check again.
        if let Some(e) = exists() {
            return Err(e);
        }
        let mounted = io::mount_rootfs(&bundle, &req.rootfs)?;
        assert_single_thread();
        // The engine gets its end of the console socket (closed once the
        // engine returns, so a receive can never wait on ourselves).
        let (ours, theirs) = prepared.console_socket.take().unzip();
        let opts = CreateOptions {
            id: req.id.clone(),
            bundle: bundle.clone(),
            no_pivot: self.config.no_pivot,
            no_new_keyring: self.config.no_new_keyring,
            stdio: prepared.stdio.take(),
            console_socket: theirs,
            ..Default::default()
        };
        let created = container::create(&self.root(), opts)
            .map_err(RpcError::from)
            .and_then(|state| {
                Ok((
                    state,
                    ours.map(|s| console::receive_master(&s)).transpose()?,
                ))
            });
        let (state, master) = match created {
            Ok(c) => c,
            Err(e) => {
                let _ = container::delete(&self.root(), &req.id, true);
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
        init.pid = pid;
        init.logger = prepared.logger;
        if let Some(master) = master {
            let exited = init.exit.subscribe();
            init.console = Some(Console::attach(master, &req.stdin, &req.stdout, exited)?);
        }
        let oom = self.watch_oom(&req.id);
        {
            let mut t = self.tables();
            t.containers.insert(
                req.id.clone(),
                Container {
                    oom,
                    kill_all_on_exit: !own_pid_namespace(&bundle),
                    bundle,
                    mounted_rootfs: mounted,
                    init,
                    execs: Default::default(),
                    held_init_exit: None,
                },
            );
            t.register(&req.id, "", pid, &self.events);
        }
        log::debug!("created container {} (init {pid})", req.id);
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

    /// The OOM watch of a just created container and its waiting task; a
    /// container without one still runs (its OOM kills go unreported).
    fn watch_oom(
        &self,
        id: &str,
    ) -> Option<(runtime_core::cgroups::oom::OomWatch, super::oom::OomTask)> {
        let watch = match container::oom_watch(&self.root(), id) {
            Ok(Some(w)) => w,
            Ok(None) => return None,
            Err(e) => {
                log::warn!("container {id}: no OOM events: {e}");
                return None;
            }
        };
        match super::oom::spawn(
            &watch,
            id.to_string(),
            self.tables.clone(),
            self.events.clone(),
        ) {
            Ok(task) => Some((watch, task)),
            Err(e) => {
                log::warn!("container {id}: no OOM events: {e}");
                None
            }
        }
    }

    pub(super) fn do_exec(&self, req: api::ExecProcessRequest) -> RpcResult<Empty> {
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| RpcError::InvalidArgument("exec without a process spec".into()))?;
        let mut process: oci_spec::runtime::Process = serde_json::from_slice(&spec.value)
            .map_err(|e| RpcError::InvalidArgument(format!("exec process spec: {e}")))?;
        let terminal = req.terminal || process.terminal().unwrap_or(false);
        process.set_terminal(Some(terminal));
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
                terminal,
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

    pub(super) async fn start_exec(
        &self,
        id: &str,
        exec_id: &str,
    ) -> RpcResult<api::StartResponse> {
        let (process, mut prepared) = {
            let (process, uris) = {
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
                (spec, IoUris::of(p))
            };
            (process, self.prepare(&uris, exec_id).await?)
        };
        let (ours, theirs) = prepared.console_socket.take().unzip();
        assert_single_thread();
        let pid = container::exec(
            &self.root(),
            id,
            ExecOptions {
                process,
                console_socket: theirs,
                pid_file: None,
                preserve_fds: 0,
                stdio: prepared.stdio.take(),
            },
        )?;
        let master = ours.map(|s| console::receive_master(&s));
        let mut t = self.tables();
        t.register(id, exec_id, pid, &self.events);
        let Some(p) = t
            .containers
            .get_mut(id)
            .and_then(|c| c.execs.get_mut(exec_id))
        else {
            log::warn!("exec {exec_id} of {id} vanished while starting");
            return Err(RpcError::NotFound(format!("exec {exec_id} was deleted")));
        };
        p.pid = pid;
        p.started = true;
        p.logger = prepared.logger;
        if let Some(master) = master {
            let exited = p.exit.subscribe();
            p.console = Some(Console::attach(master?, &p.stdin, &p.stdout, exited)?);
        }
        drop(t);
        self.events.publish(TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        });
        log::debug!("started exec {exec_id} in {id} (pid {pid})");
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }
}

/// Whether the bundle's config gives the container a new pid namespace
/// (a pid namespace without a path). Unreadable: assume it does (the
/// engine has already refused a bad config).
fn own_pid_namespace(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return true;
    };
    v.pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.get("type").and_then(|t| t.as_str()) == Some("pid")
                    && n.get("path")
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .is_empty()
            })
        })
}
