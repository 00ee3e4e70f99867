//! cgroups: one container's control groups on a v1, hybrid or v2 host.
//!
//! [`Cgroup`] is the whole public surface: it is computed from the host layout and the OCI
//! `linux.cgroupsPath` ([`Cgroup::for_path`]), creates its directories ([`Cgroup::create`]),
//! applies `linux.resources` ([`Cgroup::apply`]), takes processes ([`Cgroup::add_pid`]) and
//! removes only what it created ([`Cgroup::destroy`]). It is plain data so the container's
//! `state.json` can carry it from `create` to `delete`.
//!
//! Each controller lives in its own file as functions of (its part of the resources, a
//! directory), so unit tests run against a temp directory of fake control files.

mod blkio;
mod cpu;
mod cpuset;
mod detect;
mod devices;
mod devices_bpf;
mod ebpf;
mod extra;
mod freezer;
mod fs;
mod hugetlb;
mod memory;
mod net;
pub mod oom;
mod pids;
mod rdma;
mod stats;
mod unified;
mod update;

#[cfg(test)]
mod root_tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use detect::{FsType, Mount};

pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryEntry, MemoryStats, PidsStats, Stats,
    Throttling, UNLIMITED,
};

/// Errors of the cgroup module; each names the file, path or field involved.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// Reading, creating or removing `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The kernel (or filesystem) refused `value` written to the control file `path`.
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    /// A bpf(2) step (load, attach, ...) of the cgroup v2 device filter failed.
    #[error("{what}: {source}")]
    Bpf {
        what: String,
        source: std::io::Error,
    },
    /// A resource value in the spec is out of range or inconsistent.
    #[error("invalid {field}: {reason}")]
    InvalidValue { field: String, reason: String },
    /// `linux.cgroupsPath` cannot be used (empty, "..", not visible from this process).
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// /proc/self/mountinfo or /proc/self/cgroup could not be understood.
    #[error("cannot parse {what}: {reason}")]
    Parse { what: String, reason: String },
    /// The request needs something this host or this runtime does not provide.
    #[error("unsupported: {what}")]
    Unsupported { what: String },
}

/// Result of cgroup operations.
pub type Result<T> = std::result::Result<T, Error>;

/// How the host mounts its cgroup filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Only v1 hierarchies (one per controller or co-mounted group).
    V1,
    /// v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified) without them.
    Hybrid,
    /// One cgroup2 hierarchy holds every controller.
    V2,
}

/// A host hierarchy as the container should mount it (see [`Cgroup::hierarchies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Last component of the host mount point, e.g. "cpu", "cpu,cpuacct", "systemd", "unified".
    pub name: String,
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data, e.g. "cpu,cpuacct", "none,name=systemd", "" for cgroup2.
    pub data: String,
    /// This container's directory in the hierarchy.
    pub dir: PathBuf,
}

/// One hierarchy and the container's directory in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HierarchyDir {
    mount: Mount,
    dir: PathBuf,
}

/// A container's cgroup across every hierarchy of the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    layout: Layout,
    dirs: Vec<HierarchyDir>,
    /// Directories `create` made, in creation order (parents first); `destroy` removes these only.
    #[serde(default)]
    created: Vec<PathBuf>,
}

/// How long `destroy` waits for exiting processes to leave a cgroup.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(1);

impl Cgroup {
    /// Detects the host layout from /proc/self/mountinfo and computes the directories for an
    /// OCI `linux.cgroupsPath`: absolute ("/a/b") is relative to each hierarchy's root;
    /// relative ("a/b") is joined to this process's own cgroup (from /proc/self/cgroup).
    /// The systemd form "slice:prefix:name" is `Unsupported`; ".." is rejected.
    pub fn for_path(cgroups_path: &str) -> Result<Cgroup> {
        let mountinfo = fs::read_path(Path::new("/proc/self/mountinfo"))?;
        let own = fs::read_path(Path::new("/proc/self/cgroup"))?;
        Self::from_parts(&mountinfo, &own, Path::new("/"), cgroups_path)
    }

    /// Same as [`Cgroup::for_path`] from explicit inputs: the text of /proc/self/mountinfo and
    /// /proc/self/cgroup, and `root`, a directory prepended to every mount point ("/" for the
    /// real host, a temp dir in tests).
    pub fn from_parts(
        mountinfo: &str,
        proc_self_cgroup: &str,
        root: &Path,
        cgroups_path: &str,
    ) -> Result<Cgroup> {
        let target = detect::parse_cgroups_path(cgroups_path)?;
        let (layout, mounts) = detect::select(&detect::parse_mountinfo(mountinfo)?)?;
        let own = if target.absolute {
            Vec::new()
        } else {
            detect::parse_proc_cgroup(proc_self_cgroup)?
        };
        let dirs = mounts
            .into_iter()
            .map(|mut mount| {
                let rel = mount
                    .mount_point
                    .strip_prefix("/")
                    .unwrap_or(&mount.mount_point);
                mount.mount_point = root.join(rel);
                let dir = detect::resolve(&mount, &target, &own)?;
                Ok(HierarchyDir { mount, dir })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cgroup {
            layout,
            dirs,
            created: Vec::new(),
        })
    }

    /// The host layout this cgroup was computed for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Creates the container's directory in every hierarchy (mkdir -p) and remembers which
    /// directories it made. v1 cpuset levels inherit cpus/mems from their parent; on v2 the
    /// parents' `cgroup.subtree_control` enable every available controller. On error, what
    /// this call created is removed again.
    pub fn create(&mut self) -> Result<()> {
        let before = self.created.len();
        let result = self.create_dirs();
        if result.is_err() {
            let made = Cgroup {
                created: self.created.split_off(before),
                ..self.clone()
            };
            if let Err(e) = made.destroy() {
                log::warn!("cleaning up after failed cgroup create: {e}");
            }
        }
        result
    }

    fn create_dirs(&mut self) -> Result<()> {
        for h in &self.dirs {
            let first_new = self.created.len();
            fs::mkdir_p(&h.mount.mount_point, &h.dir, &mut self.created)?;
            let new = &self.created[first_new..];
            match h.mount.fs {
                // Every level, not only the new ones: a parent another
                // create just made may still be empty (ENOSPC on attach).
                FsType::Cgroup if h.mount.has("cpuset") && !new.is_empty() => {
                    cpuset::inherit_v1(&cpuset::levels(&h.mount.mount_point, &h.dir))?
                }
                FsType::Cgroup2 if self.layout == Layout::V2 => {
                    fs::enable_controllers(&h.mount.mount_point, &h.dir)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies `linux.resources`. Unset fields are left alone; a value the kernel rejects gives
    /// [`Error::Write`] naming the file and the value.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let v2 = self.layout == Layout::V2;
        if let Some(mem) = resources.memory() {
            let dir = self.controller_dir("memory", "memory limits")?;
            match v2 {
                true => memory::apply_v2(mem, &dir)?,
                false => memory::apply_v1(mem, &dir)?,
            }
        }
        if let Some(cpu) = resources.cpu() {
            if cpu::has_settings(cpu) {
                let dir = self.controller_dir("cpu", "cpu limits")?;
                match v2 {
                    true => cpu::apply_v2(cpu, &dir)?,
                    false => cpu::apply_v1(cpu, &dir)?,
                }
            }
            if cpuset::has_settings(cpu) {
                cpuset::apply(cpu, &self.controller_dir("cpuset", "cpus/mems")?)?;
            }
        }
        if let Some(p) = resources.pids() {
            pids::apply(p, &self.controller_dir("pids", "pids limit")?)?;
        }
        if let Some(rules) = resources.devices() {
            match v2 {
                true => devices_bpf::apply(rules, &self.dirs[0].dir)?,
                false => {
                    devices::apply_v1(rules, &self.controller_dir("devices", "device rules")?)?
                }
            }
        }
        if let Some(map) = resources.unified() {
            match v2 {
                true => unified::apply(map, &self.dirs[0].dir)?,
                false => unified::reject_v1(map)?,
            }
        }
        self.apply_extra(resources)
    }

    /// Puts process `pid` into the container's directory of every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for h in &self.dirs {
            fs::write(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Every pid in the container's cgroup and its sub-cgroups (v1: read from the pids,
    /// freezer or memory hierarchy, whichever is mounted).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = match self.layout {
            Layout::V2 => self.dirs.first().map(|h| h.dir.clone()),
            Layout::V1 | Layout::Hybrid => ["pids", "freezer", "memory"]
                .iter()
                .find_map(|c| self.dir_for(c))
                .or_else(|| self.dirs.first().map(|h| h.dir.clone())),
        };
        let dir = dir.ok_or_else(|| Error::Unsupported {
            what: "listing pids: no cgroup hierarchy".into(),
        })?;
        let mut pids = Vec::new();
        fs::procs_recursive(&dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the directories this cgroup created, deepest first. Sub-cgroups the container
    /// made inside its own directory go too; a created parent that another cgroup now shares is
    /// left in place. EBUSY (processes still leaving) is retried for about a second; missing
    /// directories are fine.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        let mut first_err = None;
        for dir in self.created.iter().rev() {
            let is_leaf = self.dirs.iter().any(|h| &h.dir == dir);
            let res = if is_leaf {
                fs::remove_tree(dir, deadline)
            } else {
                fs::remove_if_unused(dir)
            };
            if let Err(e) = res {
                log::warn!("cgroup destroy: {e}");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The hierarchies to mount inside the container, one per host hierarchy.
    pub fn hierarchies(&self) -> Vec<Hierarchy> {
        self.dirs
            .iter()
            .map(|h| Hierarchy {
                name: h
                    .mount
                    .mount_point
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                fstype: h.mount.fs.as_str().to_string(),
                data: h.mount.mount_data(),
                dir: h.dir.clone(),
            })
            .collect()
    }

    /// SIGKILLs every process in the cgroup through `cgroup.kill` (cgroup2
    /// only, Linux 5.14); false when there is none (v1, hybrid, older
    /// kernels) or the write failed.
    pub fn kill_all(&self) -> bool {
        if self.layout != Layout::V2 {
            return false;
        }
        self.dirs
            .first()
            .is_some_and(|d| std::fs::write(d.dir.join("cgroup.kill"), "1").is_ok())
    }

    /// On a cgroup2-only host, the container's directory opened for
    /// clone3(CLONE_INTO_CGROUP); `None` elsewhere (v1 hierarchies need
    /// the pid written) or when it cannot be opened.
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        if self.layout != Layout::V2 {
            return None;
        }
        let dir = self.dirs.first()?;
        nix::fcntl::open(
            &dir.dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    }

    /// The directory holding v1 `controller`'s files (e.g. "memory", "name=systemd"), or on v2
    /// the single directory. On hybrid hosts "" names the unified directory.
    pub fn dir_for(&self, controller: &str) -> Option<PathBuf> {
        let found = match self.layout {
            Layout::V2 => self.dirs.first(),
            Layout::V1 | Layout::Hybrid if controller.is_empty() => {
                self.dirs.iter().find(|h| h.mount.fs == FsType::Cgroup2)
            }
            Layout::V1 | Layout::Hybrid => self.dirs.iter().find(|h| h.mount.has(controller)),
        };
        found.map(|h| h.dir.clone())
    }

    fn controller_dir(&self, controller: &str, purpose: &str) -> Result<PathBuf> {
        self.dir_for(controller).ok_or_else(|| Error::Unsupported {
            what: format!("{purpose}: the {controller} cgroup controller is not mounted"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect::tests::{HYBRID, V1_COMOUNT, V2};
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };
    use std::fs as stdfs;

    /// A v1 host without cpuset (new temp dirs have no cpuset files to inherit into).
    const V1_SMALL: &str = "\
1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory
2 0 0:2 / /cg/pids rw - cgroup cgroup rw,pids
3 0 0:3 / /cg/systemd rw - cgroup cgroup rw,name=systemd
";

    fn at(tmp: &Path, mountinfo: &str, path: &str) -> Cgroup {
        let cg = Cgroup::from_parts(mountinfo, "0::/\n", tmp, path).unwrap();
        for h in &cg.dirs {
            stdfs::create_dir_all(&h.mount.mount_point).unwrap();
        }
        cg
    }

    fn put(dir: &Path, files: &[(&str, &str)]) {
        stdfs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            stdfs::write(dir.join(f), v).unwrap();
        }
    }

    fn resources() -> LinuxResources {
        let mut cpu = LinuxCpuBuilder::default().build().unwrap();
        cpu.set_shares(Some(512));
        cpu.set_quota(Some(50_000));
        cpu.set_period(Some(100_000));
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
            .cpu(cpu)
            .build()
            .unwrap()
    }

    #[test]
    fn hierarchies_on_hybrid_host() {
        let cg = Cgroup::from_parts(HYBRID, "", Path::new("/"), "/rs/c1").unwrap();
        assert_eq!(cg.layout(), Layout::Hybrid);
        let hs = cg.hierarchies();
        assert_eq!(hs.len(), 10);
        assert_eq!(hs[0].name, "cpu");
        assert_eq!(
            (hs[0].fstype.as_str(), hs[0].data.as_str()),
            ("cgroup", "cpu")
        );
        let systemd = hs.iter().find(|h| h.name == "systemd").unwrap();
        assert_eq!(systemd.data, "none,name=systemd");
        assert_eq!(systemd.dir, Path::new("/sys/fs/cgroup/systemd/rs/c1"));
        let unified = hs.last().unwrap();
        assert_eq!(
            (unified.name.as_str(), unified.fstype.as_str()),
            ("unified", "cgroup2")
        );
        assert_eq!(unified.data, "");
        assert_eq!(
            cg.dir_for("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/rs/c1")
        );
        assert_eq!(cg.dir_for("").unwrap(), unified.dir);
        assert!(cg.dir_for("hugetlb").is_none());
    }

    #[test]
    fn comounted_and_v2_dirs() {
        let v1 = Cgroup::from_parts(V1_COMOUNT, "", Path::new("/"), "/c").unwrap();
        assert_eq!(v1.dir_for("cpu"), v1.dir_for("cpuacct"));
        let h = v1.hierarchies();
        let cpu = h.iter().find(|h| h.data == "cpu,cpuacct").unwrap();
        assert_eq!(cpu.name, "cpu,cpuacct");
        let v2 = Cgroup::from_parts(V2, "0::/user.slice/me\n", Path::new("/"), "x").unwrap();
        assert_eq!(v2.layout(), Layout::V2);
        let dir = Path::new("/sys/fs/cgroup/user.slice/me/x");
        assert_eq!(v2.dir_for("memory").unwrap(), dir);
        assert_eq!(v2.hierarchies()[0].dir, dir);
    }

    #[test]
    fn destroy_removes_only_created_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cg = at(tmp.path(), V1_SMALL, "/shared/c1");
        stdfs::create_dir(tmp.path().join("cg/memory/shared")).unwrap();
        cg.create().unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        let cg: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(cg.created.len(), 5, "{:?}", cg.created);
        for h in &cg.dirs {
            assert!(h.dir.is_dir());
        }
        // A sibling cgroup appears under the pids parent we created: that parent stays.
        stdfs::create_dir(tmp.path().join("cg/pids/shared/other")).unwrap();
        stdfs::create_dir(tmp.path().join("cg/systemd/shared/c1/sub")).unwrap();
        cg.destroy().unwrap();
        for h in &cg.dirs {
            assert!(!h.dir.exists(), "{}", h.dir.display());
        }
        assert!(tmp.path().join("cg/memory/shared").is_dir(), "pre-existing");
        assert!(tmp.path().join("cg/pids/shared/other").is_dir(), "shared");
        assert!(!tmp.path().join("cg/systemd/shared").exists(), "ours");
        cg.destroy().unwrap();
    }

    #[test]
    fn failed_create_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        // Temp cpuset dirs lack cpuset.cpus, so inheriting fails after the mkdirs.
        let mi = format!("{V1_SMALL}4 0 0:4 / /cg/cpuset rw - cgroup cgroup rw,cpuset\n");
        let mut cg = at(tmp.path(), &mi, "/a/b");
        assert!(cg.create().is_err());
        assert!(cg.created.is_empty());
        for h in &cg.dirs {
            assert!(!h.mount.mount_point.join("a").exists());
        }
    }

    #[test]
    fn apply_v2_writes_single_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = at(tmp.path(), V2, "/c");
        let dir = cg.dir_for("memory").unwrap();
        put(
            &dir,
            &[
                ("memory.max", "max"),
                ("pids.max", "max"),
                ("cpu.weight", "100"),
                ("cpu.max", "max 100000"),
            ],
        );
        cg.apply(&resources()).unwrap();
        let read = |f| fs::read(&dir, f).unwrap();
        assert_eq!(read("memory.max"), (64 << 20).to_string());
        assert_eq!(read("pids.max"), "20");
        assert_eq!(read("cpu.weight"), "20");
        assert_eq!(read("cpu.max"), "50000 100000");
    }

    #[test]
    fn apply_hybrid_writes_each_controller_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = at(tmp.path(), HYBRID, "/c");
        let mem = [
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
        ];
        put(&cg.dir_for("memory").unwrap(), &mem);
        put(&cg.dir_for("pids").unwrap(), &[("pids.max", "max")]);
        let cpu = [
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "1"),
        ];
        put(&cg.dir_for("cpu").unwrap(), &cpu);
        cg.apply(&resources()).unwrap();
        let read = |c, f| fs::read(&cg.dir_for(c).unwrap(), f).unwrap();
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64 << 20).to_string()
        );
        assert_eq!(read("pids", "pids.max"), "20");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    }

    #[test]
    fn missing_controller_is_unsupported() {
        let tmp = tempfile::tempdir().unwrap();
        let mi = "1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n";
        let cg = at(tmp.path(), mi, "/c");
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(3).build().unwrap())
            .build()
            .unwrap();
        let err = cg.apply(&r).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
        assert!(err.to_string().contains("pids"), "{err}");
    }

    #[test]
    fn add_pid_and_pids() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = at(tmp.path(), V1_SMALL, "/c");
        for h in &cg.dirs {
            put(&h.dir, &[("cgroup.procs", "")]);
        }
        cg.add_pid(4242).unwrap();
        for h in &cg.dirs {
            assert_eq!(fs::read(&h.dir, "cgroup.procs").unwrap(), "4242");
        }
        let pids_dir = cg.dir_for("pids").unwrap();
        put(&pids_dir.join("sub"), &[("cgroup.procs", "7\n4242\n")]);
        assert_eq!(cg.pids().unwrap(), vec![7, 4242]);
    }
}
