//! The cgroup controllers beyond memory/cpu/pids/devices on this v1 (hybrid) host: blkio
//! weight and throttling, memory swappiness and disableOOMKiller, net_cls, hugetlb (bound to
//! the cgroup2 mount on a hybrid host), each read back from inside the container (its
//! /sys/fs/cgroup/<hierarchy> is its own cgroup dir); and values refused before anything is
//! created. Where the host lacks a controller the test says so and skips that part.
//! The pure v2 equivalents run in a VM: see cgroupv2.rs.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use integration::*;
use serde_json::json;

const CG: &str = "/sys/fs/cgroup";

/// Whether v1 `controller` is mounted as a hierarchy of its own or co-mounted.
fn v1_mounted(controller: &str) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines().any(|l| {
        let Some((_, tail)) = l.split_once(" - ") else {
            return false;
        };
        let f: Vec<&str> = tail.split_whitespace().collect();
        f.first() == Some(&"cgroup")
            && f.get(2)
                .is_some_and(|o| o.split(',').any(|x| x == controller))
    })
}

/// The whole disk (MAJ, MIN) holding `p`, None for a filesystem without a block device.
fn disk_of(p: &Path) -> Option<(u64, u64)> {
    let dev = std::fs::metadata(p).unwrap().dev();
    let (maj, min) = (
        (dev >> 8) & 0xfff | (dev >> 32) & !0xfff,
        (dev & 0xff) | ((dev >> 12) & 0xffff_ff00),
    );
    let sys = format!("/sys/dev/block/{maj}:{min}");
    if !Path::new(&sys).exists() {
        return None;
    }
    // Throttling takes whole disks; a partition's parent holds its queue.
    if Path::new(&sys).join("partition").exists() {
        let parent = std::fs::read_to_string(format!("{sys}/../dev")).ok()?;
        let (a, b) = parent.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    Some((maj, min))
}

/// The number in a v1 weight file ("300", or "default 300" on some kernels).
fn weight_of(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("")
}

#[test]
fn blkio_weight_and_throttle_on_the_bundle_disk() {
    if !v1_mounted("blkio") {
        eprintln!("SKIP blkio_weight_and_throttle_on_the_bundle_disk: no v1 blkio hierarchy");
        return;
    }
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let mut blkio = json!({"weight": 300});
    let disk = disk_of(&b.dir);
    match disk {
        Some((maj, min)) => {
            blkio["throttleReadBpsDevice"] = json!([{"major": maj, "minor": min, "rate": 1048576}]);
            blkio["throttleWriteIOPSDevice"] = json!([{"major": maj, "minor": min, "rate": 77}]);
        }
        None => {
            eprintln!("NOTE: the bundle's filesystem has no block device; throttle part skipped")
        }
    }
    b.config["linux"]["resources"]["blockIO"] = blkio;
    // runc's choice: blkio.weight where CFQ exists, else BFQ's file.
    let host_cfq = Path::new(CG).join("blkio/blkio.weight").exists();
    let weight_file = if host_cfq {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    let out = run_in(
        &rt,
        &mut b,
        &format!(
            "cat {CG}/blkio/{weight_file}; echo --; cat {CG}/blkio/blkio.throttle.read_bps_device; \
             echo --; cat {CG}/blkio/blkio.throttle.write_iops_device"
        ),
    );
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(weight_of(parts[0]), "300", "{out}");
    if let Some((maj, min)) = disk {
        assert_eq!(parts[1].trim(), format!("{maj}:{min} 1048576"), "{out}");
        assert_eq!(parts[2].trim(), format!("{maj}:{min} 77"), "{out}");
    }
}

#[test]
fn memory_swappiness_and_oom_killer_disabled() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]["resources"]["memory"] =
        json!({"swappiness": 7, "disableOOMKiller": true, "kernel": 1048576, "kernelTCP": 1048576});
    let out = run_in(
        &rt,
        &mut b,
        &format!("cat {CG}/memory/memory.swappiness {CG}/memory/memory.oom_control"),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("7"), "{out}");
    assert!(
        out.lines().any(|l| l == "oom_kill_disable 1"),
        "oom killer not disabled:\n{out}"
    );
}

#[test]
fn net_cls_classid() {
    if !v1_mounted("net_cls") {
        eprintln!("SKIP net_cls_classid: the host has no v1 net_cls hierarchy mounted");
        // Without one, asking for a classid must fail clearly and leave nothing behind.
        assert_refused(json!({"network": {"classID": 1048577}}), &["net_cls"]);
        return;
    }
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]["resources"]["network"] = json!({"classID": 1048577});
    let dir = if Path::new(CG).join("net_cls").is_dir() {
        "net_cls"
    } else {
        "net_cls,net_prio"
    };
    let out = run_in(&rt, &mut b, &format!("cat {CG}/{dir}/net_cls.classid"));
    assert_eq!(out.trim(), "1048577");
}

/// The host's smallest huge page size name and whether the hugetlb controller lives in v1.
fn hugetlb_host() -> Option<(String, bool)> {
    let mut kbs: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kbs.sort();
    let kb = *kbs.first()?;
    let name = match kb {
        kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    };
    if v1_mounted("hugetlb") {
        return Some((name, true));
    }
    let v2 = std::fs::read_to_string(format!("{CG}/unified/cgroup.controllers")).ok()?;
    v2.split_whitespace()
        .any(|c| c == "hugetlb")
        .then_some((name, false))
}

#[test]
fn hugetlb_limit() {
    let Some((size, v1)) = hugetlb_host() else {
        eprintln!("SKIP hugetlb_limit: no huge page sizes or no hugetlb controller on this host");
        return;
    };
    let root_ctl = format!("{CG}/unified/cgroup.subtree_control");
    let root_enables = std::fs::read_to_string(&root_ctl).is_ok_and(|s| s.contains("hugetlb"));
    if !v1 && !root_enables {
        // hugetlb is bound to the host's cgroup2 root, which does not enable it, and the
        // engine never writes the host's root: a clear refusal, nothing left behind.
        eprintln!("NOTE hugetlb_limit: {root_ctl} lacks hugetlb; checking the refusal");
        assert_refused(
            json!({"hugepageLimits": [{"pageSize": size, "limit": 4194304}]}),
            &["hugetlb", "does not enable it"],
        );
        return;
    }
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": size, "limit": 4194304}]);
    let file = match v1 {
        true => format!("{CG}/hugetlb/hugetlb.{size}.limit_in_bytes"),
        false => format!("{CG}/unified/hugetlb.{size}.max"),
    };
    let out = run_in(&rt, &mut b, &format!("cat {file}"));
    drop(b);
    drop(rt);
    assert_eq!(out.trim(), "4194304", "{file}");
}

#[test]
fn bad_values_are_refused_before_anything_is_created() {
    assert_refused(
        json!({"blockIO": {"weight": 5}}),
        &["linux.resources.blockIO.weight: 5 is out of range 10-1000"],
    );
    assert_refused(
        json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
        &["linux.resources.blockIO.throttleReadBpsDevice[0]", "-1:0"],
    );
    assert_refused(
        json!({"memory": {"swappiness": 101}}),
        &["linux.resources.memory.swappiness", "101"],
    );
    assert_refused(
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
        &["linux.resources.hugepageLimits[0].pageSize", "\"3MB\""],
    );
    assert_refused(
        json!({"network": {"priorities": [{"name": "eth 0", "priority": 1}]}}),
        &["linux.resources.network.priorities[0].name"],
    );
    assert_refused(
        json!({"rdma": {"mlx5_0": {}}}),
        &["linux.resources.rdma[\"mlx5_0\"]"],
    );
    // The examples: a negative weight, an unknown device type, cpus "x".
    assert_refused(
        json!({"cpu": {"shares": -5}}),
        &["linux.resources.cpu.shares"],
    );
    assert_refused(
        json!({"devices": [{"allow": true, "type": "z", "access": "rwm"}]}),
        &["linux.resources.devices[0].type"],
    );
    assert_refused(json!({"cpu": {"cpus": "x"}}), &["linux.resources.cpu.cpus"]);
}

#[test]
fn missing_rdma_controller_is_refused_cleanly() {
    if v1_mounted("rdma") {
        eprintln!("SKIP missing_rdma_controller_is_refused_cleanly: this host has rdma");
        return;
    }
    assert_refused(
        json!({"rdma": {"mlx5_0": {"hcaHandles": 2}}}),
        &["rdma cgroup controller is not available"],
    );
}
