//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes, documented in `--help` and the README.
pub const EXIT_HELP: &str = "\
Exit codes:
  0    success
  1    the run finished but some input files failed (listed in the summary)
  2    usage or input error: bad arguments, no input, unreadable config, a bad row in --strict
       mode, an output folder that holds another run (see --overwrite and --resume)
  3    internal error (a bug: please report it)
  4    environment error: disk full, permission denied, output folder in use by another run
  130  interrupted (Ctrl-C); completed segments are kept, run again with --resume";

/// tickpipe: tick CSV to clean, feature-rich Parquet, fast, at constant memory.
#[derive(Debug, Parser)]
#[command(name = "tickpipe", version, about, after_help = EXIT_HELP)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load, clean, compute features and write partitioned Parquet, with quarantine.
    Run(RunArgs),
    /// Show format, compression, encoding, delimiter, schema, rows, time span and symbols;
    /// for a run's output folder its state and history, for a cluster job folder its tasks.
    Inspect(InspectArgs),
    /// Load and write only (e.g. CSV to Parquet at full speed).
    Convert(ConvertArgs),
    /// Aggregate ticks into time, tick, volume or dollar bars.
    Bars(BarsArgs),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate a sample multi-year dataset, run the full pipeline on it, print the summary.
    Demo(DemoArgs),
    /// Check inputs against data-quality rules; exit 0 when the verdict passes, 1 when not.
    Validate(ValidateArgs),
    /// The cache: stats, clear, prune.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Plan a cluster job: fingerprint the inputs and write the plan into --out.
    Plan(PlanArgs),
    /// Run map task --task of a planned job (read, parse, shuffle by symbol).
    Map(TaskArgs),
    /// Run reduce task --task of a planned job (stages per symbol, publish into the job folder).
    Reduce(TaskArgs),
}

/// `tickpipe plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Inputs and configuration, as for `run`.
    #[command(flatten)]
    pub input: InputArgs,
    /// The job folder: the plan, the shuffle and the final dataset go there.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of map tasks (groups of input files).
    #[arg(long, default_value_t = 1)]
    pub map_tasks: usize,
    /// Number of reduce tasks (groups of symbols).
    #[arg(long, default_value_t = 1)]
    pub reduce_tasks: usize,
    /// How map tasks compress the rows they shuffle: none is fastest where the shared
    /// filesystem keeps up; lz4 (about half the bytes) or zstd (about a third) where it
    /// is slow or short of space.
    #[arg(long, default_value = "none", value_parser = ["none", "lz4", "zstd"])]
    pub shuffle_compression: String,
}

/// `tickpipe map` and `tickpipe reduce`.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// The job folder written by `tickpipe plan`.
    #[arg(long)]
    pub plan: PathBuf,
    /// The task index, from 0.
    #[arg(long)]
    pub task: usize,
}

/// Options shared by every command that reads inputs.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// Input files, directories, glob patterns, or `-` for stdin.
    pub inputs: Vec<String>,
    /// Configuration file (TOML; see `tickpipe config init`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Preset the config file builds on.
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Zone of naive timestamps, e.g. America/New_York.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Date of time-of-day-only files (YYYY-MM-DD).
    #[arg(long)]
    pub date: Option<String>,
    /// Explicit column mapping, e.g. `ts=Time,price=Px,size=Qty`.
    #[arg(long)]
    pub columns: Option<String>,
    /// Vendor layout: auto, generic, lobster, histdata, lean.
    #[arg(long)]
    pub layout: Option<String>,
    /// Symbol of files without a symbol column.
    #[arg(long)]
    pub symbol: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Memory budget, e.g. 512MB.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Rows per chunk (default: derived from the memory limit).
    #[arg(long)]
    pub chunk_size: Option<usize>,
    /// Stop at the first malformed row instead of quarantining it.
    #[arg(long)]
    pub strict: bool,
    /// Sort each input file by time before processing, spilling to disk beyond the
    /// memory budget: for files not in time order (`[input] sort`; run, convert, bars).
    #[arg(long)]
    pub sort: bool,
}

/// Configuration presets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Profile {
    /// All cores, 8 GiB budget.
    Production,
    /// Two workers, small chunks, 512 MiB budget.
    Development,
}

/// Output formats on the command line.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    /// Apache Parquet (zstd).
    Parquet,
    /// Arrow IPC file.
    Ipc,
    /// CSV.
    Csv,
}

/// `tickpipe run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Inputs and reading options.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Trades files (files, folders, globs) to match against --quotes; replaces INPUTS.
    #[arg(long, num_args = 1.., requires = "quotes")]
    pub trades: Vec<String>,
    /// Quotes files: each trade gets the NBBO prevailing before it, its sign and spreads
    /// (see [taq] in the config); per-symbol-day measures go to OUT/taq_daily.parquet.
    #[arg(long, num_args = 1..)]
    pub quotes: Vec<String>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Hive partition keys, comma-separated: symbol, date, month.
    #[arg(long)]
    pub partition_by: Option<String>,
    /// Continue an interrupted run in the same --out directory (its settings are taken
    /// from the folder's run record; only the inputs need repeating).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace what a previous run left in --out. Without it, a folder holding a finished run
    /// takes new inputs after the recorded ones (an append), a changed input in the middle of
    /// its history, changed feature parameters, changed settings of the quality report
    /// (thresholds, verdict, history checks), or other changed `[preprocessing]` and
    /// `[validation]` settings (it makes the dataset again), and refuses anything else.
    #[arg(long)]
    pub overwrite: bool,
    /// Removed: shards dealt whole files, so a symbol's state restarted at shard borders.
    /// Refused with a pointer to `tickpipe plan`/`map`/`reduce`.
    #[arg(long, hide = true)]
    pub shard: Option<String>,
    /// Follow a growing file (tail -f) and emit results as rows arrive; stop with Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Flush interval of --follow and stdin input, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub flush_ms: u64,
    /// Run without the cache (sniffed file metadata in OUT/_cache).
    #[arg(long)]
    pub no_cache: bool,
    /// Run without the performance monitor (no report.html, metrics.prom, metrics.jsonl).
    #[arg(long)]
    pub no_monitor: bool,
    /// Run without inline validation (no quality.json, quality.html, quality history).
    #[arg(long)]
    pub no_validate: bool,
    /// Serve Prometheus metrics at this address during the run: PORT (loopback) or
    /// HOST:PORT.
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Write the run summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Skip cleaning stages.
    #[arg(long)]
    pub no_clean: bool,
    /// Skip feature stages.
    #[arg(long)]
    pub no_features: bool,
    /// Run every stage but discard the output (benchmarking).
    #[arg(long, hide = true)]
    pub discard: bool,
    /// Commit a resumable checkpoint at the first file boundary after this much input
    /// (e.g. 1GiB).
    #[arg(long)]
    pub checkpoint_every: Option<String>,
    /// Test hook: abort the process (like `kill -9`) right after segment N is committed.
    #[arg(long, hide = true)]
    pub abort_after_segment: Option<u32>,
    /// Test hook: abort the process at a point of the commit protocol: `quarantine:N` (first
    /// quarantine rows of segment N written), `before-commit:N` (segment N's files in place,
    /// manifest not yet committed), `commit:N`, `normalize:N` (N files rescaled).
    #[arg(long, hide = true)]
    pub abort_at: Option<String>,
}

/// `tickpipe inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Inputs and reading options.
    #[command(flatten)]
    pub input: InputArgs,
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tickpipe convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Inputs and reading options.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output file (format from the extension or --format) or directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Hive partition keys when --out is a directory.
    #[arg(long)]
    pub partition_by: Option<String>,
    /// Replace an existing output file, or what a previous run left in the folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Write the summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

/// `tickpipe bars`.
#[derive(Debug, Args)]
pub struct BarsArgs {
    /// Inputs and reading options.
    #[command(flatten)]
    pub input: InputArgs,
    /// Bar kind: time:1m, time:5s, tick:1000, volume:10000, dollar:1e6.
    #[arg(long)]
    pub kind: String,
    /// Time bars on the exchange's session, local `HH:MM-HH:MM` (e.g. 09:30-16:00): bins
    /// start at the open in --zone every trading day of --calendar, across DST changes.
    #[arg(long)]
    pub session: Option<String>,
    /// Zone of --session (default: [preprocessing] session_timezone).
    #[arg(long, requires = "session")]
    pub zone: Option<String>,
    /// Trading days of --session: nyse (holidays and 13:00 early closes), weekdays, none.
    #[arg(long, default_value = "nyse", requires = "session")]
    pub calendar: String,
    /// Close on early-close days, local HH:MM.
    #[arg(long, default_value = "13:00", requires = "session")]
    pub early_close: String,
    /// Extra closed dates, comma-separated YYYY-MM-DD.
    #[arg(long, value_delimiter = ',', requires = "session")]
    pub holidays: Vec<String>,
    /// Empty bins inside a session: skip, carry (previous close, volume 0) or null.
    #[arg(long, default_value = "skip", requires = "session")]
    pub empty: String,
    /// Which bin edge stamps a bar: left or right.
    #[arg(long, default_value = "left", requires = "session")]
    pub label: String,
    /// Which bin edge a bin includes: left ([start, end)) or right ((start, end]).
    #[arg(long, default_value = "left", requires = "session")]
    pub closed: String,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Replace what a previous run left in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Write the summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

/// `tickpipe validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Inputs and reading options.
    #[command(flatten)]
    pub input: InputArgs,
    /// A rules file (TOML; see --suggest) instead of `[validation] rules_file`.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Write the report here: `.html` (for people) or `.json` (for scripts).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Keep the per-symbol-day metrics history in this folder and check against it.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Write the rows failing error rules, with file, line and rule, to this Parquet file.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Profile a sample of the inputs and write a suggested rules file here (then exit).
    #[arg(long)]
    pub suggest: Option<PathBuf>,
    /// Rows profiled by --suggest.
    #[arg(long, default_value_t = 1_000_000)]
    pub suggest_rows: u64,
    /// Write the summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

/// `tickpipe cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Hit rates, sizes and entries per tier, and lifetime counters.
    Stats(CacheArgs),
    /// Remove every entry.
    Clear(CacheArgs),
    /// Evict down to a size, and entries unused for a while.
    Prune {
        /// Which cache.
        #[command(flatten)]
        cache: CacheArgs,
        /// Keep at most this much, e.g. 500MB.
        #[arg(long)]
        max_size: Option<String>,
        /// Remove entries unused for this many days.
        #[arg(long)]
        unused_for_days: Option<u64>,
    },
}

/// Which cache a `tickpipe cache` command works on.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// A run's output folder (its cache is OUT/_cache) or a cache folder.
    pub dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tickpipe config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write an annotated default configuration.
    Init {
        /// Where to write it (`-` for stdout).
        #[arg(long, default_value = "tickpipe.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file and print it with defaults filled in.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// `tickpipe demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the sample data and outputs.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Rows to generate.
    #[arg(long, default_value_t = 500_000)]
    pub rows: u64,
    /// Years of trading days.
    #[arg(long, default_value_t = 5)]
    pub years: u32,
    /// Symbols.
    #[arg(long, default_value_t = 5)]
    pub symbols: usize,
}
