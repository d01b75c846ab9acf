//! The tick data model: canonical column names, their Arrow types, and dataset kinds.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};

/// The Arrow type of `ts`: nanoseconds since the Unix epoch, in UTC.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The Arrow type of `symbol` and other low-cardinality strings: dictionary-encoded UTF-8.
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A column of the canonical tick schema.
///
/// ```
/// use pipeline_core::Canonical;
/// assert_eq!(Canonical::BidSize.name(), "bid_size");
/// assert_eq!(Canonical::from_name("ask"), Some(Canonical::Ask));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Canonical {
    /// Event time, `Timestamp(ns, "UTC")`.
    Ts,
    /// Instrument, dictionary-encoded.
    Symbol,
    /// Trade price.
    Price,
    /// Trade size (Float64: crypto sizes are fractional).
    Size,
    /// Best bid price.
    Bid,
    /// Best ask (offer) price.
    Ask,
    /// Size at the best bid.
    BidSize,
    /// Size at the best ask.
    AskSize,
    /// Exchange / venue code, dictionary-encoded.
    Exchange,
    /// Sale-condition codes, as text.
    Conditions,
    /// Bar open.
    Open,
    /// Bar high.
    High,
    /// Bar low.
    Low,
    /// Bar close.
    Close,
    /// Bar volume.
    Volume,
    /// Order-book message type (e.g. LOBSTER's 1 = add … 5 = hidden execution).
    EventType,
    /// Order reference number.
    OrderId,
    /// Aggressor side of a trade: +1 buyer-initiated, -1 seller-initiated, null when not
    /// known or not a trade. Vendors' conventions are mapped on the way in: Tardis' `side` is
    /// the taker's side (kept), LOBSTER's `direction` is the side of the resting order that
    /// was hit (inverted for executions; kept as its own `direction` column). A generic
    /// `side` column is taken to be the aggressor's.
    Side,
    /// Identity of the record at its venue (trade id, sequence number): two rows with the
    /// same symbol, timestamp and id are the same event. Int64, or Utf8 when the ids are not
    /// integers.
    Id,
}

impl Canonical {
    /// Every canonical column, in schema order.
    pub const ALL: [Canonical; 19] = [
        Canonical::Ts,
        Canonical::Symbol,
        Canonical::Price,
        Canonical::Size,
        Canonical::Bid,
        Canonical::Ask,
        Canonical::BidSize,
        Canonical::AskSize,
        Canonical::Exchange,
        Canonical::Conditions,
        Canonical::Open,
        Canonical::High,
        Canonical::Low,
        Canonical::Close,
        Canonical::Volume,
        Canonical::EventType,
        Canonical::OrderId,
        Canonical::Side,
        Canonical::Id,
    ];

    /// The column name in tickpipe's output.
    pub fn name(self) -> &'static str {
        match self {
            Canonical::Ts => "ts",
            Canonical::Symbol => "symbol",
            Canonical::Price => "price",
            Canonical::Size => "size",
            Canonical::Bid => "bid",
            Canonical::Ask => "ask",
            Canonical::BidSize => "bid_size",
            Canonical::AskSize => "ask_size",
            Canonical::Exchange => "exchange",
            Canonical::Conditions => "conditions",
            Canonical::Open => "open",
            Canonical::High => "high",
            Canonical::Low => "low",
            Canonical::Close => "close",
            Canonical::Volume => "volume",
            Canonical::EventType => "event_type",
            Canonical::OrderId => "order_id",
            Canonical::Side => "side",
            Canonical::Id => "id",
        }
    }

    /// Looks a canonical column up by its exact output name.
    pub fn from_name(name: &str) -> Option<Canonical> {
        Canonical::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The Arrow type this column has after ingest.
    pub fn data_type(self) -> DataType {
        match self {
            Canonical::Ts => ts_type(),
            Canonical::Symbol | Canonical::Exchange => dict_type(),
            Canonical::Conditions => DataType::Utf8,
            Canonical::EventType | Canonical::Side => DataType::Int8,
            Canonical::OrderId | Canonical::Id => DataType::Int64,
            _ => DataType::Float64,
        }
    }

    /// The Arrow field (nullable: missing values are nulls until a cleaning rule decides).
    pub fn field(self) -> Field {
        Field::new(self.name(), self.data_type(), true)
    }

    /// Header names recognised for this column, normalised (lower case, no `_`, ` `, `-`, `.`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Canonical::Ts => &[
                "ts",
                "timestamp",
                "datetime",
                "time",
                "timestamputc",
                "tsevent",
                "eventtime",
                "transacttime",
                "exchangetime",
                "timem",
                "dt",
                "date",
                "epoch",
                "epochtime",
                "unixtime",
                "unixtimestamp",
                "epochms",
                "epochus",
                "epochns",
            ],
            Canonical::Symbol => &[
                "symbol",
                "sym",
                "ticker",
                "instrument",
                "symroot",
                "ric",
                "pair",
                "security",
                "asset",
                "code",
            ],
            Canonical::Price => &[
                "price",
                "px",
                "last",
                "tradeprice",
                "lastprice",
                "tradepx",
                "lastpx",
            ],
            Canonical::Size => &[
                "size",
                "qty",
                "quantity",
                "volume",
                "amount",
                "tradesize",
                "tradeqty",
                "lastsize",
                "lastqty",
                "shares",
                "vol",
            ],
            Canonical::Bid => &[
                "bid",
                "bidprice",
                "bidpx",
                "bestbid",
                "bidp",
                "bid1",
                "bidprice1",
            ],
            Canonical::Ask => &[
                "ask",
                "askprice",
                "offer",
                "askpx",
                "offerprice",
                "offerpx",
                "bestask",
                "bestoffer",
                "askp",
                "ask1",
                "askprice1",
            ],
            Canonical::BidSize => &[
                "bidsize",
                "bidqty",
                "bidsz",
                "bidvolume",
                "bidvol",
                "bidsiz",
                "bidsize1",
            ],
            Canonical::AskSize => &[
                "asksize",
                "askqty",
                "asksz",
                "offersize",
                "offerqty",
                "askvolume",
                "askvol",
                "asksiz",
                "asksize1",
            ],
            Canonical::Exchange => &["exchange", "ex", "exch", "venue", "market", "mic"],
            Canonical::Conditions => &[
                "conditions",
                "condition",
                "cond",
                "saleconditions",
                "salecondition",
                "trscond",
                "flags",
            ],
            Canonical::Open => &["open", "o", "openprice"],
            Canonical::High => &["high", "h", "highprice"],
            Canonical::Low => &["low", "l", "lowprice"],
            Canonical::Close => &["close", "c", "closeprice"],
            Canonical::Volume => &["volume", "v", "vol"],
            Canonical::EventType => &["eventtype", "type", "msgtype", "messagetype", "action"],
            Canonical::OrderId => &["orderid", "orderref", "oid", "orderreference"],
            Canonical::Side => &["side", "direction", "aggressor", "takerside", "buysell"],
            Canonical::Id => &[
                "id",
                "tradeid",
                "tid",
                "seq",
                "seqno",
                "seqnum",
                "sequence",
                "sequenceno",
                "sequencenumber",
                "msgseqnum",
                "eventid",
                "updateid",
            ],
        }
    }
}

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of records a dataset holds, decided from the columns present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Trades only: `price`, `size`.
    Trades,
    /// Quotes only: `bid`, `ask` (and sizes).
    Quotes,
    /// Trades with the prevailing quote on each row.
    Taq,
    /// OHLCV bars.
    Bars,
    /// Order-book messages (event type, order id, side, price, size).
    OrderBook,
}

impl DatasetKind {
    /// Classifies a set of canonical columns.
    ///
    /// ```
    /// use pipeline_core::{Canonical, DatasetKind};
    /// let cols = [Canonical::Ts, Canonical::Bid, Canonical::Ask];
    /// assert_eq!(DatasetKind::detect(&cols), Some(DatasetKind::Quotes));
    /// ```
    pub fn detect(columns: &[Canonical]) -> Option<DatasetKind> {
        let has = |c| columns.contains(&c);
        if has(Canonical::Open) && has(Canonical::Close) {
            Some(DatasetKind::Bars)
        } else if has(Canonical::EventType) && has(Canonical::Price) {
            Some(DatasetKind::OrderBook)
        } else if has(Canonical::Price) && has(Canonical::Bid) && has(Canonical::Ask) {
            Some(DatasetKind::Taq)
        } else if has(Canonical::Price) {
            Some(DatasetKind::Trades)
        } else if has(Canonical::Bid) && has(Canonical::Ask) {
            Some(DatasetKind::Quotes)
        } else {
            None
        }
    }

    /// The canonical columns this kind has, in order.
    pub fn columns(self) -> &'static [Canonical] {
        use Canonical::*;
        match self {
            DatasetKind::Trades => &[Ts, Symbol, Price, Size, Exchange, Conditions],
            DatasetKind::Quotes => &[Ts, Symbol, Bid, Ask, BidSize, AskSize, Exchange],
            DatasetKind::Taq => &[
                Ts, Symbol, Price, Size, Bid, Ask, BidSize, AskSize, Exchange, Conditions,
            ],
            DatasetKind::Bars => &[Ts, Symbol, Open, High, Low, Close, Volume],
            DatasetKind::OrderBook => &[Ts, Symbol, EventType, OrderId, Size, Price, Side],
        }
    }

    /// The canonical Arrow schema of this kind (without the provenance column).
    pub fn schema(self) -> Arc<Schema> {
        Arc::new(Schema::new(
            self.columns().iter().map(|c| c.field()).collect::<Vec<_>>(),
        ))
    }
}

/// Order-book message types (LOBSTER's, from NASDAQ TotalView-ITCH) that are executions: 4
/// (execution of a visible order), 5 (execution of a hidden order) and 6 (a cross trade, e.g.
/// the opening or closing auction). The others change the book without a trade: 1 (new
/// limit order), 2 (partial cancellation), 3 (deletion) and 7 (trading halt indicator).
pub const EXECUTION_EVENT_TYPES: [i8; 3] = [4, 5, 6];

/// True when order-book message type `event_type` is an execution (see
/// [`EXECUTION_EVENT_TYPES`]).
///
/// ```
/// assert!(pipeline_core::is_execution_event(5));
/// assert!(!pipeline_core::is_execution_event(1));
/// ```
pub fn is_execution_event(event_type: i8) -> bool {
    EXECUTION_EVENT_TYPES.contains(&event_type)
}

/// LOBSTER's trading-halt message type: its price field is a flag (-1 halt, 0 quote, 1
/// resume) and its size is 0, so price and size rules do not apply to it.
pub const HALT_EVENT_TYPE: i8 = 7;

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Trades => "trades",
            DatasetKind::Quotes => "quotes",
            DatasetKind::Taq => "taq",
            DatasetKind::Bars => "bars",
            DatasetKind::OrderBook => "order_book",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Canonical::ALL {
            assert_eq!(Canonical::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn kinds_are_detected() {
        use Canonical::*;
        assert_eq!(
            DatasetKind::detect(&[Ts, Price, Size, Bid, Ask]),
            Some(DatasetKind::Taq)
        );
        assert_eq!(DatasetKind::detect(&[Ts, Price]), Some(DatasetKind::Trades));
        assert_eq!(
            DatasetKind::detect(&[Ts, Open, High, Low, Close]),
            Some(DatasetKind::Bars)
        );
        assert_eq!(
            DatasetKind::detect(&[Ts, EventType, Price, Size]),
            Some(DatasetKind::OrderBook)
        );
        assert_eq!(DatasetKind::detect(&[Ts]), None);
    }

    #[test]
    fn taq_schema_has_utc_nanosecond_ts_and_dictionary_symbol() {
        let s = DatasetKind::Taq.schema();
        assert_eq!(s.field(0).data_type(), &ts_type());
        assert_eq!(s.field(1).data_type(), &dict_type());
        assert_eq!(s.fields().len(), 10);
    }
}
