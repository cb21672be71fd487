//! A protobuf request body (`k8s\0` + `runtime.Unknown`): decoding never
//! panics, an object it accepts encodes to JSON, and encoding it back to
//! protobuf returns a result (either way) without panicking.
#![no_main]

use apimachinery::codec::{decode_object, BodyFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = decode_object(data, BodyFormat::Protobuf) {
        serde_json::to_vec(&object).expect("a decoded object encodes to JSON");
        let _ = apimachinery::protobuf::encode(&object);
    }
});
