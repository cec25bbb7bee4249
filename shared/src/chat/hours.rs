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
//! - `timezone`: a fixed UTC offset (`"UTC"`, `"Z"`, `"GMT"`, `"+02:00"`, `"-05:30"`, `"+0530"`,
//!   `"+2"`, `"UTC+01:00"`), or an IANA name from a built-in table (no tz database is
//!   shipped). The table holds the standard offset of common zones and their daylight-saving
//!   rule — EU (last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC), US/Canada
//!   (second Sunday of March 02:00 local to first Sunday of November 02:00 local), Australia
//!   and New Zealand (southern summer) — using today's rules for every year. Missing means UTC.
//! - `enabled`: when absent, the hours are enabled if a `schedule` is given.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde_json::Value;

/// Used when the JSON has no (or an empty) outside-hours message.
pub const DEFAULT_OUTSIDE_MESSAGE: &str = "We're currently closed. Leave a message and a person will get back to you.";

const HOUR: i32 = 3600;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// How a zone's UTC offset is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Zone {
    /// Always this offset, in seconds east of UTC.
    Fixed(i32),
    /// Standard offset, plus one hour in EU summer time.
    Eu(i32),
    /// Standard offset, plus one hour in US/Canadian daylight time.
    Us(i32),
    /// Standard offset, plus one hour from the first Sunday of October to the first of April.
    Au(i32),
    /// Standard offset, plus one hour from the last Sunday of September to the first of April.
    Nz(i32),
}

const fn hm(hours: i32, minutes: i32) -> i32 {
    hours * HOUR + minutes * 60
}

/// Built-in IANA zones (matched ignoring ASCII case).
const ZONES: &[(&str, Zone)] = &[
    ("Etc/UTC", Zone::Fixed(0)),
    ("Etc/GMT", Zone::Fixed(0)),
    ("Europe/London", Zone::Eu(0)),
    ("Europe/Dublin", Zone::Eu(0)),
    ("Europe/Lisbon", Zone::Eu(0)),
    ("Atlantic/Reykjavik", Zone::Fixed(0)),
    ("Europe/Berlin", Zone::Eu(HOUR)),
    ("Europe/Paris", Zone::Eu(HOUR)),
    ("Europe/Madrid", Zone::Eu(HOUR)),
    ("Europe/Rome", Zone::Eu(HOUR)),
    ("Europe/Amsterdam", Zone::Eu(HOUR)),
    ("Europe/Brussels", Zone::Eu(HOUR)),
    ("Europe/Luxembourg", Zone::Eu(HOUR)),
    ("Europe/Vienna", Zone::Eu(HOUR)),
    ("Europe/Zurich", Zone::Eu(HOUR)),
    ("Europe/Stockholm", Zone::Eu(HOUR)),
    ("Europe/Oslo", Zone::Eu(HOUR)),
    ("Europe/Copenhagen", Zone::Eu(HOUR)),
    ("Europe/Warsaw", Zone::Eu(HOUR)),
    ("Europe/Prague", Zone::Eu(HOUR)),
    ("Europe/Budapest", Zone::Eu(HOUR)),
    ("Europe/Belgrade", Zone::Eu(HOUR)),
    ("Europe/Zagreb", Zone::Eu(HOUR)),
    ("Europe/Athens", Zone::Eu(2 * HOUR)),
    ("Europe/Helsinki", Zone::Eu(2 * HOUR)),
    ("Europe/Bucharest", Zone::Eu(2 * HOUR)),
    ("Europe/Sofia", Zone::Eu(2 * HOUR)),
    ("Europe/Kyiv", Zone::Eu(2 * HOUR)),
    ("Europe/Kiev", Zone::Eu(2 * HOUR)),
    ("Europe/Riga", Zone::Eu(2 * HOUR)),
    ("Europe/Vilnius", Zone::Eu(2 * HOUR)),
    ("Europe/Tallinn", Zone::Eu(2 * HOUR)),
    ("Europe/Istanbul", Zone::Fixed(3 * HOUR)),
    ("Europe/Moscow", Zone::Fixed(3 * HOUR)),
    ("America/New_York", Zone::Us(-5 * HOUR)),
    ("America/Detroit", Zone::Us(-5 * HOUR)),
    ("America/Toronto", Zone::Us(-5 * HOUR)),
    ("America/Chicago", Zone::Us(-6 * HOUR)),
    ("America/Winnipeg", Zone::Us(-6 * HOUR)),
    ("America/Denver", Zone::Us(-7 * HOUR)),
    ("America/Edmonton", Zone::Us(-7 * HOUR)),
    ("America/Phoenix", Zone::Fixed(-7 * HOUR)),
    ("America/Los_Angeles", Zone::Us(-8 * HOUR)),
    ("America/Vancouver", Zone::Us(-8 * HOUR)),
    ("America/Anchorage", Zone::Us(-9 * HOUR)),
    ("Pacific/Honolulu", Zone::Fixed(-10 * HOUR)),
    ("America/Halifax", Zone::Us(-4 * HOUR)),
    ("America/Mexico_City", Zone::Fixed(-6 * HOUR)),
    ("America/Bogota", Zone::Fixed(-5 * HOUR)),
    ("America/Lima", Zone::Fixed(-5 * HOUR)),
    ("America/Sao_Paulo", Zone::Fixed(-3 * HOUR)),
    ("America/Argentina/Buenos_Aires", Zone::Fixed(-3 * HOUR)),
    ("Africa/Lagos", Zone::Fixed(HOUR)),
    ("Africa/Cairo", Zone::Fixed(2 * HOUR)),
    ("Africa/Johannesburg", Zone::Fixed(2 * HOUR)),
    ("Africa/Nairobi", Zone::Fixed(3 * HOUR)),
    ("Asia/Dubai", Zone::Fixed(4 * HOUR)),
    ("Asia/Karachi", Zone::Fixed(5 * HOUR)),
    ("Asia/Kolkata", Zone::Fixed(hm(5, 30))),
    ("Asia/Calcutta", Zone::Fixed(hm(5, 30))),
    ("Asia/Dhaka", Zone::Fixed(6 * HOUR)),
    ("Asia/Bangkok", Zone::Fixed(7 * HOUR)),
    ("Asia/Jakarta", Zone::Fixed(7 * HOUR)),
    ("Asia/Ho_Chi_Minh", Zone::Fixed(7 * HOUR)),
    ("Asia/Singapore", Zone::Fixed(8 * HOUR)),
    ("Asia/Kuala_Lumpur", Zone::Fixed(8 * HOUR)),
    ("Asia/Shanghai", Zone::Fixed(8 * HOUR)),
    ("Asia/Hong_Kong", Zone::Fixed(8 * HOUR)),
    ("Asia/Taipei", Zone::Fixed(8 * HOUR)),
    ("Asia/Manila", Zone::Fixed(8 * HOUR)),
    ("Australia/Perth", Zone::Fixed(8 * HOUR)),
    ("Asia/Tokyo", Zone::Fixed(9 * HOUR)),
    ("Asia/Seoul", Zone::Fixed(9 * HOUR)),
    ("Australia/Brisbane", Zone::Fixed(10 * HOUR)),
    ("Australia/Adelaide", Zone::Au(hm(9, 30))),
    ("Australia/Sydney", Zone::Au(10 * HOUR)),
    ("Australia/Melbourne", Zone::Au(10 * HOUR)),
    ("Australia/Canberra", Zone::Au(10 * HOUR)),
    ("Australia/Hobart", Zone::Au(10 * HOUR)),
    ("Pacific/Auckland", Zone::Nz(12 * HOUR)),
];

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
        let zone = parse_zone(&timezone).ok_or_else(|| format!("business hours: unknown time zone \"{timezone}\""))?;

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

    /// The message for customers writing while closed.
    pub fn outside_message(&self) -> &str {
        &self.outside_message
    }

    /// The time zone as configured (`"UTC"` when none was given).
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The zone's offset from UTC at `at`, in seconds (east positive), daylight saving included.
    pub fn utc_offset_seconds(&self, at: DateTime<Utc>) -> i32 {
        offset_at(self.zone, at.timestamp(), at.year())
    }

    /// Local weekday (Monday = 0) and minute of the day at `at`.
    fn local_day_minute(&self, at: DateTime<Utc>) -> (usize, u16) {
        let local = at.timestamp() + i64::from(self.utc_offset_seconds(at));
        let days = local.div_euclid(86_400);
        let seconds = local.rem_euclid(86_400);
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let day = usize::try_from((days + 3).rem_euclid(7)).unwrap_or(0);
        let minute = u16::try_from(seconds / 60).unwrap_or(0);
        (day, minute)
    }
}

fn day_index(key: &str) -> Option<usize> {
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
    if start == MINUTES_PER_DAY {
        return Err("an interval cannot start at 24:00".to_string());
    }
    if start == end {
        return Err(format!("interval {v} is empty"));
    }
    // "24:00" ends the day; stored as 1440 so that start < end.
    Ok(Interval { start, end })
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, as minutes after midnight.
fn parse_time(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let bad = || format!("invalid time \"{t}\" (expected HH:MM)");
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

fn parse_zone(name: &str) -> Option<Zone> {
    let t = name.trim();
    if let Some(&(_, zone)) = ZONES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
        return Some(zone);
    }
    let upper = t.to_ascii_uppercase();
    if matches!(upper.as_str(), "UTC" | "GMT" | "Z" | "UCT" | "ZULU" | "UNIVERSAL" | "ETC/UCT" | "ETC/ZULU") {
        return Some(Zone::Fixed(0));
    }
    let offset = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
    parse_offset(offset.trim()).map(Zone::Fixed)
}

/// `+HH:MM`, `-HH:MM`, `+HHMM`, `+H` or `+HH`, at most 14 hours.
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

// --- Daylight saving ------------------------------------------------------------------------

fn offset_at(zone: Zone, ts: i64, year: i32) -> i32 {
    let (standard, dst) = match zone {
        Zone::Fixed(offset) => return offset,
        Zone::Eu(std) => (std, eu_dst(ts, year)),
        Zone::Us(std) => (std, us_dst(ts, year, std)),
        Zone::Au(std) => (std, southern_dst(ts, year, std, nth_sunday(year, 10, 1))),
        Zone::Nz(std) => (std, southern_dst(ts, year, std, last_sunday(year, 9))),
    };
    if dst.unwrap_or(false) {
        standard + HOUR
    } else {
        standard
    }
}

/// The `n`-th (1-based) Sunday of a month.
fn nth_sunday(year: i32, month: u32, n: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    NaiveDate::from_ymd_opt(year, month, 1 + to_sunday + 7 * (n - 1))
}

/// The last Sunday of a month.
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    (22..=31).rev().filter_map(|d| NaiveDate::from_ymd_opt(year, month, d)).find(|d| d.weekday() == Weekday::Sun)
}

/// The UTC timestamp of `hour`:00 local wall time on `date` at `offset` seconds east of UTC.
fn instant(date: Option<NaiveDate>, hour: u32, offset: i32) -> Option<i64> {
    Some(date?.and_hms_opt(hour, 0, 0)?.and_utc().timestamp() - i64::from(offset))
}

/// EU summer time: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
fn eu_dst(ts: i64, year: i32) -> Option<bool> {
    let start = instant(last_sunday(year, 3), 1, 0)?;
    let end = instant(last_sunday(year, 10), 1, 0)?;
    Some(start <= ts && ts < end)
}

/// US/Canada daylight time: second Sunday of March 02:00 local standard time to first Sunday
/// of November 02:00 local daylight time.
fn us_dst(ts: i64, year: i32, std: i32) -> Option<bool> {
    let start = instant(nth_sunday(year, 3, 2), 2, std)?;
    let end = instant(nth_sunday(year, 11, 1), 2, std + HOUR)?;
    Some(start <= ts && ts < end)
}

/// Southern-hemisphere daylight time: from `start` 02:00 local standard time to the first
/// Sunday of April 03:00 local daylight time, across the new year.
fn southern_dst(ts: i64, year: i32, std: i32, start: Option<NaiveDate>) -> Option<bool> {
    let end = instant(nth_sunday(year, 4, 1), 3, std + HOUR)?;
    let start = instant(start, 2, std)?;
    Some(ts < end || start <= ts)
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
        assert!(with("Etc/GMT+5", ok.clone()).is_err(), "POSIX-inverted sign is not guessed");
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
