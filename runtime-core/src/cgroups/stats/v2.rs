//! cgroup v2 statistics: everything from the container's one directory. The files of a
//! controller exist only when its parent enabled it (`cgroup.subtree_control`), so a
//! missing controller is simply missing files.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    hugepage_sizes, parse_device, parse_err, read_flat, read_opt, read_u64, BlkioEntry, BlkioStats,
    CpuStats, HugetlbStats, MemoryEntry, MemoryStats, PidsStats, Stats, Throttling,
};
use crate::cgroups::{Layout, Result};

pub(super) fn stats(dir: &Path) -> Result<Stats> {
    let mut s = Stats::empty(Layout::V2);
    s.memory = memory(dir)?;
    s.cpu = cpu(dir)?;
    s.pids = pids(dir)?;
    s.blkio = io(dir)?;
    s.hugetlb = hugetlb(dir)?;
    Ok(s)
}

fn memory(dir: &Path) -> Result<Option<MemoryStats>> {
    let Some(current) = read_u64(dir, "memory.current")? else {
        return Ok(None);
    };
    let stat = read_flat(dir, "memory.stat")?.unwrap_or_default();
    let events = read_flat(dir, "memory.events")?.unwrap_or_default();
    let usage = MemoryEntry {
        usage: Some(current),
        max: read_u64(dir, "memory.peak")?,
        limit: read_u64(dir, "memory.max")?,
        failcnt: events.get("max").copied(),
    };
    let swap = match read_u64(dir, "memory.swap.current")? {
        None => None,
        Some(u) => Some(MemoryEntry {
            usage: Some(u),
            max: read_u64(dir, "memory.swap.peak")?,
            limit: read_u64(dir, "memory.swap.max")?,
            failcnt: None,
        }),
    };
    Ok(Some(MemoryStats {
        cache: stat.get("file").copied(),
        usage: Some(usage),
        swap,
        kernel: None,
        kernel_tcp: None,
        stat,
        events,
    }))
}

fn cpu(dir: &Path) -> Result<Option<CpuStats>> {
    let Some(stat) = read_flat(dir, "cpu.stat")? else {
        return Ok(None);
    };
    let us = |k: &str| stat.get(k).map(|v| v.saturating_mul(1000));
    Ok(Some(CpuStats {
        total: us("usage_usec"),
        user: us("user_usec"),
        kernel: us("system_usec"),
        // Present only with the cpu controller enabled (the rest is core accounting).
        throttling: stat.get("nr_periods").map(|&periods| Throttling {
            periods,
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: us("throttled_usec").unwrap_or(0),
        }),
        ..Default::default()
    }))
}

fn pids(dir: &Path) -> Result<Option<PidsStats>> {
    let p = PidsStats {
        current: read_u64(dir, "pids.current")?,
        limit: read_u64(dir, "pids.max")?,
    };
    Ok((p != PidsStats::default()).then_some(p))
}

fn io(dir: &Path) -> Result<Option<BlkioStats>> {
    let Some(text) = read_opt(dir, "io.stat")? else {
        return Ok(None);
    };
    parse_io_stat(&text)
        .map(Some)
        .map_err(|r| parse_err(dir, "io.stat", r))
}

/// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device, turned
/// into runc's v1-shaped entries. Keys other than those six (e.g. io.cost's) are ignored.
fn parse_io_stat(text: &str) -> std::result::Result<BlkioStats, String> {
    let mut out = BlkioStats::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("malformed line {line:?}");
        let mut words = line.split_whitespace();
        let (major, minor) = words.next().and_then(parse_device).ok_or_else(bad)?;
        for kv in words {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes, "Read"),
                "wbytes" => (&mut out.io_service_bytes, "Write"),
                "dbytes" => (&mut out.io_service_bytes, "Discard"),
                "rios" => (&mut out.io_serviced, "Read"),
                "wios" => (&mut out.io_serviced, "Write"),
                "dios" => (&mut out.io_serviced, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: v.parse().map_err(|_| bad())?,
            });
        }
    }
    Ok(out)
}

fn hugetlb(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes(dir, ".current")? {
        let file = |name: &str| format!("hugetlb.{size}.{name}");
        let events = read_flat(dir, &file("events"))?.unwrap_or_default();
        let h = HugetlbStats {
            usage: read_u64(dir, &file("current"))?,
            max: None,
            limit: read_u64(dir, &file("max"))?,
            failcnt: events.get("max").copied(),
        };
        out.insert(size, h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{tests::put, UNLIMITED};
    use super::*;

    fn fixture(dir: &Path) {
        put(
            dir,
            &[
                ("memory.current", "2101248\n"),
                ("memory.peak", "3145728\n"),
                ("memory.max", "67108864\n"),
                ("memory.swap.current", "0\n"),
                ("memory.swap.max", "max\n"),
                (
                    "memory.stat",
                    "anon 1048576\nfile 524288\nkernel_stack 16384\npgfault 99\n",
                ),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
                ),
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n\
                     nr_throttled 2\nthrottled_usec 30\nnr_bursts 0\nburst_usec 0\n",
                ),
                ("pids.current", "4\n"),
                ("pids.max", "20\n"),
                (
                    "io.stat",
                    "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                     253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.usage=5\n",
                ),
                ("hugetlb.2MB.current", "0\n"),
                ("hugetlb.2MB.max", "max\n"),
                ("hugetlb.2MB.events", "max 3\n"),
                ("hugetlb.2MB.rsvd.current", "0\n"),
            ],
        );
    }

    #[test]
    fn reads_every_controller() {
        let tmp = tempfile::tempdir().unwrap();
        fixture(tmp.path());
        let s = stats(tmp.path()).unwrap();
        assert_eq!(s.layout, Layout::V2);
        let m = s.memory.unwrap();
        assert_eq!(m.cache, Some(524288), "v2 cache is memory.stat file");
        assert_eq!(
            m.usage,
            Some(MemoryEntry {
                usage: Some(2101248),
                max: Some(3145728),
                limit: Some(67108864),
                failcnt: Some(5)
            })
        );
        let swap = m.swap.unwrap();
        assert_eq!(
            (swap.usage, swap.max, swap.limit),
            (Some(0), None, Some(UNLIMITED))
        );
        assert_eq!(m.stat["anon"], 1048576);
        assert_eq!(m.events["oom_kill"], 1);

        let c = s.cpu.unwrap();
        assert_eq!(
            (c.total, c.user, c.kernel),
            (Some(1_500_000), Some(1_000_000), Some(500_000))
        );
        assert!(c.per_cpu.is_empty());
        assert_eq!(
            c.throttling,
            Some(Throttling {
                periods: 7,
                throttled_periods: 2,
                throttled_time: 30_000
            })
        );
        assert_eq!(
            s.pids,
            Some(PidsStats {
                current: Some(4),
                limit: Some(20)
            })
        );

        let b = s.blkio.unwrap();
        let bytes: Vec<(u64, u64, &str, u64)> = b
            .io_service_bytes
            .iter()
            .map(|e| (e.major, e.minor, e.op.as_str(), e.value))
            .collect();
        assert_eq!(
            bytes,
            [
                (8, 0, "Read", 4096),
                (8, 0, "Write", 8192),
                (8, 0, "Discard", 0),
                (253, 1, "Read", 1),
                (253, 1, "Write", 0),
                (253, 1, "Discard", 0)
            ]
        );
        assert_eq!(b.io_serviced.len(), 6);
        assert_eq!(b.io_serviced[1].value, 2);

        assert_eq!(
            s.hugetlb["2MB"],
            HugetlbStats {
                usage: Some(0),
                max: None,
                limit: Some(UNLIMITED),
                failcnt: Some(3)
            }
        );
        assert_eq!(s.hugetlb.len(), 1);
    }

    #[test]
    fn controllers_not_enabled_are_absent() {
        let tmp = tempfile::tempdir().unwrap();
        // What a v2 cgroup has with no controller enabled: core files only.
        put(
            tmp.path(),
            &[("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n")],
        );
        let s = stats(tmp.path()).unwrap();
        assert_eq!(s.memory, None);
        assert_eq!(s.pids, None);
        assert_eq!(s.blkio, None);
        assert!(s.hugetlb.is_empty());
        let c = s.cpu.unwrap();
        assert_eq!(c.total, Some(10_000));
        assert_eq!(c.throttling, None);
    }

    #[test]
    fn malformed_io_stat() {
        assert!(parse_io_stat("8:0 rbytes\n").is_err());
        assert!(parse_io_stat("sda rbytes=1\n").is_err());
        assert!(parse_io_stat("8:0 rbytes=x\n").is_err());
        assert!(parse_io_stat("").unwrap().io_service_bytes.is_empty());
    }
}
