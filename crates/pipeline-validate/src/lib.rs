//! Validation for tickpipe (planned): declarative rules over chunks, quarantine of failing
//! rows with the rule name and source line, and JSON/HTML reports.
//!
//! This crate holds no code yet. It will plug into the engine as ordinary `Stage`s that call
//! `Emitter::quarantine` (so every failing row keeps its `file:line`), and read thresholds
//! from `pipeline_core::ValidationConfig`.
