//! `anchor run CHAIN`: run a chain of steps in order; each one already done
//! says "up to date".

use crate::app::App;
use crate::args::StepArgs;

/// The chains and their steps, in order.
pub const CHAINS: &[(&str, &[&str])] = &[
    (
        "dataset",
        &["scrape", "score", "curate", "split", "export", "card"],
    ),
    (
        "annotate",
        &[
            "scrape", "score", "curate", "split", "export", "card", "annotate",
        ],
    ),
    (
        "train",
        &[
            "scrape", "score", "curate", "split", "export", "card", "annotate", "train",
        ],
    ),
    (
        "eval",
        &[
            "scrape", "score", "curate", "split", "export", "card", "annotate", "train", "sample",
            "eval",
        ],
    ),
];

/// Arguments of `anchor run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The chain: dataset, annotate, train or eval.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(["dataset", "annotate", "train", "eval"]))]
    pub chain: String,
    /// Step flags, applied to every step of the chain.
    #[command(flatten)]
    pub step: StepArgs,
}

/// Runs every step of the chain, in order.
pub fn run(args: &RunArgs, app: &App) -> anyhow::Result<()> {
    let (_, wanted) = CHAINS
        .iter()
        .find(|(name, _)| *name == args.chain)
        .ok_or_else(|| anyhow::anyhow!("unknown chain {:?}", args.chain))?;
    if let Ok(world) = std::env::var(anchor_train::parallel::ENV_WORLD_SIZE)
        && world.trim().parse::<usize>().is_ok_and(|n| n > 1)
    {
        anyhow::bail!(
            "{}={world}: a data-parallel launch runs `anchor train` alone; run the steps \
             before it in one process first (`anchor run annotate`)",
            anchor_train::parallel::ENV_WORLD_SIZE
        );
    }
    // Look every step up before running any, so a chain never stops half-way on a name.
    let entries = wanted
        .iter()
        .map(|name| {
            super::STEPS
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| anyhow::anyhow!("run {}: no step named {name}", args.chain))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for entry in entries {
        (entry.run)(app, &args.step)?;
    }
    Ok(())
}
