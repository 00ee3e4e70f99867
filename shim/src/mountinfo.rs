//! Just enough of `/proc/self/mountinfo` for the shim: mount points and
//! file-system types (cgroup v1 hierarchies at `start`, the bundle's
//! rootfs mounts at `delete`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One mountinfo line, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// Per-superblock options (field after the source); cgroup v1
    /// hierarchies list their controllers here.
    pub super_options: String,
}

/// Parses mountinfo text; malformed lines are skipped.
///
/// Line shape (proc(5)): `id parent major:minor root mount_point options
/// [optional fields...] - fstype source super_options`.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (head, tail) = line.split_once(" - ")?;
    let mount_point = head.split(' ').nth(4)?;
    let mut tail = tail.split(' ');
    let fstype = tail.next()?;
    let _source = tail.next()?;
    let super_options = tail.next().unwrap_or("");
    Some(Mount {
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: fstype.to_string(),
        super_options: super_options.to_string(),
    })
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn read() -> std::io::Result<Vec<Mount>> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|t| parse(&t))
}

/// The kernel escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
99 1 0:50 / /run/b\\040x/rootfs rw,relatime - overlay overlay rw,lowerdir=/l
";

    #[test]
    fn parses_points_types_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[2].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(m[2].fstype, "cgroup2");
        assert_eq!(m[4].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[5].mount_point, PathBuf::from("/run/b x/rootfs"));
        assert_eq!(m[5].fstype, "overlay");
    }

    #[test]
    fn skips_malformed_lines() {
        assert!(parse("garbage\n1 2 3\n").is_empty());
    }

    #[test]
    fn unescape_cases() {
        assert_eq!(unescape("a\\040b"), b"a b");
        assert_eq!(unescape("a\\134b"), b"a\\b");
        assert_eq!(unescape("tail\\"), b"tail\\");
        assert_eq!(unescape("x\\09"), b"x\\09");
        assert_eq!(unescape("\\377"), [0xff]);
    }

    #[test]
    fn reads_own_mountinfo() {
        let m = read().unwrap();
        assert!(m.iter().any(|m| m.mount_point == std::path::Path::new("/")));
    }
}
