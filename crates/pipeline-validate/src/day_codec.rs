//! [`SymbolDay`]'s encodings: its JSON form, read and written without serde's generic
//! machinery, and the binary form the validation stage keeps its closed days in.
//!
//! Every symbol-day is encoded once when it closes, decoded when the stage hands its
//! results over, and its history record read from and written into the history file and
//! `quality.json`. An append to a five-year dataset does all of that for every day of the
//! history: on the demo layout (6,290 symbol-days), when the stage kept them as JSON lines,
//! serde_json's derive spent about 85 million instructions parsing them and 32 million
//! writing them, most of an append's fixed cost.
//!
//! The fast path here reads exactly the layout the derive writes (fields in declaration
//! order, no whitespace, no escapes) and falls back to serde_json for anything else (a
//! hand-edited history file, a symbol with a quote in it), so it accepts what serde_json
//! accepts and gives the same values: numbers are checked against JSON's grammar and parsed
//! by `str::parse`, correctly rounded as serde_json's `float_roundtrip` is. The writer's
//! bytes are serde_json's (tested on random records): floats through `zmij`, the formatter
//! serde_json uses, integers through `itoa`, and strings that need escaping through
//! serde_json itself. Written here rather than with another JSON crate: the gain is in
//! knowing the layout, which no general parser can assume.
//!
//! The stage's closed days are not JSON at all: [`SymbolDay::encode`] appends a record to a
//! byte buffer that checkpoints copy as it is (texts and counts as LEB128 varints with their
//! lengths, one byte of presence flags, the floats as 8 little-endian bytes: about 70 bytes
//! a day against 220 of JSON, so the checkpoints that hold them compress and store faster),
//! and [`decode_all`] reads them back, without any of the JSON's number parsing.

use std::ops::Range;

use crate::model::SymbolDay;

impl SymbolDay {
    /// Parses one JSON object (a history line, a closed day of the stage's state).
    pub(crate) fn from_json(text: &str) -> serde_json::Result<SymbolDay> {
        match parse_fast(text.as_bytes()) {
            Some(d) => Ok(d),
            None => serde_json::from_str(text),
        }
    }

    /// Appends the JSON object serde_json would write for this record.
    pub(crate) fn write_json(&self, out: &mut String) {
        self.write_json_as(out, true);
    }

    /// [`write_json`](SymbolDay::write_json), without `file`, `line` and `source` unless
    /// `origin` (a history record's form).
    pub(crate) fn write_json_as(&self, out: &mut String, origin: bool) {
        out.push_str("{\"symbol\":");
        string(out, &self.symbol);
        out.push_str(",\"date\":");
        string(out, &self.date);
        for (key, v) in [
            (",\"rows\":", self.rows),
            (",\"errors\":", self.errors),
            (",\"warnings\":", self.warnings),
            (",\"nulls\":", self.nulls),
            (",\"duplicates\":", self.duplicates),
            (",\"outliers\":", self.outliers),
        ] {
            out.push_str(key);
            out.push_str(itoa::Buffer::new().format(v));
        }
        for (key, v) in [
            (",\"min_price\":", self.min_price),
            (",\"max_price\":", self.max_price),
            (",\"mean_price\":", self.mean_price),
            (",\"median_spread\":", self.median_spread),
            (",\"volume\":", Some(self.volume)),
        ] {
            out.push_str(key);
            float(out, v);
        }
        if origin {
            self.write_origin(out);
        }
        out.push('}');
    }

    /// The origin fields of [`write_json`](SymbolDay::write_json) (`file`, `line` and
    /// `source`, those it has), each with its leading comma.
    pub(crate) fn write_origin(&self, out: &mut String) {
        if let Some(f) = &self.file {
            out.push_str(",\"file\":");
            string(out, f);
        }
        if let Some(l) = self.line {
            out.push_str(",\"line\":");
            out.push_str(itoa::Buffer::new().format(l));
        }
        if let Some(s) = self.source {
            out.push_str(",\"source\":");
            out.push_str(itoa::Buffer::new().format(s));
        }
    }

    /// Appends the binary form (see the module docs) to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let text = |out: &mut Vec<u8>, s: &str| {
            varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        };
        text(out, &self.symbol);
        text(out, &self.date);
        for v in [
            self.rows,
            self.errors,
            self.warnings,
            self.nulls,
            self.duplicates,
            self.outliers,
        ] {
            varint(out, v);
        }
        let prices = [
            self.min_price,
            self.max_price,
            self.mean_price,
            self.median_spread,
        ];
        let mut flags = 0u8;
        for (bit, v) in prices.iter().enumerate() {
            flags |= u8::from(v.is_some()) << bit;
        }
        flags |= u8::from(self.file.is_some()) << 4
            | u8::from(self.line.is_some()) << 5
            | u8::from(self.source.is_some()) << 6;
        out.push(flags);
        for v in prices.into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.volume.to_le_bytes());
        if let Some(f) = &self.file {
            text(out, f);
        }
        if let Some(l) = self.line {
            varint(out, l);
        }
        if let Some(src) = self.source {
            varint(out, u64::from(src));
        }
    }

    /// [`write_json`](SymbolDay::write_json) into a new string.
    #[cfg(test)]
    pub(crate) fn to_json_line(&self) -> String {
        let mut s = String::with_capacity(256);
        self.write_json(&mut s);
        s
    }
}

/// A string as serde_json writes it: as is when nothing needs escaping.
fn string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else if let Ok(j) = serde_json::to_string(s) {
        out.push_str(&j);
    }
}

/// A float as serde_json writes it (`null` for none and for NaN and infinities).
fn float(out: &mut String, v: Option<f64>) {
    match v {
        Some(x) if x.is_finite() => out.push_str(zmij::Buffer::new().format_finite(x)),
        _ => out.push_str("null"),
    }
}

/// LEB128: seven bits a byte, low first, the high bit set on all bytes but the last.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads records written by [`SymbolDay::encode`]; `None` when `bytes` is not a whole
/// number of them.
pub(crate) fn decode_all(bytes: &[u8]) -> Option<Vec<SymbolDay>> {
    let mut r = Bytes { b: bytes, i: 0 };
    let mut out = Vec::new();
    while r.i < bytes.len() {
        let d = r.record()?;
        out.push(from_parts(
            d.symbol.to_string(),
            d.date.to_string(),
            d.counts,
            d.prices,
            d.volume,
            (d.file.map(str::to_string), d.line, d.source),
        ));
    }
    Some(out)
}

/// Whether `bytes` is a whole number of records written by [`SymbolDay::encode`] (what
/// [`decode_all`] would read, checked without building them).
pub(crate) fn check_all(bytes: &[u8]) -> bool {
    let mut r = Bytes { b: bytes, i: 0 };
    while r.i < bytes.len() {
        if r.record().is_none() {
            return false;
        }
    }
    true
}

/// One record's fields as read, its text borrowed.
struct Raw<'a> {
    symbol: &'a str,
    date: &'a str,
    counts: [u64; 6],
    prices: [Option<f64>; 4],
    volume: f64,
    file: Option<&'a str>,
    line: Option<u64>,
    source: Option<u32>,
}

/// A reader of [`SymbolDay::encode`]'s fields.
struct Bytes<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Bytes<'a> {
    fn record(&mut self) -> Option<Raw<'a>> {
        let symbol = self.text()?;
        let date = self.text()?;
        let mut counts = [0u64; 6];
        for v in &mut counts {
            *v = self.varint()?;
        }
        let [flags] = self.take::<1>()?;
        if flags & 0x80 != 0 {
            return None;
        }
        let mut prices = [None; 4];
        for (bit, v) in prices.iter_mut().enumerate() {
            if flags & (1 << bit) != 0 {
                *v = Some(self.f64()?);
            }
        }
        let volume = self.f64()?;
        let file = if flags & 0x10 != 0 {
            Some(self.text()?)
        } else {
            None
        };
        let line = if flags & 0x20 != 0 {
            Some(self.varint()?)
        } else {
            None
        };
        let source = if flags & 0x40 != 0 {
            Some(u32::try_from(self.varint()?).ok()?)
        } else {
            None
        };
        Some(Raw {
            symbol,
            date,
            counts,
            prices,
            volume,
            file,
            line,
            source,
        })
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let v = self
            .b
            .get(self.i..self.i.checked_add(N)?)?
            .try_into()
            .ok()?;
        self.i += N;
        Some(v)
    }

    fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }

    /// A [`varint`] of at most 10 bytes that fits in 64 bits.
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for k in 0..10 {
            let [b] = self.take::<1>()?;
            let bits = u64::from(b & 0x7f);
            if k == 9 && bits > 1 {
                return None;
            }
            v |= bits << (7 * k);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.varint()?).ok()?;
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        std::str::from_utf8(s).ok()
    }
}

/// Where the symbol and the date are in a record of the derive's layout (byte ranges of
/// `line`); `None` for any other layout.
pub(crate) fn key_spans(line: &str) -> Option<(Range<usize>, Range<usize>)> {
    let mut c = Cursor {
        b: line.as_bytes(),
        i: 0,
    };
    c.lit(b"{\"symbol\":")?;
    let s = c.string_span()?;
    c.lit(b",\"date\":")?;
    let d = c.string_span()?;
    Some((s, d))
}

/// The derive's layout, or `None` to leave the text to serde_json.
fn parse_fast(b: &[u8]) -> Option<SymbolDay> {
    let mut c = Cursor { b, i: 0 };
    c.lit(b"{\"symbol\":")?;
    let symbol = c.string()?.to_string();
    c.lit(b",\"date\":")?;
    let date = c.string()?.to_string();
    let mut counts = [0u64; 6];
    for (key, v) in [
        &b",\"rows\":"[..],
        b",\"errors\":",
        b",\"warnings\":",
        b",\"nulls\":",
        b",\"duplicates\":",
        b",\"outliers\":",
    ]
    .into_iter()
    .zip(&mut counts)
    {
        c.lit(key)?;
        *v = c.uint()?;
    }
    let mut prices = [None; 4];
    for (key, v) in [
        &b",\"min_price\":"[..],
        b",\"max_price\":",
        b",\"mean_price\":",
        b",\"median_spread\":",
    ]
    .into_iter()
    .zip(&mut prices)
    {
        c.lit(key)?;
        *v = if c.lit(b"null").is_some() {
            None
        } else {
            Some(c.float()?)
        };
    }
    c.lit(b",\"volume\":")?;
    let volume = c.float()?;
    let file = match c.lit(b",\"file\":") {
        Some(()) => Some(c.string()?.to_string()),
        None => None,
    };
    let line = match c.lit(b",\"line\":") {
        Some(()) => Some(c.uint()?),
        None => None,
    };
    let source = match c.lit(b",\"source\":") {
        Some(()) => Some(u32::try_from(c.uint()?).ok()?),
        None => None,
    };
    c.lit(b"}")?;
    if c.i != b.len() {
        return None;
    }
    Some(from_parts(
        symbol,
        date,
        counts,
        prices,
        volume,
        (file, line, source),
    ))
}

/// A record from its fields in declaration order: the counts (`rows` to `outliers`), the
/// prices (`min_price` to `median_spread`), the volume, and `file`, `line` and `source`.
fn from_parts(
    symbol: String,
    date: String,
    counts: [u64; 6],
    prices: [Option<f64>; 4],
    volume: f64,
    (file, line, source): (Option<String>, Option<u64>, Option<u32>),
) -> SymbolDay {
    let [rows, errors, warnings, nulls, duplicates, outliers] = counts;
    let [min_price, max_price, mean_price, median_spread] = prices;
    SymbolDay {
        symbol,
        date,
        rows,
        errors,
        warnings,
        nulls,
        duplicates,
        outliers,
        min_price,
        max_price,
        mean_price,
        median_spread,
        volume,
        file,
        line,
        source,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes `s` when the text continues with it.
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(s) {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        let r = self.string_span()?;
        std::str::from_utf8(&self.b[r]).ok()
    }

    /// Where the next string's text is (without its quotes): a string without escapes or
    /// control characters.
    fn string_span(&mut self) -> Option<Range<usize>> {
        self.lit(b"\"")?;
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        let start = self.i;
        self.i += end + 1;
        Some(start..start + end)
    }

    fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    /// An unsigned integer in JSON's grammar (no sign, fraction or exponent, no leading 0).
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let n = self.digits();
        let s = &self.b[start..self.i];
        if n == 0 || (n > 1 && s[0] == b'0') || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn float(&mut self) -> Option<f64> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let v: f64 = std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()?;
        // serde_json refuses a number too large for an f64; leave that to it.
        v.is_finite().then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> impl Strategy<Value = SymbolDay> {
        let text = prop_oneof![
            "[A-Z.]{1,6}",
            any::<String>(),
            Just("A\"B\\C\n".to_string()),
        ];
        let float = prop_oneof![
            any::<f64>(),
            (-1e6f64..1e6),
            Just(0.0),
            Just(-0.0),
            Just(1e300),
            Just(5e-324),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ];
        let opt_float = proptest::option::of(float.clone());
        (
            (
                text.clone(),
                text.clone(),
                proptest::array::uniform6(any::<u64>()),
            ),
            proptest::array::uniform4(opt_float),
            float,
            (
                proptest::option::of(text),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u32>()),
            ),
        )
            .prop_map(
                |((symbol, date, c), p, volume, (file, line, source))| SymbolDay {
                    symbol,
                    date,
                    rows: c[0],
                    errors: c[1],
                    warnings: c[2],
                    nulls: c[3],
                    duplicates: c[4],
                    outliers: c[5],
                    min_price: p[0],
                    max_price: p[1],
                    mean_price: p[2],
                    median_spread: p[3],
                    volume,
                    file,
                    line,
                    source,
                },
            )
    }

    /// Values as serde_json reads them back: the same, or both refused.
    fn same(a: &serde_json::Result<SymbolDay>, b: &serde_json::Result<SymbolDay>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => format!("{x:?}") == format!("{y:?}"),
            (Err(_), Err(_)) => true,
            _ => false,
        }
    }

    proptest! {
        /// The writer's bytes are serde_json's, and the reader gives what serde_json reads
        /// from them (NaN and infinities are written as `null`, which both refuse for
        /// `volume`).
        #[test]
        fn matches_serde_json(d in day()) {
            let ours = d.to_json_line();
            let theirs = serde_json::to_string(&d).unwrap();
            prop_assert_eq!(&ours, &theirs);
            let a = SymbolDay::from_json(&ours);
            let b = serde_json::from_str::<SymbolDay>(&ours);
            prop_assert!(same(&a, &b), "{:?} against {:?}", a, b);
        }

        /// Any text: the same record or both refused.
        #[test]
        fn reads_what_serde_json_reads(
            d in day(),
            cut in 0usize..400,
            junk in "[0-9eE.+\\- ,:}\"a-z]{0,3}",
        ) {
            let line = d.to_json_line();
            let mut cut = cut.min(line.len());
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            let text = format!("{}{junk}{}", &line[..cut], &line[cut..]);
            let a = SymbolDay::from_json(&text);
            let b = serde_json::from_str::<SymbolDay>(&text);
            prop_assert!(same(&a, &b), "{text}: {a:?} against {b:?}");
        }
    }

    proptest! {
        /// The binary form gives back every field, bit for bit, records one after another;
        /// a cut record is refused.
        #[test]
        fn binary_round_trip(days in proptest::collection::vec(day(), 0..4), cut in 1usize..40) {
            let mut bytes = Vec::new();
            for d in &days {
                d.encode(&mut bytes);
            }
            prop_assert!(check_all(&bytes));
            let back = decode_all(&bytes).expect("whole records");
            prop_assert_eq!(format!("{days:?}"), format!("{back:?}"));
            for (a, b) in days.iter().zip(&back) {
                for (x, y) in [(a.mean_price, b.mean_price), (Some(a.volume), Some(b.volume))] {
                    prop_assert_eq!(x.map(f64::to_bits), y.map(f64::to_bits));
                }
            }
            if let Some(last) = days.last() {
                // Cut inside the last record.
                let mut one = Vec::new();
                last.encode(&mut one);
                let cut = cut.min(one.len() - 1).max(1);
                prop_assert!(decode_all(&bytes[..bytes.len() - cut]).is_none());
                prop_assert!(!check_all(&bytes[..bytes.len() - cut]));
            }
        }
    }

    /// Overlong and overflowing varints are refused.
    #[test]
    fn varints_fit_in_64_bits() {
        let read = |b: &[u8]| Bytes { b, i: 0 }.varint();
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(read(&max), Some(u64::MAX));
        *max.last_mut().unwrap() = 0x02;
        assert_eq!(read(&max), None);
        assert_eq!(read(&[0x80; 11]), None);
        assert_eq!(read(&[0x80]), None);
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!((out.as_slice(), read(&out)), (&[0xac, 0x02][..], Some(300)));
    }

    #[test]
    fn layouts_the_fast_path_leaves_to_serde_json() {
        let fast = r#"{"symbol":"A","date":"2024-01-02","rows":3,"errors":0,"warnings":0,"nulls":0,"duplicates":0,"outliers":0,"min_price":1.5,"max_price":null,"mean_price":2e-3,"median_spread":0.01,"volume":300.0,"line":7,"source":2}"#;
        let d = parse_fast(fast.as_bytes()).expect("the derive's layout");
        assert_eq!(
            (d.rows, d.mean_price, d.line, d.source),
            (3, Some(0.002), Some(7), Some(2))
        );
        for other in [
            // Whitespace, another order, an unknown field: serde_json reads them all.
            fast.replace(",\"rows\"", ", \"rows\""),
            fast.replace(
                "\"symbol\":\"A\",\"date\":\"2024-01-02\"",
                "\"date\":\"2024-01-02\",\"symbol\":\"A\"",
            ),
            fast.replace("}", ",\"extra\":1}"),
            fast.replace("\"A\"", "\"\\u0041\""),
        ] {
            assert!(parse_fast(other.as_bytes()).is_none(), "{other}");
            let d = SymbolDay::from_json(&other).expect(&other);
            assert_eq!((d.symbol.as_str(), d.rows), ("A", 3));
        }
        for bad in [
            fast.replace("\"rows\":3", "\"rows\":03"),
            fast.replace("\"rows\":3", "\"rows\":3.0"),
            fast.replace("1.5", "1."),
            fast.replace("1.5", ".5"),
            fast.replace("300.0", "1e999"),
        ] {
            assert!(SymbolDay::from_json(&bad).is_err(), "{bad}");
        }
    }
}
