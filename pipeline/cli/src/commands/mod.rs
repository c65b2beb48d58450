//! One module per subcommand.

pub mod config;
pub mod repair;
pub mod run;
pub mod status;

use anchor_core::step::Step;

use crate::app::App;

/// Every step the binary has, in pipeline order, built from the config.
pub fn steps(_app: &App) -> anyhow::Result<Vec<Box<dyn Step>>> {
    Ok(Vec::new())
}
