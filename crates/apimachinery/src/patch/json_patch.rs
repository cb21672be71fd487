//! RFC 6902 JSON Patch (`application/json-patch+json`).
//!
//! A patch is decoded into typed [`JsonPatchOperation`]s, then applied to a
//! copy of the document: either every operation succeeds and the copy is
//! returned, or the first failure is returned and the caller's document is
//! untouched.
//!
//! Pointers ([`JsonPointer`], RFC 6901) and array indices follow the RFC
//! strictly: an index is `0` or digits without a leading zero, `-` names the
//! slot after the last element (valid only as the target of `add`), and an
//! `add` may insert at any index up to and including the array's length.
//! Numbers compare by value in `test` (`1` equals `1.0`).

use std::fmt;

use serde_json::{Map, Value};

/// Upper bound on the nodes and string bytes that `copy` operations of one
/// patch may duplicate, so a short patch cannot grow a document without
/// bound (each `copy` can double it).
pub const MAX_ACCUMULATED_COPY_SIZE: usize = 10 * 1024 * 1024;

/// Why a JSON patch could not be decoded or applied.
///
/// [`JsonPatchError::Malformed`] means the body is not a JSON array of
/// objects (upstream answers 400). Every other variant is an operation that
/// could not be understood or does not apply to the document (upstream
/// answers 422); see [`super::PatchError::status_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    /// The patch is not an array, or an element is not an object. The
    /// wording is the Go decoder's, which is what upstream sends.
    #[error("json: cannot unmarshal {found} into Go value of type {expected}")]
    Malformed {
        found: &'static str,
        expected: &'static str,
    },
    /// `op` is missing, not a string, or not one of the six operations.
    #[error("Unexpected kind: {op}")]
    UnknownOperation { op: String },
    /// A member the operation requires (`path`, `from`, `value`) is absent.
    #[error("{op} operation missing {member} field")]
    MissingMember {
        op: &'static str,
        member: &'static str,
    },
    /// `path` or `from` is not a string holding a valid JSON pointer.
    #[error("{op} operation has an invalid {member} {value}: {reason}")]
    InvalidPointer {
        op: &'static str,
        member: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The location (or its parent, for `add`) does not exist.
    #[error("{op} operation does not apply: doc is missing {member}: {pointer}")]
    PathNotFound {
        op: &'static str,
        /// `"path"` or `"from path"`.
        member: &'static str,
        pointer: String,
    },
    /// An array was addressed with something that is not a valid index for
    /// it (not a number, a leading zero, out of bounds, or `-` where an
    /// existing element is required).
    #[error("{op} operation does not apply: invalid index {token:?} in {pointer}: invalid index referenced")]
    InvalidIndex {
        op: &'static str,
        pointer: String,
        token: String,
    },
    /// A `test` operation found a different value.
    #[error("testing value {pointer} failed: test failed")]
    TestFailed { pointer: String },
    /// `move` into one of the moved value's own descendants.
    #[error("move operation does not apply: from {from} is a proper prefix of path {path}")]
    MoveIntoDescendant { from: String, path: String },
    /// `remove` with the root pointer `""`.
    #[error("remove operation does not apply: the document root cannot be removed")]
    RemoveRoot,
    /// `copy` operations together duplicated more than
    /// [`MAX_ACCUMULATED_COPY_SIZE`].
    #[error("Unable to complete the copy, the accumulated size increase of copy is {size}, exceeding the limit {limit}")]
    CopyLimitExceeded { size: usize, limit: usize },
}

impl JsonPatchError {
    /// Whether the patch body itself is malformed (400) rather than an
    /// operation failing (422).
    pub fn is_malformed(&self) -> bool {
        matches!(self, JsonPatchError::Malformed { .. })
    }
}

/// Why a string is not an RFC 6901 JSON pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJsonPointer(pub &'static str);

/// An RFC 6901 JSON pointer, parsed into unescaped reference tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPointer {
    raw: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    /// The pointer `""`, naming the whole document.
    pub fn root() -> Self {
        JsonPointer {
            raw: String::new(),
            tokens: Vec::new(),
        }
    }

    /// Parses `""` or `/token/token...`, unescaping `~1` to `/` and `~0` to
    /// `~`. Any other `~` sequence is an error.
    pub fn parse(raw: &str) -> Result<Self, InvalidJsonPointer> {
        if raw.is_empty() {
            return Ok(Self::root());
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(InvalidJsonPointer(
                "a JSON pointer must be empty or start with '/'",
            ));
        };
        let mut tokens = Vec::new();
        for escaped in rest.split('/') {
            let mut token = String::with_capacity(escaped.len());
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    token.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => return Err(InvalidJsonPointer("'~' must be followed by '0' or '1'")),
                }
            }
            tokens.push(token);
        }
        Ok(JsonPointer {
            raw: raw.to_string(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The unescaped reference tokens, outermost first.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `self` names a strict ancestor of `other`.
    pub fn is_proper_prefix_of(&self, other: &JsonPointer) -> bool {
        self.tokens.len() < other.tokens.len() && other.tokens.starts_with(&self.tokens)
    }

    /// The value this pointer names in `doc`, if any.
    pub fn resolve<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        resolve(doc, &self.tokens)
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonPatchOperation {
    Add {
        path: JsonPointer,
        value: Value,
    },
    Remove {
        path: JsonPointer,
    },
    Replace {
        path: JsonPointer,
        value: Value,
    },
    Move {
        from: JsonPointer,
        path: JsonPointer,
    },
    Copy {
        from: JsonPointer,
        path: JsonPointer,
    },
    Test {
        path: JsonPointer,
        value: Value,
    },
}

impl JsonPatchOperation {
    /// The `op` member: `"add"`, `"remove"`, ...
    pub fn op(&self) -> &'static str {
        match self {
            JsonPatchOperation::Add { .. } => "add",
            JsonPatchOperation::Remove { .. } => "remove",
            JsonPatchOperation::Replace { .. } => "replace",
            JsonPatchOperation::Move { .. } => "move",
            JsonPatchOperation::Copy { .. } => "copy",
            JsonPatchOperation::Test { .. } => "test",
        }
    }

    /// The `path` member.
    pub fn path(&self) -> &JsonPointer {
        match self {
            JsonPatchOperation::Add { path, .. }
            | JsonPatchOperation::Remove { path }
            | JsonPatchOperation::Replace { path, .. }
            | JsonPatchOperation::Move { path, .. }
            | JsonPatchOperation::Copy { path, .. }
            | JsonPatchOperation::Test { path, .. } => path,
        }
    }

    /// Decodes one element of a patch array. Members other than `op`,
    /// `path`, `from` and `value` are ignored, as RFC 6902 requires.
    pub fn from_value(value: &Value) -> Result<Self, JsonPatchError> {
        let Value::Object(obj) = value else {
            return Err(JsonPatchError::Malformed {
                found: json_kind(value),
                expected: "jsonpatch.Operation",
            });
        };
        let op = match obj.get("op") {
            Some(Value::String(op)) => op.as_str(),
            _ => {
                return Err(JsonPatchError::UnknownOperation {
                    op: "unknown".to_string(),
                })
            }
        };
        let op: &'static str = match op {
            "add" => "add",
            "remove" => "remove",
            "replace" => "replace",
            "move" => "move",
            "copy" => "copy",
            "test" => "test",
            other => {
                return Err(JsonPatchError::UnknownOperation {
                    op: other.to_string(),
                })
            }
        };
        let path = pointer_member(obj, op, "path")?;
        let value = || {
            obj.get("value")
                .cloned()
                .ok_or(JsonPatchError::MissingMember {
                    op,
                    member: "value",
                })
        };
        Ok(match op {
            "add" => JsonPatchOperation::Add {
                path,
                value: value()?,
            },
            "remove" => JsonPatchOperation::Remove { path },
            "replace" => JsonPatchOperation::Replace {
                path,
                value: value()?,
            },
            "move" => JsonPatchOperation::Move {
                from: pointer_member(obj, op, "from")?,
                path,
            },
            "copy" => JsonPatchOperation::Copy {
                from: pointer_member(obj, op, "from")?,
                path,
            },
            _ => JsonPatchOperation::Test {
                path,
                value: value()?,
            },
        })
    }
}

fn pointer_member(
    obj: &Map<String, Value>,
    op: &'static str,
    member: &'static str,
) -> Result<JsonPointer, JsonPatchError> {
    match obj.get(member) {
        None => Err(JsonPatchError::MissingMember { op, member }),
        Some(Value::String(s)) => JsonPointer::parse(s).map_err(|InvalidJsonPointer(reason)| {
            JsonPatchError::InvalidPointer {
                op,
                member,
                value: format!("{s:?}"),
                reason,
            }
        }),
        Some(other) => Err(JsonPatchError::InvalidPointer {
            op,
            member,
            value: other.to_string(),
            reason: "a JSON pointer must be a string",
        }),
    }
}

/// A decoded JSON patch: an ordered list of operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonPatch {
    operations: Vec<JsonPatchOperation>,
}

impl From<Vec<JsonPatchOperation>> for JsonPatch {
    fn from(operations: Vec<JsonPatchOperation>) -> Self {
        JsonPatch { operations }
    }
}

impl JsonPatch {
    /// Decodes a patch document. `null` decodes as the empty patch, as it
    /// does upstream.
    pub fn from_value(patch: &Value) -> Result<Self, JsonPatchError> {
        let items = match patch {
            Value::Array(items) => items,
            Value::Null => return Ok(JsonPatch::default()),
            other => {
                return Err(JsonPatchError::Malformed {
                    found: json_kind(other),
                    expected: "jsonpatch.Patch",
                })
            }
        };
        // Shape errors (400) are reported before any operation error (422).
        if let Some(bad) = items.iter().find(|v| !v.is_object() && !v.is_null()) {
            return Err(JsonPatchError::Malformed {
                found: json_kind(bad),
                expected: "jsonpatch.Operation",
            });
        }
        let operations = items
            .iter()
            .map(|item| match item {
                // Go decodes a null element as an empty operation.
                Value::Null => Err(JsonPatchError::UnknownOperation {
                    op: "unknown".to_string(),
                }),
                other => JsonPatchOperation::from_value(other),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JsonPatch { operations })
    }

    pub fn operations(&self) -> &[JsonPatchOperation] {
        &self.operations
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Applies every operation in order to a copy of `doc` and returns it.
    pub fn apply(&self, doc: &Value) -> Result<Value, JsonPatchError> {
        let mut work = doc.clone();
        let mut copied = 0usize;
        for op in &self.operations {
            apply_operation(&mut work, op, &mut copied)?;
        }
        Ok(work)
    }

    /// Applies the patch to `doc` in place; on error `doc` is unchanged.
    pub fn apply_in_place(&self, doc: &mut Value) -> Result<(), JsonPatchError> {
        *doc = self.apply(doc)?;
        Ok(())
    }
}

/// Decodes `patch` and applies it to a copy of `doc`.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    JsonPatch::from_value(patch)?.apply(doc)
}

fn apply_operation(
    doc: &mut Value,
    op: &JsonPatchOperation,
    copied: &mut usize,
) -> Result<(), JsonPatchError> {
    match op {
        JsonPatchOperation::Add { path, value } => add(doc, "add", path, value.clone()),
        JsonPatchOperation::Remove { path } => remove(doc, "remove", "path", path).map(drop),
        JsonPatchOperation::Replace { path, value } => {
            if resolve(doc, path.tokens()).is_none() {
                return Err(not_found_or_bad_index(
                    doc,
                    "replace",
                    "path",
                    path,
                    IndexUse::Existing,
                ));
            }
            if let Some(target) = resolve_mut(doc, path.tokens()) {
                *target = value.clone();
            }
            Ok(())
        }
        JsonPatchOperation::Move { from, path } => {
            if resolve(doc, from.tokens()).is_none() {
                return Err(not_found_or_bad_index(
                    doc,
                    "move",
                    "from path",
                    from,
                    IndexUse::Existing,
                ));
            }
            if from == path {
                return Ok(());
            }
            if from.is_proper_prefix_of(path) {
                return Err(JsonPatchError::MoveIntoDescendant {
                    from: from.to_string(),
                    path: path.to_string(),
                });
            }
            let value = remove(doc, "move", "from path", from)?;
            add(doc, "move", path, value)
        }
        JsonPatchOperation::Copy { from, path } => {
            let value = resolve(doc, from.tokens()).cloned().ok_or_else(|| {
                not_found_or_bad_index(doc, "copy", "from path", from, IndexUse::Existing)
            })?;
            *copied = copied.saturating_add(value_size(&value));
            if *copied > MAX_ACCUMULATED_COPY_SIZE {
                return Err(JsonPatchError::CopyLimitExceeded {
                    size: *copied,
                    limit: MAX_ACCUMULATED_COPY_SIZE,
                });
            }
            add(doc, "copy", path, value)
        }
        JsonPatchOperation::Test { path, value } => {
            let actual = resolve(doc, path.tokens()).ok_or_else(|| {
                not_found_or_bad_index(doc, "test", "path", path, IndexUse::Existing)
            })?;
            if json_equal(actual, value) {
                Ok(())
            } else {
                Err(JsonPatchError::TestFailed {
                    pointer: path.to_string(),
                })
            }
        }
    }
}

#[derive(Clone, Copy)]
enum IndexUse {
    /// The index must name an existing element.
    Existing,
    /// The index may also be the array's length or `-` (add).
    Insert,
}

/// Parses an RFC 6901 array index: `0`, or digits not starting with `0`.
fn parse_index(token: &str) -> Option<usize> {
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if valid {
        token.parse().ok()
    } else {
        None
    }
}

fn resolve<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => parse_index(token).and_then(|i| items.get(i)),
        _ => None,
    })
}

fn resolve_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => parse_index(token).and_then(move |i| items.get_mut(i)),
        _ => None,
    })
}

/// Builds the error for a pointer that did not resolve: an index error when
/// the failing step is an array, a missing-path error otherwise.
fn not_found_or_bad_index(
    doc: &Value,
    op: &'static str,
    member: &'static str,
    pointer: &JsonPointer,
    last_use: IndexUse,
) -> JsonPatchError {
    let tokens = pointer.tokens();
    let mut node = doc;
    for (i, token) in tokens.iter().enumerate() {
        let next = match node {
            Value::Object(map) => map.get(token),
            Value::Array(items) => {
                let is_last = i + 1 == tokens.len();
                let ok = match parse_index(token) {
                    Some(idx) if is_last && matches!(last_use, IndexUse::Insert) => {
                        idx <= items.len()
                    }
                    Some(idx) => idx < items.len(),
                    None => is_last && matches!(last_use, IndexUse::Insert) && token == "-",
                };
                if !ok {
                    return JsonPatchError::InvalidIndex {
                        op,
                        pointer: pointer.to_string(),
                        token: token.clone(),
                    };
                }
                parse_index(token).and_then(|idx| items.get(idx))
            }
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    JsonPatchError::PathNotFound {
        op,
        member,
        pointer: pointer.to_string(),
    }
}

fn add(
    doc: &mut Value,
    op: &'static str,
    path: &JsonPointer,
    value: Value,
) -> Result<(), JsonPatchError> {
    let Some((last, parent_tokens)) = path.tokens().split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = |doc: &Value| not_found_or_bad_index(doc, op, "path", path, IndexUse::Insert);
    if resolve(doc, parent_tokens).is_none() {
        return Err(missing(doc));
    }
    let bad_index = || JsonPatchError::InvalidIndex {
        op,
        pointer: path.to_string(),
        token: last.clone(),
    };
    match resolve_mut(doc, parent_tokens) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match parse_index(last) {
                Some(idx) if idx <= items.len() => {
                    items.insert(idx, value);
                    Ok(())
                }
                _ => Err(bad_index()),
            }
        }
        _ => Err(JsonPatchError::PathNotFound {
            op,
            member: "path",
            pointer: path.to_string(),
        }),
    }
}

fn remove(
    doc: &mut Value,
    op: &'static str,
    member: &'static str,
    path: &JsonPointer,
) -> Result<Value, JsonPatchError> {
    let Some((last, parent_tokens)) = path.tokens().split_last() else {
        return Err(JsonPatchError::RemoveRoot);
    };
    if resolve(doc, path.tokens()).is_none() {
        return Err(not_found_or_bad_index(
            doc,
            op,
            member,
            path,
            IndexUse::Existing,
        ));
    }
    let not_found = || JsonPatchError::PathNotFound {
        op,
        member,
        pointer: path.to_string(),
    };
    match resolve_mut(doc, parent_tokens) {
        Some(Value::Object(map)) => map.remove(last).ok_or_else(not_found),
        Some(Value::Array(items)) => match parse_index(last) {
            Some(idx) if idx < items.len() => Ok(items.remove(idx)),
            _ => Err(not_found()),
        },
        _ => Err(not_found()),
    }
}

/// RFC 6902 §4.6 equality: numbers by numeric value, objects regardless of
/// member order, arrays element by element.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Nodes plus string bytes: a cheap stand-in for a value's encoded size.
fn value_size(value: &Value) -> usize {
    let mut size = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        size = size.saturating_add(1);
        match v {
            Value::String(s) => size = size.saturating_add(s.len()),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                for (k, v) in map {
                    size = size.saturating_add(k.len());
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    size
}

/// The JSON type name Go's decoder uses in its errors.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(doc: Value, patch: Value) -> Result<Value, JsonPatchError> {
        apply_json_patch(&doc, &patch)
    }

    // RFC 6902 Appendix A.

    #[test]
    fn json_patch_adds_object_member() {
        let out = apply(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
        );
        assert_eq!(out, Ok(json!({"baz": "qux", "foo": "bar"})));
    }

    #[test]
    fn json_patch_adds_array_element_before_index() {
        let out = apply(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
        );
        assert_eq!(out, Ok(json!({"foo": ["bar", "qux", "baz"]})));
    }

    #[test]
    fn json_patch_removes_object_member() {
        let out = apply(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
        );
        assert_eq!(out, Ok(json!({"foo": "bar"})));
    }

    #[test]
    fn json_patch_removes_array_element() {
        let out = apply(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
        );
        assert_eq!(out, Ok(json!({"foo": ["bar", "baz"]})));
    }

    #[test]
    fn json_patch_replaces_value() {
        let out = apply(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
        );
        assert_eq!(out, Ok(json!({"baz": "boo", "foo": "bar"})));
    }

    #[test]
    fn json_patch_moves_value_between_objects() {
        let out = apply(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
        );
        assert_eq!(
            out,
            Ok(json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}))
        );
    }

    #[test]
    fn json_patch_moves_array_element() {
        let out = apply(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
        );
        assert_eq!(out, Ok(json!({"foo": ["all", "cows", "eat", "grass"]})));
    }

    #[test]
    fn json_patch_test_succeeds_on_equal_values() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        let out = apply(
            doc.clone(),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ]),
        );
        assert_eq!(out, Ok(doc));
    }

    #[test]
    fn json_patch_test_fails_on_different_value() {
        let out = apply(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        );
        assert_eq!(
            out,
            Err(JsonPatchError::TestFailed {
                pointer: "/baz".into()
            })
        );
    }

    #[test]
    fn json_patch_adds_nested_member_object() {
        let out = apply(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
        );
        assert_eq!(out, Ok(json!({"foo": "bar", "child": {"grandchild": {}}})));
    }

    #[test]
    fn json_patch_ignores_unrecognized_members() {
        let out = apply(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
        );
        assert_eq!(out, Ok(json!({"foo": "bar", "baz": "qux"})));
    }

    #[test]
    fn json_patch_add_to_nonexistent_parent_fails() {
        let out = apply(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        );
        assert!(matches!(
            out,
            Err(JsonPatchError::PathNotFound { op: "add", .. })
        ));
    }

    #[test]
    fn json_patch_pointer_unescapes_tilde_after_slash() {
        let doc = json!({"/": 9, "~1": 10});
        let out = apply(
            doc.clone(),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
        );
        assert_eq!(out, Ok(doc));
    }

    #[test]
    fn json_patch_test_distinguishes_strings_from_numbers() {
        let out = apply(
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
        );
        assert!(matches!(out, Err(JsonPatchError::TestFailed { .. })));
    }

    #[test]
    fn json_patch_appends_array_value_with_dash() {
        let out = apply(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
        );
        assert_eq!(out, Ok(json!({"foo": ["bar", ["abc", "def"]]})));
    }

    // Atomicity and error cases.

    #[test]
    fn json_patch_failing_test_leaves_document_unchanged() {
        let mut doc = json!({"a": 1, "b": [1, 2]});
        let before = doc.clone();
        let patch = JsonPatch::from_value(&json!([
            {"op": "add", "path": "/c", "value": 3},
            {"op": "remove", "path": "/b/0"},
            {"op": "test", "path": "/a", "value": 2}
        ]))
        .expect("valid patch");
        let err = patch.apply_in_place(&mut doc);
        assert!(matches!(err, Err(JsonPatchError::TestFailed { .. })));
        assert_eq!(doc, before);
    }

    #[test]
    fn json_patch_applies_in_place_when_every_operation_succeeds() {
        let mut doc = json!({"a": 1});
        let patch = JsonPatch::from_value(&json!([{"op": "replace", "path": "/a", "value": 2}]))
            .expect("valid patch");
        assert_eq!(patch.apply_in_place(&mut doc), Ok(()));
        assert_eq!(doc, json!({"a": 2}));
    }

    #[test]
    fn json_patch_failed_test_message_matches_upstream() {
        let err = apply(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a", "value": 2}]),
        )
        .expect_err("test must fail");
        assert_eq!(err.to_string(), "testing value /a failed: test failed");
    }

    #[test]
    fn json_patch_add_at_array_length_appends() {
        let out = apply(
            json!([1, 2]),
            json!([{"op": "add", "path": "/2", "value": 3}]),
        );
        assert_eq!(out, Ok(json!([1, 2, 3])));
    }

    #[test]
    fn json_patch_add_past_array_length_fails() {
        let out = apply(
            json!([1, 2]),
            json!([{"op": "add", "path": "/3", "value": 3}]),
        );
        assert!(matches!(out, Err(JsonPatchError::InvalidIndex { .. })));
    }

    #[test]
    fn json_patch_rejects_index_with_leading_zero() {
        let out = apply(
            json!({"a": [1, 2]}),
            json!([{"op": "replace", "path": "/a/01", "value": 3}]),
        );
        assert!(matches!(out, Err(JsonPatchError::InvalidIndex { .. })));
    }

    #[test]
    fn json_patch_rejects_negative_index() {
        let out = apply(
            json!({"a": [1, 2]}),
            json!([{"op": "remove", "path": "/a/-1"}]),
        );
        assert!(matches!(out, Err(JsonPatchError::InvalidIndex { .. })));
    }

    #[test]
    fn json_patch_rejects_huge_index_without_panicking() {
        for path in ["/a/99999999999999999999999999", "/a/18446744073709551615"] {
            let out = apply(
                json!({"a": [1]}),
                json!([{"op": "add", "path": path, "value": 0}]),
            );
            assert!(
                matches!(out, Err(JsonPatchError::InvalidIndex { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn json_patch_remove_of_dash_fails() {
        let out = apply(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/-"}]));
        assert!(matches!(out, Err(JsonPatchError::InvalidIndex { .. })));
    }

    #[test]
    fn json_patch_replace_past_end_fails() {
        let out = apply(
            json!({"a": [1]}),
            json!([{"op": "replace", "path": "/a/1", "value": 2}]),
        );
        assert!(matches!(out, Err(JsonPatchError::InvalidIndex { .. })));
    }

    #[test]
    fn json_patch_replace_of_missing_member_fails() {
        let out = apply(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/b", "value": 2}]),
        );
        assert!(matches!(
            out,
            Err(JsonPatchError::PathNotFound { op: "replace", .. })
        ));
    }

    #[test]
    fn json_patch_remove_of_missing_member_fails() {
        let out = apply(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}]));
        assert!(matches!(
            out,
            Err(JsonPatchError::PathNotFound { op: "remove", .. })
        ));
    }

    #[test]
    fn json_patch_add_and_replace_at_root_replace_document() {
        assert_eq!(
            apply(
                json!({"a": 1}),
                json!([{"op": "add", "path": "", "value": [1]}])
            ),
            Ok(json!([1]))
        );
        assert_eq!(
            apply(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": {"b": 2}}])
            ),
            Ok(json!({"b": 2}))
        );
    }

    #[test]
    fn json_patch_remove_of_root_fails() {
        let out = apply(json!({"a": 1}), json!([{"op": "remove", "path": ""}]));
        assert_eq!(out, Err(JsonPatchError::RemoveRoot));
    }

    #[test]
    fn json_patch_add_through_scalar_fails() {
        let out = apply(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/a/b", "value": 2}]),
        );
        assert!(matches!(out, Err(JsonPatchError::PathNotFound { .. })));
    }

    #[test]
    fn json_patch_move_into_own_child_fails() {
        let out = apply(
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a/c"}]),
        );
        assert!(matches!(
            out,
            Err(JsonPatchError::MoveIntoDescendant { .. })
        ));
    }

    #[test]
    fn json_patch_move_to_same_path_is_a_no_op() {
        let doc = json!({"a": {"b": 1}});
        let out = apply(
            doc.clone(),
            json!([{"op": "move", "from": "/a/b", "path": "/a/b"}]),
        );
        assert_eq!(out, Ok(doc));
    }

    #[test]
    fn json_patch_move_from_missing_path_fails() {
        let out = apply(
            json!({"a": 1}),
            json!([{"op": "move", "from": "/x", "path": "/y"}]),
        );
        assert!(matches!(
            out,
            Err(JsonPatchError::PathNotFound {
                op: "move",
                member: "from path",
                ..
            })
        ));
    }

    #[test]
    fn json_patch_copies_value() {
        let out = apply(
            json!({"a": {"b": [1, 2]}}),
            json!([{"op": "copy", "from": "/a/b", "path": "/c"}]),
        );
        assert_eq!(out, Ok(json!({"a": {"b": [1, 2]}, "c": [1, 2]})));
    }

    #[test]
    fn json_patch_copy_amplification_is_bounded() {
        // Each copy doubles the document; without a bound 40 of them would
        // need terabytes.
        let ops: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "/a", "path": format!("/a/{i}")}))
            .collect();
        let out = apply(json!({"a": {"seed": "x".repeat(64)}}), Value::Array(ops));
        assert!(matches!(out, Err(JsonPatchError::CopyLimitExceeded { .. })));
    }

    #[test]
    fn json_patch_test_compares_numbers_by_value() {
        let doc = json!({"a": 1, "b": {"c": [1.0, 2]}});
        let out = apply(
            doc.clone(),
            json!([
                {"op": "test", "path": "/a", "value": 1.0},
                {"op": "test", "path": "/b", "value": {"c": [1, 2.0]}}
            ]),
        );
        assert_eq!(out, Ok(doc));
    }

    #[test]
    fn json_patch_test_of_missing_path_fails() {
        let out = apply(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/b", "value": null}]),
        );
        assert!(matches!(
            out,
            Err(JsonPatchError::PathNotFound { op: "test", .. })
        ));
    }

    #[test]
    fn json_patch_body_that_is_not_an_array_is_malformed() {
        let err = JsonPatch::from_value(&json!({"op": "add"})).expect_err("object");
        assert!(err.is_malformed());
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        let err = JsonPatch::from_value(&json!([1])).expect_err("number element");
        assert!(err.is_malformed());
    }

    #[test]
    fn json_patch_null_body_is_the_empty_patch() {
        assert_eq!(JsonPatch::from_value(&Value::Null).map(|p| p.len()), Ok(0));
    }

    #[test]
    fn json_patch_unknown_or_missing_op_is_an_operation_error() {
        let err = JsonPatch::from_value(&json!([{"op": "frobnicate", "path": "/a"}]))
            .expect_err("unknown op");
        assert_eq!(err.to_string(), "Unexpected kind: frobnicate");
        assert!(!err.is_malformed());
        let err = JsonPatch::from_value(&json!([{"path": "/a"}])).expect_err("no op");
        assert_eq!(err.to_string(), "Unexpected kind: unknown");
    }

    #[test]
    fn json_patch_requires_value_and_from_members() {
        assert_eq!(
            JsonPatch::from_value(&json!([{"op": "add", "path": "/a"}])),
            Err(JsonPatchError::MissingMember {
                op: "add",
                member: "value"
            })
        );
        assert_eq!(
            JsonPatch::from_value(&json!([{"op": "copy", "path": "/a"}])),
            Err(JsonPatchError::MissingMember {
                op: "copy",
                member: "from"
            })
        );
        assert_eq!(
            JsonPatch::from_value(&json!([{"op": "remove"}])),
            Err(JsonPatchError::MissingMember {
                op: "remove",
                member: "path"
            })
        );
    }

    #[test]
    fn json_patch_rejects_invalid_pointers() {
        for path in [json!("a/b"), json!("/a~2"), json!("/a~"), json!(5)] {
            let err = JsonPatch::from_value(&json!([{"op": "remove", "path": path}]))
                .expect_err("invalid pointer");
            assert!(
                matches!(err, JsonPatchError::InvalidPointer { .. }),
                "{path}: {err:?}"
            );
        }
    }

    #[test]
    fn json_pointer_parses_escapes_and_empty_tokens() {
        let p = JsonPointer::parse("/a~1b/~0c//").expect("valid");
        assert_eq!(p.tokens(), ["a/b", "~c", "", ""]);
        assert_eq!(p.to_string(), "/a~1b/~0c//");
        assert!(JsonPointer::parse("").expect("root").is_root());
        let doc = json!({"": {"": 1}});
        assert_eq!(
            JsonPointer::parse("//").expect("valid").resolve(&doc),
            Some(&json!(1))
        );
    }

    #[test]
    fn json_patch_handles_deeply_nested_documents() {
        // Deeper than serde_json's parser allows (128); much deeper values
        // overflow serde_json's own recursive clone and drop.
        let mut doc = json!(1);
        let mut path = String::new();
        for _ in 0..500 {
            doc = json!({"a": doc});
            path.push_str("/a");
        }
        let out =
            apply(doc, json!([{"op": "replace", "path": path, "value": 2}])).expect("deep replace");
        let mut node = &out;
        while let Some(next) = node.get("a") {
            node = next;
        }
        assert_eq!(node, &json!(2));
    }
}
