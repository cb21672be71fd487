//! RFC 7386 JSON Merge Patch (input: object NUL patch). Never panics; `{}`
//! is the identity on objects; applying a patch twice changes nothing more
//! than applying it once; `create_merge_patch` never panics.
#![no_main]

use apimachinery::patch::{apply_merge_patch, create_merge_patch};
use libfuzzer_sys::fuzz_target;
use rustkube_fuzz::object_and_patch;
use serde_json::json;

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
    let _ = create_merge_patch(&object, &once);
});
