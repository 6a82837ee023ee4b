//! The binary: process setup (the allocator, logging, the runtime) and dispatch: parse the command
//! line, load the configuration, hand the command to the library's run layer (`run`, `demo`) and
//! print its report; every exit is an [`Exit`] (docs/contract.md §2).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mpu_janitor::config::{self, CliOverrides, Config};
#[cfg(feature = "demo")]
use mpu_janitor::demo::{self, DemoOptions};
use mpu_janitor::exit::Exit;
use mpu_janitor::report::{self, RunReport};
use mpu_janitor::run::{self, Show, daemon};
use tokio_util::sync::CancellationToken;

/// jemalloc, not glibc's malloc: a sweep allocates on one worker thread and frees on the other
/// (a request's buffers, its answer, its task), and glibc then takes the other thread's arena
/// lock: measured, one futex call a request (67,000 for a 20,000-upload sweep, 1,300 with
/// jemalloc) and 15 to 25% more CPU an upload.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Reclaims the storage held by stale S3 multipart uploads, and proves it.
#[derive(Parser, Debug)]
#[command(name = "mpu-janitor", version, about, long_about = None)]
struct Cli {
    /// Configuration file [default: $MPU_JANITOR_CONFIG, then /etc/mpu-janitor/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format (logs go to stderr)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG-style filter) [default: $RUST_LOG, then info]
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Daemon: sweep every target on its cron schedule, serve /metrics, /healthz, /readyz
    Run {
        /// Change nothing; each sweep logs and counts what it would abort
        #[arg(long)]
        dry_run: bool,
    },
    /// One sweep of every target, then exit (Kubernetes CronJob, systemd timer)
    Once {
        /// Change nothing; report what would be aborted
        #[arg(long)]
        dry_run: bool,
        /// Report format on stdout
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Most aborted uploads listed per target in the report, text or JSON (problems are always listed)
        #[arg(long, default_value_t = 1000, value_name = "N")]
        max_listed: usize,
        /// When stderr is not a terminal, a progress log line this often (0s: none)
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        progress_every: std::time::Duration,
    },
    /// List the stale uploads each target would abort; change nothing
    Plan {
        /// Report format on stdout
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// List the uploads kept as fresh, excluded or idle too, each with its reason
        #[arg(long)]
        kept: bool,
        /// When stderr is not a terminal, a progress log line this often (0s: none)
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        progress_every: std::time::Duration,
    },
    /// Validate the configuration and print the effective one, secrets redacted
    CheckConfig,
    /// Contact each target read-only and check what a sweep needs; change nothing
    Doctor {
        /// Report format on stdout
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// A self-contained sweep against an embedded S3 endpoint on loopback; no account needed
    Demo {
        /// Report format on stdout
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Plain stale uploads to seed (the scene grows with it)
        #[arg(long, default_value_t = 60, value_name = "N")]
        uploads: usize,
        /// Keep the endpoint and /metrics up after the sweep, until Ctrl-C
        #[arg(long)]
        serve: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

/// Our own info lines; the SDK's only from warn up (it logs every credential lookup at info), and
/// tokio-cron-scheduler's too (it logs each job it is given at info, and `run` gives it one a tick).
/// The credential chain's own warnings are left out: each failed provider is a multi-line Debug
/// dump, logged on every call, and the target's error already says, in one line, what was tried.
/// An explicit `--log-level info` (or `$RUST_LOG`) shows them all.
const DEFAULT_LOG_FILTER: &str = "info,aws_config=warn,aws_config::meta::credentials::chain=error,aws_smithy_runtime=warn,aws_sdk_s3=warn,tokio_cron_scheduler=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A report piped into `head` closes the pipe early: end quietly, as Unix tools do, instead of
    // panicking on the failed write (exit 101). Rust ignores SIGPIPE by default; sockets are
    // written with MSG_NOSIGNAL, so only a closed stdout or stderr pipe ends the process. The
    // daemon keeps ignoring it: a log reader that goes away must not stop the sweeps.
    if !matches!(cli.command, Command::Run { .. }) {
        // SAFETY: restoring a signal's default disposition at startup, before any thread runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The demo prints its own story on stdout; only warnings belong on stderr there.
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn",
        _ => DEFAULT_LOG_FILTER,
    };
    if let Err(e) = init_logging(cli.log_format, cli.log_level.as_deref(), default_filter) {
        eprintln!("error: {e}");
        return Exit::Usage.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    if let Command::Demo {
        output,
        uploads,
        serve,
    } = cli.command
    {
        if let Some(path) = &cli.config {
            eprintln!(
                "error: demo runs on its own embedded endpoint and reads no configuration, so --config {} would be ignored: drop it (or run `plan` or `once --dry-run` with your configuration)",
                path.display()
            );
            return Exit::Usage.into();
        }
        return run_demo(&runtime, output, uploads, serve);
    }
    let cli_overrides = CliOverrides {
        dry_run: matches!(
            cli.command,
            Command::Once { dry_run: true, .. }
                | Command::Run { dry_run: true }
                | Command::Plan { .. }
        ),
    };
    let path = config::config_path(cli.config.as_deref());
    let config = match Config::load(&path, &cli_overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    // check-config prints them in its output: said once, not twice.
    if !matches!(cli.command, Command::CheckConfig) {
        for w in config.warnings() {
            tracing::warn!("{w}");
        }
    }
    match cli.command {
        Command::CheckConfig => {
            print!("{}", config::render_effective(&config));
            ExitCode::SUCCESS
        }
        Command::Plan {
            output,
            kept,
            progress_every,
        } => {
            let show = Show::for_stderr(progress_every);
            let plan = on_workers(
                &runtime,
                async move { run::plan(&config, kept, show).await },
            );
            match (&plan.report, output) {
                (Some(run), Output::Text) => print!("{}", report::render_plan_text(run)),
                (Some(run), Output::Json) => println!("{}", to_json(run)),
                (None, _) => {}
            }
            plan.exit.into()
        }
        Command::Once {
            output,
            max_listed,
            progress_every,
            ..
        } => {
            let show = Show::for_stderr(progress_every);
            let once = on_workers(&runtime, async move {
                run::once(&config, max_listed, show).await
            });
            match (&once.report, output) {
                (Some(run), Output::Text) => print!("{}", report::render_run_text(run)),
                (Some(run), Output::Json) => println!("{}", to_json(run)),
                (None, _) => {}
            }
            once.exit.into()
        }
        Command::Doctor { output } => {
            let found = on_workers(&runtime, async move {
                mpu_janitor::doctor::run(&config, &mpu_janitor::store::Connector::new()).await
            });
            match output {
                Output::Text => print!("{}", mpu_janitor::doctor::render_text(&found)),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&found)
                        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
                ),
            }
            found.exit().into()
        }
        Command::Demo { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Run { .. } => {
            // SIGHUP: the same loader and validation as above, on the same path and flags.
            let reload: daemon::Reload = Box::new(move || Config::load(&path, &cli_overrides));
            run_daemon(&runtime, config, reload)
        }
    }
}

/// Runs `fut` on one of the runtime's workers instead of this thread, and waits for it. A sweep's
/// coordinator (the listing, the limiter, the tally) then shares the workers' queues with the
/// uploads it spawns: run on this thread, each upload cost a wake-up across threads as it started
/// and another as it ended.
fn on_workers<F>(runtime: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime.block_on(runtime.spawn(fut)) {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn run_daemon(
    runtime: &tokio::runtime::Runtime,
    config: Config,
    reload: daemon::Reload,
) -> ExitCode {
    match on_workers(
        runtime,
        daemon::run(config, Some(reload), CancellationToken::new()),
    ) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed.into()
        }
    }
}

#[cfg(feature = "demo")]
fn run_demo(
    runtime: &tokio::runtime::Runtime,
    output: Output,
    uploads: usize,
    serve: bool,
) -> ExitCode {
    let opts = DemoOptions {
        uploads,
        serve,
        json: output == Output::Json,
        progress: std::io::stderr().is_terminal(),
    };
    match on_workers(runtime, demo::run(opts)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed.into()
        }
    }
}

#[cfg(not(feature = "demo"))]
fn run_demo(_: &tokio::runtime::Runtime, _: Output, _: usize, _: bool) -> ExitCode {
    eprintln!(
        "error: this mpu-janitor was built without the demo (cargo build --no-default-features); build with the default features to run it"
    );
    Exit::Usage.into()
}

fn to_json(run: &RunReport) -> String {
    serde_json::to_string_pretty(run).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn init_logging(format: LogFormat, level: Option<&str>, default: &str) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => config::check_log_filter(l)
            .and_then(|()| EnvFilter::try_new(l).map_err(|e| e.to_string()))
            .map_err(|e| format!("--log-level {l:?}: {e}"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(v) if config::check_log_filter(&v).is_ok() => EnvFilter::new(v),
            _ => EnvFilter::new(default),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(run::log_writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
