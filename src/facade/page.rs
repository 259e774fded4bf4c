//! Keyset (cursor) pagination shared by every list.
//!
//! A cursor is the position of a row in its list's order: the sort key and the row's unique id,
//! opaque to clients (base64url of a tagged text). Pages are fetched with a row-value
//! comparison on an index of the same columns, `(sort, id) < (cursor_sort, cursor_id)`, and
//! `LIMIT size + 1` to learn whether more rows follow — never OFFSET, so a deep page costs what
//! the first page costs, and rows inserted while a client pages are neither lost nor repeated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select, Value};

use crate::domain::PageSize;
use crate::error::{AppError, AppResult};

/// Which list a cursor belongs to; a cursor of one list is refused by another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    RunsByStart,
    RunsByRecorded,
    SystemRecords,
    AuditEntries,
    Exports,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            ListKind::RunsByStart => "runs.started",
            ListKind::RunsByRecorded => "runs.recorded",
            ListKind::SystemRecords => "system",
            ListKind::AuditEntries => "audit",
            ListKind::Exports => "exports",
        }
    }

    /// Whether the list's sort key is an integer (ledger seq) rather than a time.
    fn sorts_by_int(self) -> bool {
        matches!(self, ListKind::AuditEntries)
    }
}

/// The sort value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Int(i64),
}

impl SortKey {
    fn value(&self) -> Value {
        match self {
            SortKey::Time(t) => Value::from(*t),
            SortKey::Int(i) => Value::from(*i),
        }
    }
}

/// A decoded cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub key: SortKey,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self, list: ListKind) -> String {
        let key = match &self.key {
            SortKey::Time(t) => format!("t{}", t.timestamp_micros()),
            SortKey::Int(i) => format!("i{i}"),
        };
        URL_SAFE_NO_PAD.encode(format!("v1|{}|{key}|{}", list.tag(), self.id))
    }

    pub fn decode(text: &str, list: ListKind, arg: &str) -> AppResult<Cursor> {
        let malformed = || {
            AppError::bad_input(format!(
                "`{arg}` is not a cursor of this list; pass an `endCursor`/`startCursor` or edge cursor it returned"
            ))
        };
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
        let raw = String::from_utf8(raw).map_err(|_| malformed())?;
        // No cursor this API returns holds a NUL, which PostgreSQL cannot even compare with.
        if raw.contains('\0') {
            return Err(malformed());
        }
        let mut parts = raw.splitn(4, '|');
        let (Some("v1"), Some(tag), Some(key), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if tag != list.tag() || id.is_empty() {
            return Err(malformed());
        }
        let key = if let Some(micros) = key.strip_prefix('t') {
            let micros: i64 = micros.parse().map_err(|_| malformed())?;
            SortKey::Time(DateTime::from_timestamp_micros(micros).ok_or_else(malformed)?)
        } else if let Some(i) = key.strip_prefix('i') {
            SortKey::Int(i.parse().map_err(|_| malformed())?)
        } else {
            return Err(malformed());
        };
        // A forged cursor with the other kind of key would compare a time with an integer.
        if matches!(key, SortKey::Int(_)) != list.sorts_by_int() {
            return Err(malformed());
        }
        Ok(Cursor {
            key,
            id: id.to_string(),
        })
    }
}

/// A validated page request.
#[derive(Clone, Debug)]
pub struct PageArgs {
    pub list: ListKind,
    pub size: u64,
    /// Paging with `last`/`before`.
    pub backward: bool,
    pub cursor: Option<Cursor>,
}

impl PageArgs {
    pub fn parse(
        list: ListKind,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<PageArgs> {
        let (size, backward) = PageSize::parse(first, last)?;
        let cursor = match (after, before, backward) {
            (Some(_), Some(_), _) => {
                return Err(AppError::bad_input(
                    "pass either `after` or `before`, not both",
                ));
            }
            (Some(a), None, false) => Some(Cursor::decode(&a, list, "after")?),
            (None, Some(b), true) => Some(Cursor::decode(&b, list, "before")?),
            (None, Some(b), false) if first.is_none() => {
                // `before` alone pages backward with the default size.
                return Ok(PageArgs {
                    list,
                    size: size.get(),
                    backward: true,
                    cursor: Some(Cursor::decode(&b, list, "before")?),
                });
            }
            (Some(_), None, true) => {
                return Err(AppError::bad_input("`after` goes with `first`, not `last`"));
            }
            (None, Some(_), false) => {
                return Err(AppError::bad_input(
                    "`before` goes with `last`, not `first`",
                ));
            }
            (None, None, _) => None,
        };
        Ok(PageArgs {
            list,
            size: size.get(),
            backward,
            cursor,
        })
    }
}

/// One page of rows with their cursors.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_previous: bool,
    pub has_next: bool,
}

/// Applies the keyset condition, order and limit for a list sorted by `(sort, id)`
/// (`id` may be absent when the sort column is unique, like a ledger seq).
pub fn keyset<E: EntityTrait>(
    select: Select<E>,
    sort: E::Column,
    id: Option<E::Column>,
    descending: bool,
    args: &PageArgs,
) -> Select<E> {
    // Walking backward flips the scan; the page is reversed again after fetching.
    let scan_desc = descending != args.backward;
    let mut select = select;
    if let Some(cursor) = &args.cursor {
        let (lhs, rhs) = match id {
            Some(id_col) => (
                Expr::tuple([Expr::col(sort), Expr::col(id_col)]),
                Expr::tuple([Expr::val(cursor.key.value()), Expr::val(cursor.id.clone())]),
            ),
            None => (Expr::col(sort), Expr::val(cursor.key.value())),
        };
        select = select.filter(if scan_desc { lhs.lt(rhs) } else { lhs.gt(rhs) });
    }
    let order = if scan_desc { Order::Desc } else { Order::Asc };
    select = select.order_by(sort, order.clone());
    if let Some(id_col) = id {
        select = select.order_by(id_col, order);
    }
    select.limit(args.size + 1)
}

/// Turns the `size + 1` fetched rows into a page in list order.
impl<T> Page<T> {
    /// The same page with each item mapped.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_previous: self.has_previous,
            has_next: self.has_next,
        }
    }
}

pub fn finish<T>(mut rows: Vec<T>, args: &PageArgs, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = rows.len() as u64 > args.size;
    rows.truncate(args.size as usize);
    if args.backward {
        rows.reverse();
    }
    let items = rows
        .into_iter()
        .map(|row| (cursor_of(&row).encode(args.list), row))
        .collect();
    let had_cursor = args.cursor.is_some();
    let (has_previous, has_next) = if args.backward {
        (more, had_cursor)
    } else {
        (had_cursor, more)
    };
    Page {
        items,
        has_previous,
        has_next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_list() {
        let c = Cursor {
            key: SortKey::Time(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            id: "run|with|bars".into(),
        };
        let text = c.encode(ListKind::RunsByStart);
        assert_eq!(
            Cursor::decode(&text, ListKind::RunsByStart, "after").unwrap(),
            c
        );
        assert!(Cursor::decode(&text, ListKind::AuditEntries, "after").is_err());
        assert!(Cursor::decode("not-a-cursor!", ListKind::RunsByStart, "after").is_err());
        let forged = URL_SAFE_NO_PAD.encode("v1|runs.started|i5|x");
        assert!(Cursor::decode(&forged, ListKind::RunsByStart, "after").is_err());
    }
}
