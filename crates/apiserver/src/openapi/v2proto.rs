//! The Swagger 2.0 document as the protobuf message kubectl 1.27 and 1.28
//! ask for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! gnostic's `openapi.v2.Document` (field numbers from its
//! `OpenAPIv2.proto`). Only the parts a Kubernetes document uses are
//! written: info, paths (operations, query/path/body parameters,
//! responses, vendor extensions) and definitions. Extension and `default`
//! values travel as YAML text in `Any.yaml`, as gnostic does.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(((field as u64) << 3) | wire_type as u64);
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    /// proto3: an empty string is the default and is not written.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `Any { yaml = 2 }`.
fn any(value: &Value) -> Msg {
    let mut m = Msg::default();
    let yaml = serde_yaml::to_string(value).unwrap_or_default();
    m.string(2, &yaml);
    m
}

/// `NamedAny { name = 1; value = 2 }` for each `x-` key of `obj`.
fn vendor_extensions(out: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.message(2, any(v));
        out.message(field, named);
    }
}

/// Encode a Swagger 2.0 document (as served in JSON) as `openapi.v2.Document`.
pub fn document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    m.string(1, str_of(doc, "swagger"));
    if let Some(info) = doc.get("info") {
        let mut i = Msg::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        m.message(2, i);
    }
    if let Some(Value::Object(paths)) = doc.get("paths") {
        let mut p = Msg::default();
        for (name, item) in paths {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        m.message(8, p);
    }
    if let Some(Value::Object(defs)) = doc.get("definitions") {
        let mut d = Msg::default();
        for (name, schema) in defs {
            d.message(1, named_schema(name, schema));
        }
        m.message(9, d);
    }
    m.0
}

fn path_item(item: &Value) -> Msg {
    let mut m = Msg::default();
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = item.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameters_item(p));
    }
    if let Value::Object(obj) = item {
        vendor_extensions(&mut m, 10, obj);
    }
    m
}

fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    for tag in strings(op, "tags") {
        m.string(1, tag);
    }
    m.string(3, str_of(op, "description"));
    m.string(5, str_of(op, "operationId"));
    for p in strings(op, "produces") {
        m.string(6, p);
    }
    for c in strings(op, "consumes") {
        m.string(7, c);
    }
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameters_item(p));
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        let mut r = Msg::default();
        for (code, resp) in responses {
            let mut response = Msg::default();
            response.string(1, str_of(resp, "description"));
            if let Some(schema) = resp.get("schema") {
                // SchemaItem { schema = 1 }
                let mut item = Msg::default();
                item.message(1, schema_msg(schema));
                response.message(2, item);
            }
            // ResponseValue { response = 1 }
            let mut value = Msg::default();
            value.message(1, response);
            let mut named = Msg::default();
            named.string(1, code);
            named.message(2, value);
            r.message(1, named);
        }
        m.message(9, r);
    }
    for s in strings(op, "schemes") {
        m.string(10, s);
    }
    m.bool(11, bool_of(op, "deprecated"));
    if let Value::Object(obj) = op {
        vendor_extensions(&mut m, 13, obj);
    }
    m
}

fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// `ParametersItem { parameter = 1 }`: a body parameter, or a non-body one
/// (query or path) with its primitive type.
fn parameters_item(p: &Value) -> Msg {
    let mut parameter = Msg::default();
    let location = str_of(p, "in");
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, str_of(p, "description"));
        body.string(2, str_of(p, "name"));
        body.string(3, location);
        body.bool(4, bool_of(p, "required"));
        if let Some(schema) = p.get("schema") {
            body.message(5, schema_msg(schema));
        }
        parameter.message(1, body);
    } else {
        // Query and path sub-schemas share their first fields' numbers.
        let mut sub = Msg::default();
        sub.bool(1, bool_of(p, "required"));
        sub.string(2, location);
        sub.string(3, str_of(p, "description"));
        sub.string(4, str_of(p, "name"));
        let (type_field, format_field, unique_field, sub_field) = match location {
            "path" => (5, 6, 19, 4),
            "header" => (5, 6, 19, 1),
            _ => (6, 7, 20, 3),
        };
        sub.string(type_field, str_of(p, "type"));
        sub.string(format_field, str_of(p, "format"));
        sub.bool(unique_field, bool_of(p, "uniqueItems"));
        let mut non_body = Msg::default();
        non_body.message(sub_field, sub);
        parameter.message(2, non_body);
    }
    let mut item = Msg::default();
    item.message(1, parameter);
    item
}

fn named_schema(name: &str, schema: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, schema_msg(schema));
    m
}

fn schema_msg(schema: &Value) -> Msg {
    let mut m = Msg::default();
    // A boolean schema (`true`: anything) is an empty Schema.
    let Value::Object(obj) = schema else {
        return m;
    };
    m.string(1, str_of(schema, "$ref"));
    m.string(2, str_of(schema, "format"));
    m.string(3, str_of(schema, "title"));
    m.string(4, str_of(schema, "description"));
    if let Some(default) = obj.get("default") {
        m.message(5, any(default));
    }
    let num = |k: &str| obj.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| obj.get(k).and_then(Value::as_i64).unwrap_or(0);
    m.double(6, num("multipleOf"));
    m.double(7, num("maximum"));
    m.bool(8, bool_of(schema, "exclusiveMaximum"));
    m.double(9, num("minimum"));
    m.bool(10, bool_of(schema, "exclusiveMinimum"));
    m.int64(11, int("maxLength"));
    m.int64(12, int("minLength"));
    m.string(13, str_of(schema, "pattern"));
    m.int64(14, int("maxItems"));
    m.int64(15, int("minItems"));
    m.bool(16, bool_of(schema, "uniqueItems"));
    m.int64(17, int("maxProperties"));
    m.int64(18, int("minProperties"));
    for r in strings(schema, "required") {
        m.string(19, r);
    }
    for e in obj
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match obj.get("additionalProperties") {
        // AdditionalPropertiesItem { schema = 1 | boolean = 2 }
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.key(2, 0);
            a.varint(u64::from(*b));
            m.message(21, a);
        }
        Some(s @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.message(1, schema_msg(s));
            m.message(21, a);
        }
        _ => {}
    }
    match obj.get("type") {
        // TypeItem { repeated value = 1 }
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.string(1, t);
            m.message(22, t_msg);
        }
        Some(Value::Array(ts)) => {
            let mut t_msg = Msg::default();
            for t in ts.iter().filter_map(Value::as_str) {
                t_msg.string(1, t);
            }
            m.message(22, t_msg);
        }
        _ => {}
    }
    if let Some(items) = obj.get("items") {
        // ItemsItem { repeated schema = 1 }
        let mut i = Msg::default();
        match items {
            Value::Array(list) => list.iter().for_each(|s| i.message(1, schema_msg(s))),
            s => i.message(1, schema_msg(s)),
        }
        m.message(23, i);
    }
    for s in obj
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema_msg(s));
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        // Properties { repeated NamedSchema additional_properties = 1 }
        let mut p = Msg::default();
        for (name, s) in props {
            p.message(1, named_schema(name, s));
        }
        m.message(25, p);
    }
    m.string(26, str_of(schema, "discriminator"));
    m.bool(27, bool_of(schema, "readOnly"));
    if let Some(example) = obj.get("example") {
        m.message(30, any(example));
    }
    vendor_extensions(&mut m, 31, obj);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_strings_use_protobuf_wire_format() {
        let mut m = Msg::default();
        m.varint(300);
        assert_eq!(m.0, vec![0xac, 0x02]);
        let mut m = Msg::default();
        m.string(1, "2.0");
        assert_eq!(m.0, vec![0x0a, 3, b'2', b'.', b'0']);
    }

    #[test]
    fn document_encodes_swagger_version_and_named_definitions() {
        let doc = json!({
            "swagger": "2.0",
            "definitions": {"io.k8s.X": {"type": "object", "required": ["a"]}},
        });
        let bytes = document(&doc);
        // swagger = 1
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // definitions = 9 (tag 0x4a), holding NamedSchema { name = 1 }
        let at = bytes.iter().position(|b| *b == 0x4a).unwrap();
        let text = String::from_utf8_lossy(&bytes[at..]);
        assert!(text.contains("io.k8s.X"));
        assert!(text.contains("object"));
    }

    #[test]
    fn extensions_travel_as_yaml() {
        let schema = json!({"x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]});
        let bytes = schema_msg(&schema).0;
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(text.contains("kind: Pod"), "{text}");
    }
}
