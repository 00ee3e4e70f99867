//! Root-only test on the real host hierarchy: creates /rstest-cg-<pid> in every hierarchy,
//! applies limits, runs a child in it, and checks destroy leaves nothing behind. Skips (with a
//! message) when not root or when the host is pure v2.

use std::path::Path;
use std::process::Command;

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::{Cgroup, Layout};

#[test]
fn real_v1_cgroup_lifecycle() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping real_v1_cgroup_lifecycle: needs root");
        return;
    }
    let path = format!("/rstest-cg-{}", std::process::id());
    let mut cg = Cgroup::for_path(&path).unwrap();
    if cg.layout() == Layout::V2 {
        eprintln!("skipping real_v1_cgroup_lifecycle: host is cgroup v2");
        return;
    }
    cg.create().unwrap();
    let result = std::panic::catch_unwind(|| exercise(&cg));
    let destroyed = cg.destroy();
    for h in cg.hierarchies() {
        assert!(!h.dir.exists(), "left behind: {}", h.dir.display());
    }
    destroyed.unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn exercise(cg: &Cgroup) {
    let mut cpu = LinuxCpuBuilder::default().build().unwrap();
    cpu.set_shares(Some(512));
    cpu.set_quota(Some(50_000));
    cpu.set_period(Some(100_000));
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .typ(LinuxDeviceType::A)
        .access("rwm")
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
        .cpu(cpu)
        .devices(vec![deny_all])
        .build()
        .unwrap();
    cg.apply(&resources).unwrap();
    let read = |c: &str, f: &str| {
        let dir = cg.dir_for(c).unwrap();
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max"), "20");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert!(read("devices", "devices.list").contains("c 1:3 rwm"));
    assert!(!read("cpuset", "cpuset.cpus").is_empty(), "inherited");

    memory_order_on_real_kernel(cg);

    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    let added = cg.add_pid(pid);
    let listed = cg.pids();
    child.kill().unwrap();
    child.wait().unwrap();
    added.unwrap();
    assert_eq!(listed.unwrap(), vec![pid]);
    for h in cg.hierarchies() {
        assert!(Path::new(&h.dir).is_dir());
    }
}

/// v1 refuses any instant where memory.limit_in_bytes > memory.memsw.limit_in_bytes: lower both
/// below the current limit, then raise both above the current memsw.
fn memory_order_on_real_kernel(cg: &Cgroup) {
    let dir = cg.dir_for("memory").unwrap();
    if !dir.join("memory.memsw.limit_in_bytes").exists() {
        eprintln!("no swap accounting: memsw ordering not exercised");
        return;
    }
    for (limit, swap) in [(32i64 << 20, 48i64 << 20), (128 << 20, 256 << 20), (-1, -1)] {
        let mem = LinuxMemoryBuilder::default()
            .limit(limit)
            .swap(swap)
            .build()
            .unwrap();
        let r = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        cg.apply(&r).unwrap();
        let memsw = std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes")).unwrap();
        if swap > 0 {
            assert_eq!(memsw.trim(), swap.to_string());
        }
    }
}
