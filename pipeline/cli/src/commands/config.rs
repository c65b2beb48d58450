//! `anchor config`: print the effective configuration.

use crate::app::App;

/// Arguments of `anchor config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {}

/// Prints the effective config as TOML, with where it came from.
pub fn run(_args: &ConfigArgs, app: &App) -> anyhow::Result<()> {
    let source = app.doc.source().map_or_else(
        || "built-in defaults (no config file)".to_owned(),
        |p| p.display().to_string(),
    );
    println!("# config: {source}");
    println!(
        "# scale: {}",
        app.doc.scale().unwrap_or(crate::app::DEFAULT_SCALE)
    );
    print!("{}", toml::to_string_pretty(&app.effective_config()?)?);
    Ok(())
}
