//! The long-lived server (no action), started by `start` with the bundle
//! as cwd, fds 0-2 on /dev/null and the listening socket as fd 3.
//!
//! It serves containerd's Task API over ttrpc on fd 3 until a `Shutdown`
//! finds no containers left, or until SIGTERM/SIGINT; then it removes its
//! socket file and exits 0. Idle, it just waits (so `start` can share it).
//!
//! Implemented: Create (rootfs mounts; stdio FIFOs, `file://`,
//! `binary://`, `binary-v2://`, terminals), Start, Exec, State, Wait,
//! Kill, Delete, Pids (with exec ids), ResizePty, CloseIO, Connect,
//! Shutdown, Pause, Resume, Update (resources; `update.rs`), Stats
//! (cgroup v1/v2 metrics; `metrics.rs`); events TaskCreate/Start/
//! ExecAdded/ExecStarted/Exit/Delete/Paused/Resumed/OOM.
//! UNIMPLEMENTED: checkpoint/restore.
//!
//! ```text
//! containerd ──ttrpc (containerd.task.v2/v3.Task)──▶ service ──▶ engine
//!                                                     │  tables (Mutex)
//! SIGCHLD ──▶ reaper (waitpid -1) ────────────────────┘
//! events queue ──▶ forwarder ──ttrpc Events/Forward──▶ TTRPC_ADDRESS
//! ```
//!
//! The design (decided from a measured prototype): fork safety by staying at
//! ONE thread, so the engine can fork from inside a request handler.
//! - tokio `Builder::new_current_thread().enable_all()` only; ttrpc's async
//!   server (`add_unix_listener(3)`), containerd-shim-protos' `shim_async`
//!   Task service registered under `containerd.task.v3.Task` AND
//!   `containerd.task.v2.Task` (containerd 1.6-2.2 call v2 when `start`
//!   answers a bare address); every RPC overridden (the generated defaults
//!   answer NOT_FOUND where containerd needs UNIMPLEMENTED).
//! - Measured: protos + ttrpc + a current-thread runtime stay at 1 thread in
//!   /proc/self/task across thousands of forking requests; tokio's signal
//!   driver adds none. These DO add threads and are forbidden here:
//!   `tokio::fs`, `spawn_blocking`, `tokio::io::std{in,out,err}`,
//!   `tokio::process` (also a second waiter), containerd-shim's `run()`,
//!   `RemotePublisher`, `asyncify`-based helpers.
//! - File I/O with std::fs on the runtime thread; FIFOs with
//!   `tokio::net::unix::pipe`; events through `shim_async::Client` +
//!   `EventsClient::forward` with a bounded queue; one reaper task on
//!   SIGCHLD doing `waitpid(-1, WNOHANG)`, exits of unregistered pids
//!   buffered; no lock held across `.await` or a fork.
//! - Prototype figures: stripped LTO binary 1.3 MB, idle PSS 1.1-1.9 MB,
//!   `connect` round trip 24 us median.

mod console;
mod events;
mod freeze;
mod io;
mod logger;
mod metrics;
mod oom;
mod reaper;
mod service;
mod spawn;
mod status;
mod tables;
mod task;
mod update;

use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::shim_async::create_task;
use containerd_shim_protos::ttrpc::r#async::Server;
use nix::sys::socket::{getsockname, UnixAddr};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

use crate::flags::Flags;

/// The fd `start` passes the listener on (the Go shims' convention).
pub const LISTENER_FD: RawFd = 3;

/// The service names the handlers answer under: v3 for containerd 2.x
/// with BootstrapResult, v2 when `start` answered a bare address.
const TASK_V3: &str = "containerd.task.v3.Task";
const TASK_V2: &str = "containerd.task.v2.Task";

/// Runs the server; returns the process exit code.
pub fn run(flags: &Flags) -> i32 {
    let Some(socket) = listener_path() else {
        eprintln!(
            "containerd-shim-rs-v2: no listening unix socket on fd {LISTENER_FD}; \
             the server is started by `start`, not by hand"
        );
        return 1;
    };
    FifoLogger::install(flags.debug);
    log::debug!(
        "containerd-shim-rs-v2[{}] serving {} for namespace {}",
        std::process::id(),
        socket.display(),
        flags.namespace
    );
    // Orphaned container processes (init is forked by an intermediate
    // process) are reparented to us, so the reaper sees their exits.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        log::warn!("set child subreaper: {}", std::io::Error::last_os_error());
    }
    let config = match config(flags, &socket) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("build runtime: {e}");
            return 1;
        }
    };
    let code = match rt.block_on(serve(config, flags.namespace.clone())) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            1
        }
    };
    let _ = std::fs::remove_file(&socket);
    log::debug!("exiting");
    code
}

/// Engine settings from `<bundle>/rs-options.json` (cwd is the bundle).
fn config(flags: &Flags, socket: &Path) -> Result<service::Config, String> {
    if flags.namespace.is_empty() {
        return Err("shim namespace cannot be empty".into());
    }
    let opts = match crate::options_file::load(Path::new(".")) {
        Ok(o) => o.unwrap_or_default(),
        Err(e) => {
            log::warn!("{e}; using default options");
            Default::default()
        }
    };
    Ok(service::Config {
        root: crate::delete::state_root(opts.root.as_deref(), &flags.namespace),
        no_pivot: opts.no_pivot_root,
        no_new_keyring: opts.no_new_keyring,
        io_owner: (opts.io_uid, opts.io_gid),
        systemd_cgroup: opts.systemd_cgroup,
        socket: socket.to_path_buf(),
        namespace: flags.namespace.clone(),
    })
}

async fn serve(config: service::Config, namespace: String) -> Result<(), String> {
    // Before anything can fork: no SIGCHLD may go unnoticed.
    let sigchld = signal(SignalKind::child()).map_err(|e| format!("SIGCHLD handler: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    let address = std::env::var("TTRPC_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty());
    if address.is_none() {
        log::warn!("TTRPC_ADDRESS is not set: events will be dropped");
    }
    let events = events::Publisher::spawn(address, namespace);
    let tables = Arc::new(Mutex::new(tables::Tables::default()));
    tokio::spawn(reaper::run(
        sigchld,
        tables.clone(),
        events.clone(),
        config.root.clone(),
    ));
    let shutdown = Arc::new(Notify::new());
    let svc = Arc::new(service::Service::new(
        config,
        tables,
        events.clone(),
        shutdown.clone(),
    ));
    let mut services = create_task(svc.clone());
    let v3 = services
        .remove(TASK_V3)
        .ok_or_else(|| format!("generated services lack {TASK_V3}"))?;
    services.insert(TASK_V3.to_string(), v3);
    let mut v2 = create_task(svc);
    if let Some(s) = v2.remove(TASK_V3) {
        services.insert(TASK_V2.to_string(), s);
    }
    // SAFETY: fd 3 is the listening socket `start` handed us (checked by
    // `listener_path`); nothing else in this process uses or closes it.
    let server = unsafe { Server::new().add_unix_listener(LISTENER_FD) }
        .map_err(|e| format!("listen on fd {LISTENER_FD}: {e}"))?;
    let mut server = server.register_service(services);
    server
        .start()
        .await
        .map_err(|e| format!("start ttrpc server: {e}"))?;
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM"),
        _ = int.recv() => log::info!("SIGINT"),
        _ = shutdown.notified() => {
            // Let the Shutdown reply leave before the connection closes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    events.flush(Duration::from_secs(3)).await;
    if tokio::time::timeout(Duration::from_secs(2), server.shutdown())
        .await
        .is_err()
    {
        log::warn!("ttrpc server shutdown timed out");
    }
    Ok(())
}

/// The file path of the socket bound to fd 3, if fd 3 is a unix socket
/// with one.
fn listener_path() -> Option<PathBuf> {
    // A closed fd 3 gives EBADF, a non-socket ENOTSOCK: both None.
    let addr: UnixAddr = getsockname(LISTENER_FD).ok()?;
    addr.path().map(|p| p.to_path_buf())
}

/// `log` records as logrus-style lines on the bundle's `log` FIFO, which
/// containerd copies into its own log. Opened without blocking; when
/// nobody reads it, or its pipe is full, records are dropped: logging
/// never blocks the server's only thread.
struct FifoLogger {
    fifo: Mutex<Option<std::fs::File>>,
}

static LOGGER: FifoLogger = FifoLogger {
    fifo: Mutex::new(None),
};

impl FifoLogger {
    fn install(debug: bool) {
        let level = if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        };
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(level);
        }
    }

    fn open() -> Option<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("log")
            .ok()
    }
}

impl log::Log for FifoLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "level={} msg={:?} runtime=io.containerd.rs.v2 pid={}\n",
            record.level().as_str().to_lowercase(),
            record.args().to_string(),
            std::process::id()
        );
        let mut fifo = self.fifo.lock().unwrap_or_else(|e| e.into_inner());
        if fifo.is_none() {
            *fifo = Self::open();
        }
        if let Some(f) = fifo.as_mut() {
            match f.write(line.as_bytes()) {
                Ok(_) => {}
                // Full pipe: drop this record, keep the fd.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // Reader gone (EPIPE): reopen next time.
                Err(_) => *fifo = None,
            }
        }
    }

    fn flush(&self) {}
}
