//! Positions in a ledger's commit order, and the opaque cursors that carry them to clients.
//!
//! Every evidence record is anchored by one ledger entry, and a tenant's ledger entries are
//! numbered in commit order (`seq`, assigned under the tenant's write lock). So a record's place
//! in the commit order is its anchor's seq, then its key within the batch; a ledger entry's is
//! its own seq. A [`Mark`] says how far a subscription got: everything up to it was delivered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};

/// How far a subscription got in one ledger: every item at a lower seq was delivered, and at
/// `seq` itself every item up to `key` (all of them when `key` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub seq: i64,
    pub key: Option<String>,
}

impl Mark {
    /// Everything up to and including `seq`.
    pub fn through(seq: i64) -> Mark {
        Mark { seq, key: None }
    }

    /// Whether the item at `(seq, key)` comes after the mark (is still to be delivered).
    pub fn precedes(&self, seq: i64, key: &str) -> bool {
        seq > self.seq || (seq == self.seq && self.key.as_deref().is_some_and(|k| key > k))
    }

    /// The highest seq whose items were all delivered: reads resume after it.
    pub fn done(&self) -> i64 {
        match self.key {
            Some(_) => self.seq - 1,
            None => self.seq,
        }
    }

    fn to_json(&self) -> Value {
        json!([self.seq, self.key])
    }

    fn from_json(v: &Value) -> Option<Mark> {
        let a = v.as_array()?;
        let seq = a.first()?.as_i64().filter(|s| *s >= 0)?;
        let key = match a.get(1)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return None,
        };
        (a.len() == 2).then_some(Mark { seq, key })
    }
}

/// A subscription's cursor: its mark in the tenant's ledger, and for system records (which
/// include the global ones) its mark in the platform ledger too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCursor {
    pub tenant: Mark,
    pub platform: Option<Mark>,
}

const VERSION: &str = "live1";

impl LiveCursor {
    /// The opaque text a client passes back as `after`.
    pub fn encode(&self) -> String {
        let mut parts = vec![json!(VERSION), self.tenant.to_json()];
        if let Some(p) = &self.platform {
            parts.push(p.to_json());
        }
        URL_SAFE_NO_PAD.encode(Value::Array(parts).to_string())
    }

    /// Reads a cursor given as `after`; BAD_USER_INPUT naming the argument when it is not one
    /// this server issued.
    pub fn decode(text: &str) -> AppResult<LiveCursor> {
        let bad = || {
            AppError::bad_input(format!(
                "`after` is not a subscription cursor: pass the `cursor` of an event or `liveCursor` \
                 (got `{}`)",
                text.chars().take(80).collect::<String>()
            ))
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let parts = value.as_array().ok_or_else(bad)?;
        if parts.first().and_then(Value::as_str) != Some(VERSION) || parts.len() > 3 {
            return Err(bad());
        }
        let tenant = parts.get(1).and_then(Mark::from_json).ok_or_else(bad)?;
        let platform = match parts.get(2) {
            Some(v) => Some(Mark::from_json(v).ok_or_else(bad)?),
            None => None,
        };
        Ok(LiveCursor { tenant, platform })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders() {
        let c = LiveCursor {
            tenant: Mark {
                seq: 7,
                key: Some("run-1|x".into()),
            },
            platform: Some(Mark::through(3)),
        };
        assert_eq!(LiveCursor::decode(&c.encode()).unwrap(), c);
        let m = &c.tenant;
        assert!(!m.precedes(7, "run-0"));
        assert!(!m.precedes(7, "run-1|x"));
        assert!(m.precedes(7, "run-2"));
        assert!(m.precedes(8, "a"));
        assert!(!m.precedes(6, "z"));
        assert_eq!(m.done(), 6);
        assert!(!Mark::through(7).precedes(7, "zzz"));
        assert_eq!(Mark::through(7).done(), 7);
        for bad in ["", "abc", &URL_SAFE_NO_PAD.encode("[\"live1\",[-1,null]]")] {
            assert_eq!(
                LiveCursor::decode(bad).unwrap_err().code(),
                "BAD_USER_INPUT"
            );
        }
    }
}
