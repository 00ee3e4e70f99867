//! Statistics of a container's cgroup: memory, cpu, pids, block I/O and hugetlb, read from
//! the control files of a v1, hybrid or v2 host (the readers are in `stats/v1.rs` and
//! `stats/v2.rs`). The types follow runc's `libcontainer/cgroups` `Stats`, but every
//! figure a host does not provide (a controller not mounted, a file an older kernel lacks)
//! is `None` or empty rather than a made-up zero; the front doors decide how to show it.
//!
//! Values are reported as the kernel states them, with two normalisations: times are in
//! nanoseconds (v2's microseconds and v1's `cpuacct.stat` ticks are converted), and a
//! limit of "max" is [`UNLIMITED`]. v1's own "no limit" (a page-rounded `i64::MAX`) is
//! reported as read, as runc does.

mod v1;
mod v2;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::{Cgroup, Error, Layout, Result};

/// A limit of "max" (no limit).
pub const UNLIMITED: u64 = u64::MAX;

/// One sample of a cgroup's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The host layout the figures come from (v2 files mean v2 semantics, e.g. `swap`).
    pub layout: Layout,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    pub blkio: Option<BlkioStats>,
    /// Per huge page size ("2MB", "1GB"); empty without the hugetlb controller.
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU time, all in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// v1 `cpuacct.usage`; v2 `usage_usec`.
    pub total: Option<u64>,
    /// v1 `cpuacct.stat` user; v2 `user_usec`.
    pub user: Option<u64>,
    /// v1 `cpuacct.stat` system; v2 `system_usec`.
    pub kernel: Option<u64>,
    /// v1 only: `cpuacct.usage_percpu`.
    pub per_cpu: Vec<u64>,
    /// v1 only: the user and system columns of `cpuacct.usage_all`.
    pub per_cpu_user: Vec<u64>,
    pub per_cpu_kernel: Vec<u64>,
    /// CFS bandwidth control; None when the cpu controller does not report it.
    pub throttling: Option<Throttling>,
}

/// CFS bandwidth figures from `cpu.stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttling {
    /// Enforcement intervals that have elapsed.
    pub periods: u64,
    /// Intervals in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, ns.
    pub throttled_time: u64,
}

/// Usage, peak, limit and failure count of one memory counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub usage: Option<u64>,
    /// Peak usage: v1 `max_usage_in_bytes`, v2 `.peak` (kernel 5.19+).
    pub max: Option<u64>,
    pub limit: Option<u64>,
    /// v1 `failcnt`; v2 the `max` count of `memory.events`.
    pub failcnt: Option<u64>,
}

/// Memory of the cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Page cache: v1 `cache`, v2 `file` of memory.stat.
    pub cache: Option<u64>,
    /// v1 `memory.*`; v2 `memory.{current,peak,max}`.
    pub usage: Option<MemoryEntry>,
    /// v1: memory+swap (`memory.memsw.*`); v2: swap alone (`memory.swap.*`).
    pub swap: Option<MemoryEntry>,
    /// v1 only: `memory.kmem.*`.
    pub kernel: Option<MemoryEntry>,
    /// v1 only: `memory.kmem.tcp.*`.
    pub kernel_tcp: Option<MemoryEntry>,
    /// Every counter of memory.stat.
    pub stat: BTreeMap<String, u64>,
    /// v2: `memory.events` (low, high, max, oom, oom_kill, ...); v1: `memory.oom_control`
    /// (oom_kill_disable, under_oom, oom_kill).
    pub events: BTreeMap<String, u64>,
}

/// Processes in the cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: Option<u64>,
    /// `pids.max`; [`UNLIMITED`] for "max".
    pub limit: Option<u64>,
}

/// Block I/O per device and operation, as runc reports it: v1 from the first blkio policy
/// that has files (CFQ, then BFQ, then throttle), v2 from io.stat with the operations
/// "Read", "Write" and "Discard".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard", "Total".
    pub op: String,
    pub value: u64,
}

/// One huge page size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HugetlbStats {
    pub usage: Option<u64>,
    /// Peak usage (v1 `max_usage_in_bytes`; v2 has none).
    pub max: Option<u64>,
    /// v1 `limit_in_bytes`; v2 `.max`.
    pub limit: Option<u64>,
    /// v1 `failcnt`; v2 the `max` count of `.events`.
    pub failcnt: Option<u64>,
}

impl Cgroup {
    /// Reads the cgroup's statistics. Controllers that are not mounted, and files this
    /// kernel does not have, leave their figures out; a file that exists but cannot be read
    /// or parsed is an error naming it.
    pub fn stats(&self) -> Result<Stats> {
        match self.layout {
            Layout::V2 => match self.dirs.first() {
                Some(h) => v2::stats(&h.dir),
                None => Err(Error::Unsupported {
                    what: "statistics: no cgroup hierarchy".into(),
                }),
            },
            Layout::V1 | Layout::Hybrid => {
                let dir = |c: &str| self.dir_for(c);
                let mut s = v1::stats(&v1::Dirs {
                    memory: dir("memory"),
                    cpu: dir("cpu"),
                    cpuacct: dir("cpuacct"),
                    pids: dir("pids"),
                    blkio: dir("blkio"),
                    hugetlb: dir("hugetlb"),
                })?;
                s.layout = self.layout;
                Ok(s)
            }
        }
    }
}

impl Stats {
    fn empty(layout: Layout) -> Stats {
        Stats {
            layout,
            cpu: None,
            memory: None,
            pids: None,
            blkio: None,
            hugetlb: BTreeMap::new(),
        }
    }
}

// ---- control-file readers shared by v1 and v2: a missing file is None, not an error.

/// The text of `dir/file`, None if it does not exist.
fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        // ENODEV: the cgroup was removed while we read (the container just exited).
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => {
            Ok(None)
        }
        Err(source) => Err(Error::Io { path, source }),
    }
}

fn parse_err(dir: &Path, file: &str, reason: String) -> Error {
    Error::Parse {
        what: dir.join(file).display().to_string(),
        reason,
    }
}

/// A number, or "max" as [`UNLIMITED`].
fn parse_value(s: &str) -> Option<u64> {
    match s {
        "max" => Some(UNLIMITED),
        s => s.parse().ok(),
    }
}

/// A single-value file ("123" or "max").
fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    let t = text.trim();
    parse_value(t)
        .map(Some)
        .ok_or_else(|| parse_err(dir, file, format!("{t:?} is not a number")))
}

/// A flat keyed file: "key value" per line (memory.stat, cpu.stat, memory.events).
fn parse_flat(text: &str) -> std::result::Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut w = line.split_whitespace();
        let (Some(k), Some(v), None) = (w.next(), w.next(), w.next()) else {
            return Err(format!("malformed line {line:?}"));
        };
        let v = parse_value(v).ok_or_else(|| format!("malformed line {line:?}"))?;
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

/// A flat keyed file, None if it does not exist.
fn read_flat(dir: &Path, file: &str) -> Result<Option<BTreeMap<String, u64>>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    parse_flat(&text)
        .map(Some)
        .map_err(|r| parse_err(dir, file, r))
}

/// "MAJ:MIN" of a device.
fn parse_device(s: &str) -> Option<(u64, u64)> {
    let (maj, min) = s.split_once(':')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

/// Page sizes that have `hugetlb.<size>.<suffix>` in `dir`, sorted ("1GB", "2MB").
fn hugepage_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut sizes: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            // "hugetlb.2MB.rsvd.usage_in_bytes" is the reservation counter, not usage.
            (!size.is_empty() && !size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Writes `files` (name, content) into `dir`, creating it.
    pub(crate) fn put(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    #[test]
    fn values_and_max() {
        let tmp = tempfile::tempdir().unwrap();
        put(tmp.path(), &[("a", "42\n"), ("b", "max\n"), ("c", "x1\n")]);
        assert_eq!(read_u64(tmp.path(), "a").unwrap(), Some(42));
        assert_eq!(read_u64(tmp.path(), "b").unwrap(), Some(UNLIMITED));
        assert_eq!(read_u64(tmp.path(), "missing").unwrap(), None);
        let err = read_u64(tmp.path(), "c").unwrap_err().to_string();
        assert!(err.contains("/c") && err.contains("\"x1\""), "{err}");
    }

    #[test]
    fn flat_keyed() {
        let m = parse_flat("cache 4096\nrss 8192\n\n").unwrap();
        assert_eq!(m.get("cache"), Some(&4096));
        assert_eq!(m.get("rss"), Some(&8192));
        assert!(parse_flat("cache\n").is_err());
        assert!(parse_flat("cache 1 2\n").is_err());
        assert!(parse_flat("cache x\n").is_err());
    }

    #[test]
    fn hugepage_size_discovery() {
        let tmp = tempfile::tempdir().unwrap();
        put(
            tmp.path(),
            &[
                ("hugetlb.2MB.usage_in_bytes", "0"),
                ("hugetlb.1GB.usage_in_bytes", "0"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0"),
                ("hugetlb.2MB.limit_in_bytes", "0"),
            ],
        );
        let sizes = hugepage_sizes(tmp.path(), ".usage_in_bytes").unwrap();
        assert_eq!(sizes, ["1GB", "2MB"]);
        assert!(hugepage_sizes(&tmp.path().join("nope"), ".current")
            .unwrap()
            .is_empty());
    }
}
