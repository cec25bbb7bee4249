//! Input parsed into domain types at the edge: a handler that holds an `Email` or a `Slug`
//! never re-checks it.

use serde::Serialize;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    /// A lower-cased address with one `@`, a dotted domain, no spaces, ≤ 254 characters.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim().to_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(s))
        } else {
            Err(ApiError::validation(format!("{field} must be a valid email address")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slug(String);

impl Slug {
    /// 2–100 characters of `a-z`, `0-9` and inner `-`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let ok = (2..=100).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::validation(format!("{field} must be 2-100 characters of a-z, 0-9 and inner hyphens")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A slug made from a display name ("Billing & Refunds" → "billing-refunds").
    pub fn from_name(name: &str) -> Self {
        let mut out = String::new();
        for c in name.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.truncate(100);
        let out = out.trim_end_matches('-').to_string();
        Self(if out.len() < 2 { format!("item-{out}").trim_end_matches('-').to_string() } else { out })
    }
}

/// Trimmed, non-empty text of at most `max` characters.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(ApiError::validation(format!("{field} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(ApiError::validation(format!("{field} must be at most {max} characters")));
    }
    Ok(t.to_string())
}

pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    raw.map(|r| text(field, r, max)).transpose()
}

/// `#rrggbb`.
pub fn color(field: &str, raw: &str) -> Result<String, ApiError> {
    let ok = raw.len() == 7 && raw.starts_with('#') && raw[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_lowercase())
    } else {
        Err(ApiError::validation(format!("{field} must be a #rrggbb colour")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse("email", " A@B.co ").unwrap().as_str(), "a@b.co");
        for bad in ["", "a", "a@b", "@b.co", "a b@c.co", "a@@b.co", "a@.co"] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_and_text() {
        assert!(Slug::parse("slug", "acme-2").is_ok());
        for bad in ["A", "a", "-a", "a-", "a_b", "ab c"] {
            assert!(Slug::parse("slug", bad).is_err(), "{bad}");
        }
        assert!(text("name", "  ", 10).is_err());
        assert!(text("name", "abcdefghijk", 10).is_err());
        assert_eq!(color("c", "#A0b1C2").unwrap(), "#a0b1c2");
        assert!(color("c", "red").is_err());
    }
}
