//! Builds the run's [`Config`] from a preset, an optional config file and command-line flags
//! (flags win).

use anyhow::Context;
use pipeline_core::{ByteSize, Config, Error, OutputFormat};

use crate::args::{FormatArg, InputArgs, Profile};

/// The inputs, or a usage error naming the command when there are none (only `run`
/// takes its inputs from `--trades` instead).
pub fn require_inputs(args: &InputArgs, command: &str) -> anyhow::Result<()> {
    if args.inputs.is_empty() {
        return Err(pipeline_core::Error::Usage(format!(
            "tickpipe {command}: no input given (files, folders, globs or -)"
        ))
        .into());
    }
    Ok(())
}

/// Loads the config: preset, then the file on top, then flags on top; validated.
pub fn load_config(args: &InputArgs) -> anyhow::Result<Config> {
    let base = match args.profile {
        Some(Profile::Production) => Config::production(),
        Some(Profile::Development) => Config::development(),
        None => Config::default(),
    };
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(path, e))
                .with_context(
                    || "cannot read the config file (create one with `tickpipe config init`)",
                )?;
            Config::from_toml_str_over(&text, base)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => base,
    };
    if let Some(tz) = &args.timezone {
        cfg.input.timezone = tz.clone();
    }
    if let Some(d) = &args.date {
        cfg.input.date = Some(d.clone());
    }
    if let Some(spec) = &args.columns {
        // Validate the spec now so a typo is reported before any file is opened.
        pipeline_core::ColumnMapping::parse_cli(spec)?;
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            if let Some((k, v)) = part.split_once('=') {
                cfg.input
                    .columns
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    if let Some(l) = &args.layout {
        cfg.input.layout = l.clone();
    }
    if let Some(s) = &args.symbol {
        cfg.input.symbol = Some(s.clone());
    }
    if let Some(w) = args.workers {
        if w == 0 {
            return Err(Error::Usage("--workers must be at least 1".into()).into());
        }
        cfg.pipeline.max_workers = w;
    }
    if let Some(m) = &args.memory_limit {
        cfg.pipeline.memory_limit = m
            .parse::<ByteSize>()
            .with_context(|| "--memory-limit".to_string())?;
    }
    if let Some(c) = args.chunk_size {
        cfg.pipeline.chunk_size = c;
    }
    if args.strict {
        cfg.pipeline.strict = true;
    }
    if args.sort {
        cfg.input.sort = true;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Applies `--format` and `--partition-by`.
pub fn apply_output_flags(
    cfg: &mut Config,
    format: Option<FormatArg>,
    partition_by: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(f) = format {
        cfg.output.format = match f {
            FormatArg::Parquet => OutputFormat::Parquet,
            FormatArg::Ipc => OutputFormat::Ipc,
            FormatArg::Csv => OutputFormat::Csv,
        };
    }
    if let Some(p) = partition_by {
        cfg.output.partition_by = p
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s != "none")
            .collect();
    }
    cfg.validate()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_config() {
        let args = InputArgs {
            inputs: vec!["x".into()],
            workers: Some(3),
            memory_limit: Some("1GiB".into()),
            timezone: Some("America/New_York".into()),
            columns: Some("ts=Time,price=Px".into()),
            strict: true,
            sort: true,
            ..Default::default()
        };
        let cfg = load_config(&args).unwrap();
        assert_eq!(cfg.pipeline.max_workers, 3);
        assert_eq!(cfg.pipeline.memory_limit, ByteSize::gib(1));
        assert_eq!(cfg.input.timezone, "America/New_York");
        assert_eq!(cfg.input.columns["price"], "Px");
        assert!(cfg.pipeline.strict);
        assert!(cfg.input.sort);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let args = InputArgs {
            memory_limit: Some("lots".into()),
            ..Default::default()
        };
        assert!(load_config(&args).is_err());
        let args = InputArgs {
            columns: Some("prize=Px".into()),
            ..Default::default()
        };
        assert!(format!("{:#}", load_config(&args).unwrap_err()).contains("prize"));
    }
}
