//! `tickpipe config init|check`.

use pipeline_core::{Config, Error};

use crate::Outcome;
use crate::args::ConfigCommand;
use crate::config_template::TEMPLATE;

/// Runs the command.
pub fn run(cmd: ConfigCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ConfigCommand::Init { out, force } => {
            if out.as_os_str() == "-" {
                print!("{TEMPLATE}");
                return Ok(Outcome::Ok);
            }
            if out.exists() && !force {
                return Err(Error::Usage(format!(
                    "{} exists; use --force to overwrite it",
                    out.display()
                ))
                .into());
            }
            std::fs::write(&out, TEMPLATE).map_err(|e| Error::io(&out, e))?;
            eprintln!("wrote {}", out.display());
            Ok(Outcome::Ok)
        }
        ConfigCommand::Check { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            let cfg = Config::from_toml_str(&text)?;
            // Build what a run would build from it, so specs that only the stages and the
            // readers and writers parse (indicator names, rolling specs, time zones, codecs)
            // fail here too, not only at `tickpipe run`.
            tickpipe::check_config(&cfg)?;
            print!("{}", cfg.to_toml_string()?);
            Ok(Outcome::Ok)
        }
    }
}
