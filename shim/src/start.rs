//! The `start` action: find or create the server for this container and
//! tell containerd its address. Runs in containerd's child with the bundle
//! as cwd; its stdout and stderr together are the reply, so nothing else is
//! ever written to either. No threads, no async runtime: the fork below
//! happens in a single-threaded process.
//!
//! ```text
//! containerd ──argv/env/stdin──▶ start
//!   stdin: nothing | Any(options) (≤ 2.2) | BootstrapParams (≥ 2.3)
//! start:
//!   1. grouping = config.json annotation io.containerd.runc.v2.group,
//!      else io.kubernetes.cri.sandbox-id, else the id
//!   2. address  = unix://<socket dir>/<sha256(grpc addr/ns/grouping)>
//!   3. <bundle>/rs-options.json ← runtime options
//!      <bundle>/address         ← address (containerd ≤ 1.7 reconnects
//!                                  through it after a restart)
//!   4. bind (0600 file socket)
//!        EADDRINUSE + connectable → reply with the address (shared server)
//!        EADDRINUSE + dead        → remove, bind again
//!   5. fork the server (no exec: see fork_server.rs)
//!        fd 3 = listener, fds 0-2 = /dev/null, own process group, cwd = bundle
//!   6. server → ShimCgroup, oom_score_adj = ours + 1
//! start ──stdout──▶ containerd
//!   BootstrapResult{version 3, address, "ttrpc"} if stdin was BootstrapParams,
//!   else the bare address (containerd reads it as version 2)
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rs_proto::{RuntimeOptions, ShimProtocol, StartInput};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::flags::Flags;
use crate::socket::{self, Bound};
use crate::{fork_server, options_file, placement};

/// Annotations that group containers onto one server, in precedence order
/// (the Go runc shim's `groupLabels`).
pub const GROUP_LABELS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// The task API version announced in a BootstrapResult: the protos we
/// serve are `containerd.task.v3.Task`, as the Go runc shim announces.
pub const TASK_API_VERSION: i32 = 3;

/// `<bundle>/address`: the server's address. containerd 1.6/1.7 read it
/// (`loadShim`) to reconnect to running servers when they start again;
/// without it they take every server for dead and clean its containers
/// up. The Go shims write it in `start`, for a shared server too. Also
/// read by `delete`, to remove a dead server's socket.
pub const ADDRESS_FILE: &str = "address";

/// containerd bounds `start` stdin at 10 MiB; so do we.
const STDIN_LIMIT: u64 = 10 << 20;

/// Everything `start` decided before touching sockets or processes.
#[derive(Debug)]
pub struct Plan {
    pub input: StartInput,
    pub options: RuntimeOptions,
    pub namespace: String,
    pub id: String,
    /// containerd's gRPC address, passed on to the server as `-address`.
    pub grpc_address: String,
    pub bundle: PathBuf,
    /// `unix://…` address of the server socket.
    pub address: String,
}

/// Runs `start` with the process's stdin and cwd; returns the bytes to print.
pub fn run(flags: &Flags) -> Result<Vec<u8>> {
    let mut stdin = Vec::new();
    std::io::stdin()
        .take(STDIN_LIMIT)
        .read_to_end(&mut stdin)
        .map_err(|source| Error::Io {
            op: "read stdin",
            source,
        })?;
    let bundle = std::env::current_dir().map_err(|source| Error::Io {
        op: "get working directory (the bundle)",
        source,
    })?;
    let plan = plan(flags, &stdin, &bundle)?;
    execute(flags, &plan)?;
    Ok(response(&plan.input, &plan.address))
}

/// Steps 1–2: decode stdin, merge it with the flags, compute the address.
pub fn plan(flags: &Flags, stdin: &[u8], bundle: &Path) -> Result<Plan> {
    let input = classify_stdin(stdin)?;
    let options = input.runtime_options()?.unwrap_or_default();
    let params = match &input {
        StartInput::Bootstrap(p) => Some(p),
        _ => None,
    };
    // containerd ≥ 2.3 still sends the flags; BootstrapParams fill gaps.
    let pick = |flag: &str, param: Option<&String>| {
        if flag.is_empty() {
            param.cloned().unwrap_or_default()
        } else {
            flag.to_string()
        }
    };
    let namespace = pick(&flags.namespace, params.map(|p| &p.namespace));
    let id = pick(&flags.id, params.map(|p| &p.instance_id));
    let grpc_address = pick(&flags.address, params.map(|p| &p.containerd_grpc_address));
    if namespace.is_empty() {
        return Err(Error::Usage("shim namespace cannot be empty".into()));
    }
    if id.is_empty() {
        return Err(Error::Usage("shim id cannot be empty".into()));
    }
    let annotations = read_annotations(bundle)?;
    let grouping = grouping_key(&annotations, &id);
    let dir = socket::socket_dir(params.and_then(|p| p.socket_dir.as_deref()));
    let address =
        socket::socket_address(&dir.to_string_lossy(), &grpc_address, &namespace, grouping);
    Ok(Plan {
        input,
        options,
        namespace,
        id,
        grpc_address,
        bundle: bundle.to_path_buf(),
        address,
    })
}

/// What containerd wrote on stdin. Shapes we do not recognize (including an
/// options `Any` of a foreign type) mean "no options", as in the Go shim,
/// which ignores option-reading errors; a recognized options message that
/// does not decode fails `start`, so a broken config is not silently lost.
pub fn classify_stdin(bytes: &[u8]) -> Result<StartInput> {
    match rs_proto::parse_start_stdin(bytes) {
        Ok(input) => Ok(input),
        Err(
            rs_proto::Error::Malformed { .. }
            | rs_proto::Error::UnexpectedField { .. }
            | rs_proto::Error::UnsupportedOptionsType { .. },
        ) => Ok(StartInput::Empty),
        Err(e) => Err(e.into()),
    }
}

/// The grouping key: the first grouping annotation present (even when
/// empty, as in Go), else the task id.
pub fn grouping_key<'a>(annotations: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    GROUP_LABELS
        .iter()
        .find_map(|label| annotations.get(*label))
        .map_or(id, String::as_str)
}

/// The bundle's annotations; config.json must exist and parse (Go fails
/// `start` otherwise too). Only `annotations` is decoded.
pub fn read_annotations(bundle: &Path) -> Result<HashMap<String, String>> {
    #[derive(Deserialize)]
    struct Shallow {
        #[serde(default)]
        annotations: Option<HashMap<String, String>>,
    }
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::Spec(format!("{}: {e}", path.display())))?;
    let spec: Shallow = serde_json::from_slice(&data)
        .map_err(|e| Error::Spec(format!("{}: {e}", path.display())))?;
    Ok(spec.annotations.unwrap_or_default())
}

/// The reply: protobuf BootstrapResult to a containerd that sent
/// BootstrapParams; the bare address to older ones.
pub fn response(input: &StartInput, address: &str) -> Vec<u8> {
    match input {
        StartInput::Bootstrap(_) => {
            rs_proto::encode_bootstrap_result(TASK_API_VERSION, address, ShimProtocol::Ttrpc)
        }
        StartInput::Empty | StartInput::Options(_) => address.as_bytes().to_vec(),
    }
}

/// Steps 3–6.
fn execute(flags: &Flags, plan: &Plan) -> Result<()> {
    options_file::save(&plan.bundle, &plan.options)?;
    write_address(&plan.bundle, &plan.address)?;
    let listener = match socket::bind(&plan.address)? {
        Bound::Shared => return Ok(()),
        Bound::New(l) => l,
    };
    let socket_path = socket::socket_path(&plan.address).to_path_buf();
    let pid = match fork_server::fork(flags, plan, &listener) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_file(&socket_path);
            return Err(e);
        }
    };
    // The server holds its own copy of the listener now.
    drop(listener);
    if let Err(e) = place(plan, pid as u32) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        let _ = std::fs::remove_file(&socket_path);
        return Err(e);
    }
    // Not waited for: `start` exits now and the server is reparented.
    Ok(())
}

/// Writes [`ADDRESS_FILE`] atomically (temp file + rename), so a reader
/// never sees half an address.
pub fn write_address(bundle: &Path, address: &str) -> Result<()> {
    let path = bundle.join(ADDRESS_FILE);
    let tmp = bundle.join(format!(".{ADDRESS_FILE}.tmp"));
    std::fs::write(&tmp, address).map_err(|e| Error::path("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::path("rename into", &path, e))
}

fn place(plan: &Plan, pid: u32) -> Result<()> {
    if let Some(cgroup) = &plan.options.shim_cgroup {
        placement::join_cgroup(cgroup, pid)?;
    }
    placement::adjust_oom_score(pid)
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
