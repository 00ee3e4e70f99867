//! OOM kills in a container's memory cgroup, as a pollable fd plus a
//! non-blocking count, for callers with their own event loop (the shim):
//!
//! - v1 (and hybrid hosts, whose memory controller is v1): an eventfd
//!   registered through `cgroup.event_control` for `memory.oom_control`.
//!   The kernel signals it when the cgroup hits OOM, before the victim is
//!   killed, so the count is already there when the victim is reaped.
//! - v2: inotify on `memory.events`; the `oom_kill` counter is re-read at
//!   each check (so a check right after reaping a victim sees its kill even
//!   before the inotify event was read).
//!
//! [`OomWatch::fd`] turns readable when something may have happened;
//! [`OomWatch::take`] says how many OOM events are new since the last call.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{Cgroup, Error, Layout, Result};

/// Watches one container's memory cgroup for OOM kills.
#[derive(Debug)]
pub struct OomWatch {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    V1 {
        eventfd: OwnedFd,
        /// Must stay open for the registration to live.
        _oom_control: std::fs::File,
        /// `cgroup.event_control`: gone once the cgroup is removed, which
        /// also signals the eventfd (that is not an OOM).
        control: PathBuf,
    },
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        seen: u64,
    },
}

impl OomWatch {
    /// Starts watching `cg`; `None` when it has no memory controller.
    pub fn open(cg: &Cgroup) -> Result<Option<OomWatch>> {
        let Some(dir) = cg.dir_for("memory") else {
            return Ok(None);
        };
        let kind = if cg.layout() == Layout::V2 {
            open_v2(&dir)?
        } else {
            open_v1(&dir)?
        };
        Ok(Some(OomWatch { kind }))
    }

    /// Readable when an OOM event may have arrived (non-blocking fd).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { eventfd, .. } => eventfd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// The number of OOM events since the previous call (0 if none);
    /// never blocks.
    pub fn take(&mut self) -> u64 {
        match &mut self.kind {
            Kind::V1 {
                eventfd, control, ..
            } => {
                let mut buf = [0u8; 8];
                match nix::unistd::read(&*eventfd, &mut buf) {
                    Ok(8) if control.exists() => u64::from_ne_bytes(buf),
                    _ => 0,
                }
            }
            Kind::V2 {
                inotify,
                events,
                seen,
            } => {
                let mut buf = [0u8; 4096];
                while matches!(nix::unistd::read(&*inotify, &mut buf), Ok(n) if n > 0) {}
                let now = oom_kills(events).unwrap_or(*seen);
                let new = now.saturating_sub(*seen);
                *seen = now;
                new
            }
        }
    }
}

fn open_v1(dir: &Path) -> Result<Kind> {
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    // SAFETY: eventfd with flags only; returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io(dir, std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor owned only here.
    let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ctl_path = dir.join("memory.oom_control");
    let oom_control = std::fs::File::open(&ctl_path).map_err(|e| io(&ctl_path, e))?;
    let reg = dir.join("cgroup.event_control");
    let line = format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd());
    std::fs::write(&reg, &line).map_err(|e| Error::Write {
        path: reg.clone(),
        value: line.clone(),
        source: e,
    })?;
    Ok(Kind::V1 {
        eventfd,
        _oom_control: oom_control,
        control: reg,
    })
}

fn open_v2(dir: &Path) -> Result<Kind> {
    let events = dir.join("memory.events");
    let io = |_what: &str, e: std::io::Error| Error::Io {
        path: events.clone(),
        source: e,
    };
    // SAFETY: inotify_init1 with flags only.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io("inotify for", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor owned only here.
    let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
        .map_err(|e| io("path of", std::io::Error::other(e)))?;
    // SAFETY: a valid fd and a NUL-terminated path that outlives the call.
    let wd =
        unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(io("watch", std::io::Error::last_os_error()));
    }
    let seen = oom_kills(&events).map_err(|e| io("read", e))?;
    Ok(Kind::V2 {
        inotify,
        events,
        seen,
    })
}

/// The `oom_kill` count of a v2 `memory.events` file.
fn oom_kills(events: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(events)?;
    Ok(parse_oom_kills(&text))
}

fn parse_oom_kills(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom_kill")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_events_oom_kill() {
        let t = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(t), 2);
        assert_eq!(parse_oom_kills(""), 0);
    }

    #[test]
    fn v2_counts_only_new_kills() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
        let mut w = OomWatch {
            kind: open_v2(dir.path()).unwrap(),
        };
        assert_eq!(w.take(), 0);
        std::fs::write(&events, "oom 3\noom_kill 3\n").unwrap();
        assert_eq!(w.take(), 2);
        assert_eq!(w.take(), 0);
    }
}
