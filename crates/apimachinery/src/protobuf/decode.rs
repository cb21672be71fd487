//! Protobuf message -> Kubernetes JSON value.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{self, Field, Message, Scalar, Special, Type};
use super::wire::{Reader, WireValue, LEN};
use super::{ProtobufError, MAGIC, MAX_DEPTH};

/// Decode a whole body: magic, `runtime.Unknown` envelope, object.
pub(super) fn envelope(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let data = body.strip_prefix(&MAGIC).ok_or(ProtobufError::BadMagic)?;
    if data.is_empty() {
        return Err(ProtobufError::EmptyBody);
    }
    const UNKNOWN: &str = "runtime.Unknown";
    const TYPE_META: &str = "runtime.TypeMeta";
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    let mut reader = Reader::new(data, UNKNOWN);
    while let Some((number, value)) = reader.next_field()? {
        match (number, value) {
            (1, WireValue::Len(type_meta)) => {
                let mut tm = Reader::new(type_meta, TYPE_META);
                while let Some((n, v)) = tm.next_field()? {
                    match (n, v) {
                        (1, WireValue::Len(s)) => api_version = lossy(s),
                        (2, WireValue::Len(s)) => kind = lossy(s),
                        (1 | 2, v) => return Err(wrong_wire_type(TYPE_META, n, v)),
                        _ => {}
                    }
                }
            }
            (2, WireValue::Len(bytes)) => raw = bytes,
            (3, WireValue::Len(s)) => content_encoding = lossy(s),
            (4, WireValue::Len(_)) => {}
            (1..=4, v) => return Err(wrong_wire_type(UNKNOWN, number, v)),
            _ => {}
        }
    }
    if !content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(content_encoding));
    }
    if kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(ProtobufError::MissingApiVersion { kind });
    }
    let index = schema::message_for_kind(&api_version, &kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        }
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), Value::String(api_version));
    object.insert("kind".to_string(), Value::String(kind));
    // message_for_kind only returns messages whose JSON is an object.
    if let Value::Object(fields) = message(index, raw, depth + 1)? {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

fn wrong_wire_type(message: &'static str, field: u64, value: WireValue<'_>) -> ProtobufError {
    ProtobufError::WrongWireType {
        message,
        field,
        wire_type: value.wire_type(),
    }
}

/// Go converts protobuf strings to JSON without validating them; invalid
/// UTF-8 becomes U+FFFD there too.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn invalid(message: &'static str, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidValue {
        message,
        reason: reason.into(),
    }
}

/// Decode one message of the table into its JSON form.
pub(super) fn message(index: usize, data: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { limit: MAX_DEPTH });
    }
    let msg = schema::message(index);
    match msg.special {
        Special::None => Ok(Value::Object(object(msg, data, depth)?)),
        Special::Time | Special::MicroTime => timestamp(msg, data),
        Special::Duration => {
            let mut nanos: i64 = 0;
            let mut r = Reader::new(data, msg.name);
            while let Some((n, v)) = r.next_field()? {
                match (n, v) {
                    (1, WireValue::Varint(x)) => nanos = x as i64,
                    (1, v) => return Err(wrong_wire_type(msg.name, n, v)),
                    _ => {}
                }
            }
            Ok(Value::String(go_duration(nanos)))
        }
        Special::IntOrString => {
            let (mut ty, mut int_val, mut str_val) = (0i64, 0i32, String::new());
            let mut r = Reader::new(data, msg.name);
            while let Some((n, v)) = r.next_field()? {
                match (n, v) {
                    (1, WireValue::Varint(x)) => ty = x as i64,
                    (2, WireValue::Varint(x)) => int_val = x as i32,
                    (3, WireValue::Len(s)) => str_val = lossy(s),
                    (1..=3, v) => return Err(wrong_wire_type(msg.name, n, v)),
                    _ => {}
                }
            }
            match ty {
                0 => Ok(Value::from(int_val)),
                1 => Ok(Value::String(str_val)),
                other => Err(invalid(
                    msg.name,
                    format!("impossible IntOrString type {other}"),
                )),
            }
        }
        Special::Quantity => {
            let mut s: Option<String> = None;
            let mut r = Reader::new(data, msg.name);
            while let Some((n, v)) = r.next_field()? {
                match (n, v) {
                    (1, WireValue::Len(b)) => s = Some(lossy(b)),
                    (1, v) => return Err(wrong_wire_type(msg.name, n, v)),
                    _ => {}
                }
            }
            // An unset Quantity is zero, which Go writes as "0".
            Ok(Value::String(s.unwrap_or_else(|| "0".to_string())))
        }
        Special::RawJson => {
            let mut raw: &[u8] = &[];
            let mut r = Reader::new(data, msg.name);
            while let Some((n, v)) = r.next_field()? {
                match (n, v) {
                    (1, WireValue::Len(b)) => raw = b,
                    (1, v) => return Err(wrong_wire_type(msg.name, n, v)),
                    _ => {}
                }
            }
            raw_json(raw, depth)
        }
        Special::Items => {
            let mut obj = object(msg, data, depth)?;
            let items = msg.field(1).and_then(|f| obj.remove(f.json));
            // Go's nil slice, as Go writes it.
            Ok(items.unwrap_or(Value::Null))
        }
        Special::SchemaOrArray => {
            let mut obj = object(msg, data, depth)?;
            let array = msg.field(2).and_then(|f| obj.remove(f.json));
            let schema = msg.field(1).and_then(|f| obj.remove(f.json));
            Ok(array.or(schema).unwrap_or(Value::Null))
        }
        Special::SchemaOrBool => {
            let mut obj = object(msg, data, depth)?;
            let schema = msg.field(2).and_then(|f| obj.remove(f.json));
            let allows = msg.field(1).and_then(|f| obj.remove(f.json));
            Ok(schema.or(allows).unwrap_or(Value::Bool(false)))
        }
        Special::SchemaOrStringArray => {
            let mut obj = object(msg, data, depth)?;
            let array = msg.field(2).and_then(|f| obj.remove(f.json));
            let schema = msg.field(1).and_then(|f| obj.remove(f.json));
            Ok(array.or(schema).unwrap_or(Value::Null))
        }
    }
}

/// The JSON document in a `RawExtension`/`FieldsV1`/`JSON`: parsed when it
/// is JSON, decoded when it is a nested protobuf object, else base64.
fn raw_json(raw: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(&MAGIC) {
        return envelope(raw, depth + 1);
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(v) => Ok(v),
        Err(_) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(raw),
        )),
    }
}

/// What has been read for one field of a message.
enum Slot<'a> {
    Empty,
    One(Value),
    Many(Vec<Value>),
    /// The occurrences of a singular message field; protobuf merges them.
    Parts(Vec<&'a [u8]>),
    Map(Map<String, Value>),
}

fn object(
    msg: &'static Message,
    data: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut slots: Vec<Slot<'_>> = msg
        .fields
        .iter()
        .map(|f| match f.ty {
            Type::Map(..) => Slot::Map(Map::new()),
            _ if f.repeated => Slot::Many(Vec::new()),
            Type::Message(_) => Slot::Parts(Vec::new()),
            Type::Scalar(_) => Slot::Empty,
        })
        .collect();
    let mut r = Reader::new(data, msg.name);
    while let Some((number, value)) = r.next_field()? {
        let Some(pos) = msg
            .fields
            .binary_search_by_key(&number, |f| u64::from(f.number))
            .ok()
        else {
            continue; // unknown fields are ignored, as upstream does
        };
        let (Some(field), Some(slot)) = (msg.fields.get(pos), slots.get_mut(pos)) else {
            continue;
        };
        read_field(msg, field, value, slot, depth)?;
    }

    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let value = match slot {
            Slot::Empty => continue,
            Slot::One(v) => v,
            Slot::Many(vs) if vs.is_empty() => continue,
            Slot::Many(vs) => Value::Array(vs),
            Slot::Map(m) if m.is_empty() => continue,
            Slot::Map(m) => Value::Object(m),
            Slot::Parts(parts) if parts.is_empty() => continue,
            Slot::Parts(parts) => {
                let Type::Message(index) = field.ty else {
                    continue;
                };
                let value = if let [one] = parts.as_slice() {
                    message(index, one, depth + 1)?
                } else {
                    message(index, &parts.concat(), depth + 1)?
                };
                if field.inline {
                    if let Value::Object(inner) = value {
                        out.extend(inner);
                    }
                    continue;
                }
                value
            }
        };
        out.insert(field.json.to_string(), value);
    }
    Ok(out)
}

fn read_field<'a>(
    msg: &'static Message,
    field: &'static Field,
    value: WireValue<'a>,
    slot: &mut Slot<'a>,
    depth: usize,
) -> Result<(), ProtobufError> {
    let wrong = || ProtobufError::WrongWireType {
        message: msg.name,
        field: u64::from(field.number),
        wire_type: value.wire_type(),
    };
    match field.ty {
        Type::Scalar(s) => {
            if field.repeated {
                let Slot::Many(items) = slot else {
                    return Ok(());
                };
                match value {
                    // Packed: a run of values in one length-delimited field.
                    WireValue::Len(bytes) if s.wire_type() != LEN => {
                        let mut r = Reader::new(bytes, msg.name);
                        while !r.is_empty() {
                            let v = match s.wire_type() {
                                0 => WireValue::Varint(r.varint()?),
                                1 => WireValue::Fixed64(r.fixed64()?),
                                _ => WireValue::Fixed32(r.fixed32()?),
                            };
                            items.push(scalar(msg, s, v).ok_or_else(wrong)??);
                        }
                    }
                    v => items.push(scalar(msg, s, v).ok_or_else(wrong)??),
                }
            } else {
                *slot = Slot::One(scalar(msg, s, value).ok_or_else(wrong)??);
            }
        }
        Type::Message(index) => {
            let WireValue::Len(bytes) = value else {
                return Err(wrong());
            };
            match slot {
                Slot::Many(items) => items.push(message(index, bytes, depth + 1)?),
                Slot::Parts(parts) => parts.push(bytes),
                _ => {}
            }
        }
        Type::Map(key_type, value_type) => {
            let WireValue::Len(entry) = value else {
                return Err(wrong());
            };
            let (k, v) = map_entry(msg, key_type, value_type, entry, depth)?;
            if let Slot::Map(m) = slot {
                m.insert(k, v);
            }
        }
    }
    Ok(())
}

fn map_entry(
    msg: &'static Message,
    key_type: Scalar,
    value_type: &'static Type,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut key: Option<Value> = None;
    let mut value: Option<Value> = None;
    let mut r = Reader::new(entry, msg.name);
    while let Some((n, v)) = r.next_field()? {
        let wrong = || ProtobufError::WrongWireType {
            message: msg.name,
            field: n,
            wire_type: v.wire_type(),
        };
        match n {
            1 => key = Some(scalar(msg, key_type, v).ok_or_else(wrong)??),
            2 => {
                value = Some(match value_type {
                    Type::Scalar(s) => scalar(msg, *s, v).ok_or_else(wrong)??,
                    Type::Message(index) => match v {
                        WireValue::Len(bytes) => message(*index, bytes, depth + 1)?,
                        _ => return Err(wrong()),
                    },
                    // Protobuf has no maps of maps.
                    Type::Map(..) => return Err(wrong()),
                })
            }
            _ => {}
        }
    }
    let key = match key {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => match key_type {
            Scalar::String | Scalar::Bytes => String::new(),
            Scalar::Bool => "false".to_string(),
            _ => "0".to_string(),
        },
    };
    let value = match value {
        Some(v) => v,
        None => match value_type {
            Type::Scalar(s) => zero(*s),
            Type::Message(index) => message(*index, &[], depth + 1)?,
            Type::Map(..) => Value::Null,
        },
    };
    Ok((key, value))
}

fn zero(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

/// A scalar's JSON form; `None` when the wire type does not fit the type.
fn scalar(
    msg: &'static Message,
    s: Scalar,
    v: WireValue<'_>,
) -> Option<Result<Value, ProtobufError>> {
    let value = match (s, v) {
        (Scalar::String, WireValue::Len(b)) => Value::String(lossy(b)),
        (Scalar::Bytes, WireValue::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Scalar::Bool, WireValue::Varint(x)) => Value::Bool(x != 0),
        // Go truncates out-of-range varints to the field's width.
        (Scalar::Int32, WireValue::Varint(x)) => Value::from(x as i32),
        (Scalar::Int64, WireValue::Varint(x)) => Value::from(x as i64),
        (Scalar::Uint32, WireValue::Varint(x)) => Value::from(x as u32),
        (Scalar::Uint64, WireValue::Varint(x)) => Value::from(x),
        (Scalar::Sint32, WireValue::Varint(x)) => {
            let x = x as u32;
            Value::from(((x >> 1) as i32) ^ -((x & 1) as i32))
        }
        (Scalar::Sint64, WireValue::Varint(x)) => {
            Value::from(((x >> 1) as i64) ^ -((x & 1) as i64))
        }
        (Scalar::Fixed32, WireValue::Fixed32(x)) => Value::from(x),
        (Scalar::Sfixed32, WireValue::Fixed32(x)) => Value::from(x as i32),
        (Scalar::Fixed64, WireValue::Fixed64(x)) => Value::from(x),
        (Scalar::Sfixed64, WireValue::Fixed64(x)) => Value::from(x as i64),
        (Scalar::Float, WireValue::Fixed32(x)) => {
            // Shortest float32 representation, as Go writes float32s.
            let f = f32::from_bits(x);
            return Some(float(msg, f.to_string().parse::<f64>().unwrap_or(f64::NAN)));
        }
        (Scalar::Double, WireValue::Fixed64(x)) => return Some(float(msg, f64::from_bits(x))),
        _ => return None,
    };
    Some(Ok(value))
}

fn float(msg: &'static Message, f: f64) -> Result<Value, ProtobufError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| invalid(msg.name, format!("{f} has no JSON form")))
}

/// `meta.v1.Time` and `meta.v1.MicroTime`. An empty message is Go's zero
/// time, which it writes as `null`.
fn timestamp(msg: &'static Message, data: &[u8]) -> Result<Value, ProtobufError> {
    if data.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut r = Reader::new(data, msg.name);
    while let Some((n, v)) = r.next_field()? {
        match (n, v) {
            (1, WireValue::Varint(x)) => seconds = x as i64,
            (2, WireValue::Varint(x)) => nanos = x as i32,
            (1 | 2, v) => return Err(wrong_wire_type(msg.name, n, v)),
            _ => {}
        }
    }
    let micro = msg.special == Special::MicroTime;
    // Upstream drops the nanoseconds of a Time when it decodes one.
    let total = i128::from(seconds) * 1_000_000_000 + if micro { i128::from(nanos) } else { 0 };
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(total)
        .ok()
        .filter(|dt| (0..=9999).contains(&dt.year()))
        .ok_or_else(|| invalid(msg.name, format!("time out of range: {seconds}s")))?;
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    Ok(Value::String(if micro {
        format!("{date}.{:06}Z", dt.microsecond())
    } else {
        format!("{date}Z")
    }))
}

/// Go's `time.Duration.String()`: `1h0m0s`, `5m30s`, `1.5s`, `300ms`, `0s`.
pub(super) fn go_duration(d: i64) -> String {
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0 => return "0s".to_string(),
            1..=999 => ("ns", 0),
            1_000..=999_999 => ("µs", 3),
            _ => ("ms", 6),
        };
        let div = 10u64.pow(prec);
        s.push_str(&(u / div).to_string());
        s.push_str(&fraction(u % div, prec));
        s.push_str(unit);
        return s;
    }
    let frac = fraction(u % 1_000_000_000, 9);
    let secs = u / 1_000_000_000;
    let (h, m, sec) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        s.push_str(&format!("{h}h{m}m{sec}{frac}s"));
    } else if m > 0 {
        s.push_str(&format!("{m}m{sec}{frac}s"));
    } else {
        s.push_str(&format!("{sec}{frac}s"));
    }
    s
}

/// `.5` for (5, 1); the digits of `v / 10^prec` without trailing zeros.
fn fraction(v: u64, prec: u32) -> String {
    if v == 0 || prec == 0 {
        return String::new();
    }
    let digits = format!("{v:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}
