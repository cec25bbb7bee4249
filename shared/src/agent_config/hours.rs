//! `business_hours`: when the business is open, in which time zone (see [`crate::chat::hours`]).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{Column, ColumnConfig, ConfigError, FieldError};
use crate::chat::hours::{check_interval, day_index, format_time, parse_time, BusinessHours, Zone};

/// The longest outside-hours message, in characters.
const MAX_MESSAGE_CHARS: usize = crate::chat::turn::MAX_MESSAGE_CHARS;

/// The canonical day keys, Monday first.
const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The agent's `business_hours`, e.g.
///
/// ```json
/// {"enabled": true, "timezone": "Europe/Berlin",
///  "schedule": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "12:00"], ["13:00", "17:00"]],
///               "fri": [["22:00", "02:00"]], "sat": []},
///  "outsideHoursMessage": "We're closed, back Monday."}
/// ```
///
/// Accepted as [`BusinessHours::from_json`] reads it: `timeZone` and `tz` for `timezone`,
/// `outside_hours_message` and `outsideMessage` for `outsideHoursMessage`; days as `mon`..`sun`
/// or full names (any case); a day as a list of intervals, one `["09:00", "17:00"]` pair,
/// `"09:00-17:00"`, `{"open": "09:00", "close": "17:00"}` (or `start`/`end`, `from`/`to`), or
/// closed (`[]`, `null`, `false`, `"closed"`). Stored normalised: the zone as the tz database
/// spells it (a fixed offset as `+HH:MM`, zero as `UTC`), days as `mon`..`sun`, each a list of
/// `["HH:MM", "HH:MM"]` pairs, text trimmed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BusinessHoursConfig {
    /// When absent, the hours are enabled if a schedule is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// An IANA zone (`Europe/Berlin`) or a fixed offset (`+02:00`); absent means UTC.
    #[serde(default, alias = "timeZone", alias = "tz", skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Days (`mon`..`sun`) to their open intervals, `[["09:00", "17:00"]]`; a day absent or
    /// `[]` is closed, and an interval may run past midnight (`["22:00", "02:00"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, Vec<Vec<String>>>>)]
    pub schedule: Option<Schedule>,
    /// Sent to customers writing while closed.
    #[serde(
        default,
        alias = "outside_hours_message",
        alias = "outsideMessage",
        skip_serializing_if = "Option::is_none"
    )]
    pub outside_hours_message: Option<String>,
}

impl ColumnConfig for BusinessHoursConfig {
    const COLUMN: Column = Column::BusinessHours;

    fn validate(&self) -> Result<(), FieldError> {
        if let Some(tz) = self.timezone.as_deref().filter(|tz| !tz.trim().is_empty()) {
            if Zone::parse(tz).is_none() {
                return Err(FieldError::new(
                    "timezone",
                    format!(
                        "unknown time zone \"{}\" (an IANA name such as \"Europe/Berlin\", or an offset such as \
                         \"+02:00\")",
                        tz.trim()
                    ),
                ));
            }
        }
        // Intervals read from JSON are checked as they are read; these may be built in code.
        if let Some(schedule) = &self.schedule {
            for (key, intervals) in DAY_KEYS.iter().zip(&schedule.days) {
                for (i, iv) in intervals.iter().flatten().enumerate() {
                    check_interval(iv.start.0, iv.end.0)
                        .map_err(|e| FieldError::new(format!("schedule.{key}[{i}]"), e))?;
                }
            }
        }
        if self.enabled == Some(true) && self.schedule.is_none() {
            return Err(FieldError::new("schedule", "must be given when business hours are enabled"));
        }
        if let Some(message) = &self.outside_hours_message {
            if message.trim().chars().count() > MAX_MESSAGE_CHARS {
                return Err(FieldError::new(
                    "outsideHoursMessage",
                    format!("must be at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }

    fn normalized(self) -> Self {
        let timezone = self.timezone.as_deref().and_then(Zone::parse).map(|z| z.name());
        BusinessHoursConfig { timezone, outside_hours_message: super::trimmed(self.outside_hours_message), ..self }
    }
}

impl BusinessHoursConfig {
    /// Whether the hours apply: `enabled`, or when absent, whether a schedule is given.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(self.schedule.is_some())
    }

    /// The hours the chat turn checks; `None` when disabled.
    pub fn to_business_hours(&self) -> Result<Option<BusinessHours>, ConfigError> {
        self.validate().map_err(|e| e.under(Column::BusinessHours))?;
        if !self.is_enabled() {
            return Ok(None);
        }
        let name = self.timezone.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("UTC");
        let zone = Zone::parse(name)
            .ok_or_else(|| FieldError::new("timezone", "unknown time zone").under(Column::BusinessHours))?;
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        if let Some(schedule) = &self.schedule {
            for (day, intervals) in days.iter_mut().zip(&schedule.days) {
                *day = intervals.iter().flatten().map(|iv| (iv.start.minutes(), iv.end.minutes())).collect();
            }
        }
        Ok(Some(BusinessHours::from_parts(name.to_string(), zone, days, self.outside_hours_message.as_deref())))
    }
}

/// A local time of day, `00:00` to `24:00` (which may only end an interval); written `HH:MM`
/// (`H:MM` is read too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u16);

impl Time {
    /// Parse `HH:MM` or `H:MM`, `00:00` to `24:00`.
    pub fn parse(s: &str) -> Result<Time, String> {
        parse_time(s).map(Time)
    }

    /// Minutes after midnight (1440 for 24:00).
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&format_time(self.0))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;

        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = Time;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a time \"HH:MM\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Time, E> {
                Time::parse(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(TimeVisitor)
    }
}

/// One opening interval, start inclusive, end exclusive; it crosses midnight when the end is
/// not after the start (`22:00`-`02:00`). Stored as `["HH:MM", "HH:MM"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: Time,
    pub end: Time,
}

impl Interval {
    /// An interval; it may not start at 24:00 nor be empty.
    pub fn new(start: Time, end: Time) -> Result<Interval, String> {
        check_interval(start.0, end.0)?;
        Ok(Interval { start, end })
    }

    /// `"HH:MM-HH:MM"`.
    fn parse_range(s: &str) -> Result<Interval, String> {
        let (start, end) = s.split_once('-').ok_or_else(|| format!("\"{}\" is not \"HH:MM-HH:MM\"", s.trim()))?;
        Interval::new(Time::parse(start)?, Time::parse(end)?)
    }

    /// `{"open": "HH:MM", "close": "HH:MM"}`, or `start`/`end`, `from`/`to`.
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Interval, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct OpenClose {
            #[serde(alias = "start", alias = "from")]
            open: Time,
            #[serde(alias = "end", alias = "to")]
            close: Time,
        }

        let times = OpenClose::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Interval::new(times.open, times.close).map_err(de::Error::custom)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.start, self.end).serialize(serializer)
    }
}

/// The weekly schedule: each day's intervals, Monday first. A day not given is closed (and
/// stays absent when stored); a day given as closed is stored as `[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub days: [Option<Vec<Interval>>; 7],
}

impl Schedule {
    /// The intervals of a day (Monday = 0); empty when closed.
    pub fn day(&self, index: usize) -> &[Interval] {
        self.days.get(index).and_then(Option::as_deref).unwrap_or(&[])
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.days.iter().flatten().count()))?;
        for (key, intervals) in DAY_KEYS.iter().zip(&self.days) {
            if let Some(intervals) = intervals {
                map.serialize_entry(key, intervals)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScheduleVisitor;

        impl<'de> Visitor<'de> for ScheduleVisitor {
            type Value = Schedule;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of days (\"mon\" to \"sun\") and their intervals")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Schedule, A::Error> {
                let mut schedule = Schedule::default();
                while let Some(DayKey(day)) = map.next_key()? {
                    let DaySpec(intervals) = map.next_value()?;
                    // "mon" and "monday" both given: the day has the intervals of both.
                    schedule.days[day].get_or_insert_with(Vec::new).extend(intervals);
                }
                Ok(schedule)
            }
        }

        deserializer.deserialize_map(ScheduleVisitor)
    }
}

/// A schedule key: `mon`..`sun` or a full day name, any case.
struct DayKey(usize);

impl<'de> Deserialize<'de> for DayKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DayKeyVisitor;

        impl<'de> Visitor<'de> for DayKeyVisitor {
            type Value = DayKey;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a day, \"mon\" to \"sun\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<DayKey, E> {
                day_index(s).map(DayKey).ok_or_else(|| {
                    E::custom(format!(
                        "unknown day `{s}`, expected mon, tue, wed, thu, fri, sat or sun (or the full name)"
                    ))
                })
            }
        }

        deserializer.deserialize_str(DayKeyVisitor)
    }
}

/// A day's intervals as written: closed, one interval, or a list of them.
struct DaySpec(Vec<Interval>);

impl<'de> Deserialize<'de> for DaySpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DayVisitor;

        impl<'de> Visitor<'de> for DayVisitor {
            type Value = DaySpec;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a list of [\"HH:MM\", \"HH:MM\"] intervals, one interval (\"HH:MM-HH:MM\", \
                     [\"HH:MM\", \"HH:MM\"] or {\"open\": \"HH:MM\", \"close\": \"HH:MM\"}), or \"closed\"",
                )
            }

            fn visit_unit<E: de::Error>(self) -> Result<DaySpec, E> {
                Ok(DaySpec(Vec::new()))
            }

            fn visit_none<E: de::Error>(self) -> Result<DaySpec, E> {
                Ok(DaySpec(Vec::new()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<DaySpec, E> {
                if v {
                    Err(E::invalid_value(de::Unexpected::Bool(true), &self))
                } else {
                    Ok(DaySpec(Vec::new()))
                }
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<DaySpec, E> {
                let t = s.trim();
                if t.is_empty() || t.eq_ignore_ascii_case("closed") {
                    return Ok(DaySpec(Vec::new()));
                }
                Interval::parse_range(t).map(|iv| DaySpec(vec![iv])).map_err(E::custom)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DaySpec, A::Error> {
                let mut slots = Vec::new();
                while let Some(slot) = seq.next_element::<Slot>()? {
                    slots.push(slot);
                }
                // `["09:00", "17:00"]`: one interval.
                if let [Slot::Time(start), Slot::Time(end)] = slots.as_slice() {
                    return Interval::new(*start, *end).map(|iv| DaySpec(vec![iv])).map_err(de::Error::custom);
                }
                slots
                    .into_iter()
                    .map(|slot| match slot {
                        Slot::Interval(iv) => Ok(iv),
                        Slot::Time(t) => Err(<A::Error as de::Error>::custom(format!(
                            "\"{t}\" is a single time, not an interval: write [\"HH:MM\", \"HH:MM\"] or \"HH:MM-HH:MM\""
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(DaySpec)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DaySpec, A::Error> {
                Interval::from_map(map).map(|iv| DaySpec(vec![iv]))
            }
        }

        deserializer.deserialize_any(DayVisitor)
    }
}

/// An element of a day's list: an interval, or a bare time (two of which make a pair).
enum Slot {
    Time(Time),
    Interval(Interval),
}

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SlotVisitor;

        impl<'de> Visitor<'de> for SlotVisitor {
            type Value = Slot;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an interval ([\"HH:MM\", \"HH:MM\"], \"HH:MM-HH:MM\" or \
                     {\"open\": \"HH:MM\", \"close\": \"HH:MM\"})",
                )
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Slot, E> {
                if s.contains('-') {
                    Interval::parse_range(s).map(Slot::Interval).map_err(E::custom)
                } else {
                    Time::parse(s).map(Slot::Time).map_err(E::custom)
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Slot, A::Error> {
                let pair = "an interval is two times, [\"HH:MM\", \"HH:MM\"]";
                let start: Time = seq.next_element()?.ok_or_else(|| <A::Error as de::Error>::custom(pair))?;
                let end: Time = seq.next_element()?.ok_or_else(|| <A::Error as de::Error>::custom(pair))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(<A::Error as de::Error>::custom(pair));
                }
                Interval::new(start, end).map(Slot::Interval).map_err(de::Error::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Slot, A::Error> {
                Interval::from_map(map).map(Slot::Interval)
            }
        }

        deserializer.deserialize_any(SlotVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, read};
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::{json, Value};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339 test time")
    }

    fn error(v: Value) -> crate::agent_config::ConfigError {
        check(Column::BusinessHours, &v).unwrap_err()
    }

    #[test]
    fn the_canonical_shape_round_trips() {
        let v = json!({
            "enabled": true,
            "timezone": "Europe/Berlin",
            "schedule": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "12:00"], ["13:00", "17:00"]],
                         "fri": [["22:00", "02:00"]], "sat": [], "sun": [["00:00", "24:00"]]},
            "outsideHoursMessage": "We're closed, back Monday."
        });
        assert_eq!(check(Column::BusinessHours, &v), Ok(v.clone()));
    }

    #[test]
    fn the_seed_shape_and_every_accepted_spelling_is_normalised() {
        let seed = json!({
            "timezone": "America/New_York",
            "schedule": {"monday": {"start": "09:00", "end": "17:00"}, "Tuesday": {"open": "9:00", "close": "17:00"},
                         "WED": {"from": "09:00", "to": "12:00"}, "thu": "09:00-17:00", "fri": ["09:00", "17:00"],
                         "sat": ["09:00-12:00", "13:00-15:00"], "sun": "closed"},
            "outsideHoursMessage": "We're currently closed..."
        });
        let day = json!([["09:00", "17:00"]]);
        assert_eq!(
            check(Column::BusinessHours, &seed),
            Ok(json!({
                "timezone": "America/New_York",
                "schedule": {"mon": day, "tue": day, "wed": [["09:00", "12:00"]], "thu": day, "fri": day,
                             "sat": [["09:00", "12:00"], ["13:00", "15:00"]], "sun": []},
                "outsideHoursMessage": "We're currently closed..."
            }))
        );
        let aliases = json!({"tz": "europe/berlin", "outside_hours_message": "  Closed.  ",
                             "schedule": {"mon": null, "tue": false, "wed": "", "thu": [],
                                          "mon ": [["08:00", "09:00"]]}});
        assert_eq!(
            check(Column::BusinessHours, &aliases),
            Ok(json!({"timezone": "Europe/Berlin", "outsideHoursMessage": "Closed.",
                      "schedule": {"mon": [["08:00", "09:00"]], "tue": [], "wed": [], "thu": []}}))
        );
        let offsets = [("UTC+01:00", "+01:00"), ("-0530", "-05:30"), ("Z", "UTC"), ("utc", "UTC"), ("GMT", "GMT")];
        for (given, stored) in offsets {
            let v = check(Column::BusinessHours, &json!({"timeZone": given})).unwrap();
            assert_eq!(v, json!({"timezone": stored}), "{given}");
        }
        assert_eq!(check(Column::BusinessHours, &json!({"timezone": "  "})), Ok(json!({})));
    }

    #[test]
    fn the_stored_value_reads_the_same_in_the_chat_turn() {
        let v = json!({"tz": "Africa/Cairo",
                       "schedule": {"Monday": "09:00-17:00", "wednesday": {"open": "09:00", "close": "17:00"},
                                    "thursday": ["09:00", "17:00"]}});
        let stored = check(Column::BusinessHours, &v).unwrap();
        let lenient = BusinessHours::from_json(&v).unwrap().unwrap();
        let from_stored = BusinessHours::from_json(&stored).unwrap().unwrap();
        let typed = read::<BusinessHoursConfig>(&v).unwrap().to_business_hours().unwrap().unwrap();
        assert_eq!(from_stored, typed);
        for t in ["2026-07-15T06:30:00Z", "2026-01-15T06:30:00Z", "2026-01-15T07:00:00Z", "2026-07-14T06:30:00Z"] {
            assert_eq!(lenient.is_open(at(t)), typed.is_open(at(t)), "{t}");
        }
        assert!(typed.is_open(at("2026-07-15T06:30:00Z")), "Wed 09:30 EEST");
        assert!(!typed.is_open(at("2026-01-15T06:30:00Z")), "Thu 08:30 EET");
        let off = read::<BusinessHoursConfig>(&json!({"enabled": false, "schedule": {"mon": "09:00-17:00"}})).unwrap();
        assert_eq!(off.to_business_hours(), Ok(None));
        assert_eq!(read::<BusinessHoursConfig>(&json!({"timezone": "UTC"})).unwrap().to_business_hours(), Ok(None));
    }

    #[test]
    fn unknown_zone() {
        for tz in ["Mars/Olympus", "Europe/Berlln", "+15:00", "+02:60"] {
            let e = error(json!({"timezone": tz, "schedule": {"mon": "09:00-17:00"}}));
            assert_eq!(e.path, "businessHours.timezone", "{tz}");
            assert!(e.message.starts_with(&format!("unknown time zone \"{tz}\"")), "{e}");
        }
        // Checked even while disabled, and under an alias.
        assert_eq!(error(json!({"enabled": false, "tz": "Mars/Olympus"})).path, "businessHours.timezone");
        assert_eq!(error(json!({"timezone": 2})).path, "businessHours.timezone");
    }

    #[test]
    fn schedule_errors_name_the_day_and_interval() {
        let cases = [
            (json!({"mon": [["25:00", "26:00"]]}), "businessHours.schedule.mon[0][0]", "invalid time \"25:00\""),
            (json!({"mon": [["09:00", "9:60"]]}), "businessHours.schedule.mon[0][1]", "invalid time \"9:60\""),
            (json!({"mon": [["09:00", "24:30"]]}), "businessHours.schedule.mon[0][1]", "invalid time \"24:30\""),
            (
                json!({"mon": [["24:00", "02:00"]]}),
                "businessHours.schedule.mon[0]",
                "an interval cannot start at 24:00",
            ),
            (
                json!({"mon": [["09:00", "17:00"], ["12:00", "12:00"]]}),
                "businessHours.schedule.mon[1]",
                "the interval 12:00-12:00 is empty",
            ),
            (json!({"mon": [["09:00"]]}), "businessHours.schedule.mon[0]", "an interval is two times"),
            (
                json!({"mon": [["09:00", "12:00", "17:00"]]}),
                "businessHours.schedule.mon[0]",
                "an interval is two times",
            ),
            (json!({"mon": [[9, 17]]}), "businessHours.schedule.mon[0][0]", "invalid type: integer `9`"),
            (json!({"tue": ["9", "17"]}), "businessHours.schedule.tue[0]", "invalid time \"9\""),
            (json!({"tue": ["09:00", "10:00", "11:00"]}), "businessHours.schedule.tue", "\"09:00\" is a single time"),
            (json!({"wed": "09:00-17:00-18:00"}), "businessHours.schedule.wed", "invalid time"),
            (json!({"wed": "nine to five"}), "businessHours.schedule.wed", "\"nine to five\" is not \"HH:MM-HH:MM\""),
            (json!({"thu": {"open": "09:00"}}), "businessHours.schedule.thu", "missing field `close`"),
            (
                json!({"thu": {"open": "09:00", "close": "17:00", "note": "x"}}),
                "businessHours.schedule.thu.note",
                "unknown field `note`",
            ),
            (json!({"fri": true}), "businessHours.schedule.fri", "invalid value: boolean `true`"),
            (json!({"fri": 42}), "businessHours.schedule.fri", "invalid type: integer `42`"),
            (json!({"funday": []}), "businessHours.schedule.funday", "unknown day `funday`"),
        ];
        for (schedule, path, message) in cases {
            let e = error(json!({"enabled": true, "timezone": "UTC", "schedule": schedule}));
            assert_eq!(e.path, path, "{schedule}: {e}");
            assert!(e.message.starts_with(message), "{schedule}: {e}");
        }
        assert_eq!(error(json!({"schedule": []})).path, "businessHours.schedule");
    }

    #[test]
    fn other_checks() {
        let e = error(json!({"enabled": true}));
        assert_eq!(e.to_string(), "businessHours.schedule: must be given when business hours are enabled");
        let e = error(json!({"enabled": true, "schedule": null}));
        assert_eq!(e.path, "businessHours.schedule");
        let e = error(json!({"enabled": "yes", "schedule": {}}));
        assert_eq!(e.path, "businessHours.enabled");
        let e = error(json!({"schedule": {}, "outsideHoursMessage": "x".repeat(4001)}));
        assert_eq!(e.to_string(), "businessHours.outsideHoursMessage: must be at most 4000 characters");
        let e = error(json!({"schedule": {}, "closedMessage": "Back soon"}));
        assert_eq!(e.path, "businessHours.closedMessage");
        assert!(e.message.starts_with("unknown field `closedMessage`"), "{e}");
        let e = error(json!({"timezone": "UTC", "tz": "UTC"}));
        assert!(e.message.starts_with("duplicate field `timezone`"), "{e}");
    }

    #[test]
    fn time_and_interval_values() {
        assert_eq!(Time::parse("9:05").map(|t| t.to_string()), Ok("09:05".to_string()));
        assert_eq!(Time::parse("24:00").map(Time::minutes), Ok(1440));
        assert!(Time::parse("24:01").is_err());
        let nine = Time::parse("09:00").unwrap();
        let five = Time::parse("17:00").unwrap();
        assert!(Interval::new(nine, nine).is_err());
        let mut days: [Option<Vec<Interval>>; 7] = Default::default();
        days[2] = Some(vec![Interval { start: nine, end: five }, Interval { start: five, end: five }]);
        let built = BusinessHoursConfig { schedule: Some(Schedule { days }), ..Default::default() };
        assert_eq!(
            built.to_business_hours().unwrap_err().to_string(),
            "businessHours.schedule.wed[1]: the interval 17:00-17:00 is empty"
        );
        assert_eq!(serde_json::to_value(Interval::new(nine, five).unwrap()).unwrap(), json!(["09:00", "17:00"]));
        let s: Schedule = serde_json::from_value(json!({"sat": "22:00-02:00"})).unwrap();
        assert_eq!(s.day(5), &[Interval::new(Time::parse("22:00").unwrap(), Time::parse("02:00").unwrap()).unwrap()]);
        assert!(s.day(0).is_empty());
        assert!(s.day(9).is_empty());
    }
}
