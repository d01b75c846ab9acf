//! Sniffing: container format and compression from magic bytes, text encoding, delimiter and
//! header presence from a sample.

use std::io::Read;

use serde::Serialize;

/// InputCompression of an input, detected from its first bytes (never from the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputCompression {
    /// Not compressed.
    None,
    /// gzip (one or more members).
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Legacy `.lzma` (LZMA-alone).
    Lzma,
    /// Zstandard.
    Zstd,
}

impl InputCompression {
    /// Detects the codec from the first bytes of a file.
    pub fn detect(head: &[u8]) -> InputCompression {
        if head.starts_with(&[0x1f, 0x8b]) {
            InputCompression::Gzip
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|c| (b'1'..=b'9').contains(c))
        {
            InputCompression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            InputCompression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            InputCompression::Zstd
        } else if head.len() >= 13 && head[0] == 0x5d && head[1] == 0 && head[2] == 0 {
            // LZMA-alone: properties byte 0x5d and a power-of-two dictionary size; the usual
            // 8 MiB dictionary (`5d 00 00 80 00`) is what xz-utils writes by default.
            InputCompression::Lzma
        } else {
            InputCompression::None
        }
    }

    /// The codec's name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            InputCompression::None => "none",
            InputCompression::Gzip => "gzip",
            InputCompression::Bzip2 => "bzip2",
            InputCompression::Xz => "xz",
            InputCompression::Lzma => "lzma",
            InputCompression::Zstd => "zstd",
        }
    }

    /// Wraps `r` in the matching decoder (gzip reads every member, like `zcat`).
    pub fn decoder<'a, R: Read + Send + 'a>(
        self,
        r: R,
    ) -> std::io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            InputCompression::None => Box::new(r),
            InputCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 16, r),
            )),
            InputCompression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
            InputCompression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
            InputCompression::Lzma => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(std::io::Error::other)?;
                Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
            }
            InputCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// What kind of file an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Delimited text.
    Csv,
    /// Apache Parquet (`PAR1`).
    Parquet,
    /// Arrow IPC file (`ARROW1`).
    ArrowIpc,
}

impl FileFormat {
    /// Detects Parquet and Arrow IPC files by magic bytes; everything else is text.
    pub fn detect(head: &[u8]) -> FileFormat {
        if head.starts_with(b"PAR1") {
            FileFormat::Parquet
        } else if head.starts_with(b"ARROW1") {
            FileFormat::ArrowIpc
        } else {
            FileFormat::Csv
        }
    }
}

/// A text encoding and the length of its byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding {
    /// The encoding.
    pub encoding: &'static encoding_rs::Encoding,
    /// Bytes of BOM at the start of the text (skipped).
    pub bom: usize,
}

impl TextEncoding {
    /// True for UTF-8, which is decoded in place without transcoding.
    pub fn is_utf8(&self) -> bool {
        self.encoding == encoding_rs::UTF_8
    }

    /// The encoding's name, with `-bom` when a BOM was present.
    pub fn label(&self) -> String {
        let n = self.encoding.name().to_ascii_lowercase();
        if self.bom > 0 { format!("{n}-bom") } else { n }
    }

    /// Detects the encoding of a (decompressed) sample: a BOM wins; then valid UTF-8
    /// (allowing a character cut at the end of the sample); else chardetng's guess
    /// (Windows-1252 for Latin-1 text).
    pub fn detect(sample: &[u8], configured: Option<&str>) -> Result<TextEncoding, String> {
        if let Some(label) = configured {
            let enc = encoding_rs::Encoding::for_label(label.trim().as_bytes())
                .ok_or_else(|| format!("unknown encoding `{label}`"))?;
            let bom = match encoding_rs::Encoding::for_bom(sample) {
                Some((e, n)) if e == enc => n,
                _ => 0,
            };
            return Ok(TextEncoding { encoding: enc, bom });
        }
        if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(sample) {
            return Ok(TextEncoding { encoding: enc, bom });
        }
        let valid = match std::str::from_utf8(sample) {
            Ok(_) => true,
            // A multi-byte character cut by the end of the sample is fine.
            Err(e) => e.error_len().is_none(),
        };
        if valid {
            return Ok(TextEncoding {
                encoding: encoding_rs::UTF_8,
                bom: 0,
            });
        }
        let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        det.feed(sample, false);
        let enc = det.guess(None, chardetng::Utf8Detection::Allow);
        Ok(TextEncoding {
            encoding: enc,
            bom: 0,
        })
    }
}

/// True when most of a text sample is binary data: more than half of its bytes lie in lines
/// that hold a NUL byte or more than 1% control characters (besides line ends, tabs and form
/// feeds). A few damaged lines in a text file do not make it binary: their rows are
/// quarantined by the decoder (`bad_encoding`) and the rest are read; random binary data has
/// a NUL in most 256-byte stretches and ≈ 11% control bytes, so nearly all of it counts.
pub fn looks_binary(text: &[u8]) -> bool {
    if text.is_empty() || !has_control(text) {
        return false;
    }
    let mut binary = 0usize;
    for line in text.split(|&c| c == b'\n') {
        let ctrl = line
            .iter()
            .filter(|&&c| c < 0x20 && !matches!(c, b'\r' | b'\t' | 0x0c))
            .count();
        let has_nul = memchr::memchr(0, line).is_some();
        // Text lines have essentially no control characters besides line ends and tabs; 1%
        // is a generous bound that random binary data is far above.
        if has_nul || ctrl * 100 > line.len() {
            binary += line.len() + 1;
        }
    }
    binary * 2 > text.len()
}

/// True when `text` holds a control byte other than a line end, tab or form feed: text
/// nearly never does, so [`looks_binary`] looks at lines only then. Folded without an
/// early exit, 4 KiB at a time, so the compiler tests many bytes per instruction (the line
/// by line count was 16% of describing 1,258 small files).
fn has_control(text: &[u8]) -> bool {
    text.chunks(4096).any(|block| {
        block.iter().fold(false, |found, &c| {
            found | (c < 0x20 && !matches!(c, b'\n' | b'\r' | b'\t' | 0x0c))
        })
    })
}

/// Candidate delimiters, in order of preference when counts tie.
pub const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// Picks the delimiter whose per-line count (outside quotes) is the most consistent and
/// non-zero over the sample's lines; `,` when none occurs.
pub fn sniff_delimiter(sample: &[u8]) -> u8 {
    let lines: Vec<&[u8]> = sample
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty() && *l != b"\r")
        .take(50)
        .collect();
    // Drop the last line: it may be cut by the end of the sample.
    let lines = if lines.len() > 1 {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    // Each line is scanned once for all candidates (it was once per candidate: 40% of
    // building a small file's plan).
    let per_line: Vec<[usize; 4]> = lines.iter().map(|l| delimiters_outside_quotes(l)).collect();
    let mut best = (b',', 0usize, 0usize);
    for (k, d) in DELIMITERS.into_iter().enumerate() {
        let counts: Vec<usize> = per_line.iter().map(|n| n[k]).collect();
        let first = counts.first().copied().unwrap_or(0);
        if first == 0 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if (consistent, first) > (best.1, best.2) {
            best = (d, consistent, first);
        }
    }
    best.0
}

/// How many times each of [`DELIMITERS`] occurs in `line` outside double quotes.
fn delimiters_outside_quotes(line: &[u8]) -> [usize; 4] {
    let mut inq = false;
    let mut n = [0usize; 4];
    for &c in line {
        let k = match c {
            b'"' => {
                inq = !inq;
                continue;
            }
            b',' => 0,
            b'\t' => 1,
            b';' => 2,
            b'|' => 3,
            _ => continue,
        };
        n[k] += usize::from(!inq);
    }
    n
}

/// Decides whether the first record is a header: none of its fields is a number or a
/// timestamp-like value, and it is not the only record or some later record has a numeric
/// field where the first has text.
pub fn sniff_header<S: AsRef<str>, R: AsRef<[S]>>(records: &[R]) -> bool {
    let Some(first) = records.first().map(AsRef::as_ref) else {
        return false;
    };
    let numeric = |s: &str| {
        let t = s.trim();
        !t.is_empty()
            && (super::number::parse_f64(t.as_bytes()).is_some()
                || t.bytes().next().is_some_and(|c| c.is_ascii_digit()))
    };
    if first.iter().any(|f| numeric(f.as_ref())) {
        return false;
    }
    if records.len() == 1 {
        return first.iter().any(|f| !f.as_ref().trim().is_empty());
    }
    records[1..].iter().any(|r| {
        r.as_ref()
            .iter()
            .zip(first)
            .any(|(v, h)| numeric(v.as_ref()) && !h.as_ref().trim().is_empty())
    }) || first.iter().any(|h| {
        let n = pipeline_core::normalize_header(h.as_ref());
        pipeline_core::Canonical::ALL
            .iter()
            .any(|c| c.aliases().contains(&n.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(
            InputCompression::detect(&[0x1f, 0x8b, 8]),
            InputCompression::Gzip
        );
        assert_eq!(
            InputCompression::detect(b"BZh91AY"),
            InputCompression::Bzip2
        );
        assert_eq!(
            InputCompression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            InputCompression::Xz
        );
        assert_eq!(
            InputCompression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            InputCompression::Zstd
        );
        assert_eq!(
            InputCompression::detect(b"ts,price\n"),
            InputCompression::None
        );
        assert_eq!(FileFormat::detect(b"PAR1xxxx"), FileFormat::Parquet);
        assert_eq!(FileFormat::detect(b"ARROW1\0\0"), FileFormat::ArrowIpc);
        assert_eq!(FileFormat::detect(b"a,b"), FileFormat::Csv);
    }

    #[test]
    fn encodings() {
        let e = TextEncoding::detect(b"\xef\xbb\xbfa,b\n", None).unwrap();
        assert!(e.is_utf8() && e.bom == 3);
        let e = TextEncoding::detect(b"\xff\xfea\0,\0", None).unwrap();
        assert_eq!((e.encoding, e.bom), (encoding_rs::UTF_16LE, 2));
        let e = TextEncoding::detect(b"\xfe\xff\0a\0,", None).unwrap();
        assert_eq!((e.encoding, e.bom), (encoding_rs::UTF_16BE, 2));
        let e = TextEncoding::detect("sym,caf\u{e9}\n".as_bytes(), None).unwrap();
        assert!(e.is_utf8());
        let e = TextEncoding::detect(
            b"sym,name\nAAPL,Soci\xe9t\xe9 G\xe9n\xe9rale et caf\xe9\n",
            None,
        )
        .unwrap();
        assert_eq!(e.encoding, encoding_rs::WINDOWS_1252);
        assert!(TextEncoding::detect(b"", Some("klingon")).is_err());
    }

    #[test]
    fn delimiters_and_headers() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2;3\n4;5;6\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a|b|\"x,y\"\n1|2|\"3,4\"\n"), b'|');
        assert_eq!(sniff_delimiter(b"a,b\n1,2\n"), b',');
        let rec = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(sniff_header(&[
            rec(&["ts", "price"]),
            rec(&["2021-01-01", "1.5"])
        ]));
        assert!(!sniff_header(&[
            rec(&["20200101 170000065", "1.12"]),
            rec(&["20200101 170010447", "1.13"])
        ]));
        assert!(!sniff_header(&[rec(&["8715", "1.39"])]));
        assert!(looks_binary(b"\x00\x01\x02abc"));
        assert!(!looks_binary(b"a,b\r\n1,2\n"));
        // Issue #13 case 7: NULs in 4 of 2,000 lines do not make a file binary.
        let mut text = b"ts,symbol,price\n".to_vec();
        for i in 0..2000 {
            let nul = if i % 500 == 7 { "\0" } else { "" };
            text.extend_from_slice(format!("2021-01-04T14:30:00Z,A{nul},{i}.5\n").as_bytes());
        }
        assert!(!looks_binary(&text));
        // Random bytes are binary, however many newlines they contain.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..65_536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(looks_binary(&random));
    }

    #[test]
    fn delimiters_inside_quotes_are_not_counted() {
        assert_eq!(delimiters_outside_quotes(b"a,b\tc;d|e"), [1, 1, 1, 1]);
        assert_eq!(
            delimiters_outside_quotes(b"\"x,y;z\",1,2\t\"|\"\"|\""),
            [2, 1, 0, 0]
        );
        assert_eq!(sniff_delimiter(b"\"a;b\";c\n\"d;e\";f\n\"g;h\";i\n"), b';');
        assert_eq!(sniff_delimiter(b"\"a,b\"|c\n\"d,e\"|f\n\"g\"|h\n"), b'|');
    }

    #[test]
    fn control_bytes_are_found_anywhere_in_the_text() {
        assert!(!has_control(b""));
        assert!(!has_control(b"a,b\r\n1\t2\x0c\n\xc3\xa9"));
        // One control byte at each place of a text longer than one fold block.
        let base = vec![b'x'; 9000];
        for at in [0, 4095, 4096, 8999] {
            for c in [0u8, 0x01, 0x1b, 0x1f] {
                let mut t = base.clone();
                t[at] = c;
                assert!(has_control(&t), "byte {c:#x} at {at}");
            }
        }
        // A text line of 1,000 bytes with one NUL is binary (the line has a NUL and is
        // all of the text); without it, it is not.
        let mut line = vec![b'a'; 1000];
        assert!(!looks_binary(&line));
        line[500] = 0;
        assert!(looks_binary(&line));
    }
}
