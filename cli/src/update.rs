//! `rsrun update`: runc's flags (or `--resources FILE|-`, a JSON
//! LinuxResources, which makes the other flags ignored) turned into the
//! resources to change; the engine merges and applies them.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use runtime_core::container;
use runtime_core::state::Root;

#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// Path to a file with the resources to update (JSON LinuxResources), or '-' for stdin
    #[arg(short, long)]
    resources: Option<String>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    blkio_weight: Option<String>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// CPU CFS hardcap burst limit (in usecs)
    #[arg(long = "cpu-burst", allow_hyphen_values = true)]
    cpu_burst: Option<String>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        allow_hyphen_values = true
    )]
    cpu_share: Option<String>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    cpu_rt_period: Option<String>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<String>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus", allow_hyphen_values = true)]
    cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems", allow_hyphen_values = true)]
    cpuset_mems: Option<String>,
    /// set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE
    #[arg(long = "cpu-idle", allow_hyphen_values = true)]
    cpu_idle: Option<String>,
    /// (obsoleted; do not use)
    #[arg(long = "kernel-memory", hide = true, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// (obsoleted; do not use)
    #[arg(long = "kernel-memory-tcp", hide = true, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// Memory limit (in bytes)
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// The string of Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// The string of Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    id: String,
}

pub fn update(root: &Root, args: UpdateArgs) -> Result<i32> {
    let resources = resources(&args)?;
    // No Intel RDT support: runc's words for a host without it.
    if args
        .l3_cache_schema
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if args.mem_bw_schema.as_deref().is_some_and(|s| !s.is_empty()) {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    container::update(root, &args.id, &resources)?;
    Ok(0)
}

/// The resources the flags (or `--resources`) ask for; only given fields set.
fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(src) = a.resources.as_deref().filter(|s| !s.is_empty()) {
        return read_resources(src);
    }
    let mut r = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    if let Some(v) = memory_flag("memory", &a.memory)? {
        mem.set_limit(Some(v));
    }
    if let Some(v) = memory_flag("memory-swap", &a.memory_swap)? {
        mem.set_swap(Some(v));
    }
    if let Some(v) = memory_flag("memory-reservation", &a.memory_reservation)? {
        mem.set_reservation(Some(v));
    }
    for (opt, val) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if val.as_deref().is_some_and(|v| !v.is_empty()) {
            log::warn!("Setting --{opt} is ignored and will be removed");
        }
    }
    if mem != LinuxMemory::default() {
        r.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_period(number("cpu-period", &a.cpu_period)?);
    cpu.set_quota(number("cpu-quota", &a.cpu_quota)?);
    cpu.set_burst(number("cpu-burst", &a.cpu_burst)?);
    cpu.set_shares(number("cpu-share", &a.cpu_share)?);
    cpu.set_realtime_period(number("cpu-rt-period", &a.cpu_rt_period)?);
    cpu.set_realtime_runtime(number("cpu-rt-runtime", &a.cpu_rt_runtime)?);
    cpu.set_idle(number("cpu-idle", &a.cpu_idle)?);
    cpu.set_cpus(a.cpuset_cpus.clone().filter(|s| !s.is_empty()));
    cpu.set_mems(a.cpuset_mems.clone().filter(|s| !s.is_empty()));
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(limit) = number::<i64>("pids-limit", &a.pids_limit)?.filter(|l| *l != 0) {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(w) = number::<u16>("blkio-weight", &a.blkio_weight)?.filter(|w| *w != 0) {
        if !(10..=1000).contains(&w) {
            bail!("invalid value for blkio-weight: {w} is outside 10-1000");
        }
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// A JSON LinuxResources from a file or, for "-", stdin; errors name the field.
fn read_resources(src: &str) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if src == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .context("read resources from stdin")?;
    } else {
        text = std::fs::read(Path::new(src)).with_context(|| format!("open {src}"))?;
    }
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => anyhow::anyhow!("invalid resources JSON: {}", e.inner()),
            p => anyhow::anyhow!("invalid resources JSON at {p}: {}", e.inner()),
        }
    })
}

/// An integer flag (absent or empty: not given).
fn number<T: std::str::FromStr>(opt: &str, val: &Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match val.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("invalid value for {opt}: {v:?}: {e}")),
    }
}

/// A memory flag: "-1" (unlimited) or a size with runc's units.
fn memory_flag(opt: &str, val: &Option<String>) -> Result<Option<i64>> {
    match val.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(v) => ram_in_bytes(v)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("invalid value for {opt}: {e}")),
    }
}

/// docker/go-units `RAMInBytes`, which runc uses: a decimal number, an
/// optional space, then an optional k/m/g/t/p (powers of 1024, any case),
/// optional "i", optional "b". "64m" = 64 MiB; "1.5g"; "512kb"; "100".
pub fn ram_in_bytes(s: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    let well_formed = num.split('.').all(|part| !part.is_empty())
        && num.starts_with(|c: char| c.is_ascii_digit());
    if !well_formed {
        return Err(invalid());
    }
    let size: f64 = num.parse().map_err(|_| invalid())?;
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let power = match rest.peek().map(char::to_ascii_lowercase) {
        Some(u @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            rest.next();
            "kmgtp".find(u).map_or(0, |i| i + 1)
        }
        _ => 0,
    };
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        rest.next();
    }
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        rest.next();
    }
    if rest.next().is_some() {
        return Err(invalid());
    }
    Ok((size * 1024f64.powi(power as i32)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: UpdateArgs,
    }

    fn parse(args: &[&str]) -> UpdateArgs {
        let mut v = vec!["update"];
        v.extend(args);
        T::try_parse_from(v).unwrap().a
    }

    fn json(a: &UpdateArgs) -> serde_json::Value {
        serde_json::to_value(resources(a).unwrap()).unwrap()
    }

    #[test]
    fn units_like_go_units() {
        let cases = [
            ("100", 100),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("1g", 1 << 30),
            ("1.5k", 1536),
            ("512kb", 512 << 10),
            ("2 MiB", 2 << 20),
            ("3GB", 3 << 30),
            ("1t", 1 << 40),
            ("7b", 7),
        ];
        for (s, want) in cases {
            assert_eq!(ram_in_bytes(s), Ok(want), "{s}");
        }
        for bad in [
            "", "m", "-5", "64x", "1..5m", ".5m", "5.m", "64mm", "64 m b", "1kib2",
        ] {
            assert_eq!(
                ram_in_bytes(bad),
                Err(format!("invalid size: '{bad}'")),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_become_only_the_given_fields() {
        let a = parse(&[
            "--memory",
            "64m",
            "--cpu-quota",
            "20000",
            "--pids-limit",
            "7",
            "ctr",
        ]);
        assert_eq!(a.id, "ctr");
        assert_eq!(
            json(&a),
            serde_json::json!({"memory": {"limit": 67108864}, "cpu": {"quota": 20000},
                "pids": {"limit": 7}})
        );
        let a = parse(&[
            "--memory-swap",
            "-1",
            "--memory-reservation",
            "1g",
            "--cpu-shares",
            "512",
            "--cpu-period",
            "100000",
            "--cpu-rt-period",
            "1000000",
            "--cpu-rt-runtime",
            "-1",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems",
            "0",
            "--blkio-weight",
            "300",
            "x",
        ]);
        assert_eq!(
            json(&a),
            serde_json::json!({
                "memory": {"reservation": 1073741824, "swap": -1},
                "cpu": {"shares": 512, "period": 100000, "realtimeRuntime": -1,
                        "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0"},
                "blockIO": {"weight": 300}})
        );
        assert_eq!(json(&parse(&["x"])), serde_json::json!({}));
        assert_eq!(
            json(&parse(&["--kernel-memory", "1m", "x"])),
            serde_json::json!({})
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, needle) in [
            (
                &["--cpu-share", "-5", "x"][..],
                "invalid value for cpu-share",
            ),
            (
                &["--memory", "64x", "x"],
                "invalid value for memory: invalid size: '64x'",
            ),
            (
                &["--memory-swap", "-2", "x"],
                "invalid value for memory-swap",
            ),
            (
                &["--pids-limit", "lots", "x"],
                "invalid value for pids-limit",
            ),
            (
                &["--cpu-period", "1.5", "x"],
                "invalid value for cpu-period",
            ),
            (&["--blkio-weight", "5", "x"], "blkio-weight"),
        ] {
            let err = resources(&parse(args)).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn resources_file_overrides_flags_and_names_bad_fields() {
        let dir = tempfile_dir();
        let f = dir.join("r.json");
        std::fs::write(&f, r#"{"memory":{"limit":1000},"pids":{"limit":3}}"#).unwrap();
        let a = parse(&["-r", f.to_str().unwrap(), "--memory", "5m", "x"]);
        assert_eq!(
            json(&a),
            serde_json::json!({"memory": {"limit": 1000}, "pids": {"limit": 3}})
        );
        std::fs::write(&f, r#"{"cpu":{"shares":-5}}"#).unwrap();
        let err = resources(&parse(&["--resources", f.to_str().unwrap(), "x"])).unwrap_err();
        assert!(err.to_string().contains("cpu.shares"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rsrun-update-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
