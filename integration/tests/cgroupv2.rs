//! cgroup v2 limits on a pure cgroup v2 kernel. This host is hybrid, so the
//! checks run in one qemu VM (integration/vm/run.sh; `make test` runs
//! integration/vm/setup.sh first): integration/vm/rsrun_v2.sh builds a
//! busybox bundle there, runs containers with memory, cpu, cpuset and pids
//! limits, reads them back from inside (cgroupns: its cgroup is the root),
//! and drives create/list/start/exec/delete. This test asserts the VM's exit
//! code and that every expected check line was printed. A second VM run,
//! integration/vm/stats_v2.sh, checks `rsrun events --stats` against the v2
//! control files.

use std::path::PathBuf;
use std::process::Command;

use integration::*;

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// BIN_DIR with rsrun in it, without debug info when objcopy can strip it
/// (a 50 MB initramfs is slow to unpack under TCG).
fn bin_dir() -> TempDir {
    let dir = TempDir(std::env::temp_dir().join(unique("rstest-v2bin")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let dest = dir.0.join("rsrun");
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(rsrun_bin())
        .arg(&dest)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(rsrun_bin(), &dest).unwrap();
    }
    dir
}

/// Boots the VM with rsrun and `script` (integration/vm/), asserts it
/// passed, and returns what it printed.
fn run_in_vm(script: &str) -> String {
    run_in_vm_with(script, "overlay")
}

/// [`run_in_vm`] with the kernel `modules` the VM loads (RS_VM_MODULES).
fn run_in_vm_with(script: &str, modules: &str) -> String {
    require_root();
    let vm = repo_root().join("integration/vm");
    let bins = bin_dir();
    let out = Command::new(vm.join("run.sh"))
        .arg(&bins.0)
        .arg(vm.join(script))
        // The scripts' shared helpers, sourced as /files/checks.sh.
        .arg(vm.join("checks.sh"))
        .env("RS_VM_TIMEOUT", "180")
        .env("RS_VM_MODULES", modules)
        .output()
        .expect("run integration/vm/run.sh (needs integration/vm/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "VM test {script} failed (2: setup missing, 3: VM crashed or timed out); see the log above"
    );
    stdout
}

/// Every `expected` line begins some line of `stdout`.
fn assert_lines(stdout: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line:?}"
        );
    }
}

#[test]
fn cgroup_v2_limits_and_lifecycle_in_a_vm() {
    let stdout = run_in_vm("rsrun_v2.sh");
    // The script computes these from the OCI values: 64 MiB limit, 32 MiB
    // reservation, 128 MiB memory+swap, shares 1024, 50 ms / 100 ms, 20 pids.
    let expected = [
        "ok   - run exit code = 0",
        "ok   - memory.max = 67108864",
        "ok   - memory.low = 33554432",
        "ok   - memory.swap.max = 67108864",
        "ok   - cpu.weight = 39",
        "ok   - cpu.max = 50000 100000",
        "ok   - cpuset.cpus = ",
        "ok   - pids.max = 20",
        "ok   - /proc/self/cgroup in cgroupns = 0::/",
        "ok   - run: cgroup after exit = ",
        "ok   - create exit code = 0",
        "ok   - status after create = created",
        "ok   - list -q = v2life",
        "ok   - init in the container's cgroup = 0::/rstest/v2life",
        "ok   - host memory.max = 67108864",
        "ok   - host pids.max = 20",
        "ok   - stage 1 born in its cgroup = 1",
        "ok   - start exit code = 0",
        "ok   - status after start = running",
        "ok   - exec reads its pids.max = 20",
        "ok   - delete -f exit code = 0",
        "ok   - list after delete = ",
        "ok   - delete: cgroup left = ",
        "ok   - leftover cgroups = ",
        "ok   - run -d for kill --all = 0",
        "ok   - processes before kill --all = 3",
        "ok   - kill --all exit code = 0",
        "ok   - kill --all used cgroup.kill = 1",
        "ok   - populated after kill --all = populated 0",
        "ok   - leftover cgroups (2) = ",
        "rsrun_v2: 0 failure(s)",
    ];
    assert_lines(&stdout, &expected);
}

/// pause/resume on cgroup v2 (`cgroup.freeze`, `frozen` in cgroup.events):
/// integration/vm/freeze_v2.sh pauses a counter loop, reads the files back
/// from the host side of the VM, resumes, kills and force-deletes paused
/// containers, and checks no cgroup is left.
#[test]
fn cgroup_v2_pause_resume_in_a_vm() {
    let stdout = run_in_vm("freeze_v2.sh");
    let expected = [
        "ok   - run -d exit code = 0",
        "ok   - counter runs = yes",
        "ok   - cgroup.freeze before pause = 0",
        "ok   - pause exit code = 0",
        "ok   - status after pause = paused",
        "ok   - list after pause = paused",
        "ok   - cgroup.freeze after pause = 1",
        "ok   - cgroup.events frozen after pause = 1",
        "ok   - counter still while paused = ",
        "ok   - second pause exit code = 1",
        "ok   - second pause message = rsrun: container not running",
        "ok   - resume exit code = 0",
        "ok   - status after resume = running",
        "ok   - cgroup.freeze after resume = 0",
        "ok   - cgroup.events frozen after resume = 0",
        "ok   - counter advances after resume = yes",
        "ok   - second resume exit code = 1",
        "ok   - second resume message = rsrun: container not paused",
        "ok   - kill of paused exit code = 0",
        "ok   - status after kill = stopped",
        "ok   - delete exit code = 0",
        "ok   - delete: cgroup left = ",
        "ok   - status (2) after pause = paused",
        "ok   - delete -f of paused exit code = 0",
        "ok   - delete -f: cgroup left = ",
        "ok   - leftover cgroups = ",
        "freeze_v2: 0 failure(s)",
    ];
    assert_lines(&stdout, &expected);
}

/// `rsrun update` of a running container on pure cgroup v2
/// (integration/vm/update_v2.sh): memory.max, cpu.max, cpu.weight,
/// memory.swap.max and pids.max change; bad or refused values change
/// nothing; the new pids.max stops a fork loop.
#[test]
fn cgroup_v2_update_in_a_vm() {
    let stdout = run_in_vm("update_v2.sh");
    let expected = [
        "ok   - run -d exit code = 0",
        "ok   - memory.max = 67108864",
        "ok   - cpu.max = 20000 100000",
        "ok   - pids.max = 7",
        "ok   - memory.max after json = 33554432",
        "ok   - cpu.weight after json = 39",
        "ok   - cpu.max kept = 20000 100000",
        "ok   - cpu.max unlimited = max 100000",
        "ok   - invalid cpus exit code = 1",
        "ok   - invalid cpus: memory.max unchanged = 33554432",
        "ok   - refused cpus exit code = 1",
        "ok   - refused cpus: memory.max restored = 33554432",
        "ok   - fork loop exit code = 2",
        "ok   - fork loop hit the limit = can't fork",
        "ok   - pids.current after fork loop = 6",
        "ok   - leftover cgroups = ",
        "update_v2: 0 failure(s)",
    ];
    assert_lines(&stdout, &expected);
}

/// `rsrun events --stats` on a pure v2 kernel: integration/vm/stats_v2.sh
/// compares each figure with the container's v2 files (memory.max,
/// memory.stat, memory.peak, memory.events, memory.swap.max, pids.*,
/// cpu.stat), checks runc's v2 shaping (swap = memory+swap, no per-cpu
/// figures), the stream ending with the container, and the stopped error.
#[test]
fn cgroup_v2_events_stats_in_a_vm() {
    let stdout = run_in_vm("stats_v2.sh");
    let expected = [
        "ok   - events --stats exit code = 0",
        "ok   - type and id = 1",
        "ok   - memory.usage.limit = memory.max = 67108864",
        "ok   - memory.cache = memory.stat file = 16777216",
        "ok   - memory.raw.shmem = memory.stat shmem = 16777216",
        "ok   - memory.usage.usage (>= 16 MiB, <= limit) in range",
        "ok   - memory.usage.max (memory.peak) >= usage in range",
        "ok   - memory.usage.failcnt = memory.events max = 0",
        "ok   - memory.swap.limit = swap.max + memory.max = 134217728",
        "ok   - pids.current = pids.current file = 1",
        "ok   - pids.limit = pids.max = 20",
        "ok   - cpu.usage.total (ns) between two reads of usage_usec in range",
        "ok   - cpu.usage.total > 0 = yes",
        "ok   - cpu.usage.user = user_usec * 1000 = ",
        "ok   - cpu.throttling.periods between two reads of nr_periods in range",
        "ok   - cpu.throttling.throttledPeriods > 0 (50% quota) = yes",
        "ok   - no per-cpu figures on v2 = ",
        "ok   - events stream exit code = 0",
        "ok   - stream printed samples = yes",
        "ok   - stopped: events --stats exit code = 1",
        "ok   - stopped: error = rsrun: container with id v2stats is not running",
        "ok   - oom: create exit code = 0",
        "ok   - oom event = {\"type\":\"oom\",\"id\":\"v2oom\"}",
        "ok   - oom_kill in memory.events = 1",
        "ok   - leftover cgroups = ",
        "stats_v2: 0 failure(s)",
    ];
    assert_lines(&stdout, &expected);
}

/// blockIO, hugepageLimits, swappiness/disableOOMKiller, network and checkBeforeUpdate on a
/// pure v2 kernel (integration/vm/controllers_v2.sh): io.weight (runc's conversion of 300 is
/// 2930) or io.bfq.weight, io.max for a brd ramdisk, hugetlb.2MB.max; the v1-only settings
/// warned about but not refused; a memory limit below usage refused with checkBeforeUpdate;
/// a bad weight refused before any state or cgroup exists.
#[test]
fn cgroup_v2_io_hugetlb_and_ignored_settings_in_a_vm() {
    let stdout = run_in_vm_with("controllers_v2.sh", "overlay brd");
    let expected = [
        "ok   - run -d exit code = 0",
        "ok   - swappiness warned about = 1",
        "ok   - network warned about = 1",
        "ok   - io.weight = default 2930",
        "ok   - io.max = 1:0 rbps=1048576 wbps=max riops=max wiops=77",
        "ok   - hugetlb.2MB.max = 4194304",
        "ok   - checkBeforeUpdate refusal exit code = 1",
        "ok   - checkBeforeUpdate names the field = 1",
        "ok   - memory.max unchanged = max",
        "ok   - memory.max updated = 536870912",
        "ok   - bad weight exit code = 1",
        "ok   - bad weight names the field = 1",
        "ok   - bad weight: no state = ",
        "ok   - leftover cgroups = ",
        "controllers_v2: 0 failure(s)",
    ];
    assert_lines(&stdout, &expected);
}

/// linux.resources.devices on cgroup v2 (an eBPF device filter):
/// integration/vm/devices_v2.sh gives containers CAP_MKNOD, makes nodes in
/// their /dev and opens them. Default rules: /dev/null and /dev/zero work,
/// mknod works ("c *:* m", "b *:* m"), opening b 8:0 or c 1:11 is EPERM.
/// Extra rules: a later deny of "w" overrides an earlier "rw" allow; a
/// minor wildcard opens b 8:* for reading only (ENXIO: the VM has no disk);
/// and an exec'd process is filtered like init.
#[test]
fn cgroup_v2_device_rules_in_a_vm() {
    let stdout = run_in_vm("devices_v2.sh");
    let eperm = "Operation not permitted";
    let expected = [
        "ok   - defaults: run exit code = 0".to_string(),
        "ok   - defaults: /dev/zero read = 4".into(),
        "ok   - defaults: /dev/null write = ok".into(),
        "ok   - defaults: /dev/null read = ok".into(),
        "ok   - defaults: mknod b 8:0 = ok".into(),
        format!("ok   - defaults: read b 8:0 = {eperm}"),
        "ok   - defaults: mknod c 1:11 = ok".into(),
        format!("ok   - defaults: read c 1:11 = {eperm}"),
        "ok   - rules: run exit code = 0".into(),
        "ok   - rules: read c 1:11 (allowed) = ok".into(),
        format!("ok   - rules: write c 1:11 (later deny) = {eperm}"),
        "ok   - rules: read b 8:0 (b 8:* r) = No such device or address".into(),
        "ok   - rules: read b 8:17 (b 8:* r) = No such device or address".into(),
        format!("ok   - rules: write b 8:0 (r only) = {eperm}"),
        "ok   - rules: /dev/null still works = ok".into(),
        "ok   - exec: run -d exit code = 0".into(),
        "ok   - exec: /dev/zero = 4".into(),
        format!("ok   - exec: read b 8:0 = {eperm}"),
        "ok   - exec: delete -f exit code = 0".into(),
        "ok   - leftover cgroups = ".into(),
        "devices_v2: 0 failure(s)".into(),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_lines(&stdout, &expected);
}
