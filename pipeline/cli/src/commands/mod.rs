//! One module per subcommand, and the registry of pipeline steps.

pub mod annotate;
pub mod calibrate;
pub mod config;
pub mod curate;
pub mod eval;
pub mod fid;
pub mod images;
pub mod repair;
pub mod run;
pub mod sample;
pub mod scrape;
pub mod split;
pub mod status;
pub mod study;
pub mod train;

use anchor_core::step::Step;

use crate::app::App;
use crate::args::StepArgs;

/// A pipeline step as the binary knows it: how to build it from the config
/// (for `status` and `repair`) and how to run it with its extras (for chains).
pub struct StepEntry {
    /// The step's name (its subcommand).
    pub name: &'static str,
    /// Builds the step from the effective config.
    pub build: fn(&App) -> anyhow::Result<Box<dyn Step>>,
    /// Runs the step as `anchor <name>` with only the step flags would.
    pub run: fn(&App, &StepArgs) -> anyhow::Result<()>,
}

/// Every step this build has, in pipeline order.
pub const STEPS: &[StepEntry] = &[
    StepEntry {
        name: "scrape",
        build: scrape::build_from_config,
        run: scrape::run_configured,
    },
    StepEntry {
        name: "score",
        build: curate::build_score_from_config,
        run: curate::run_score_configured,
    },
    StepEntry {
        name: "curate",
        build: curate::build_curate_from_config,
        run: curate::run_curate_configured,
    },
    StepEntry {
        name: "split",
        build: split::build_split_from_config,
        run: split::run_split_configured,
    },
    StepEntry {
        name: "export",
        build: split::build_export_from_config,
        run: split::run_export_configured,
    },
    StepEntry {
        name: "card",
        build: split::build_card_from_config,
        run: split::run_card_configured,
    },
    StepEntry {
        name: "annotate",
        build: annotate::build_from_config,
        run: annotate::run_configured,
    },
    StepEntry {
        name: "train",
        build: train::build_from_config,
        run: train::run_configured,
    },
    StepEntry {
        name: "sample",
        build: sample::build_from_config,
        run: sample::run_configured,
    },
    StepEntry {
        name: "eval",
        build: eval::build_from_config,
        run: eval::run_configured,
    },
    StepEntry {
        name: "study",
        build: study::build_from_config,
        run: study::run_configured,
    },
];

/// Config sections of the steps, with their effective values.
pub fn effective_sections(app: &App) -> anyhow::Result<Vec<(&'static str, toml::Value)>> {
    Ok(vec![
        ("scrape", toml::Value::try_from(scrape::config(app, None)?)?),
        ("curate", toml::Value::try_from(curate::config(app, None)?)?),
        ("split", toml::Value::try_from(split::config(app, None)?)?),
        (
            "annotate",
            toml::Value::try_from(annotate::config(app, None)?)?,
        ),
        ("train", toml::Value::try_from(train::config(app, None)?)?),
        ("sample", toml::Value::try_from(sample::config(app, None)?)?),
        ("eval", toml::Value::try_from(eval::config(app, None)?)?),
        ("study", toml::Value::try_from(study::config(app, None)?)?),
    ])
}
