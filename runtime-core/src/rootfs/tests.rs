//! `prepare` against a temp rootfs with the recording [`Recorder`]: the
//! order and flags of every privileged call, without root.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::spec::{parse, Plan};
use crate::syscall::fake::{Call, Recorder};

fn plan_with(dir: &Path, linux_extra: &str, mounts: &str) -> Plan {
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    let json = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
            "mounts":[{mounts}],
            "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"pid"}}]{linux_extra}}}}}"#
    );
    Plan::from_spec("t", dir, parse(json.as_bytes()).unwrap()).unwrap()
}

fn targets(rec: &Recorder) -> Vec<(PathBuf, Option<String>, MsFlags)> {
    rec.mounts()
        .into_iter()
        .map(|c| match c {
            Call::Mount {
                target,
                fstype,
                flags,
                ..
            } => (target, fstype, flags),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn propagation_first_then_rootfs_bind_then_spec_order() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("data")).unwrap();
    let plan = plan_with(
        d.path(),
        r#","devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":384}]"#,
        r#"{"destination":"/proc","type":"proc","source":"proc"},
           {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]},
           {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["newinstance"]},
           {"destination":"/data","type":"bind","source":"data","options":["rbind","ro","rslave"]}"#,
    );
    let rec = Recorder::default();
    super::prepare(&plan, None, &rec).unwrap();
    let got = targets(&rec);
    let root = &plan.rootfs;
    let rec_slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    assert_eq!(
        got[0],
        (PathBuf::from("/"), None, rec_slave),
        "/ made non-shared before anything"
    );
    assert_eq!(
        got[1],
        (root.clone(), None, MsFlags::MS_BIND | MsFlags::MS_REC)
    );
    assert_eq!(
        got[2],
        (root.join("proc"), Some("proc".into()), MsFlags::empty())
    );
    assert_eq!(
        got[3],
        (root.join("dev"), Some("tmpfs".into()), MsFlags::MS_NOSUID)
    );
    assert_eq!(got[4].0, root.join("dev/pts"));
    assert_eq!(
        got[5],
        (root.join("data"), None, MsFlags::MS_BIND | MsFlags::MS_REC)
    );
    let remount = got[6].2;
    assert_eq!(got[6].0, root.join("data"));
    assert!(
        remount.contains(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY),
        "{remount:?}"
    );
    assert_eq!(
        got[7],
        (root.join("data"), None, rec_slave),
        "propagation after the mount"
    );
    assert_eq!(got.len(), 8);
    let nodes: Vec<(String, u64, u64, u32)> = rec
        .calls
        .borrow()
        .iter()
        .filter_map(|c| match c {
            Call::Mknod {
                name,
                major,
                minor,
                mode,
            } => Some((name.display().to_string(), *major, *minor, *mode)),
            _ => None,
        })
        .collect();
    assert_eq!(nodes.len(), 7, "{nodes:?}");
    assert_eq!(nodes[0], ("null".into(), 1, 3, 0o666));
    assert_eq!(nodes[6], ("fuse".into(), 10, 229, 0o600));
    assert!(root
        .join("dev/fd")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn shared_root_propagation_is_applied_only_after_pivot() {
    let d = tempfile::tempdir().unwrap();
    let plan = plan_with(d.path(), r#","rootfsPropagation":"shared""#, "");
    let rec = Recorder::default();
    super::prepare(&plan, None, &rec).unwrap();
    let first = targets(&rec)[0].clone();
    assert_eq!(
        first,
        (
            PathBuf::from("/"),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        )
    );
}

#[test]
fn symlinked_destination_stays_inside_the_rootfs() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("rootfs")).unwrap();
    std::os::unix::fs::symlink("/etc", d.path().join("rootfs/evil")).unwrap();
    let plan = plan_with(
        d.path(),
        "",
        r#"{"destination":"/evil/x","type":"tmpfs","source":"tmpfs"}"#,
    );
    let rec = Recorder::default();
    super::prepare(&plan, None, &rec).unwrap();
    assert_eq!(targets(&rec)[2].0, plan.rootfs.join("etc/x"));
    assert!(
        plan.rootfs.join("etc/x").is_dir(),
        "created inside the rootfs, not on the host"
    );
}

#[test]
fn proc_on_a_symlink_is_refused_before_any_mount_of_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("rootfs/real")).unwrap();
    std::os::unix::fs::symlink("real", d.path().join("rootfs/proc")).unwrap();
    let plan = plan_with(
        d.path(),
        "",
        r#"{"destination":"/proc","type":"proc","source":"proc"}"#,
    );
    let rec = Recorder::default();
    let err = super::prepare(&plan, None, &rec).unwrap_err().to_string();
    assert!(err.contains("ordinary directory"), "{err}");
    assert_eq!(
        targets(&rec).len(),
        2,
        "only the propagation and rootfs bind happened"
    );
}
