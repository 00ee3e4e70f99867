//! cpuset controller: `linux.resources.cpu.cpus` / `.mems` → cpuset.cpus / cpuset.mems (same
//! files on v1 and v2), and the v1 rule that a new cpuset cgroup starts empty and must be
//! filled from its parent before any process may join it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxCpu;

use super::fs::{self, Setting};
use super::{Error, Result};

const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

pub(crate) fn has_settings(cpu: &LinuxCpu) -> bool {
    !plan(cpu).is_empty()
}

pub(crate) fn apply(cpu: &LinuxCpu, dir: &Path) -> Result<()> {
    fs::write_all(dir, &plan(cpu))
}

/// Empty strings mean unset, as in runc.
pub(crate) fn plan(cpu: &LinuxCpu) -> Vec<Setting> {
    let values = [cpu.cpus(), cpu.mems()];
    FILES
        .iter()
        .zip(values)
        .filter_map(|(file, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (*file, v.to_string()))
        })
        .collect()
}

/// Every directory from just below `mount_point` down to `dir`, top down.
pub(crate) fn levels(mount_point: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| d.starts_with(mount_point) && *d != mount_point)
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// v1: copies cpuset.cpus and cpuset.mems from each directory's parent, top
/// down, where the directory's own value is still empty.
pub(crate) fn inherit_v1(new_dirs: &[PathBuf]) -> Result<()> {
    for dir in new_dirs {
        let parent = dir.parent().ok_or_else(|| Error::InvalidPath {
            path: dir.display().to_string(),
            reason: "cpuset directory without a parent".into(),
        })?;
        for file in FILES {
            if fs::read(dir, file)?.is_empty() {
                fs::write(dir, file, &fs::read(parent, file)?)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxCpuBuilder;

    #[test]
    fn writes_cpus_and_mems() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("cpuset.cpus"), "0-7").unwrap();
        std::fs::write(d.join("cpuset.mems"), "0").unwrap();
        let mut c = LinuxCpuBuilder::default().build().unwrap();
        assert!(!has_settings(&c));
        c.set_cpus(Some("0-1".into()));
        c.set_mems(Some(String::new()));
        assert!(has_settings(&c));
        apply(&c, d).unwrap();
        assert_eq!(fs::read(d, "cpuset.cpus").unwrap(), "0-1");
        assert_eq!(fs::read(d, "cpuset.mems").unwrap(), "0", "empty is unset");
    }

    #[test]
    fn new_levels_inherit_from_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let a = root.join("a");
        let b = a.join("b");
        std::fs::create_dir_all(&b).unwrap();
        for (dir, cpus, mems) in [(root, "0-3", "0"), (&a, "", ""), (&b, "\n", "1")] {
            std::fs::write(dir.join("cpuset.cpus"), cpus).unwrap();
            std::fs::write(dir.join("cpuset.mems"), mems).unwrap();
        }
        // `a` pre-existed (another create made it and has not filled it
        // yet); only `b` is new, but every level below the root is filled.
        assert_eq!(levels(root, &b), vec![a.clone(), b.clone()]);
        inherit_v1(&levels(root, &b)).unwrap();
        assert_eq!(fs::read(&a, "cpuset.cpus").unwrap(), "0-3");
        assert_eq!(fs::read(&b, "cpuset.cpus").unwrap(), "0-3");
        assert_eq!(fs::read(&b, "cpuset.mems").unwrap(), "1", "own value kept");
    }
}
