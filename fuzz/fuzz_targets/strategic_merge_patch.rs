//! Strategic merge patch (input: object NUL patch) with the object's
//! built-in kind's metadata (a Pod's for anything else). Never panics, bad
//! directives are errors; `{}` is the identity on objects; the diff
//! `kubectl` would send never panics.
#![no_main]

use apimachinery::patch::{apply_strategic_merge_patch, create_strategic_merge_patch};
use libfuzzer_sys::fuzz_target;
use rustkube_fuzz::{meta_for, object_and_patch};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((object, patch)) = object_and_patch(data) else {
        return;
    };
    let meta = meta_for(&object);
    if object.is_object() {
        let unchanged = apply_strategic_merge_patch(&object, &json!({}), &meta);
        assert_eq!(unchanged.as_ref(), Ok(&object));
    }
    if let Ok(patched) = apply_strategic_merge_patch(&object, &patch, &meta) {
        let _ = create_strategic_merge_patch(&object, &patched, &meta);
    }
    let _ = create_strategic_merge_patch(&object, &patch, &meta);
});
