//! Streaming transcoding of UTF-16, Windows-1252 and other encodings into UTF-8.

use std::io::Read;

use super::sniff::TextEncoding;

/// Streams any encoding into UTF-8 with `encoding_rs` (malformed input becomes U+FFFD).
pub(crate) struct Transcoder {
    inner: Box<dyn Read + Send>,
    decoder: encoding_rs::Decoder,
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl Transcoder {
    pub(crate) fn new(enc: TextEncoding, inner: Box<dyn Read + Send>) -> Self {
        Transcoder {
            inner,
            // The BOM is removed by the decoder itself.
            decoder: enc.encoding.new_decoder_with_bom_removal(),
            inbuf: vec![0; 64 << 10],
            in_start: 0,
            in_end: 0,
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }
}

impl Read for Transcoder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.eof && self.in_start == self.in_end {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.inbuf)?;
                self.in_start = 0;
                self.in_end = n;
                if n == 0 {
                    self.eof = true;
                }
            }
            let input = &self.inbuf[self.in_start..self.in_end];
            let cap = self
                .decoder
                .max_utf8_buffer_length(input.len())
                .unwrap_or(input.len() * 3 + 16);
            self.out.clear();
            self.out.resize(cap.max(16), 0);
            let (_, read, written, _) = self.decoder.decode_to_utf8(input, &mut self.out, self.eof);
            self.in_start += read;
            self.out.truncate(written);
            self.out_pos = 0;
            if self.eof && written == 0 && self.in_start == self.in_end {
                return Ok(0);
            }
        }
    }
}
