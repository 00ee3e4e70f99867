//! CVE-2019-5736 for containers that can trace us. Every rsrun process
//! that comes near a container (stage 1, init before its execve, the exec
//! stage) is made non-dumpable, so a container process cannot open its
//! `/proc/PID/exe`, the host's rsrun binary. Non-dumpable yields to
//! CAP_SYS_PTRACE in the host user namespace, though: a container that
//! keeps it, without a user namespace of its own, could open that link and,
//! once rsrun is gone, reopen it for writing and replace the host binary.
//!
//! For those containers only, `create`, `run` and `exec` first re-execute
//! rsrun from a sealed memfd copy of itself (`/memfd:rsrun (deleted)`;
//! F_SEAL_WRITE | SHRINK | GROW | SEAL): what such a container can reach is
//! that copy, which cannot be written. Everyone else pays nothing (the copy
//! costs about a millisecond).

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use runtime_core::state::Root;
use serde_json::Value;

/// Set in the environment of the sealed copy (so it does not copy again).
const MARKER: &str = "_RSRUN_SEALED";

/// Re-executes rsrun from a sealed memfd if the container `spec` would let
/// its processes reach ours; returns (continues in this process) otherwise.
pub fn reexec_if_exposed(spec: Option<Value>, extra_caps: &[String]) -> Result<()> {
    if std::env::var_os(MARKER).is_some() {
        return Ok(());
    }
    let exposed =
        spec.is_some_and(|s| can_trace_host(&s)) || extra_caps.iter().any(|c| is_sys_ptrace(c));
    if !exposed {
        return Ok(());
    }
    log::debug!(
        "container keeps CAP_SYS_PTRACE without a user namespace: running from a sealed copy"
    );
    reexec_sealed()
}

/// The config.json of a bundle, if it may grant CAP_SYS_PTRACE (None if
/// unreadable: `create` reports that).
pub fn bundle_spec(bundle: &Path) -> Option<Value> {
    spec_naming_ptrace(&bundle.join("config.json"))
}

/// The spec saved for container `id`, if it may grant CAP_SYS_PTRACE (None
/// if unknown: `exec` reports that).
pub fn container_spec(root: &Root, id: &str) -> Option<Value> {
    spec_naming_ptrace(&root.container_dir(id).join("config.json"))
}

/// Parses `path` only when its text names SYS_PTRACE at all: the engine
/// parses the spec anyway, so the common case (no such capability) costs
/// one read and a byte search here, not a second parse on every create.
fn spec_naming_ptrace(path: &Path) -> Option<Value> {
    let text = std::fs::read(path).ok()?;
    let names = text
        .windows(10)
        .any(|w| w.eq_ignore_ascii_case(b"SYS_PTRACE"));
    names.then(|| serde_json::from_slice(&text).ok()).flatten()
}

/// Whether the container's processes may hold CAP_SYS_PTRACE in the host
/// user namespace (it is in the bounding set and no user namespace is
/// created or joined).
pub fn can_trace_host(spec: &Value) -> bool {
    let bounding = spec
        .pointer("/process/capabilities/bounding")
        .and_then(Value::as_array)
        .is_some_and(|caps| caps.iter().filter_map(Value::as_str).any(is_sys_ptrace));
    let userns = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == "user"));
    bounding && !userns
}

fn is_sys_ptrace(cap: &str) -> bool {
    let c = cap.to_ascii_uppercase();
    c == "CAP_SYS_PTRACE" || c == "SYS_PTRACE"
}

fn reexec_sealed() -> Result<()> {
    let name = CString::new("rsrun").expect("no NUL");
    // SAFETY: memfd_create with a valid NUL-terminated name and flags.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for a sealed rsrun");
    }
    // SAFETY: a fresh descriptor owned only here.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut copy = std::fs::File::from(memfd);
    let mut exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    std::io::copy(&mut exe, &mut copy).context("copy rsrun into a memfd")?;
    copy.flush()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) with an integer argument on our memfd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error()).context("seal the rsrun memfd");
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).context("argument with a NUL byte"))
        .collect::<Result<_>>()?;
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(CString::new(format!("{MARKER}=1")).expect("no NUL"));
    let err = nix::unistd::fexecve(&copy, &args, &env).unwrap_err();
    Err(err).context("execute the sealed rsrun copy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_ptrace_without_userns_is_exposed() {
        let caps = |c: &[&str]| json!({"process": {"capabilities": {"bounding": c}}, "linux": {"namespaces": [{"type": "pid"}]}});
        assert!(can_trace_host(&caps(&["CAP_CHOWN", "CAP_SYS_PTRACE"])));
        assert!(!can_trace_host(&caps(&["CAP_CHOWN", "CAP_KILL"])));
        let mut with_userns = caps(&["CAP_SYS_PTRACE"]);
        with_userns["linux"]["namespaces"] = json!([{"type": "user"}]);
        assert!(!can_trace_host(&with_userns));
        assert!(is_sys_ptrace("sys_ptrace") && is_sys_ptrace("CAP_SYS_PTRACE"));
    }
}
