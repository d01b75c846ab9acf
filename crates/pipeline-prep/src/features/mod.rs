//! Features (placeholder doc replaced below).

mod talib;
mod window;

pub use talib::{
    Adx, Atr, Bbands, Cci, Dema, Ema, Indicator, IndicatorSpec, Macd, Mom, Obv, Ohlcv, Roc, Rsi,
    Sma, Stoch, Tema, Willr, Wma,
};
pub use window::{Extreme, MonoDeque};
