//! Splitting delimited text into records and fields (RFC 4180 quoting, LF or CRLF), and
//! finding record boundaries for parallel decoding.

/// A field inside a record: byte range relative to the record start, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
    /// 0: plain bytes; 1: quoted, `start..end` is the inside; 2: quoted with `""` escapes or
    /// text after the closing quote, `start..end` is the raw field (see [`unescape`]).
    pub kind: u8,
}

/// The outcome of [`split_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// A record of `end` bytes (terminator included) holding `newlines` `\n` bytes.
    Record {
        end: usize,
        newlines: u32,
        /// The input ended inside a quoted field.
        unterminated: bool,
    },
    /// More bytes are needed to finish the record.
    Incomplete,
}

/// Splits the record at the start of `buf` into `fields`.
///
/// A record ends at a `\n` outside quotes; a `\r` before it is dropped. A quote opens a quoted
/// field only at the start of a field. With `eof`, the end of `buf` also ends the record.
#[inline]
pub(crate) fn split_record(buf: &[u8], delim: u8, eof: bool, fields: &mut Vec<Span>) -> Split {
    fields.clear();
    let n = buf.len();
    let mut pos = 0usize;
    let mut newlines = 0u32;
    loop {
        if pos < n && buf[pos] == b'"' {
            let raw_start = pos;
            pos += 1;
            let inner = pos;
            let mut escaped = false;
            let close = loop {
                match memchr::memchr(b'"', &buf[pos..]) {
                    None => {
                        if !eof {
                            return Split::Incomplete;
                        }
                        newlines += count_nl(&buf[inner..]);
                        fields.push(Span {
                            start: inner as u32,
                            end: n as u32,
                            kind: 1,
                        });
                        return Split::Record {
                            end: n,
                            newlines,
                            unterminated: true,
                        };
                    }
                    Some(i) => {
                        pos += i;
                        if pos + 1 < n && buf[pos + 1] == b'"' {
                            escaped = true;
                            pos += 2;
                            continue;
                        }
                        if pos + 1 >= n && !eof {
                            return Split::Incomplete;
                        }
                        break pos;
                    }
                }
            };
            newlines += count_nl(&buf[inner..close]);
            pos = close + 1;
            // Text between the closing quote and the delimiter is kept, as Python's csv does.
            let mut junk = false;
            while pos < n && buf[pos] != delim && buf[pos] != b'\n' {
                if buf[pos] != b'\r' || buf.get(pos + 1).is_some_and(|&c| c != b'\n') {
                    junk = true;
                }
                pos += 1;
            }
            if pos >= n && !eof {
                return Split::Incomplete;
            }
            if escaped || junk {
                let mut end = pos;
                if end > raw_start && buf[end - 1] == b'\r' && (end == n || buf[end] == b'\n') {
                    end -= 1;
                }
                fields.push(Span {
                    start: raw_start as u32,
                    end: end as u32,
                    kind: 2,
                });
            } else {
                fields.push(Span {
                    start: inner as u32,
                    end: close as u32,
                    kind: 1,
                });
            }
        } else {
            let start = pos;
            pos = find_delim_or_newline(buf, pos, delim);
            if pos < n && buf[pos] == delim {
                // Not the record's last field: no `\r` to look for.
                fields.push(Span {
                    start: start as u32,
                    end: pos as u32,
                    kind: 0,
                });
                pos += 1;
                continue;
            }
            if pos >= n && !eof {
                return Split::Incomplete;
            }
            // The last field, before `\n` or the end of the input: a `\r` before either is
            // the terminator's.
            let mut end = pos;
            if end > start && buf[end - 1] == b'\r' {
                end -= 1;
            }
            fields.push(Span {
                start: start as u32,
                end: end as u32,
                kind: 0,
            });
        }
        if pos >= n {
            return Split::Record {
                end: n,
                newlines,
                unterminated: false,
            };
        }
        if buf[pos] == delim {
            pos += 1;
            continue;
        }
        // `\n`.
        return Split::Record {
            end: pos + 1,
            newlines: newlines + 1,
            unterminated: false,
        };
    }
}

/// The first `delim` or `\n` at or after `pos` (or `buf.len()`), eight bytes at a time: a
/// tick field is a few bytes long, so one word usually covers it (measured: the byte loop
/// this replaces was a sixth of the decode time).
#[inline]
fn find_delim_or_newline(buf: &[u8], mut pos: usize, delim: u8) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let dm = LO * u64::from(delim);
    let nm = LO * u64::from(b'\n');
    while pos + 8 <= buf.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[pos..pos + 8]);
        let w = u64::from_le_bytes(w);
        let a = w ^ dm;
        let b = w ^ nm;
        // The classic "has a zero byte" test; its lowest set bit marks the first zero byte
        // exactly (false positives can only follow a real zero).
        let z = (a.wrapping_sub(LO) & !a & HI) | (b.wrapping_sub(LO) & !b & HI);
        if z != 0 {
            return pos + (z.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while pos < buf.len() {
        let c = buf[pos];
        if c == delim || c == b'\n' {
            return pos;
        }
        pos += 1;
    }
    pos
}

#[inline]
fn count_nl(b: &[u8]) -> u32 {
    memchr::memchr_iter(b'\n', b).count() as u32
}

/// Reads a kind-2 field: strips the quotes, turns `""` into `"`, keeps text after the closing
/// quote.
pub(crate) fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 1; // Skip the opening quote.
    let mut in_q = true;
    while i < raw.len() {
        let c = raw[i];
        if in_q && c == b'"' {
            if raw.get(i + 1) == Some(&b'"') {
                out.push(b'"');
                i += 2;
                continue;
            }
            in_q = false;
        } else {
            out.push(c);
        }
        i += 1;
    }
}

/// True for a record that is only an empty line.
#[inline]
pub(crate) fn is_blank(fields: &[Span]) -> bool {
    fields.len() == 1 && fields[0].start == fields[0].end && fields[0].kind == 0
}

/// Finds record boundaries in text by quote parity: a `\n` is a boundary when an even number
/// of `"` precede it (counted from a known boundary). For RFC 4180 text this agrees with
/// [`split_record`]; the same boundaries are used whatever the thread count, so output never
/// depends on it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BoundaryFinder {
    /// Odd number of quotes seen since the last known boundary.
    pub odd: bool,
}

impl BoundaryFinder {
    /// Updates the parity with `text` (which must follow the previously scanned text).
    pub fn skip(&mut self, text: &[u8]) {
        let q = memchr::memchr_iter(b'"', text).count();
        self.odd ^= q % 2 == 1;
    }

    /// The index just after the first boundary `\n` in `text`, scanning forward and
    /// updating the parity; `None` (with the parity of all of `text`) when there is none.
    pub fn find(&mut self, text: &[u8]) -> Option<usize> {
        let mut pos = 0;
        while pos < text.len() {
            match memchr::memchr2(b'"', b'\n', &text[pos..]) {
                None => return None,
                Some(i) => {
                    pos += i;
                    if text[pos] == b'"' {
                        self.odd = !self.odd;
                    } else if !self.odd {
                        return Some(pos + 1);
                    }
                    pos += 1;
                }
            }
        }
        None
    }
}

/// The index just after the last record boundary in `text` (which starts at a boundary), or
/// 0 when there is none: where the record that `text` ends inside begins.
pub(crate) fn last_boundary(text: &[u8]) -> usize {
    let mut f = BoundaryFinder::default();
    let mut last = 0;
    while let Some(i) = f.find(&text[last..]) {
        last += i;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str, eof: bool) -> (Vec<String>, Split) {
        let mut f = Vec::new();
        let r = split_record(s.as_bytes(), b',', eof, &mut f);
        let mut scratch = Vec::new();
        let v = f
            .iter()
            .map(|sp| {
                let b = &s.as_bytes()[sp.start as usize..sp.end as usize];
                if sp.kind == 2 {
                    unescape(b, &mut scratch);
                    String::from_utf8(scratch.clone()).unwrap()
                } else {
                    String::from_utf8(b.to_vec()).unwrap()
                }
            })
            .collect();
        (v, r)
    }

    #[test]
    fn splits_rfc4180() {
        assert_eq!(fields("a,b,c\nx", false).0, ["a", "b", "c"]);
        assert_eq!(fields("a,b\r\n", false).0, ["a", "b"]);
        let (v, r) = fields("\"x,\"\"y\"\"\",\"line\nbreak\",\n", false);
        assert_eq!(v, ["x,\"y\"", "line\nbreak", ""]);
        assert_eq!(
            r,
            Split::Record {
                end: 24,
                newlines: 2,
                unterminated: false
            }
        );
        assert_eq!(fields("a,b", false).1, Split::Incomplete);
        assert_eq!(fields("a,\"b", false).1, Split::Incomplete);
        assert_eq!(fields("a,\"b\"", false).1, Split::Incomplete);
        assert_eq!(fields("a,b", true).0, ["a", "b"]);
        assert!(matches!(
            fields("a,\"b\nc", true).1,
            Split::Record {
                unterminated: true,
                ..
            }
        ));
        assert_eq!(fields("\"ab\"cd,e\n", false).0, ["abcd", "e"]);
        assert_eq!(fields("\"ab\"\r\n", false).0, ["ab"]);
        // A `\r` is dropped only before the record's end; inside a record it is data.
        assert_eq!(fields("a\r,b\r\n", false).0, ["a\r", "b"]);
        assert_eq!(fields("a,\r\n", false).0, ["a", ""]);
        assert_eq!(fields("a,b\r", true).0, ["a", "b"]);
        assert_eq!(fields("a,b\r", false).1, Split::Incomplete);
    }

    #[test]
    fn word_search_finds_the_first_delimiter_or_newline() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| [b'a', b',', b'\n', 0x80, 0xff, b'9'][((x >> (i % 60)) % 6) as usize])
                .collect();
            for start in 0..=len {
                let want = (start..len)
                    .find(|&i| bytes[i] == b',' || bytes[i] == b'\n')
                    .unwrap_or(len);
                assert_eq!(
                    find_delim_or_newline(&bytes, start, b','),
                    want,
                    "{bytes:?} from {start}"
                );
            }
        }
    }

    #[test]
    fn boundaries_respect_quotes() {
        let t = b"a,\"x\ny\"\nb\n";
        let mut f = BoundaryFinder::default();
        assert_eq!(f.find(&t[..]), Some(8));
        assert_eq!(f.find(&t[8..]), Some(2));
        let mut g = BoundaryFinder::default();
        g.skip(b"a,\"x");
        assert_eq!(g.find(b"\ny\"\nb"), Some(4));
    }
}
