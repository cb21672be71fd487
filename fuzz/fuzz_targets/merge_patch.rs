//! RFC 7386 JSON Merge Patch (input: object NUL patch). Never panics; `{}`
//! is the identity on objects; applying a patch twice changes nothing more
//! than applying it once; and `create_merge_patch` from the object to the
//! result gives a patch that reproduces the result (merge patches cannot
//! carry `null` members, so only documents without them round-trip).
#![no_main]

use apimachinery::patch::{apply_merge_patch, create_merge_patch};
use libfuzzer_sys::fuzz_target;
use rustkube_fuzz::object_and_patch;
use serde_json::{json, Value};

fn has_null_member(value: &Value) -> bool {
    match value {
        Value::Object(members) => members.values().any(|v| v.is_null() || has_null_member(v)),
        Value::Array(items) => items.iter().any(has_null_member),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((object, patch)) = object_and_patch(data) else {
        return;
    };
    if object.is_object() {
        assert_eq!(apply_merge_patch(&object, &json!({})), object);
    }
    let once = apply_merge_patch(&object, &patch);
    let twice = apply_merge_patch(&once, &patch);
    assert_eq!(once, twice, "merge patch is not idempotent");
    let diff = create_merge_patch(&object, &once);
    if !has_null_member(&object) && !has_null_member(&once) {
        assert_eq!(apply_merge_patch(&object, &diff), once);
    }
});
