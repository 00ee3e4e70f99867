//! cgroup v1 statistics, each controller from its own hierarchy (cpu and cpuacct may be
//! one hierarchy or two).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    hugepage_sizes, parse_device, parse_err, read_flat, read_opt, read_u64, BlkioEntry, BlkioStats,
    CpuStats, HugetlbStats, MemoryEntry, MemoryStats, PidsStats, Stats, Throttling,
};
use crate::cgroups::{Layout, Result};

/// The container's directory in each hierarchy that has statistics (None: not mounted).
pub(super) struct Dirs {
    pub memory: Option<PathBuf>,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
    pub hugetlb: Option<PathBuf>,
}

/// blkio policies in the order runc reads them: CFQ, BFQ, then the throttle layer (which
/// sees every device whatever its scheduler).
const BLKIO_POLICIES: [&str; 3] = ["blkio", "blkio.bfq", "blkio.throttle"];

pub(super) fn stats(d: &Dirs) -> Result<Stats> {
    let mut s = Stats::empty(Layout::V1);
    if let Some(dir) = &d.memory {
        s.memory = memory(dir)?;
    }
    s.cpu = cpu(d.cpu.as_deref(), d.cpuacct.as_deref())?;
    if let Some(dir) = &d.pids {
        s.pids = pids(dir)?;
    }
    if let Some(dir) = &d.blkio {
        s.blkio = blkio(dir)?;
    }
    if let Some(dir) = &d.hugetlb {
        s.hugetlb = hugetlb(dir)?;
    }
    Ok(s)
}

/// `<prefix>.usage_in_bytes`, `.max_usage_in_bytes`, `.limit_in_bytes`, `.failcnt`; None
/// without the usage file (e.g. memsw when swap accounting is off).
fn entry(dir: &Path, prefix: &str) -> Result<Option<MemoryEntry>> {
    let Some(usage) = read_u64(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    Ok(Some(MemoryEntry {
        usage: Some(usage),
        max: read_u64(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        limit: read_u64(dir, &format!("{prefix}.limit_in_bytes"))?,
        failcnt: read_u64(dir, &format!("{prefix}.failcnt"))?,
    }))
}

fn memory(dir: &Path) -> Result<Option<MemoryStats>> {
    let usage = entry(dir, "memory")?;
    let stat = read_flat(dir, "memory.stat")?;
    if usage.is_none() && stat.is_none() {
        return Ok(None);
    }
    let stat = stat.unwrap_or_default();
    Ok(Some(MemoryStats {
        cache: stat.get("cache").copied(),
        usage,
        swap: entry(dir, "memory.memsw")?,
        kernel: entry(dir, "memory.kmem")?,
        kernel_tcp: entry(dir, "memory.kmem.tcp")?,
        events: read_flat(dir, "memory.oom_control")?.unwrap_or_default(),
        stat,
    }))
}

fn cpu(cpu: Option<&Path>, acct: Option<&Path>) -> Result<Option<CpuStats>> {
    let mut c = CpuStats::default();
    if let Some(dir) = acct {
        c.total = read_u64(dir, "cpuacct.usage")?;
        if let Some(stat) = read_flat(dir, "cpuacct.stat")? {
            let tck = clock_ticks();
            c.user = stat.get("user").map(|t| ticks_to_ns(*t, tck));
            c.kernel = stat.get("system").map(|t| ticks_to_ns(*t, tck));
        }
        if let Some(text) = read_opt(dir, "cpuacct.usage_percpu")? {
            c.per_cpu = text
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()
                .ok_or_else(|| parse_err(dir, "cpuacct.usage_percpu", format!("{text:?}")))?;
        }
        if let Some(text) = read_opt(dir, "cpuacct.usage_all")? {
            (c.per_cpu_user, c.per_cpu_kernel) = parse_usage_all(&text)
                .ok_or_else(|| parse_err(dir, "cpuacct.usage_all", format!("{text:?}")))?;
        }
    }
    if let Some(stat) = cpu.map(|d| read_flat(d, "cpu.stat")).transpose()?.flatten() {
        c.throttling = stat.get("nr_periods").map(|&periods| Throttling {
            periods,
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: stat.get("throttled_time").copied().unwrap_or(0),
        });
    }
    Ok((c != CpuStats::default()).then_some(c))
}

/// USER_HZ, the unit of cpuacct.stat.
fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn ticks_to_ns(ticks: u64, per_sec: u64) -> u64 {
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(per_sec)).unwrap_or(u64::MAX)
}

/// cpuacct.usage_all: a "cpu user system" header, then one "N USER SYSTEM" line per CPU.
fn parse_usage_all(text: &str) -> Option<(Vec<u64>, Vec<u64>)> {
    let (mut user, mut system) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let w: Vec<u64> = line
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let [_cpu, u, s] = w[..] else {
            return None;
        };
        user.push(u);
        system.push(s);
    }
    Some((user, system))
}

fn pids(dir: &Path) -> Result<Option<PidsStats>> {
    let p = PidsStats {
        current: read_u64(dir, "pids.current")?,
        limit: read_u64(dir, "pids.max")?,
    };
    Ok((p != PidsStats::default()).then_some(p))
}

fn blkio(dir: &Path) -> Result<Option<BlkioStats>> {
    for policy in BLKIO_POLICIES {
        let bytes_file = format!("{policy}.io_service_bytes_recursive");
        let Some(bytes) = read_opt(dir, &bytes_file)? else {
            continue;
        };
        let ops_file = format!("{policy}.io_serviced_recursive");
        let ops = read_opt(dir, &ops_file)?.unwrap_or_default();
        return Ok(Some(BlkioStats {
            io_service_bytes: parse_blkio(&bytes).map_err(|r| parse_err(dir, &bytes_file, r))?,
            io_serviced: parse_blkio(&ops).map_err(|r| parse_err(dir, &ops_file, r))?,
        }));
    }
    Ok(None)
}

/// "MAJ:MIN Op value" lines; the summary line "Total N" is left out (as runc does).
fn parse_blkio(text: &str) -> std::result::Result<Vec<BlkioEntry>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let entry = match w[..] {
            ["Total", _] => continue,
            [dev, op, value] => {
                parse_device(dev)
                    .zip(value.parse().ok())
                    .map(|((major, minor), value)| BlkioEntry {
                        major,
                        minor,
                        op: op.to_string(),
                        value,
                    })
            }
            _ => None,
        };
        out.push(entry.ok_or_else(|| format!("malformed line {line:?}"))?);
    }
    Ok(out)
}

fn hugetlb(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes(dir, ".usage_in_bytes")? {
        let f = |name: &str| read_u64(dir, &format!("hugetlb.{size}.{name}"));
        let h = HugetlbStats {
            usage: f("usage_in_bytes")?,
            max: f("max_usage_in_bytes")?,
            limit: f("limit_in_bytes")?,
            failcnt: f("failcnt")?,
        };
        out.insert(size, h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::put;
    use super::*;

    const MEMORY_STAT: &str = "cache 4096\nrss 1052672\nrss_huge 0\nmapped_file 0\n\
        pgpgin 300\npgpgout 40\nhierarchical_memory_limit 67108864\ntotal_cache 4096\n\
        total_rss 1052672\n";

    fn dirs(root: &Path) -> Dirs {
        let d = |c: &str| Some(root.join(c));
        Dirs {
            memory: d("memory"),
            cpu: d("cpu"),
            cpuacct: d("cpuacct"),
            pids: d("pids"),
            blkio: d("blkio"),
            hugetlb: d("hugetlb"),
        }
    }

    fn fixture(root: &Path) {
        put(
            &root.join("memory"),
            &[
                ("memory.usage_in_bytes", "1056768\n"),
                ("memory.max_usage_in_bytes", "2097152\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.failcnt", "3\n"),
                ("memory.memsw.usage_in_bytes", "1056768\n"),
                ("memory.memsw.max_usage_in_bytes", "2097152\n"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                ("memory.memsw.failcnt", "0\n"),
                ("memory.stat", MEMORY_STAT),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
            ],
        );
        put(
            &root.join("cpuacct"),
            &[
                ("cpuacct.usage", "123456789\n"),
                ("cpuacct.stat", "user 7\nsystem 3\n"),
                ("cpuacct.usage_percpu", "100000000 23456789 \n"),
                ("cpuacct.usage_all", "cpu user system\n0 70 30\n1 20 3\n"),
            ],
        );
        put(
            &root.join("cpu"),
            &[(
                "cpu.stat",
                "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\nnr_bursts 0\nburst_time 0\n",
            )],
        );
        put(
            &root.join("pids"),
            &[("pids.current", "3\n"), ("pids.max", "max\n")],
        );
        put(
            &root.join("blkio"),
            &[
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
                ),
                (
                    "blkio.throttle.io_serviced_recursive",
                    "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
                ),
            ],
        );
        put(
            &root.join("hugetlb"),
            &[
                ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
                ("hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
                ("hugetlb.2MB.limit_in_bytes", "8388608\n"),
                ("hugetlb.2MB.failcnt", "1\n"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
            ],
        );
    }

    #[test]
    fn reads_every_controller() {
        let tmp = tempfile::tempdir().unwrap();
        fixture(tmp.path());
        let s = stats(&dirs(tmp.path())).unwrap();
        let m = s.memory.unwrap();
        assert_eq!(m.cache, Some(4096));
        assert_eq!(
            m.usage,
            Some(MemoryEntry {
                usage: Some(1056768),
                max: Some(2097152),
                limit: Some(67108864),
                failcnt: Some(3)
            })
        );
        assert_eq!(m.swap.unwrap().limit, Some(9223372036854771712));
        assert_eq!(m.kernel, None, "no kmem files: absent, not zero");
        assert_eq!(m.stat["total_rss"], 1052672);
        assert_eq!(m.stat.len(), 9);
        assert_eq!(m.events["oom_kill"], 2);

        let c = s.cpu.unwrap();
        assert_eq!(c.total, Some(123456789));
        let tck = clock_ticks();
        assert_eq!(c.user, Some(7 * 1_000_000_000 / tck));
        assert_eq!(c.kernel, Some(3 * 1_000_000_000 / tck));
        assert_eq!(c.per_cpu, [100000000, 23456789]);
        assert_eq!(c.per_cpu_user, [70, 20]);
        assert_eq!(c.per_cpu_kernel, [30, 3]);
        assert_eq!(
            c.throttling,
            Some(Throttling {
                periods: 10,
                throttled_periods: 4,
                throttled_time: 5000
            })
        );

        let p = s.pids.unwrap();
        assert_eq!(
            (p.current, p.limit),
            (Some(3), Some(super::super::UNLIMITED))
        );

        let b = s.blkio.unwrap();
        let ops: Vec<(&str, u64)> = b
            .io_service_bytes
            .iter()
            .map(|e| (e.op.as_str(), e.value))
            .collect();
        assert_eq!(ops, [("Read", 4096), ("Write", 8192), ("Total", 12288)]);
        assert_eq!((b.io_serviced[1].major, b.io_serviced[1].minor), (8, 0));
        assert_eq!(b.io_serviced[1].value, 2);

        assert_eq!(s.hugetlb.len(), 1, "{:?}", s.hugetlb);
        assert_eq!(
            s.hugetlb["2MB"],
            HugetlbStats {
                usage: Some(2097152),
                max: Some(4194304),
                limit: Some(8388608),
                failcnt: Some(1)
            }
        );
    }

    #[test]
    fn missing_controllers_and_files_are_absent() {
        let tmp = tempfile::tempdir().unwrap();
        put(&tmp.path().join("pids"), &[("pids.current", "1\n")]);
        let mut d = dirs(tmp.path());
        d.hugetlb = None;
        let s = stats(&d).unwrap();
        assert_eq!(s.memory, None);
        assert_eq!(s.cpu, None);
        assert_eq!(s.blkio, None);
        assert!(s.hugetlb.is_empty());
        assert_eq!(
            s.pids,
            Some(PidsStats {
                current: Some(1),
                limit: None
            })
        );
    }

    #[test]
    fn cfq_files_win_over_throttle() {
        let tmp = tempfile::tempdir().unwrap();
        put(
            tmp.path(),
            &[
                ("blkio.io_service_bytes_recursive", "8:16 Read 1\nTotal 1\n"),
                ("blkio.throttle.io_service_bytes_recursive", "8:0 Read 9\n"),
            ],
        );
        let b = blkio(tmp.path()).unwrap().unwrap();
        assert_eq!(b.io_service_bytes.len(), 1);
        assert_eq!(b.io_service_bytes[0].minor, 16);
        assert!(b.io_serviced.is_empty());
    }

    #[test]
    fn malformed_files_name_themselves() {
        let tmp = tempfile::tempdir().unwrap();
        put(
            tmp.path(),
            &[("blkio.throttle.io_service_bytes_recursive", "8:0 Read\n")],
        );
        let err = blkio(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("blkio.throttle.io_service_bytes_recursive"),
            "{err}"
        );
        assert!(parse_blkio("x:0 Read 1\n").is_err());
        assert!(parse_usage_all("cpu user system\n0 1\n").is_none());
        put(tmp.path(), &[("memory.stat", "cache lots\n")]);
        let err = memory(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("memory.stat"), "{err}");
    }
}
