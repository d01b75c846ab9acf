//! Panic payloads as text: readers and workers both turn a caught panic into a failure
//! message (so neither module depends on the other for it).

/// The text of a panic payload.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_string_and_other_payloads() {
        let a: Box<dyn std::any::Any + Send> = Box::new("boom");
        let b: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        let c: Box<dyn std::any::Any + Send> = Box::new(3u8);
        assert_eq!(panic_message(&a), "boom");
        assert_eq!(panic_message(&b), "bang");
        assert_eq!(panic_message(&c), "non-string panic payload");
    }
}
