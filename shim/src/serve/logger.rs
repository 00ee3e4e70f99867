//! Log URIs: containerd's `binary://`, `binary-v2://` and `file://` stdio.
//!
//! - `file:///path`: stdout and stderr are appended to the file (its
//!   directory is created), opened here and handed to the process.
//! - `binary:///path/to/logger?key=value&flag`: the logger is started with
//!   fds 3 and 4 the read ends of the process's stdout and stderr pipes and
//!   fd 5 the write end of a readiness pipe, environment `CONTAINER_ID` and
//!   `CONTAINER_NAMESPACE` only, and the query as arguments (`key value`,
//!   in key order). `Create`/`Exec` waits until the logger closes fd 5
//!   (`binary://`) or writes a byte to it (`binary-v2://`, where closing
//!   without a byte means it failed). The process writes the pipes itself;
//!   the shim keeps no copy of them. When the process is deleted the
//!   logger gets SIGTERM (through a pidfd: never a reused pid).

use std::io::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::status::{RpcError, RpcResult};

/// How long a logging binary may take to report ready.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// A running logging binary, signalled with SIGTERM when dropped.
#[derive(Debug)]
pub struct Logger {
    pidfd: OwnedFd,
}

impl Drop for Logger {
    fn drop(&mut self) {
        // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGTERM,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// Whether `uri` names a logging binary.
pub fn is_binary(uri: &str) -> bool {
    uri.starts_with("binary://") || uri.starts_with("binary-v2://")
}

/// Opens `file://<path>` for appending.
pub fn open_file(path: &str) -> RpcResult<OwnedFd> {
    let err = |e: Error| RpcError::Internal(format!("open log file {path}: {e}"));
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(RpcError::InvalidArgument(format!(
            "file:// log path must be absolute: {}",
            path.display()
        )));
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(err)?;
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(err)?;
    Ok(f.into())
}

/// Starts the logger `uri` names for process `id` of `namespace` and waits
/// until it is ready; returns it with the process's stdout and stderr.
pub async fn start_binary(
    uri: &str,
    id: &str,
    namespace: &str,
) -> RpcResult<(Logger, OwnedFd, OwnedFd)> {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_decode(path);
    if !path.starts_with('/') {
        return Err(RpcError::InvalidArgument(format!(
            "{scheme}:// logger path must be absolute: {path}"
        )));
    }
    let internal = |what: &str, e: Error| RpcError::Internal(format!("{what}: {e}"));
    let (out_r, out_w) = pipe_pair().map_err(|e| internal("stdout pipe", e))?;
    let (err_r, err_w) = pipe_pair().map_err(|e| internal("stderr pipe", e))?;
    let (ready_r, ready_w) = pipe_pair().map_err(|e| internal("ready pipe", e))?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(&path);
    cmd.args(query_args(query))
        .env_clear()
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls dup2, which is async-signal-safe; the
    // source fds are ≥ 10 (`pipe_pair`), so no dup2 overwrites a source.
    unsafe {
        cmd.pre_exec(move || place_fds(&fds));
    }
    let child = cmd
        .spawn()
        .map_err(|e| internal(&format!("start logger {path}"), e))?;
    // Before any .await: the reaper cannot have reaped it yet.
    let pidfd = pidfd_open(child.id() as i32).map_err(|e| internal("pidfd of logger", e))?;
    let logger = Logger { pidfd };
    drop((out_r, err_r, ready_w));
    let mut ready =
        pipe::Receiver::from_owned_fd(ready_r).map_err(|e| internal("ready pipe", e))?;
    let mut byte = [0u8; 1];
    let n = match tokio::time::timeout(READY_LIMIT, ready.read(&mut byte)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(internal("read logger readiness", e)),
        Err(_) => {
            return Err(RpcError::Internal(format!(
                "logging binary {path} not ready after {}s",
                READY_LIMIT.as_secs()
            )))
        }
    };
    if scheme == "binary-v2" && n == 0 {
        return Err(RpcError::Internal(format!(
            "logging binary {path} exited without reporting ready"
        )));
    }
    Ok((logger, out_w, err_w))
}

/// The child's side of `start_binary`: the three fds onto 3, 4, 5.
fn place_fds(fds: &[RawFd; 3]) -> std::io::Result<()> {
    for (target, &fd) in (3..).zip(fds) {
        // SAFETY: dup2 between two valid descriptor numbers.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(Error::last_os_error());
        }
    }
    Ok(())
}

/// A close-on-exec pipe whose fds are ≥ 10 (clear of 3-5 for the logger).
fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((high(r)?, high(w)?))
}

fn high(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new descriptor.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: `n` is a fresh descriptor owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; it is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `a=1&b&c=x%20y` → `["a", "1", "b", "c", "x y"]`, sorted by key.
fn query_args(query: &str) -> Vec<String> {
    let mut pairs: Vec<(String, Option<String>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), Some(percent_decode(v))),
            None => (percent_decode(p), None),
        })
        .collect();
    pairs.sort();
    pairs.dedup_by(|a, b| a.0 == b.0);
    pairs
        .into_iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_becomes_sorted_arguments() {
        assert_eq!(
            query_args("--tag=a%20b&-v&--driver=awslogs"),
            ["--driver", "awslogs", "--tag", "a b", "-v"]
        );
        assert!(query_args("").is_empty());
    }

    #[test]
    fn binary_schemes() {
        assert!(is_binary("binary:///bin/logger"));
        assert!(is_binary("binary-v2:///bin/logger?x=1"));
        assert!(!is_binary("file:///var/log/x"));
        assert!(!is_binary("/run/fifo/stdout"));
    }

    #[test]
    fn file_log_is_created_with_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/log");
        let fd = open_file(p.to_str().unwrap()).unwrap();
        nix::unistd::write(&fd, b"one\n").unwrap();
        let fd = open_file(p.to_str().unwrap()).unwrap();
        nix::unistd::write(&fd, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\ntwo\n");
        assert!(open_file("relative/log").is_err());
    }
}
