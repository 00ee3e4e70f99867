//! The Stats RPC: the engine's cgroup statistics as containerd's cgroup metrics, the
//! message `ctr task metrics` and the CRI plugin unpack: `io.containerd.cgroups.v1.Metrics`
//! on v1 and hybrid hosts, `io.containerd.cgroups.v2.Metrics` on pure v2 hosts, each in an
//! `Any` whose type URL is the bare message name (how containerd's typeurl names gogo
//! types). The names are constants: protobuf's `descriptor()` reflection would cost every
//! shim a few hundred KB of heap (see events.rs).
//!
//! Figures the host does not provide are 0 (proto3 has no absence). Limits follow
//! containerd's cgroup libraries: on v1 an unlimited pids limit is 0, on v2 "max" is
//! u64::MAX.

use containerd_shim_protos::api;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use runtime_core::cgroups::{BlkioEntry, Layout, MemoryEntry, Stats, UNLIMITED};
use runtime_core::container;

use super::service::{container_of, Service};
use super::status::{RpcError, RpcResult};

const V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
const V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

impl Service {
    pub(super) fn do_stats(&self, req: api::StatsRequest) -> RpcResult<api::StatsResponse> {
        container_of(&self.tables(), &req.id)?;
        let stats = container::stats(&self.root(), &req.id)?;
        Ok(api::StatsResponse {
            stats: MessageField::some(to_any(&stats)?),
            ..Default::default()
        })
    }
}

/// The metrics message for the host's layout, packed.
pub(super) fn to_any(s: &Stats) -> RpcResult<Any> {
    let (type_url, value) = match s.layout {
        Layout::V2 => (V2_METRICS, v2_metrics(s).write_to_bytes()),
        Layout::V1 | Layout::Hybrid => (V1_METRICS, v1_metrics(s).write_to_bytes()),
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value: value.map_err(|e| RpcError::Internal(format!("encode metrics: {e}")))?,
        ..Default::default()
    })
}

fn v1_entry(e: Option<MemoryEntry>) -> MessageField<v1::MemoryEntry> {
    MessageField::from_option(e.map(|e| v1::MemoryEntry {
        limit: e.limit.unwrap_or(0),
        usage: e.usage.unwrap_or(0),
        max: e.max.unwrap_or(0),
        failcnt: e.failcnt.unwrap_or(0),
        ..Default::default()
    }))
}

fn v1_blkio(entries: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    entries
        .iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

pub(super) fn v1_metrics(s: &Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    m.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h)| v1::HugetlbStat {
            usage: h.usage.unwrap_or(0),
            max: h.max.unwrap_or(0),
            failcnt: h.failcnt.unwrap_or(0),
            pagesize: size.clone(),
            ..Default::default()
        })
        .collect();
    m.pids = MessageField::from_option(s.pids.map(|p| v1::PidsStat {
        current: p.current.unwrap_or(0),
        limit: p.limit.filter(|&l| l != UNLIMITED).unwrap_or(0),
        ..Default::default()
    }));
    m.cpu = MessageField::from_option(s.cpu.as_ref().map(|c| v1::CPUStat {
        usage: MessageField::some(v1::CPUUsage {
            total: c.total.unwrap_or(0),
            kernel: c.kernel.unwrap_or(0),
            user: c.user.unwrap_or(0),
            per_cpu: c.per_cpu.clone(),
            ..Default::default()
        }),
        throttling: MessageField::from_option(c.throttling.map(|t| v1::Throttle {
            periods: t.periods,
            throttled_periods: t.throttled_periods,
            throttled_time: t.throttled_time,
            ..Default::default()
        })),
        ..Default::default()
    }));
    if let Some(mem) = &s.memory {
        m.memory = MessageField::some(v1_memory(mem));
        if !mem.events.is_empty() {
            let ev = |k: &str| mem.events.get(k).copied().unwrap_or(0);
            m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
                oom_kill_disable: ev("oom_kill_disable"),
                under_oom: ev("under_oom"),
                oom_kill: ev("oom_kill"),
                ..Default::default()
            });
        }
    }
    m.blkio = MessageField::from_option(s.blkio.as_ref().map(|b| v1::BlkIOStat {
        io_service_bytes_recursive: v1_blkio(&b.io_service_bytes),
        io_serviced_recursive: v1_blkio(&b.io_serviced),
        ..Default::default()
    }));
    m
}

/// memory.stat's counters under containerd's v1 names, and the four usage entries.
fn v1_memory(mem: &runtime_core::cgroups::MemoryStats) -> v1::MemoryStat {
    let st = |k: &str| mem.stat.get(k).copied().unwrap_or(0);
    v1::MemoryStat {
        cache: st("cache"),
        rss: st("rss"),
        rss_huge: st("rss_huge"),
        mapped_file: st("mapped_file"),
        dirty: st("dirty"),
        writeback: st("writeback"),
        pg_pg_in: st("pgpgin"),
        pg_pg_out: st("pgpgout"),
        pg_fault: st("pgfault"),
        pg_maj_fault: st("pgmajfault"),
        inactive_anon: st("inactive_anon"),
        active_anon: st("active_anon"),
        inactive_file: st("inactive_file"),
        active_file: st("active_file"),
        unevictable: st("unevictable"),
        hierarchical_memory_limit: st("hierarchical_memory_limit"),
        hierarchical_swap_limit: st("hierarchical_memsw_limit"),
        total_cache: st("total_cache"),
        total_rss: st("total_rss"),
        total_rss_huge: st("total_rss_huge"),
        total_mapped_file: st("total_mapped_file"),
        total_dirty: st("total_dirty"),
        total_writeback: st("total_writeback"),
        total_pg_pg_in: st("total_pgpgin"),
        total_pg_pg_out: st("total_pgpgout"),
        total_pg_fault: st("total_pgfault"),
        total_pg_maj_fault: st("total_pgmajfault"),
        total_inactive_anon: st("total_inactive_anon"),
        total_active_anon: st("total_active_anon"),
        total_inactive_file: st("total_inactive_file"),
        total_active_file: st("total_active_file"),
        total_unevictable: st("total_unevictable"),
        usage: v1_entry(mem.usage),
        swap: v1_entry(mem.swap),
        kernel: v1_entry(mem.kernel),
        kernel_tcp: v1_entry(mem.kernel_tcp),
        ..Default::default()
    }
}

pub(super) fn v2_metrics(s: &Stats) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    m.pids = MessageField::from_option(s.pids.map(|p| v2::PidsStat {
        current: p.current.unwrap_or(0),
        limit: p.limit.unwrap_or(0),
        ..Default::default()
    }));
    m.cpu = MessageField::from_option(s.cpu.as_ref().map(|c| {
        let us = |ns: Option<u64>| ns.unwrap_or(0) / 1000;
        let t = c.throttling.unwrap_or_default();
        v2::CPUStat {
            usage_usec: us(c.total),
            user_usec: us(c.user),
            system_usec: us(c.kernel),
            nr_periods: t.periods,
            nr_throttled: t.throttled_periods,
            throttled_usec: t.throttled_time / 1000,
            ..Default::default()
        }
    }));
    if let Some(mem) = &s.memory {
        m.memory = MessageField::some(v2_memory(mem));
        if !mem.events.is_empty() {
            let ev = |k: &str| mem.events.get(k).copied().unwrap_or(0);
            m.memory_events = MessageField::some(v2::MemoryEvents {
                low: ev("low"),
                high: ev("high"),
                max: ev("max"),
                oom: ev("oom"),
                oom_kill: ev("oom_kill"),
                oom_group_kill: ev("oom_group_kill"),
                ..Default::default()
            });
        }
    }
    m.io = MessageField::from_option(s.blkio.as_ref().map(|b| v2::IOStat {
        usage: v2_io(b),
        ..Default::default()
    }));
    m.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h)| v2::HugeTlbStat {
            current: h.usage.unwrap_or(0),
            max: h.limit.unwrap_or(0),
            pagesize: size.clone(),
            failcnt: h.failcnt.unwrap_or(0),
            ..Default::default()
        })
        .collect();
    m
}

fn v2_memory(mem: &runtime_core::cgroups::MemoryStats) -> v2::MemoryStat {
    let st = |k: &str| mem.stat.get(k).copied().unwrap_or(0);
    let usage = mem.usage.unwrap_or_default();
    let swap = mem.swap.unwrap_or_default();
    v2::MemoryStat {
        anon: st("anon"),
        file: st("file"),
        kernel_stack: st("kernel_stack"),
        slab: st("slab"),
        sock: st("sock"),
        shmem: st("shmem"),
        file_mapped: st("file_mapped"),
        file_dirty: st("file_dirty"),
        file_writeback: st("file_writeback"),
        anon_thp: st("anon_thp"),
        inactive_anon: st("inactive_anon"),
        active_anon: st("active_anon"),
        inactive_file: st("inactive_file"),
        active_file: st("active_file"),
        unevictable: st("unevictable"),
        slab_reclaimable: st("slab_reclaimable"),
        slab_unreclaimable: st("slab_unreclaimable"),
        pgfault: st("pgfault"),
        pgmajfault: st("pgmajfault"),
        workingset_refault: st("workingset_refault"),
        workingset_activate: st("workingset_activate"),
        workingset_nodereclaim: st("workingset_nodereclaim"),
        pgrefill: st("pgrefill"),
        pgscan: st("pgscan"),
        pgsteal: st("pgsteal"),
        pgactivate: st("pgactivate"),
        pgdeactivate: st("pgdeactivate"),
        pglazyfree: st("pglazyfree"),
        pglazyfreed: st("pglazyfreed"),
        thp_fault_alloc: st("thp_fault_alloc"),
        thp_collapse_alloc: st("thp_collapse_alloc"),
        usage: usage.usage.unwrap_or(0),
        usage_limit: usage.limit.unwrap_or(0),
        swap_usage: swap.usage.unwrap_or(0),
        swap_limit: swap.limit.unwrap_or(0),
        max_usage: usage.max.unwrap_or(0),
        swap_max_usage: swap.max.unwrap_or(0),
        ..Default::default()
    }
}

/// The engine's per-operation entries, one `IOEntry` per device again (in first-seen order).
fn v2_io(b: &runtime_core::cgroups::BlkioStats) -> Vec<v2::IOEntry> {
    let mut out: Vec<v2::IOEntry> = Vec::new();
    let tagged = b
        .io_service_bytes
        .iter()
        .map(|e| (e, true))
        .chain(b.io_serviced.iter().map(|e| (e, false)));
    for (e, bytes) in tagged {
        let i = match out
            .iter()
            .position(|x| (x.major, x.minor) == (e.major, e.minor))
        {
            Some(i) => i,
            None => {
                out.push(v2::IOEntry {
                    major: e.major,
                    minor: e.minor,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let x = &mut out[i];
        match (bytes, e.op.as_str()) {
            (true, "Read") => x.rbytes = e.value,
            (true, "Write") => x.wbytes = e.value,
            (false, "Read") => x.rios = e.value,
            (false, "Write") => x.wios = e.value,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_core::cgroups::{CpuStats, MemoryStats, PidsStats, Throttling};

    fn sample(layout: Layout) -> Stats {
        let stat = [("total_cache", 4096), ("file", 512), ("anon", 8192)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let blk = |op: &str, value| BlkioEntry {
            major: 8,
            minor: 0,
            op: op.into(),
            value,
        };
        Stats {
            layout,
            cpu: Some(CpuStats {
                total: Some(7_000_000),
                user: Some(4_000_000),
                kernel: Some(3_000_000),
                per_cpu: vec![5_000_000, 2_000_000],
                throttling: Some(Throttling {
                    periods: 9,
                    throttled_periods: 2,
                    throttled_time: 40_000,
                }),
                ..Default::default()
            }),
            memory: Some(MemoryStats {
                usage: Some(MemoryEntry {
                    usage: Some(1 << 20),
                    max: Some(2 << 20),
                    limit: Some(64 << 20),
                    failcnt: Some(1),
                }),
                stat,
                ..Default::default()
            }),
            pids: Some(PidsStats {
                current: Some(3),
                limit: Some(UNLIMITED),
            }),
            blkio: Some(runtime_core::cgroups::BlkioStats {
                io_service_bytes: vec![blk("Read", 4096), blk("Write", 512)],
                io_serviced: vec![blk("Read", 1), blk("Write", 2)],
            }),
            hugetlb: Default::default(),
        }
    }

    #[test]
    fn v1_on_hybrid_hosts() {
        let any = to_any(&sample(Layout::Hybrid)).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage.usage, 1 << 20);
        assert_eq!(m.memory.usage.limit, 64 << 20);
        assert_eq!(
            m.memory.total_cache, 4096,
            "what ctr shows as memory.stat.cache"
        );
        assert_eq!(m.cpu.usage.total, 7_000_000);
        assert_eq!(m.cpu.usage.per_cpu, [5_000_000, 2_000_000]);
        assert_eq!(m.cpu.throttling.throttled_time, 40_000);
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        assert_eq!(m.blkio.io_service_bytes_recursive[1].op, "Write");
        assert!(m.memory_oom_control.is_none());
    }

    #[test]
    fn v2_on_pure_v2_hosts() {
        let any = to_any(&sample(Layout::V2)).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage_usec, 7000);
        assert_eq!((m.cpu.user_usec, m.cpu.system_usec), (4000, 3000));
        assert_eq!((m.cpu.nr_periods, m.cpu.throttled_usec), (9, 40));
        assert_eq!(m.memory.usage, 1 << 20);
        assert_eq!(m.memory.usage_limit, 64 << 20);
        assert_eq!(m.memory.max_usage, 2 << 20);
        assert_eq!((m.memory.anon, m.memory.file), (8192, 512));
        assert_eq!((m.pids.current, m.pids.limit), (3, u64::MAX));
        assert_eq!(m.io.usage.len(), 1);
        let io = &m.io.usage[0];
        assert_eq!((io.rbytes, io.wbytes, io.rios, io.wios), (4096, 512, 1, 2));
    }

    #[test]
    fn absent_controllers_stay_unset() {
        let mut s = sample(Layout::V1);
        s.cpu = None;
        s.memory = None;
        s.blkio = None;
        let m = v1_metrics(&s);
        assert!(m.cpu.is_none() && m.memory.is_none() && m.blkio.is_none());
        assert!(m.pids.is_some());
    }
}
