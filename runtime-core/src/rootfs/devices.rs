//! /dev inside the container: the OCI default device nodes, the spec's
//! `linux.devices`, and the standard symlinks. Everything is created relative
//! to an fd of the container's /dev (never a host path), so a /dev that is a
//! symlink cannot make us write outside the rootfs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::symlinkat;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result, SysContext};
use crate::rootfs::paths::{self, Leaf};
use crate::syscall::Sys;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Path under /dev (e.g. "null", "net/tun").
    pub name: String,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every OCI container gets.
pub fn defaults() -> Vec<Node> {
    let c = |name: &str, major, minor| Node {
        name: name.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    vec![
        c("null", 1, 3),
        c("zero", 1, 5),
        c("full", 1, 7),
        c("random", 1, 8),
        c("urandom", 1, 9),
        c("tty", 5, 0),
    ]
}

/// Converts a spec device (path must be under /dev).
pub fn from_spec(d: &LinuxDevice) -> Result<Node> {
    let path = d.path();
    let name = path.strip_prefix("/dev/").map_err(|_| {
        Error::InvalidSpec(format!(
            "linux.devices: {} is not under /dev",
            path.display()
        ))
    })?;
    if name
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::InvalidSpec(format!(
            "linux.devices: invalid path {}",
            path.display()
        )));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidSpec(format!(
                "linux.devices {}: type 'a' is not a node",
                path.display()
            )))
        }
    };
    Ok(Node {
        name: name.display().to_string(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates the nodes (mknod, or a bind of the host node when mknod is not
/// allowed, as in a user namespace) and the /dev symlinks.
pub fn populate(
    root_fd: &OwnedFd,
    rootfs: &Path,
    nodes: &[Node],
    in_userns: bool,
    sys: &dyn Sys,
) -> Result<()> {
    let dev = paths::create_in_root(root_fd, Path::new("dev"), Leaf::Dir)?;
    paths::verify_under(&dev, rootfs)?;
    // An O_PATH fd cannot be used for mknodat; reopen it as a real directory.
    let devdir = nix::fcntl::open(
        &paths::fd_path(&dev),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open container /dev".into())?;
    for n in nodes {
        create_node(&devdir, n, in_userns, sys).ctx(|| format!("create device /dev/{}", n.name))?;
    }
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        // /dev/ptmx may already be a node from a bind-mounted /dev; keep it.
        match symlinkat(target, devdir.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = symlinkat("/proc/kcore", devdir.as_fd(), "core");
    }
    Ok(())
}

fn create_node(devdir: &OwnedFd, n: &Node, in_userns: bool, sys: &dyn Sys) -> nix::Result<()> {
    let rel = Path::new(&n.name);
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        paths::create_in_root(devdir, parent, Leaf::Dir).map_err(|_| Errno::EIO)?;
    }
    if in_userns {
        let target = paths::create_in_root(devdir, rel, Leaf::File).map_err(|_| Errno::EIO)?;
        let host = Path::new("/dev").join(rel);
        return sys.mount(
            Some(&host),
            &paths::fd_path(&target),
            None,
            MsFlags::MS_BIND,
            None,
        );
    }
    match unlink_existing(devdir, rel) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mode = Mode::from_bits_truncate(n.mode);
    sys.make_node(
        devdir,
        rel,
        n.kind,
        mode,
        makedev(n.major, n.minor),
        (n.uid, n.gid),
    )
}

fn unlink_existing(devdir: &OwnedFd, rel: &Path) -> nix::Result<()> {
    nix::unistd::unlinkat(devdir, rel, nix::unistd::UnlinkatFlags::NoRemoveDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_convert_and_reject_escapes() {
        let d: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/net/tun","type":"c","major":10,"minor":200,"fileMode":8630}"#,
        )
        .unwrap();
        let n = from_spec(&d).unwrap();
        assert_eq!(
            (n.name.as_str(), n.major, n.minor, n.mode),
            ("net/tun", 10, 200, 0o666)
        );
        let bad: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/../etc/x","type":"c","major":1,"minor":3}"#)
                .unwrap();
        assert!(from_spec(&bad).is_err());
        let bad: LinuxDevice =
            serde_json::from_str(r#"{"path":"/etc/x","type":"c","major":1,"minor":3}"#).unwrap();
        assert!(from_spec(&bad).is_err());
    }

    #[test]
    fn defaults_are_the_oci_six() {
        let names: Vec<String> = defaults().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["null", "zero", "full", "random", "urandom", "tty"]);
    }
}
