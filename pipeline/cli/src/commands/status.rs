//! `anchor status`: what each step's ledger says.

use anchor_core::step::{self, StepState};

use crate::app::App;

/// Arguments of `anchor status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Prints one line per step: done, stale, partial (with counts), not run.
pub fn run(_args: &StatusArgs, app: &App) -> anyhow::Result<()> {
    println!("{:<10} {:<9} detail", "step", "state");
    for entry in super::STEPS {
        let step = (entry.build)(app)?;
        let (state, detail) = match step::inspect(step.as_ref(), app.out())? {
            StepState::NotRun => ("not run", String::new()),
            StepState::Done { rows } => (
                "done",
                rows.iter()
                    .map(|(t, n)| format!("{t} {n} rows"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            StepState::Stale { reason } => ("stale", reason),
            StepState::Partial { committed, total } => {
                ("partial", format!("{committed} of {total} parts committed"))
            }
            StepState::Blocked { reason } => ("blocked", reason),
        };
        println!("{:<10} {:<9} {detail}", step.name(), state);
    }
    Ok(())
}
