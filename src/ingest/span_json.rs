//! A span's attributes and events as bounded JSON: what is kept of a span's content and of
//! what mapped to no field. A payload over its size limit keeps its entries in order (the
//! attributes by key, then the events in time order) while they fit, cuts the string that does
//! not fit with a marker, and says what it left out under `"truncated"`, so a reader always
//! knows that it is looking at less than the span held.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Map, Value, json};

use crate::canonical::canonical_json;

/// Marker appended to a string cut to fit.
pub const CUT_MARKER: &str = "…[truncated]";

/// Room kept for the `"truncated"` summary itself.
const SUMMARY_BYTES: usize = 128;

/// An OTLP value as JSON (bytes as hex).
pub fn any_json(value: Option<&AnyValue>) -> Value {
    let Some(v) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        any_value::Value::ArrayValue(a) => {
            Value::Array(a.values.iter().map(|v| any_json(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => Value::Object(attributes_json(kv.values.iter())),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        // An index into a dictionary OTLP/HTTP requests do not carry.
        any_value::Value::StringValueStrindex(i) => json!({ "string_index": i }),
    }
}

/// Attributes as a JSON object (a repeated key keeps its last value).
pub fn attributes_json<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> Map<String, Value> {
    attrs
        .map(|kv| (kv.key.clone(), any_json(kv.value.as_ref())))
        .collect()
}

/// What a span held of one kind (content, or unmapped attributes and events).
#[derive(Default)]
pub struct Part {
    pub attributes: BTreeMap<String, Value>,
    pub events: Vec<Value>,
}

impl Part {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.events.is_empty()
    }

    /// The whole part as JSON: `{"attributes": {…}, "events": […]}` (empty members left out).
    pub fn whole(&self) -> Value {
        let mut m = Map::new();
        if !self.attributes.is_empty() {
            let attrs: Map<String, Value> = self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            m.insert("attributes".into(), Value::Object(attrs));
        }
        if !self.events.is_empty() {
            m.insert("events".into(), Value::Array(self.events.clone()));
        }
        Value::Object(m)
    }

    /// The part in canonical JSON, at most about `max` bytes: see the module comment.
    pub fn bounded(&self, max: usize) -> String {
        let whole = self.whole();
        let text = canonical_json(&whole);
        if text.len() <= max {
            return text;
        }
        let mut budget = max.saturating_sub(SUMMARY_BYTES);
        let mut kept_attrs = Map::new();
        let (mut dropped_attrs, mut dropped_events, mut cut) = (0usize, 0usize, 0usize);
        for (k, v) in &self.attributes {
            match fit(k.len() + 4, v, budget) {
                Some((v, used, was_cut)) => {
                    budget -= used;
                    cut += usize::from(was_cut);
                    kept_attrs.insert(k.clone(), v);
                }
                None => dropped_attrs += 1,
            }
        }
        let mut kept_events = Vec::new();
        for e in &self.events {
            let size = canonical_json(e).len() + 1;
            if size <= budget {
                budget -= size;
                kept_events.push(e.clone());
            } else {
                dropped_events += 1;
            }
        }
        let mut m = Map::new();
        if !kept_attrs.is_empty() {
            m.insert("attributes".into(), Value::Object(kept_attrs));
        }
        if !kept_events.is_empty() {
            m.insert("events".into(), Value::Array(kept_events));
        }
        m.insert(
            "truncated".into(),
            json!({
                "bytes": text.len(),
                "cut_values": cut,
                "dropped_attributes": dropped_attrs,
                "dropped_events": dropped_events,
            }),
        );
        canonical_json(&Value::Object(m))
    }
}

/// An entry within `budget` bytes: whole, or (a string) cut with [`CUT_MARKER`].
fn fit(key_bytes: usize, v: &Value, budget: usize) -> Option<(Value, usize, bool)> {
    let size = key_bytes + canonical_json(v).len();
    if size <= budget {
        return Some((v.clone(), size, false));
    }
    let Value::String(s) = v else { return None };
    let room = budget.checked_sub(key_bytes + CUT_MARKER.len() + 2 + 16)?;
    if room < 16 {
        return None;
    }
    let mut end = room.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = Value::String(format!("{}{CUT_MARKER}", &s[..end]));
    let size = key_bytes + canonical_json(&cut).len();
    (size <= budget).then_some((cut, size, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_over_its_limit_says_what_it_left_out() {
        let mut p = Part::default();
        p.attributes.insert("a".into(), json!("x".repeat(100)));
        p.attributes.insert("b".into(), json!("y".repeat(1000)));
        p.attributes.insert("c".into(), json!(5));
        let small = p.bounded(10_000);
        assert_eq!(small, canonical_json(&p.whole()));
        let bounded: Value = serde_json::from_str(&p.bounded(600)).unwrap_or_default();
        assert!(bounded.to_string().len() <= 600 + SUMMARY_BYTES);
        assert_eq!(bounded["attributes"]["a"], json!("x".repeat(100)));
        assert!(
            bounded["attributes"]["b"]
                .as_str()
                .is_some_and(|s| s.ends_with(CUT_MARKER))
        );
        assert_eq!(bounded["truncated"]["cut_values"], json!(1));
    }
}
