//! Agent business hours: whether a conversation arrives while the business is open.
//!
//! The agent's `business_hours` JSON:
//!
//! ```json
//! {"enabled": true, "timezone": "Europe/Berlin",
//!  "schedule": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "12:00"], ["13:00", "17:00"]],
//!               "fri": [["22:00", "02:00"]], "sat": []},
//!  "outsideHoursMessage": "We're closed, back Monday."}
//! ```
//!
//! - `schedule` maps days (`mon`..`sun`, or full names) to intervals of local `HH:MM` times,
//!   start inclusive, end exclusive; `"24:00"` may end a day. An interval whose end is not
//!   after its start crosses midnight (`["22:00", "02:00"]` on Friday is open Friday 22:00
//!   to Saturday 02:00). Missing days, `null` and `[]` are closed. An interval may also be
//!   written `"09:00-17:00"` or `{"open": "09:00", "close": "17:00"}`.
//! - `timezone`: an IANA zone of the tz database compiled in through chrono-tz
//!   (`"Europe/Berlin"`, `"America/New_York"`; matched exactly, else ignoring ASCII case), with
//!   its daylight-saving history and rules; or a fixed UTC offset (`"Z"`, `"+02:00"`,
//!   `"-05:30"`, `"+0530"`, `"+2"`, `"UTC+01:00"`, `"GMT-3"`). `"UTC"` and `"GMT"` are zones of
//!   the database. Missing means UTC. An unknown zone is an error.
//! - `enabled`: when absent, the hours are enabled if a `schedule` is given.
//!
//! Whether the business is open at an instant is decided on the local wall-clock time of that
//! instant, which is always well defined: local times skipped when clocks go forward never
//! occur (an interval starting in the gap opens at the first local time after it), and local
//! times repeated when clocks go back are open (or closed) both times.
//!
//! [`BusinessHours::from_json`] is the lenient reader of stored values (rows written before
//! values were checked on write); [`crate::agent_config`] checks a value before it is stored.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// Used when the JSON has no (or an empty) outside-hours message.
pub const DEFAULT_OUTSIDE_MESSAGE: &str = "We're currently closed. Leave a message and a person will get back to you.";

const HOUR: i32 = 3600;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// A time zone: an IANA zone of the tz database, or a fixed offset from UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// A zone of the tz database, daylight saving included.
    Named(Tz),
    /// Always this offset.
    Fixed(FixedOffset),
}

impl Zone {
    /// Parse a zone name: an IANA name (exact, else ignoring ASCII case) or a fixed offset
    /// (`"Z"`, `"+02:00"`, `"-0530"`, `"+2"`, `"UTC+01:00"`, `"GMT-3"`, at most 14 hours).
    /// `None` for anything else, an empty string included.
    pub fn parse(name: &str) -> Option<Zone> {
        let t = name.trim();
        if t.is_empty() {
            return None;
        }
        if let Ok(tz) = t.parse::<Tz>() {
            return Some(Zone::Named(tz));
        }
        if let Some(tz) = chrono_tz::TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(t)) {
            return Some(Zone::Named(*tz));
        }
        let upper = t.to_ascii_uppercase();
        if upper == "Z" {
            return FixedOffset::east_opt(0).map(Zone::Fixed);
        }
        let offset = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
        parse_offset(offset.trim()).and_then(FixedOffset::east_opt).map(Zone::Fixed)
    }

    /// The canonical name: the tz database's spelling of a named zone (`"Europe/Berlin"`),
    /// `"UTC"` for a zero offset, else `"+HH:MM"` / `"-HH:MM"`.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(offset) => {
                let seconds = offset.local_minus_utc();
                if seconds == 0 {
                    return "UTC".to_string();
                }
                let sign = if seconds < 0 { '-' } else { '+' };
                let abs = seconds.abs();
                format!("{sign}{:02}:{:02}", abs / HOUR, abs % HOUR / 60)
            }
        }
    }

    /// The offset from UTC at `at`, in seconds (east positive), daylight saving included.
    pub fn offset_seconds(&self, at: DateTime<Utc>) -> i32 {
        match self {
            Zone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc(),
            Zone::Fixed(offset) => offset.local_minus_utc(),
        }
    }

    /// The local wall-clock time at the instant `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Named(tz) => at.with_timezone(tz).naive_local(),
            Zone::Fixed(offset) => at.with_timezone(offset).naive_local(),
        }
    }
}

/// One open interval of a day, in minutes after local midnight; crosses midnight when
/// `end <= start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interval {
    start: u16,
    end: u16,
}

/// An agent's opening hours; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessHours {
    timezone: String,
    zone: Zone,
    /// Monday first.
    schedule: [Vec<Interval>; 7],
    outside_message: String,
}

impl BusinessHours {
    /// Read the agent's `business_hours` JSON. `Ok(None)` when absent (`null`, `{}`, not an
    /// object) or disabled; `Err` with a sentence for an unknown time zone, an unknown day or a
    /// malformed time, or when enabled without a `schedule`.
    pub fn from_json(v: &Value) -> Result<Option<Self>, String> {
        let Value::Object(obj) = v else { return Ok(None) };
        let schedule_json = obj.get("schedule").filter(|s| !s.is_null());
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => schedule_json.is_some(),
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("business hours: \"enabled\" must be true or false, not {other}")),
        };
        if !enabled {
            return Ok(None);
        }

        let timezone = ["timezone", "timeZone", "tz"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("UTC")
            .to_string();
        let zone = Zone::parse(&timezone).ok_or_else(|| format!("business hours: unknown time zone \"{timezone}\""))?;

        let Some(Value::Object(days)) = schedule_json else {
            return Err("business hours: enabled but \"schedule\" is missing or not an object".to_string());
        };
        let mut schedule: [Vec<Interval>; 7] = Default::default();
        for (key, value) in days {
            let day = day_index(key).ok_or_else(|| format!("business hours: unknown day \"{key}\""))?;
            let intervals = parse_day(value).map_err(|e| format!("business hours: {key}: {e}"))?;
            schedule[day].extend(intervals);
        }

        let outside_message = ["outsideHoursMessage", "outside_hours_message", "outsideMessage"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_OUTSIDE_MESSAGE)
            .to_string();

        Ok(Some(BusinessHours { timezone, zone, schedule, outside_message }))
    }

    /// Hours from already checked parts (see [`crate::agent_config::BusinessHoursConfig`]):
    /// `schedule` holds `(start, end)` minutes after local midnight per day, Monday first.
    pub(crate) fn from_parts(
        timezone: String,
        zone: Zone,
        schedule: [Vec<(u16, u16)>; 7],
        outside_message: Option<&str>,
    ) -> Self {
        let schedule: [Vec<Interval>; 7] =
            schedule.map(|day| day.into_iter().map(|(start, end)| Interval { start, end }).collect());
        let outside_message =
            outside_message.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_OUTSIDE_MESSAGE).to_string();
        BusinessHours { timezone, zone, schedule, outside_message }
    }

    /// Whether the business is open at the instant `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let (day, minute) = self.local_day_minute(at);
        let previous = (day + 6) % 7;
        let today = self.schedule[day].iter().any(|iv| {
            if iv.start < iv.end {
                (iv.start..iv.end).contains(&minute)
            } else {
                minute >= iv.start
            }
        });
        // The after-midnight part of yesterday's intervals that cross midnight.
        let spill = self.schedule[previous].iter().any(|iv| iv.end <= iv.start && minute < iv.end);
        today || spill
    }

    /// The schedule in words, for a prompt: `Mon 09:00-17:00; Tue 09:00-17:00; ... (Europe/Berlin)`;
    /// days without hours are left out.
    pub fn describe(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let days: Vec<String> = DAYS
            .iter()
            .zip(&self.schedule)
            .filter(|(_, intervals)| !intervals.is_empty())
            .map(|(day, intervals)| {
                let spans: Vec<String> =
                    intervals.iter().map(|iv| format!("{}-{}", format_time(iv.start), format_time(iv.end))).collect();
                format!("{day} {}", spans.join(", "))
            })
            .collect();
        format!("{} ({})", days.join("; "), self.timezone)
    }

    /// These hours with `message` for customers writing while closed (blank: kept as is).
    pub fn with_outside_message(mut self, message: &str) -> Self {
        if !message.trim().is_empty() {
            self.outside_message = message.trim().to_string();
        }
        self
    }

    /// The message for customers writing while closed.
    pub fn outside_message(&self) -> &str {
        &self.outside_message
    }

    /// The time zone as configured (`"UTC"` when none was given).
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The resolved time zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The zone's offset from UTC at `at`, in seconds (east positive), daylight saving included.
    pub fn utc_offset_seconds(&self, at: DateTime<Utc>) -> i32 {
        self.zone.offset_seconds(at)
    }

    /// Local weekday (Monday = 0) and minute of the day at `at`: the instant converted to
    /// local wall-clock time, which is always well defined (no local → UTC conversion, so no
    /// skipped or repeated local times to resolve).
    fn local_day_minute(&self, at: DateTime<Utc>) -> (usize, u16) {
        let local = self.zone.local(at);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
        (day, minute)
    }
}

/// The day (Monday = 0) of a schedule key: `mon`..`sun` or the full name (also `tues`,
/// `weds`, `thur`, `thurs`), ignoring case and surrounding white space.
pub(crate) fn day_index(key: &str) -> Option<usize> {
    match key.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Some(0),
        "tue" | "tues" | "tuesday" => Some(1),
        "wed" | "weds" | "wednesday" => Some(2),
        "thu" | "thur" | "thurs" | "thursday" => Some(3),
        "fri" | "friday" => Some(4),
        "sat" | "saturday" => Some(5),
        "sun" | "sunday" => Some(6),
        _ => None,
    }
}

/// A day's intervals: `null`/`false`/`[]`/`"closed"` (closed), `[["09:00","17:00"], ...]`,
/// a single `["09:00","17:00"]`, `"09:00-17:00"` or `{"open": .., "close": ..}`.
fn parse_day(v: &Value) -> Result<Vec<Interval>, String> {
    match v {
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("closed") => Ok(Vec::new()),
        Value::Array(items)
            if items.len() == 2 && items.iter().all(|i| i.as_str().is_some_and(|s| !s.contains('-'))) =>
        {
            Ok(vec![parse_interval(v)?])
        }
        Value::Array(items) => items.iter().map(parse_interval).collect(),
        Value::String(_) | Value::Object(_) => Ok(vec![parse_interval(v)?]),
        other => Err(format!("expected a list of [\"HH:MM\", \"HH:MM\"] intervals, not {other}")),
    }
}

fn parse_interval(v: &Value) -> Result<Interval, String> {
    let (start, end) = match v {
        Value::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
            (Some(a), Some(b)) => (a.to_string(), b.to_string()),
            _ => return Err(format!("interval times must be strings, not {v}")),
        },
        Value::String(s) => match s.split_once('-') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => return Err(format!("interval \"{s}\" is not \"HH:MM-HH:MM\"")),
        },
        Value::Object(o) => {
            let get = |keys: &[&str]| keys.iter().find_map(|k| o.get(*k).and_then(Value::as_str)).map(str::to_string);
            match (get(&["open", "start", "from"]), get(&["close", "end", "to"])) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(format!("interval {v} needs \"open\" and \"close\" times")),
            }
        }
        _ => return Err(format!("interval {v} is not [\"HH:MM\", \"HH:MM\"]")),
    };
    let start = parse_time(&start)?;
    let end = parse_time(&end)?;
    check_interval(start, end)?;
    // "24:00" ends the day; stored as 1440 so that start < end.
    Ok(Interval { start, end })
}

/// An interval may not start at 24:00 nor be empty (its end equal to its start).
pub(crate) fn check_interval(start: u16, end: u16) -> Result<(), String> {
    if start == MINUTES_PER_DAY {
        return Err("an interval cannot start at 24:00".to_string());
    }
    if start == end {
        return Err(format!("the interval {}-{} is empty", format_time(start), format_time(end)));
    }
    Ok(())
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, as minutes after midnight.
pub(crate) fn parse_time(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let bad = || format!("invalid time \"{t}\" (expected HH:MM, 00:00 to 24:00)");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let digits = |x: &str, max_len: usize| !x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Minutes after midnight as `HH:MM` (`"24:00"` for 1440).
pub(crate) fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `+HH:MM`, `-HH:MM`, `+HHMM`, `+H` or `+HH`, at most 14 hours, in seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, body) = if let Some(b) = s.strip_prefix('+') {
        (1, b)
    } else if let Some(b) = s.strip_prefix('-').or_else(|| s.strip_prefix('\u{2212}')) {
        (-1, b)
    } else {
        return None;
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match body.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None if body.len() == 4 => body.split_at(2),
        None if body.len() <= 2 => (body, "0"),
        None => return None,
    };
    if h.is_empty() || h.len() > 2 || m.contains(':') {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    let total = h * HOUR + m * 60;
    (m < 60 && total <= 14 * HOUR).then_some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339 test time")
    }

    fn hours(v: Value) -> BusinessHours {
        BusinessHours::from_json(&v).expect("valid business hours").expect("enabled business hours")
    }

    fn weekdays(tz: &str) -> BusinessHours {
        let day = json!([["09:00", "17:00"]]);
        hours(json!({
            "enabled": true,
            "timezone": tz,
            "schedule": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": [], "sun": null}
        }))
    }

    #[test]
    fn fixed_offset() {
        // 2024-01-15 is a Monday.
        let h = weekdays("+02:00");
        assert!(!h.is_open(at("2024-01-15T06:59:00Z")), "08:59 local");
        assert!(h.is_open(at("2024-01-15T07:00:00Z")), "09:00 local");
        assert!(h.is_open(at("2024-01-15T14:59:00Z")), "16:59 local");
        assert!(!h.is_open(at("2024-01-15T15:00:00Z")), "17:00 local, end exclusive");
        assert!(!h.is_open(at("2024-01-13T10:00:00Z")), "Saturday");
        assert!(!h.is_open(at("2024-01-14T10:00:00Z")), "Sunday");

        let india = weekdays("Asia/Kolkata");
        assert!(!india.is_open(at("2024-01-15T03:29:00Z")), "08:59 IST");
        assert!(india.is_open(at("2024-01-15T03:30:00Z")), "09:00 IST");

        let west = weekdays("-05:30");
        assert!(west.is_open(at("2024-01-15T14:30:00Z")), "09:00 local");
        assert!(!west.is_open(at("2024-01-15T14:29:00Z")));

        // A Monday-morning UTC instant that is still Sunday evening locally.
        assert!(!weekdays("-10:00").is_open(at("2024-01-15T02:00:00Z")));
    }

    #[test]
    fn utc_names() {
        for tz in ["UTC", "utc", "Z", "GMT", "Etc/UTC", "+00:00", "UTC+0"] {
            let h = weekdays(tz);
            assert_eq!(h.utc_offset_seconds(at("2024-07-01T12:00:00Z")), 0, "{tz}");
        }
        assert_eq!(weekdays("UTC+01:00").utc_offset_seconds(at("2024-07-01T12:00:00Z")), 3600);
        assert_eq!(weekdays("+0530").utc_offset_seconds(at("2024-07-01T12:00:00Z")), 19_800);
        assert_eq!(weekdays("-3").utc_offset_seconds(at("2024-07-01T12:00:00Z")), -10_800);
        let no_tz = hours(json!({"schedule": {"mon": [["09:00", "17:00"]]}}));
        assert_eq!(no_tz.timezone(), "UTC");
        assert!(no_tz.is_open(at("2024-01-15T09:00:00Z")));
    }

    #[test]
    fn berlin_daylight_saving() {
        let h = weekdays("Europe/Berlin");
        // July: CEST (+2). 2024-07-15 is a Monday.
        assert!(h.is_open(at("2024-07-15T07:30:00Z")), "09:30 CEST");
        assert!(!h.is_open(at("2024-07-15T15:30:00Z")), "17:30 CEST");
        // January: CET (+1).
        assert!(!h.is_open(at("2024-01-15T07:30:00Z")), "08:30 CET");
        assert!(h.is_open(at("2024-01-15T15:30:00Z")), "16:30 CET");
        // Transitions: 2024-03-31 and 2024-10-27 at 01:00 UTC.
        assert_eq!(h.utc_offset_seconds(at("2024-03-31T00:59:59Z")), 3600);
        assert_eq!(h.utc_offset_seconds(at("2024-03-31T01:00:00Z")), 7200);
        assert_eq!(h.utc_offset_seconds(at("2024-10-27T00:59:59Z")), 7200);
        assert_eq!(h.utc_offset_seconds(at("2024-10-27T01:00:00Z")), 3600);
        assert_eq!(weekdays("Europe/London").utc_offset_seconds(at("2024-07-15T12:00:00Z")), 3600);
        assert_eq!(weekdays("europe/athens").utc_offset_seconds(at("2024-01-15T12:00:00Z")), 7200);
    }

    #[test]
    fn tz_database_names() {
        // The tz database's POSIX-style zones have inverted signs: Etc/GMT+5 is UTC-5.
        assert_eq!(weekdays("Etc/GMT+5").utc_offset_seconds(at("2024-07-01T12:00:00Z")), -5 * 3600);
        assert_eq!(weekdays("GMT+5").utc_offset_seconds(at("2024-07-01T12:00:00Z")), 5 * 3600, "a plain offset");
        assert_eq!(weekdays("america/new_york").timezone(), "america/new_york", "as configured");
        assert_eq!(weekdays("america/new_york").zone(), Zone::Named(Tz::America__New_York));
        assert_eq!(weekdays("Asia/Kathmandu").utc_offset_seconds(at("2024-07-01T12:00:00Z")), 5 * 3600 + 45 * 60);
        assert_eq!(Zone::parse("europe/BERLIN").map(|z| z.name()), Some("Europe/Berlin".to_string()));
        assert_eq!(Zone::parse("UTC+01:00").map(|z| z.name()), Some("+01:00".to_string()));
        assert_eq!(Zone::parse("-0530").map(|z| z.name()), Some("-05:30".to_string()));
        assert_eq!(Zone::parse("Z").map(|z| z.name()), Some("UTC".to_string()));
        assert_eq!(Zone::parse("utc").map(|z| z.name()), Some("UTC".to_string()));
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        assert_eq!(Zone::parse(""), None);
        assert_eq!(Zone::parse("+14:30"), None);
    }

    #[test]
    fn berlin_2026_transitions() {
        let h = weekdays("Europe/Berlin");
        // 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        assert_eq!(h.utc_offset_seconds(at("2026-03-29T00:59:59Z")), 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-03-29T01:00:00Z")), 7200);
        // 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET.
        assert_eq!(h.utc_offset_seconds(at("2026-10-25T00:59:59Z")), 7200);
        assert_eq!(h.utc_offset_seconds(at("2026-10-25T01:00:00Z")), 3600);
        // The Mondays either side of each change (09:00 local is 08:00 UTC in winter, 07:00 in summer).
        assert!(!h.is_open(at("2026-03-23T07:30:00Z")), "08:30 CET");
        assert!(h.is_open(at("2026-03-23T08:00:00Z")), "09:00 CET");
        assert!(h.is_open(at("2026-03-30T07:00:00Z")), "09:00 CEST");
        assert!(!h.is_open(at("2026-03-30T15:00:00Z")), "17:00 CEST");
        assert!(h.is_open(at("2026-10-19T07:00:00Z")), "09:00 CEST");
        assert!(!h.is_open(at("2026-10-26T07:30:00Z")), "08:30 CET");
        assert!(h.is_open(at("2026-10-26T15:30:00Z")), "16:30 CET");
    }

    #[test]
    fn skipped_and_repeated_local_times() {
        // Sunday 2026-03-29 in Berlin has no 02:00-03:00; an interval starting in the gap opens
        // at 03:00 CEST, the first local time after it.
        let spring = hours(json!({"timezone": "Europe/Berlin", "schedule": {"sun": [["02:30", "03:30"]]}}));
        assert!(!spring.is_open(at("2026-03-29T00:59:00Z")), "01:59 CET");
        assert!(spring.is_open(at("2026-03-29T01:00:00Z")), "03:00 CEST");
        assert!(spring.is_open(at("2026-03-29T01:29:00Z")), "03:29 CEST");
        assert!(!spring.is_open(at("2026-03-29T01:30:00Z")), "03:30 CEST");
        // Sunday 2026-10-25 has 02:00-03:00 twice (CEST, then CET): open both times.
        let autumn = hours(json!({"timezone": "Europe/Berlin", "schedule": {"sun": [["02:00", "03:00"]]}}));
        assert!(!autumn.is_open(at("2026-10-24T23:59:00Z")), "01:59 CEST");
        assert!(autumn.is_open(at("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(autumn.is_open(at("2026-10-25T01:30:00Z")), "02:30 CET");
        assert!(!autumn.is_open(at("2026-10-25T02:00:00Z")), "03:00 CET");
    }

    #[test]
    fn new_york_2026_transitions() {
        let h = weekdays("America/New_York");
        // 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT.
        assert_eq!(h.utc_offset_seconds(at("2026-03-08T06:59:59Z")), -5 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-03-08T07:00:00Z")), -4 * 3600);
        // 2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST.
        assert_eq!(h.utc_offset_seconds(at("2026-11-01T05:59:59Z")), -4 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-11-01T06:00:00Z")), -5 * 3600);
        assert!(!h.is_open(at("2026-03-02T13:00:00Z")), "Mon 08:00 EST");
        assert!(h.is_open(at("2026-03-09T13:00:00Z")), "Mon 09:00 EDT");
        assert!(h.is_open(at("2026-10-26T13:00:00Z")), "Mon 09:00 EDT");
        assert!(!h.is_open(at("2026-11-02T13:00:00Z")), "Mon 08:00 EST");
        assert!(h.is_open(at("2026-11-02T14:00:00Z")), "Mon 09:00 EST");
    }

    #[test]
    fn cairo_summer_time() {
        // Egypt has kept summer time again since 2023: last Friday of April 00:00 to the end of
        // the last Thursday of October (24:00), EET (+2) to EEST (+3).
        let h = weekdays("Africa/Cairo");
        assert!(h.is_open(at("2026-07-15T06:30:00Z")), "Wed 09:30 EEST");
        assert!(!h.is_open(at("2026-01-15T06:30:00Z")), "Thu 08:30 EET");
        assert!(h.is_open(at("2026-01-15T07:00:00Z")), "Thu 09:00 EET");
        assert_eq!(h.utc_offset_seconds(at("2026-07-15T06:30:00Z")), 3 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-01-15T06:30:00Z")), 2 * 3600);
        // 2026: from Friday 24 April 00:00 EET (Thursday 22:00 UTC) to Thursday 29 October
        // 24:00 EEST (21:00 UTC); an hour either side.
        assert_eq!(h.utc_offset_seconds(at("2026-04-23T21:00:00Z")), 2 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-04-23T23:00:00Z")), 3 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-10-29T20:00:00Z")), 3 * 3600);
        assert_eq!(h.utc_offset_seconds(at("2026-10-29T22:00:00Z")), 2 * 3600);
    }

    #[test]
    fn from_checked_parts() {
        let schedule = [vec![(540, 1020)], Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let zone = Zone::parse("Europe/Berlin").expect("known zone");
        let h = BusinessHours::from_parts("Europe/Berlin".to_string(), zone, schedule, Some("  "));
        assert_eq!(h.outside_message(), DEFAULT_OUTSIDE_MESSAGE);
        assert!(h.is_open(at("2026-03-30T07:00:00Z")), "Mon 09:00 CEST");
        assert!(!h.is_open(at("2026-03-31T07:00:00Z")), "Tue");
        assert_eq!(h, weekdays_only_monday());
    }

    fn weekdays_only_monday() -> BusinessHours {
        hours(json!({"timezone": "Europe/Berlin", "schedule": {"mon": "09:00-17:00"}}))
    }

    #[test]
    fn us_and_southern_daylight_saving() {
        let ny = weekdays("America/New_York");
        // 2024-03-10 02:00 EST = 07:00 UTC; 2024-11-03 02:00 EDT = 06:00 UTC.
        assert_eq!(ny.utc_offset_seconds(at("2024-03-10T06:59:59Z")), -5 * 3600);
        assert_eq!(ny.utc_offset_seconds(at("2024-03-10T07:00:00Z")), -4 * 3600);
        assert_eq!(ny.utc_offset_seconds(at("2024-11-03T05:59:59Z")), -4 * 3600);
        assert_eq!(ny.utc_offset_seconds(at("2024-11-03T06:00:00Z")), -5 * 3600);
        assert!(ny.is_open(at("2024-07-15T13:00:00Z")), "09:00 EDT");
        assert!(!ny.is_open(at("2024-01-15T13:00:00Z")), "08:00 EST");
        let la = weekdays("America/Los_Angeles");
        assert_eq!(la.utc_offset_seconds(at("2024-07-15T12:00:00Z")), -7 * 3600);

        let sydney = weekdays("Australia/Sydney");
        assert_eq!(sydney.utc_offset_seconds(at("2024-07-15T00:00:00Z")), 10 * 3600);
        assert_eq!(sydney.utc_offset_seconds(at("2024-01-15T00:00:00Z")), 11 * 3600);
        // 2024-04-07 03:00 AEDT = 2024-04-06 16:00 UTC; 2024-10-06 02:00 AEST = 2024-10-05 16:00 UTC.
        assert_eq!(sydney.utc_offset_seconds(at("2024-04-06T15:59:59Z")), 11 * 3600);
        assert_eq!(sydney.utc_offset_seconds(at("2024-04-06T16:00:00Z")), 10 * 3600);
        assert_eq!(sydney.utc_offset_seconds(at("2024-10-05T15:59:59Z")), 10 * 3600);
        assert_eq!(sydney.utc_offset_seconds(at("2024-10-05T16:00:00Z")), 11 * 3600);
        assert_eq!(weekdays("Asia/Tokyo").utc_offset_seconds(at("2024-07-15T00:00:00Z")), 9 * 3600);
    }

    #[test]
    fn across_midnight() {
        // 2024-01-19 is a Friday.
        let h = hours(json!({
            "enabled": true,
            "timezone": "UTC",
            "schedule": {"fri": [["22:00", "02:00"]], "sun": [["23:00", "24:00"]]}
        }));
        assert!(!h.is_open(at("2024-01-19T21:59:00Z")), "Fri 21:59");
        assert!(h.is_open(at("2024-01-19T22:00:00Z")), "Fri 22:00");
        assert!(h.is_open(at("2024-01-19T23:59:00Z")), "Fri 23:59");
        assert!(h.is_open(at("2024-01-20T01:59:00Z")), "Sat 01:59");
        assert!(!h.is_open(at("2024-01-20T02:00:00Z")), "Sat 02:00");
        assert!(!h.is_open(at("2024-01-18T23:00:00Z")), "Thu 23:00");
        assert!(!h.is_open(at("2024-01-20T23:00:00Z")), "Sat 23:00");
        assert!(h.is_open(at("2024-01-21T23:30:00Z")), "Sun 23:30");
        assert!(!h.is_open(at("2024-01-22T00:00:00Z")), "Mon 00:00");

        let sunday_night = hours(json!({"timezone": "UTC", "schedule": {"sun": "22:00-02:00"}}));
        assert!(sunday_night.is_open(at("2024-01-22T01:00:00Z")), "wraps into Monday");
        assert!(!sunday_night.is_open(at("2024-01-15T23:00:00Z")), "Monday night");
    }

    #[test]
    fn schedule_shapes() {
        let h = hours(json!({
            "timezone": "UTC",
            "schedule": {
                "Monday": [["09:00", "12:00"], ["13:00", "17:00"]],
                "tue": ["09:00", "17:00"],
                "wed": "9:00-17:00",
                "thu": {"open": "09:00", "close": "17:00"},
                "fri": ["09:00-12:00", "13:00-17:00"],
                "sat": "closed",
                "sun": false
            }
        }));
        assert!(h.is_open(at("2024-01-15T11:00:00Z")), "Mon");
        assert!(!h.is_open(at("2024-01-15T12:30:00Z")), "Mon lunch");
        assert!(h.is_open(at("2024-01-16T16:00:00Z")), "Tue");
        assert!(h.is_open(at("2024-01-17T09:00:00Z")), "Wed");
        assert!(h.is_open(at("2024-01-18T10:00:00Z")), "Thu");
        assert!(!h.is_open(at("2024-01-19T12:30:00Z")), "Fri lunch");
        assert!(h.is_open(at("2024-01-19T13:30:00Z")), "Fri");
        assert!(!h.is_open(at("2024-01-20T10:00:00Z")), "Sat");
        assert!(!h.is_open(at("2024-01-21T10:00:00Z")), "Sun");
        let all_day = hours(json!({"schedule": {"sat": [["00:00", "24:00"]]}}));
        assert!(all_day.is_open(at("2024-01-20T00:00:00Z")));
        assert!(all_day.is_open(at("2024-01-20T23:59:59Z")));
        assert!(!all_day.is_open(at("2024-01-21T00:00:00Z")));
    }

    #[test]
    fn disabled_or_absent() {
        assert_eq!(BusinessHours::from_json(&Value::Null), Ok(None));
        assert_eq!(BusinessHours::from_json(&json!({})), Ok(None));
        assert_eq!(BusinessHours::from_json(&json!({"enabled": false})), Ok(None));
        let off = json!({"enabled": false, "timezone": "Mars/Olympus", "schedule": {"mon": [["09:00", "17:00"]]}});
        assert_eq!(BusinessHours::from_json(&off), Ok(None));
    }

    #[test]
    fn errors() {
        let with = |tz: &str, mon: Value| {
            BusinessHours::from_json(&json!({"enabled": true, "timezone": tz, "schedule": {"mon": mon}}))
        };
        let ok = json!([["09:00", "17:00"]]);
        assert!(with("Mars/Olympus", ok.clone()).is_err());
        assert!(with("+15:00", ok.clone()).is_err());
        assert!(with("+02:60", ok.clone()).is_err());
        assert!(with("UTC", ok).is_ok());
        for bad in [
            json!([["25:00", "26:00"]]),
            json!([["9:60", "17:00"]]),
            json!([["09:00", "24:30"]]),
            json!([["24:00", "02:00"]]),
            json!([["9", "17"]]),
            json!([["09:00", "09:00"]]),
            json!([["09:00"]]),
            json!([[9, 17]]),
            json!(42),
        ] {
            assert!(with("UTC", bad.clone()).is_err(), "{bad}");
        }
        assert!(BusinessHours::from_json(&json!({"enabled": true, "schedule": {"funday": []}})).is_err());
        assert!(BusinessHours::from_json(&json!({"enabled": true})).is_err());
        assert!(BusinessHours::from_json(&json!({"enabled": "yes", "schedule": {}})).is_err());
    }

    #[test]
    fn outside_message() {
        let h = weekdays("UTC");
        assert_eq!(h.outside_message(), DEFAULT_OUTSIDE_MESSAGE);
        let custom = hours(json!({"schedule": {}, "outsideHoursMessage": "  Back at 9.  "}));
        assert_eq!(custom.outside_message(), "Back at 9.");
        let blank = hours(json!({"schedule": {}, "outsideHoursMessage": ""}));
        assert_eq!(blank.outside_message(), DEFAULT_OUTSIDE_MESSAGE);
        assert!(!blank.is_open(at("2024-01-15T12:00:00Z")), "an empty schedule is always closed");
    }
}
