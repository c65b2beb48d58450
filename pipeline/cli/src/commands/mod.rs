//! One module per subcommand, and the registry of pipeline steps.

pub mod config;
pub mod fid;
pub mod repair;
pub mod run;
pub mod scrape;
pub mod status;

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
pub const STEPS: &[StepEntry] = &[StepEntry {
    name: "scrape",
    build: scrape::build_from_config,
    run: scrape::run_configured,
}];

/// Config sections of the steps, with their effective values.
pub fn effective_sections(app: &App) -> anyhow::Result<Vec<(&'static str, toml::Value)>> {
    Ok(vec![(
        "scrape",
        toml::Value::try_from(scrape::config(app, None)?)?,
    )])
}
