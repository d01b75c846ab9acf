//! Monitoring for tickpipe (planned): resource sampling (CPU, RSS, I/O), per-stage metrics,
//! alerts, and JSON/Prometheus export.
//!
//! This crate holds no code yet. The engine already records `pipeline_core::StageMetrics`
//! (rows and bytes in/out, busy time) per stage; this crate will sample them during a run.
