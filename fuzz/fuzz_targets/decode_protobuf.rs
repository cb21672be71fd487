//! A protobuf request body (`k8s\0` + `runtime.Unknown`): decoding never
//! panics; an object `decode_object` accepts encodes to JSON; and whatever
//! the protobuf decoder accepts encodes back to protobuf that decodes to
//! the same object.
#![no_main]

use apimachinery::codec::{decode_object, BodyFormat};
use apimachinery::protobuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = decode_object(data, BodyFormat::Protobuf) {
        serde_json::to_vec(&object).expect("a decoded object encodes to JSON");
    }
    if let Ok(object) = protobuf::decode(data) {
        let bytes = protobuf::encode(&object).expect("a decoded object encodes to protobuf");
        let again = protobuf::decode(&bytes).expect("re-encoded protobuf decodes");
        assert_eq!(again, object, "protobuf round trip changed the object");
    }
});
