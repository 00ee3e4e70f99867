//! What a process inside an rsrun container is and may do: namespaces, root
//! (pivot or not, read-only), sysctls, rlimits, user and groups, the five
//! capability sets, no_new_privs, oom_score_adj, env/cwd, inherited fds, and
//! that the host rsrun binary is out of reach (CVE-2019-5736). Every check
//! reads the kernel's view from inside the container; runc is the reference
//! where the expected value is kernel arithmetic. Mounts, devices and masked
//! paths are in isolation_mounts.rs.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use integration::*;
use serde_json::{json, Value};

fn add_ns(b: &mut Bundle, ns: Value) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(ns);
}

fn host_ns_ino(kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .ino()
}

// ---------------------------------------------------------------- namespaces

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    assert_eq!(run_in(&rt, &mut b, "echo $$").trim(), "1");
}

#[test]
fn uts_namespace_sets_hostname_and_domainname() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["hostname"] = json!("rs-host");
    b.config["domainname"] = json!("rs.example");
    let out = run_in(&rt, &mut b, "hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["rs-host", "rs.example"]);
}

#[test]
fn ipc_and_net_namespaces_differ_from_the_host() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let out = run_in(
        &rt,
        &mut b,
        "stat -L -c %i /proc/self/ns/ipc /proc/self/ns/net; ls /sys/class/net",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_ne!(l[0].parse::<u64>().unwrap(), host_ns_ino("ipc"));
    assert_ne!(l[1].parse::<u64>().unwrap(), host_ns_ino("net"));
    assert_eq!(&l[2..], ["lo"], "a fresh net namespace has only lo");
}

#[test]
fn mount_namespace_differs_from_the_host() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let out = run_in(
        &rt,
        &mut b,
        "stat -L -c %i /proc/self/ns/mnt; [ -e /work ] && echo HOST-ROOT || echo OWN-ROOT",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_ne!(l[0].parse::<u64>().unwrap(), host_ns_ino("mnt"));
    assert_eq!(l[1], "OWN-ROOT");
}

#[test]
fn cgroup_namespace_shows_root_paths() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let without = run_in(&rt, &mut b, "cat /proc/self/cgroup");
    assert!(
        without.lines().all(|l| l.contains(":/rstest/")),
        "no cgroupns: host paths expected: {without}"
    );
    add_ns(&mut b, json!({"type": "cgroup"}));
    let with = run_in(&rt, &mut b, "cat /proc/self/cgroup");
    assert!(
        !with.is_empty() && with.lines().all(|l| l.ends_with(":/")),
        "cgroupns: {with}"
    );
}

#[test]
fn time_namespace_applies_offsets() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    add_ns(&mut b, json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] =
        json!({"boottime": {"secs": 864000}, "monotonic": {"secs": 1728000, "nanosecs": 0}});
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = run_in(
        &rt,
        &mut b,
        "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime",
    );
    let l: Vec<&str> = out.lines().collect();
    let offsets: Vec<String> = l[..2]
        .iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        offsets.contains(&"monotonic 1728000 0".to_string()),
        "{out}"
    );
    assert!(offsets.contains(&"boottime 864000 0".to_string()), "{out}");
    let up: f64 = l[2].parse().unwrap();
    assert!(
        up >= host_up + 864000.0 && up < host_up + 864000.0 + 60.0,
        "uptime {up} vs host {host_up}"
    );
}

#[test]
fn user_namespace_maps_root_to_100000() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    add_ns(&mut b, json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    let out = run_in(
        &rt,
        &mut b,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
    );
    let l: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(l[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(l[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(l[2], ["0"]);
    assert_eq!(
        l[3],
        ["65534"],
        "host root files are unmapped (overflow uid) inside"
    );
}

/// An `ip netns` namespace, deleted on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let ns = NetNs(format!("rstest-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    let path = format!("/var/run/netns/{}", ns.0);
    let want = std::fs::metadata(&path).unwrap().ino();
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(path);
        }
    }
    let out = run_in(&rt, &mut b, "stat -L -c %i /proc/self/ns/net");
    assert_eq!(out.trim().parse::<u64>().unwrap(), want);
}
// ---------------------------------------------------------------- root

#[test]
fn no_pivot_runs_in_the_rootfs() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    std::fs::write(b.rootfs().join("marker"), "in-rootfs\n").unwrap();
    b.sh("cat /marker; [ -e /work ] && echo HOST-ROOT || echo OWN-ROOT")
        .save();
    let r = rt.run(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path(),
        &unique("nopivot"),
    ]);
    assert_eq!(r.ok(), "in-rootfs\nOWN-ROOT\n");
}

#[test]
fn readonly_root() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let probe = "touch /x 2>/dev/null && echo WROTE || echo DENIED";
    b.config["root"]["readonly"] = json!(true);
    assert_eq!(run_in(&rt, &mut b, probe), "DENIED\n");
    assert!(!b.rootfs().join("x").exists());
    b.config["root"]["readonly"] = json!(false);
    assert_eq!(run_in(&rt, &mut b, probe), "WROTE\n");
    assert!(b.rootfs().join("x").exists());
}

// ---------------------------------------------------------------- sysctl, rlimits

#[test]
fn sysctls_namespaced_applied_host_wide_refused() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"});
    let out = run_in(
        &rt,
        &mut b,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    assert_eq!(out, "1\n123456789\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );

    let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    b.config["linux"]["sysctl"] = json!({"vm.swappiness": "7"});
    let (id, r) = try_run_in(&rt, &mut b, "true");
    let err = r.err();
    assert!(
        err.contains("vm.swappiness") && err.contains("not namespaced"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness
    );
    assert_nothing_left(&rt, &b, &id);
}

fn host_hard_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r.rlim_max
}

#[test]
fn rlimits() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 513, "hard": 1025},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]);
    assert_eq!(
        run_in(&rt, &mut b, "ulimit -n; ulimit -Hn; ulimit -Hc"),
        "513\n1025\n8\n"
    );

    // Raising the hard limit needs CAP_SYS_RESOURCE, which root lacks here.
    let above = host_hard_nofile() + 1;
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": above}]);
    let (id, r) = try_run_in(&rt, &mut b, "true");
    let err = r.err();
    assert!(
        err.contains("setrlimit") && err.contains(&above.to_string()),
        "{err}"
    );
    assert_nothing_left(&rt, &b, &id);
}

// ---------------------------------------------------------------- identity, capabilities

#[test]
fn user_additional_gids_and_umask() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 2000], "umask": 0o027});
    let out = run_in(
        &rt,
        &mut b,
        "id -u; id -g; id -G; umask; touch /dev/shm/u; stat -c %a /dev/shm/u",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!((l[0], l[1]), ("1000", "1000"));
    let mut groups: Vec<&str> = l[2].split(' ').collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups, ["10", "1000", "2000"], "{}", l[2]);
    assert_eq!((l[3], l[4]), ("0027", "640"));
}

fn caps_of(rt: &Runtime, b: &mut Bundle) -> Vec<String> {
    let out = run_in(rt, b, "grep ^Cap /proc/self/status");
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|k| format!("{k}={}", status_field(&out, k)))
        .collect()
}

#[test]
fn capability_sets() {
    let (rs, runc, mut b) = (Runtime::rsrun(), Runtime::runc(), Bundle::new());
    // Default spec as root: no inheritable caps (CVE-2022-29162); ambient not raised without them.
    let want = [
        "CapInh=0000000000000000",
        "CapPrm=0000000020000420",
        "CapEff=0000000020000420",
        "CapBnd=0000000020000420",
        "CapAmb=0000000000000000",
    ];
    assert_eq!(caps_of(&rs, &mut b), want);
    assert_eq!(caps_of(&runc, &mut b), want, "runc agrees");
    // Non-root: after execve Prm = Eff = Amb, and ambient holds only caps in
    // permitted AND inheritable (NET_BIND_SERVICE; not KILL, not NET_RAW).
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "ambient": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_NET_RAW"]});
    let want = [
        "CapInh=0000000000002401",
        "CapPrm=0000000000000400",
        "CapEff=0000000000000400",
        "CapBnd=0000000000002421",
        "CapAmb=0000000000000400",
    ];
    assert_eq!(caps_of(&rs, &mut b), want);
    assert_eq!(caps_of(&runc, &mut b), want, "runc agrees");
}

#[test]
fn no_new_privileges() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    for (nnp, want) in [(true, "1"), (false, "0")] {
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let out = run_in(&rt, &mut b, "grep ^NoNewPrivs /proc/self/status");
        assert_eq!(
            status_field(&out, "NoNewPrivs"),
            want,
            "noNewPrivileges={nnp}"
        );
    }
}

#[test]
fn oom_score_adj() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["oomScoreAdj"] = json!(500);
    assert_eq!(run_in(&rt, &mut b, "cat /proc/self/oom_score_adj"), "500\n");
    // Lowering below the current value needs CAP_SYS_RESOURCE, which root lacks here.
    b.config["process"]["oomScoreAdj"] = json!(-500);
    let (id, r) = try_run_in(&rt, &mut b, "cat /proc/self/oom_score_adj");
    let err = r.err();
    assert!(
        err.contains("oomScoreAdj -500") || err.contains("oom_score_adj"),
        "{err}"
    );
    assert_nothing_left(&rt, &b, &id);
}

#[test]
fn env_and_cwd() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("RSTEST_VAR=hello world"));
    b.config["process"]["cwd"] = json!("/tmp");
    assert_eq!(
        run_in(&rt, &mut b, "echo \"$RSTEST_VAR\"; pwd"),
        "hello world\n/tmp\n"
    );
}

// ---------------------------------------------------------------- fds

#[test]
fn no_fd_leaks_into_init_or_exec() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let fds = |out: &str| {
        let mut v: Vec<u32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
        v.sort();
        v
    };
    // 3 is the directory ls itself opens.
    assert_eq!(fds(&run_in(&rt, &mut b, "ls /proc/self/fd")), [0, 1, 2, 3]);
    b.config["process"]["args"] = json!(["sleep", "60"]);
    b.save();
    let id = unique("fds");
    create_logged(&rt, &b, &id);
    let out = rt.run(&["exec", &id, "ls", "/proc/self/fd"]);
    assert_eq!(fds(out.ok()), [0, 1, 2, 3], "exec process");
}

/// `rsrun run` with `file` as fd 3 and `--preserve-fds n`.
fn run_with_fd3(rt: &Runtime, b: &Bundle, file: &std::fs::File, n: &str) -> Run {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = file.as_raw_fd();
    let mut c = rt.cmd(&[
        "run",
        "--preserve-fds",
        n,
        "--bundle",
        b.path(),
        &unique("pfd"),
    ]);
    // SAFETY: only async-signal-safe dup2/fcntl run between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

#[test]
fn preserve_fds_passes_fd_3() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    std::fs::write(b.dir.join("fd3"), "through fd 3\n").unwrap();
    let file = std::fs::File::open(b.dir.join("fd3")).unwrap();
    b.sh("cat <&3 2>/dev/null || echo NO-FD3").save();
    assert_eq!(run_with_fd3(&rt, &b, &file, "1").ok(), "through fd 3\n");
    let file = std::fs::File::open(b.dir.join("fd3")).unwrap();
    assert_eq!(
        run_with_fd3(&rt, &b, &file, "0").ok(),
        "NO-FD3\n",
        "without --preserve-fds fd 3 must be closed"
    );
}

// ---------------------------------------------------------------- CVEs

#[test]
fn host_binary_not_reachable_through_proc_exe() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let bin = std::fs::canonicalize(rsrun_bin()).unwrap();
    // Through an fd: a write via /proc/PID/exe changes this inode, while a
    // concurrent cargo rebuild replaces the path with a new one.
    let mut file = std::fs::File::open(&bin).unwrap();
    let snapshot = |f: &mut std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut bytes).unwrap();
        (f.metadata().unwrap().mtime(), bytes)
    };
    let before = snapshot(&mut file);
    b.sh("sleep 60").save();
    let id = unique("exe");
    // While created, the container's pid 1 is still rsrun's init stage.
    create_logged(&rt, &b, &id);
    let probe = "ls -l /proc/1/exe 2>&1; echo x >> /proc/1/exe 2>/dev/null && echo WROTE || echo WRITE-DENIED";
    let out = rt.run(&["exec", &id, "sh", "-c", probe]);
    let out = out.ok();
    println!("created-state probe: {out}");
    assert!(
        !out.contains("rsrun") && !out.contains(bin.to_str().unwrap()),
        "host binary visible: {out}"
    );
    assert!(out.ends_with("WRITE-DENIED\n"), "{out}");
    rt.run(&["start", &id]).ok();
    let out = rt.run(&["exec", &id, "sh", "-c", probe]);
    assert!(out.ok().contains("-> /bin/busybox"), "{}", out.stdout);
    assert!(before == snapshot(&mut file), "host rsrun binary changed");
}

/// CVE-2019-5736 where non-dumpable is not enough: the container keeps
/// CAP_SYS_PTRACE (no user namespace). One of its processes grabs
/// /proc/1/exe while pid 1 is still rsrun's init, and after `start` (init
/// has exec'd, no rsrun runs any more) reopens it for writing. rsrun ran
/// from a sealed memfd copy, so the link is that copy and the write fails.
/// Run against a copy of rsrun: a failure must not damage the one the
/// other tests use.
#[test]
fn ptrace_capable_container_cannot_overwrite_the_host_binary() {
    require_root();
    let dir = std::env::temp_dir().join(unique("rstest-sealed"));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("rsrun");
    std::fs::copy(rsrun_bin(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let rt = Runtime::with_bin(copy.clone());
    let mut b = Bundle::new();
    for set in ["bounding", "effective", "permitted"] {
        let caps = &mut b.config["process"]["capabilities"][set];
        caps.as_array_mut().unwrap().push("CAP_SYS_PTRACE".into());
    }
    // The root is read-only in the default spec: /tmp on a tmpfs.
    let tmp = serde_json::json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"});
    b.config["mounts"].as_array_mut().unwrap().push(tmp);
    b.sh("sleep 60").save();
    let id = unique("sealed");
    create_logged(&rt, &b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // Its stdio off our pipes: `run` waits for their EOF.
    let attacker = "exec </dev/null >/dev/null 2>&1; exec 3</proc/1/exe; \
                    readlink /proc/1/exe > /tmp/link; \
                    while [ ! -e /tmp/go ]; do sleep 0.05; done; \
                    (echo x >> /proc/self/fd/3) && echo WROTE > /tmp/res || echo DENIED > /tmp/res; \
                    sleep 30";
    let r = rt.run(&["exec", "-d", &id, "sh", "-c", attacker]);
    let in_root = |f: &str| format!("/proc/{pid}/root/tmp/{f}");
    let ten = std::time::Duration::from_secs(10);
    let grabbed = wait_until(ten, || std::path::Path::new(&in_root("link")).exists());
    rt.run(&["start", &id]).ok();
    let _ = std::fs::write(in_root("go"), "");
    let mut res = String::new();
    wait_until(ten, || {
        res = std::fs::read_to_string(in_root("res")).unwrap_or_default();
        !res.is_empty()
    });
    let link = std::fs::read_to_string(in_root("link")).unwrap_or_default();
    rt.run(&["delete", "-f", &id]).ok();
    // The runtime's own cleanup still needs the copy.
    drop(rt);
    let after = std::fs::read(&copy).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(grabbed, "the attacker never got /proc/1/exe");
    let link = link.trim();
    assert!(
        link.starts_with("/memfd:rsrun"),
        "init ran the host binary: {link}"
    );
    assert_eq!(
        res.trim(),
        "DENIED",
        "the attacker wrote through /proc/1/exe"
    );
    assert!(before == after, "the rsrun binary changed");
}
