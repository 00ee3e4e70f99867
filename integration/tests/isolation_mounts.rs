//! The container's filesystem view as rsrun builds it: the spec's mounts
//! (bind, rbind, flags, tmpfs options, propagation, file and relative
//! sources, spec order), the default proc/sysfs/devpts/mqueue/cgroup mounts,
//! /dev nodes and symlinks, masked and read-only paths, and the
//! CVE-2025-31133 /dev/null defence. Everything is read back from inside the
//! container (mountinfo, stat), with runc's behaviour as the reference.

use std::path::Path;
use std::process::Command;

use integration::*;
use serde_json::{json, Value};

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

/// A host mount made for one test, lazily unmounted on drop.
struct HostMount(std::path::PathBuf);

impl HostMount {
    fn tmpfs(dir: &Path, extra: &[&str]) -> HostMount {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "rstest", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        let guard = HostMount(dir.to_path_buf());
        if !extra.is_empty() {
            assert!(Command::new("mount")
                .args(extra)
                .arg(dir)
                .status()
                .unwrap()
                .success());
        }
        guard
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// ---------------------------------------------------------------- mounts

#[test]
fn bind_ro_bind_and_rbind_mounts() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let src = b.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "hello\n").unwrap();
    let _sub = HostMount::tmpfs(&src.join("sub"), &[]);
    std::fs::write(src.join("sub/marker"), "").unwrap();
    let s = src.to_str().unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/mnt/ro", "type": "bind", "source": s, "options": ["bind", "ro"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/b", "type": "bind", "source": s, "options": ["bind"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/rb", "type": "bind", "source": s, "options": ["rbind"]}),
    );
    let out = run_in(
        &rt,
        &mut b,
        "cat /mnt/ro/f; touch /mnt/ro/new 2>/dev/null && echo RO-WRITABLE || echo RO-DENIED; \
        echo b:$(ls /mnt/b/sub); echo rb:$(ls /mnt/rb/sub); touch /mnt/b/new2 && echo RW-OK",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["hello", "RO-DENIED", "b:", "rb:marker", "RW-OK"]
    );
    assert!(!src.join("new").exists() && src.join("new2").exists());
}

#[test]
fn nosuid_nodev_noexec_and_tmpfs_size_mode() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    add_mount(
        &mut b,
        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=4m", "mode=710"]}),
    );
    let out = run_in(&rt, &mut b, "stat -c %a /mnt/t; cp /bin/busybox /mnt/t/bb; /mnt/t/bb true 2>/dev/null && echo EXEC-OK || echo EXEC-DENIED; \
        df -k /mnt/t | tail -1; cat /proc/self/mountinfo");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "710");
    assert_eq!(l[1], "EXEC-DENIED");
    assert_eq!(l[2].split_whitespace().nth(1), Some("4096"), "df: {}", l[2]);
    let m = MountEntry::find(&out, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(m.has_option(o), "{o} missing: {m:?}");
    }
    assert!(
        m.has_super_option("size=4096k") && m.has_super_option("mode=710"),
        "{m:?}"
    );
}

#[test]
fn mount_propagation_options() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    // A shared host mount: its copies are slaves of it in the container's namespace.
    let _shared = HostMount::tmpfs(&b.dir.join("shsrc"), &["--make-shared"]);
    let s = b.dir.join("shsrc").to_str().unwrap().to_string();
    add_mount(
        &mut b,
        json!({"destination": "/mnt/sh", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/sl", "type": "bind", "source": s, "options": ["rbind", "rslave"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/pr", "type": "bind", "source": s, "options": ["rbind", "rprivate"]}),
    );
    let out = run_in(&rt, &mut b, "cat /proc/self/mountinfo");
    let opt = |mp| MountEntry::find(&out, mp).propagation.join(" ");
    assert!(
        opt("/mnt/sh").starts_with("shared:"),
        "rshared: {}",
        opt("/mnt/sh")
    );
    assert!(
        opt("/mnt/sl").starts_with("master:"),
        "rslave: {}",
        opt("/mnt/sl")
    );
    assert_eq!(opt("/mnt/pr"), "", "rprivate has no propagation fields");
}

#[test]
fn proc_sysfs_devpts_mqueue_shm_from_the_default_spec() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let out = run_in(
        &rt,
        &mut b,
        "touch /sys/x 2>/dev/null && echo SYS-RW || echo SYS-RO; cat /proc/self/mountinfo",
    );
    assert!(out.starts_with("SYS-RO\n"), "{out}");
    let want = [
        ("/proc", "proc", &[][..], &[][..]),
        (
            "/sys",
            "sysfs",
            &["ro", "nosuid", "nodev", "noexec"][..],
            &[][..],
        ),
        (
            "/dev/pts",
            "devpts",
            &["nosuid", "noexec"][..],
            &["gid=5", "mode=620", "ptmxmode=666"][..],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            &["nosuid", "nodev", "noexec"][..],
            &[][..],
        ),
        (
            "/dev/shm",
            "tmpfs",
            &["nosuid", "nodev", "noexec"][..],
            &["size=65536k"][..],
        ),
        (
            "/dev",
            "tmpfs",
            &["nosuid"][..],
            &["size=65536k", "mode=755"][..],
        ),
    ];
    for (mp, fs, opts, sopts) in want {
        let m = MountEntry::find(&out, mp);
        assert_eq!(m.fstype, fs, "{mp}");
        assert!(
            opts.iter().all(|x| m.has_option(x)),
            "{mp}: {m:?} lacks {opts:?}"
        );
        assert!(
            sopts.iter().all(|x| m.has_super_option(x)),
            "{mp}: {m:?} lacks {sopts:?}"
        );
    }
}

#[test]
fn cgroup_mount_is_read_only_with_the_hosts_v1_hierarchies() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let out = run_in(&rt, &mut b, "ls /sys/fs/cgroup; echo ==; mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo CG-RW || echo CG-RO; \
        touch /sys/fs/cgroup/x 2>/dev/null && echo TOP-RW || echo TOP-RO; cat /proc/self/mountinfo");
    let (ls, rest) = out.split_once("==\n").unwrap();
    let mut host: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    host.sort();
    assert_eq!(
        ls.lines().collect::<Vec<_>>(),
        host,
        "one dir per host hierarchy"
    );
    assert!(rest.starts_with("CG-RO\nTOP-RO\n"), "{rest}");
    let top = MountEntry::find(rest, "/sys/fs/cgroup");
    assert_eq!(
        (top.fstype.as_str(), top.has_option("ro")),
        ("tmpfs", true),
        "{top:?}"
    );
    let mem = MountEntry::find(rest, "/sys/fs/cgroup/memory");
    assert_eq!(mem.fstype, "cgroup");
    assert!(
        mem.has_option("ro") && mem.has_super_option("memory"),
        "{mem:?}"
    );
}

/// runc's mount option extensions, checked against runc first (the
/// reference must pass) and then rsrun. `setup` adds mounts to the bundle
/// and returns host guards; `check` asserts on the container's output.
fn runc_then_rsrun<G>(script: &str, setup: impl Fn(&mut Bundle) -> G, check: impl Fn(&str, &str)) {
    for (name, rt) in [("runc", Runtime::runc()), ("rsrun", Runtime::rsrun())] {
        let mut b = Bundle::new();
        let guards = setup(&mut b);
        let (_, r) = try_run_in(&rt, &mut b, script);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        check(name, &r.stdout);
        drop(guards);
    }
}

#[test]
fn recursive_mount_options_reach_submounts() {
    let setup = |b: &mut Bundle| {
        let src = b.dir.join("rsrc");
        let top = HostMount::tmpfs(&src, &[]);
        let sub = HostMount::tmpfs(&src.join("sub"), &[]);
        let opts = ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"];
        add_mount(
            b,
            json!({"destination": "/mnt/r", "type": "bind", "source": src, "options": opts}),
        );
        (sub, top)
    };
    let script =
        "for d in /mnt/r /mnt/r/sub; do touch $d/x 2>/dev/null && echo $d RW || echo $d RO; done; \
        cat /proc/self/mountinfo";
    runc_then_rsrun(script, setup, |name, out| {
        assert!(
            out.starts_with("/mnt/r RO\n/mnt/r/sub RO\n"),
            "{name}: {out}"
        );
        for mp in ["/mnt/r", "/mnt/r/sub"] {
            let m = MountEntry::find(out, mp);
            let all = ["ro", "nosuid", "nodev", "noexec"]
                .iter()
                .all(|o| m.has_option(o));
            assert!(all, "{name}: {m:?}");
        }
    });
}

#[test]
fn nosymfollow_mount_option() {
    let setup = |b: &mut Bundle| {
        add_mount(
            b,
            json!({"destination": "/mnt/s", "type": "tmpfs", "source": "tmpfs", "options": ["nosymfollow"]}),
        );
    };
    let script = "ln -s /etc/passwd /mnt/s/l; cat /mnt/s/l >/dev/null 2>&1 && echo FOLLOW || echo NOFOLLOW; \
        cat /proc/self/mountinfo";
    runc_then_rsrun(script, setup, |name, out| {
        assert!(out.starts_with("NOFOLLOW\n"), "{name}: {out}");
        assert!(
            MountEntry::find(out, "/mnt/s").has_option("nosymfollow"),
            "{name}"
        );
    });
}

#[test]
fn tmpcopyup_fills_the_tmpfs_from_the_rootfs() {
    let setup = |b: &mut Bundle| {
        add_mount(
            b,
            json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}),
        );
    };
    // The root is read-only; /etc is a writable tmpfs that still has passwd.
    let script = "head -1 /etc/passwd; touch /etc/new && echo ETC-RW; cat /proc/self/mountinfo";
    runc_then_rsrun(script, setup, |name, out| {
        assert!(
            out.starts_with("root:x:0:0:root:/root:/bin/sh\nETC-RW\n"),
            "{name}: {out}"
        );
        assert_eq!(MountEntry::find(out, "/etc").fstype, "tmpfs", "{name}");
    });
}

#[test]
fn file_bind_and_relative_bind_source() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    std::fs::write(b.dir.join("hostfile"), "filebind\n").unwrap();
    std::fs::create_dir(b.dir.join("reldir")).unwrap();
    std::fs::write(b.dir.join("reldir/x"), "relative\n").unwrap();
    let file = b.dir.join("hostfile").to_str().unwrap().to_string();
    add_mount(
        &mut b,
        json!({"destination": "/etc/rsfile", "type": "bind", "source": file, "options": ["bind", "ro"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/rel", "type": "bind", "source": "reldir", "options": ["rbind"]}),
    );
    let out = run_in(
        &rt,
        &mut b,
        "[ -f /etc/rsfile ] && cat /etc/rsfile; cat /mnt/rel/x",
    );
    assert_eq!(out, "filebind\nrelative\n");
}

#[test]
fn rootfs_propagation_shared() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let root_opt = |out: &str| MountEntry::find(out, "/").propagation.join(" ");
    let default = run_in(&rt, &mut b, "cat /proc/self/mountinfo");
    assert!(
        !root_opt(&default).contains("shared:"),
        "default root is not shared: {}",
        root_opt(&default)
    );
    b.config["linux"]["rootfsPropagation"] = json!("shared");
    let shared = run_in(&rt, &mut b, "cat /proc/self/mountinfo");
    assert!(
        root_opt(&shared).contains("shared:"),
        "{}",
        root_opt(&shared)
    );
}

#[test]
fn mounts_happen_in_spec_order() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    add_mount(
        &mut b,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/mnt/a/b", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    let out = run_in(&rt, &mut b, "cat /proc/self/mountinfo");
    let (a, ab) = (
        MountEntry::find(&out, "/mnt/a"),
        MountEntry::find(&out, "/mnt/a/b"),
    );
    assert_eq!(
        ab.parent, a.id,
        "/mnt/a/b must be mounted inside the /mnt/a tmpfs"
    );
    assert!(
        !b.rootfs().join("mnt/a/b").exists(),
        "b was created in the rootfs, not in the tmpfs"
    );
}

// ---------------------------------------------------------------- devices

#[test]
fn default_devices_and_dev_symlinks() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    let out = run_in(
        &rt,
        &mut b,
        "cd /dev && stat -c '%n %F %t:%T %a' null zero full random urandom tty; \
        for l in fd stdin stdout stderr ptmx; do echo $l $(readlink $l); done",
    );
    let want = "null character special file 1:3 666\nzero character special file 1:5 666\nfull character special file 1:7 666\n\
        random character special file 1:8 666\nurandom character special file 1:9 666\ntty character special file 5:0 666\n\
        fd /proc/self/fd\nstdin /proc/self/fd/0\nstdout /proc/self/fd/1\nstderr /proc/self/fd/2\nptmx pts/ptmx\n";
    assert_eq!(out, want.replace("\n        ", "\n"));
}

#[test]
fn spec_device_is_created_with_mode_and_owner() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 1000}]);
    let out = run_in(&rt, &mut b, "stat -c '%F %t:%T %a %u %g' /dev/fuse");
    assert_eq!(out.trim(), "character special file a:e5 600 1000 1000");
}

// ---------------------------------------------------------------- masked and read-only paths

#[test]
fn masked_paths() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    // /proc/kcore does not exist on this kernel; timer_list, keys and /sys/firmware have content on the host.
    assert!(!std::fs::read_to_string("/proc/timer_list")
        .unwrap()
        .is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().count() > 0);
    let out = run_in(
        &rt,
        &mut b,
        "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l; \
        stat -c %t:%T /proc/timer_list; cat /proc/self/mountinfo",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..4], ["0", "0", "0", "1:3"], "{out}");
    for dir in ["/proc/acpi", "/sys/firmware"] {
        let m = MountEntry::find(&out, dir);
        assert_eq!(
            (m.fstype.as_str(), m.has_option("ro")),
            ("tmpfs", true),
            "{dir} masked by a read-only tmpfs"
        );
    }
}

#[test]
fn readonly_paths() {
    let (rt, mut b) = (Runtime::rsrun(), Bundle::new());
    // domainname is per UTS namespace, so only the read-only mount can refuse this write.
    let out = run_in(&rt, &mut b, "echo rstest > /proc/sys/kernel/domainname 2>/dev/null && echo SYSCTL-WRITTEN || echo SYSCTL-DENIED; \
        cat /proc/self/mountinfo");
    assert!(out.starts_with("SYSCTL-DENIED\n"), "{out}");
    for p in ["/proc/sys", "/proc/bus", "/proc/irq", "/proc/fs"] {
        assert!(
            MountEntry::find(&out, p).has_option("ro"),
            "{p} not read-only"
        );
    }
    // This kernel has no CONFIG_MAGIC_SYSRQ; check the trigger only where it exists ('h' only prints help).
    if Path::new("/proc/sysrq-trigger").exists() {
        let out = run_in(&rt, &mut b, "echo h > /proc/sysrq-trigger 2>/dev/null && echo WRITTEN || echo DENIED; cat /proc/self/mountinfo");
        assert!(out.starts_with("DENIED\n"), "{out}");
        assert!(MountEntry::find(&out, "/proc/sysrq-trigger").has_option("ro"));
    } else {
        println!("note: /proc/sysrq-trigger absent on this kernel; not checked");
    }
}
// ---------------------------------------------------------------- CVE-2025-31133

/// Restores the host's core_pattern if a test changed it.
struct CorePattern(String);

impl Drop for CorePattern {
    fn drop(&mut self) {
        if std::fs::read_to_string("/proc/sys/kernel/core_pattern")
            .ok()
            .as_deref()
            != Some(&self.0)
        {
            let _ = std::fs::write("/proc/sys/kernel/core_pattern", &self.0);
        }
    }
}

#[test]
fn cve_2025_31133_dev_null_symlink_cannot_unmask() {
    let guard = CorePattern(std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap());
    let rt = Runtime::rsrun();
    // Writes through every masked file; a correct mask is /dev/null (1:3, empty).
    let script = "for f in /proc/timer_list /proc/keys; do echo rstest-pwned > $f 2>/dev/null; \
        echo $f $(stat -c %t:%T $f) $(wc -c < $f); done";
    let mask_ok = "/proc/timer_list 1:3 0\n/proc/keys 1:3 0\n";
    for variant in ["default /dev tmpfs", "no /dev mount", "/dev bind-mounted"] {
        let mut b = Bundle::new();
        let null = b.rootfs().join("dev/null");
        let _ = std::fs::remove_file(&null);
        std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", &null).unwrap();
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        if variant != "default /dev tmpfs" {
            mounts.retain(|m| m["destination"] != "/dev");
        }
        if variant == "/dev bind-mounted" {
            std::fs::create_dir(b.dir.join("devdir")).unwrap();
            std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.dir.join("devdir/null"))
                .unwrap();
            let src = b.dir.join("devdir").to_str().unwrap().to_string();
            mounts.insert(
                1,
                json!({"destination": "/dev", "type": "bind", "source": src, "options": ["rbind"]}),
            );
        }
        let (id, r) = try_run_in(&rt, &mut b, script);
        println!(
            "{variant}: exit {} stdout {:?} stderr {:?}",
            r.code, r.stdout, r.stderr
        );
        if r.code == 0 {
            assert_eq!(
                r.stdout, mask_ok,
                "{variant}: masked files must stay masked by the real /dev/null"
            );
        } else {
            assert!(
                r.stderr.contains("/dev/null"),
                "{variant}: refusal must name /dev/null: {}",
                r.stderr
            );
            assert_nothing_left(&rt, &b, &id);
        }
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            guard.0,
            "{variant}: host core_pattern changed"
        );
    }
}
