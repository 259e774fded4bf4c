//! Canonical forms that hashes are computed over: RFC 8785 JSON (JCS), UTC timestamps with
//! exactly microsecond precision, and the canonical JSON of each kind of evidence record.
//!
//! A hash must never depend on the backend that stored the record, on map ordering or on
//! float formatting, so everything hashed goes through this module.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use entity::{governance_events, llm_runs, system_records, telemetry_samples, trace_steps};

/// Truncates to microseconds: the precision both backends store.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// RFC 3339 in UTC with exactly six fractional digits, e.g. `2026-01-02T03:04:05.000006Z`.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(27);
    write_timestamp(&mut out, t);
    String::from_utf8(out).unwrap_or_else(|_| slow_timestamp(t))
}

fn slow_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Appends [`timestamp`]'s text: written digit by digit for years 0–9999 (this is on the hot
/// path of hashing and verification), through chrono's formatter otherwise.
pub fn write_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        out.extend_from_slice(slow_timestamp(t).as_bytes());
        return;
    }
    fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
        for i in (0..width).rev() {
            out.push(b'0' + ((value / 10u32.pow(i)) % 10) as u8);
        }
    }
    digits(out, year as u32, 4);
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    out.push(b'.');
    digits(out, nanos / 1000, 6);
    out.push(b'Z');
}

fn opt_timestamp(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref()
        .map_or(Value::Null, |t| Value::String(timestamp(t)))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serializes a JSON value in RFC 8785 canonical form.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&canonical_number(n)),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string as RFC 8785 §3.2.2.2 writes it: quote, backslash and control
/// characters escaped (the short forms `\b \f \n \r \t`, lower-case `\u00XX` otherwise),
/// everything else as it is.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// ECMAScript `Number.prototype.toString` for the value, as RFC 8785 §3.2.2.3 requires.
fn canonical_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        return "0".to_string();
    }
    let abs = f.abs();
    if (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-tripping decimal without exponent, as ES uses here.
        format!("{f}")
    } else {
        // ES writes the exponent with an explicit sign: 1e+21, 1e-7.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    }
}

/// Parses client JSON text and returns its canonical form.
pub fn canonicalize_text(text: &str) -> Result<String, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    Ok(canonical_json(&value))
}

/// Canonical JSON of a run record (every stored field but its own hash).
pub fn run_json(r: &llm_runs::Model) -> Value {
    let mut v = json!({
        "kind": "llm_run",
        "tenant_id": r.tenant_id,
        "run_id": r.run_id,
        "trace_id": r.trace_id,
        "provider": r.provider,
        "model": r.model,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_cents": r.cost_cents,
        "execution_status": r.execution_status,
        "started_at": timestamp(&r.started_at),
        "completed_at": opt_timestamp(&r.completed_at),
        "source": r.source,
        "is_synthetic": r.is_synthetic,
        "human_actor_id": r.human_actor_id,
        "agent_id": r.agent_id,
        "system_id": r.system_id,
        "origin": r.origin,
        "recorded_at": timestamp(&r.recorded_at),
    });
    // Fields added after records were first stored appear only when set: a record stored
    // before them keeps the canonical form (and the hash) it was written with.
    put_set(&mut v, "session_id", json!(r.session_id));
    put_set(&mut v, "cache_read_tokens", json!(r.cache_read_tokens));
    put_set(
        &mut v,
        "cache_creation_tokens",
        json!(r.cache_creation_tokens),
    );
    put_set(&mut v, "attributes", json!(r.attributes));
    put_set(&mut v, "content", json!(r.content));
    put_set(&mut v, "content_sha256", json!(r.content_sha256));
    v
}

/// Canonical JSON of a trace step.
pub fn step_json(s: &trace_steps::Model) -> Value {
    let mut v = json!({
        "kind": "trace_step",
        "tenant_id": s.tenant_id,
        "trace_id": s.trace_id,
        "step_index": s.step_index,
        "occurred_at": timestamp(&s.occurred_at),
        "skill_name": s.skill_name,
        "status": s.status,
        "outcome_category": s.outcome_category,
        "cost_cents": s.cost_cents,
        "duration_ms": s.duration_ms,
        "span_id": s.span_id,
        "recorded_at": timestamp(&s.recorded_at),
    });
    // As for runs: the usage, session, attribute and content fields only when set.
    put_set(&mut v, "provider", json!(s.provider));
    put_set(&mut v, "request_model", json!(s.request_model));
    put_set(&mut v, "response_model", json!(s.response_model));
    put_set(&mut v, "input_tokens", json!(s.input_tokens));
    put_set(&mut v, "output_tokens", json!(s.output_tokens));
    put_set(&mut v, "cache_read_tokens", json!(s.cache_read_tokens));
    put_set(
        &mut v,
        "cache_creation_tokens",
        json!(s.cache_creation_tokens),
    );
    put_set(&mut v, "session_id", json!(s.session_id));
    put_set(&mut v, "attributes", json!(s.attributes));
    put_set(&mut v, "content", json!(s.content));
    put_set(&mut v, "content_sha256", json!(s.content_sha256));
    v
}

/// Adds `key` to a canonical object when `value` is not null.
fn put_set(record: &mut Value, key: &str, value: Value) {
    if let (Some(map), false) = (record.as_object_mut(), value.is_null()) {
        map.insert(key.to_string(), value);
    }
}

/// Canonical JSON of a governance event.
pub fn governance_json(g: &governance_events::Model) -> Value {
    json!({
        "kind": "governance_event",
        "tenant_id": g.tenant_id,
        "id": g.id,
        "run_id": g.run_id,
        "occurred_at": timestamp(&g.occurred_at),
        "event_type": g.event_type,
        "policy_id": g.policy_id,
        "rule_id": g.rule_id,
        "decision": g.decision,
        "entity_type": g.entity_type,
        "entity_id": g.entity_id,
        "reason": g.reason,
        "recorded_at": timestamp(&g.recorded_at),
    })
}

/// Canonical JSON of a system record. `details` is embedded as JSON, not as text.
pub fn system_json(s: &system_records::Model) -> Value {
    let details = s
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .unwrap_or(Value::Null);
    json!({
        "kind": "system_record",
        "id": s.id,
        "tenant_id": s.tenant_id,
        "component": s.component,
        "event_type": s.event_type,
        "severity": s.severity,
        "summary": s.summary,
        "details": details,
        "caused_by": s.caused_by,
        "correlation_id": s.correlation_id,
        "origin": s.origin,
        "occurred_at": timestamp(&s.occurred_at),
        "recorded_at": timestamp(&s.recorded_at),
    })
}

/// Canonical JSON of a telemetry sample.
pub fn telemetry_json(t: &telemetry_samples::Model) -> Value {
    json!({
        "kind": "telemetry_sample",
        "tenant_id": t.tenant_id,
        "id": t.id,
        "run_id": t.run_id,
        "sampled_at": timestamp(&t.sampled_at),
        "metric": t.metric,
        "value": t.value,
        "unit": t.unit,
        "recorded_at": timestamp(&t.recorded_at),
    })
}

/// The canonical evidence bundle of a run: its record, its steps in index order and its
/// governance events in time order. Its SHA-256 is the run's export checksum.
pub fn run_bundle_json(
    run: &llm_runs::Model,
    steps: &[trace_steps::Model],
    governance: &[governance_events::Model],
) -> Value {
    let mut steps: Vec<&trace_steps::Model> = steps.iter().collect();
    steps.sort_by_key(|s| s.step_index);
    let mut governance: Vec<&governance_events::Model> = governance.iter().collect();
    governance.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
    json!({
        "kind": "llm_run_bundle",
        "format_version": 1,
        "run": run_json(run),
        "steps": steps.into_iter().map(step_json).collect::<Vec<_>>(),
        "governance_events": governance.into_iter().map(governance_json).collect::<Vec<_>>(),
    })
}

/// SHA-256 of the canonical form of a JSON value.
pub fn hash_json(value: &Value) -> String {
    sha256_hex(canonical_json(value).as_bytes())
}

/// A step's record hash computed up to its step index, for a span whose index is assigned only
/// once its trace's stored steps are seen (inside the write transaction): everything but the
/// index is serialized and hashed before, so the transaction only finishes the hash.
#[derive(Clone)]
pub struct StepDigest {
    /// SHA-256 state over the canonical text up to the index's digits.
    head: Sha256,
    /// The canonical text after them.
    tail: String,
}

impl StepDigest {
    /// The digest of `s` (whatever its `step_index` is now).
    pub fn of(s: &trace_steps::Model) -> Self {
        let text = canonical_json(&step_json(s));
        // A key is the only place `"step_index":` can occur: inside a string every quote is
        // escaped. Canonical keys are sorted, and the keys after it hold plain ids.
        const KEY: &str = "\"step_index\":";
        let Some(at) = text.rfind(KEY).map(|i| i + KEY.len()) else {
            unreachable!("a step's canonical JSON names its step index")
        };
        let end = text[at..].find([',', '}']).map_or(text.len(), |i| at + i);
        let mut head = Sha256::new();
        head.update(&text.as_bytes()[..at]);
        StepDigest {
            head,
            tail: text[end..].to_string(),
        }
    }

    /// The record hash of the step with `step_index`: `hash_json(&step_json(s))`.
    pub fn finish(&self, step_index: i32) -> String {
        let mut h = self.head.clone();
        h.update(step_index.to_string().as_bytes());
        h.update(self.tail.as_bytes());
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written escaping is serde_json's (which escapes what RFC 8785 requires).
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("é€😀\u{7f}\u{2028}\"\\");
        for s in [every.as_str(), "", "plain", "\"", "a\nb", "\u{1f}x"] {
            let mut out = String::new();
            write_string(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn a_step_digest_finishes_as_the_whole_hash() {
        use chrono::TimeZone;
        let at = Utc.timestamp_opt(1_780_000_000, 123_456_000).unwrap();
        let tricky = r#"{"step_index":7,"x":"\"step_index\":9}"}"#;
        let mut step = trace_steps::Model {
            tenant_id: "t".into(),
            trace_id: "tr\"step_index\":1".into(),
            step_index: 0,
            occurred_at: at,
            skill_name: "step_index".into(),
            status: "SUCCEEDED".into(),
            outcome_category: "OK".into(),
            cost_cents: 3,
            duration_ms: 5,
            span_id: Some("s".into()),
            recorded_at: at,
            record_hash: String::new(),
            anchor_id: None,
            provider: Some("openai".into()),
            request_model: None,
            response_model: Some("gpt-4o".into()),
            input_tokens: Some(10),
            output_tokens: None,
            cache_read_tokens: None,
            cache_creation_tokens: None,
            session_id: Some("step_index".into()),
            attributes: Some(tricky.into()),
            content: Some(tricky.into()),
            content_sha256: None,
        };
        let digest = StepDigest::of(&step);
        for index in [0, 1, 9, 10, 12_345, i32::MAX] {
            step.step_index = index;
            assert_eq!(
                digest.finish(index),
                hash_json(&step_json(&step)),
                "{index}"
            );
        }
    }

    #[test]
    fn fast_timestamps_match_chrono() {
        use chrono::TimeZone;
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Seconds between 1970 and 2200, any nanosecond.
            let secs = x.rem_euclid(7_258_118_400);
            let nanos = (x.rotate_left(17).rem_euclid(1_000_000_000)) as u32;
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(timestamp(&t), slow_timestamp(&t));
        }
        let far = Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(timestamp(&far), slow_timestamp(&far));
    }

    #[test]
    fn sorts_keys_by_utf16_and_formats_numbers_like_ecmascript() {
        // From RFC 8785 §3.2.3 and Appendix B.
        let v: Value =
            serde_json::from_str(r#"{"b":[1e30,4.5,0.000001,1e-7,-0,100],"a":"\u20ac","\r":1}"#)
                .unwrap_or(Value::Null);
        assert_eq!(
            canonical_json(&v),
            "{\"\\r\":1,\"a\":\"€\",\"b\":[1e+30,4.5,0.000001,1e-7,0,100]}"
        );
    }

    #[test]
    fn timestamps_have_exactly_six_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(timestamp(&t), "2026-01-02T03:04:05.000000Z");
    }
}

/// Serde support for timestamps in the canonical text form (six fractional digits, `Z`).
pub mod serde_timestamp {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::timestamp(t))
    }
}
