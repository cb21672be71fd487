//! A JSON request body: decoding never panics, and an object it accepts
//! encodes back to JSON that decodes to the same object.
#![no_main]

use apimachinery::codec::{decode_object, BodyFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = decode_object(data, BodyFormat::Json) {
        let bytes = serde_json::to_vec(&object).expect("a decoded object encodes to JSON");
        let again = decode_object(&bytes, BodyFormat::Json).expect("re-encoded JSON decodes");
        assert!(again.is_object());
    }
});
