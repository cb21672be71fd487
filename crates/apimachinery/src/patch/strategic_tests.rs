use super::*;
use crate::patch::patch_meta::{builtin_meta, BuiltinPatchMeta, ReplaceAllLists};
use crate::patch::test_support::Rng;
use serde_json::json;

fn meta(api_version: &str, kind: &str) -> BuiltinPatchMeta {
    match builtin_meta(api_version, kind) {
        Some(meta) => meta,
        None => panic!("{api_version} {kind} should be built in"),
    }
}

fn pod_meta() -> BuiltinPatchMeta {
    meta("v1", "Pod")
}

fn apply(original: Value, patch: Value) -> Result<Value> {
    apply_strategic_merge_patch(&original, &patch, &pod_meta())
}

fn apply_ok(original: Value, patch: Value) -> Value {
    match apply(original, patch) {
        Ok(v) => v,
        Err(e) => panic!("patch failed: {e}"),
    }
}

fn pod_with_containers(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn containers(pod: &Value) -> &Value {
    &pod["spec"]["containers"]
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i[key].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_no_directives(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                assert!(!key.starts_with('$'), "directive {key} survived in {value}");
                assert!(!v.is_null(), "null {key} survived in {value}");
                assert_no_directives(v);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_directives),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------

#[test]
fn strategic_merge_patch_merges_maps_like_merge_patch() {
    let out = apply_ok(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}}),
        json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}, "name": "p"}})
    );
}

#[test]
fn strategic_merge_patch_null_deletes_key() {
    let out = apply_ok(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        json!({"metadata": {"labels": {"a": null}, "missing": null}}),
    );
    assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}}));
}

#[test]
fn strategic_merge_patch_drops_nulls_inside_new_values() {
    let out = apply_ok(
        json!({"spec": {}}),
        json!({"spec": {"nodeSelector": {"a": "1", "b": null}, "x": [{"k": null, "v": 1}]}}),
    );
    assert_eq!(
        out,
        json!({"spec": {"nodeSelector": {"a": "1"}, "x": [{"v": 1}]}})
    );
}

#[test]
fn strategic_merge_patch_replaces_value_of_different_type() {
    let out = apply_ok(
        json!({"spec": {"a": "x", "b": {"c": 1}, "d": [1]}}),
        json!({"spec": {"a": {"y": 1}, "b": "z", "d": {"e": 2}}}),
    );
    assert_eq!(
        out,
        json!({"spec": {"a": {"y": 1}, "b": "z", "d": {"e": 2}}})
    );
}

#[test]
fn patch_directive_replace_replaces_map() {
    let out = apply_ok(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
    );
    assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}}));
}

#[test]
fn patch_directive_delete_empties_map() {
    let out = apply_ok(
        json!({"metadata": {"labels": {"a": "1"}, "name": "p"}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out, json!({"metadata": {"labels": {}, "name": "p"}}));
}

#[test]
fn patch_directive_delete_on_absent_map_adds_nothing() {
    let out = apply_ok(
        json!({"metadata": {"name": "p"}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out, json!({"metadata": {"name": "p"}}));
}

#[test]
fn patch_directive_merge_on_map_is_rejected_like_upstream() {
    let err = apply(
        json!({"metadata": {"labels": {"a": "1"}}}),
        json!({"metadata": {"labels": {"$patch": "merge", "a": "2"}}}),
    )
    .expect_err("merge is not a map directive");
    assert_eq!(
        err.to_string(),
        "unknown patch type: merge in map: map[$patch:merge a:2]"
    );
    assert_eq!(err.status_code(), 500);
}

#[test]
fn retain_keys_keeps_only_listed_keys() {
    let original = json!({"spec": {"volumes": [
        {"name": "v", "emptyDir": {"medium": "Memory"}},
        {"name": "w", "hostPath": {"path": "/x"}}
    ]}});
    let patch = json!({"spec": {"volumes": [
        {"name": "v", "configMap": {"name": "c"}, "$retainKeys": ["configMap", "name"]}
    ]}});
    let out = apply_ok(original, patch);
    assert_eq!(
        out["spec"]["volumes"],
        json!([
            {"name": "v", "configMap": {"name": "c"}},
            {"name": "w", "hostPath": {"path": "/x"}}
        ])
    );
}

#[test]
fn retain_keys_rejects_patch_setting_unlisted_key() {
    let err = apply(
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {}, "$retainKeys": ["type"]}}}),
    )
    .expect_err("rollingUpdate is not retained");
    assert_eq!(err, StrategicMergeError::BadPatchFormatForRetainKeys);
    assert_eq!(err.status_code(), 400);
}

#[test]
fn retain_keys_must_be_a_list() {
    let err = apply(
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
        json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
    )
    .expect_err("not a list");
    assert_eq!(err, StrategicMergeError::BadPatchFormatForRetainKeys);
}

// ---------------------------------------------------------------------------
// Lists merged by key
// ---------------------------------------------------------------------------

#[test]
fn strategic_merge_patch_merges_containers_by_name() {
    let original = pod_with_containers(json!([
        {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
        {"name": "b", "image": "b:1"}
    ]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    );
    assert_eq!(
        containers(&out),
        &json!([
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:2"}
        ])
    );
}

#[test]
fn strategic_merge_patch_places_new_element_before_unmentioned_ones() {
    // As upstream (and the kubectl patch documentation) shows: a container
    // added without $setElementOrder comes first.
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}}),
    );
    assert_eq!(names(containers(&out), "name"), ["c", "a", "b"]);
}

#[test]
fn strategic_merge_patch_orders_mentioned_elements_by_patch_order() {
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{"name": "c", "x": 1}, {"name": "a", "x": 2}]}}),
    );
    assert_eq!(names(containers(&out), "name"), ["b", "c", "a"]);
    assert_eq!(containers(&out)[2], json!({"name": "a", "x": 2}));
}

#[test]
fn strategic_merge_patch_merges_nested_lists_inside_merged_elements() {
    let original = pod_with_containers(json!([{
        "name": "app",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "volumeMounts": [{"mountPath": "/data", "name": "data"}]
    }]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{
            "name": "app",
            "env": [{"name": "B", "value": "3"}],
            "ports": [{"containerPort": 80, "name": "http"}],
            "volumeMounts": [{"mountPath": "/data", "readOnly": true}]
        }]}}),
    );
    assert_eq!(
        containers(&out)[0],
        json!({
            "name": "app",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
            "volumeMounts": [{"mountPath": "/data", "name": "data", "readOnly": true}]
        })
    );
}

#[test]
fn patch_directive_delete_removes_list_element_by_key() {
    let original =
        pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "a", "dup": true}]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
    );
    assert_eq!(containers(&out), &json!([{"name": "b"}]));
}

#[test]
fn patch_directive_replace_element_replaces_whole_list() {
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
    let out = apply_ok(
        original,
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c:1"}]}}),
    );
    assert_eq!(containers(&out), &json!([{"name": "c", "image": "c:1"}]));
}

#[test]
fn patch_directive_merge_element_is_rejected_like_upstream() {
    let err = apply(
        pod_with_containers(json!([{"name": "a"}])),
        json!({"spec": {"containers": [{"$patch": "merge"}]}}),
    )
    .expect_err("merge directive in list");
    assert_eq!(err, StrategicMergeError::MergeDirectiveInList);
}

#[test]
fn strategic_merge_patch_missing_merge_key_gives_upstream_message() {
    let err = apply(
        pod_with_containers(json!([{"name": "a"}])),
        json!({"spec": {"containers": [{"image": "nginx"}]}}),
    )
    .expect_err("no name");
    assert_eq!(
        err.to_string(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
    assert_eq!(err.status_code(), 500);
}

#[test]
fn strategic_merge_patch_rejects_lists_of_lists_with_422() {
    let err = apply(
        json!({"metadata": {"finalizers": [["a"]]}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
    )
    .expect_err("list of lists");
    assert_eq!(err, StrategicMergeError::NoListOfLists);
    assert_eq!(err.status_code(), 422);
}

#[test]
fn strategic_merge_patch_rejects_mixed_element_types() {
    let err = apply(
        json!({"metadata": {"finalizers": ["a"]}}),
        json!({"metadata": {"finalizers": [1]}}),
    )
    .expect_err("mixed types");
    assert_eq!(
        err.to_string(),
        "list element types are not identical: [[a] [1]]"
    );
}

#[test]
fn strategic_merge_patch_merges_owner_references_by_uid() {
    let out = apply_ok(
        json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "controller": true}]}}),
    );
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "1", "name": "a"}, {"uid": "2", "name": "b", "controller": true}])
    );
}

#[test]
fn strategic_merge_patch_merges_pod_status_conditions_by_type() {
    let out = apply_ok(
        json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"}
        ], "podIPs": [{"ip": "10.0.0.1"}]}}),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "fd00::1"}]}}),
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"}
        ])
    );
    assert_eq!(
        out["status"]["podIPs"],
        json!([{"ip": "fd00::1"}, {"ip": "10.0.0.1"}])
    );
}

#[test]
fn strategic_merge_patch_merges_deployment_template_env_by_name() {
    let original = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
        "containers": [{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
    }}}});
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "3"}]}
    ]}}}});
    let out = apply_strategic_merge_patch(&original, &patch, &meta("apps/v1", "Deployment"))
        .expect("patch applies");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
}

#[test]
fn strategic_merge_patch_merges_cronjob_job_template_containers() {
    let original = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    }}}}}});
    let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "a:2"}]
    }}}}}});
    let out = apply_strategic_merge_patch(&original, &patch, &meta("batch/v1", "CronJob"))
        .expect("patch applies");
    assert_eq!(
        out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}])
    );
}

#[test]
fn strategic_merge_patch_merges_service_ports_by_port() {
    let original = json!({"spec": {"ports": [
        {"port": 80, "name": "http"},
        {"port": 443, "name": "https"}
    ]}});
    let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
    let out = apply_strategic_merge_patch(&original, &patch, &meta("v1", "Service"))
        .expect("patch applies");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
    );
}

#[test]
fn strategic_merge_patch_merges_node_status_conditions_by_type() {
    let original = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True"},
        {"type": "MemoryPressure", "status": "False"}
    ]}});
    let patch = json!({"status": {"conditions": [{"type": "MemoryPressure", "status": "True"}]}});
    let out =
        apply_strategic_merge_patch(&original, &patch, &meta("v1", "Node")).expect("patch applies");
    assert_eq!(
        out["status"]["conditions"],
        json!([
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "True"}
        ])
    );
}

// ---------------------------------------------------------------------------
// Lists of primitives and replaced lists
// ---------------------------------------------------------------------------

#[test]
fn strategic_merge_patch_unions_finalizers() {
    let out = apply_ok(
        json!({"metadata": {"finalizers": ["a", "b"]}}),
        json!({"metadata": {"finalizers": ["c", "a"]}}),
    );
    // Upstream order: patch values in patch order, the new one first.
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn delete_from_primitive_list_removes_values() {
    let out = apply_ok(
        json!({"metadata": {"finalizers": ["a", "b", "c", "b"]}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
}

#[test]
fn delete_from_primitive_list_of_absent_field_adds_nothing() {
    let out = apply_ok(
        json!({"metadata": {"name": "p"}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    );
    assert_eq!(out, json!({"metadata": {"name": "p"}}));
}

#[test]
fn delete_from_primitive_list_needs_a_field_name() {
    let err = apply(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["b"]}}),
    )
    .expect_err("no slash");
    assert_eq!(err, StrategicMergeError::BadPatchFormatForPrimitiveList);
    assert_eq!(err.status_code(), 400);
}

#[test]
fn strategic_merge_patch_replaces_lists_without_strategy() {
    let out = apply_ok(
        json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "c", "args": ["1", "2"]}]}}),
        json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "c", "args": ["3"]}]}}),
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
}

#[test]
fn strategic_merge_patch_with_unknown_type_replaces_every_list() {
    let original = json!({"spec": {"containers": [{"name": "a"}], "finalizers": ["x"]}, "metadata": {"finalizers": ["a"]}});
    let patch = json!({"spec": {"containers": [{"name": "b"}], "finalizers": ["y"]}, "metadata": {"finalizers": ["b"]}});
    let out =
        apply_strategic_merge_patch(&original, &patch, &ReplaceAllLists).expect("patch applies");
    assert_eq!(out, patch);
}

#[test]
fn empty_patch_list_leaves_merged_list_alone() {
    let original = pod_with_containers(json!([{"name": "a"}]));
    let out = apply_ok(original.clone(), json!({"spec": {"containers": []}}));
    assert_eq!(out, original);
}

// ---------------------------------------------------------------------------
// $setElementOrder
// ---------------------------------------------------------------------------

#[test]
fn set_element_order_reorders_merged_list() {
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let out = apply_ok(
        original,
        json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
    );
    assert_eq!(names(containers(&out), "name"), ["c", "a", "b"]);
}

#[test]
fn set_element_order_interleaves_unmentioned_elements_by_live_order() {
    let original =
        pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]));
    let out = apply_ok(
        original,
        json!({"spec": {"$setElementOrder/containers": [{"name": "d"}, {"name": "b"}]}}),
    );
    assert_eq!(names(containers(&out), "name"), ["a", "c", "d", "b"]);
}

#[test]
fn set_element_order_places_added_elements() {
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
    let out = apply_ok(
        original,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            "containers": [{"name": "c", "image": "c:1"}]
        }}),
    );
    assert_eq!(names(containers(&out), "name"), ["a", "c", "b"]);
    assert_eq!(containers(&out)[1], json!({"name": "c", "image": "c:1"}));
}

#[test]
fn set_element_order_reorders_primitive_list() {
    let out = apply_ok(
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "b", "a"]));
}

#[test]
fn set_element_order_with_deletion_as_kubectl_sends_it() {
    let out = apply_ok(
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {
            "$setElementOrder/finalizers": ["a", "c"],
            "$deleteFromPrimitiveList/finalizers": ["b"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
}

#[test]
fn set_element_order_must_agree_with_patch_list_order() {
    let err = apply(
        pod_with_containers(json!([{"name": "a"}, {"name": "b"}])),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]
        }}),
    )
    .expect_err("order mismatch");
    assert!(matches!(
        err,
        StrategicMergeError::SetElementOrderMismatch { .. }
    ));
}

#[test]
fn set_element_order_needs_a_field_name() {
    let err = apply(
        json!({"metadata": {}}),
        json!({"metadata": {"$setElementOrderfinalizers": ["a"]}}),
    )
    .expect_err("no slash");
    assert_eq!(
        err,
        StrategicMergeError::BadPatchFormatForSetElementOrderList
    );
}

#[test]
fn set_element_order_must_be_a_list() {
    let err = apply(
        json!({"metadata": {}}),
        json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
    )
    .expect_err("not a list");
    assert_eq!(
        err.to_string(),
        "expected a []interface {}, but received a string"
    );
}

// ---------------------------------------------------------------------------
// Directives never survive
// ---------------------------------------------------------------------------

#[test]
fn directives_never_survive_into_the_result() {
    let mut original =
        pod_with_containers(json!([{"name": "a", "env": [{"name": "X", "value": "1"}]}]));
    original["metadata"]["labels"] = json!({"old": "1"});
    let patch = json!({
        "metadata": {
            "labels": {"$patch": "replace", "l": "1", "gone": null},
            "annotations": {"$patch": "replace", "a": "1"}
        },
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "new"}],
            "containers": [
                {"name": "a", "$setElementOrder/env": [{"name": "Y"}, {"name": "X"}], "env": [{"name": "Y", "value": "2"}]},
                {
                    "name": "new",
                    "$retainKeys": ["name", "env"],
                    "$setElementOrder/env": [{"name": "Z"}],
                    "env": [{"name": "Z", "value": "3", "valueFrom": null}, {"$patch": "delete", "name": "Q"}],
                    "resources": {"$patch": "delete"},
                    "$deleteFromPrimitiveList/args": ["x"]
                }
            ],
            "volumes": [{"name": "v", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}],
            "tolerations": [{"key": "t", "$patch": "replace"}, {"key": "u"}]
        }
    });
    let out = apply_ok(original, patch);
    assert_no_directives(&out);
    assert_eq!(
        out["spec"]["containers"],
        json!([
            {"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
            {"name": "new", "env": [{"name": "Z", "value": "3"}]}
        ])
    );
    assert_eq!(out["metadata"]["labels"], json!({"l": "1"}));
    // As upstream: a new value carrying `$patch` is dropped whole.
    assert_eq!(out["metadata"].get("annotations"), None);
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "u"}]));
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

#[test]
fn strategic_merge_patch_requires_objects() {
    let err = apply_strategic_merge_patch(&json!([]), &json!({}), &pod_meta());
    assert_eq!(err, Err(StrategicMergeError::BadJsonDoc));
    let err = apply_strategic_merge_patch(&json!({}), &json!("x"), &pod_meta());
    assert_eq!(err, Err(StrategicMergeError::BadJsonDoc));
}

struct KeyedByName;

impl PatchMeta for KeyedByName {
    fn list_strategy(&self, _: &[&str]) -> ListStrategy {
        ListStrategy::MergeByKey("name".into())
    }
}

/// `levels` of `{"a": [{"name": "n", "a": ...}]}`: three nesting levels
/// (map, list, element) each.
fn nested(levels: usize, leaf: Value) -> Value {
    let mut value = leaf;
    for _ in 0..levels {
        value = json!({"a": [{"name": "n", "a": value}]});
    }
    value
}

#[test]
fn strategic_merge_patch_merges_moderately_deep_documents() {
    let original = nested(50, json!({"x": 0}));
    let patch = nested(50, json!({"x": 1}));
    let out = apply_strategic_merge_patch(&original, &patch, &KeyedByName);
    assert_eq!(out, Ok(patch));
}

#[test]
fn strategic_merge_patch_refuses_excessive_nesting_without_overflowing() {
    let original = nested(150, json!({"x": 0}));
    let patch = nested(150, json!({"x": 1}));
    assert_eq!(
        apply_strategic_merge_patch(&original, &patch, &KeyedByName),
        Err(StrategicMergeError::TooDeep)
    );
    assert_eq!(
        apply_strategic_merge_patch(&json!({}), &patch, &KeyedByName),
        Err(StrategicMergeError::TooDeep)
    );
    assert_eq!(
        create_strategic_merge_patch(&original, &patch, &KeyedByName),
        Err(StrategicMergeError::TooDeep)
    );
}

#[test]
fn go_formatting_matches_go_percent_v() {
    assert_eq!(
        go_fmt(&json!({"b": [1, "x", null], "a": true})),
        "map[a:true b:[1 x <nil>]]"
    );
    assert_eq!(go_float(1_000_000.0), "1e+06");
    assert_eq!(go_float(123_456.0), "123456");
    assert_eq!(go_float(0.5), "0.5");
    assert_eq!(go_float(0.00001), "1e-05");
    assert_eq!(go_float(1.5e300), "1.5e+300");
}

// ---------------------------------------------------------------------------
// Patch metadata for built-in kinds
// ---------------------------------------------------------------------------

#[test]
fn builtin_meta_knows_pod_template_strategies_in_every_workload() {
    let template_paths: [(&str, &str, &[&str]); 8] = [
        ("apps/v1", "Deployment", &["spec", "template"]),
        ("apps/v1", "ReplicaSet", &["spec", "template"]),
        ("apps/v1", "StatefulSet", &["spec", "template"]),
        ("apps/v1", "DaemonSet", &["spec", "template"]),
        ("batch/v1", "Job", &["spec", "template"]),
        ("v1", "ReplicationController", &["spec", "template"]),
        ("v1", "PodTemplate", &["template"]),
        (
            "batch/v1",
            "CronJob",
            &["spec", "jobTemplate", "spec", "template"],
        ),
    ];
    for (api_version, kind, prefix) in template_paths {
        let meta = meta(api_version, kind);
        let at = |rest: &[&'static str]| -> Vec<&'static str> {
            prefix.iter().chain(rest).copied().collect()
        };
        assert_eq!(
            meta.list_strategy(&at(&["spec", "containers"])),
            ListStrategy::MergeByKey("name".into()),
            "{kind}"
        );
        assert_eq!(
            meta.list_strategy(&at(&["spec", "initContainers", "env"])),
            ListStrategy::MergeByKey("name".into()),
            "{kind}"
        );
        assert_eq!(
            meta.list_strategy(&at(&["metadata", "finalizers"])),
            ListStrategy::MergePrimitives,
            "{kind}"
        );
        assert!(meta.retain_keys(&at(&["spec", "volumes"])), "{kind}");
    }
}

#[test]
fn builtin_meta_matches_upstream_struct_tags() {
    let pod = pod_meta();
    let cases: [(&[&str], ListStrategy); 16] = [
        (&["metadata", "finalizers"], ListStrategy::MergePrimitives),
        (
            &["metadata", "ownerReferences"],
            ListStrategy::MergeByKey("uid".into()),
        ),
        (&["metadata", "managedFields"], ListStrategy::Replace),
        (
            &["spec", "volumes"],
            ListStrategy::MergeByKey("name".into()),
        ),
        (
            &["spec", "ephemeralContainers"],
            ListStrategy::MergeByKey("name".into()),
        ),
        (
            &["spec", "imagePullSecrets"],
            ListStrategy::MergeByKey("name".into()),
        ),
        (
            &["spec", "hostAliases"],
            ListStrategy::MergeByKey("ip".into()),
        ),
        (&["spec", "tolerations"], ListStrategy::Replace),
        (
            &["spec", "topologySpreadConstraints"],
            ListStrategy::MergeByKey("topologyKey".into()),
        ),
        (
            &["spec", "schedulingGates"],
            ListStrategy::MergeByKey("name".into()),
        ),
        (
            &["spec", "resourceClaims"],
            ListStrategy::MergeByKey("name".into()),
        ),
        (
            &["spec", "containers", "ports"],
            ListStrategy::MergeByKey("containerPort".into()),
        ),
        (
            &["spec", "containers", "volumeMounts"],
            ListStrategy::MergeByKey("mountPath".into()),
        ),
        (
            &["spec", "containers", "volumeDevices"],
            ListStrategy::MergeByKey("devicePath".into()),
        ),
        (
            &["spec", "containers", "resizePolicy"],
            ListStrategy::Replace,
        ),
        (
            &["status", "hostIPs"],
            ListStrategy::MergeByKey("ip".into()),
        ),
    ];
    for (path, strategy) in cases {
        assert_eq!(pod.list_strategy(path), strategy, "{path:?}");
    }
    assert!(pod.retain_keys(&["spec", "resourceClaims"]));
    assert!(!pod.retain_keys(&["spec", "containers"]));

    let deployment = meta("apps/v1", "Deployment");
    assert!(deployment.retain_keys(&["spec", "strategy"]));
    assert_eq!(
        deployment.list_strategy(&["status", "conditions"]),
        ListStrategy::MergeByKey("type".into())
    );
    let node = meta("v1", "Node");
    assert_eq!(
        node.list_strategy(&["spec", "podCIDRs"]),
        ListStrategy::MergePrimitives
    );
    assert_eq!(
        node.list_strategy(&["spec", "taints"]),
        ListStrategy::Replace
    );
    assert_eq!(
        node.list_strategy(&["status", "addresses"]),
        ListStrategy::MergeByKey("type".into())
    );
    assert_eq!(
        meta("v1", "Service").list_strategy(&["spec", "ports"]),
        ListStrategy::MergeByKey("port".into())
    );
    assert_eq!(
        meta("v1", "Endpoints").list_strategy(&["subsets"]),
        ListStrategy::Replace
    );
    assert_eq!(
        meta("v1", "ServiceAccount").list_strategy(&["secrets"]),
        ListStrategy::MergeByKey("name".into())
    );
    assert_eq!(
        meta(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration"
        )
        .list_strategy(&["webhooks"]),
        ListStrategy::MergeByKey("name".into())
    );
    assert_eq!(
        meta("v1", "ConfigMap").list_strategy(&["metadata", "finalizers"]),
        ListStrategy::MergePrimitives
    );
}

#[test]
fn builtin_meta_is_none_for_custom_resources_and_unknown_versions() {
    assert!(builtin_meta("stable.example.com/v1", "CronTab").is_none());
    assert!(builtin_meta("v1", "Deployment").is_none());
    assert!(builtin_meta("apps/v1beta1", "Deployment").is_none());
    assert!(builtin_meta("apps/v1", "Deployment").is_some());
    assert!(builtin_meta("apiextensions.k8s.io/v1", "CustomResourceDefinition").is_some());
}

#[test]
fn unknown_fields_have_no_strategy() {
    let pod = pod_meta();
    assert_eq!(
        pod.list_strategy(&["spec", "bogus", "containers"]),
        ListStrategy::Replace
    );
    assert_eq!(pod.list_strategy(&[]), ListStrategy::Replace);
}

// ---------------------------------------------------------------------------
// Creating patches
// ---------------------------------------------------------------------------

fn create(original: &Value, modified: &Value) -> Value {
    match create_strategic_merge_patch(original, modified, &pod_meta()) {
        Ok(patch) => patch,
        Err(e) => panic!("create failed: {e}"),
    }
}

#[test]
fn create_strategic_merge_patch_of_identical_documents_is_empty() {
    let pod = pod_with_containers(json!([{"name": "a", "env": [{"name": "X"}]}]));
    assert_eq!(create(&pod, &pod), json!({}));
}

#[test]
fn create_strategic_merge_patch_adds_container_with_element_order() {
    let original = pod_with_containers(json!([{"name": "a", "image": "a:1"}]));
    let modified =
        pod_with_containers(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    assert_eq!(
        create(&original, &modified),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "b:1"}]
        }})
    );
}

#[test]
fn create_strategic_merge_patch_deletes_removed_elements_by_key() {
    let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
    let modified = pod_with_containers(json!([{"name": "a"}]));
    assert_eq!(
        create(&original, &modified),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"$patch": "delete", "name": "b"}]
        }})
    );
}

#[test]
fn create_strategic_merge_patch_removes_finalizer_with_parallel_list() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let modified = json!({"metadata": {"finalizers": ["a", "c"]}});
    assert_eq!(
        create(&original, &modified),
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "$setElementOrder/finalizers": ["a", "c"]
        }})
    );
}

#[test]
fn create_strategic_merge_patch_builds_retain_keys_for_deployment_strategy() {
    let deployment = meta("apps/v1", "Deployment");
    let original =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let modified = json!({"spec": {"strategy": {"type": "Recreate"}}});
    let patch = create_strategic_merge_patch(&original, &modified, &deployment).expect("patch");
    assert_eq!(
        patch,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}})
    );
    assert_eq!(
        apply_strategic_merge_patch(&original, &patch, &deployment),
        Ok(modified)
    );
}

#[test]
fn create_strategic_merge_patch_builds_retain_keys_for_volume_sources() {
    let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let modified = json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}});
    let patch = create(&original, &modified);
    assert_eq!(
        patch["spec"]["volumes"],
        json!([{"$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}, "emptyDir": null, "name": "v"}])
    );
    assert_eq!(apply(original, patch), Ok(modified));
}

// ---------------------------------------------------------------------------
// Property: applying a created patch yields the modified document
// ---------------------------------------------------------------------------

fn random_env(rng: &mut Rng) -> Value {
    let names = rng.subset(&["A", "B", "C", "D"]);
    Value::Array(
        names
            .into_iter()
            .map(|name| {
                let mut env = Map::new();
                env.insert("name".into(), Value::String(name));
                if rng.one_in(4) {
                    env.insert(
                        "valueFrom".into(),
                        json!({"fieldRef": {"fieldPath": rng.pick(&["a", "b"])}}),
                    );
                } else {
                    env.insert("value".into(), rng.scalar());
                }
                Value::Object(env)
            })
            .collect(),
    )
}

fn random_container(rng: &mut Rng, name: String) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), Value::String(name));
    c.insert(
        "image".into(),
        json!(rng.pick(&["nginx", "busybox", "redis"])),
    );
    if !rng.one_in(3) {
        c.insert("env".into(), random_env(rng));
    }
    if rng.one_in(2) {
        let ports: Vec<Value> = rng
            .subset(&["80", "443", "8080"])
            .into_iter()
            .map(|p| json!({"containerPort": p.parse::<i64>().unwrap_or(1), "protocol": rng.pick(&["TCP", "UDP"])}))
            .collect();
        c.insert("ports".into(), Value::Array(ports));
    }
    if rng.one_in(2) {
        let args: Vec<Value> = (0..rng.below(3)).map(|_| rng.scalar()).collect();
        c.insert("args".into(), Value::Array(args));
    }
    if rng.one_in(3) {
        c.insert("resources".into(), Value::Object(rng.object(2)));
    }
    Value::Object(c)
}

fn random_volume(rng: &mut Rng, name: String) -> Value {
    let source = match rng.below(3) {
        0 => json!({"emptyDir": {}}),
        1 => json!({"configMap": {"name": rng.pick(&["c1", "c2"])}}),
        _ => json!({"secret": {"secretName": rng.pick(&["s1", "s2"]), "optional": rng.one_in(2)}}),
    };
    let mut v = Map::new();
    v.insert("name".into(), Value::String(name));
    if let Value::Object(source) = source {
        v.extend(source);
    }
    Value::Object(v)
}

fn random_pod_spec(rng: &mut Rng) -> Value {
    let mut spec = Map::new();
    let containers: Vec<Value> = rng
        .subset(&["app", "sidecar", "log", "proxy"])
        .into_iter()
        .map(|name| random_container(rng, name))
        .collect();
    if !containers.is_empty() || rng.one_in(2) {
        spec.insert("containers".into(), Value::Array(containers));
    }
    if rng.one_in(2) {
        let volumes = rng
            .subset(&["data", "cfg", "tmp"])
            .into_iter()
            .map(|name| random_volume(rng, name))
            .collect();
        spec.insert("volumes".into(), Value::Array(volumes));
    }
    if rng.one_in(2) {
        let tolerations = (0..rng.below(3))
            .map(|_| json!({"key": rng.pick(&["a", "b"]), "operator": "Exists"}))
            .collect();
        spec.insert("tolerations".into(), Value::Array(tolerations));
    }
    if rng.one_in(2) {
        let aliases = rng
            .subset(&["10.0.0.1", "10.0.0.2"])
            .into_iter()
            .map(|ip| json!({"ip": ip, "hostnames": [rng.pick(&["x", "y"])]}))
            .collect();
        spec.insert("hostAliases".into(), Value::Array(aliases));
    }
    if rng.one_in(2) {
        spec.insert("nodeSelector".into(), Value::Object(rng.object(0)));
    }
    if rng.one_in(3) {
        spec.insert(
            "restartPolicy".into(),
            json!(rng.pick(&["Always", "Never"])),
        );
    }
    Value::Object(spec)
}

fn random_metadata(rng: &mut Rng) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!("obj"));
    if rng.one_in(2) {
        m.insert("labels".into(), Value::Object(rng.object(0)));
    }
    if rng.one_in(2) {
        let finalizers = rng.subset(&["f/a", "f/b", "f/c", "f/d"]);
        m.insert("finalizers".into(), json!(finalizers));
    }
    if rng.one_in(3) {
        let owners: Vec<Value> = rng
            .subset(&["u1", "u2", "u3"])
            .into_iter()
            .map(|uid| json!({"uid": uid, "kind": "ReplicaSet", "name": rng.pick(&["rs1", "rs2"])}))
            .collect();
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    Value::Object(m)
}

fn random_pod(rng: &mut Rng) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": random_metadata(rng),
        "spec": random_pod_spec(rng),
    })
}

fn random_deployment(rng: &mut Rng) -> Value {
    let strategy = if rng.one_in(2) {
        json!({"type": "Recreate"})
    } else {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": rng.below(3), "maxUnavailable": rng.below(3)}})
    };
    let mut spec = json!({
        "replicas": rng.below(4),
        "template": {"metadata": random_metadata(rng), "spec": random_pod_spec(rng)},
    });
    if !rng.one_in(4) {
        spec["strategy"] = strategy;
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": random_metadata(rng), "spec": spec})
}

/// Asserts the round trip and returns the patch it went through.
fn assert_round_trip(
    original: &Value,
    modified: &Value,
    meta: &dyn PatchMeta,
    case: usize,
) -> Value {
    let patch = match create_strategic_merge_patch(original, modified, meta) {
        Ok(p) => p,
        Err(e) => panic!("case {case}: create failed: {e}\n{original}\n{modified}"),
    };
    match apply_strategic_merge_patch(original, &patch, meta) {
        Ok(out) => assert_eq!(
            &out, modified,
            "case {case}:\noriginal {original}\nmodified {modified}\npatch    {patch}"
        ),
        Err(e) => panic!("case {case}: apply failed: {e}\noriginal {original}\nmodified {modified}\npatch {patch}"),
    }
    patch
}

#[test]
fn strategic_merge_patch_of_created_diff_round_trips_pods() {
    let mut rng = Rng::new(42);
    let meta = pod_meta();
    let mut seen = [0usize; DIRECTIVES.len()];
    for case in 0..1500 {
        let original = random_pod(&mut rng);
        let modified = if rng.one_in(3) {
            random_pod(&mut rng)
        } else {
            let mut m = original.clone();
            match rng.below(3) {
                0 => m["spec"] = random_pod_spec(&mut rng),
                1 => m["metadata"] = random_metadata(&mut rng),
                _ => {
                    if let Some(Value::Array(cs)) = m["spec"].get_mut("containers") {
                        cs.reverse();
                        if let Some(Value::Object(c)) = cs.first_mut() {
                            c.insert("image".into(), json!("changed"));
                            c.remove("env");
                        }
                    }
                }
            }
            m
        };
        let patch = assert_round_trip(&original, &modified, &meta, case).to_string();
        for (i, directive) in DIRECTIVES.iter().enumerate() {
            if patch.contains(directive) {
                seen[i] += 1;
            }
        }
    }
    // The generator must exercise every directive kubectl sends.
    assert!(seen.iter().all(|&n| n > 20), "directive coverage {seen:?}");
}

const DIRECTIVES: [&str; 4] = [
    "$setElementOrder/",
    "$deleteFromPrimitiveList/",
    "\"$patch\":\"delete\"",
    "$retainKeys",
];

#[test]
fn strategic_merge_patch_of_created_diff_round_trips_deployments() {
    let mut rng = Rng::new(1_33);
    let meta = meta("apps/v1", "Deployment");
    for case in 0..1000 {
        let original = random_deployment(&mut rng);
        let modified = random_deployment(&mut rng);
        assert_round_trip(&original, &modified, &meta, case);
    }
}

#[test]
fn strategic_merge_patch_of_created_diff_round_trips_arbitrary_documents() {
    let mut rng = Rng::new(7);
    for case in 0..1000 {
        let original = Value::Object(rng.object(4));
        let modified = rng.mutate(&original, 3);
        let modified = if modified.is_object() {
            modified
        } else {
            json!({"v": modified})
        };
        assert_round_trip(&original, &modified, &ReplaceAllLists, case);
    }
}
