//! Row expressions for custom rules: column-vs-column comparisons and simple arithmetic,
//! evaluated a chunk at a time.
//!
//! Grammar (usual precedence, left-associative):
//! `or` > `and` > `not` > comparison (`< <= > >= == !=`) > `+ -` > `* /` > unary `-` >
//! atoms: numbers (`1e-3`), column names, `"text"` (compared with string columns by `==` and
//! `!=`), `(…)`, and the functions `abs(x)`, `min(a, b)`, `max(a, b)`, `is_null(column)`.
//!
//! Nulls: a row where a column the expression reads is null gives null (the rule does not
//! apply to that row), except inside `is_null`. A rule passes a row when its expression is
//! true or null.
//!
//! Written by hand (about 300 lines) rather than with an expression crate: the language is
//! tiny, it must evaluate column-wise over Arrow arrays, and errors must name the rule.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, Result};

use crate::cols::to_f64;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    Str(String),
    Col(String),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Func {
    Abs,
    Min,
    Max,
    IsNull,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

fn lex(src: &str) -> std::result::Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let t = &src[start..i];
            out.push(Tok::Num(
                t.parse().map_err(|_| format!("bad number `{t}`"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
        } else if c == b'"' || c == b'\'' {
            let end = src[i + 1..]
                .find(c as char)
                .ok_or_else(|| "unterminated string".to_string())?;
            out.push(Tok::Str(src[i + 1..i + 1 + end].to_string()));
            i += end + 2;
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            let sym = match two {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "==" => Some("=="),
                "!=" => Some("!="),
                "&&" => Some("and"),
                "||" => Some("or"),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let one = match c {
                b'<' => "<",
                b'>' => ">",
                b'+' => "+",
                b'-' => "-",
                b'*' => "*",
                b'/' => "/",
                b'(' => "(",
                b')' => ")",
                b',' => ",",
                b'!' => "not",
                _ => return Err(format!("unexpected character `{}`", c as char)),
            };
            out.push(Tok::Sym(one));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn is_sym(&self, s: &str) -> bool {
        match self.peek() {
            Some(Tok::Sym(x)) => *x == s,
            Some(Tok::Ident(x)) => (s == "and" || s == "or" || s == "not") && x == s,
            _ => false,
        }
    }

    fn expect(&mut self, s: &str) -> std::result::Result<(), String> {
        if self.is_sym(s) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected `{s}`"))
        }
    }

    fn or(&mut self) -> std::result::Result<Expr, String> {
        let mut l = self.and()?;
        while self.is_sym("or") {
            self.at += 1;
            l = Expr::Bin(Op::Or, Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> std::result::Result<Expr, String> {
        let mut l = self.not()?;
        while self.is_sym("and") {
            self.at += 1;
            l = Expr::Bin(Op::And, Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }

    fn not(&mut self) -> std::result::Result<Expr, String> {
        if self.is_sym("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> std::result::Result<Expr, String> {
        let l = self.sum()?;
        for (s, op) in [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("==", Op::Eq),
            ("!=", Op::Ne),
        ] {
            if self.is_sym(s) {
                self.at += 1;
                return Ok(Expr::Bin(op, Box::new(l), Box::new(self.sum()?)));
            }
        }
        Ok(l)
    }

    fn sum(&mut self) -> std::result::Result<Expr, String> {
        let mut l = self.prod()?;
        loop {
            let op = if self.is_sym("+") {
                Op::Add
            } else if self.is_sym("-") {
                Op::Sub
            } else {
                return Ok(l);
            };
            self.at += 1;
            l = Expr::Bin(op, Box::new(l), Box::new(self.prod()?));
        }
    }

    fn prod(&mut self) -> std::result::Result<Expr, String> {
        let mut l = self.unary()?;
        loop {
            let op = if self.is_sym("*") {
                Op::Mul
            } else if self.is_sym("/") {
                Op::Div
            } else {
                return Ok(l);
            };
            self.at += 1;
            l = Expr::Bin(op, Box::new(l), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> std::result::Result<Expr, String> {
        if self.is_sym("-") {
            self.at += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> std::result::Result<Expr, String> {
        let t = self
            .peek()
            .cloned()
            .ok_or_else(|| "unexpected end of expression".to_string())?;
        self.at += 1;
        match t {
            Tok::Num(v) => Ok(Expr::Num(v)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if !self.is_sym("(") {
                    return Ok(Expr::Col(name));
                }
                self.at += 1;
                let f = match name.as_str() {
                    "abs" => Func::Abs,
                    "min" => Func::Min,
                    "max" => Func::Max,
                    "is_null" => Func::IsNull,
                    other => return Err(format!("unknown function `{other}`")),
                };
                let mut args = vec![self.or()?];
                while self.is_sym(",") {
                    self.at += 1;
                    args.push(self.or()?);
                }
                self.expect(")")?;
                let want = match f {
                    Func::Abs | Func::IsNull => 1,
                    Func::Min | Func::Max => 2,
                };
                if args.len() != want {
                    return Err(format!("`{name}` takes {want} argument(s)"));
                }
                if f == Func::IsNull && !matches!(args[0], Expr::Col(_)) {
                    return Err("`is_null` takes a column name".into());
                }
                Ok(Expr::Call(f, args))
            }
            Tok::Sym(s) => Err(format!("unexpected `{s}`")),
        }
    }
}

impl Expr {
    /// Parses `src`; errors say what is wrong (the caller adds the rule name).
    pub(crate) fn parse(src: &str) -> std::result::Result<Expr, String> {
        let mut p = Parser {
            toks: lex(src)?,
            at: 0,
        };
        let e = p.or()?;
        if p.at != p.toks.len() {
            return Err(format!(
                "unexpected {:?} after the expression",
                p.toks[p.at]
            ));
        }
        Ok(e)
    }

    /// Column names the expression reads.
    pub(crate) fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Col(c) => {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            Expr::Num(_) | Expr::Str(_) => {}
            Expr::Neg(e) | Expr::Not(e) => e.columns(out),
            Expr::Bin(_, a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.columns(out)),
        }
    }

    /// Evaluates the expression on every row of `chunk`: `Some(true)` passes, `Some(false)`
    /// fails, `None` does not apply. A column the chunk lacks makes every row `None`.
    pub(crate) fn eval(&self, chunk: &Chunk) -> Result<Vec<Option<bool>>> {
        let n = chunk.num_rows();
        Ok(match self.value(chunk)? {
            Val::Bool(v) => v,
            Val::Num(_) => {
                return Err(Error::Config {
                    key: "rule".into(),
                    message: "the expression is a number, not a condition".into(),
                });
            }
            Val::Str(_) | Val::Missing => vec![None; n],
        })
    }

    fn value(&self, chunk: &Chunk) -> Result<Val> {
        let n = chunk.num_rows();
        Ok(match self {
            Expr::Num(v) => Val::Num(vec![Some(*v); n]),
            Expr::Str(s) => Val::Str(vec![Some(s.clone()); n]),
            Expr::Col(c) => match chunk.column_by_name(c) {
                None => Val::Missing,
                Some(a) => column_value(a, c)?,
            },
            Expr::Neg(e) => match e.value(chunk)? {
                Val::Num(v) => Val::Num(v.into_iter().map(|x| x.map(|x| -x)).collect()),
                Val::Missing => Val::Missing,
                _ => return Err(type_err("`-` needs a number")),
            },
            Expr::Not(e) => match e.value(chunk)? {
                Val::Bool(v) => Val::Bool(v.into_iter().map(|x| x.map(|x| !x)).collect()),
                Val::Missing => Val::Missing,
                _ => return Err(type_err("`not` needs a condition")),
            },
            Expr::Call(Func::IsNull, args) => {
                let Expr::Col(c) = &args[0] else {
                    return Err(type_err("`is_null` takes a column name"));
                };
                match chunk.column_by_name(c) {
                    None => Val::Bool(vec![Some(true); n]),
                    Some(a) => Val::Bool((0..n).map(|i| Some(a.is_null(i))).collect()),
                }
            }
            Expr::Call(f, args) => {
                let vals: Vec<Val> = args.iter().map(|a| a.value(chunk)).collect::<Result<_>>()?;
                if vals.iter().any(|v| matches!(v, Val::Missing)) {
                    return Ok(Val::Missing);
                }
                let nums: Vec<Vec<Option<f64>>> = vals
                    .into_iter()
                    .map(|v| match v {
                        Val::Num(x) => Ok(x),
                        _ => Err(type_err("functions take numbers")),
                    })
                    .collect::<Result<_>>()?;
                Val::Num(match f {
                    Func::Abs => nums[0].iter().map(|x| x.map(f64::abs)).collect(),
                    Func::Min => zip_num(&nums[0], &nums[1], f64::min),
                    _ => zip_num(&nums[0], &nums[1], f64::max),
                })
            }
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.value(chunk)?, b.value(chunk)?);
                binary(*op, a, b)?
            }
        })
    }
}

/// A column's values or a computed vector, per row.
enum Val {
    Num(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
    Missing,
}

fn type_err(msg: &str) -> Error {
    Error::Config {
        key: "rule".into(),
        message: msg.into(),
    }
}

fn zip_num(a: &[Option<f64>], b: &[Option<f64>], f: impl Fn(f64, f64) -> f64) -> Vec<Option<f64>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Some(f(*x, *y)),
            _ => None,
        })
        .collect()
}

fn column_value(a: &ArrayRef, name: &str) -> Result<Val> {
    let n = a.len();
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Ok(Val::Str(s.iter().map(|v| v.map(str::to_string)).collect()))
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = a.as_dictionary::<Int32Type>();
            let vals = d.values().as_string::<i32>();
            Ok(Val::Str(
                (0..n)
                    .map(|i| {
                        if d.is_null(i) {
                            return None;
                        }
                        let k = d.keys().value(i) as usize;
                        (k < vals.len() && !vals.is_null(k)).then(|| vals.value(k).to_string())
                    })
                    .collect(),
            ))
        }
        DataType::Boolean => {
            let b = a.as_boolean();
            Ok(Val::Bool(b.iter().collect()))
        }
        _ => {
            let f = to_f64(a, name)?;
            Ok(Val::Num(f.iter().collect()))
        }
    }
}

fn binary(op: Op, a: Val, b: Val) -> Result<Val> {
    if matches!(a, Val::Missing) || matches!(b, Val::Missing) {
        return Ok(Val::Missing);
    }
    Ok(match (op, a, b) {
        (Op::And | Op::Or, Val::Bool(x), Val::Bool(y)) => Val::Bool(
            x.iter()
                .zip(&y)
                .map(|(p, q)| match (op, p, q) {
                    (Op::And, Some(false), _) | (Op::And, _, Some(false)) => Some(false),
                    (Op::Or, Some(true), _) | (Op::Or, _, Some(true)) => Some(true),
                    (Op::And, Some(true), Some(true)) => Some(true),
                    (Op::Or, Some(false), Some(false)) => Some(false),
                    _ => None,
                })
                .collect(),
        ),
        (Op::Add | Op::Sub | Op::Mul | Op::Div, Val::Num(x), Val::Num(y)) => {
            Val::Num(zip_num(&x, &y, |p, q| match op {
                Op::Add => p + q,
                Op::Sub => p - q,
                Op::Mul => p * q,
                _ => p / q,
            }))
        }
        (Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne, Val::Num(x), Val::Num(y)) => {
            Val::Bool(
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| match (p, q) {
                        (Some(p), Some(q)) => Some(match op {
                            Op::Lt => p < q,
                            Op::Le => p <= q,
                            Op::Gt => p > q,
                            Op::Ge => p >= q,
                            Op::Eq => p == q,
                            _ => p != q,
                        }),
                        _ => None,
                    })
                    .collect(),
            )
        }
        (Op::Eq | Op::Ne, Val::Str(x), Val::Str(y)) => Val::Bool(
            x.iter()
                .zip(&y)
                .map(|(p, q)| match (p, q) {
                    (Some(p), Some(q)) => Some((p == q) == (op == Op::Eq)),
                    _ => None,
                })
                .collect(),
        ),
        _ => {
            return Err(type_err(
                "operands do not fit the operator (numbers, conditions or text)",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch, StringArray};

    use super::*;

    fn chunk() -> Chunk {
        let b = RecordBatch::try_from_iter([
            (
                "bid",
                Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None])) as ArrayRef,
            ),
            (
                "ask",
                Arc::new(Float64Array::from(vec![Some(1.5), Some(1.0), Some(3.0)])) as ArrayRef,
            ),
            (
                "exchange",
                Arc::new(StringArray::from(vec!["Q", "D", "N"])) as ArrayRef,
            ),
        ])
        .unwrap();
        Chunk::with_first_line(b, 0, 0, 2).unwrap()
    }

    #[test]
    fn comparisons_arithmetic_and_nulls() {
        let c = chunk();
        let e = Expr::parse("bid <= ask").unwrap();
        assert_eq!(e.eval(&c).unwrap(), vec![Some(true), Some(false), None]);
        let e = Expr::parse("abs(ask - bid) * 2 < 1.5 and exchange != 'D'").unwrap();
        assert_eq!(e.eval(&c).unwrap(), vec![Some(true), Some(false), None]);
        let e = Expr::parse("not is_null(bid) or ask > 2.5").unwrap();
        assert_eq!(
            e.eval(&c).unwrap(),
            vec![Some(true), Some(true), Some(true)]
        );
        let e = Expr::parse("max(bid, 1.8) >= -(-2)").unwrap();
        assert_eq!(e.eval(&c).unwrap(), vec![Some(false), Some(true), None]);
        // A column the chunk lacks: the rule does not apply.
        let e = Expr::parse("volume > 0").unwrap();
        assert_eq!(e.eval(&c).unwrap(), vec![None; 3]);
        let mut cols = Vec::new();
        Expr::parse("bid < ask && ask < 2 * bid")
            .unwrap()
            .columns(&mut cols);
        assert_eq!(cols, ["bid", "ask"]);
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "bid <",
            "foo(bid)",
            "(bid",
            "bid < ask)",
            "abs(bid, ask)",
            "is_null(1)",
            "bid # 2",
            "'x",
        ] {
            assert!(Expr::parse(bad).is_err(), "{bad}");
        }
        let c = chunk();
        assert!(Expr::parse("bid + ask").unwrap().eval(&c).is_err());
        assert!(Expr::parse("exchange < 2").unwrap().eval(&c).is_err());
    }
}
