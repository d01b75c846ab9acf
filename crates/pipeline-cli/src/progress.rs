//! Progress reporting: an indicatif bar when stderr is a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A snapshot the engine reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tick {
    /// Rows read so far.
    pub rows: u64,
    /// Input bytes read so far.
    pub bytes: u64,
    /// Total input bytes, if known.
    pub bytes_total: Option<u64>,
}

/// Shows progress of a long run.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_log: Mutex<Instant>,
    start: Instant,
}

/// Interval of the plain log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A bar on a terminal (unless `quiet`), log lines otherwise.
    pub fn new(total_bytes: Option<u64>, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last_log: Mutex::new(Instant::now()),
            start: Instant::now(),
        }
    }

    /// Updates the display.
    pub fn update(&self, t: Tick) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = t.rows as f64 / secs;
        if let Some(bar) = &self.bar {
            if let Some(total) = t.bytes_total {
                bar.set_length(total);
            }
            bar.set_position(t.bytes);
            bar.set_message(format!("{} rows, {:.2} M rows/s", t.rows, rate / 1e6));
        } else if let Ok(mut last) = self.last_log.lock()
            && last.elapsed() >= LOG_EVERY
        {
            *last = Instant::now();
            let pct = t
                .bytes_total
                .filter(|&b| b > 0)
                .map(|b| format!(" ({:.0}%)", 100.0 * t.bytes as f64 / b as f64))
                .unwrap_or_default();
            tracing::info!(
                "progress: {} rows, {} MB{pct}, {:.2} M rows/s",
                t.rows,
                t.bytes / 1_000_000,
                rate / 1e6
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
