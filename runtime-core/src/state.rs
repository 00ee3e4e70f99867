//! The on-disk record of a container (`<root>/<id>/state.json`), its lock,
//! and the status derived from the live process.
//!
//! Status is never stored: it is derived from whether init still lives (pid
//! plus its start time, so a reused pid is not mistaken for init), whether
//! its cgroup is frozen (paused) and whether the exec FIFO (removed by
//! `start`) still exists.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::Namespaces;

/// OCI container status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What the engine remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat when init was created.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    pub annotations: std::collections::HashMap<String, String>,
    pub cgroup: Cgroup,
    pub namespaces: Namespaces,
    /// Host view of the cgroup path requested.
    pub cgroups_path: String,
    /// The hooks later verbs run (`start`, `delete`), kept here so those
    /// verbs need not parse the whole saved config.json.
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
}

/// The state root (`--root`) and paths inside it.
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
}

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";
pub const CONFIG: &str = "config.json";

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    /// The container's state directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Ids of all containers with a state file.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::path("read", &self.dir, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl State {
    /// Loads a container's state, NotFound when it has none.
    pub fn load(root: &Root, id: &str) -> Result<State> {
        crate::spec::validate_id(id)?;
        let path = root.container_dir(id).join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::path("read", &path, e)),
        };
        serde_json::from_slice(&text)
            .map_err(|e| Error::InvalidState(format!("corrupt state {}: {e}", path.display())))
    }

    /// Writes the state atomically (temp file + rename).
    pub fn save(&self, root: &Root) -> Result<()> {
        let dir = root.container_dir(&self.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(self).expect("state serializes");
        let mut f = File::create(&tmp).map_err(|e| Error::path("create", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| Error::path("write", &tmp, e))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(|e| Error::path("rename", &tmp, e))
    }

    /// The live status.
    pub fn status(&self, root: &Root) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        if !process_matches(self.pid, self.start_time) {
            return Status::Stopped;
        }
        // As runc: a frozen cgroup is paused, whether it was running or created.
        if self.cgroup.frozen() {
            return Status::Paused;
        }
        if root.container_dir(&self.id).join(FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The OCI state document (`runc state` output).
    pub fn oci(&self, root: &Root) -> serde_json::Value {
        let status = self.status(root);
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }
}

/// Start time (clock ticks since boot) of a process, from /proc/PID/stat.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parens: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); start time is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start`.
pub fn process_matches(pid: i32, start: u64) -> bool {
    pid > 0 && start_time(pid) == Some(start)
}

/// An exclusive lock on one container's state dir, held for a whole command
/// so concurrent commands on the same container are serialized.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the container's lock is ours.
    pub fn take(dir: &Path) -> Result<Lock> {
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::path("open", &path, e))?;
        // A process-associated (POSIX) lock, not flock: children forked
        // while it is held (the container's init) must not inherit it.
        let mut fl: libc::flock = unsafe_zeroed_flock();
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        loop {
            // SAFETY: F_SETLKW reads a valid, initialised flock struct.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &fl) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::path("lock", &path, e));
            }
        }
    }
}

fn unsafe_zeroed_flock() -> libc::flock {
    // SAFETY: flock is a plain C struct for which all-zero bytes are valid.
    unsafe { std::mem::zeroed() }
}

/// Current time as RFC 3339 with nanoseconds, UTC (as runc writes `created`).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a Unix time as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Name of a uid from the host's /etc/passwd, or the number. Read directly
/// (no NSS), so a static rsrun behaves the same.
pub fn owner_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Ensures the state root exists with mode 0700.
pub fn ensure_root(root: &Root) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root.dir)
        .ctx(|| format!("create state root {}", root.dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn own_process_matches_and_other_start_does_not() {
        let me = std::process::id() as i32;
        let st = start_time(me).expect("own stat");
        assert!(process_matches(me, st));
        assert!(!process_matches(me, st + 1));
        assert!(!process_matches(0, st));
    }
}
