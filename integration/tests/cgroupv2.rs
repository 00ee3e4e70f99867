//! cgroup v2 limits on a pure cgroup v2 kernel. This host is hybrid, so the
//! checks run in one qemu VM (integration/vm/run.sh; `make test` runs
//! integration/vm/setup.sh first): integration/vm/rsrun_v2.sh builds a
//! busybox bundle there, runs containers with memory, cpu, cpuset and pids
//! limits, reads them back from inside (cgroupns: its cgroup is the root),
//! and drives create/list/start/exec/delete. This test asserts the VM's exit
//! code and that every expected check line was printed.

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

#[test]
fn cgroup_v2_limits_and_lifecycle_in_a_vm() {
    require_root();
    let vm = repo_root().join("integration/vm");
    let bins = bin_dir();
    let out = Command::new(vm.join("run.sh"))
        .arg(&bins.0)
        .arg(vm.join("rsrun_v2.sh"))
        .env("RS_VM_TIMEOUT", "180")
        .output()
        .expect("run integration/vm/run.sh (needs integration/vm/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "VM test failed (2: setup missing, 3: VM crashed or timed out); see the log above"
    );
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
        "ok   - start exit code = 0",
        "ok   - status after start = running",
        "ok   - exec reads its pids.max = 20",
        "ok   - delete -f exit code = 0",
        "ok   - list after delete = ",
        "ok   - delete: cgroup left = ",
        "ok   - leftover cgroups = ",
        "rsrun_v2: 0 failure(s)",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line:?}"
        );
    }
}

/// `rsrun update` of a running container on pure cgroup v2
/// (integration/vm/update_v2.sh): memory.max, cpu.max, cpu.weight,
/// memory.swap.max and pids.max change; bad or refused values change
/// nothing; the new pids.max stops a fork loop.
#[test]
fn cgroup_v2_update_in_a_vm() {
    require_root();
    let vm = repo_root().join("integration/vm");
    let bins = bin_dir();
    let out = Command::new(vm.join("run.sh"))
        .arg(&bins.0)
        .arg(vm.join("update_v2.sh"))
        .env("RS_VM_TIMEOUT", "180")
        .output()
        .expect("run integration/vm/run.sh (needs integration/vm/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "VM test failed (2: setup missing, 3: VM crashed or timed out); see the log above"
    );
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
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line:?}"
        );
    }
}
