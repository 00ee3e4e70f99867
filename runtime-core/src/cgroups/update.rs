//! Live changes to a container's limits ([`Cgroup::update`]), as `runc update` makes them.
//!
//! A running container must never be left half-updated: every value is checked before anything
//! is written; the control files about to change are read first; and when the kernel refuses a
//! write part way (a CPU that does not exist, a memory limit below what is in use), the files
//! already written get their old values back.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{cpu, cpuset, fs, memory, pids, unified, Cgroup, Error, Layout, Result};

/// A control file and what it held before the update.
#[derive(Debug)]
struct Saved {
    dir: PathBuf,
    file: String,
    value: String,
}

impl Cgroup {
    /// Applies `resources` (the container's complete, merged resources) to a live cgroup.
    /// Device rules are left alone, as runc's update does. Invalid values fail before any write
    /// ([`Error::InvalidValue`] naming the field); a write the kernel refuses fails after
    /// restoring what this call had written.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let mut r = resources.clone();
        r.set_devices(None);
        self.check(&r)?;
        let saved = self.snapshot(&r)?;
        match self.apply(&r) {
            Ok(()) => Ok(()),
            Err(e) => {
                restore(&saved);
                Err(explain(e))
            }
        }
    }

    /// The current values of every control file `apply(r)` would write.
    fn snapshot(&self, r: &LinuxResources) -> Result<Vec<Saved>> {
        let v2 = self.layout == Layout::V2;
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        let mut add = |dir: &Path, names: Vec<String>| {
            files.extend(names.into_iter().map(|n| (dir.to_path_buf(), n)));
        };
        if let Some(mem) = r.memory() {
            if let Some(dir) = self.dir_for("memory") {
                // Every file the plan may name; those the host lacks are skipped below.
                let plan = match v2 {
                    true => memory::plan_v2(mem, true)?,
                    false => memory::plan_v1(mem, Some(i64::MAX))?,
                };
                add(&dir, names(&plan));
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(dir) = self.dir_for("cpu") {
                let plan = match v2 {
                    true => cpu::plan_v2(c, Some("max 100000"))?,
                    false => cpu::plan_v1(c),
                };
                add(&dir, names(&plan));
            }
            if let Some(dir) = self.dir_for("cpuset") {
                add(&dir, names(&cpuset::plan(c)));
            }
        }
        if let (Some(p), Some(dir)) = (r.pids(), self.dir_for("pids")) {
            add(&dir, names(&pids::plan(p)));
        }
        if let (Some(map), true) = (r.unified(), v2) {
            add(&self.dirs[0].dir, map.keys().cloned().collect());
        }
        let mut saved = Vec::new();
        for (dir, file) in files {
            // A file that does not exist cannot be written either: apply reports it.
            if let Ok(value) = fs::read(&dir, &file) {
                saved.push(Saved { dir, file, value });
            }
        }
        Ok(saved)
    }
}

fn names(plan: &[fs::Setting]) -> Vec<String> {
    plan.iter().map(|(f, _)| f.to_string()).collect()
}

/// Checks every value without writing anything.
pub(super) fn check(r: &LinuxResources, v2: bool) -> Result<()> {
    if let Some(mem) = r.memory() {
        match v2 {
            true => memory::plan_v2(mem, true).map(drop)?,
            false => memory::plan_v1(mem, Some(i64::MAX)).map(drop)?,
        }
    }
    if let Some(c) = r.cpu() {
        if v2 {
            cpu::plan_v2(c, None)?;
        }
        if let Some(q) = c.quota() {
            if q < -1 {
                return Err(invalid(
                    "linux.resources.cpu.quota",
                    format!("{q} is neither a time in microseconds nor -1"),
                ));
            }
        }
        for (field, value) in [("cpus", c.cpus()), ("mems", c.mems())] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                check_list(&format!("linux.resources.cpu.{field}"), v.trim())?;
            }
        }
    }
    if let Some(map) = r.unified() {
        if !v2 {
            unified::reject_v1(map)?;
        }
    }
    Ok(())
}

/// A cpuset list: "0-3,5,7-8".
pub(crate) fn check_list(field: &str, list: &str) -> Result<()> {
    let bad = || {
        invalid(
            field,
            format!("{list:?} is not a list of numbers and ranges (e.g. \"0-2,4\")"),
        )
    };
    for item in list.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let num = |s: &str| {
            let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| s.parse::<u32>().ok()).flatten()
        };
        match (num(lo), num(hi)) {
            (Some(l), Some(h)) if l <= h => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn invalid(field: &str, reason: String) -> Error {
    Error::InvalidValue {
        field: field.into(),
        reason,
    }
}

/// Writes the saved values back. Some files constrain each other (v1 memory limit ≤
/// memory+swap), so what fails is retried after the others, a few rounds.
fn restore(saved: &[Saved]) {
    let mut left: Vec<&Saved> = saved.iter().rev().collect();
    for _ in 0..3 {
        left.retain(|s| fs::write(&s.dir, &s.file, &restore_value(s)).is_err());
        if left.is_empty() {
            return;
        }
    }
    for s in left {
        log::warn!(
            "update failed and {} could not be restored to {:?}",
            s.dir.join(&s.file).display(),
            s.value
        );
    }
}

/// What to write to put a file back: most files read as they are written; memory.oom_control
/// reads "oom_kill_disable N\n...".
fn restore_value(s: &Saved) -> String {
    match s.file.as_str() {
        "memory.oom_control" => s
            .value
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))
            .unwrap_or("0")
            .to_string(),
        _ => s.value.clone(),
    }
}

/// v1 refuses (EBUSY) a memory limit below what the cgroup uses now: say that.
fn explain(e: Error) -> Error {
    let Error::Write {
        path,
        value,
        source,
    } = &e
    else {
        return e;
    };
    let (field, usage_file) = match path.file_name().and_then(|n| n.to_str()) {
        Some("memory.limit_in_bytes") => ("limit", "memory.usage_in_bytes"),
        Some("memory.memsw.limit_in_bytes") => ("swap", "memory.memsw.usage_in_bytes"),
        _ => return e,
    };
    if source.raw_os_error() != Some(libc::EBUSY) {
        return e;
    }
    let usage = path
        .parent()
        .and_then(|d| fs::read(d, usage_file).ok())
        .map_or(String::new(), |u| format!(" (it uses {u} bytes now)"));
    invalid(
        &format!("linux.resources.memory.{field}"),
        format!(
            "the kernel refused {value} bytes: below the container's current memory use{usage}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::detect::tests::{HYBRID, V2};
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder};
    use std::fs as stdfs;

    fn cgroup(tmp: &Path, mountinfo: &str) -> Cgroup {
        let cg = Cgroup::from_parts(mountinfo, "0::/\n", tmp, "/c").unwrap();
        for h in &cg.dirs {
            stdfs::create_dir_all(&h.dir).unwrap();
        }
        cg
    }

    fn put(dir: &Path, files: &[(&str, &str)]) {
        for (f, v) in files {
            stdfs::write(dir.join(f), v).unwrap();
        }
    }

    fn resources(limit: i64, cpus: &str, pids: i64) -> LinuxResources {
        let mut r = LinuxResources::default();
        let mem = LinuxMemoryBuilder::default().limit(limit).build().unwrap();
        r.set_memory(Some(mem));
        let mut c = LinuxCpuBuilder::default().build().unwrap();
        c.set_cpus(Some(cpus.into()));
        r.set_cpu(Some(c));
        r.set_pids(Some(
            LinuxPidsBuilder::default().limit(pids).build().unwrap(),
        ));
        r
    }

    #[test]
    fn cpu_lists() {
        for ok in ["0", "0-3", "0,2-3,7", "1-1"] {
            check_list("f", ok).unwrap();
        }
        for bad in ["x", "", "3-1", "0,", "-1", "1-", "0 1", "+1"] {
            let e = check_list("linux.resources.cpu.cpus", bad).unwrap_err();
            assert!(e.to_string().contains("cpu.cpus"), "{bad}: {e}");
        }
    }

    #[test]
    fn invalid_value_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = cgroup(tmp.path(), HYBRID);
        let mem = cg.dir_for("memory").unwrap();
        put(&mem, &[("memory.limit_in_bytes", "1000")]);
        put(&cg.dir_for("pids").unwrap(), &[("pids.max", "max")]);
        let err = cg.update(&resources(64 << 20, "x", 7)).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
        assert_eq!(fs::read(&mem, "memory.limit_in_bytes").unwrap(), "1000");
        assert_eq!(
            fs::read(&cg.dir_for("pids").unwrap(), "pids.max").unwrap(),
            "max"
        );
        let err = cg.update(&resources(-7, "0", 7)).unwrap_err();
        assert!(err.to_string().contains("memory.limit"), "{err}");
    }

    #[test]
    fn refused_write_restores_earlier_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = cgroup(tmp.path(), HYBRID);
        let mem = cg.dir_for("memory").unwrap();
        put(&mem, &[("memory.limit_in_bytes", "1000")]);
        // cpuset.cpus is a directory here, so writing it fails after memory was written.
        stdfs::create_dir_all(cg.dir_for("cpuset").unwrap().join("cpuset.cpus")).unwrap();
        let err = cg.update(&resources(64 << 20, "0", 7)).unwrap_err();
        assert!(err.to_string().contains("cpuset.cpus"), "{err}");
        assert_eq!(fs::read(&mem, "memory.limit_in_bytes").unwrap(), "1000");
    }

    #[test]
    fn update_writes_and_skips_devices() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = cgroup(tmp.path(), V2);
        let dir = cg.dir_for("memory").unwrap();
        put(
            &dir,
            &[
                ("memory.max", "max"),
                ("cpuset.cpus", ""),
                ("pids.max", "max"),
            ],
        );
        let mut r = resources(64 << 20, "0-1", 7);
        r.set_devices(Some(Vec::new()));
        cg.update(&r).unwrap();
        assert_eq!(
            fs::read(&dir, "memory.max").unwrap(),
            (64 << 20).to_string()
        );
        assert_eq!(fs::read(&dir, "cpuset.cpus").unwrap(), "0-1");
        assert_eq!(fs::read(&dir, "pids.max").unwrap(), "7");
    }

    #[test]
    fn ebusy_on_memory_limit_is_explained() {
        let e = Error::Write {
            path: PathBuf::from("/nonexistent/memory.limit_in_bytes"),
            value: "4096".into(),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        };
        let msg = explain(e).to_string();
        assert!(
            msg.contains("memory.limit")
                && msg.contains("4096")
                && msg.contains("current memory use"),
            "{msg}"
        );
        let other = Error::Write {
            path: PathBuf::from("/x/pids.max"),
            value: "1".into(),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert!(matches!(explain(other), Error::Write { .. }));
    }

    #[test]
    fn oom_control_restores_its_flag() {
        let s = Saved {
            dir: PathBuf::new(),
            file: "memory.oom_control".into(),
            value: "oom_kill_disable 1\nunder_oom 0".into(),
        };
        assert_eq!(restore_value(&s), "1");
    }
}
