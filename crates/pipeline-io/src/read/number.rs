//! Fast number parsing from raw field bytes.
//!
//! Prices and sizes are short decimals (`132.45`, `100`, `0.132`): the fast path reads the
//! digits into a `u64` mantissa and divides by a power of ten once. Both operands are exact
//! when the mantissa has at most 15 significant digits and the scale is at most 10^22, and an
//! IEEE division of exact operands is correctly rounded, so the result equals
//! `str::parse::<f64>` (Clinger's fast path). Anything else (exponents, 16+ digits) falls back
//! to the standard library.

/// Powers of ten that are exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a decimal number; `None` if the text is not a finite number.
#[inline]
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    // Integer digits, then fraction digits: two tight loops. At most 15 digits in all keeps
    // the mantissa exact (leading zeros count too: a rare long `0.000…` takes the slow path).
    let mut mant: u64 = 0;
    let mut i = 0;
    while i < digits.len() {
        let d = digits[i].wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    let int_digits = i;
    let mut frac = 0usize;
    if i < digits.len() {
        if digits[i] != b'.' {
            return parse_slow(b);
        }
        i += 1;
        let start = i;
        while i < digits.len() {
            let d = digits[i].wrapping_sub(b'0');
            if d >= 10 {
                return parse_slow(b);
            }
            mant = mant.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        frac = i - start;
    }
    if int_digits + frac == 0 {
        return None;
    }
    if int_digits + frac > 15 {
        return parse_slow(b);
    }
    // Through `i64`: at most 15 digits fit it, and a signed conversion is one instruction
    // where `u64 → f64` is a sequence of them on x86-64.
    let v = mant as i64 as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// The value of eight ASCII digits in `w` (the first character in the lowest byte), or
/// `None` when a byte is not a digit: one test and three multiplies (the SWAR form of
/// simdjson's `parse_eight_digits_unrolled`) instead of eight dependent steps.
#[inline(always)]
pub(crate) fn digits8(w: u64) -> Option<u64> {
    // A digit byte is 0x30..=0x39: its high nibble is 3, and still 3 after adding 6.
    const F0: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    if (w & F0) | ((w.wrapping_add(0x0606_0606_0606_0606) & F0) >> 4) != 0x3333_3333_3333_3333 {
        return None;
    }
    let mut v = w & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v.wrapping_mul(10 << 8 | 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(v.wrapping_mul(10_000 << 32 | 1) >> 32)
}

#[cold]
fn parse_slow(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?.trim();
    // `str::parse` accepts `inf` and `NaN`; a tick file never means those, so they are errors.
    let first = s.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a decimal integer (optional sign, at most 18 digits, or a value that fits `i64`).
#[inline]
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    if digits.len() > 18 {
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(if neg { -v } else { v })
}

/// Parses a side: `1`/`-1`, `buy`/`sell`, `b`/`s`, `bid`/`ask` (any case) into +1 / -1.
pub fn parse_side(b: &[u8]) -> Option<i8> {
    if let Some(v) = parse_i64(b) {
        return i8::try_from(v).ok();
    }
    let mut lower = [0u8; 4];
    if b.len() > lower.len() {
        return None;
    }
    for (o, c) in lower.iter_mut().zip(b) {
        *o = c.to_ascii_lowercase();
    }
    match &lower[..b.len()] {
        b"buy" | b"b" | b"bid" => Some(1),
        b"sell" | b"s" | b"ask" => Some(-1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(parse_f64(b"132.45"), Some(132.45));
        assert_eq!(parse_f64(b"-0.5"), Some(-0.5));
        assert_eq!(parse_f64(b"100"), Some(100.0));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"1.2.3"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"."), None);
        assert_eq!(parse_f64(b"64."), Some(64.0));
        assert_eq!(parse_f64(b"12345678"), Some(12345678.0));
        assert_eq!(parse_f64(b".1234567"), Some(0.1234567));
        assert_eq!(parse_f64(b"1234567."), Some(1234567.0));
        assert_eq!(parse_f64(b"-0.000001"), Some(-0.000001));
        assert_eq!(parse_f64(b"1..2"), None);
        assert_eq!(parse_f64(b"-"), None);
        assert_eq!(parse_f64(b"1/2"), None);
        assert_eq!(parse_f64(b"12:30"), None);
        assert_eq!(
            parse_f64(b"12345678901234567890.5"),
            Some(12345678901234567890.5)
        );
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"4x"), None);
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_side(b"SELL"), Some(-1));
        assert_eq!(parse_side(b"-1"), Some(-1));
        assert_eq!(parse_side(b"x"), None);
    }

    proptest! {
        #[test]
        fn matches_std(int in 0u64..10_000_000_000, frac in 0u64..1_000_000, digits in 0usize..7, neg: bool) {
            let s = if digits == 0 {
                format!("{}{int}", if neg { "-" } else { "" })
            } else {
                let f = format!("{frac:06}");
                format!("{}{int}.{}", if neg { "-" } else { "" }, &f[..digits])
            };
            prop_assert_eq!(parse_f64(s.as_bytes()), Some(s.parse::<f64>().unwrap()), "{}", s);
        }

        #[test]
        fn any_float_round_trips(x in proptest::num::f64::NORMAL) {
            let s = x.to_string();
            prop_assert_eq!(parse_f64(s.as_bytes()), Some(x));
        }
    }
}
