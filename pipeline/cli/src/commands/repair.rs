//! `anchor repair`: verify committed parts by content hash and rebuild the
//! damaged ones.

use anchor_core::step;

use crate::app::App;
use crate::args::StepArgs;

/// Arguments of `anchor repair`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// Only these steps (default: every step).
    pub steps: Vec<String>,
}

/// Verifies each step's parts; damaged ones are reported by name, dropped
/// from the ledger and recomputed.
pub fn run(args: &RepairArgs, app: &App) -> anyhow::Result<()> {
    for wanted in &args.steps {
        if !super::STEPS.iter().any(|s| s.name == wanted) {
            anyhow::bail!("unknown step {wanted:?}");
        }
    }
    let selected = super::STEPS
        .iter()
        .filter(|s| args.steps.is_empty() || args.steps.iter().any(|w| w == s.name));
    for entry in selected {
        let step = (entry.build)(app)?;
        let damaged = step::repair(step.as_ref(), app.out())?;
        if damaged.is_empty() {
            if !app.quiet {
                println!("{}: every part verified", step.name());
            }
            continue;
        }
        for problem in &damaged {
            eprintln!("{}: {problem}", step.name());
        }
        (entry.run)(
            app,
            &StepArgs {
                force: false,
                shard: None,
            },
        )?;
    }
    Ok(())
}
