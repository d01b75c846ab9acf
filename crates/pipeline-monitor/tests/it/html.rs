//! A small well-formedness check for the report: every element closed in order, attribute
//! values quoted, nothing fetched from elsewhere.

/// Elements HTML allows without a closing tag (those the report uses).
const VOID: [&str; 5] = ["meta", "br", "hr", "img", "input"];

/// Checks nesting and quoting; returns the element names opened, in order.
pub fn check_well_formed(html: &str) -> Result<Vec<String>, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut opened = Vec::new();
    let mut rest = html;
    let mut in_style = false;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        if in_style && !after.starts_with("/style") {
            rest = after;
            continue;
        }
        if let Some(c) = after.strip_prefix("!--") {
            let end = c.find("-->").ok_or("unclosed comment")?;
            rest = &c[end + 3..];
            continue;
        }
        let end = after.find('>').ok_or("unclosed tag")?;
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('!') {
            continue; // <!DOCTYPE html>
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            let top = stack.pop().ok_or(format!("</{name}> with nothing open"))?;
            if top != name {
                return Err(format!("</{name}> closes <{top}>"));
            }
            if name == "style" {
                in_style = false;
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() {
            return Err(format!("bad tag <{tag}>"));
        }
        // Attribute values are quoted: an even number of quotes, and no `=` followed by
        // anything but a quote.
        if !body.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        let mut in_q = false;
        let chars: Vec<char> = body.chars().collect();
        for (k, c) in chars.iter().enumerate() {
            if *c == '"' {
                in_q = !in_q;
            } else if *c == '=' && !in_q && chars.get(k + 1) != Some(&'"') {
                return Err(format!("unquoted attribute in <{tag}>"));
            }
        }
        for bad in ["src=", "href=", "url("] {
            if body.contains(bad) {
                return Err(format!("external reference in <{tag}>"));
            }
        }
        opened.push(name.clone());
        if name == "style" {
            in_style = true;
        }
        if !self_closing && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    Ok(opened)
}

#[test]
fn the_checker_finds_what_it_should() {
    assert!(check_well_formed("<div><p>x</p></div>").is_ok());
    assert!(check_well_formed("<div><p>x</div></p>").is_err());
    assert!(check_well_formed("<div>").is_err());
    assert!(check_well_formed("<a href=\"http://x\">x</a>").is_err());
    assert!(check_well_formed("<div class=x></div>").is_err());
    assert!(check_well_formed("<svg><rect x=\"1\"/></svg><meta charset=\"utf-8\"/>").is_ok());
    assert!(check_well_formed("<style>a>b{}</style>").is_ok());
}
