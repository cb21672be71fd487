use serde_json::{json, Value};

use super::schema::{self, Special, Type};
use super::{decode, encode, ProtobufError, MAGIC, MAX_DEPTH};

// ---------------------------------------------------------------------------
// A tiny protobuf writer, independent of the generated table, so that the
// tests check the table's field numbers against upstream's.
// ---------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Self {
        Pb::default()
    }
    fn raw_varint(mut self, mut v: u64) -> Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    fn key(self, n: u64, wire: u64) -> Self {
        self.raw_varint((n << 3) | wire)
    }
    fn varint(self, n: u64, v: u64) -> Self {
        self.key(n, 0).raw_varint(v)
    }
    fn bytes(self, n: u64, b: &[u8]) -> Self {
        let mut s = self.key(n, 2).raw_varint(b.len() as u64);
        s.0.extend_from_slice(b);
        s
    }
    fn str(self, n: u64, s: &str) -> Self {
        self.bytes(n, s.as_bytes())
    }
    fn msg(self, n: u64, m: Pb) -> Self {
        self.bytes(n, &m.0)
    }
    fn str_entry(self, n: u64, k: &str, v: &str) -> Self {
        self.msg(n, Pb::new().str(1, k).str(2, v))
    }
    fn bytes_entry(self, n: u64, k: &str, v: &[u8]) -> Self {
        self.msg(n, Pb::new().str(1, k).bytes(2, v))
    }
    fn msg_entry(self, n: u64, k: &str, v: Pb) -> Self {
        self.msg(n, Pb::new().str(1, k).msg(2, v))
    }
}

fn body(api_version: &str, kind: &str, object: Pb) -> Vec<u8> {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, api_version).str(2, kind))
        .msg(2, object)
        .str(3, "")
        .str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&unknown.0);
    out
}

fn meta(name: &str) -> Pb {
    Pb::new().str(1, name)
}

fn quantity(s: &str) -> Pb {
    Pb::new().str(1, s)
}

/// IntOrString: 1 type, 2 intVal, 3 strVal.
fn int_or_string_int(i: u64) -> Pb {
    Pb::new().varint(1, 0).varint(2, i).str(3, "")
}

fn int_or_string_str(s: &str) -> Pb {
    Pb::new().varint(1, 1).varint(2, 0).str(3, s)
}

// ---------------------------------------------------------------------------
// Real kubectl bodies
// ---------------------------------------------------------------------------

/// `kubectl create ...` bodies captured from kubectl 1.33 (protobuf) and,
/// for the same commands, kubectl 1.31 (JSON).
const KUBECTL: &[(&str, &[u8], &str)] = &[
    (
        "namespace",
        include_bytes!("testdata/namespace.kubectl-1.33.pb"),
        include_str!("testdata/namespace.kubectl-1.31.json"),
    ),
    (
        "configmap",
        include_bytes!("testdata/configmap.kubectl-1.33.pb"),
        include_str!("testdata/configmap.kubectl-1.31.json"),
    ),
    (
        "secret",
        include_bytes!("testdata/secret.kubectl-1.33.pb"),
        include_str!("testdata/secret.kubectl-1.31.json"),
    ),
    (
        "deployment",
        include_bytes!("testdata/deployment.kubectl-1.33.pb"),
        include_str!("testdata/deployment.kubectl-1.31.json"),
    ),
    (
        "service",
        include_bytes!("testdata/service.kubectl-1.33.pb"),
        include_str!("testdata/service.kubectl-1.31.json"),
    ),
    (
        "job",
        include_bytes!("testdata/job.kubectl-1.33.pb"),
        include_str!("testdata/job.kubectl-1.31.json"),
    ),
    (
        "cronjob",
        include_bytes!("testdata/cronjob.kubectl-1.33.pb"),
        include_str!("testdata/cronjob.kubectl-1.31.json"),
    ),
    (
        "role",
        include_bytes!("testdata/role.kubectl-1.33.pb"),
        include_str!("testdata/role.kubectl-1.31.json"),
    ),
    (
        "rolebinding",
        include_bytes!("testdata/rolebinding.kubectl-1.33.pb"),
        include_str!("testdata/rolebinding.kubectl-1.31.json"),
    ),
    (
        "quota",
        include_bytes!("testdata/quota.kubectl-1.33.pb"),
        include_str!("testdata/quota.kubectl-1.31.json"),
    ),
    (
        "priorityclass",
        include_bytes!("testdata/priorityclass.kubectl-1.33.pb"),
        include_str!("testdata/priorityclass.kubectl-1.31.json"),
    ),
    (
        "poddisruptionbudget",
        include_bytes!("testdata/poddisruptionbudget.kubectl-1.33.pb"),
        include_str!("testdata/poddisruptionbudget.kubectl-1.31.json"),
    ),
    (
        "serviceaccount",
        include_bytes!("testdata/serviceaccount.kubectl-1.33.pb"),
        include_str!("testdata/serviceaccount.kubectl-1.31.json"),
    ),
    (
        "ingress",
        include_bytes!("testdata/ingress.kubectl-1.33.pb"),
        include_str!("testdata/ingress.kubectl-1.31.json"),
    ),
];

/// Go's zero values, as upstream encoders write unset non-pointer fields.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// `decoded` says what `json` says, plus only zero values.
fn assert_same_but_zeros(path: &str, decoded: &Value, json: &Value) {
    match (decoded, json) {
        (Value::Object(d), Value::Object(j)) => {
            for (k, jv) in j {
                let dv = d
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing from the decoded object"));
                assert_same_but_zeros(&format!("{path}.{k}"), dv, jv);
            }
            for (k, dv) in d {
                if !j.contains_key(k) {
                    assert!(is_zero(dv), "{path}.{k} = {dv} is not in kubectl's JSON");
                }
            }
        }
        (Value::Array(d), Value::Array(j)) => {
            assert_eq!(d.len(), j.len(), "{path}: array lengths");
            for (i, (dv, jv)) in d.iter().zip(j).enumerate() {
                assert_same_but_zeros(&format!("{path}[{i}]"), dv, jv);
            }
        }
        _ => assert_eq!(decoded, json, "{path}"),
    }
}

#[test]
fn kubectl_1_33_protobuf_bodies_decode_to_what_kubectl_1_31_sends_as_json() {
    for (name, pb, json) in KUBECTL {
        let decoded = decode(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value = serde_json::from_str(json).expect("fixture JSON");
        assert_same_but_zeros(name, &decoded, &json);
    }
}

#[test]
fn kubectl_bodies_keep_upstreams_explicit_zero_values() {
    let (_, pb, _) = KUBECTL[0];
    let ns = decode(pb).expect("namespace");
    // kubectl's encoder writes every non-pointer field; proto2 says they
    // are present, so they are kept (see the module docs).
    assert_eq!(ns["metadata"]["namespace"], json!(""));
    assert_eq!(ns["metadata"]["generation"], json!(0));
    assert_eq!(ns["metadata"]["creationTimestamp"], Value::Null);
    assert_eq!(ns["status"], json!({"phase": ""}));
}

#[test]
fn reencoding_a_kubectl_body_reproduces_it_byte_for_byte() {
    for (name, pb, _) in KUBECTL {
        let decoded = decode(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoded = encode(&decoded).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&encoded, pb, "{name}: {decoded}");
    }
}

// ---------------------------------------------------------------------------
// Hand-built objects
// ---------------------------------------------------------------------------

#[test]
fn decodes_a_namespace() {
    let ns = Pb::new()
        .msg(1, meta("team-a").str_entry(11, "env", "prod"))
        .msg(2, Pb::new().str(1, "kubernetes"))
        .msg(3, Pb::new().str(1, "Active"));
    let v = decode(&body("v1", "Namespace", ns)).expect("decodes");
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"env": "prod"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })
    );
}

#[test]
fn decodes_a_configmap_with_data_binary_data_and_immutable_false() {
    let cm = Pb::new()
        .msg(1, meta("cfg").str(3, "default"))
        .str_entry(2, "a", "1")
        .str_entry(2, "empty", "")
        .bytes_entry(3, "bin", &[0, 1, 2, 0xff])
        .varint(4, 0);
    let v = decode(&body("v1", "ConfigMap", cm)).expect("decodes");
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"a": "1", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
            "immutable": false,
        })
    );
}

#[test]
fn decodes_secret_bytes_as_base64() {
    let secret = Pb::new()
        .msg(1, meta("s"))
        .bytes_entry(2, "password", b"hunter2")
        .bytes_entry(2, "empty", b"")
        .str(3, "Opaque");
    let v = decode(&body("v1", "Secret", secret)).expect("decodes");
    assert_eq!(v["data"], json!({"password": "aHVudGVyMg==", "empty": ""}));
    assert_eq!(v["type"], json!("Opaque"));
}

#[test]
fn decodes_a_deployment_with_zero_replicas_template_and_strategy() {
    let container = Pb::new()
        .str(1, "web")
        .str(2, "nginx:1.27")
        .msg(6, Pb::new().str(1, "http").varint(3, 80).str(4, "TCP"))
        .msg(
            8,
            Pb::new().msg_entry(1, "cpu", quantity("500m")).msg_entry(
                2,
                "memory",
                quantity("128Mi"),
            ),
        );
    let template = Pb::new()
        .msg(1, Pb::new().str_entry(11, "app", "web"))
        .msg(2, Pb::new().msg(2, container));
    let strategy = Pb::new().str(1, "RollingUpdate").msg(
        2,
        Pb::new()
            .msg(1, int_or_string_int(1))
            .msg(2, int_or_string_str("25%")),
    );
    let spec = Pb::new()
        .varint(1, 0)
        .msg(2, Pb::new().str_entry(1, "app", "web"))
        .msg(3, template)
        .msg(4, strategy);
    let deployment = Pb::new()
        .msg(
            1,
            meta("web")
                .str(3, "default")
                .msg(8, Pb::new().varint(1, 1_795_404_391).varint(2, 5)),
        )
        .msg(2, spec);
    let v = decode(&body("apps/v1", "Deployment", deployment)).expect("decodes");
    assert_eq!(
        v,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "creationTimestamp": "2026-11-23T03:26:31Z",
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                        "resources": {
                            "limits": {"cpu": "500m"},
                            "requests": {"memory": "128Mi"},
                        },
                    }]},
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
                },
            },
        })
    );
}

#[test]
fn a_pod_volume_and_probe_flatten_their_embedded_structs() {
    // Volume{name 1, volumeSource 2 (inline){configMap 19{name via
    // LocalObjectReference 1 (inline)}}}; Probe{handler 1 (inline){httpGet 2}}.
    let volume = Pb::new().str(1, "cfg").msg(
        2,
        Pb::new().msg(19, Pb::new().msg(1, Pb::new().str(1, "my-config"))),
    );
    let probe = Pb::new()
        .msg(
            1,
            Pb::new().msg(
                2,
                Pb::new().str(1, "/healthz").msg(2, int_or_string_int(8080)),
            ),
        )
        .varint(2, 3);
    let container = Pb::new().str(1, "c").msg(10, probe);
    let pod = Pb::new()
        .msg(1, meta("p"))
        .msg(2, Pb::new().msg(1, volume).msg(2, container));
    let v = decode(&body("v1", "Pod", pod)).expect("decodes");
    assert_eq!(
        v["spec"]["volumes"],
        json!([{"name": "cfg", "configMap": {"name": "my-config"}}])
    );
    assert_eq!(
        v["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3})
    );
}

// ---------------------------------------------------------------------------
// Special types
// ---------------------------------------------------------------------------

/// Decode `object` (fields of a ManagedFieldsEntry-free ObjectMeta etc.)
/// as a `v1` Event, whose fields cover Time, MicroTime and friends.
fn event(fields: Pb) -> Value {
    decode(&body("v1", "Event", fields.msg(1, meta("e")))).expect("decodes")
}

#[test]
fn times_are_rfc3339_in_utc_and_micro_times_have_six_digits() {
    // Event: firstTimestamp 6 (Time), eventTime 10 (MicroTime).
    let v = event(
        Pb::new()
            .msg(6, Pb::new().varint(1, 1_795_404_391).varint(2, 999_999_999))
            .msg(
                10,
                Pb::new().varint(1, 1_795_404_391).varint(2, 123_456_789),
            ),
    );
    assert_eq!(v["firstTimestamp"], json!("2026-11-23T03:26:31Z"));
    assert_eq!(v["eventTime"], json!("2026-11-23T03:26:31.123456Z"));

    let v = event(Pb::new().msg(6, Pb::new()).msg(10, Pb::new().varint(1, 0)));
    assert_eq!(
        v["firstTimestamp"],
        Value::Null,
        "empty Time is Go's zero time"
    );
    assert_eq!(v["eventTime"], json!("1970-01-01T00:00:00.000000Z"));
}

#[test]
fn durations_are_go_duration_strings() {
    use super::decode::go_duration;
    let s = 1_000_000_000i64;
    assert_eq!(go_duration(3600 * s), "1h0m0s");
    assert_eq!(go_duration(330 * s), "5m30s");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(300_000_000), "300ms");
    assert_eq!(go_duration(1_200_000), "1.2ms");
    assert_eq!(go_duration(1_000), "1µs");
    assert_eq!(go_duration(5), "5ns");
    assert_eq!(go_duration(-1_500_000_000), "-1.5s");
    assert_eq!(go_duration(90_061 * s + 1), "25h1m1.000000001s");
    assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
    for d in [
        0,
        5,
        1_000,
        1_200_000,
        1_500_000_000,
        3600 * s,
        i64::MAX,
        -90 * s,
    ] {
        assert_eq!(
            super::encode::parse_go_duration(&go_duration(d)),
            Some(d),
            "{d}"
        );
    }

    // ServiceAccountTokenProjection has no Duration; CSIDriverSpec neither.
    // meta.v1.Duration appears in... find one through the table.
    let (index, field) = schema::all()
        .iter()
        .enumerate()
        .find_map(|(i, m)| {
            let f = m.fields.iter().find(|f| {
                matches!(f.ty, Type::Message(t) if schema::message(t).special == Special::Duration)
            })?;
            Some((i, f))
        })
        .expect("some message has a Duration field");
    let data = Pb::new().msg(
        u64::from(field.number),
        Pb::new().varint(1, (90 * s) as u64),
    );
    let v = super::decode::message(index, &data.0, 0).expect("decodes");
    assert_eq!(v[field.json], json!("1m30s"));
}

#[test]
fn int_or_string_quantity_and_raw_extension_take_their_json_forms() {
    let msg = |name: &str| schema::by_name(name).expect(name);
    let d = |name: &str, pb: Pb| super::decode::message(msg(name), &pb.0, 0).expect(name);
    let ios = "apimachinery.pkg.util.intstr.IntOrString";
    assert_eq!(d(ios, int_or_string_int(8080)), json!(8080));
    assert_eq!(d(ios, int_or_string_str("http")), json!("http"));
    assert_eq!(d(ios, Pb::new()), json!(0));
    assert!(super::decode::message(msg(ios), &Pb::new().varint(1, 7).0, 0).is_err());

    let q = "apimachinery.pkg.api.resource.Quantity";
    assert_eq!(d(q, quantity("1Gi")), json!("1Gi"));
    assert_eq!(d(q, Pb::new()), json!("0"));

    let raw = "apimachinery.pkg.runtime.RawExtension";
    assert_eq!(
        d(raw, Pb::new().str(1, r#"{"a":[1,2]}"#)),
        json!({"a": [1, 2]})
    );
    assert_eq!(d(raw, Pb::new().bytes(1, &[0xff, 0])), json!("/wA="));
    assert_eq!(d(raw, Pb::new()), Value::Null);
    // A nested protobuf object, as upstream embeds objects in protobuf.
    let nested = body("v1", "ConfigMap", Pb::new().msg(1, meta("inner")));
    assert_eq!(
        d(raw, Pb::new().bytes(1, &nested)),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}})
    );
}

#[test]
fn managed_fields_keep_fields_v1_as_json() {
    // ObjectMeta.managedFields 17: ManagedFieldsEntry{manager 1, operation
    // 2, apiVersion 3, time 4, fieldsType 6, fieldsV1 7}.
    let entry = Pb::new()
        .str(1, "kubectl")
        .str(2, "Update")
        .str(3, "v1")
        .msg(4, Pb::new().varint(1, 0))
        .str(6, "FieldsV1")
        .msg(7, Pb::new().str(1, r#"{"f:data":{".":{}}}"#));
    let cm = Pb::new().msg(1, meta("m").msg(17, entry));
    let v = decode(&body("v1", "ConfigMap", cm)).expect("decodes");
    assert_eq!(
        v["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "1970-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}}},
        }])
    );
}

#[test]
fn named_slice_types_are_bare_arrays() {
    // authentication.v1 UserInfo.extra is map<string, ExtraValue{items}>.
    let user = Pb::new()
        .str(1, "alice")
        .msg_entry(4, "scopes", Pb::new().str(1, "a").str(1, "b"));
    let review = Pb::new()
        .msg(1, meta("r"))
        .msg(2, Pb::new().str(1, "token"))
        .msg(3, Pb::new().varint(1, 1).msg(2, user));
    let v = decode(&body("authentication.k8s.io/v1", "TokenReview", review)).expect("decodes");
    assert_eq!(
        v["status"]["user"],
        json!({"username": "alice", "extra": {"scopes": ["a", "b"]}})
    );
}

// ---------------------------------------------------------------------------
// Wire format details
// ---------------------------------------------------------------------------

#[test]
fn packed_and_unpacked_repeated_scalars_decode_alike() {
    // ContainerRestartRuleOnExitCodes{operator 1, values 2 (repeated int32)}.
    let index = schema::by_name("api.core.v1.ContainerRestartRuleOnExitCodes")
        .expect("k8s-pb 0.9 has ContainerRestartRuleOnExitCodes");
    let unpacked = Pb::new().str(1, "In").varint(2, 1).varint(2, 42);
    let packed = Pb::new().str(1, "In").bytes(2, &[1, 42]);
    let a = super::decode::message(index, &unpacked.0, 0).expect("unpacked");
    let b = super::decode::message(index, &packed.0, 0).expect("packed");
    assert_eq!(a, json!({"operator": "In", "values": [1, 42]}));
    assert_eq!(a, b);
}

#[test]
fn negative_int32_and_int64_decode_from_ten_byte_varints() {
    // Pod spec.activeDeadlineSeconds 5 (int64); metadata.generation 7.
    let pod = Pb::new()
        .msg(1, meta("p").varint(7, u64::MAX))
        .msg(2, Pb::new().varint(5, (-5i64) as u64));
    let v = decode(&body("v1", "Pod", pod)).expect("decodes");
    assert_eq!(v["metadata"]["generation"], json!(-1));
    assert_eq!(v["spec"]["activeDeadlineSeconds"], json!(-5));
}

#[test]
fn unknown_fields_are_skipped_and_the_last_singular_value_wins() {
    let cm = Pb::new()
        .msg(1, meta("first"))
        .varint(99, 1)
        .bytes(100, b"whatever")
        .key(101, 5)
        .raw_varint(0) // 32-bit value, four bytes
        .raw_varint(0)
        .raw_varint(0)
        .raw_varint(0)
        .key(102, 3) // a group, with a field inside
        .varint(1, 7)
        .key(102, 4)
        .msg(1, Pb::new().str(3, "ns"))
        .varint(4, 1)
        .varint(4, 0);
    let v = decode(&body("v1", "ConfigMap", cm)).expect("decodes");
    // Singular messages merge, scalars are replaced.
    assert_eq!(v["metadata"], json!({"name": "first", "namespace": "ns"}));
    assert_eq!(v["immutable"], json!(false));
}

#[test]
fn kinds_map_to_their_groups_messages() {
    let name = |av: &str, k: &str| schema::message_for_kind(av, k).map(|i| schema::message(i).name);
    assert_eq!(name("v1", "Pod"), Some("api.core.v1.Pod"));
    assert_eq!(
        name("apps/v1", "Deployment"),
        Some("api.apps.v1.Deployment")
    );
    assert_eq!(
        name("rbac.authorization.k8s.io/v1", "ClusterRole"),
        Some("api.rbac.v1.ClusterRole")
    );
    assert_eq!(
        name("networking.k8s.io/v1", "IngressClass"),
        Some("api.networking.v1.IngressClass")
    );
    assert_eq!(
        name("storage.k8s.io/v1", "CSIDriver"),
        Some("api.storage.v1.CSIDriver")
    );
    assert_eq!(
        name("internal.apiserver.k8s.io/v1alpha1", "StorageVersion"),
        Some("api.apiserverinternal.v1alpha1.StorageVersion")
    );
    assert_eq!(
        name("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        Some("apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    );
    assert_eq!(
        name("apiregistration.k8s.io/v1", "APIService"),
        Some("kube_aggregator.pkg.apis.apiregistration.v1.APIService")
    );
    assert_eq!(
        name("admission.k8s.io/v1", "AdmissionReview"),
        Some("api.admission.v1.AdmissionReview")
    );
    // Every group version also serves meta.k8s.io/v1's option and status kinds.
    assert_eq!(
        name("v1", "Status"),
        Some("apimachinery.pkg.apis.meta.v1.Status")
    );
    assert_eq!(
        name("apps/v1", "DeleteOptions"),
        Some("apimachinery.pkg.apis.meta.v1.DeleteOptions")
    );
    assert_eq!(
        name("meta.k8s.io/v1", "PartialObjectMetadata"),
        Some("apimachinery.pkg.apis.meta.v1.PartialObjectMetadata")
    );
    // Table has no protobuf form upstream either.
    assert_eq!(name("meta.k8s.io/v1", "Table"), None);
    // Kinds are case-sensitive, and special messages are no kinds.
    assert_eq!(name("v1", "pod"), None);
    assert_eq!(name("v1", "Time"), None);
    assert_eq!(name("example.com/v1", "Widget"), None);
    assert_eq!(name("v9", "Pod"), None);
    assert_eq!(name("", "Pod"), None);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[test]
fn malformed_bodies_are_errors() {
    let ns = || Pb::new().msg(1, meta("x"));
    assert_eq!(decode(b""), Err(ProtobufError::BadMagic));
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtobufError::BadMagic));
    assert_eq!(decode(&MAGIC), Err(ProtobufError::EmptyBody));

    let full = body("v1", "Namespace", ns());
    assert!(matches!(
        decode(&full[..full.len() - 8]),
        Err(ProtobufError::Truncated { .. })
    ));

    // A length prefix far beyond the data: an error, not an allocation.
    let mut huge = MAGIC.to_vec();
    huge.extend_from_slice(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(
        decode(&huge),
        Err(ProtobufError::Truncated { .. })
    ));

    let mut overflow = MAGIC.to_vec();
    overflow.extend_from_slice(&[0x08; 1]);
    overflow.extend_from_slice(&[0xff; 11]);
    assert!(matches!(
        decode(&overflow),
        Err(ProtobufError::VarintOverflow { .. })
    ));

    let wrong = body("v1", "Namespace", Pb::new().varint(1, 5));
    assert_eq!(
        decode(&wrong),
        Err(ProtobufError::WrongWireType {
            message: "api.core.v1.Namespace",
            field: 1,
            wire_type: 0
        })
    );

    let unknown = body("example.com/v1", "Widget", ns());
    assert_eq!(
        decode(&unknown),
        Err(ProtobufError::UnknownKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
    assert_eq!(
        decode(&body("v1", "", ns())),
        Err(ProtobufError::MissingKind)
    );
    assert!(matches!(
        decode(&body("", "Namespace", ns())),
        Err(ProtobufError::MissingApiVersion { .. })
    ));

    let mut gzip = MAGIC.to_vec();
    gzip.extend_from_slice(
        &Pb::new()
            .msg(1, Pb::new().str(1, "v1").str(2, "Namespace"))
            .msg(2, ns())
            .str(3, "gzip")
            .0,
    );
    assert_eq!(
        decode(&gzip),
        Err(ProtobufError::UnsupportedContentEncoding("gzip".into()))
    );

    let mut tag0 = MAGIC.to_vec();
    tag0.extend_from_slice(&[0x00, 0x00]);
    assert!(matches!(
        decode(&tag0),
        Err(ProtobufError::IllegalFieldNumber { .. })
    ));
    let mut wire7 = MAGIC.to_vec();
    wire7.extend_from_slice(&[0x0f]);
    assert!(matches!(
        decode(&wire7),
        Err(ProtobufError::IllegalWireType { wire_type: 7, .. })
    ));
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error() {
    // JSONSchemaProps.not (a JSONSchemaProps) nested far too deep.
    let props =
        schema::by_name("apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
            .expect("JSONSchemaProps");
    let not = schema::message(props)
        .fields
        .iter()
        .find(|f| f.json == "not")
        .expect("JSONSchemaProps.not")
        .number;
    let mut pb = Pb::new().str(1, "leaf");
    for _ in 0..(MAX_DEPTH + 10) {
        pb = Pb::new().msg(u64::from(not), pb);
    }
    assert_eq!(
        super::decode::message(props, &pb.0, 0),
        Err(ProtobufError::TooDeep { limit: MAX_DEPTH })
    );

    // The same through RawExtensions holding protobuf objects.
    let mut obj = Pb::new().msg(1, meta("leaf"));
    for _ in 0..(MAX_DEPTH + 10) {
        let inner = body("apps/v1", "ControllerRevision", obj);
        obj = Pb::new()
            .msg(1, meta("r"))
            .msg(2, Pb::new().bytes(1, &inner));
    }
    assert_eq!(
        decode(&body("apps/v1", "ControllerRevision", obj)),
        Err(ProtobufError::TooDeep { limit: MAX_DEPTH })
    );
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_truncated_and_mutated_inputs_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, pb, _) in KUBECTL {
        // Every truncation.
        for end in 0..pb.len() {
            let _ = decode(&pb[..end]);
        }
        // Random byte flips, insertions and deletions.
        for _ in 0..400 {
            let mut data = pb.to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(data.len());
                match rng.below(3) {
                    0 => data[at] = rng.next() as u8,
                    1 => data.insert(at, rng.next() as u8),
                    _ => {
                        data.remove(at);
                    }
                }
                if data.is_empty() {
                    break;
                }
            }
            if let Ok(v) = decode(&data) {
                // Whatever decodes also re-encodes or fails cleanly.
                let _ = encode(&v);
            }
        }
    }
    // Pure noise, with and without the magic.
    for _ in 0..3000 {
        let len = rng.below(200);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            let mut with_magic = MAGIC.to_vec();
            with_magic.append(&mut data);
            data = with_magic;
        }
        let _ = decode(&data);
    }
    // Noise inside a well-formed envelope, for random kinds.
    let kinds = [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "Event"),
        ("batch/v1", "CronJob"),
    ];
    for _ in 0..3000 {
        let (av, kind) = kinds[rng.below(kinds.len())];
        let len = rng.below(120);
        let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode(&body(av, kind, Pb(noise)));
    }
}

// ---------------------------------------------------------------------------
// The whole table
// ---------------------------------------------------------------------------

/// A JSON value exercising every field of message `index`.
fn sample(index: usize, depth: usize) -> Value {
    let msg = schema::message(index);
    match msg.special {
        Special::Time => return json!("2026-11-23T03:26:31Z"),
        Special::MicroTime => return json!("2026-11-23T03:26:31.123456Z"),
        Special::Duration => return json!("1m30s"),
        Special::IntOrString => return json!("25%"),
        Special::Quantity => return json!("250m"),
        Special::RawJson => return json!({"raw": [1, "two"]}),
        Special::Items => return json!(["x", "y"]),
        Special::SchemaOrBool => return json!(true),
        Special::SchemaOrArray => return json!([{"type": "string"}]),
        Special::SchemaOrStringArray => return json!(["a"]),
        Special::None => {}
    }
    let mut obj = serde_json::Map::new();
    sample_fields(index, depth, &mut obj);
    Value::Object(obj)
}

fn sample_fields(index: usize, depth: usize, obj: &mut serde_json::Map<String, Value>) {
    use super::schema::Scalar;
    let scalar = |s: Scalar, n: u32| match s {
        Scalar::String => json!(format!("s{n}")),
        Scalar::Bytes => json!("AAEC"),
        Scalar::Bool => json!(true),
        Scalar::Float | Scalar::Double => json!(1.5),
        Scalar::Int32 | Scalar::Int64 | Scalar::Sint32 | Scalar::Sint64 => json!(-7),
        _ => json!(7),
    };
    for f in schema::message(index).fields {
        let value = match f.ty {
            Type::Message(i) if f.inline => {
                sample_fields(i, depth + 1, obj);
                continue;
            }
            Type::Message(i) if depth < 3 || schema::message(i).special != Special::None => {
                sample(i, depth + 1)
            }
            Type::Message(_) => continue,
            Type::Scalar(s) => scalar(s, f.number),
            Type::Map(_, Type::Scalar(s)) => json!({"k": scalar(*s, f.number)}),
            Type::Map(_, Type::Message(i)) if depth < 3 => json!({"k": sample(*i, depth + 1)}),
            Type::Map(..) => continue,
        };
        let value = if f.repeated { json!([value]) } else { value };
        obj.insert(f.json.to_string(), value);
    }
}

#[test]
fn every_message_in_the_table_round_trips_through_encode_and_decode() {
    let mut checked = 0;
    for (index, msg) in schema::all().iter().enumerate() {
        if msg.special != Special::None {
            continue;
        }
        let value = sample(index, 0);
        let pb = super::encode::message(index, &value, "", 0)
            .unwrap_or_else(|e| panic!("{}: {e}", msg.name));
        let back =
            super::decode::message(index, &pb, 0).unwrap_or_else(|e| panic!("{}: {e}", msg.name));
        assert_eq!(back, value, "{}", msg.name);
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} messages");
}

#[test]
fn json_names_come_from_k8s_openapi_for_the_served_types() {
    use super::schema as stats;
    let total = stats::JSON_NAMES_FROM_OPENAPI_STRUCT
        + stats::JSON_NAMES_FROM_OPENAPI_SIBLING
        + stats::JSON_NAMES_FROM_OPENAPI_ELSEWHERE
        + stats::GUESSED_JSON_NAMES.len()
        + stats::INLINE_FIELDS.len();
    println!(
        "{total} fields: {} named by their k8s-openapi type, {} by the same type in another \
         version, {} by the same field elsewhere, {} inline, {} guessed",
        stats::JSON_NAMES_FROM_OPENAPI_STRUCT,
        stats::JSON_NAMES_FROM_OPENAPI_SIBLING,
        stats::JSON_NAMES_FROM_OPENAPI_ELSEWHERE,
        stats::INLINE_FIELDS.len(),
        stats::GUESSED_JSON_NAMES.len(),
    );
    const _: () = assert!(stats::JSON_NAMES_FROM_OPENAPI_STRUCT > 2000);
    assert!(stats::GUESSED_JSON_NAMES.len() < 400);
    // No guess for the types kubectl creates.
    for prefix in [
        "api.core.v1.Namespace.",
        "api.core.v1.ConfigMap.",
        "api.core.v1.Secret.",
        "api.core.v1.ServiceSpec.",
        "api.core.v1.PodSpec.",
        "api.core.v1.Container.",
        "api.apps.v1.DeploymentSpec.",
        "api.rbac.v1.",
        "api.batch.v1.",
        "apimachinery.pkg.apis.meta.v1.ObjectMeta.",
    ] {
        let guesses: Vec<_> = stats::GUESSED_JSON_NAMES
            .iter()
            .filter(|g| g.starts_with(prefix))
            .filter(|g| {
                // Fields newer than Kubernetes 1.33 (k8s-pb is 1.34+).
                !["restartPolicyRules", "hostnameOverride", "workloadRef"]
                    .iter()
                    .any(|newer| g.ends_with(newer))
            })
            .collect();
        assert!(guesses.is_empty(), "{prefix}: {guesses:?}");
    }

    let json_of = |msg: &str, number: u64| {
        let m = schema::message(schema::by_name(msg).expect(msg));
        m.field(number).map(|f| f.json)
    };
    assert_eq!(json_of("api.core.v1.ServiceSpec", 3), Some("clusterIP"));
    assert_eq!(json_of("api.core.v1.ServiceSpec", 18), Some("clusterIPs"));
    assert_eq!(json_of("api.core.v1.PodStatus", 12), Some("podIPs"));
    assert_eq!(json_of("api.core.v1.ObjectReference", 4), Some("uid"));
    assert_eq!(
        json_of(
            "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            3
        ),
        Some("$ref")
    );
    assert_eq!(
        json_of(
            "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            38
        ),
        Some("x-kubernetes-preserve-unknown-fields")
    );
    assert_eq!(
        json_of(
            "kube_aggregator.pkg.apis.apiregistration.v1.APIServiceSpec",
            4
        ),
        Some("insecureSkipTLSVerify")
    );
}
