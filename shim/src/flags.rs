//! containerd's shim command line, parsed the way Go's `flag` package does
//! (containerd's `pkg/shim` declares the flags; clap would reject its
//! single-dash long names):
//!
//! ```text
//! start:  -namespace NS -address ADDR -publish-binary PATH -id ID [-debug] start
//! delete: -namespace NS -address ADDR -publish-binary PATH -id ID -bundle DIR [-debug] delete
//! server: -namespace NS -id ID -address ADDR [-debug]          (our own re-exec)
//! other:  -v | -version | -info
//! ```
//!
//! Go rules kept here: `-flag` and `--flag` are the same; values come as
//! `-flag value` or `-flag=value`; booleans take only `-flag` or
//! `-flag=<bool>`; parsing stops at the first non-flag argument (the action)
//! or after `--`; the last repetition of a flag wins.
//!
//! Unlike Go, an unknown flag is not fatal (a newer containerd may pass
//! flags we do not know yet): it is recorded in [`Flags::warnings`], and
//! the caller prints them only where stderr is not the reply (`start`'s
//! stdout and stderr together are its answer to containerd).

use std::path::PathBuf;

/// The actions containerd runs the binary for; no action means "be the
/// long-lived server".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start,
    Delete,
    Serve,
}

/// Everything on the command line. Empty strings mean "not given", as in Go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    /// containerd's gRPC address (`-address`).
    pub address: String,
    pub publish_binary: String,
    /// Only sent to `delete`; the cwd is the bundle otherwise.
    pub bundle: Option<PathBuf>,
    /// rust-extensions' way to name the server socket; we pass fd 3 instead.
    pub socket: String,
    pub debug_socket: String,
    pub debug: bool,
    pub version: bool,
    pub info: bool,
    pub help: bool,
    /// Positional arguments: the action first.
    pub args: Vec<String>,
    /// Unknown flags, one message each, for the caller to print where safe.
    pub warnings: Vec<String>,
}

impl Flags {
    /// The action named by the first positional argument.
    pub fn action(&self) -> Result<Action, String> {
        match self.args.first().map(String::as_str) {
            None => Ok(Action::Serve),
            Some("start") => Ok(Action::Start),
            Some("delete") => Ok(Action::Delete),
            Some(other) => Err(format!(
                "unknown action {other:?} (expected start, delete or none)"
            )),
        }
    }
}

/// Names of actions, so an unknown flag never swallows one as its value.
const ACTIONS: [&str; 2] = ["start", "delete"];

/// Parses `args` (without argv\[0\]). Errors are Go's: a string flag without
/// a value, or a boolean flag with a non-boolean `=value`.
pub fn parse<I, S>(args: I) -> Result<Flags, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut flags = Flags::default();
    let mut it = args.into_iter().map(Into::into).peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            flags.args.extend(it);
            break;
        }
        let Some(body) = flag_body(&arg) else {
            // First non-flag: the action; everything after is positional.
            flags.args.push(arg);
            flags.args.extend(it);
            break;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if let Some(slot) = flags.bool_slot(&name) {
            *slot = match inline {
                None => true,
                Some(v) => parse_go_bool(&v)
                    .ok_or_else(|| format!("invalid boolean value {v:?} for -{name}"))?,
            };
            continue;
        }
        if flags.is_string_flag(&name) {
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
            };
            flags.set_string(&name, value);
            continue;
        }
        // Unknown: take the next word as its value only when that cannot be
        // a flag or an action, so `-new-flag start` still starts.
        let value = match inline {
            Some(v) => Some(v),
            None => it.next_if(|next| !next.starts_with('-') && !ACTIONS.contains(&next.as_str())),
        };
        flags.warnings.push(match value {
            Some(v) => format!("ignoring unknown flag -{name}={v}"),
            None => format!("ignoring unknown flag -{name}"),
        });
    }
    Ok(flags)
}

impl Flags {
    fn bool_slot(&mut self, name: &str) -> Option<&mut bool> {
        match name {
            "debug" => Some(&mut self.debug),
            "v" | "version" => Some(&mut self.version),
            "info" => Some(&mut self.info),
            "h" | "help" => Some(&mut self.help),
            _ => None,
        }
    }

    fn string_slot(&mut self, name: &str) -> Option<&mut String> {
        match name {
            "namespace" => Some(&mut self.namespace),
            "id" => Some(&mut self.id),
            "address" => Some(&mut self.address),
            "publish-binary" => Some(&mut self.publish_binary),
            "socket" => Some(&mut self.socket),
            "debug-socket" => Some(&mut self.debug_socket),
            _ => None,
        }
    }

    fn is_string_flag(&mut self, name: &str) -> bool {
        name == "bundle" || self.string_slot(name).is_some()
    }

    fn set_string(&mut self, name: &str, value: String) {
        if name == "bundle" {
            self.bundle = (!value.is_empty()).then(|| PathBuf::from(value));
        } else if let Some(slot) = self.string_slot(name) {
            *slot = value;
        }
    }
}

/// `-x`, `--x` → `x`; not a flag: `-`, `--` (handled by the caller) and
/// words without a leading dash. Go also rejects `---x`; we treat it as a flag
/// named `-x`, which is then unknown.
fn flag_body(arg: &str) -> Option<&str> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    (!body.is_empty()).then_some(body)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The `-h` text.
pub const USAGE: &str = "\
Usage: containerd-shim-rs-v2 [flags] [start|delete]

containerd shim v2 for the rs runtime (runtime type io.containerd.rs.v2).
containerd runs this binary; it is not meant to be run by hand.

  -namespace NS         namespace that owns the shim
  -id ID                id of the task
  -address ADDR         grpc address back to main containerd
  -publish-binary PATH  containerd binary (ignored: events use TTRPC_ADDRESS)
  -bundle DIR           bundle path (delete only; defaults to the cwd)
  -debug                enable debug output in logs
  -v, -version          print the version and exit
";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Flags {
        parse(args.iter().copied()).unwrap()
    }

    #[test]
    fn containerd_start_argv() {
        // pkg/shim/util.go Command(): exactly this order.
        let f = p(&[
            "-namespace",
            "k8s.io",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "abc",
            "-debug",
            "start",
        ]);
        assert_eq!(f.namespace, "k8s.io");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert_eq!(f.id, "abc");
        assert!(f.debug);
        assert_eq!(f.bundle, None);
        assert_eq!(f.action(), Ok(Action::Start));
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn containerd_delete_argv() {
        let f = p(&[
            "-namespace",
            "default",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "-bundle",
            "/run/containerd/io.containerd.runtime.v2.task/default/c1",
            "delete",
        ]);
        assert_eq!(
            f.bundle,
            Some(PathBuf::from(
                "/run/containerd/io.containerd.runtime.v2.task/default/c1"
            ))
        );
        assert!(!f.debug);
        assert_eq!(f.action(), Ok(Action::Delete));
    }

    #[test]
    fn server_argv_has_no_action() {
        let f = p(&["-namespace", "ns", "-id", "x", "-address", "/a", "-debug"]);
        assert_eq!(f.action(), Ok(Action::Serve));
        assert!(f.debug);
    }

    #[test]
    fn equals_form_double_dash_and_last_wins() {
        let f = p(&[
            "--namespace=a",
            "-namespace",
            "b",
            "-id=x=y",
            "--debug=false",
        ]);
        assert_eq!(f.namespace, "b");
        assert_eq!(f.id, "x=y");
        assert!(!f.debug);
        assert_eq!(f.action(), Ok(Action::Serve));
    }

    #[test]
    fn version_short_and_long() {
        assert!(p(&["-v"]).version);
        assert!(p(&["-version"]).version);
        assert!(p(&["--version"]).version);
        assert!(!p(&["-v=false"]).version);
    }

    #[test]
    fn info_and_help_are_booleans() {
        assert!(p(&["-info"]).info);
        assert!(p(&["-h"]).help);
    }

    #[test]
    fn unknown_flags_are_warned_not_fatal() {
        let f = p(&[
            "-new-bool",
            "-namespace",
            "n",
            "-new-val",
            "x",
            "-k=v",
            "start",
        ]);
        assert_eq!(f.namespace, "n");
        assert_eq!(f.action(), Ok(Action::Start));
        assert_eq!(
            f.warnings,
            vec![
                "ignoring unknown flag -new-bool",
                "ignoring unknown flag -new-val=x",
                "ignoring unknown flag -k=v",
            ]
        );
        // An unknown flag right before the action must not eat it.
        let f = p(&["-id", "x", "-surprise", "delete"]);
        assert_eq!(f.action(), Ok(Action::Delete));
        assert_eq!(f.warnings, vec!["ignoring unknown flag -surprise"]);
    }

    #[test]
    fn parsing_stops_at_the_action_and_after_double_dash() {
        let f = p(&["-id", "x", "start", "-debug"]);
        assert!(!f.debug);
        assert_eq!(f.args, vec!["start", "-debug"]);
        let f = p(&["--", "-debug"]);
        assert_eq!(f.args, vec!["-debug"]);
        assert!(f.action().is_err());
    }

    #[test]
    fn go_errors() {
        assert_eq!(
            parse(["-id"]).unwrap_err(),
            "flag needs an argument: -id".to_string()
        );
        assert!(parse(["-debug=yes"]).unwrap_err().contains("-debug"));
        assert!(p(&["bogus"]).action().unwrap_err().contains("bogus"));
    }

    #[test]
    fn boolean_value_is_not_consumed() {
        // Go: `-debug false` sets debug and leaves "false" as the action.
        let f = p(&["-debug", "false"]);
        assert!(f.debug);
        assert_eq!(f.args, vec!["false"]);
    }

    #[test]
    fn empty_bundle_is_none() {
        assert_eq!(p(&["-bundle", ""]).bundle, None);
    }
}
