//! A YAML request body: decoding never panics, and an object it accepts
//! encodes to JSON that the JSON decoder accepts too.
#![no_main]

use apimachinery::codec::{decode_object, BodyFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = decode_object(data, BodyFormat::Yaml) {
        let bytes = serde_json::to_vec(&object).expect("a decoded object encodes to JSON");
        decode_object(&bytes, BodyFormat::Json).expect("its JSON form decodes");
    }
});
