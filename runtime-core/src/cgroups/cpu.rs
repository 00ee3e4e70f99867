//! cpu controller: shares, CFS quota/period/burst, idle and (v1) realtime from
//! `linux.resources.cpu`; v1 cpu.* files, v2 cpu.weight / cpu.max / cpu.max.burst / cpu.idle.
//! cpus and mems belong to the cpuset controller (cpuset.rs).
//!
//! As runc and crun do, 0 for shares, quota or period means "unset".

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::fs::{self, Setting};
use super::{Error, Result};

/// Whether `cpu` has anything for the cpu controller itself.
pub(crate) fn has_settings(cpu: &LinuxCpu) -> bool {
    set(cpu.shares()).is_some()
        || cpu.quota().filter(|q| *q != 0).is_some()
        || set(cpu.period()).is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_period().is_some()
        || cpu.realtime_runtime().is_some()
}

pub(crate) fn apply_v1(cpu: &LinuxCpu, dir: &Path) -> Result<()> {
    fs::write_all(dir, &plan_v1(cpu))
}

/// cpu.max holds quota and period together; with only a period given, the current quota is
/// kept, so it is read first.
pub(crate) fn apply_v2(cpu: &LinuxCpu, dir: &Path) -> Result<()> {
    let current = match cpu.quota().filter(|q| *q != 0).is_none() && set(cpu.period()).is_some() {
        true => Some(fs::read(dir, "cpu.max")?),
        false => None,
    };
    fs::write_all(dir, &plan_v2(cpu, current.as_deref())?)
}

/// v1: period before quota (a new cgroup accepts any order; this is the one runc uses), and
/// rt period before rt runtime, which the kernel checks against the period.
pub(crate) fn plan_v1(cpu: &LinuxCpu) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(s) = set(cpu.shares()) {
        out.push(("cpu.shares", s.to_string()));
    }
    if let Some(p) = set(cpu.period()) {
        out.push(("cpu.cfs_period_us", p.to_string()));
    }
    if let Some(q) = cpu.quota().filter(|q| *q != 0) {
        out.push(("cpu.cfs_quota_us", q.max(-1).to_string()));
    }
    if let Some(b) = cpu.burst() {
        out.push(("cpu.cfs_burst_us", b.to_string()));
    }
    if let Some(p) = cpu.realtime_period() {
        out.push(("cpu.rt_period_us", p.to_string()));
    }
    if let Some(r) = cpu.realtime_runtime() {
        out.push(("cpu.rt_runtime_us", r.to_string()));
    }
    if let Some(i) = cpu.idle() {
        out.push(("cpu.idle", i.to_string()));
    }
    out
}

/// v2. `current_max`: cpu.max now, needed only when a period comes without a quota.
pub(crate) fn plan_v2(cpu: &LinuxCpu, current_max: Option<&str>) -> Result<Vec<Setting>> {
    if cpu.realtime_period().is_some() || cpu.realtime_runtime().is_some() {
        return Err(Error::Unsupported {
            what: "linux.resources.cpu realtimePeriod/realtimeRuntime on cgroup v2".into(),
        });
    }
    let mut out = Vec::new();
    if let Some(s) = set(cpu.shares()) {
        out.push(("cpu.weight", shares_to_weight(s).to_string()));
    }
    let quota = cpu.quota().filter(|q| *q != 0).map(|q| match q {
        q if q > 0 => q.to_string(),
        _ => "max".to_string(),
    });
    // The kernel takes "quota" alone (period kept) or "quota period".
    let max = match (quota, set(cpu.period())) {
        (Some(q), Some(p)) => Some(format!("{q} {p}")),
        (Some(q), None) => Some(q),
        (None, Some(p)) => {
            let cur = current_max.and_then(|c| c.split_whitespace().next());
            Some(format!("{} {p}", cur.unwrap_or("max")))
        }
        (None, None) => None,
    };
    if let Some(m) = max {
        out.push(("cpu.max", m));
    }
    if let Some(b) = cpu.burst() {
        out.push(("cpu.max.burst", b.to_string()));
    }
    if let Some(i) = cpu.idle() {
        out.push(("cpu.idle", i.to_string()));
    }
    Ok(out)
}

/// v1 shares (2..=262144, default 1024) → v2 weight (1..=10000, default 100), the linear map
/// runc and crun use: 1 + ((shares - 2) * 9999) / 262142.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn set(v: Option<u64>) -> Option<u64> {
    v.filter(|v| *v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxCpuBuilder;

    fn cpu() -> LinuxCpu {
        LinuxCpuBuilder::default().build().unwrap()
    }

    fn files(dir: &Path, names: &[(&str, &str)]) {
        for (n, v) in names {
            std::fs::write(dir.join(n), v).unwrap();
        }
    }

    #[test]
    fn weight_conversion() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1, "clamped below");
        assert_eq!(shares_to_weight(1 << 30), 10_000, "clamped above");
    }

    #[test]
    fn v1_apply_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(
            d,
            &[
                ("cpu.shares", "1024"),
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.cfs_period_us", "100000"),
            ],
        );
        let mut c = cpu();
        c.set_shares(Some(512));
        c.set_quota(Some(50_000));
        c.set_period(Some(200_000));
        assert!(has_settings(&c));
        apply_v1(&c, d).unwrap();
        assert_eq!(fs::read(d, "cpu.shares").unwrap(), "512");
        assert_eq!(fs::read(d, "cpu.cfs_quota_us").unwrap(), "50000");
        assert_eq!(fs::read(d, "cpu.cfs_period_us").unwrap(), "200000");
        let order: Vec<_> = plan_v1(&c).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            order,
            ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"]
        );
    }

    #[test]
    fn zero_means_unset() {
        let mut c = cpu();
        c.set_shares(Some(0));
        c.set_quota(Some(0));
        c.set_period(Some(0));
        c.set_cpus(Some("0".into()));
        assert!(!has_settings(&c));
        assert!(plan_v1(&c).is_empty());
        assert!(plan_v2(&c, None).unwrap().is_empty());
    }

    #[test]
    fn v2_apply_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(d, &[("cpu.weight", "100"), ("cpu.max", "max 100000")]);
        let mut c = cpu();
        c.set_shares(Some(512));
        c.set_quota(Some(50_000));
        c.set_period(Some(100_000));
        apply_v2(&c, d).unwrap();
        assert_eq!(fs::read(d, "cpu.weight").unwrap(), "20");
        assert_eq!(fs::read(d, "cpu.max").unwrap(), "50000 100000");
        c.set_quota(Some(-1));
        apply_v2(&c, d).unwrap();
        assert_eq!(fs::read(d, "cpu.max").unwrap(), "max 100000");
    }

    #[test]
    fn v2_period_alone_keeps_quota() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(d, &[("cpu.max", "25000 100000\n")]);
        let mut c = cpu();
        c.set_period(Some(50_000));
        apply_v2(&c, d).unwrap();
        assert_eq!(fs::read(d, "cpu.max").unwrap(), "25000 50000");
        let mut q = cpu();
        q.set_quota(Some(10_000));
        assert_eq!(
            plan_v2(&q, None).unwrap(),
            vec![("cpu.max", "10000".to_string())]
        );
    }

    #[test]
    fn v2_rejects_realtime() {
        let mut c = cpu();
        c.set_realtime_runtime(Some(1000));
        assert!(matches!(plan_v2(&c, None), Err(Error::Unsupported { .. })));
        assert_eq!(plan_v1(&c), vec![("cpu.rt_runtime_us", "1000".to_string())]);
    }
}
