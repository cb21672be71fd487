use super::*;

fn v3(registry: &Registry, gv: &str) -> Value {
    let resp = serve_v3(
        registry,
        &format!("/openapi/v3/{gv}"),
        "",
        &HeaderMap::new(),
    )
    .unwrap();
    let doc = v3_cached(
        registry,
        if gv == "api/v1" {
            ""
        } else {
            gv.trim_start_matches("apis/").split('/').next().unwrap()
        },
        gv.rsplit('/').next().unwrap(),
    );
    assert_eq!(resp.status(), 200);
    serde_json::from_slice(&doc.body).unwrap()
}

#[test]
fn v3_deployment_schema_has_gvk_descriptions_and_allof_refs() {
    let registry = Registry::builtin();
    let doc = v3(&registry, "apis/apps/v1");
    let schemas = &doc["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert!(deployment["description"]
        .as_str()
        .unwrap()
        .contains("declarative updates"));
    assert_eq!(
        deployment["properties"]["spec"]["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}])
    );
    assert!(deployment["properties"]["spec"]["description"].is_string());
    assert!(
        deployment.get("required").is_none(),
        "metadata is not required"
    );
    assert_eq!(
        schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    // Everything referenced is defined.
    let text = doc.to_string();
    for piece in text.split("#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            schemas.get(name).is_some(),
            "{name} is referenced but not defined"
        );
    }
}

#[test]
fn v3_pod_spec_carries_patch_strategies_and_required() {
    let registry = Registry::builtin();
    let doc = v3(&registry, "api/v1");
    let schemas = &doc["components"]["schemas"];
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    let volumes = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.Container"]["required"],
        json!(["name"])
    );
    let finalizers =
        &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
        "date-time"
    );
    assert_eq!(schemas[schemas::INT_OR_STRING]["format"], "int-or-string");
    assert!(
        schemas["io.k8s.api.core.v1.Probe"]["properties"]["httpGet"]["description"].is_string()
    );
}

#[test]
fn v3_index_links_documents_by_hash_and_old_hashes_redirect() {
    let registry = Registry::builtin();
    let resp = serve_v3(&registry, "/openapi/v3", "", &HeaderMap::new()).unwrap();
    assert!(resp.headers().get(header::ETAG).is_some());
    let doc = v3_cached(&registry, "apps", "v1");
    let url = format!("/openapi/v3/apis/apps/v1?hash={}", doc.hash);
    let resp = serve_v3(
        &registry,
        "/openapi/v3/apis/apps/v1",
        &format!("hash={}", doc.hash),
        &HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let resp = serve_v3(
        &registry,
        "/openapi/v3/apis/apps/v1",
        "hash=0000",
        &HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()[header::LOCATION], url.as_str());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::IF_NONE_MATCH,
        HeaderValue::from_str(&format!("\"{}\"", doc.hash)).unwrap(),
    );
    let resp = serve_v3(&registry, "/openapi/v3/apis/apps/v1", "", &headers).unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(
        serve_v3(&registry, "/openapi/v3/apis/nope/v1", "", &HeaderMap::new())
            .unwrap_err()
            .code,
        404
    );
}

#[test]
fn v2_uses_definitions_refs_with_descriptions_beside_them() {
    let registry = Registry::builtin();
    let resp = serve_v2(&registry, &HeaderMap::new());
    assert_eq!(resp.status(), 200);
    let resources: Vec<&ResourceInfo> = registry.all().collect();
    let doc: Value =
        serde_json::from_slice(&cached("v2:json", &resources, || unreachable!()).body).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let pod = &doc["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
    assert!(pod["properties"]["spec"]["description"].is_string());
    assert_eq!(doc["definitions"][schemas::QUANTITY]["type"], "string");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert!(patch["parameters"].to_string().contains("fieldValidation"));

    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
    );
    let resp = serve_v2(&registry, &headers);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], V2_PROTOBUF);
}

#[test]
fn every_served_kind_has_a_full_schema_with_its_gvk_and_list() {
    let registry = Registry::builtin();
    let resources: Vec<&ResourceInfo> = registry.all().collect();
    let (defs, names) = definitions_for(&resources);
    for (r, name) in resources.iter().zip(&names) {
        let schema = &defs[name.as_str()];
        assert!(
            schema["properties"]["metadata"].is_object(),
            "{}/{} {} has no real schema: {schema}",
            r.group,
            r.version,
            r.kind
        );
        assert!(schema["description"].is_string(), "{name}");
        let gvks = schema["x-kubernetes-group-version-kind"].to_string();
        assert!(
            gvks.contains(&format!("\"kind\":\"{}\"", r.kind)),
            "{name}: {gvks}"
        );
        assert!(defs.contains_key(&format!("{name}List")), "{name}List");
    }
}

#[test]
fn status_subresources_have_their_own_paths() {
    let registry = Registry::builtin();
    let doc = v3(&registry, "apis/apps/v1");
    let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(status["get"]["operationId"], "readDeploymentStatus");
    assert_eq!(
        status["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(status["patch"]["parameters"]
        .to_string()
        .contains("fieldValidation"));
    assert!(status.get("delete").is_none());
}
