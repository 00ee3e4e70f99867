//! The shim's Stats RPC under a private containerd: `ctr task metrics`
//! (table and `--format json`) unpacks the `io.containerd.cgroups.v1.Metrics`
//! the shim sends on this hybrid host, and its memory, cpu and pids figures
//! match the container's cgroup v1 files read directly. The server stays at
//! one thread; a stopped task has no metrics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use integration::*;
use serde_json::Value;

const MEM_LIMIT: u64 = 64 << 20;
const SHM: u64 = 16 << 20;
/// A busy loop (CPU time), 16 MiB in /dev/shm (page cache of the memory
/// cgroup), then one process sleeping.
const SCRIPT: &str = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
    dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>/dev/null; exec sleep 1000";

fn read_u64(p: PathBuf) -> u64 {
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    s.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {s:?}: {e}", p.display()))
}

fn stat_key(p: PathBuf, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(&p).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}

/// The METRIC/VALUE rows of `ctr task metrics` (table format).
fn table(out: &str) -> HashMap<String, String> {
    out.lines()
        .skip_while(|l| !l.starts_with("METRIC"))
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(char::is_whitespace)?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn rs_shim_task_metrics_match_the_cgroup_files() {
    let ctrd = Ctrd::start("rstest-shimstats");
    let b = Bundle::new();
    let id = "st";
    let limit = MEM_LIMIT.to_string();
    let r = ctrd.run(
        &["-d", "--memory-limit", &limit],
        &b.rootfs(),
        id,
        &["sh", "-c", SCRIPT],
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", ctrd.log());
    let cg = |c: &str| {
        Path::new("/sys/fs/cgroup")
            .join(c)
            .join(ctrd.cgroup(id).trim_start_matches('/'))
    };
    let mem = cg("memory");
    let settled = wait_until(Duration::from_secs(30), || {
        stat_key(mem.join("memory.stat"), "total_shmem").unwrap_or(0) >= SHM
            && std::fs::read_to_string(cg("pids").join("pids.current"))
                .is_ok_and(|s| s.trim() == "1")
    });
    assert!(settled, "the container never filled /dev/shm and slept");

    let cpu_before = read_u64(cg("cpuacct").join("cpuacct.usage"));
    let out = ctrd.ctr(&["task", "metrics", id]);
    let rows = table(out.ok());
    let json = ctrd.ctr(&["task", "metrics", "--format", "json", id]);
    let cpu_after = read_u64(cg("cpuacct").join("cpuacct.usage"));
    let j: Value = serde_json::from_str(json.ok()).expect("metrics JSON");
    let n = |path: &str| {
        j.pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {path} in {j}"))
    };
    let row = |k: &str| -> u64 {
        rows.get(k)
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
            .parse()
            .unwrap()
    };

    // Memory: the limit asked for, as the file shows it; usage holds the 16 MiB.
    let file_limit = read_u64(mem.join("memory.limit_in_bytes"));
    assert_eq!(file_limit, MEM_LIMIT);
    assert_eq!(row("memory.limit_in_bytes"), file_limit);
    assert_eq!(n("/memory/usage/limit"), file_limit);
    assert!(row("memory.usage_in_bytes") >= SHM, "{out:?}");
    assert!(n("/memory/usage/usage") >= SHM, "{j}");
    let total_cache = stat_key(mem.join("memory.stat"), "total_cache").unwrap();
    assert_eq!(row("memory.stat.cache"), total_cache);
    assert_eq!(n("/memory/total_cache"), total_cache);
    assert!(total_cache >= SHM);

    // Pids: the one sleeping process; no limit (0, as containerd's v1 library says).
    let pids_current = read_u64(cg("pids").join("pids.current"));
    assert_eq!(row("pids.current"), pids_current);
    assert_eq!(n("/pids/current"), pids_current);
    assert_eq!(row("pids.limit"), 0);

    // CPU: the busy loop's time, within two reads of cpuacct.usage.
    for total in [row("cpuacct.usage"), n("/cpu/usage/total")] {
        assert!(total > 0);
        assert!(
            (cpu_before..=cpu_after).contains(&total),
            "{cpu_before} <= {total} <= {cpu_after}"
        );
    }
    let per_cpu = j["cpu"]["usage"]["per_cpu"].as_array().expect("per_cpu");
    let sum: u64 = per_cpu.iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, n("/cpu/usage/total"));

    let shims = ctrd.shims();
    assert_eq!(shims.len(), 1);
    assert_eq!(
        threads(shims[0]),
        1,
        "Stats keeps the server single-threaded"
    );

    // A stopped task has no metrics: an error (containerd logs it and
    // answers with none), not zeros.
    ctrd.ctr(&["task", "kill", "-s", "KILL", id]).ok();
    ctrd.wait_status(id, "STOPPED");
    let r = ctrd.ctr(&["task", "metrics", id]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    let log = ctrd.log();
    assert!(
        log.contains(&format!("container with id {id} is not running")),
        "{log}"
    );
    ctrd.ctr(&["task", "rm", id]).ok();
    ctrd.ctr(&["container", "rm", id]).ok();
    ctrd.assert_gone(id);
}
