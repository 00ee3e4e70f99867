//! Filesystem helpers shared by the controllers: control-file writes whose errors name the file
//! and the value, `mkdir -p` that records what it made, v2 controller enabling in parents,
//! and removal that waits out EBUSY.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::{Error, Result};

/// One planned control-file write: (file name, value).
pub(crate) type Setting = (&'static str, String);

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` to the existing control file `dir/file`, in a single write(2) as the kernel
/// wants. Never creates the file: a missing file means a missing controller.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| Error::Write {
            path,
            value: value.to_string(),
            source,
        })
}

/// Performs planned writes in order, stopping at the first refusal.
pub(crate) fn write_all(dir: &Path, settings: &[Setting]) -> Result<()> {
    settings
        .iter()
        .try_for_each(|(file, value)| write(dir, file, value))
}

/// Reads `dir/file`, trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    read_path(&dir.join(file)).map(|s| s.trim().to_string())
}

pub(crate) fn read_path(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(io_err(path))
}

/// Creates `dir` and any missing parents below `base` (which must exist), appending each
/// directory it made, parents first, to `created`, also when it fails part way.
pub(crate) fn mkdir_p(base: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = dir.strip_prefix(base).map_err(|_| Error::InvalidPath {
        path: dir.display().to_string(),
        reason: format!("not below its hierarchy {}", base.display()),
    })?;
    let mut cur = base.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&cur)(e)),
        }
    }
    Ok(())
}

/// v2: enables, in every level from the hierarchy root down to `dir`'s parent, the controllers
/// that level offers, so `dir` gets their files. All at once first; if the kernel refuses the
/// set, one by one, keeping what it accepts (a missing controller surfaces later as a write
/// error naming the file).
pub(crate) fn enable_controllers(root: &Path, dir: &Path) -> Result<()> {
    let mut level = root.to_path_buf();
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    for comp in rel.components() {
        let available = read(&level, "cgroup.controllers")?;
        let enabled = read(&level, "cgroup.subtree_control").unwrap_or_default();
        let wanted: Vec<String> = available
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty() && write(&level, "cgroup.subtree_control", &wanted.join(" ")).is_err()
        {
            for w in &wanted {
                if let Err(e) = write(&level, "cgroup.subtree_control", w) {
                    log::warn!("cannot enable controller: {e}");
                }
            }
        }
        level.push(comp);
    }
    Ok(())
}

/// Appends the pids in `dir/cgroup.procs` and in every sub-cgroup's.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = read(dir, "cgroup.procs")?;
    for tok in procs.split_whitespace() {
        out.push(tok.parse().map_err(|_| Error::Parse {
            what: dir.join("cgroup.procs").display().to_string(),
            reason: format!("{tok:?} is not a pid"),
        })?);
    }
    for sub in subdirs(dir)? {
        procs_recursive(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(dir))?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Removes `dir` and every sub-cgroup in it, deepest first, retrying EBUSY until `deadline`.
/// A `dir` that is already gone is fine.
pub(crate) fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    let subs = match subdirs(dir) {
        Ok(s) => s,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for sub in subs {
        remove_tree(&sub, deadline)?;
    }
    // The last task usually leaves within microseconds of being reaped, so
    // start polling fast and back off (a fixed 10 ms cost every `run`).
    let mut pause = Duration::from_micros(50);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Err(e) => return Err(io_err(dir)(e)),
        }
    }
}

/// Removes a directory we created above the container's own, unless another cgroup now lives
/// in it (then it is no longer ours alone to remove).
pub(crate) fn remove_if_unused(dir: &Path) -> Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {
            log::debug!("keeping shared cgroup {}: {e}", dir.display());
            Ok(())
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_names_file_and_value_and_never_creates() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), "memory.max", "123").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("memory.max") && msg.contains("\"123\""),
            "{msg}"
        );
        assert!(!tmp.path().join("memory.max").exists());
        fs::write(tmp.path().join("memory.max"), "max\n").unwrap();
        write(tmp.path(), "memory.max", "123").unwrap();
        assert_eq!(read(tmp.path(), "memory.max").unwrap(), "123");
    }

    #[test]
    fn mkdir_p_records_only_new_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        let mut created = Vec::new();
        mkdir_p(tmp.path(), &tmp.path().join("a/b/c"), &mut created).unwrap();
        assert_eq!(
            created,
            vec![tmp.path().join("a/b"), tmp.path().join("a/b/c")]
        );
        let mut again = Vec::new();
        mkdir_p(tmp.path(), &tmp.path().join("a/b/c"), &mut again).unwrap();
        assert!(again.is_empty());
        assert!(mkdir_p(&tmp.path().join("x"), tmp.path(), &mut again).is_err());
    }

    #[test]
    fn procs_are_read_recursively() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sub/deeper")).unwrap();
        fs::write(tmp.path().join("cgroup.procs"), "1\n2\n").unwrap();
        fs::write(tmp.path().join("sub/cgroup.procs"), "").unwrap();
        fs::write(tmp.path().join("sub/deeper/cgroup.procs"), "30\n").unwrap();
        let mut pids = Vec::new();
        procs_recursive(tmp.path(), &mut pids).unwrap();
        pids.sort();
        assert_eq!(pids, vec![1, 2, 30]);
    }

    #[test]
    fn remove_tree_and_remove_if_unused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("p/leaf/sub")).unwrap();
        fs::create_dir_all(tmp.path().join("p/other")).unwrap();
        remove_tree(&tmp.path().join("p/leaf"), Instant::now()).unwrap();
        assert!(!tmp.path().join("p/leaf").exists());
        remove_tree(&tmp.path().join("p/leaf"), Instant::now()).unwrap();
        // "p" still holds "other": left alone without error.
        remove_if_unused(&tmp.path().join("p")).unwrap();
        assert!(tmp.path().join("p/other").exists());
        fs::remove_dir(tmp.path().join("p/other")).unwrap();
        remove_if_unused(&tmp.path().join("p")).unwrap();
        assert!(!tmp.path().join("p").exists());
    }

    #[test]
    fn v2_parents_enable_available_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cgroup.controllers"), "cpuset cpu memory pids").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory").unwrap();
        enable_controllers(root, &root.join("a")).unwrap();
        let enabled = fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();
        assert_eq!(enabled, "+cpuset +cpu +pids");
    }
}
