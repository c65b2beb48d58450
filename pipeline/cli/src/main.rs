//! The `anchor` binary: parses the command line, resolves settings and hands
//! each subcommand to its module under `commands/`. All logic lives in the
//! library crates; this is glue.

mod app;
mod args;
mod commands;
mod device;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// Exit status for a user error (bad flag, bad config, missing input).
const EXIT_USER: u8 = 2;
/// Exit status for an internal failure.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    // SAFETY: first statement of main; no other thread has started.
    unsafe { anchor_sd::setup_cpu_threads() };
    anchor_train::allocator::keep_freed_pages();
    let cli = Cli::parse();
    app::init_logging(cli.global.quiet, cli.global.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            if app::is_user_error(&err) {
                ExitCode::from(EXIT_USER)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let app = app::App::resolve(&cli.global)?;
    match &cli.command {
        Command::Scrape(args) => commands::scrape::run(args, &app),
        Command::Curate(args) => commands::curate::run(args, &app),
        Command::Split(args) => commands::split::run(args, &app),
        Command::Hash(args) => commands::images::run_hash(args),
        Command::Measure(args) => commands::images::run_measure(args, &app),
        Command::Status(args) => commands::status::run(args, &app),
        Command::Config(args) => commands::config::run(args, &app),
        Command::Repair(args) => commands::repair::run(args, &app),
        Command::Run(args) => commands::run::run(args, &app),
        Command::Fid(args) => commands::fid::run(args, &app),
        Command::Annotate(args) => commands::annotate::run(args, &app),
        Command::Sample(args) => commands::sample::run(args, &app),
        Command::Train(args) => commands::train::run(args, &app),
        Command::Eval(args) => commands::eval::run(args, &app),
        Command::Tables(args) => commands::eval::run_tables(args, &app),
        Command::Study(args) => commands::study::run(args, &app),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A training step frees and reallocates every activation; mimalloc reuses those blocks
/// where glibc's allocator hands large ones back to the kernel and faults them in again
/// (see [`anchor_train::allocator::keep_freed_pages`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
