//! Mount option strings (as config.json and fstab spell them) → mount(2)
//! flags, propagation flags and the data string handed to the filesystem.

use nix::mount::MsFlags;

/// A parsed mount option list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Flags cleared explicitly (e.g. `rw`, `suid`), kept for remounts.
    pub cleared: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
    /// Recursive attributes (`rro`, `rnosuid`, ...) for mount_setattr(2):
    /// MOUNT_ATTR_* bits to set and to clear on the whole subtree.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// runc's `tmpcopyup`: fill a new tmpfs with what it covers.
    pub tmpcopyup: bool,
}

/// MOUNT_ATTR_* values (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// MS_NOSYMFOLLOW (Linux 5.10), not in every libc binding.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// Every option name this parser gives a meaning to (reported by `features`).
pub const KNOWN: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// (set, clear) MOUNT_ATTR bits for a recursive option.
fn recursive(opt: &str) -> Option<(u64, u64)> {
    use attr::*;
    Some(match opt {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rrelatime" => (RELATIME, ATIME_MASK),
        "rnoatime" => (NOATIME, ATIME_MASK),
        "rstrictatime" => (STRICTATIME, ATIME_MASK),
        "ratime" => (RELATIME, ATIME_MASK),
        "rnorelatime" => (0, 0),
        "rnostrictatime" => (0, STRICTATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            rec_set: 0,
            rec_clr: 0,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Flags worth a bind remount (bind mounts ignore them on the first call).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Parses options; unknown ones go to the data string (as runc does).
pub fn parse(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        if let Some(p) = propagation(opt) {
            o.propagation.push(p);
            continue;
        }
        if let Some((set, clr)) = recursive(opt) {
            o.rec_set = (o.rec_set & !clr & !set) | set;
            o.rec_clr = (o.rec_clr & !set) | clr;
            continue;
        }
        if opt == "tmpcopyup" {
            o.tmpcopyup = true;
            continue;
        }
        match flag(opt) {
            Some((true, f)) => {
                o.flags |= f;
                o.cleared &= !f;
            }
            Some((false, f)) => {
                o.flags &= !f;
                o.cleared |= f;
            }
            None => data.push(opt),
        }
    }
    o.data = data.join(",");
    o
}

/// (set?, flag) for a flag option.
fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    let f = match opt {
        "defaults" => (true, MsFlags::empty()),
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "atime" => (false, MsFlags::MS_NOATIME),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "bind" => (true, MsFlags::MS_BIND),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "acl" => (true, MsFlags::MS_POSIXACL),
        "noacl" => (false, MsFlags::MS_POSIXACL),
        "iversion" => (true, MsFlags::MS_I_VERSION),
        "noiversion" => (false, MsFlags::MS_I_VERSION),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
        _ => return None,
    };
    Some(f)
}

/// The propagation flag an option names.
pub fn propagation(opt: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = parse(&s(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
        ]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn recursive_and_runc_extensions() {
        let o = parse(&s(&[
            "rbind",
            "rro",
            "rnosuid",
            "rrelatime",
            "nosymfollow",
            "tmpcopyup",
        ]));
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOSUID);
        assert_eq!(o.rec_clr, attr::ATIME_MASK);
        assert!(o.flags.contains(MS_NOSYMFOLLOW) && o.tmpcopyup && o.data.is_empty());
        let o = parse(&s(&["rro", "rrw"]));
        assert_eq!((o.rec_set, o.rec_clr), (0, attr::RDONLY));
    }

    #[test]
    fn every_known_option_has_a_meaning() {
        for opt in KNOWN {
            let o = parse(&[opt.to_string()]);
            assert!(o.data.is_empty(), "{opt} fell through to filesystem data");
        }
    }

    #[test]
    fn later_options_override_earlier() {
        let o = parse(&s(&["ro", "rw", "rbind"]));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.remount_flags(), MsFlags::empty());
    }
}
