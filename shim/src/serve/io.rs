//! Container stdio and rootfs for `Create`/`Exec`: the FIFO paths
//! containerd gives are opened here and handed to the engine as the
//! process's fds 0-2 (no copying: the container reads and writes the FIFOs
//! itself); `file://` and `binary://` stdout/stderr go through
//! [`super::logger`]; and the rootfs mounts of a `Create` are mounted onto
//! `<bundle>/rootfs`. Terminals are [`super::console`]'s.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use containerd_shim_protos::api::Mount;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::mount::MsFlags;

use super::logger::{self, Logger};
use super::status::{RpcError, RpcResult};

/// A process's stdio, ready for the engine.
pub struct Stdio {
    pub fds: [OwnedFd; 3],
    /// The logging binary its stdout and stderr go to, if any.
    pub logger: Option<Logger>,
}

/// Opens the three stdio URIs of process `id` (a container or exec id):
/// stdin for reading, stdout and stderr for writing; an empty one is
/// /dev/null. `binary://` stdout/stderr start the logger (and wait until it
/// is ready).
pub async fn open_stdio(
    stdin: &str,
    stdout: &str,
    stderr: &str,
    id: &str,
    namespace: &str,
) -> RpcResult<Stdio> {
    let input = open_one(stdin, false)?;
    if logger::is_binary(stdout) || logger::is_binary(stderr) {
        if !stderr.is_empty() && !stdout.is_empty() && stdout != stderr {
            return Err(RpcError::InvalidArgument(format!(
                "a logging binary takes both stdout and stderr: {stdout} != {stderr}"
            )));
        }
        let uri = if stdout.is_empty() { stderr } else { stdout };
        let (l, out, err) = logger::start_binary(uri, id, namespace).await?;
        return Ok(Stdio {
            fds: [input, out, err],
            logger: Some(l),
        });
    }
    Ok(Stdio {
        fds: [input, open_one(stdout, true)?, open_one(stderr, true)?],
        logger: None,
    })
}

/// Gives the FIFOs among `fds` to `(uid, gid)` (containerd's IoUid and
/// IoGid; /dev/null, files and pipes are left alone).
pub fn chown_fifos(fds: &[OwnedFd; 3], (uid, gid): (u32, u32)) -> RpcResult<()> {
    for fd in fds {
        let fifo = nix::sys::stat::fstat(fd)
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
            .unwrap_or(false);
        if fifo {
            nix::unistd::fchown(
                fd,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| RpcError::Internal(format!("chown stdio to {uid}:{gid}: {e}")))?;
        }
    }
    Ok(())
}

fn open_one(uri: &str, write: bool) -> RpcResult<OwnedFd> {
    if uri.is_empty() {
        let f = std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map_err(|e| RpcError::Internal(format!("open /dev/null: {e}")))?;
        return Ok(f.into());
    }
    let path = match uri.split_once("://") {
        None => uri,
        Some(("fifo", p)) => p,
        Some(("file", p)) if write => return logger::open_file(p),
        Some((scheme, _)) => {
            return Err(RpcError::InvalidArgument(format!(
                "stdio scheme {scheme}:// is not supported for {}",
                if write { "output" } else { "stdin" }
            )))
        }
    };
    let err = |e: std::io::Error| RpcError::Internal(format!("open {path}: {e}"));
    // Non-blocking so an absent peer can never hang the server's only
    // thread; blocking again once open, for the container's sake.
    let opened = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // A writer without a reader yet (ENXIO): O_RDWR never blocks, and
        // the reader still sees EOF once the container's copies close.
        Err(e) if write && e.raw_os_error() == Some(libc::ENXIO) => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(err)?,
        Err(e) => return Err(err(e)),
    };
    let flags = fcntl(&file, FcntlArg::F_GETFL).map_err(|e| err(e.into()))?;
    let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(&file, FcntlArg::F_SETFL(flags)).map_err(|e| err(e.into()))?;
    Ok(file.into())
}

/// Mounts `mounts` onto `<bundle>/rootfs` in order; returns whether any
/// mount was made. On failure what was mounted is undone.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> RpcResult<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    let target = bundle.join("rootfs");
    match std::fs::DirBuilder::new().mode(0o711).create(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(RpcError::Internal(format!(
                "create {}: {e}",
                target.display()
            )))
        }
    }
    for m in mounts {
        if let Err(e) = mount_one(m, &target) {
            crate::delete::unmount_rootfs(&target);
            return Err(e);
        }
    }
    Ok(true)
}

fn mount_one(m: &Mount, target: &Path) -> RpcResult<()> {
    let (mut flags, data) = parse_options(&m.options);
    let fstype = match m.type_.as_str() {
        "bind" => {
            flags |= MsFlags::MS_BIND;
            None
        }
        "rbind" => {
            flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            None
        }
        "" => None,
        t => Some(t),
    };
    let fail = |e: Errno| {
        RpcError::Internal(format!(
            "mount {} ({}) on {}: {e}",
            m.source,
            m.type_,
            target.display()
        ))
    };
    let data = (!data.is_empty()).then_some(data.as_str());
    nix::mount::mount(Some(m.source.as_str()), target, fstype, flags, data).map_err(fail)?;
    // A bind mount ignores MS_RDONLY and friends until remounted.
    if flags.contains(MsFlags::MS_BIND)
        && flags.intersects(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
    {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(fail)?;
    }
    Ok(())
}

/// Splits mount options into flags and the data string for the filesystem.
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags |= set;
        flags -= clear;
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> = ["ro", "rbind", "lowerdir=/a:/b", "upperdir=/u", "nodev"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (flags, data) = parse_options(&opts);
        assert_eq!(
            flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NODEV
        );
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
    }

    #[test]
    fn empty_paths_are_dev_null_and_schemes_are_checked() {
        assert!(open_one("", false).is_ok());
        assert!(open_one("", true).is_ok());
        assert!(matches!(
            open_one("file:///tmp/x", false),
            Err(RpcError::InvalidArgument(_))
        ));
        assert!(matches!(
            open_one("tcp://x", true),
            Err(RpcError::InvalidArgument(_))
        ));
    }

    #[test]
    fn io_owner_goes_to_fifos_only() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::Uid::effective().is_root() {
            return; // chown needs root
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fds = [
            open_one(p.to_str().unwrap(), true).unwrap(),
            open_one("", true).unwrap(),
            open_one("", true).unwrap(),
        ];
        chown_fifos(&fds, (4321, 4322)).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322));
        assert_eq!(std::fs::metadata("/dev/null").unwrap().uid(), 0);
    }

    #[test]
    fn fifo_without_reader_opens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fd = open_one(p.to_str().unwrap(), true).unwrap();
        let fl = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).unwrap());
        assert!(!fl.contains(OFlag::O_NONBLOCK));
    }
}
