//! Input parsed into domain types at the edge: a handler that holds an `Email` or a `Slug`
//! never re-checks it. Both deserialise through their check (`try_from`), so a request body
//! field of their type is refused while the body is parsed (400 `validation_failed`).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Why a value is not of its domain type; serde reports it as the body's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(&'static str);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

/// A lower-cased address with one `@`, a dotted domain, no spaces, ≤ 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = Invalid;

    fn try_from(raw: String) -> Result<Self, Invalid> {
        let s = raw.trim().to_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(s))
        } else {
            Err(Invalid("invalid email address: expected one @, a dotted domain, no spaces, at most 254 characters"))
        }
    }
}

impl Email {
    /// For a value not read through serde; `field` names it in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        Self::try_from(raw.to_string())
            .map_err(|_| ApiError::validation(format!("{field} must be a valid email address")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 2–100 characters of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Slug(String);

impl TryFrom<String> for Slug {
    type Error = Invalid;

    fn try_from(raw: String) -> Result<Self, Invalid> {
        let ok = (2..=100).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw))
        } else {
            Err(Invalid("invalid slug: expected 2-100 characters of a-z, 0-9 and inner hyphens"))
        }
    }
}

impl Slug {
    /// For a value not read through serde; `field` names it in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        Self::try_from(raw.to_string()).map_err(|_| {
            ApiError::validation(format!("{field} must be 2-100 characters of a-z, 0-9 and inner hyphens"))
        })
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

/// A currency code: three capital letters (ISO 4217).
pub fn currency(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::validation("currency must be three capital letters (ISO 4217), e.g. USD"))
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
        // Through serde, as a request body field.
        assert_eq!(serde_json::from_str::<Email>(r#"" A@B.co ""#).unwrap().as_str(), "a@b.co");
        let e = serde_json::from_str::<Email>(r#""a@b""#).unwrap_err().to_string();
        assert!(e.starts_with("invalid email address"), "{e}");
        assert!(serde_json::from_str::<Slug>(r#""Bad Slug""#).is_err());
        assert_eq!(serde_json::from_str::<Slug>(r#""acme-2""#).unwrap().as_str(), "acme-2");
        assert!(text("name", "  ", 10).is_err());
        assert!(text("name", "abcdefghijk", 10).is_err());
        assert_eq!(color("c", "#A0b1C2").unwrap(), "#a0b1c2");
        assert!(color("c", "red").is_err());
    }
}
