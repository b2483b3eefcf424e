//! Expected against actual: which paths differ, and how.

use serde::Serialize;
use serde_json::Value;

use super::template::{lookup, text};

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// Where (a field path, or `status`, `reason`, …).
    pub path: String,
    /// What the scenario expects.
    pub expected: String,
    /// What came (`None`: nothing there).
    pub actual: Option<String>,
}

impl Mismatch {
    /// A difference of two texts.
    pub fn new(path: &str, expected: impl Into<String>, actual: Option<String>) -> Mismatch {
        Mismatch {
            path: path.to_owned(),
            expected: expected.into(),
            actual,
        }
    }
}

/// Compares the answer's value at `path` with `expected`, adding what differs to `out`.
///
/// A table compares the fields it names (others may be anything); a list compares length and each
/// item; a number matches the same number written as text (protobuf JSON writes 64-bit integers
/// as text). Operators, each a one-key table: `{ "$contains" = "text" }`, `{ "$len" = 3 }`,
/// `{ "$not" = value }`, `{ "$any" = true }` (present and not the default value).
pub fn field(answer: &Value, path: &str, expected: &Value, out: &mut Vec<Mismatch>) {
    match lookup(answer, path) {
        Ok(actual) => compare(path, expected, Some(actual), out),
        Err(_) => compare(path, expected, None, out),
    }
}

fn compare(path: &str, expected: &Value, actual: Option<&Value>, out: &mut Vec<Mismatch>) {
    if let Some((op, arg)) = operator(expected) {
        let ok = match (op, actual) {
            ("$contains", Some(a)) => text(a).contains(&text(arg)),
            ("$len", Some(Value::Array(items))) => Some(items.len() as u64) == arg.as_u64(),
            ("$len", Some(Value::String(s))) => Some(s.chars().count() as u64) == arg.as_u64(),
            ("$not", a) => !a.is_some_and(|a| same(arg, a)),
            ("$any", a) => a.is_some_and(|a| !is_default(a)) == (arg == &Value::Bool(true)),
            _ => false,
        };
        if !ok {
            out.push(Mismatch::new(
                path,
                format!("{op} {}", show(arg)),
                actual.map(show),
            ));
        }
        return;
    }
    match (expected, actual) {
        (Value::Object(fields), Some(Value::Object(_))) => {
            for (k, v) in fields {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                compare(&sub, v, actual.and_then(|a| a.get(k)), out);
            }
        }
        (Value::Array(want), Some(Value::Array(got))) if want.len() == got.len() => {
            for (i, (w, g)) in want.iter().zip(got).enumerate() {
                compare(&format!("{path}[{i}]"), w, Some(g), out);
            }
        }
        (e, Some(a)) if same(e, a) => {}
        (e, a) => out.push(Mismatch::new(path, show(e), a.map(show))),
    }
}

fn operator(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, arg) = map.iter().next()?;
    ["$contains", "$len", "$not", "$any"]
        .contains(&k.as_str())
        .then_some((k.as_str(), arg))
}

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            text(expected) == text(actual)
        }
        (Value::Object(e), Value::Object(_)) => e
            .iter()
            .all(|(k, v)| actual.get(k).is_some_and(|a| same(v, a))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| same(e, a))
        }
        _ => expected == actual,
    }
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_u64() == Some(0),
        Value::String(s) => s.is_empty() || s == "0" || s.ends_with("_UNSPECIFIED"),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A value as a short line of text for a diff.
pub fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diff(answer: Value, path: &str, expected: Value) -> Vec<Mismatch> {
        let mut out = Vec::new();
        field(&answer, path, &expected, &mut out);
        out
    }

    #[test]
    fn tables_compare_the_fields_they_name() {
        let a = json!({"order": {"status": "ORDER_STATUS_SUCCESS", "amount": "1.00", "n": "3"}});
        assert!(
            diff(
                a.clone(),
                "order",
                json!({"status": "ORDER_STATUS_SUCCESS"})
            )
            .is_empty()
        );
        assert!(diff(a.clone(), "order.n", json!(3)).is_empty());
        let d = diff(
            a.clone(),
            "order",
            json!({"status": "ORDER_STATUS_FAILED", "x": 1}),
        );
        assert_eq!(
            d,
            vec![
                Mismatch::new(
                    "order.status",
                    "\"ORDER_STATUS_FAILED\"",
                    Some("\"ORDER_STATUS_SUCCESS\"".into())
                ),
                Mismatch::new("order.x", "1", None),
            ]
        );
        assert_eq!(diff(a, "order.nothing", json!("x")).len(), 1);
    }

    #[test]
    fn operators() {
        let a = json!({"m": "the code expired", "l": [1, 2], "s": "", "e": "X_UNSPECIFIED"});
        assert!(diff(a.clone(), "m", json!({"$contains": "expired"})).is_empty());
        assert_eq!(diff(a.clone(), "m", json!({"$contains": "nope"})).len(), 1);
        assert!(diff(a.clone(), "l", json!({"$len": 2})).is_empty());
        assert_eq!(diff(a.clone(), "l", json!({"$len": 3})).len(), 1);
        assert!(diff(a.clone(), "m", json!({"$not": "x"})).is_empty());
        assert_eq!(
            diff(a.clone(), "m", json!({"$not": "the code expired"})).len(),
            1
        );
        assert!(diff(a.clone(), "m", json!({"$any": true})).is_empty());
        assert!(diff(a.clone(), "s", json!({"$any": false})).is_empty());
        assert_eq!(diff(a.clone(), "e", json!({"$any": true})).len(), 1);
        assert_eq!(diff(a, "missing", json!({"$any": true})).len(), 1);
    }

    #[test]
    fn lists_compare_length_and_items() {
        let a = json!({"l": [{"a": 1, "b": 2}, {"a": 3}]});
        assert!(diff(a.clone(), "l", json!([{"a": 1}, {"a": 3}])).is_empty());
        assert_eq!(diff(a.clone(), "l", json!([{"a": 1}])).len(), 1);
        let d = diff(a, "l", json!([{"a": 1}, {"a": 4}]));
        assert_eq!(d[0].path, "l[1].a");
    }
}
