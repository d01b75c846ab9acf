//! Integration tests of the monitor (one test binary): a real engine run feeding it, the
//! Prometheus output through a parser, the HTTP endpoint, the history file, the report.

mod html;
mod run;

/// The report's escaping of text (for finding messages in it).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
