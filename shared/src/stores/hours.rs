//! Opening hours: a weekly schedule in the store's time zone, date exceptions that replace a day's
//! hours, and the answer to "are you open now, and if not, why?".
//!
//! An interval whose `close` is not after its `open` runs past midnight (`18:00`–`02:00` closes at two
//! the next morning); equal times mean open around the clock from `open`. A date exception replaces
//! that date's intervals (none: closed all day) — including the part of its own overnight interval
//! that falls on the next morning.

use jiff::Zoned;
use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

const MAX_INTERVALS_PER_DAY: usize = 6;
const MAX_EXCEPTIONS: usize = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[serde(deserialize_with = "time_of_day", serialize_with = "as_written")]
    pub open: Time,
    /// `24:00` is taken as the midnight that ends the day: `00:00`, which a close not after its
    /// open makes the next midnight (`09:00`–`24:00` closes at midnight; `00:00`–`24:00` is around
    /// the clock). Stored and answered as `00:00`.
    #[serde(deserialize_with = "closing_time", serialize_with = "as_written")]
    pub close: Time,
}

/// A time of day as owners write it, `HH:MM`; with its seconds only if it has any. Until
/// 2026-12-07 every time was answered (and stored) as `HH:MM:SS`, which a client that sent
/// `09:00` could not compare with what it sent.
fn as_written<S: serde::Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&written(*time))
}

fn written(time: Time) -> String {
    if time.second() == 0 && time.subsec_nanosecond() == 0 {
        format!("{:02}:{:02}", time.hour(), time.minute())
    } else {
        time.to_string()
    }
}

/// What a time of day must look like, said once for both fields.
const TIME_OF_DAY: &str = "a time of day, HH:MM from 00:00 to 23:59 (a close may be 24:00)";

/// A time of day as `HH:MM` (or `HH:MM:SS`, as stored until 2026-12-07), refused with
/// [`TIME_OF_DAY`] — not the parser's own words.
fn time_of_day<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|_| serde::de::Error::custom(TIME_OF_DAY))
}

/// [`time_of_day`], or `24:00` (`24:00:00`) for the midnight that ends the day.
fn closing_time<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "24:00" | "24:00:00" => Ok(Time::midnight()),
        other => other
            .parse()
            .map_err(|_| serde::de::Error::custom(TIME_OF_DAY)),
    }
}

/// A `YYYY-MM-DD` date, taken only as it is written back: not `2026-1-7` (which `strptime` takes),
/// `20261225` or `+002026-12-25` (which jiff's ISO 8601 parser takes).
pub fn calendar_date(text: &str) -> Option<Date> {
    text.parse::<Date>()
        .ok()
        .filter(|date| text.len() == 10 && date.to_string() == text)
}

/// A date exception's date, by [`calendar_date`], refused in our words rather than the parser's.
fn date_as_written<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
    let text = String::deserialize(deserializer)?;
    calendar_date(&text).ok_or_else(|| serde::de::Error::custom("a date as YYYY-MM-DD"))
}

impl Interval {
    fn overnight(&self) -> bool {
        self.close <= self.open
    }

    /// Whether `time` on the interval's own day falls inside it.
    fn covers_same_day(&self, time: Time) -> bool {
        if self.overnight() {
            time >= self.open
        } else {
            time >= self.open && time < self.close
        }
    }

    /// Whether `time` on the next day falls inside the part that ran past midnight.
    fn covers_next_morning(&self, time: Time) -> bool {
        self.overnight() && time < self.close
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    #[serde(default)]
    pub mon: Vec<Interval>,
    #[serde(default)]
    pub tue: Vec<Interval>,
    #[serde(default)]
    pub wed: Vec<Interval>,
    #[serde(default)]
    pub thu: Vec<Interval>,
    #[serde(default)]
    pub fri: Vec<Interval>,
    #[serde(default)]
    pub sat: Vec<Interval>,
    #[serde(default)]
    pub sun: Vec<Interval>,
}

impl WeeklyHours {
    fn day(&self, weekday: Weekday) -> &[Interval] {
        match weekday {
            Weekday::Monday => &self.mon,
            Weekday::Tuesday => &self.tue,
            Weekday::Wednesday => &self.wed,
            Weekday::Thursday => &self.thu,
            Weekday::Friday => &self.fri,
            Weekday::Saturday => &self.sat,
            Weekday::Sunday => &self.sun,
        }
    }

    fn days(&self) -> [(&'static str, &[Interval]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// A change to the weekly hours, as a `PATCH` sends it: each day it names gets the intervals it
/// gives (`[]` closes that day), and each day it leaves out keeps its own, as every field a `PATCH`
/// leaves out does. Until 2026-12-07 the week was replaced whole, so a patch of Monday's hours
/// closed every other day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHoursPatch {
    #[serde(default, deserialize_with = "crate::http::present")]
    pub mon: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub tue: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub wed: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub thu: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub fri: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub sat: Option<Vec<Interval>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub sun: Option<Vec<Interval>>,
}

/// Which days of the week (Monday first) a request sets.
pub type DaysSent = [bool; 7];

/// Every day: a new store's week.
pub const EVERY_DAY: DaysSent = [true; 7];

impl WeeklyHoursPatch {
    pub fn days_sent(&self) -> DaysSent {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
        .map(Option::is_some)
    }

    /// `week` with the days this patch names replaced.
    pub fn applied_to(self, week: WeeklyHours) -> WeeklyHours {
        WeeklyHours {
            mon: self.mon.unwrap_or(week.mon),
            tue: self.tue.unwrap_or(week.tue),
            wed: self.wed.unwrap_or(week.wed),
            thu: self.thu.unwrap_or(week.thu),
            fri: self.fri.unwrap_or(week.fri),
            sat: self.sat.unwrap_or(week.sat),
            sun: self.sun.unwrap_or(week.sun),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateException {
    #[serde(deserialize_with = "date_as_written")]
    pub date: Date,
    /// The date's hours; empty: closed all day.
    #[serde(default)]
    pub hours: Vec<Interval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClosedReason {
    /// The store switched ordering off.
    ClosedByStore,
    /// A date exception closes the store today.
    ClosedToday,
    /// Outside the day's opening hours.
    OutsideHours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenStatus {
    pub open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ClosedReason>,
}

pub struct Schedule<'a> {
    pub weekly: &'a WeeklyHours,
    pub exceptions: &'a [DateException],
    pub accepting_orders: bool,
}

impl Schedule<'_> {
    fn intervals(&self, date: Date) -> (&[Interval], bool) {
        match self.exceptions.iter().find(|e| e.date == date) {
            Some(exception) => (&exception.hours, true),
            None => (self.weekly.day(date.weekday()), false),
        }
    }

    /// Whether the store takes orders at `now` (a time in the store's zone), and why not.
    pub fn status_at(&self, now: &Zoned) -> OpenStatus {
        let closed = |reason| OpenStatus {
            open: false,
            reason: Some(reason),
        };
        if !self.accepting_orders {
            return closed(ClosedReason::ClosedByStore);
        }
        let (date, time) = (now.date(), now.time());
        let (today, is_exception) = self.intervals(date);
        let yesterday = date
            .yesterday()
            .map(|d| self.intervals(d).0)
            .unwrap_or_default();
        if today.iter().any(|i| i.covers_same_day(time))
            || yesterday.iter().any(|i| i.covers_next_morning(time))
        {
            return OpenStatus {
                open: true,
                reason: None,
            };
        }
        if is_exception && today.is_empty() {
            closed(ClosedReason::ClosedToday)
        } else {
            closed(ClosedReason::OutsideHours)
        }
    }
}

fn check_day(field: &str, intervals: &[Interval]) -> Result<(), ApiError> {
    if intervals.len() > MAX_INTERVALS_PER_DAY {
        return Err(ApiError::validation(field, "at most 6 intervals a day"));
    }
    Ok(())
}

impl Interval {
    /// The part of the interval on its own day: `[open, close)`, or from `open` to the day's end
    /// (`None`) for one that runs past midnight or around the clock.
    fn on_its_day(&self) -> (Time, Option<Time>) {
        (self.open, (!self.overnight()).then_some(self.close))
    }

    fn overlaps_on_its_day(&self, other: &Interval) -> bool {
        let ((a_from, a_to), (b_from, b_to)) = (self.on_its_day(), other.on_its_day());
        let before_end = |from: Time, to: Option<Time>| to.is_none_or(|to| from < to);
        before_end(a_from, b_to) && before_end(b_from, a_to)
    }
}

/// A day's intervals must not overlap on that day (touching is fine: `09:00`–`12:00` and
/// `12:00`–`15:00`): two that do are a slip of the owner's, which opening hours read as their
/// union would hide. The part of an interval that runs past midnight is the next day's
/// ([`check_next_mornings`]).
fn check_overlaps(field: &str, intervals: &[Interval]) -> Result<(), ApiError> {
    for (j, later) in intervals.iter().enumerate() {
        if let Some(earlier) = intervals[..j].iter().find(|i| i.overlaps_on_its_day(later)) {
            return Err(ApiError::validation(
                &format!("{field}[{j}]"),
                format!(
                    "overlaps the day's interval {}–{}",
                    written(earlier.open),
                    written(earlier.close)
                ),
            ));
        }
    }
    Ok(())
}

/// The hours a request sets, checked for overlaps: only the days it sends (in the week they make
/// with the rest) and the exceptions if it sends them, so a store saved with overlapping hours
/// before they were refused can still change anything else (switch ordering off, above all)
/// without first fixing them.
pub fn check_new(
    weekly: Option<(&WeeklyHours, DaysSent)>,
    exceptions: Option<&[DateException]>,
) -> Result<(), ApiError> {
    if let Some((weekly, sent)) = weekly {
        for ((day, intervals), sent) in weekly.days().into_iter().zip(sent) {
            if sent {
                check_overlaps(&format!("weeklyHours.{day}"), intervals)?;
            }
        }
        check_next_mornings(weekly, sent)?;
    }
    for (i, exception) in exceptions.into_iter().flatten().enumerate() {
        check_overlaps(&format!("exceptions[{i}].hours"), &exception.hours)?;
    }
    Ok(())
}

pub fn validate(weekly: &WeeklyHours, exceptions: &[DateException]) -> Result<(), ApiError> {
    for (day, intervals) in weekly.days() {
        check_day(&format!("weeklyHours.{day}"), intervals)?;
    }
    if exceptions.len() > MAX_EXCEPTIONS {
        return Err(ApiError::validation("exceptions", "at most 366 dates"));
    }
    for (i, exception) in exceptions.iter().enumerate() {
        check_day(&format!("exceptions[{i}].hours"), &exception.hours)?;
        if exceptions[..i].iter().any(|e| e.date == exception.date) {
            return Err(ApiError::validation(
                &format!("exceptions[{i}].date"),
                "appears twice",
            ));
        }
    }
    Ok(())
}

/// The part of a weekly day's interval that runs past midnight must not overlap the next day's
/// intervals (Sunday's runs into Monday's): `fri` `18:00`–`02:00` and `sat` `01:00`–`10:00` are a
/// slip too. A date exception is not compared with its neighbours: it replaces a single date's
/// hours, and the days beside it may be weekly days or exceptions of their own.
///
/// Only a pair of days one of which a request sends is checked.
fn check_next_mornings(weekly: &WeeklyHours, sent: DaysSent) -> Result<(), ApiError> {
    let days = weekly.days();
    for (k, (day, intervals)) in days.iter().enumerate() {
        let after = (k + 1) % days.len();
        if !sent[k] && !sent[after] {
            continue;
        }
        let (next_day, next) = days[after];
        for (j, later) in next.iter().enumerate() {
            if let Some(earlier) = intervals.iter().find(|i| i.covers_next_morning(later.open)) {
                return Err(ApiError::validation(
                    &format!("weeklyHours.{next_day}[{j}]"),
                    format!(
                        "overlaps {day}'s interval {}–{}, which runs past midnight",
                        written(earlier.open),
                        written(earlier.close)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn iv(open: Time, close: Time) -> Interval {
        Interval { open, close }
    }

    fn at(zone: &str, y: i16, m: i8, d: i8, h: i8, min: i8) -> Zoned {
        date(y, m, d).at(h, min, 0, 0).in_tz(zone).unwrap()
    }

    fn weekly_every_day(intervals: Vec<Interval>) -> WeeklyHours {
        WeeklyHours {
            mon: intervals.clone(),
            tue: intervals.clone(),
            wed: intervals.clone(),
            thu: intervals.clone(),
            fri: intervals.clone(),
            sat: intervals.clone(),
            sun: intervals,
        }
    }

    #[test]
    fn exception_dates_are_taken_only_as_written() {
        let read = |json: &str| serde_json::from_str::<DateException>(json);
        let christmas = read(r#"{"date":"2026-12-25"}"#).unwrap();
        assert_eq!(christmas.date, date(2026, 12, 25));
        for bad in [
            "2026-12-2",
            "20261225",
            "+002026-12-25",
            "2026-02-30",
            "12/25",
        ] {
            let message = read(&format!(r#"{{"date":"{bad}"}}"#))
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with("a date as YYYY-MM-DD"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn a_days_intervals_may_touch_but_not_overlap() {
        let t = |h, m| time(h, m, 0, 0);
        let day = |intervals: Vec<Interval>| WeeklyHours {
            tue: intervals,
            ..WeeklyHours::default()
        };
        for fine in [
            vec![iv(t(9, 0), t(12, 0)), iv(t(12, 0), t(15, 0))],
            vec![iv(t(17, 0), t(22, 0)), iv(t(9, 0), t(14, 0))],
            // Past midnight: its morning part is the next day's, not this one's.
            vec![iv(t(22, 0), t(2, 0)), iv(t(1, 0), t(12, 0))],
            vec![iv(t(12, 0), t(12, 0)), iv(t(9, 0), t(10, 0))],
        ] {
            assert!(
                check_new(Some((&day(fine.clone()), EVERY_DAY)), None).is_ok(),
                "{fine:?}"
            );
        }
        for (clash, message) in [
            (
                vec![iv(t(9, 0), t(14, 0)), iv(t(12, 0), t(18, 0))],
                "weeklyHours.tue[1]: overlaps the day's interval 09:00–14:00",
            ),
            (
                vec![iv(t(22, 0), t(2, 0)), iv(t(23, 0), t(23, 30))],
                "weeklyHours.tue[1]: overlaps the day's interval 22:00–02:00",
            ),
            (
                vec![iv(t(0, 0), t(0, 0)), iv(t(9, 0), t(10, 0))],
                "weeklyHours.tue[1]: overlaps the day's interval 00:00–00:00",
            ),
            (
                vec![iv(t(9, 0), t(10, 0)), iv(t(9, 0), t(10, 0))],
                "weeklyHours.tue[1]: overlaps the day's interval 09:00–10:00",
            ),
        ] {
            let err = check_new(Some((&day(clash), EVERY_DAY)), None).unwrap_err();
            assert_eq!((err.status.as_u16(), err.message.as_ref()), (422, message));
        }
        let exceptions = [DateException {
            date: date(2026, 12, 24),
            hours: vec![iv(t(10, 0), t(20, 0)), iv(t(19, 0), t(21, 0))],
        }];
        let err = check_new(None, Some(&exceptions)).unwrap_err();
        assert!(
            err.message.starts_with("exceptions[0].hours[1]: overlaps"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_night_past_midnight_may_touch_the_next_days_hours_but_not_overlap_them() {
        let t = |h, m| time(h, m, 0, 0);
        let fine = [
            WeeklyHours {
                fri: vec![iv(t(18, 0), t(2, 0))],
                sat: vec![iv(t(2, 0), t(10, 0)), iv(t(12, 0), t(1, 0))],
                sun: vec![iv(t(1, 0), t(4, 0))],
                ..WeeklyHours::default()
            },
            // Around the clock, every day, from midnight or from noon.
            weekly_every_day(vec![iv(t(0, 0), t(0, 0))]),
            weekly_every_day(vec![iv(t(12, 0), t(12, 0))]),
            // A night that ends at midnight reaches nothing of the next day.
            WeeklyHours {
                mon: vec![iv(t(9, 0), t(0, 0))],
                tue: vec![iv(t(0, 0), t(3, 0))],
                ..WeeklyHours::default()
            },
        ];
        for weekly in fine {
            assert!(
                check_new(Some((&weekly, EVERY_DAY)), None).is_ok(),
                "{weekly:?}"
            );
        }
        for (weekly, message) in [
            (
                WeeklyHours {
                    fri: vec![iv(t(18, 0), t(2, 0))],
                    sat: vec![iv(t(9, 0), t(12, 0)), iv(t(1, 0), t(3, 0))],
                    ..WeeklyHours::default()
                },
                "weeklyHours.sat[1]: overlaps fri's interval 18:00–02:00, which runs past midnight",
            ),
            (
                WeeklyHours {
                    sun: vec![iv(t(20, 0), t(20, 0))],
                    mon: vec![iv(t(9, 0), t(17, 0))],
                    ..WeeklyHours::default()
                },
                "weeklyHours.mon[0]: overlaps sun's interval 20:00–20:00, which runs past midnight",
            ),
        ] {
            let err = check_new(Some((&weekly, EVERY_DAY)), None).unwrap_err();
            assert_eq!((err.status.as_u16(), err.message.as_ref()), (422, message));
        }
        // Date exceptions replace a date's hours: not compared with the days beside them.
        let exceptions = [
            DateException {
                date: date(2026, 12, 24),
                hours: vec![iv(t(18, 0), t(4, 0))],
            },
            DateException {
                date: date(2026, 12, 25),
                hours: vec![iv(t(1, 0), t(5, 0))],
            },
        ];
        assert!(check_new(None, Some(&exceptions)).is_ok());
    }

    #[test]
    fn times_of_day_read_as_people_write_them_and_midnight_may_end_a_day() {
        let read = |json: &str| serde_json::from_str::<Interval>(json);
        let stored = read(r#"{"open":"09:00:00","close":"21:30:00"}"#).unwrap();
        assert_eq!(stored, iv(time(9, 0, 0, 0), time(21, 30, 0, 0)));
        assert_eq!(read(r#"{"open":"09:00","close":"21:30"}"#).unwrap(), stored);
        // 24:00 closes at the day's end: the same as 00:00.
        for close in ["24:00", "24:00:00"] {
            let until_midnight = read(&format!(r#"{{"open":"09:00","close":"{close}"}}"#)).unwrap();
            assert_eq!(until_midnight, iv(time(9, 0, 0, 0), Time::midnight()));
        }
        let all_day = read(r#"{"open":"00:00","close":"24:00"}"#).unwrap();
        let weekly = weekly_every_day(vec![all_day]);
        let s = Schedule {
            weekly: &weekly,
            exceptions: &[],
            accepting_orders: true,
        };
        for hour in [0, 9, 23] {
            assert!(s.status_at(&at("Asia/Seoul", 2026, 11, 26, hour, 59)).open);
        }
        // Answered as written: `HH:MM`, seconds only where there are any.
        assert_eq!(
            serde_json::to_value(all_day).unwrap(),
            serde_json::json!({"open": "00:00", "close": "00:00"})
        );
        assert_eq!(serde_json::to_value(stored).unwrap()["close"], "21:30");
        let odd = read(r#"{"open":"09:00:30","close":"21:30:00.5"}"#).unwrap();
        assert_eq!(
            serde_json::to_value(odd).unwrap(),
            serde_json::json!({"open": "09:00:30", "close": "21:30:00.5"})
        );
        for interval in [all_day, stored, odd] {
            let again = serde_json::to_string(&interval).unwrap();
            assert_eq!(read(&again).unwrap(), interval, "{again}");
        }
        // Anything else is refused in words a person can act on, not the parser's.
        for bad in [
            r#"{"open":"24:00","close":"02:00"}"#,
            r#"{"open":"09:00","close":"24:30"}"#,
            r#"{"open":"9am","close":"21:00"}"#,
            r#"{"open":"09:00","close":"25:00"}"#,
        ] {
            let message = read(bad).unwrap_err().to_string();
            assert!(message.starts_with(TIME_OF_DAY), "{bad}: {message}");
        }
    }

    #[test]
    fn daytime_hours_open_at_open_and_close_at_close() {
        let weekly = weekly_every_day(vec![iv(time(9, 0, 0, 0), time(21, 0, 0, 0))]);
        let s = Schedule {
            weekly: &weekly,
            exceptions: &[],
            accepting_orders: true,
        };
        // 2026-11-26 is a Thursday.
        assert!(!s.status_at(&at("Asia/Seoul", 2026, 11, 26, 8, 59)).open);
        assert!(s.status_at(&at("Asia/Seoul", 2026, 11, 26, 9, 0)).open);
        assert!(s.status_at(&at("Asia/Seoul", 2026, 11, 26, 20, 59)).open);
        let late = s.status_at(&at("Asia/Seoul", 2026, 11, 26, 21, 0));
        assert_eq!(
            late,
            OpenStatus {
                open: false,
                reason: Some(ClosedReason::OutsideHours)
            }
        );
    }

    #[test]
    fn overnight_hours_run_into_the_next_morning() {
        // A pub open Friday 18:00 to Saturday 02:00 only.
        let weekly = WeeklyHours {
            fri: vec![iv(time(18, 0, 0, 0), time(2, 0, 0, 0))],
            ..Default::default()
        };
        let s = Schedule {
            weekly: &weekly,
            exceptions: &[],
            accepting_orders: true,
        };
        assert!(
            s.status_at(&at("Asia/Seoul", 2026, 11, 27, 23, 30)).open,
            "Friday night"
        );
        assert!(
            s.status_at(&at("Asia/Seoul", 2026, 11, 28, 1, 59)).open,
            "Saturday small hours"
        );
        assert!(
            !s.status_at(&at("Asia/Seoul", 2026, 11, 28, 2, 0)).open,
            "closing time"
        );
        assert!(
            !s.status_at(&at("Asia/Seoul", 2026, 11, 28, 19, 0)).open,
            "Saturday evening"
        );
        assert!(
            !s.status_at(&at("Asia/Seoul", 2026, 11, 27, 1, 0)).open,
            "Thursday's night"
        );
    }

    #[test]
    fn the_store_time_zone_decides() {
        let weekly = weekly_every_day(vec![iv(time(9, 0, 0, 0), time(17, 0, 0, 0))]);
        let s = Schedule {
            weekly: &weekly,
            exceptions: &[],
            accepting_orders: true,
        };
        // One instant: 10:00 in Seoul is 01:00 UTC and 20:00 the day before in New York.
        let instant = at("Asia/Seoul", 2026, 11, 26, 10, 0);
        assert!(s.status_at(&instant).open);
        assert!(
            !s.status_at(&instant.in_tz("America/New_York").unwrap())
                .open
        );
        assert!(!s.status_at(&instant.in_tz("UTC").unwrap()).open);
    }

    #[test]
    fn exceptions_replace_a_day_and_the_switch_overrides_all() {
        let weekly = weekly_every_day(vec![iv(time(9, 0, 0, 0), time(21, 0, 0, 0))]);
        let exceptions = vec![
            DateException {
                date: date(2026, 12, 25),
                hours: vec![],
            },
            DateException {
                date: date(2026, 12, 31),
                hours: vec![iv(time(20, 0, 0, 0), time(3, 0, 0, 0))],
            },
        ];
        let s = Schedule {
            weekly: &weekly,
            exceptions: &exceptions,
            accepting_orders: true,
        };
        let christmas = s.status_at(&at("Asia/Seoul", 2026, 12, 25, 12, 0));
        assert_eq!(christmas.reason, Some(ClosedReason::ClosedToday));
        assert!(
            !s.status_at(&at("Asia/Seoul", 2026, 12, 31, 12, 0)).open,
            "New Year's Eve opens late"
        );
        assert!(s.status_at(&at("Asia/Seoul", 2026, 12, 31, 23, 0)).open);
        assert!(
            s.status_at(&at("Asia/Seoul", 2027, 1, 1, 2, 30)).open,
            "past midnight into the new year"
        );
        assert!(!s.status_at(&at("Asia/Seoul", 2027, 1, 1, 3, 0)).open);

        let off = Schedule {
            accepting_orders: false,
            ..s
        };
        let status = off.status_at(&at("Asia/Seoul", 2026, 11, 26, 12, 0));
        assert_eq!(status.reason, Some(ClosedReason::ClosedByStore));
    }

    #[test]
    fn equal_open_and_close_means_around_the_clock() {
        let weekly = weekly_every_day(vec![iv(time(0, 0, 0, 0), time(0, 0, 0, 0))]);
        let s = Schedule {
            weekly: &weekly,
            exceptions: &[],
            accepting_orders: true,
        };
        assert!(s.status_at(&at("Asia/Seoul", 2026, 11, 26, 0, 0)).open);
        assert!(s.status_at(&at("Asia/Seoul", 2026, 11, 26, 23, 59)).open);
    }

    #[test]
    fn validation_names_the_field() {
        let exceptions = vec![
            DateException {
                date: date(2026, 12, 25),
                hours: vec![],
            },
            DateException {
                date: date(2026, 12, 25),
                hours: vec![],
            },
        ];
        let err = validate(&WeeklyHours::default(), &exceptions).unwrap_err();
        assert!(
            err.message.starts_with("exceptions[1].date"),
            "{}",
            err.message
        );
        let busy = WeeklyHours {
            tue: vec![iv(time(1, 0, 0, 0), time(2, 0, 0, 0)); 7],
            ..Default::default()
        };
        assert!(
            validate(&busy, &[])
                .unwrap_err()
                .message
                .starts_with("weeklyHours.tue")
        );
    }
}
