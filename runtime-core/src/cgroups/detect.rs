//! Host layout detection and path computation: parses /proc/self/mountinfo and
//! /proc/self/cgroup, decides v1 / hybrid / v2, and turns an OCI `linux.cgroupsPath` into one
//! directory per hierarchy. Pure functions of text; no I/O.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Layout, Result};

/// v1 controller names. Other super options (rw, clone_children, xattr, release_agent=…)
/// are mount flags, not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "debug",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Which cgroup filesystem a hierarchy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FsType {
    Cgroup,
    Cgroup2,
}

impl FsType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FsType::Cgroup => "cgroup",
            FsType::Cgroup2 => "cgroup2",
        }
    }
}

/// One cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mount {
    pub(crate) mount_point: PathBuf,
    /// The cgroup (as the hierarchy's root sees it) that appears at `mount_point`; "/" normally,
    /// e.g. "/docker/abc" when a container sees only its own part.
    pub(crate) root: String,
    pub(crate) fs: FsType,
    /// v1: controllers and `name=` options in mount order, e.g. ["cpu", "cpuacct"]; v2: empty.
    pub(crate) controllers: Vec<String>,
}

impl Mount {
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    fn key(&self) -> Vec<String> {
        let mut k = self.controllers.clone();
        k.sort();
        k
    }

    /// The data argument for mount(2): the controller list, "none,name=x" for a named
    /// hierarchy without controllers (a bare "name=x" would be fine too, "none" says it), and
    /// nothing for cgroup2.
    pub(crate) fn mount_data(&self) -> String {
        match self.fs {
            FsType::Cgroup2 => String::new(),
            FsType::Cgroup if self.controllers.iter().all(|c| c.starts_with("name=")) => {
                format!("none,{}", self.controllers.join(","))
            }
            FsType::Cgroup => self.controllers.join(","),
        }
    }
}

/// Every cgroup and cgroup2 mount in /proc/self/mountinfo, in file order.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .filter(|&i| i >= 6 && fields.len() > i + 3)
            .ok_or_else(|| Error::Parse {
                what: "/proc/self/mountinfo".into(),
                reason: format!("line {}: malformed: {line:?}", n + 1),
            })?;
        let fs = match fields[sep + 1] {
            "cgroup" => FsType::Cgroup,
            "cgroup2" => FsType::Cgroup2,
            _ => continue,
        };
        let controllers: Vec<String> = match fs {
            FsType::Cgroup2 => Vec::new(),
            FsType::Cgroup => fields[sep + 3]
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect(),
        };
        if fs == FsType::Cgroup && controllers.is_empty() {
            continue;
        }
        out.push(Mount {
            mount_point: PathBuf::from(unescape(fields[4])),
            root: unescape(fields[3]),
            fs,
            controllers,
        });
    }
    Ok(out)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decides the layout and keeps one mount per hierarchy (a hierarchy mounted twice is the same
/// hierarchy; the mount showing its real root wins). Hybrid lists v1 mounts then cgroup2.
pub(crate) fn select(mounts: &[Mount]) -> Result<(Layout, Vec<Mount>)> {
    let mut v1: Vec<Mount> = Vec::new();
    for m in mounts.iter().filter(|m| m.fs == FsType::Cgroup) {
        match v1.iter_mut().find(|k| k.key() == m.key()) {
            Some(k) if k.root != "/" && m.root == "/" => *k = m.clone(),
            Some(_) => {}
            None => v1.push(m.clone()),
        }
    }
    let v2 = mounts
        .iter()
        .filter(|m| m.fs == FsType::Cgroup2)
        .min_by_key(|m| m.root != "/")
        .cloned();
    let v1_controllers = v1
        .iter()
        .any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
    match (v1_controllers, v2) {
        (true, None) => Ok((Layout::V1, v1)),
        (true, Some(u)) => {
            v1.push(u);
            Ok((Layout::Hybrid, v1))
        }
        (false, Some(u)) => Ok((Layout::V2, vec![u])),
        (false, None) => Err(Error::Unsupported {
            what: "no cgroup v1 controller or cgroup2 filesystem is mounted".into(),
        }),
    }
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    /// Sorted controllers (and `name=` entries); empty for the v2 line "0::/path".
    pub(crate) controllers: Vec<String>,
    pub(crate) path: String,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Result<Vec<Membership>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // The path is last and may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Parse {
                what: "/proc/self/cgroup".into(),
                reason: format!("line {}: expected id:controllers:path, got {line:?}", n + 1),
            });
        };
        let mut controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        controllers.sort();
        out.push(Membership {
            controllers,
            path: path.to_string(),
        });
    }
    Ok(out)
}

/// A validated `linux.cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) absolute: bool,
    pub(crate) parts: Vec<String>,
}

pub(crate) fn parse_cgroups_path(path: &str) -> Result<Target> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !path.starts_with('/') && path.split(':').count() == 3 {
        return Err(Error::Unsupported {
            what: format!(
                "systemd cgroup path {path:?} (slice:prefix:name): the systemd cgroup driver \
                 is not implemented; use a filesystem path such as \"/mycontainer\""
            ),
        });
    }
    let mut parts = Vec::new();
    for comp in Path::new(path).components() {
        match comp {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => return Err(invalid("\"..\" is not allowed")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err(invalid("it names no cgroup below the root"));
    }
    Ok(Target {
        absolute: path.starts_with('/'),
        parts,
    })
}

/// The container's directory in `mount`'s hierarchy.
pub(crate) fn resolve(mount: &Mount, target: &Target, own: &[Membership]) -> Result<PathBuf> {
    let mut dir = mount.mount_point.clone();
    if !target.absolute {
        let key = mount.key();
        let mine = own
            .iter()
            .find(|m| m.controllers == key)
            .ok_or_else(|| Error::InvalidPath {
                path: target.parts.join("/"),
                reason: format!(
                    "relative path, but /proc/self/cgroup has no entry for the hierarchy at {}",
                    mount.mount_point.display()
                ),
            })?;
        for part in below_root(&mine.path, &mount.root, target)? {
            dir.push(part);
        }
    }
    dir.extend(&target.parts);
    Ok(dir)
}

/// This process's cgroup path as seen under the mount, whose root may itself be a sub-cgroup.
fn below_root<'a>(own: &'a str, root: &str, target: &Target) -> Result<Vec<&'a str>> {
    let invalid = |reason: String| Error::InvalidPath {
        path: target.parts.join("/"),
        reason,
    };
    let rest = match root.trim_end_matches('/') {
        "" => Some(own),
        r => own
            .strip_prefix(r)
            .filter(|rest| rest.is_empty() || rest.starts_with('/')),
    }
    .ok_or_else(|| {
        invalid(format!(
            "own cgroup {own:?} is outside the mounted root {root:?}"
        ))
    })?;
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(invalid(format!("own cgroup {own:?} is not visible here")));
    }
    Ok(parts)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This hybrid host: v1 controllers each on their own mount, cgroup2 at .../unified.
    pub(crate) const HYBRID: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A classic v1 host (Debian 10 era): cpu and cpuacct co-mounted, optional fields present.
    pub(crate) const V1_COMOUNT: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
32 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 32 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
38 32 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
39 32 0:35 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
40 32 0:36 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
41 32 0:37 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset,clone_children
42 32 0:38 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,pids
43 32 0:39 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,devices
";

    pub(crate) const V2: &str = "\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/f4f6
2:cpuacct:/
1:cpu:/
0::/
";

    fn target(s: &str) -> Target {
        parse_cgroups_path(s).unwrap()
    }

    #[test]
    fn hybrid_host_mountinfo() {
        let (layout, mounts) = select(&parse_mountinfo(HYBRID).unwrap()).unwrap();
        assert_eq!(layout, Layout::Hybrid);
        assert_eq!(mounts.len(), 10);
        assert_eq!(mounts[0].controllers, vec!["cpu"]);
        assert_eq!(mounts[1].controllers, vec!["cpuacct"]);
        assert_eq!(mounts[8].mount_data(), "none,name=systemd");
        assert_eq!(mounts[9].fs, FsType::Cgroup2);
        assert_eq!(mounts[9].mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(mounts[9].mount_data(), "");
    }

    #[test]
    fn v1_comounted_cpu_cpuacct() {
        let (layout, mounts) = select(&parse_mountinfo(V1_COMOUNT).unwrap()).unwrap();
        assert_eq!(layout, Layout::V1);
        assert_eq!(mounts.len(), 7);
        let cpu = mounts.iter().find(|m| m.has("cpu")).unwrap();
        assert!(cpu.has("cpuacct"));
        assert_eq!(cpu.mount_data(), "cpu,cpuacct");
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        let cpuset = mounts.iter().find(|m| m.has("cpuset")).unwrap();
        assert_eq!(
            cpuset.controllers,
            vec!["cpuset"],
            "clone_children is a flag"
        );
        assert_eq!(
            mounts[0].controllers,
            vec!["name=systemd"],
            "xattr is a flag"
        );
    }

    #[test]
    fn pure_v2() {
        let (layout, mounts) = select(&parse_mountinfo(V2).unwrap()).unwrap();
        assert_eq!(layout, Layout::V2);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn duplicate_mount_prefers_real_root_and_no_cgroup_is_error() {
        let text = "\
1 0 0:5 /docker/x /a rw - cgroup cgroup rw,memory
2 0 0:5 / /b\\040c rw - cgroup cgroup rw,memory
";
        let (_, mounts) = select(&parse_mountinfo(text).unwrap()).unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/b c"));
        let err = select(&parse_mountinfo("1 0 0:5 / / rw - ext4 /dev/x rw\n").unwrap());
        assert!(matches!(err, Err(Error::Unsupported { .. })));
        assert!(matches!(
            parse_mountinfo("garbage line\n"),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn proc_self_cgroup() {
        let own = parse_proc_cgroup("3:cpuacct,cpu:/a:b\n0::/user.slice\n").unwrap();
        assert_eq!(own[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(own[0].path, "/a:b");
        assert!(own[1].controllers.is_empty());
        assert!(matches!(
            parse_proc_cgroup("nonsense\n"),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(
            target("/a//b/./c"),
            Target {
                absolute: true,
                parts: vec!["a".into(), "b".into(), "c".into()]
            }
        );
        assert!(!target("a/b").absolute);
        for bad in ["/a/../b", "..", "", "/"] {
            assert!(
                matches!(parse_cgroups_path(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
        let err = parse_cgroups_path("system.slice:docker:abc").unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
        assert!(err.to_string().contains("systemd"));
    }

    #[test]
    fn absolute_and_relative_dirs() {
        let (_, mounts) = select(&parse_mountinfo(HYBRID).unwrap()).unwrap();
        let own = parse_proc_cgroup(HYBRID_SELF).unwrap();
        let mem = mounts.iter().find(|m| m.has("memory")).unwrap();
        let unified = mounts.last().unwrap();
        let abs = target("/rs/c1");
        assert_eq!(
            resolve(mem, &abs, &[]).unwrap(),
            Path::new("/sys/fs/cgroup/memory/rs/c1")
        );
        let rel = target("rs/c1");
        assert_eq!(
            resolve(mem, &rel, &own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/f4f6/rs/c1")
        );
        assert_eq!(
            resolve(unified, &rel, &own).unwrap(),
            Path::new("/sys/fs/cgroup/unified/rs/c1")
        );
        let blkio = mounts.iter().find(|m| m.has("blkio")).unwrap();
        assert!(matches!(
            resolve(blkio, &rel, &own),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn relative_under_a_sub_root_mount() {
        let mount = Mount {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/docker/x".into(),
            fs: FsType::Cgroup,
            controllers: vec!["memory".into()],
        };
        let own = parse_proc_cgroup("4:memory:/docker/x/inner\n").unwrap();
        assert_eq!(
            resolve(&mount, &target("c"), &own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/inner/c")
        );
        let outside = parse_proc_cgroup("4:memory:/other\n").unwrap();
        assert!(resolve(&mount, &target("c"), &outside).is_err());
        let dotdot = parse_proc_cgroup("4:memory:/docker/x/../..\n").unwrap();
        assert!(resolve(&mount, &target("c"), &dotdot).is_err());
    }
}
