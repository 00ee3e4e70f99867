//! `rsrun`: the runc command line over the rs engine. Each verb is a few
//! lines that parse flags and call `runtime_core`; errors become one line on
//! stderr (and a JSON/text record in `--log`) and exit status 1.

mod commands;
mod events;
mod exec;
mod foreground;
mod logging;
mod sealed;
mod spec_template;
mod table;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rsrun",
    version,
    about = "Open Container Initiative runtime (rs engine), runc-compatible"
)]
pub struct Cli {
    /// Root directory for storage of container state
    #[arg(long, default_value = "/run/rsrun")]
    root: PathBuf,
    /// Set the log file to write runtime logs to (default is stderr)
    #[arg(long)]
    log: Option<PathBuf>,
    /// Set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Enable debug logging
    #[arg(long)]
    debug: bool,
    /// Enable systemd cgroup support
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Flags shared by create and run.
#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Path to the root of the bundle directory
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container
    Create {
        #[command(flatten)]
        flags: CreateFlags,
        id: String,
    },
    /// Execute the user-defined process in a created container
    Start { id: String },
    /// Create and run a container
    Run {
        #[command(flatten)]
        flags: CreateFlags,
        /// Detach from the container's process
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits
        #[arg(long)]
        keep: bool,
        /// Disable the use of the subreaper used to reap reparented processes
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
        id: String,
    },
    /// Output the state of a container
    State { id: String },
    /// List containers started by rsrun with the given root
    List {
        /// Select one of: table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Display only container IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill {
        /// Send the specified signal to all processes inside the container
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete any resources held by the container
    Delete {
        /// Forcibly delete the container if it is still running (uses SIGKILL)
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Suspend all processes inside the container
    Pause { id: String },
    /// Resume all processes that have been previously paused
    Resume { id: String },
    /// Display the processes running inside a container
    Ps {
        /// Select one of: table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options passed to ps
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Execute new process inside the container
    Exec(Box<exec::ExecArgs>),
    /// Display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events {
        /// Set the stats collection interval
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Display the container's stats then exit
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Show the enabled features
    Features,
    /// Update container resource constraints
    Update(Box<update::UpdateArgs>),
    /// Create a new specification file
    Spec {
        /// Path to the root of the bundle directory
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// Generate a configuration for a rootless container
        #[arg(long)]
        rootless: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    logging::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    // runc exits 255 when exec itself fails, so callers can tell that from
    // the process exiting 1.
    let fail = if matches!(cli.command, Command::Exec(_)) {
        255
    } else {
        1
    };
    // CVE-2019-5736 where non-dumpable is not enough (see sealed.rs).
    let sealed = match &cli.command {
        Command::Create { flags, .. } | Command::Run { flags, .. } => {
            sealed::reexec_if_exposed(sealed::bundle_spec(&flags.bundle), &[])
        }
        Command::Exec(args) => {
            let root = runtime_core::state::Root::new(&cli.root);
            sealed::reexec_if_exposed(sealed::container_spec(&root, args.id()), args.caps())
        }
        _ => Ok(()),
    };
    if let Err(e) = sealed {
        logging::fatal(&e);
        std::process::exit(fail);
    }
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            logging::fatal(&e);
            fail
        }
    };
    std::process::exit(code);
}
