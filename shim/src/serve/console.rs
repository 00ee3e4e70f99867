//! Terminals. A process with a terminal gets its pty from the engine,
//! which sends the master back over a socketpair; the shim then owns the
//! master and copies between it and containerd's FIFOs on the server's
//! only thread (non-blocking fds under tokio's reactor):
//!
//! ```text
//! stdin FIFO ──▶ master ──▶ (pty) ──▶ process ──▶ master ──▶ stdout FIFO
//! ```
//!
//! - stdin: copied until the FIFO's writer closes or `CloseIO`. A FIFO
//!   opened for reading before its writer has connected reports neither
//!   readable nor hung up under epoll, so an early open is not an EOF.
//! - stdout: copied until the master reports EIO (no slave left) or, once
//!   the process has exited, until what the pty still buffers is drained
//!   (a daemon inside holding the slave cannot keep the copy alive).
//!   stdout is opened read-write, as containerd's shims do, so a reader
//!   that comes and goes never makes the open fail.
//! - The copies are aborted when the process is deleted.

use std::io::{Error, ErrorKind, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::status::{RpcError, RpcResult};
use super::tables::Exit;

/// How long output still buffered in the pty may take to reach the FIFO
/// after the process exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A process's terminal as the shim holds it.
#[derive(Debug)]
pub struct Console {
    master: Arc<AsyncFd<OwnedFd>>,
    close_stdin: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Console {
    /// Takes over `master` and starts the copies between it and the
    /// process's FIFOs (either path may be empty: no copy). The output
    /// copy ends after `exited` turns `Some`.
    pub fn attach(
        master: OwnedFd,
        stdin: &str,
        stdout: &str,
        exited: watch::Receiver<Option<Exit>>,
    ) -> RpcResult<Console> {
        let internal = |what: &str, e: Error| RpcError::Internal(format!("{what}: {e}"));
        set_nonblocking(&master).map_err(|e| internal("pty master", e))?;
        // SAFETY: an OwnedFd's descriptor stays open and the same for as
        // long as the AsyncFd owns it.
        let master =
            unsafe { AsyncFd::register(master) }.map_err(|e| internal("pty master", e.into()))?;
        let master = Arc::new(master);
        let close_stdin = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if let Some(path) = fifo_path(stdin)? {
            let rx = pipe::OpenOptions::new()
                .open_receiver(path)
                .map_err(|e| internal(&format!("open {path}"), e))?;
            tasks.push(tokio::spawn(copy_in(
                rx,
                master.clone(),
                close_stdin.clone(),
            )));
        }
        if let Some(path) = fifo_path(stdout)? {
            let tx = pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(path)
                .map_err(|e| internal(&format!("open {path}"), e))?;
            tasks.push(tokio::spawn(copy_out(master.clone(), tx, exited)));
        }
        Ok(Console {
            master,
            close_stdin,
            tasks,
        })
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, height: u32, width: u32) -> RpcResult<()> {
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        runtime_core::console::resize(
            self.master.get_ref().as_raw_fd(),
            clamp(height),
            clamp(width),
        )
        .map_err(|e| RpcError::Internal(e.to_string()))
    }

    /// Stops copying stdin (the process sees no more input).
    pub fn close_stdin(&self) {
        self.close_stdin.notify_one();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Receives the pty master the engine sent over `socket`. It is already
/// queued (the engine sends it before the process reports ready), so the
/// socket is made non-blocking: a missing master is an error, not a hang.
pub fn receive_master(socket: &OwnedFd) -> RpcResult<OwnedFd> {
    set_nonblocking(socket)
        .and_then(|()| {
            runtime_core::console::recv_master(socket.as_raw_fd())
                .map_err(|e| Error::other(e.to_string()))
        })
        .map_err(|e| RpcError::Internal(format!("terminal: {e}")))
}

/// A connected socket pair for the engine's console socket:
/// (ours, the engine's).
pub fn socket_pair() -> RpcResult<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RpcError::Internal(format!("console socketpair: {e}")))
}

fn fifo_path(uri: &str) -> RpcResult<Option<&str>> {
    match uri.split_once("://") {
        _ if uri.is_empty() => Ok(None),
        None => Ok(Some(uri)),
        Some(("fifo", p)) => Ok(Some(p)),
        Some((scheme, _)) => Err(RpcError::InvalidArgument(format!(
            "a terminal's stdio must be FIFOs, not {scheme}://"
        ))),
    }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

async fn copy_in(mut rx: pipe::Receiver, master: Arc<AsyncFd<OwnedFd>>, stop: Arc<Notify>) {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::select! {
            _ = stop.notified() => return,
            r = rx.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        if write_all(&master, &buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn copy_out(
    master: Arc<AsyncFd<OwnedFd>>,
    mut tx: pipe::Sender,
    mut exited: watch::Receiver<Option<Exit>>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = tokio::select! {
            r = read(&master, &mut buf) => match r {
                Ok(n) if n > 0 => n,
                // EOF or EIO: every slave is closed.
                _ => return,
            },
            _ = exited.wait_for(Option::is_some) => break,
        };
        if tx.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    // Exited: forward what the pty still holds, without waiting for more.
    let drain = async {
        while let Ok(n) = try_read(&master, &mut buf) {
            if n == 0 || tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, drain).await;
}

async fn read(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> Result<usize> {
    loop {
        let mut ready = fd.readable().await?;
        match ready.try_io(|inner| nix::unistd::read(inner.get_ref(), buf).map_err(Error::from)) {
            Ok(r) => return r,
            Err(_would_block) => continue,
        }
    }
}

fn try_read(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> Result<usize> {
    nix::unistd::read(fd.get_ref(), buf).map_err(Error::from)
}

async fn write_all(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        let mut ready = fd.writable().await?;
        match ready.try_io(|inner| nix::unistd::write(inner.get_ref(), data).map_err(Error::from)) {
            Ok(Ok(0)) => return Err(ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
