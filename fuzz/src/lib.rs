//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Patch targets take two JSON documents from one input: the bytes before
//! the first NUL are the object, the bytes after it the patch. A raw NUL
//! is never valid JSON, so the split loses no interesting input.

use apimachinery::patch::{builtin_meta, BuiltinPatchMeta};
use serde_json::Value;

/// The object and the patch of a patch target's input, both parsed as
/// JSON; `None` when either is not JSON (nothing to test then).
pub fn object_and_patch(data: &[u8]) -> Option<(Value, Value)> {
    let split = data.iter().position(|&b| b == 0)?;
    let object = serde_json::from_slice(&data[..split]).ok()?;
    let patch = serde_json::from_slice(&data[split + 1..]).ok()?;
    Some((object, patch))
}

/// The strategic merge metadata for the object's own kind when it is a
/// built-in one, else a Pod's, so random objects still exercise list
/// strategies and merge keys.
pub fn meta_for(object: &Value) -> BuiltinPatchMeta {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    builtin_meta(api_version, kind)
        .or_else(|| builtin_meta("v1", "Pod"))
        .expect("Pod is a built-in kind")
}
