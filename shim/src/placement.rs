//! Where `start` puts the server it spawned: into the `ShimCgroup` from the
//! runtime options (so a pod's shim is charged to the pod) and one step
//! more killable than containerd (`oom_score_adj` + 1), as the Go shim does
//! (`manager_linux.go` `Start`, `pkg/shim` `AdjustOOMScore`).

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};

/// Where cgroup v2 (and the v1 tmpfs of hierarchies) is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// Moves `pid` into `cgroup` (a path relative to the cgroup root, as runc
/// Options' `ShimCgroup`): on a unified host `/sys/fs/cgroup/<cgroup>`, on
/// v1/hybrid every v1 hierarchy in which that cgroup exists. The cgroup
/// must already exist, as in the Go shim (which `Load`s, never creates).
pub fn join_cgroup(cgroup: &str, pid: u32) -> Result<()> {
    let fail = |reason: String| Error::Cgroup {
        cgroup: cgroup.to_string(),
        reason,
    };
    let unified = is_unified().map_err(|e| fail(format!("statfs {CGROUP_ROOT}: {e}")))?;
    let mounts = if unified {
        Vec::new()
    } else {
        mountinfo::read().map_err(|e| fail(format!("read mountinfo: {e}")))?
    };
    let dirs = target_dirs(unified, &mounts, cgroup).map_err(fail)?;
    let dirs: Vec<PathBuf> = dirs.into_iter().filter(|d| d.is_dir()).collect();
    if dirs.is_empty() {
        return Err(fail("no such cgroup".into()));
    }
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .map_err(|e| fail(format!("write {}: {e}", procs.display())))?;
    }
    Ok(())
}

fn is_unified() -> nix::Result<bool> {
    let st = nix::sys::statfs::statfs(CGROUP_ROOT)?;
    Ok(st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The cgroup directories to write to, existing or not. `cgroup` must be a
/// plain path: `..` could name a cgroup outside the hierarchy.
fn target_dirs(
    unified: bool,
    mounts: &[Mount],
    cgroup: &str,
) -> std::result::Result<Vec<PathBuf>, String> {
    let rel = Path::new(cgroup.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("path must not contain '..'".into());
    }
    if unified {
        return Ok(vec![Path::new(CGROUP_ROOT).join(rel)]);
    }
    Ok(mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .map(|m| m.mount_point.join(rel))
        .collect())
}

/// Sets the server's `oom_score_adj` to ours + 1 (capped at 1000). Best
/// effort: lowering a score needs CAP_SYS_RESOURCE, so EPERM/EACCES are
/// ignored; anything else is an error.
pub fn adjust_oom_score(pid: u32) -> Result<()> {
    let own = Path::new("/proc/self/oom_score_adj");
    let text = std::fs::read_to_string(own).map_err(|e| Error::path("read", own, e))?;
    let ours: i32 = text.trim().parse().map_err(|_| {
        Error::path(
            "parse",
            own,
            std::io::Error::new(std::io::ErrorKind::InvalidData, text.trim().to_string()),
        )
    })?;
    let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
    match std::fs::write(&path, child_score(ours).to_string()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => Ok(()),
        Err(e) => Err(Error::path("write", path, e)),
    }
}

fn child_score(ours: i32) -> i32 {
    ours.saturating_add(1).min(OOM_SCORE_ADJ_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<Mount> {
        mountinfo::parse(
            "\
25 22 0:23 / /sys/fs/cgroup ro - tmpfs tmpfs ro
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
28 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
",
        )
    }

    #[test]
    fn unified_is_one_dir() {
        assert_eq!(
            target_dirs(true, &[], "/system.slice/shim").unwrap(),
            vec![PathBuf::from("/sys/fs/cgroup/system.slice/shim")]
        );
    }

    #[test]
    fn v1_is_every_v1_hierarchy_not_the_unified_one() {
        assert_eq!(
            target_dirs(false, &mounts(), "pods/shim").unwrap(),
            vec![
                PathBuf::from("/sys/fs/cgroup/systemd/pods/shim"),
                PathBuf::from("/sys/fs/cgroup/memory/pods/shim"),
            ]
        );
    }

    #[test]
    fn dotdot_is_refused() {
        assert!(target_dirs(true, &[], "/a/../../etc").is_err());
    }

    #[test]
    fn missing_cgroup_is_an_error_naming_it() {
        let err = join_cgroup("/rs-shim-test-does-not-exist", std::process::id())
            .unwrap_err()
            .to_string();
        assert!(err.contains("rs-shim-test-does-not-exist"), "{err}");
    }

    #[test]
    fn score_is_ours_plus_one_capped() {
        assert_eq!(child_score(-999), -998);
        assert_eq!(child_score(0), 1);
        assert_eq!(child_score(1000), 1000);
    }
}
