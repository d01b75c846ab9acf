//! Trades and quotes as separate inputs: the NBBO, the streaming as-of join, trade signs and
//! the liquidity measures built on them.
//!
//! * [`nbbo`]: each exchange's latest quote per symbol → the NBBO (Holden & Jacobsen 2014
//!   for withdrawn, locked and crossed quotes);
//! * [`sign`]: tick rule, Lee–Ready, EMO and CLNV trade signs;
//! * [`measures`]: quoted, effective and realized spreads, price impact, and the
//!   per-symbol-day measures (VWAP, order imbalance, dollar-volume-weighted spreads);
//! * [`join`]: [`TaqJoin`], the [`pipeline_core::Source`] that merges a trades stream and a
//!   quotes stream and yields the trades with their quote and measure columns.

pub mod join;
pub mod measures;
pub mod nbbo;
pub mod sign;

#[cfg(test)]
mod tests;

pub use join::{DailyWriter, OpenSource, StreamOrder, TaqJoin, TaqOptions, TaqSegment, TaqStats};
pub use measures::{
    DayMeasures, TradeMeasures, Weighted, effective_spread, price_impact, realized_spread,
};
pub use nbbo::{Nbbo, NbboBook, NbboState, QuoteOutcome};
pub use sign::{TickRule, sign_clnv, sign_emo, sign_lee_ready};
