//! A recording [`Sys`] for unit tests: performs nothing, remembers
//! everything, and resolves `/proc/self/fd/N` paths to what they name at the
//! moment of the call.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use super::Sys;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount {
        target: PathBuf,
    },
    PivotRoot,
    Setattr {
        target: PathBuf,
        set: u64,
        clr: u64,
    },
    Mknod {
        name: PathBuf,
        major: u64,
        minor: u64,
        mode: u32,
    },
}

/// Records calls; every call succeeds.
#[derive(Default)]
pub struct Recorder {
    pub calls: RefCell<Vec<Call>>,
}

fn real(p: &Path) -> PathBuf {
    if p.starts_with("/proc/self/fd/") {
        std::fs::read_link(p).unwrap_or_else(|_| p.to_path_buf())
    } else {
        p.to_path_buf()
    }
}

impl Recorder {
    /// The mount calls only.
    pub fn mounts(&self) -> Vec<Call> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .cloned()
            .collect()
    }
}

impl Sys for Recorder {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        self.calls.borrow_mut().push(Call::Mount {
            source: source.map(real),
            target: real(target),
            fstype: fstype.map(String::from),
            flags,
            data: data.map(String::from),
        });
        Ok(())
    }

    fn umount2(&self, target: &Path, _flags: MntFlags) -> nix::Result<()> {
        self.calls.borrow_mut().push(Call::Umount {
            target: real(target),
        });
        Ok(())
    }

    fn pivot_root(&self, _new_root: &Path, _put_old: &Path) -> nix::Result<()> {
        self.calls.borrow_mut().push(Call::PivotRoot);
        Ok(())
    }

    fn mount_setattr(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()> {
        self.calls.borrow_mut().push(Call::Setattr {
            target: real(target),
            set,
            clr,
        });
        Ok(())
    }

    fn make_node(
        &self,
        _dir: &std::os::fd::OwnedFd,
        name: &Path,
        _kind: SFlag,
        mode: Mode,
        dev: u64,
        _owner: (u32, u32),
    ) -> nix::Result<()> {
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        let mode = mode.bits();
        self.calls.borrow_mut().push(Call::Mknod {
            name: name.to_path_buf(),
            major,
            minor,
            mode,
        });
        Ok(())
    }
}
