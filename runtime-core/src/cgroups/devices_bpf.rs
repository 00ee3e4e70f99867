//! devices on cgroup v2: `linux.resources.devices` → a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program attached to the container's cgroup.
//!
//! The rule list is the one the v1 path writes (deny all, the spec's rules in order, then the
//! default allow list of [`super::devices::DEFAULT_ALLOW`]), and it means the same: each
//! access bit (r, w, m) of a request is decided by the last rule that matches the device and
//! names that bit; unnamed bits are denied. So "allow c 1:11 rw" then "deny c 1:11 w" leaves
//! read allowed and write (and read+write) denied, as devices.allow/deny would.
//!
//! The generated program walks the rules forwards keeping the allowed bits in r0:
//!
//! ```text
//!   r2 = ctx->access_type & 0xffff   (device type: 1 block, 2 char)
//!   r3 = ctx->access_type >> 16      (requested access: 1 mknod, 2 read, 4 write)
//!   r4 = ctx->major; r5 = ctx->minor; r0 = allowed bits before the first rule
//!   per rule:  if r2 != type goto next; if r4 != major goto next; if r5 != minor goto next
//!              r0 |= access (allow)   or   r0 &= ~access (deny)
//!   return (r3 & ~r0) == 0
//! ```
//!
//! Rules before the last unconditional "a *:* rwm" rule cannot change anything and are left
//! out; that rule only sets r0's starting value.

use std::ffi::CStr;
use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::devices::DEFAULT_ALLOW;
use super::ebpf::{self, Insn, BPF_F_ALLOW_MULTI};
use super::{Error, Result};

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// Device programs need no GPL-only helper; runc loads its filter as "Apache" too.
const LICENSE: &CStr = c"Apache";

/// One rule, validated: `None` fields match anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// DEV_BLOCK or DEV_CHAR.
    typ: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u8,
}

impl Rule {
    fn matches_all(&self) -> bool {
        self.typ.is_none() && self.major.is_none() && self.minor.is_none()
    }
}

/// Loads the filter for `rules` and makes it the device program of the cgroup `dir`,
/// replacing one an earlier call attached (attach the new one, then detach the old ones, so
/// the cgroup is never left unfiltered).
pub(crate) fn apply(rules: &[LinuxDeviceCgroup], dir: &Path) -> Result<()> {
    let rules = effective(rules)?;
    let insns = program(&rules);
    let fail = |what: &str| {
        let what = format!("{what} device filter for {}", dir.display());
        move |source| Error::Bpf { what, source }
    };
    let prog = match ebpf::load_cgroup_device(&insns, LICENSE) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            if allows_everything(&rules) {
                log::warn!("no bpf(2) in this kernel; the device rules allow everything anyway");
                return Ok(());
            }
            return Err(Error::Unsupported {
                what: "device rules on cgroup v2 need bpf(2), which this kernel lacks (ENOSYS)"
                    .into(),
            });
        }
        other => other.map_err(fail("load"))?,
    };
    let cgroup = std::fs::File::open(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (old, old_flags) = ebpf::query_cgroup_device(cgroup.as_fd()).map_err(fail("query"))?;
    // Programs attached without BPF_F_ALLOW_MULTI are replaced by attaching with the same
    // flags; with it, the old ones stay until detached below.
    let flags = match old.is_empty() {
        true => BPF_F_ALLOW_MULTI,
        false => old_flags,
    };
    ebpf::attach_cgroup_device(cgroup.as_fd(), prog.as_fd(), flags).map_err(fail("attach"))?;
    if flags & BPF_F_ALLOW_MULTI != 0 {
        for id in old {
            let old_prog = ebpf::prog_fd_by_id(id).map_err(fail("open old"))?;
            ebpf::detach_cgroup_device(cgroup.as_fd(), old_prog.as_fd())
                .map_err(fail("detach old"))?;
        }
    }
    log::debug!(
        "device filter: {} rule(s), {} instruction(s) attached to {}",
        rules.len(),
        insns.len(),
        dir.display()
    );
    Ok(())
}

/// Deny all, the spec's rules, the defaults: what v1's devices.deny/allow writes get too.
fn effective(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = vec![Rule {
        allow: false,
        typ: None,
        major: None,
        minor: None,
        access: ACC_ALL,
    }];
    for (i, r) in spec.iter().enumerate() {
        out.push(from_spec(i, r)?);
    }
    out.extend(DEFAULT_ALLOW.iter().map(|l| from_line(l)));
    Ok(out)
}

fn from_spec(index: usize, rule: &LinuxDeviceCgroup) -> Result<Rule> {
    let invalid = |reason: String| Error::InvalidValue {
        field: format!("linux.resources.devices[{index}]"),
        reason,
    };
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::P => return Err(invalid("type \"p\" cannot be a cgroup rule".into())),
    };
    // Immediates are 32-bit signed; real majors/minors are far below that.
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(invalid(format!("device number {n}"))),
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    let bits = access_bits(access)
        .ok_or_else(|| invalid(format!("access {access:?} is not a subset of \"rwm\"")))?;
    Ok(Rule {
        allow: rule.allow(),
        typ,
        major: num(rule.major())?,
        minor: num(rule.minor())?,
        access: bits,
    })
}

fn access_bits(access: &str) -> Option<u8> {
    if access.is_empty() {
        return None;
    }
    access.chars().try_fold(0, |bits, c| match c {
        'r' => Some(bits | ACC_READ),
        'w' => Some(bits | ACC_WRITE),
        'm' => Some(bits | ACC_MKNOD),
        _ => None,
    })
}

/// An allow rule in the kernel's "c 1:3 rwm" syntax (the built-in defaults only).
fn from_line(line: &str) -> Rule {
    let mut parts = line.split([' ', ':']);
    let mut next = || parts.next().expect("default device rule has 4 fields");
    let typ = match next() {
        "b" => Some(DEV_BLOCK),
        _ => Some(DEV_CHAR),
    };
    let num = |s: &str| s.parse().ok();
    let (major, minor) = (num(next()), num(next()));
    Rule {
        allow: true,
        typ,
        major,
        minor,
        access: access_bits(next()).expect("default device rule access"),
    }
}

/// True when the rules allow every access to every device (so no filter is needed).
fn allows_everything(rules: &[Rule]) -> bool {
    let (start, rest) = split_at_reset(rules);
    start == ACC_ALL && rest.iter().all(|r| r.allow)
}

/// The allowed bits after the last unconditional full rule, and the rules after it.
fn split_at_reset(rules: &[Rule]) -> (u8, &[Rule]) {
    match rules
        .iter()
        .rposition(|r| r.matches_all() && r.access == ACC_ALL)
    {
        Some(i) => (if rules[i].allow { ACC_ALL } else { 0 }, &rules[i + 1..]),
        None => (0, rules),
    }
}

/// The device filter for `rules` (see the module doc for its shape).
fn program(rules: &[Rule]) -> Vec<Insn> {
    let (start, rules) = split_at_reset(rules);
    let mut p = vec![
        Insn::ldx_w(2, 1, 0),
        Insn::mov32_reg(3, 2),
        Insn::rsh32_imm(3, 16),
        Insn::and32_imm(2, 0xffff),
        Insn::ldx_w(4, 1, 4),
        Insn::ldx_w(5, 1, 8),
        Insn::mov32_imm(0, start.into()),
    ];
    for r in rules {
        let checks: Vec<(u8, u32)> = [(2, r.typ), (4, r.major), (5, r.minor)]
            .into_iter()
            .filter_map(|(reg, v)| v.map(|v| (reg, v)))
            .collect();
        for (i, (reg, v)) in checks.iter().enumerate() {
            // Skip the remaining checks and the action.
            let skip = (checks.len() - i) as i16;
            p.push(Insn::jne_imm(*reg, *v as i32, skip));
        }
        p.push(match r.allow {
            true => Insn::or32_imm(0, r.access.into()),
            false => Insn::and32_imm(0, (!r.access & ACC_ALL).into()),
        });
    }
    p.extend([
        Insn::xor32_imm(0, ACC_ALL.into()), // r0 = denied bits
        Insn::and32_reg(0, 3),              // requested and denied
        Insn::jeq_imm(0, 0, 2),
        Insn::mov32_imm(0, 0),
        Insn::exit(),
        Insn::mov32_imm(0, 1),
        Insn::exit(),
    ]);
    p
}

#[cfg(test)]
#[path = "devices_bpf_tests.rs"]
mod tests;
