//! RFC 6902 JSON Patch (input: object NUL patch). Never panics; the empty
//! patch is the identity; a failed patch leaves the target untouched
//! (patches are atomic); `apply_patch` agrees with `JsonPatch::apply`.
#![no_main]

use apimachinery::patch::{apply_patch, JsonPatch, PatchType};
use libfuzzer_sys::fuzz_target;
use rustkube_fuzz::object_and_patch;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Some((object, patch)) = object_and_patch(data) else {
        return;
    };
    let empty = JsonPatch::from_value(&json!([])).expect("[] is a JSON patch");
    assert_eq!(empty.apply(&object).as_ref(), Ok(&object));

    let Ok(parsed) = JsonPatch::from_value(&patch) else {
        return;
    };
    let mut in_place: Value = object.clone();
    let applied = parsed.apply(&object);
    match parsed.apply_in_place(&mut in_place) {
        Ok(()) => assert_eq!(applied.as_ref(), Ok(&in_place)),
        Err(_) => {
            assert!(applied.is_err());
            assert_eq!(in_place, object, "a failed JSON patch changed its target");
        }
    }
    let body = serde_json::to_vec(&patch).expect("a parsed patch encodes");
    let via_handler = apply_patch(PatchType::Json, &object, &body, None);
    if let Ok(out) = via_handler {
        assert_eq!(applied.as_ref(), Ok(&out));
    }
});
