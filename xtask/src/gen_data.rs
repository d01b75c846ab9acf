//! `cargo xtask gen-data`: deterministic synthetic TAQ data (see `pipeline_io::GenConfig`).
//!
//! ```text
//! cargo xtask gen-data --symbols 5 --years 5 --rows 1000000 --layout per-day --compression gz --out DIR
//! cargo run --release -p xtask -- gen-data --rows 10000000 --out /tmp/x   # fast: release build
//! cargo xtask gen-data --rows 1000 --out - --manifest anomalies.jsonl | head
//! cargo xtask gen-data --rows 100000 --ts-format epoch-ms --symbol-skew 1 --column-order vendor --out DIR
//! ```
//!
//! Prints a one-line JSON summary (`rows`, `bytes`, `files`, `anomalies_by_kind`, plus
//! `seconds` and `rows_per_sec`) on stdout, or on stderr when the data itself goes to stdout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use pipeline_io::{
    AnomalyKind, AnomalyRates, Codec, ColumnOrder, GenConfig, Holidays, Layout, TimestampFormat,
    generate_to_dir, generate_to_writer,
};

/// Arguments of `gen-data`. Unset options take `GenConfig::default()`'s values.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory, or `-` for stdout (layout single only).
    #[arg(long)]
    out: PathBuf,
    /// Total rows, anomalies included.
    #[arg(long)]
    rows: Option<u64>,
    /// Number of symbols.
    #[arg(long)]
    symbols: Option<usize>,
    /// Years of trading days from the start date.
    #[arg(long)]
    years: Option<u32>,
    /// Keep only the first N trading days.
    #[arg(long)]
    days: Option<u32>,
    /// `taq-split`: quotes per trade on a normal symbol-day (default 3).
    #[arg(long)]
    quotes_per_trade: Option<f64>,
    /// First calendar day (YYYY-MM-DD).
    #[arg(long)]
    start_date: Option<String>,
    /// single, per-day, per-symbol-day or taq-split (a trades and a quotes file per day).
    #[arg(long)]
    layout: Option<Layout>,
    /// none, gz, bz2, xz or zst.
    #[arg(long)]
    compression: Option<Codec>,
    /// Compression level (codec default when unset: gz 6, bz2 6, xz 1, zst 3). For large gz
    /// sets, `--level 1` runs about 4 times faster for files 60% larger.
    #[arg(long)]
    level: Option<u32>,
    /// Market holidays: `nyse` (default, NYSE full-day closures by rule), `none`, or a
    /// comma-separated list of dates (YYYY-MM-DD,...).
    #[arg(long)]
    holidays: Option<String>,
    /// PRNG seed.
    #[arg(long)]
    seed: Option<u64>,
    /// How timestamps are written, all UTC: `iso` (default, 2019-01-02T12:53:17.784433219Z),
    /// `iso-micros` (2019-01-02T12:53:17.784433Z), `space-micros` (2019-01-02 12:53:17.784433,
    /// no zone), `epoch-ns` (1546433597784433219) or `epoch-ms` (1546433597784). Shorter forms
    /// truncate the nanoseconds.
    #[arg(long, value_name = "FORMAT")]
    ts_format: Option<TimestampFormat>,
    /// Zipf exponent S of the symbols' shares: symbol i (0-based) gets rows in proportion to
    /// 1/(i+1)^S. 0 is uniform, the default 0.5 is 1/sqrt(rank), 1 gives the first of 20
    /// symbols about 28% of the rows and the last about 1.4%. At most 10. The total stays
    /// --rows, and every symbol keeps a row on each day with at least one row per symbol.
    #[arg(long, value_name = "S")]
    symbol_skew: Option<f64>,
    /// Column order and header names: `canonical` (default:
    /// ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions) or `vendor`
    /// (symbol,date_time,price,volume,bid_price,ask_price,bid_size,ask_size,exchange,sale_condition,
    /// names tickpipe maps without a config). Not for layout taq-split.
    #[arg(long, value_name = "ORDER")]
    column_order: Option<ColumnOrder>,
    /// Rate of every anomaly kind, as a fraction of rows (default 0.001).
    #[arg(long)]
    anomaly_rate: Option<f64>,
    /// Where to write the manifest when `--out -` (default: not written).
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[arg(long, help = "Rate of duplicate rows")]
    rate_duplicate: Option<f64>,
    #[arg(long, help = "Rate of rows with an empty price, size, bid or ask")]
    rate_missing_field: Option<f64>,
    #[arg(long, help = "Rate of one-row price spikes")]
    rate_price_spike: Option<f64>,
    #[arg(long, help = "Rate of crossed quotes (bid > ask)")]
    rate_crossed_quote: Option<f64>,
    #[arg(long, help = "Rate of locked quotes (bid == ask)")]
    rate_locked_quote: Option<f64>,
    #[arg(long, help = "Rate of zero prices")]
    rate_zero_price: Option<f64>,
    #[arg(long, help = "Rate of negative prices")]
    rate_negative_price: Option<f64>,
    #[arg(long, help = "Rate of zero sizes")]
    rate_zero_size: Option<f64>,
    #[arg(long, help = "Rate of negative sizes")]
    rate_negative_size: Option<f64>,
    #[arg(long, help = "Rate of out-of-order timestamps")]
    rate_out_of_order: Option<f64>,
    #[arg(long, help = "Rate of rows outside session hours")]
    rate_outside_session: Option<f64>,
    #[arg(long, help = "Rate of lines with a missing or extra field")]
    rate_malformed_field_count: Option<f64>,
    #[arg(long, help = "Rate of non-numeric text in price or size")]
    rate_malformed_number: Option<f64>,
}

impl Args {
    /// The generator config these arguments describe.
    fn config(&self) -> anyhow::Result<GenConfig> {
        let d = GenConfig::default();
        let mut anomalies = self.anomaly_rate.map_or(d.anomalies, AnomalyRates::uniform);
        let per_kind = [
            (AnomalyKind::Duplicate, self.rate_duplicate),
            (AnomalyKind::MissingField, self.rate_missing_field),
            (AnomalyKind::PriceSpike, self.rate_price_spike),
            (AnomalyKind::CrossedQuote, self.rate_crossed_quote),
            (AnomalyKind::LockedQuote, self.rate_locked_quote),
            (AnomalyKind::ZeroPrice, self.rate_zero_price),
            (AnomalyKind::NegativePrice, self.rate_negative_price),
            (AnomalyKind::ZeroSize, self.rate_zero_size),
            (AnomalyKind::NegativeSize, self.rate_negative_size),
            (AnomalyKind::OutOfOrder, self.rate_out_of_order),
            (AnomalyKind::OutsideSession, self.rate_outside_session),
            (
                AnomalyKind::MalformedFieldCount,
                self.rate_malformed_field_count,
            ),
            (AnomalyKind::MalformedNumber, self.rate_malformed_number),
        ];
        for (kind, rate) in per_kind {
            if let Some(rate) = rate {
                anomalies.set(kind, rate);
            }
        }
        Ok(GenConfig {
            seed: self.seed.unwrap_or(d.seed),
            symbols: self.symbols.unwrap_or(d.symbols),
            years: self.years.unwrap_or(d.years),
            days: self.days.or(d.days),
            start_date: match &self.start_date {
                // The type is `chrono::NaiveDate`, inferred so xtask needs no chrono dependency.
                Some(s) => s.parse().with_context(|| format!("--start-date {s:?}"))?,
                None => d.start_date,
            },
            rows: self.rows.unwrap_or(d.rows),
            layout: self.layout.unwrap_or(d.layout),
            compression: self.compression.unwrap_or(d.compression),
            level: self.level.or(d.level),
            holidays: match self.holidays.as_deref() {
                None => d.holidays,
                Some(h) => parse_holidays(h)?,
            },
            anomalies,
            quotes_per_trade: self.quotes_per_trade.unwrap_or(d.quotes_per_trade),
            ts_format: self.ts_format.unwrap_or(d.ts_format),
            symbol_skew: self.symbol_skew.unwrap_or(d.symbol_skew),
            column_order: self.column_order.unwrap_or(d.column_order),
            ..d
        })
    }
}

/// `--holidays`: `nyse`, `none` or comma-separated dates.
fn parse_holidays(text: &str) -> anyhow::Result<Holidays> {
    match text.trim() {
        "nyse" => Ok(Holidays::Nyse),
        "none" | "" => Ok(Holidays::Custom(Vec::new())),
        list => list
            .split(',')
            .map(|d| {
                d.trim().parse().with_context(|| {
                    format!("--holidays: {d:?} is not a date (YYYY-MM-DD), `nyse` or `none`")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Holidays::Custom),
    }
}

/// Whether `e` is a write into a closed pipe.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Runs `gen-data`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let started = Instant::now();
    let to_stdout = args.out.as_os_str() == "-";
    let summary = if to_stdout {
        let stdout = std::io::stdout().lock();
        let summary = match &args.manifest {
            Some(path) => {
                let file =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                let mut manifest = BufWriter::new(file);
                let summary = generate_to_writer(&cfg, stdout, Some(&mut manifest));
                manifest.flush()?;
                summary
            }
            None => generate_to_writer(&cfg, stdout, None),
        };
        match summary {
            Ok(summary) => summary,
            // The reader went away (`| head`): that is how pipes end, not a failure.
            Err(e) if is_broken_pipe(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    } else {
        anyhow::ensure!(
            args.manifest.is_none(),
            "--manifest is only for --out -; a directory gets anomalies.jsonl"
        );
        generate_to_dir(&cfg, &args.out)?
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut json = serde_json::to_value(&summary)?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert(
            "seconds".into(),
            serde_json::json!((seconds * 1000.0).round() / 1000.0),
        );
        obj.insert(
            "rows_per_sec".into(),
            serde_json::json!((summary.rows as f64 / seconds.max(1e-9)).round()),
        );
    }
    let line = serde_json::to_string(&json)?;
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_map_onto_the_config() {
        let w = Wrap::parse_from([
            "x",
            "--out",
            "d",
            "--rows",
            "10",
            "--layout",
            "per-day",
            "--compression",
            "gz",
            "--anomaly-rate",
            "0.01",
            "--rate-out-of-order",
            "0.02",
        ]);
        let cfg = w.args.config().unwrap();
        assert_eq!(cfg.rows, 10);
        assert_eq!(cfg.layout, Layout::PerDay);
        assert_eq!(cfg.compression, Codec::Gzip);
        assert_eq!(cfg.anomalies.get(AnomalyKind::ZeroSize), 0.01);
        assert_eq!(cfg.anomalies.get(AnomalyKind::OutOfOrder), 0.02);
        assert_eq!(cfg.seed, 42);
    }

    #[test]
    fn variety_flags_map_onto_the_config() {
        let w = Wrap::parse_from([
            "x",
            "--out",
            "d",
            "--ts-format",
            "space-micros",
            "--symbol-skew",
            "1.5",
            "--column-order",
            "vendor",
        ]);
        let cfg = w.args.config().unwrap();
        assert_eq!(cfg.ts_format, TimestampFormat::SpaceMicros);
        assert_eq!(cfg.symbol_skew, 1.5);
        assert_eq!(cfg.column_order, ColumnOrder::Vendor);
        let bad = Wrap::try_parse_from(["x", "--out", "d", "--ts-format", "unix"]).unwrap_err();
        assert!(
            bad.to_string().contains("unknown timestamp format"),
            "{bad}"
        );
        let bad = Wrap::try_parse_from(["x", "--out", "d", "--column-order", "x"]).unwrap_err();
        assert!(bad.to_string().contains("canonical or vendor"), "{bad}");
    }

    /// The command in data/README.md makes the config that pipeline-io's
    /// `checked_in_sample_matches_the_generator` test regenerates and compares.
    #[test]
    fn readme_command_is_the_tested_sample_config() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("data/README.md")).unwrap();
        let line = readme
            .lines()
            .find(|l| l.starts_with("cargo xtask gen-data "))
            .unwrap();
        let argv = std::iter::once("x").chain(line.split_whitespace().skip(3));
        let args = Wrap::parse_from(argv).args;
        assert_eq!(args.out, PathBuf::from("data/sample"));
        let expected = GenConfig {
            seed: 20_190_102,
            symbols: 5,
            days: Some(10),
            rows: 50_000,
            layout: Layout::PerDay,
            compression: Codec::Gzip,
            ..GenConfig::default()
        };
        assert_eq!(args.config().unwrap(), expected);
    }

    #[test]
    fn holidays_flag_takes_a_rule_none_or_dates() {
        let parse = |h: &str| {
            Wrap::parse_from(["x", "--out", "d", "--holidays", h])
                .args
                .config()
        };
        assert_eq!(parse("nyse").unwrap().holidays, Holidays::Nyse);
        assert_eq!(
            parse("none").unwrap().holidays,
            Holidays::Custom(Vec::new())
        );
        let Holidays::Custom(days) = parse("2024-12-24, 2025-01-02").unwrap().holidays else {
            panic!("a date list must give Custom");
        };
        let text: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        assert_eq!(text, ["2024-12-24", "2025-01-02"]);
        let err = parse("2024-13-01").unwrap_err();
        assert!(
            format!("{err:#}").contains("\"2024-13-01\" is not a date"),
            "{err:#}"
        );
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        let w = Wrap::parse_from(["x", "--out", "d"]);
        assert_eq!(w.args.config().unwrap(), GenConfig::default());
    }
}
