//! `{{…}}` templates in scenario values: saved answers and vars by path
//! (`{{signup.signup.signup_id}}`, `{{sms.messages[0].otp_code}}`), seeded random values
//! (`{{rand.hex}}`, …) and file digests (`{{files.NAME.sha256}}`).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What templates can see.
pub struct Env<'a> {
    /// Vars and saved answers.
    pub vars: &'a BTreeMap<String, Value>,
    /// File templates.
    pub files: &'a BTreeMap<String, String>,
    /// The scenario's seeded random source.
    pub rng: &'a mut StdRng,
}

/// Renders every string in `v`. A string that is one template alone takes the value's type (a
/// number stays a number, a table a table); otherwise values are spliced in as text.
pub fn render(v: &Value, env: &mut Env<'_>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => render_str(s, env)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render(i, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render(v, env)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Renders a string; the answer is always text.
pub fn render_text(s: &str, env: &mut Env<'_>) -> Result<String, String> {
    Ok(text(&render_str(s, env)?))
}

fn render_str(s: &str, env: &mut Env<'_>) -> Result<Value, String> {
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
        && trimmed.len() == s.len()
    {
        return eval(inner.trim(), env);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        out.push_str(&text(&eval(after[..end].trim(), env)?));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// A value as text: strings bare, everything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn eval(expr: &str, env: &mut Env<'_>) -> Result<Value, String> {
    if let Some((inner, filter)) = expr.rsplit_once('|') {
        let v = eval(inner.trim(), env)?;
        return apply(filter.trim(), v).map_err(|e| format!("{{{{{expr}}}}}: {e}"));
    }
    if let Some(kind) = expr.strip_prefix("rand.") {
        return random(kind, env.rng).map(Value::String);
    }
    if let Some(rest) = expr.strip_prefix("files.") {
        let (name, what) = rest
            .rsplit_once('.')
            .ok_or_else(|| format!("{{{{{expr}}}}}: files.NAME.sha256, .size, .base64 or .text"))?;
        let body = env
            .files
            .get(name)
            .ok_or_else(|| format!("{{{{{expr}}}}}: no file {name:?} in [files]"))?
            .clone();
        let mut inner = Env {
            vars: env.vars,
            files: &BTreeMap::new(),
            rng: env.rng,
        };
        let body = render_text(&body, &mut inner)?;
        return match what {
            "text" => Ok(Value::String(body)),
            "sha256" => Ok(Value::String(hex::encode(Sha256::digest(body.as_bytes())))),
            "size" => Ok(Value::from(body.len() as u64)),
            "base64" => {
                use base64::Engine;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(body.as_bytes()),
                ))
            }
            _ => Err(format!(
                "{{{{{expr}}}}}: files.NAME.sha256, .size, .base64 or .text"
            )),
        };
    }
    let (root, path) = match expr.find(['.', '[']) {
        Some(i) => (&expr[..i], &expr[i..]),
        None => (expr, ""),
    };
    let value = env.vars.get(root).ok_or_else(|| {
        format!("{{{{{expr}}}}}: no value {root:?} (not in [vars], not saved by `as`)")
    })?;
    lookup(value, path.strip_prefix('.').unwrap_or(path))
        .cloned()
        .map_err(|e| format!("{{{{{expr}}}}}: {e}"))
}

/// The filters `{{value | FILTER}}` applies.
pub const FILTERS: &[&str] = &["shift_digits", "upper", "lower", "repeat N", "list N"];

/// `list N` makes at most this many items.
const LIST_ITEMS_MAX: usize = 100_000;

/// `repeat N` makes at most this many bytes.
const REPEAT_BYTES_MAX: usize = 1 << 20;

fn apply(filter: &str, v: Value) -> Result<Value, String> {
    if let Some(n) = filter.strip_prefix("list ") {
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("list {n:?}: not a count"))?;
        if n > LIST_ITEMS_MAX {
            return Err(format!("list makes at most {LIST_ITEMS_MAX} items"));
        }
        return Ok(Value::Array(vec![v; n]));
    }
    let t = text(&v);
    if let Some(n) = filter.strip_prefix("repeat ") {
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("repeat {n:?}: not a count"))?;
        if t.len().saturating_mul(n) > REPEAT_BYTES_MAX {
            return Err(format!("repeat makes more than {REPEAT_BYTES_MAX} bytes"));
        }
        return Ok(Value::String(t.repeat(n)));
    }
    Ok(Value::String(match filter {
        // Every digit one up, 9 to 0: a code of the same length that is surely not this one.
        "shift_digits" => t
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_digit((d + 1) % 10, 10).unwrap_or(c),
                None => c,
            })
            .collect(),
        "upper" => t.to_uppercase(),
        "lower" => t.to_lowercase(),
        _ => {
            return Err(format!(
                "no filter {filter:?}; there are {}",
                FILTERS.join(", ")
            ));
        }
    }))
}

/// The value at `path` (`a.b[0].c`; empty: `v` itself).
pub fn lookup<'v>(v: &'v Value, path: &str) -> Result<&'v Value, String> {
    let mut cur = v;
    for seg in segments(path)? {
        cur = match seg {
            Seg::Key(k) => cur
                .get(k)
                .ok_or_else(|| format!("no field {k:?} at {path:?}"))?,
            Seg::Index(i) => {
                let items = cur
                    .as_array()
                    .ok_or_else(|| format!("{path:?}: [{i}] of something not a list"))?;
                items
                    .get(i)
                    .ok_or_else(|| format!("{path:?}: [{i}] of a list of {}", items.len()))?
            }
        };
    }
    Ok(cur)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Result<Vec<Seg<'_>>, String> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(body) = idx.strip_prefix('[') {
            let end = body
                .find(']')
                .ok_or_else(|| format!("{path:?}: unclosed ["))?;
            let n = body[..end]
                .parse()
                .map_err(|_| format!("{path:?}: [{}] is not an index", &body[..end]))?;
            out.push(Seg::Index(n));
            idx = &body[end + 1..];
        }
        if !idx.is_empty() {
            return Err(format!("{path:?}: {idx:?} after an index"));
        }
    }
    Ok(out)
}

/// The random values `{{rand.KIND}}` makes, each time a new one.
pub const RANDOM_KINDS: &[&str] = &["hex", "digits", "resident_id", "mobile", "card"];

fn random(kind: &str, rng: &mut StdRng) -> Result<String, String> {
    Ok(match kind {
        // 16 lower-case hex digits: unique names, order and batch numbers.
        "hex" => format!("{:016x}", rng.next_u64()),
        // 9 digits.
        "digits" => format!("{:09}", rng.random_range(0..1_000_000_000u32)),
        // A legal resident ID (Beijing Chaoyang, born 1990-03-07).
        "resident_id" => {
            let first17 = format!("11010519900307{:03}", rng.random_range(0..1000u32));
            let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
            format!("{first17}{check}")
        }
        // A China Mobile number (segment 138).
        "mobile" => format!("138{:08}", rng.random_range(0..100_000_000u32)),
        // A 19-digit card number of the bank's BIN with a valid check digit.
        "card" => shared::domain::CardNumber::issue(rng.next_u64())
            .expose()
            .to_owned(),
        _ => {
            return Err(format!(
                "{{{{rand.{kind}}}}}: rand.{} only",
                RANDOM_KINDS.join(", rand.")
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn env_with<'a>(
        vars: &'a BTreeMap<String, Value>,
        files: &'a BTreeMap<String, String>,
        rng: &'a mut StdRng,
    ) -> Env<'a> {
        Env { vars, files, rng }
    }

    #[test]
    fn paths_splice_and_keep_types() {
        let mut vars = BTreeMap::new();
        vars.insert(
            "sms".to_owned(),
            json!({"messages": [{"otp_code": "123456", "n": 3}]}),
        );
        let files = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(1);
        let mut env = env_with(&vars, &files, &mut rng);
        let v = render(
            &json!({"code": "{{sms.messages[0].otp_code}}", "n": "{{ sms.messages[0].n }}", "t": "n={{sms.messages[0].n}}!"}),
            &mut env,
        )
        .unwrap();
        assert_eq!(v, json!({"code": "123456", "n": 3, "t": "n=3!"}));
        let e = render(&json!("{{sms.messages[1].otp_code}}"), &mut env).unwrap_err();
        assert!(e.contains("[1] of a list of 1"), "{e}");
        let e = render(&json!("{{nope}}"), &mut env).unwrap_err();
        assert!(e.contains("no value \"nope\""), "{e}");
        assert!(render(&json!("{{sms"), &mut env).is_err());
        let v = render(
            &json!(
                "{{ sms.messages[0].otp_code | shift_digits }}/{{ sms.messages[0].otp_code|upper }}"
            ),
            &mut env,
        )
        .unwrap();
        assert_eq!(v, json!("234567/123456"));
        assert!(render(&json!("{{sms | nope}}"), &mut env).is_err());
        let v = render(&json!("{{ sms.messages[0] | list 2 }}"), &mut env).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(v[1]["otp_code"], json!("123456"));
        let v = render(&json!("{{ sms.messages[0].n | repeat 3 }}"), &mut env).unwrap();
        assert_eq!(v, json!("333"));
        assert!(render(&json!("{{ sms.messages[0].n | repeat 9999999 }}"), &mut env).is_err());
    }

    #[test]
    fn random_values_repeat_with_the_seed_and_are_legal() {
        let vars = BTreeMap::new();
        let files = BTreeMap::new();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut env = env_with(&vars, &files, &mut rng);
            render(
                &json!([
                    "{{rand.hex}}",
                    "{{rand.resident_id}}",
                    "{{rand.mobile}}",
                    "{{rand.card}}",
                    "{{rand.digits}}"
                ]),
                &mut env,
            )
            .unwrap()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let v = run(7);
        let id = v[1].as_str().unwrap();
        assert!(
            shared::domain::IdDocument::parse(
                shared::domain::IdType::ResidentId,
                id,
                chrono::NaiveDate::MAX
            )
            .is_ok()
        );
        assert!(shared::domain::Mobile::parse(v[2].as_str().unwrap()).is_ok());
        assert!(shared::domain::CardNumber::parse(v[3].as_str().unwrap()).is_ok());
    }

    #[test]
    fn files_render_then_digest() {
        let mut vars = BTreeMap::new();
        vars.insert("order".to_owned(), json!("A1"));
        let mut files = BTreeMap::new();
        files.insert("f".to_owned(), "x|{{order}}\n".to_owned());
        let mut rng = StdRng::seed_from_u64(1);
        let mut env = env_with(&vars, &files, &mut rng);
        let v = render(
            &json!([
                "{{files.f.text}}",
                "{{files.f.size}}",
                "{{files.f.base64}}",
                "{{files.f.sha256}}"
            ]),
            &mut env,
        )
        .unwrap();
        assert_eq!(v[0], json!("x|A1\n"));
        assert_eq!(v[1], json!(5));
        assert_eq!(v[2], json!("eHxBMQo="));
        assert_eq!(v[3].as_str().unwrap().len(), 64);
    }
}
