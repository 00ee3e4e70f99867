//! Spawning container processes: the init of a new container and the
//! processes `exec` adds to a running one.
//!
//! The spawn protocol. `rsrun` is single-threaded when it forks, so the
//! children may run ordinary Rust (allocate, format errors) before exec.
//! All messages travel on one SOCK_SEQPACKET socketpair ([`channel`]); the
//! children share its child end, and the parent sees EOF once both are gone.
//!
//! ```text
//!  parent (rsrun)                stage 1 "rs:[1:STAGE]"         init / exec "rs:[2:INIT]"
//!  ─────────────                 ─────────────────────          ─────────────────────────
//!  fork ───────────────────────▶ setns every path-given
//!                                namespace (user first)
//!                                unshare(user) if new
//!                      ◀──────── UserNsCreated
//!  write uid_map/gid_map
//!  MapsWritten ────────────────▶ become root in the userns
//!  put stage 1 in the cgroup,    unshare(the other new ones but
//!  apply the limits              cgroup) — in parallel
//!  Go ─────────────────────────▶ unshare(cgroup): rooted in ours
//!                                write timens offsets
//!                                clone(CLONE_PARENT) ──────────▶ (is the parent's child, so
//!                      ◀──────── InitPid(pid)                     `run` can wait for it)
//!                                write 1 byte on the gate ─────▶ waits for it: nothing of
//!                                _exit(0)                         init's may reach the parent
//!                                                                 before InitPid
//!  reap stage 1
//!                                                               init: mounts, /dev
//!                      ◀─────────────────────────────────────── RuntimeHooks (only if any)
//!  createRuntime + prestart hooks
//!  HooksDone ──────────────────────────────────────────────────▶ createContainer hooks,
//!                                                               pivot_root, paths, hostname,
//!                                                               sysctl, rlimits, user, caps,
//!                                                               no_new_privs, cwd, find exe
//!                      ◀─────────────────────────────────────── Ready   (or Error{message})
//!  write state, exit                                            init: block opening exec.fifo
//!                                                               until `start` reads it, exec
//! ```
//!
//! Any child-side failure is sent as `Error(text)` before the child exits,
//! so the caller sees "mount /proc: permission denied", not "exit status 1".
//! No fd of the engine survives into the container: every descriptor above
//! stdio (and `--preserve-fds`) is marked close-on-exec just before exec.

pub mod channel;
pub mod finalize;
pub mod fork;
pub mod init;
pub mod spawn;
pub mod user;
