//! The freezer: stops every process of a container's cgroup at once (`pause`) and lets them go
//! again (`resume`), and tells whether a cgroup is frozen (the `paused` status).
//!
//! - v1 and hybrid hosts: the `freezer` hierarchy's `freezer.state` (THAWED / FREEZING /
//!   FROZEN). A freeze can stay in FREEZING while processes fork or join, so FROZEN is written
//!   again until it reads back FROZEN, with an occasional thaw and sleep, as runc does
//!   (`libcontainer/cgroups/fs/freezer.go`); a freeze that never settles is thawed back.
//! - v2: `cgroup.freeze` 1/0, confirmed by `frozen 1` in `cgroup.events` (the kernel freezes
//!   asynchronously).
//!
//! The `*_v1` / `*_v2` functions take a directory, so they run against temp-dir fixtures.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{fs, Cgroup, Error, Layout, Result};

/// What `freezer.state` (v1) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V1State {
    Thawed,
    Freezing,
    Frozen,
}

/// Write attempts of FROZEN before a v1 freeze gives up (runc: 1000).
const V1_ATTEMPTS: u32 = 1000;
/// How long a v2 freeze waits for `frozen 1` (runc: 10 s).
const V2_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading a v1 state waits out FREEZING before calling it not frozen.
const V1_READ_TIMEOUT: Duration = Duration::from_millis(200);

pub(crate) fn parse_v1_state(text: &str) -> Result<V1State> {
    match text.trim() {
        "THAWED" => Ok(V1State::Thawed),
        "FREEZING" => Ok(V1State::Freezing),
        "FROZEN" => Ok(V1State::Frozen),
        other => Err(Error::Parse {
            what: "freezer.state".into(),
            reason: format!("unknown state {other:?}"),
        }),
    }
}

/// The `frozen` value of `cgroup.events` text, None when absent (kernel < 5.2).
pub(crate) fn events_frozen(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .map(|v| v.trim() == "1")
}

fn read_v1(dir: &Path) -> Result<V1State> {
    parse_v1_state(&fs::read(dir, "freezer.state")?)
}

/// v1: freezes `dir`, returning once `freezer.state` reads FROZEN. On failure the cgroup is
/// thawed again: a cgroup left FREEZING would hang its processes with no one to resume them.
pub(crate) fn freeze_v1(dir: &Path) -> Result<()> {
    let result = try_freeze_v1(dir);
    if result.is_err() {
        let _ = fs::write(dir, "freezer.state", "THAWED");
    }
    result
}

fn try_freeze_v1(dir: &Path) -> Result<()> {
    for i in 0..V1_ATTEMPTS {
        // New processes keep a freeze in FREEZING: an occasional thaw and pause helps
        // (measured by runc on RHEL 7 and Ubuntu 20.04 kernels).
        if i % 50 == 49 {
            fs::write(dir, "freezer.state", "THAWED")?;
            sleep(Duration::from_millis(10));
        }
        fs::write(dir, "freezer.state", "FROZEN")?;
        if i % 25 == 24 {
            sleep(Duration::from_micros(10));
        }
        match read_v1(dir)? {
            V1State::Frozen => return Ok(()),
            V1State::Freezing => continue,
            V1State::Thawed => {
                return Err(Error::Parse {
                    what: "freezer.state".into(),
                    reason: "THAWED right after writing FROZEN".into(),
                })
            }
        }
    }
    Err(Error::Unsupported {
        what: format!(
            "freezing {}: still FREEZING after {V1_ATTEMPTS} attempts",
            dir.display()
        ),
    })
}

pub(crate) fn thaw_v1(dir: &Path) -> Result<()> {
    fs::write(dir, "freezer.state", "THAWED")
}

/// v1: whether `dir` itself is frozen. FROZEN because an ancestor is frozen
/// (`freezer.self_freezing` 0) is not this container's pause; FREEZING is waited out briefly.
pub(crate) fn frozen_v1(dir: &Path) -> Result<bool> {
    let deadline = Instant::now() + V1_READ_TIMEOUT;
    loop {
        match read_v1(dir)? {
            V1State::Thawed => return Ok(false),
            V1State::Frozen => {
                return Ok(fs::read(dir, "freezer.self_freezing").map_or(true, |s| s != "0"))
            }
            V1State::Freezing if Instant::now() < deadline => sleep(Duration::from_millis(1)),
            V1State::Freezing => return Ok(false),
        }
    }
}

/// v2: writes `cgroup.freeze` = 1 and waits up to `timeout` for `frozen 1` in `cgroup.events`;
/// thaws again if it does not come.
pub(crate) fn freeze_v2(dir: &Path, timeout: Duration) -> Result<()> {
    if !dir.join("cgroup.freeze").exists() {
        return Err(Error::Unsupported {
            what: format!(
                "pause: {} has no cgroup.freeze (kernel older than 5.2)",
                dir.display()
            ),
        });
    }
    fs::write(dir, "cgroup.freeze", "1")?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if events_frozen(&fs::read(dir, "cgroup.events")?) == Some(true) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = fs::write(dir, "cgroup.freeze", "0");
            return Err(Error::Unsupported {
                what: format!(
                    "freezing {}: cgroup.events did not say \"frozen 1\" within {timeout:?}",
                    dir.display()
                ),
            });
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

pub(crate) fn thaw_v2(dir: &Path) -> Result<()> {
    fs::write(dir, "cgroup.freeze", "0")
}

/// v2: whether `cgroup.freeze` asks for frozen (a missing file: never frozen).
pub(crate) fn frozen_v2(dir: &Path) -> Result<bool> {
    if !dir.join("cgroup.freeze").exists() {
        return Ok(false);
    }
    Ok(fs::read(dir, "cgroup.freeze")? == "1")
}

impl Cgroup {
    /// Freezes every process in the container's cgroup; returns once the kernel says frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer_dir()? {
            (dir, true) => freeze_v2(&dir, V2_TIMEOUT),
            (dir, false) => freeze_v1(&dir),
        }
    }

    /// Lets the container's processes run again.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer_dir()? {
            (dir, true) => thaw_v2(&dir),
            (dir, false) => thaw_v1(&dir),
        }
    }

    /// Whether the container's cgroup is frozen (false when there is no freezer or the cgroup
    /// is gone: nothing can be paused there).
    pub fn frozen(&self) -> bool {
        let Ok((dir, v2)) = self.freezer_dir() else {
            return false;
        };
        let r = if v2 { frozen_v2(&dir) } else { frozen_v1(&dir) };
        r.unwrap_or(false)
    }

    /// The directory holding the freezer files, and whether they are v2's. Hybrid hosts use
    /// the v1 freezer (the v1 hierarchies hold the container's controllers).
    fn freezer_dir(&self) -> Result<(std::path::PathBuf, bool)> {
        match self.layout {
            Layout::V2 => Ok((self.controller_dir("", "pause/resume")?, true)),
            Layout::V1 | Layout::Hybrid => {
                Ok((self.controller_dir("freezer", "pause/resume")?, false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::detect::tests::{HYBRID, V2};
    use std::fs as stdfs;

    #[test]
    fn v1_states_parse() {
        assert_eq!(parse_v1_state("THAWED\n").unwrap(), V1State::Thawed);
        assert_eq!(parse_v1_state("FREEZING\n").unwrap(), V1State::Freezing);
        assert_eq!(parse_v1_state("FROZEN").unwrap(), V1State::Frozen);
        let e = parse_v1_state("SLUSHY\n").unwrap_err().to_string();
        assert!(e.contains("freezer.state") && e.contains("SLUSHY"), "{e}");
    }

    #[test]
    fn events_frozen_line() {
        assert_eq!(events_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(events_frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(events_frozen("populated 0\n"), None);
        assert_eq!(events_frozen("unfrozen 1\n"), None);
    }

    #[test]
    fn v1_freeze_thaw_and_state_on_fixture() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        stdfs::write(d.join("freezer.state"), "THAWED\n").unwrap();
        assert!(!frozen_v1(d).unwrap());
        freeze_v1(d).unwrap();
        assert_eq!(
            stdfs::read_to_string(d.join("freezer.state")).unwrap(),
            "FROZEN"
        );
        assert!(frozen_v1(d).unwrap());
        // Frozen through an ancestor only: not paused itself.
        stdfs::write(d.join("freezer.self_freezing"), "0\n").unwrap();
        assert!(!frozen_v1(d).unwrap());
        stdfs::write(d.join("freezer.self_freezing"), "1\n").unwrap();
        assert!(frozen_v1(d).unwrap());
        thaw_v1(d).unwrap();
        assert!(!frozen_v1(d).unwrap());
        // A freeze stuck in FREEZING is not reported as paused.
        stdfs::write(d.join("freezer.state"), "FREEZING\n").unwrap();
        assert!(!frozen_v1(d).unwrap());
    }

    #[test]
    fn v1_missing_freezer_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = freeze_v1(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("freezer.state"), "{e}");
    }

    #[test]
    fn v2_freeze_waits_for_events_and_thaws_back_on_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        stdfs::write(d.join("cgroup.freeze"), "0\n").unwrap();
        stdfs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!frozen_v2(d).unwrap());
        let e = freeze_v2(d, Duration::from_millis(30))
            .unwrap_err()
            .to_string();
        assert!(e.contains("frozen 1"), "{e}");
        assert_eq!(stdfs::read_to_string(d.join("cgroup.freeze")).unwrap(), "0");
        stdfs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        freeze_v2(d, Duration::from_millis(30)).unwrap();
        assert!(frozen_v2(d).unwrap());
        thaw_v2(d).unwrap();
        assert!(!frozen_v2(d).unwrap());
    }

    #[test]
    fn v2_without_cgroup_freeze_is_unsupported() {
        let tmp = tempfile::tempdir().unwrap();
        let e = freeze_v2(tmp.path(), Duration::from_millis(1)).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(!frozen_v2(tmp.path()).unwrap());
    }

    #[test]
    fn cgroup_picks_v1_freezer_on_hybrid_and_the_single_dir_on_v2() {
        let tmp = tempfile::tempdir().unwrap();
        let hy = Cgroup::from_parts(HYBRID, "", tmp.path(), "/rs/c").unwrap();
        let dir = hy.dir_for("freezer").unwrap();
        stdfs::create_dir_all(&dir).unwrap();
        stdfs::write(dir.join("freezer.state"), "THAWED\n").unwrap();
        // The unified dir has a cgroup.freeze too; hybrid must not use it.
        let unified = hy.dir_for("").unwrap();
        stdfs::create_dir_all(&unified).unwrap();
        stdfs::write(unified.join("cgroup.freeze"), "0\n").unwrap();
        assert!(!hy.frozen());
        hy.freeze().unwrap();
        assert!(hy.frozen());
        assert_eq!(
            stdfs::read_to_string(unified.join("cgroup.freeze")).unwrap(),
            "0\n"
        );
        hy.thaw().unwrap();
        assert!(!hy.frozen());

        let v2 = Cgroup::from_parts(V2, "0::/\n", tmp.path(), "/c2").unwrap();
        let dir = v2.dir_for("").unwrap();
        stdfs::create_dir_all(&dir).unwrap();
        stdfs::write(dir.join("cgroup.freeze"), "0\n").unwrap();
        stdfs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        v2.freeze().unwrap();
        assert!(v2.frozen());
        v2.thaw().unwrap();
        assert!(!v2.frozen());
    }

    #[test]
    fn no_freezer_hierarchy_is_unsupported_and_never_frozen() {
        let mi = "1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n";
        let cg = Cgroup::from_parts(mi, "", Path::new("/nonexistent"), "/c").unwrap();
        let e = cg.freeze().unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("freezer"), "{e}");
        assert!(!cg.frozen());
    }
}
