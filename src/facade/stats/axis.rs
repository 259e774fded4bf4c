//! The time axis of a stats answer: the window, its buckets in an IANA time zone, and the SQL
//! expression that puts a row's instant into its bucket.
//!
//! Minute and hour buckets are elapsed intervals aligned to the zone's clock (a day that falls
//! back has 25 hourly buckets, two of them starting at 01:00 local with different offsets); day,
//! week (ISO, Monday first) and month buckets are calendar units in the zone, 23 or 25 hours
//! long across a DST change. A bucket is listed with its full calendar extent; only the part
//! inside the window is counted.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{AppError, AppResult};

/// At most this many buckets per answer.
pub const MAX_BUCKETS: usize = 1_000;

/// Size of a stats bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "StatsBucketUnit")]
pub enum BucketUnit {
    Minute,
    Hour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

impl BucketUnit {
    fn as_str(self) -> &'static str {
        match self {
            BucketUnit::Minute => "MINUTE",
            BucketUnit::Hour => "HOUR",
            BucketUnit::Day => "DAY",
            BucketUnit::Week => "WEEK",
            BucketUnit::Month => "MONTH",
        }
    }
}

/// One bucket: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The zone's UTC offset at `start`, in seconds.
    pub offset: i32,
}

/// A span of time with one UTC offset: from `since` (epoch seconds; `None`: the window's
/// start) on.
#[derive(Clone, Copy, Debug)]
struct Segment {
    since: Option<i64>,
    offset: i64,
}

/// The window and its buckets.
#[derive(Clone, Debug)]
pub struct TimeAxis {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub zone: Tz,
    pub unit: Option<BucketUnit>,
    pub buckets: Vec<Bucket>,
    segments: Vec<Segment>,
}

fn offset_at(zone: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        zone.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The first instant at or after local midnight of `date` (midnight itself may fall in a gap).
fn local_midnight(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..(24 * 4) {
        if let Some(t) = zone.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(15);
    }
    Utc.from_utc_datetime(&local)
}

impl TimeAxis {
    /// Validates the window and lays out its buckets.
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        unit: Option<BucketUnit>,
        time_zone: &str,
    ) -> AppResult<TimeAxis> {
        let zone: Tz = time_zone.parse().map_err(|_| {
            AppError::bad_input(format!(
                "timeZone `{time_zone}` is not an IANA time zone name (e.g. `Europe/Berlin`, `UTC`)"
            ))
        })?;
        if to <= from {
            return Err(AppError::bad_input("`to` must be after `from`"));
        }
        let floor = Utc.with_ymd_and_hms(1970, 1, 2, 0, 0, 0).single();
        if floor.is_some_and(|f| from < f) {
            return Err(AppError::bad_input("`from` must be 1970-01-02 or later"));
        }
        let segments = segments(zone, from, to);
        let buckets = match unit {
            None => vec![Bucket {
                start: from,
                end: to,
                offset: offset_at(zone, from) as i32,
            }],
            Some(unit) => layout(zone, unit, from, to)?,
        };
        Ok(TimeAxis {
            from,
            to,
            zone,
            unit,
            buckets,
            segments,
        })
    }

    /// Whether rows summed per quarter hour (UTC) fall into one bucket each: every offset in
    /// the window and every change of it lies on a quarter hour, and buckets are not minutes.
    pub fn quarter_hours_fit(&self) -> bool {
        self.unit != Some(BucketUnit::Minute)
            && self
                .segments
                .iter()
                .all(|s| s.offset % 900 == 0 && s.since.is_none_or(|t| t % 900 == 0))
    }

    /// SQL of the bucket key (a BIGINT) of an instant given as whole epoch seconds by `epoch`.
    pub fn key_sql(&self, epoch: &str) -> String {
        format!("CAST({} AS BIGINT)", self.key_expr(epoch))
    }

    fn key_expr(&self, epoch: &str) -> String {
        let per_segment = |f: &dyn Fn(i64) -> i64| -> String {
            if self.segments.len() == 1 {
                return f(self.segments[0].offset).to_string();
            }
            let mut s = String::from("(CASE");
            for pair in self.segments.windows(2) {
                if let Some(until) = pair[1].since {
                    s.push_str(&format!(
                        " WHEN {epoch} < {until} THEN {}",
                        f(pair[0].offset)
                    ));
                }
            }
            let last = self.segments.last().map_or(0, |s| s.offset);
            s.push_str(&format!(" ELSE {} END)", f(last)));
            s
        };
        match self.unit {
            None => "0".to_string(),
            Some(BucketUnit::Minute) => {
                format!("(({epoch} + {}) / 60)", per_segment(&|o| o.rem_euclid(60)))
            }
            Some(BucketUnit::Hour) => {
                format!(
                    "(({epoch} + {}) / 3600)",
                    per_segment(&|o| o.rem_euclid(3600))
                )
            }
            Some(BucketUnit::Day) => format!("(({epoch} + {}) / 86400)", per_segment(&|o| o)),
            Some(BucketUnit::Week) => {
                format!("((({epoch} + {}) / 86400 + 3) / 7)", per_segment(&|o| o))
            }
            Some(BucketUnit::Month) => {
                let mut s = String::from("(CASE");
                for (i, b) in self.buckets.iter().enumerate().skip(1) {
                    s.push_str(&format!(
                        " WHEN {epoch} < {} THEN {}",
                        b.start.timestamp(),
                        i - 1
                    ));
                }
                s.push_str(&format!(" ELSE {} END)", self.buckets.len() - 1));
                s
            }
        }
    }

    /// The key [`TimeAxis::key_sql`] gives the instants of bucket `index`.
    fn key_of(&self, index: usize) -> i64 {
        let b = &self.buckets[index];
        let e = b.start.timestamp();
        let o = i64::from(b.offset);
        match self.unit {
            None => 0,
            Some(BucketUnit::Minute) => (e + o.rem_euclid(60)).div_euclid(60),
            Some(BucketUnit::Hour) => (e + o.rem_euclid(3600)).div_euclid(3600),
            Some(BucketUnit::Day) => (e + o).div_euclid(86400),
            Some(BucketUnit::Week) => ((e + o).div_euclid(86400) + 3).div_euclid(7),
            Some(BucketUnit::Month) => index as i64,
        }
    }

    /// Bucket index of each key, for reading rows back.
    pub fn index_by_key(&self) -> std::collections::HashMap<i64, usize> {
        (0..self.buckets.len())
            .map(|i| (self.key_of(i), i))
            .collect()
    }

    /// How the window is described in answers and records.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "from": crate::canonical::timestamp(&self.from),
            "to": crate::canonical::timestamp(&self.to),
            "timeZone": self.zone.name(),
            "bucket": self.unit.map(BucketUnit::as_str),
        })
    }
}

/// The offsets in effect over `[from, to)`: found day by day, each change pinned to the second.
fn segments(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Segment> {
    let mut out = vec![Segment {
        since: None,
        offset: offset_at(zone, from),
    }];
    let mut t = from;
    while t < to {
        let next = (t + Duration::days(1)).min(to);
        let current = out.last().map_or(0, |s| s.offset);
        if offset_at(zone, next) != current {
            let (mut lo, mut hi) = (t.timestamp(), next.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let at = Utc.timestamp_opt(mid, 0).single().unwrap_or(t);
                if offset_at(zone, at) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let at = Utc.timestamp_opt(hi, 0).single().unwrap_or(next);
            out.push(Segment {
                since: Some(hi),
                offset: offset_at(zone, at),
            });
            t = at;
        } else {
            t = next;
        }
    }
    out
}

/// The buckets of `unit` that meet `[from, to)`.
fn layout(
    zone: Tz,
    unit: BucketUnit,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<Bucket>> {
    let too_many = || {
        AppError::bad_input(format!(
            "bucket {} over this window gives more than {MAX_BUCKETS} buckets: \
             use a larger bucket or a shorter window",
            unit.as_str()
        ))
    };
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
    let mut starts: Vec<DateTime<Utc>> = Vec::new();
    match unit {
        BucketUnit::Minute | BucketUnit::Hour => {
            let len = if unit == BucketUnit::Minute { 60 } else { 3600 };
            let count = (to - from).num_seconds() / len + 2;
            if count as usize > MAX_BUCKETS + 2 {
                return Err(too_many());
            }
            let e = from.timestamp();
            let shift = offset_at(zone, from).rem_euclid(len);
            let mut s = (e + shift).div_euclid(len) * len - shift;
            while s < to.timestamp() {
                starts.push(Utc.timestamp_opt(s, 0).single().unwrap_or(from));
                s += len;
                if starts.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
            }
        }
        BucketUnit::Day | BucketUnit::Week | BucketUnit::Month => {
            let mut date = local(from);
            date = match unit {
                BucketUnit::Week => {
                    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
                }
                BucketUnit::Month => date.with_day(1).unwrap_or(date),
                _ => date,
            };
            loop {
                let start = local_midnight(zone, date);
                if start >= to {
                    break;
                }
                starts.push(start);
                if starts.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                date = match unit {
                    BucketUnit::Day => date + Duration::days(1),
                    BucketUnit::Week => date + Duration::days(7),
                    _ => date
                        .checked_add_months(chrono::Months::new(1))
                        .ok_or_else(too_many)?,
                };
            }
            // `from` may precede the first listed start only when the local midnight of its
            // day fell in a gap; it then belongs to that first bucket.
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, s) in starts.iter().enumerate() {
        let end = match starts.get(i + 1) {
            Some(n) => *n,
            None => match unit {
                BucketUnit::Minute => *s + Duration::minutes(1),
                BucketUnit::Hour => *s + Duration::hours(1),
                BucketUnit::Day => local_midnight(zone, local(*s) + Duration::days(1)),
                BucketUnit::Week => local_midnight(zone, local(*s) + Duration::days(7)),
                BucketUnit::Month => local_midnight(
                    zone,
                    local(*s)
                        .checked_add_months(chrono::Months::new(1))
                        .ok_or_else(too_many)?,
                ),
            },
        };
        out.push(Bucket {
            start: *s,
            end,
            offset: offset_at(zone, *s) as i32,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The key SQL evaluated in Rust for one instant (the same arithmetic SQL does).
    fn key_in_rust(axis: &TimeAxis, e: i64) -> i64 {
        let offset = axis
            .segments
            .iter()
            .rev()
            .find(|s| s.since.is_none_or(|t| e >= t))
            .map_or(0, |s| s.offset);
        match axis.unit {
            Some(BucketUnit::Hour) => (e + offset.rem_euclid(3600)) / 3600,
            Some(BucketUnit::Day) => (e + offset) / 86400,
            Some(BucketUnit::Week) => ((e + offset) / 86400 + 3) / 7,
            _ => unreachable!(),
        }
    }

    #[test]
    fn berlin_days_across_spring_and_autumn_changes() {
        let axis = TimeAxis::new(
            at("2026-03-28T00:00:00Z"),
            at("2026-03-31T00:00:00Z"),
            Some(BucketUnit::Day),
            "Europe/Berlin",
        )
        .unwrap();
        let starts: Vec<String> = axis.buckets.iter().map(|b| b.start.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-27T23:00:00+00:00",
                "2026-03-28T23:00:00+00:00",
                "2026-03-29T22:00:00+00:00",
                "2026-03-30T22:00:00+00:00"
            ]
        );
        assert_eq!(
            (axis.buckets[1].end - axis.buckets[1].start).num_hours(),
            23
        );
        let keys = axis.index_by_key();
        for (t, want) in [
            ("2026-03-28T22:59:59Z", 0),
            ("2026-03-28T23:00:00Z", 1),
            ("2026-03-29T21:59:59Z", 1),
            ("2026-03-29T22:00:00Z", 2),
        ] {
            assert_eq!(keys[&key_in_rust(&axis, at(t).timestamp())], want, "{t}");
        }
        let autumn = TimeAxis::new(
            at("2026-10-24T22:00:00Z"),
            at("2026-10-26T23:00:00Z"),
            Some(BucketUnit::Hour),
            "Europe/Berlin",
        )
        .unwrap();
        // 25 hours on 2026-10-25 local, 24 on the 26th.
        assert_eq!(autumn.buckets.len(), 49);
        assert!(autumn.quarter_hours_fit());
    }

    #[test]
    fn kolkata_hours_start_at_half_past_utc() {
        let axis = TimeAxis::new(
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T03:00:00Z"),
            Some(BucketUnit::Hour),
            "Asia/Kolkata",
        )
        .unwrap();
        assert_eq!(axis.buckets[0].start, at("2025-12-31T23:30:00Z"));
        assert_eq!(axis.buckets.len(), 4);
        let keys = axis.index_by_key();
        assert_eq!(
            keys[&key_in_rust(&axis, at("2026-01-01T00:29:59Z").timestamp())],
            0
        );
        assert_eq!(
            keys[&key_in_rust(&axis, at("2026-01-01T00:30:00Z").timestamp())],
            1
        );
    }

    #[test]
    fn weeks_start_on_monday_and_limits_are_enforced() {
        let axis = TimeAxis::new(
            at("2026-12-02T12:00:00Z"),
            at("2026-12-10T00:00:00Z"),
            Some(BucketUnit::Week),
            "UTC",
        )
        .unwrap();
        assert_eq!(axis.buckets[0].start, at("2026-11-30T00:00:00Z"));
        let keys = axis.index_by_key();
        assert_eq!(
            keys[&key_in_rust(&axis, at("2026-12-06T23:59:59Z").timestamp())],
            0
        );
        assert_eq!(
            keys[&key_in_rust(&axis, at("2026-12-07T00:00:00Z").timestamp())],
            1
        );
        let err = TimeAxis::new(
            at("2026-01-01T00:00:00Z"),
            at("2026-03-01T00:00:00Z"),
            Some(BucketUnit::Hour),
            "UTC",
        )
        .unwrap_err();
        let message = err.client_message();
        assert!(message.contains("more than 1000 buckets"), "{message}");
        assert!(
            TimeAxis::new(
                at("2026-01-01T00:00:00Z"),
                at("2026-01-02T00:00:00Z"),
                None,
                "Mars/Olympus"
            )
            .is_err()
        );
    }
}
