use super::*;
use crate::patch::builtin_meta;
use serde_json::json;

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-02T00:00:00Z";

fn meta(api_version: &str, kind: &str) -> impl PatchMeta {
    builtin_meta(api_version, kind).expect("built in")
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn apply_cm(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    apply(live, config, manager, force, &meta("v1", "ConfigMap"), T1)
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn fields_of(obj: &Value, manager: &str) -> Value {
    entries(obj)
        .into_iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": containers}})
}

#[test]
fn create_via_apply_records_an_apply_entry() {
    let out = apply_cm(None, &cm(json!({"a": "1"})), "kubectl", false).expect("applies");
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(
        entries(&out),
        vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}}
        })]
    );
}

#[test]
fn reapplying_with_a_field_removed_deletes_it() {
    let live = apply_cm(None, &cm(json!({"a": "1", "b": "2"})), "kubectl", false).expect("create");
    let out = apply_cm(Some(&live), &cm(json!({"a": "1"})), "kubectl", false).expect("reapply");
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(fields_of(&out, "kubectl"), json!({"f:data": {"f:a": {}}}));
}

#[test]
fn field_owned_by_another_manager_is_not_removed() {
    let live = apply_cm(None, &cm(json!({"a": "1", "b": "2"})), "one", false).expect("create");
    // "two" applies b with the same value: shared ownership.
    let live = apply_cm(Some(&live), &cm(json!({"b": "2"})), "two", false).expect("share");
    let out = apply_cm(Some(&live), &cm(json!({"a": "1"})), "one", false).expect("reapply");
    assert_eq!(out["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(fields_of(&out, "one"), json!({"f:data": {"f:a": {}}}));
    assert_eq!(fields_of(&out, "two"), json!({"f:data": {"f:b": {}}}));
}

#[test]
fn changing_another_managers_field_is_a_conflict_with_upstream_message() {
    let mut live = cm(json!({"a": "1"}));
    record_update(
        None,
        &mut live,
        "kubectl-client-side-apply",
        T1,
        &meta("v1", "ConfigMap"),
    );
    let err =
        apply_cm(Some(&live), &cm(json!({"a": "2"})), "kubectl", false).expect_err("conflict");
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a"#
    );
    let api = err.to_api_error();
    assert_eq!(api.code, 409);
    assert_eq!(api.reason, StatusReason::Conflict);
    assert_eq!(api.causes()[0].reason, "FieldManagerConflict");
    assert_eq!(
        api.causes()[0].message,
        r#"conflict with "kubectl-client-side-apply" using v1"#
    );
    assert_eq!(api.causes()[0].field, ".data.a");
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let live = apply_cm(None, &cm(json!({"a": "1", "b": "1"})), "one", false).expect("create");
    let err = apply_cm(Some(&live), &cm(json!({"a": "2", "b": "2"})), "two", false)
        .expect_err("conflicts");
    assert_eq!(
        err.message(),
        "Apply failed with 2 conflicts: conflicts with \"one\":\n- .data.a\n- .data.b"
    );
}

#[test]
fn force_takes_ownership() {
    let live = apply_cm(None, &cm(json!({"a": "1", "b": "1"})), "one", false).expect("create");
    let out = apply_cm(Some(&live), &cm(json!({"a": "2"})), "two", true).expect("forced");
    assert_eq!(out["data"], json!({"a": "2", "b": "1"}));
    assert_eq!(fields_of(&out, "one"), json!({"f:data": {"f:b": {}}}));
    assert_eq!(fields_of(&out, "two"), json!({"f:data": {"f:a": {}}}));
    // "one" no longer owns a: dropping it from its config leaves a alone.
    let out = apply_cm(Some(&out), &cm(json!({"b": "1"})), "one", false).expect("reapply");
    assert_eq!(out["data"], json!({"a": "2", "b": "1"}));
}

#[test]
fn applying_the_same_value_is_not_a_conflict_and_shares_ownership() {
    let live = apply_cm(None, &cm(json!({"a": "1"})), "one", false).expect("create");
    let out = apply_cm(Some(&live), &cm(json!({"a": "1"})), "two", false).expect("same value");
    assert_eq!(fields_of(&out, "one"), json!({"f:data": {"f:a": {}}}));
    assert_eq!(fields_of(&out, "two"), json!({"f:data": {"f:a": {}}}));
}

#[test]
fn associative_list_merges_by_key_with_per_item_ownership() {
    let m = meta("v1", "Pod");
    let live = apply(
        None,
        &pod(json!([{"name": "web", "image": "nginx:1"}])),
        "one",
        false,
        &m,
        T1,
    )
    .expect("create");
    let out = apply(
        Some(&live),
        &pod(json!([{"name": "side", "image": "envoy"}])),
        "two",
        false,
        &m,
        T1,
    )
    .expect("second container");
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "envoy"}])
    );
    assert_eq!(
        fields_of(&out, "two"),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"side\"}": {
            ".": {}, "f:image": {}, "f:name": {}}}}})
    );
    let err = apply(
        Some(&out),
        &pod(json!([{"name": "web", "image": "nginx:2"}])),
        "two",
        false,
        &m,
        T1,
    )
    .expect_err("web's image is one's");
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "one": .spec.containers[name="web"].image"#
    );
    // "one" drops its container: it goes, "side" stays.
    let out = apply(Some(&out), &pod(json!([])), "one", false, &m, T1).expect("drop web");
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "side", "image": "envoy"}])
    );
}

#[test]
fn container_ports_are_keyed_by_port_and_protocol() {
    let m = meta("v1", "Pod");
    let out = apply(
        None,
        &pod(json!([{"name": "web", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]}])),
        "one",
        false,
        &m,
        T1,
    )
    .expect("two ports, distinct keys");
    let ports =
        &fields_of(&out, "one")["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"];
    assert!(
        ports
            .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{ports}"
    );
    assert!(
        ports
            .get("k:{\"containerPort\":80,\"protocol\":\"UDP\"}")
            .is_some(),
        "{ports}"
    );
}

#[test]
fn set_lists_are_unioned() {
    let m = meta("v1", "ConfigMap");
    let with_finalizers = |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": f}});
    let live = apply(None, &with_finalizers(json!(["a"])), "one", false, &m, T1).expect("create");
    let out = apply(
        Some(&live),
        &with_finalizers(json!(["b"])),
        "two",
        false,
        &m,
        T1,
    )
    .expect("union");
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(
        fields_of(&out, "two"),
        json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}})
    );
}

#[test]
fn atomic_list_is_replaced_and_owned_whole() {
    let m = meta("v1", "Pod");
    let live = apply(
        None,
        &pod(json!([{"name": "web", "args": ["a", "b"]}])),
        "one",
        false,
        &m,
        T1,
    )
    .expect("create");
    let out = apply(
        Some(&live),
        &pod(json!([{"name": "web", "args": ["c"]}])),
        "one",
        false,
        &m,
        T1,
    )
    .expect("replace");
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["c"]));
    assert_eq!(
        fields_of(&out, "one")["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:args"],
        json!({})
    );
    let err = apply(
        Some(&out),
        &pod(json!([{"name": "web", "args": ["d"]}])),
        "two",
        false,
        &m,
        T1,
    )
    .expect_err("args are one's");
    assert!(
        err.message()
            .ends_with(r#".spec.containers[name="web"].args"#),
        "{}",
        err.message()
    );
}

#[test]
fn record_update_then_apply_by_another_manager_conflicts() {
    let m = meta("v1", "ConfigMap");
    let old = apply(None, &cm(json!({"a": "1"})), "one", false, &m, T1).expect("create");
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    new["data"]["b"] = json!("3");
    record_update(Some(&old), &mut new, "editor", T2, &m);
    // a moved from one to editor; one's entry is now empty and gone.
    assert_eq!(fields_of(&new, "one"), Value::Null);
    assert_eq!(
        fields_of(&new, "editor"),
        json!({"f:data": {"f:a": {}, "f:b": {}}})
    );
    let editor = entries(&new)
        .into_iter()
        .find(|e| e["manager"] == "editor")
        .expect("entry");
    assert_eq!(editor["operation"], "Update");
    assert_eq!(editor["time"], T2);
    let err = apply(Some(&new), &cm(json!({"b": "4"})), "other", false, &m, T1)
        .expect_err("b is editor's");
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "editor" using v1: .data.b"#
    );
}

#[test]
fn record_update_on_create_marks_added_maps_with_dot() {
    let m = meta("v1", "Pod");
    let mut new = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "a"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Pending"}});
    record_update(None, &mut new, "kubectl-create", T1, &m);
    assert_eq!(
        fields_of(&new, "kubectl-create"),
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}
        })
    );
}

#[test]
fn record_update_without_changes_keeps_managed_fields() {
    let m = meta("v1", "ConfigMap");
    let old = apply(None, &cm(json!({"a": "1"})), "one", false, &m, T1).expect("create");
    let mut new = old.clone();
    record_update(Some(&old), &mut new, "editor", T2, &m);
    assert_eq!(new, old);
}

#[test]
fn noop_reapply_keeps_timestamps() {
    let m = meta("v1", "ConfigMap");
    let live = apply(None, &cm(json!({"a": "1"})), "one", false, &m, T1).expect("create");
    let out = apply(Some(&live), &cm(json!({"a": "1"})), "one", false, &m, T2).expect("noop");
    assert_eq!(out, live);
}

#[test]
fn apply_refuses_other_kind_version_name_and_managed_fields() {
    let live = cm(json!({"a": "1"}));
    let mut config = cm(json!({}));
    config["kind"] = json!("Secret");
    let err = apply_cm(Some(&live), &config, "m", false).expect_err("kind");
    assert_eq!(
        err.message(),
        "Incorrect kind specified in apply patch. Specified patch kind: Secret, expected: ConfigMap"
    );
    let mut config = cm(json!({}));
    config["apiVersion"] = json!("v2");
    assert!(matches!(
        apply_cm(Some(&live), &config, "m", false),
        Err(ApplyError::VersionMismatch { .. })
    ));
    let mut config = cm(json!({}));
    config["metadata"]["name"] = json!("other");
    let err = apply_cm(Some(&live), &config, "m", false).expect_err("name");
    assert_eq!(err.status_code(), 400);
    let mut config = cm(json!({}));
    config["metadata"]["managedFields"] = json!([{"manager": "x"}]);
    assert_eq!(
        apply_cm(Some(&live), &config, "m", false),
        Err(ApplyError::ManagedFieldsInConfig)
    );
    assert!(apply_cm(None, &json!([1]), "m", false).is_err());
}

#[test]
fn status_and_server_fields_are_never_owned() {
    let m = meta("v1", "Pod");
    let config = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "uid": "u", "resourceVersion": "5", "generation": 2},
        "spec": {"nodeName": "n"}, "status": {"phase": "Running"}});
    let out = apply(None, &config, "m", false, &m, T1).expect("applies");
    assert_eq!(fields_of(&out, "m"), json!({"f:spec": {"f:nodeName": {}}}));
    assert!(out.get("status").is_none());
}

#[test]
fn odd_and_deep_inputs_never_panic() {
    let m = meta("v1", "Pod");
    let mut deep = json!("x");
    for _ in 0..300 {
        deep = json!({ "a": deep });
    }
    let odd_live = [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "managedFields": "nope"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "managedFields": [{"fieldsType": "FieldsV1", "fieldsV1": {"f:a": 3}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": "nope", "spec": {"containers": "x"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [1, {"name": 2}, null]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": deep.clone()}),
    ];
    let configs = [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "x": null}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "a"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": deep.clone()}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": null, "spec": [[[]]]}),
        json!({"apiVersion": "v1", "kind": "Pod"}),
        json!({"apiVersion": 1, "kind": "Pod"}),
    ];
    for live in &odd_live {
        for config in &configs {
            let _ = apply(Some(live), config, "m", false, &m, T1);
            let _ = apply(Some(live), config, "m", true, &m, T1);
            let mut new = config.clone();
            record_update(Some(live), &mut new, "m", T1, &m);
            let mut new = live.clone();
            record_update(Some(config), &mut new, "m", T1, &m);
        }
    }
    for config in &configs {
        let _ = apply(None, config, "m", false, &m, T1);
        let mut new = config.clone();
        record_update(None, &mut new, "m", T1, &m);
    }
}

#[test]
fn undecodable_managed_fields_are_dropped_on_update() {
    let m = meta("v1", "ConfigMap");
    let old = cm(json!({"a": "1"}));
    let mut new = cm(json!({"a": "2"}));
    new["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&old), &mut new, "editor", T1, &m);
    assert!(new.pointer("/metadata/managedFields").is_none());
}

#[test]
fn associative_item_without_key_is_a_500_like_upstream() {
    let m = meta("v1", "Pod");
    let mut config = pod(json!([{"image": "x"}]));
    config["metadata"]["namespace"] = json!("default");
    let err = apply(None, &config, "m", false, &m, T1).expect_err("no name");
    assert_eq!(err.status_code(), 500);
    assert_eq!(
        err.message(),
        "failed to create typed patch object (default/p; /v1, Kind=Pod): .spec.containers: \
         element 0: associative list with keys has an element that omits key field \"name\" \
         (and doesn't have default value)"
    );
}

#[test]
fn managed_fields_list_apply_entries_before_update_entries() {
    let m = meta("v1", "ConfigMap");
    let mut obj = cm(json!({"a": "1"}));
    record_update(None, &mut obj, "creator", T1, &m);
    let obj = apply(Some(&obj), &cm(json!({"b": "2"})), "applier", false, &m, T2).expect("apply");
    let order: Vec<Value> = entries(&obj)
        .iter()
        .map(|e| json!([e["manager"], e["operation"]]))
        .collect();
    assert_eq!(
        order,
        vec![json!(["applier", "Apply"]), json!(["creator", "Update"])]
    );
}

#[test]
fn json_maps_iterate_in_key_order_as_the_comparison_relies_on() {
    // `merged_keys` walks two maps in step; serde_json's `preserve_order`
    // feature (insertion order) would break it.
    let obj = json!({"zeta": 1, "alpha": 2, "mid": 3});
    let keys: Vec<&String> = obj.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alpha", "mid", "zeta"]);
    let a = json!({"a": 1, "c": 1, "e": 1});
    let b = json!({"b": 1, "c": 2, "f": 1});
    let merged: Vec<&String> = merged_keys(a.as_object(), b.as_object()).collect();
    assert_eq!(merged, ["a", "b", "c", "e", "f"]);
}

/// The managedFields a create records, the long way: the comparison's
/// field sets, then their encoding.
fn created_entry_via_field_sets(obj: &Value, manager: &str, m: &dyn PatchMeta) -> Value {
    let (changed, _) = compare_objects(None, obj, m).into_changed();
    if changed.is_empty() {
        return Value::Null;
    }
    json!([{
        "manager": manager,
        "operation": "Update",
        "apiVersion": obj["apiVersion"],
        "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": changed.to_fields_v1(),
    }])
}

#[test]
fn a_create_records_the_fields_the_field_sets_would() {
    let objects = [
        (
            "v1",
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "d", "uid": "u", "creationTimestamp": "x",
                             "labels": {"app": "web"}, "annotations": {"a": "b"},
                             "finalizers": ["f1", "f2"], "generateName": "p-"},
                "spec": {"containers": [
                    {"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                                          {"containerPort": 53, "protocol": "UDP", "name": "dns"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                     "resources": {"limits": {"cpu": "1"}, "requests": {}},
                     "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                     "livenessProbe": {"httpGet": {"path": "/", "port": 80}}},
                    {"name": "d", "image": "i", "args": ["a", "b"]}],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                    "nodeSelector": {}, "restartPolicy": "Always"},
                "status": {"phase": "Pending"}}),
        ),
        (
            "apps/v1",
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}},
                         "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                         "template": {"metadata": {"labels": {"app": "w"}},
                                      "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        ),
        (
            "v1",
            "Service",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                         "selector": {"a": "b"}, "clusterIPs": ["10.0.0.1"]}}),
        ),
        ("v1", "ConfigMap", cm(json!({"a": "1", "b": ""}))),
        (
            "v1",
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ),
        (
            "v1",
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {}}),
        ),
        // Lists that cannot be keyed are atomic: a repeated key, an item
        // without its key, objects in a merged list of primitives.
        (
            "v1",
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "finalizers": [{"x": 1}], "ownerReferences": []},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 1}, {"containerPort": 1}]},
                                        {"image": "nameless"}],
                         "initContainers": [{"name": "i", "env": [{"name": "A"}, {"value": "b"}]}],
                         "volumes": [], "securityContext": {}}}),
        ),
        (
            "apps/v1",
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "labels": {}},
                "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "c"}]}},
                         "selector": {}}}),
        ),
    ];
    for (api_version, kind, obj) in objects {
        let m = meta(api_version, kind);
        let mut created = obj.clone();
        record_update(None, &mut created, "mgr", T1, &m);
        let recorded = created
            .pointer("/metadata/managedFields")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(
            recorded,
            created_entry_via_field_sets(&obj, "mgr", &m),
            "{kind}: {obj}"
        );
    }
}

#[test]
fn a_write_that_changes_no_owned_field_keeps_the_entries_as_they_were() {
    let m = meta("v1", "Pod");
    let mut created = pod(json!([{"name": "c", "image": "i"}]));
    record_update(None, &mut created, "creator", T1, &m);
    let mut bound = created.clone();
    bound["spec"]["nodeName"] = json!("n1");
    record_update(Some(&created), &mut bound, "scheduler", T2, &m);
    let before = entries(&bound);
    assert_eq!(before.len(), 2);

    // A status write sent without managedFields: the stored entries stay,
    // times included.
    let mut running = bound.clone();
    running["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    running["status"] = json!({"phase": "Running"});
    record_update(
        Some(&bound),
        &mut running,
        "kubelet",
        "2026-01-03T00:00:00Z",
        &m,
    );
    assert_eq!(entries(&running), before);

    // The same with the entries sent back unchanged.
    let mut again = bound.clone();
    again["status"] = json!({"phase": "Succeeded"});
    record_update(
        Some(&bound),
        &mut again,
        "kubelet",
        "2026-01-04T00:00:00Z",
        &m,
    );
    assert_eq!(entries(&again), before);

    // `[{}]` still clears them, as upstream's reset does.
    let mut reset = bound.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&bound), &mut reset, "kubelet", T2, &m);
    assert!(reset.pointer("/metadata/managedFields").is_none());
}
