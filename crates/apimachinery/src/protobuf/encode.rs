//! Kubernetes JSON value -> protobuf message: the inverse of `decode`.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{self, Field, Message, Scalar, Special, Type};
use super::wire::{Writer, VARINT};
use super::{ProtobufError, MAGIC, MAX_DEPTH};

fn unencodable(path: &str, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::Unencodable {
        path: if path.is_empty() {
            "the object".to_string()
        } else {
            path.to_string()
        },
        reason: reason.into(),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn envelope(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let obj = object
        .as_object()
        .ok_or_else(|| unencodable("", "not a JSON object"))?;
    let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(ProtobufError::MissingApiVersion {
            kind: kind.to_string(),
        });
    }
    let index =
        schema::message_for_kind(api_version, kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    let msg = schema::message(index);
    let mut raw = Writer::default();
    fields(msg, obj, "", 1, &mut raw)?;
    check_known(msg, obj, "", &["apiVersion", "kind"])?;

    let mut type_meta = Writer::default();
    type_meta.bytes(1, api_version.as_bytes());
    type_meta.bytes(2, kind.as_bytes());
    let mut unknown = Writer::default();
    unknown.bytes(1, &type_meta.buf);
    unknown.bytes(2, &raw.buf);
    // Upstream always writes contentEncoding and contentType, empty.
    unknown.bytes(3, b"");
    unknown.bytes(4, b"");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&unknown.buf);
    Ok(out)
}

/// Whether `key` names a field of `msg` in JSON (inline fields included).
fn accepts(msg: &'static Message, key: &str) -> bool {
    msg.fields.iter().any(|f| {
        if f.inline {
            matches!(f.ty, Type::Message(i) if accepts(schema::message(i), key))
        } else {
            f.json == key
        }
    })
}

fn check_known(
    msg: &'static Message,
    obj: &Map<String, Value>,
    path: &str,
    ignore: &[&str],
) -> Result<(), ProtobufError> {
    match obj
        .keys()
        .find(|k| !ignore.contains(&k.as_str()) && !accepts(msg, k))
    {
        Some(k) => Err(unencodable(&child(path, k), "unknown field")),
        None => Ok(()),
    }
}

pub(super) fn message(
    index: usize,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<Vec<u8>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { limit: MAX_DEPTH });
    }
    let msg = schema::message(index);
    let mut w = Writer::default();
    let field = |n: u32| {
        msg.field(u64::from(n))
            .ok_or_else(|| unencodable(path, format!("{} has no field {n}", msg.name)))
    };
    match msg.special {
        Special::None => {
            let obj = value
                .as_object()
                .ok_or_else(|| unencodable(path, "expected an object"))?;
            fields(msg, obj, path, depth, &mut w)?;
            check_known(msg, obj, path, &[])?;
        }
        Special::Time | Special::MicroTime => {
            if let Some(s) = value.as_str() {
                let t =
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| unencodable(path, format!("not an RFC 3339 time: {e}")))?;
                w.key(1, VARINT);
                w.varint(t.unix_timestamp() as u64);
                w.key(2, VARINT);
                let nanos = if msg.special == Special::MicroTime {
                    t.nanosecond() / 1000 * 1000
                } else {
                    0
                };
                w.varint(u64::from(nanos));
            } else if !value.is_null() {
                return Err(unencodable(path, "expected a time string"));
            }
        }
        Special::Duration => {
            let s = value
                .as_str()
                .ok_or_else(|| unencodable(path, "expected a duration string"))?;
            let nanos = parse_go_duration(s)
                .ok_or_else(|| unencodable(path, format!("invalid duration {s:?}")))?;
            w.key(1, VARINT);
            w.varint(nanos as u64);
        }
        Special::IntOrString => {
            let (ty, int_val, str_val) = match value {
                Value::String(s) => (1u64, 0i64, s.as_str()),
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| unencodable(path, "not an int32"))?;
                    (0, i64::from(i), "")
                }
                _ => return Err(unencodable(path, "expected a number or a string")),
            };
            w.key(1, VARINT);
            w.varint(ty);
            w.key(2, VARINT);
            w.varint(int_val as u64);
            w.bytes(3, str_val.as_bytes());
        }
        Special::Quantity => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(unencodable(path, "expected a quantity")),
            };
            w.bytes(1, s.as_bytes());
        }
        Special::RawJson => {
            if !value.is_null() {
                let raw =
                    serde_json::to_vec(value).map_err(|e| unencodable(path, e.to_string()))?;
                w.bytes(1, &raw);
            }
        }
        Special::Items => {
            if !value.is_null() {
                encode_field(field(1)?, value, path, depth, &mut w)?;
            }
        }
        Special::SchemaOrArray => match value {
            Value::Array(_) => encode_field(field(2)?, value, path, depth, &mut w)?,
            Value::Null => {}
            _ => encode_field(field(1)?, value, path, depth, &mut w)?,
        },
        Special::SchemaOrBool => match value {
            Value::Bool(_) => encode_field(field(1)?, value, path, depth, &mut w)?,
            _ => {
                encode_field(field(1)?, &Value::Bool(true), path, depth, &mut w)?;
                encode_field(field(2)?, value, path, depth, &mut w)?;
            }
        },
        Special::SchemaOrStringArray => match value {
            Value::Array(_) => encode_field(field(2)?, value, path, depth, &mut w)?,
            Value::Null => {}
            _ => encode_field(field(1)?, value, path, depth, &mut w)?,
        },
    }
    Ok(w.buf)
}

/// The fields of `msg` found in `obj`, in field-number order.
fn fields(
    msg: &'static Message,
    obj: &Map<String, Value>,
    path: &str,
    depth: usize,
    w: &mut Writer,
) -> Result<(), ProtobufError> {
    for f in msg.fields {
        if f.inline {
            if let Type::Message(index) = f.ty {
                // A Go embedded struct: always written, from the same object.
                let mut inner = Writer::default();
                fields(schema::message(index), obj, path, depth + 1, &mut inner)?;
                w.bytes(f.number, &inner.buf);
            }
            continue;
        }
        if let Some(v) = obj.get(f.json) {
            encode_field(f, v, &child(path, f.json), depth, w)?;
        }
    }
    Ok(())
}

fn encode_field(
    f: &'static Field,
    v: &Value,
    path: &str,
    depth: usize,
    w: &mut Writer,
) -> Result<(), ProtobufError> {
    if v.is_null() {
        // Go writes a zero (non-pointer) time as `null` and as an empty
        // message; anything else null is simply absent.
        if let (Type::Message(index), false) = (f.ty, f.repeated) {
            if matches!(
                schema::message(index).special,
                Special::Time | Special::MicroTime
            ) {
                w.bytes(f.number, &[]);
            }
        }
        return Ok(());
    }
    match f.ty {
        Type::Map(key_type, value_type) => {
            let obj = v
                .as_object()
                .ok_or_else(|| unencodable(path, "expected an object"))?;
            for (k, item) in obj {
                let item_path = child(path, k);
                let mut entry = Writer::default();
                let key = Value::String(k.clone());
                let key = match key_type {
                    Scalar::String | Scalar::Bytes => key,
                    Scalar::Bool => Value::Bool(k == "true"),
                    _ => k
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| unencodable(&item_path, "map key is not an integer"))?,
                };
                scalar(1, key_type, &key, &item_path, &mut entry)?;
                match value_type {
                    Type::Scalar(s) => scalar(2, *s, item, &item_path, &mut entry)?,
                    Type::Message(index) => {
                        let m = message(*index, item, &item_path, depth + 1)?;
                        entry.bytes(2, &m);
                    }
                    Type::Map(..) => return Err(unencodable(path, "map of maps")),
                }
                w.bytes(f.number, &entry.buf);
            }
        }
        _ if f.repeated => {
            let items = v
                .as_array()
                .ok_or_else(|| unencodable(path, "expected an array"))?;
            match f.ty {
                Type::Scalar(s) if f.packed => {
                    let mut packed = Writer::default();
                    for (i, item) in items.iter().enumerate() {
                        scalar_value(s, item, &format!("{path}[{i}]"), &mut packed)?;
                    }
                    if !items.is_empty() {
                        w.bytes(f.number, &packed.buf);
                    }
                }
                Type::Scalar(s) => {
                    for (i, item) in items.iter().enumerate() {
                        scalar(f.number, s, item, &format!("{path}[{i}]"), w)?;
                    }
                }
                Type::Message(index) => {
                    for (i, item) in items.iter().enumerate() {
                        let m = message(index, item, &format!("{path}[{i}]"), depth + 1)?;
                        w.bytes(f.number, &m);
                    }
                }
                Type::Map(..) => return Err(unencodable(path, "repeated map")),
            }
        }
        Type::Scalar(s) => scalar(f.number, s, v, path, w)?,
        Type::Message(index) => {
            let m = message(index, v, path, depth + 1)?;
            w.bytes(f.number, &m);
        }
    }
    Ok(())
}

fn scalar(
    number: u32,
    s: Scalar,
    v: &Value,
    path: &str,
    w: &mut Writer,
) -> Result<(), ProtobufError> {
    match s.wire_type() {
        2 => {
            let bytes = scalar_bytes(s, v, path)?;
            w.bytes(number, &bytes);
            Ok(())
        }
        wire_type => {
            w.key(number, wire_type);
            scalar_value(s, v, path, w)
        }
    }
}

fn scalar_bytes(s: Scalar, v: &Value, path: &str) -> Result<Vec<u8>, ProtobufError> {
    let text = v
        .as_str()
        .ok_or_else(|| unencodable(path, "expected a string"))?;
    if s == Scalar::Bytes {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| unencodable(path, format!("invalid base64: {e}")))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// A numeric or bool scalar's value, without its key.
fn scalar_value(s: Scalar, v: &Value, path: &str, w: &mut Writer) -> Result<(), ProtobufError> {
    let int = |lo: i64, hi: i64| {
        v.as_i64()
            .filter(|i| (lo..=hi).contains(i))
            .ok_or_else(|| unencodable(path, format!("expected an integer in {lo}..={hi}")))
    };
    let uint = |hi: u64| {
        v.as_u64()
            .filter(|u| *u <= hi)
            .ok_or_else(|| unencodable(path, format!("expected an integer in 0..={hi}")))
    };
    let float = || {
        v.as_f64()
            .ok_or_else(|| unencodable(path, "expected a number"))
    };
    match s {
        Scalar::Bool => {
            let b = v
                .as_bool()
                .ok_or_else(|| unencodable(path, "expected a boolean"))?;
            w.varint(u64::from(b));
        }
        Scalar::Int32 => w.varint(int(i32::MIN.into(), i32::MAX.into())? as u64),
        Scalar::Int64 => w.varint(int(i64::MIN, i64::MAX)? as u64),
        Scalar::Uint32 => w.varint(uint(u32::MAX.into())?),
        Scalar::Uint64 => w.varint(uint(u64::MAX)?),
        Scalar::Sint32 => {
            let i = int(i32::MIN.into(), i32::MAX.into())? as i32;
            w.varint(u64::from(((i << 1) ^ (i >> 31)) as u32));
        }
        Scalar::Sint64 => {
            let i = int(i64::MIN, i64::MAX)?;
            w.varint(((i << 1) ^ (i >> 63)) as u64);
        }
        Scalar::Fixed32 => w
            .buf
            .extend_from_slice(&(uint(u32::MAX.into())? as u32).to_le_bytes()),
        Scalar::Sfixed32 => w
            .buf
            .extend_from_slice(&(int(i32::MIN.into(), i32::MAX.into())? as i32).to_le_bytes()),
        Scalar::Fixed64 => w.buf.extend_from_slice(&uint(u64::MAX)?.to_le_bytes()),
        Scalar::Sfixed64 => w
            .buf
            .extend_from_slice(&int(i64::MIN, i64::MAX)?.to_le_bytes()),
        Scalar::Float => w.buf.extend_from_slice(&(float()? as f32).to_le_bytes()),
        Scalar::Double => w.buf.extend_from_slice(&float()?.to_le_bytes()),
        Scalar::String | Scalar::Bytes => {
            // Never packed; written by `scalar` as length-delimited.
            let bytes = scalar_bytes(s, v, path)?;
            w.varint(bytes.len() as u64);
            w.buf.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

/// Go's `time.ParseDuration`: `1h0m0s`, `1.5s`, `300ms`, `-2m`, `0`.
pub(super) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = |t: &str| t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n = digits(rest);
        let (int_part, after) = rest.split_at(n);
        rest = after;
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let n = digits(after_dot);
            (frac_part, rest) = after_dot.split_at(n);
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let n = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(n);
        rest = after;
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        total = total.checked_add(int.checked_mul(scale)?)?;
        // Up to 18 fraction digits: enough below a nanosecond.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let f: i128 = frac_digits.parse().ok()?;
            let div = 10i128.checked_pow(u32::try_from(frac_digits.len()).ok()?)?;
            total = total.checked_add(f.checked_mul(scale)? / div)?;
        }
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).ok()
}
