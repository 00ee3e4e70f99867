//! Seccomp: the spec's `linux.seccomp` is compiled to a BPF program in the
//! parent with libseccomp (so a bad profile fails before anything is
//! created, with the syscall or field named), and the container process only
//! installs those bytes with seccomp(2) — no library work in the child.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSyscall};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A compiled filter ready to install.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Program {
    /// Raw `struct sock_filter` array.
    pub bpf: Vec<u8>,
    /// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
    pub flags: u32,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::InvalidSpec(format!("linux.seccomp: {what}"))
}

/// The canonical OCI spelling of a serde enum value (e.g. "SCMP_ACT_ERRNO").
fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    let val = match name {
        "SCMP_ACT_ERRNO" => Some(errno.unwrap_or(libc::EPERM as u32) as i32),
        "SCMP_ACT_TRACE" => Some(errno.unwrap_or(libc::EPERM as u32) as i32),
        _ => None,
    };
    if name == "SCMP_ACT_NOTIFY" {
        return Err(Error::Unsupported(
            "linux.seccomp: SCMP_ACT_NOTIFY (seccomp agents) is not supported yet".into(),
        ));
    }
    ScmpAction::from_str(name, val).map_err(|e| bad(format!("action {name}: {e}")))
}

/// Compiles the profile.
pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let default = action(&name_of(&s.default_action()), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(bad)?;
    // The runtime sets no_new_privs itself when the spec asks; never implicitly.
    ctx.set_ctl_nnp(false).map_err(bad)?;
    for arch in s.architectures().clone().unwrap_or_default() {
        let a: ScmpArch = name_of(&arch)
            .parse()
            .map_err(|e| bad(format!("architecture {}: {e}", name_of(&arch))))?;
        if !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a)
                .map_err(|e| bad(format!("architecture {}: {e}", name_of(&arch))))?;
        }
    }
    for rule in s.syscalls().clone().unwrap_or_default() {
        add_rule(&mut ctx, &rule, default)?;
    }
    let mut flags = 0u32;
    for f in s.flags().clone().unwrap_or_default() {
        flags |= match name_of(&f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => 1,
            "SECCOMP_FILTER_FLAG_LOG" => 2,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 32,
            other => return Err(bad(format!("unknown flag {other}"))),
        };
    }
    Ok(Program {
        bpf: export(&ctx)?,
        flags,
    })
}

/// The filter's BPF bytes (exported through a memfd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let fd = nix::sys::memfd::memfd_create(c"rs-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::sys("memfd_create", e))?;
    ctx.export_bpf(&fd)
        .map_err(|e| bad(format!("export BPF: {e}")))?;
    let mut f = std::fs::File::from(fd);
    let mut bpf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| Error::io("read BPF", e))?;
    Ok(bpf)
}

fn add_rule(ctx: &mut ScmpFilterContext, rule: &LinuxSyscall, default: ScmpAction) -> Result<()> {
    let act = action(&name_of(&rule.action()), rule.errno_ret())?;
    if act == default {
        return Ok(()); // libseccomp refuses rules that repeat the default action
    }
    let mut conds = Vec::new();
    let mut idx: Vec<usize> = Vec::new();
    for a in rule.args().clone().unwrap_or_default() {
        idx.push(a.index());
        let op_name = name_of(&a.op());
        let op: ScmpCompareOp = op_name
            .parse()
            .map_err(|e| bad(format!("operator {op_name}: {e}")))?;
        let (op, datum) = match op {
            ScmpCompareOp::MaskedEqual(_) => (
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ),
            other => (other, a.value()),
        };
        conds.push(ScmpArgCompare::new(a.index() as u32, op, datum));
    }
    // Several conditions on one argument mean "any of them" (as runc does).
    idx.sort_unstable();
    let repeated = idx.windows(2).any(|w| w[0] == w[1]);
    for name in rule.names() {
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            log::debug!("seccomp: syscall {name} unknown to this libseccomp/arch, skipped");
            continue;
        };
        let res = if conds.is_empty() {
            ctx.add_rule(act, sc).map(|_| ())
        } else if repeated {
            conds
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
        } else {
            ctx.add_rule_conditional(act, sc, &conds).map(|_| ())
        };
        res.map_err(|e| bad(format!("rule for {name}: {e}")))?;
    }
    Ok(())
}

/// Installs the program in the calling process (seccomp(2)).
pub fn install(p: &Program) -> Result<()> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const u8,
    }
    let prog = SockFprog {
        len: (p.bpf.len() / 8) as u16,
        filter: p.bpf.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: prog points at p.bpf, a whole number of 8-byte sock_filter
    // entries produced by libseccomp, alive for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            p.flags as libc::c_ulong,
            &prog as *const SockFprog,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "install seccomp filter",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compiles_a_docker_like_profile() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["read","write","exit_group","not_a_syscall"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let prog = compile(&p).unwrap();
        assert!(!prog.bpf.is_empty() && prog.bpf.len().is_multiple_of(8));
        assert_eq!(prog.flags, 0);
    }

    #[test]
    fn notify_and_bad_arch_are_refused() {
        let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(compile(&p)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_NOTIFY"));
        let p =
            profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"]}"#);
        assert_eq!(compile(&p).unwrap().flags, 2);
    }
}
