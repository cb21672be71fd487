//! The component schemas of the OpenAPI documents, from the `JsonSchema`
//! implementations `k8s-openapi` generates from the Kubernetes API types
//! (descriptions, types, formats and `required` come from there).
//!
//! What those implementations do not carry is added here the way upstream's
//! generator does: `x-kubernetes-group-version-kind` on each kind and on the
//! shared `DeleteOptions`/`Status`, the `<Kind>List` schemas, and the patch
//! strategy extensions (`x-kubernetes-patch-strategy`, `-patch-merge-key`,
//! `-list-type`, `-list-map-keys`), taken from the same table the strategic
//! merge patch engine uses (`apimachinery::patch::builtin_meta`), so kubectl
//! computes the patches the server applies.
//!
//! The result is neutral: `$ref`s are `#/definitions/<name>` with siblings
//! (`description`) kept next to them; `mod.rs` shapes it into Swagger 2.0
//! or OpenAPI 3.0.

use apimachinery::patch::fieldset::list_keys;
use apimachinery::patch::{builtin_meta, ListStrategy, PatchMeta};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::{Schema, SchemaGenerator};
use k8s_openapi::Resource;
use serde_json::{json, Map, Value};

/// Schemas by upstream definition name (`io.k8s.api.core.v1.Pod`).
pub type Definitions = Map<String, Value>;

pub const REF_PREFIX: &str = "#/definitions/";

pub const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// A kind `k8s-openapi` knows, and how to add its schema to a generator.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    schema: fn(&mut SchemaGenerator) -> Schema,
}

macro_rules! kinds {
    ($($t:ty),* $(,)?) => {
        &[$(Kind {
            group: <$t as Resource>::GROUP,
            version: <$t as Resource>::VERSION,
            kind: <$t as Resource>::KIND,
            schema: |g| g.subschema_for::<$t>(),
        }),*]
    };
}

/// Every kind of Kubernetes 1.33 in `k8s-openapi`; the documents include
/// those the registry serves.
static KINDS: &[Kind] = kinds![
    k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
    k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy,
    k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy,
    k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding,
    k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicy,
    k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding,
    k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion,
    k8s_openapi::api::apps::v1::ControllerRevision,
    k8s_openapi::api::apps::v1::DaemonSet,
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::apps::v1::ReplicaSet,
    k8s_openapi::api::apps::v1::StatefulSet,
    k8s_openapi::api::authentication::v1::SelfSubjectReview,
    k8s_openapi::api::authentication::v1::TokenRequest,
    k8s_openapi::api::authentication::v1::TokenReview,
    k8s_openapi::api::authorization::v1::LocalSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectRulesReview,
    k8s_openapi::api::authorization::v1::SubjectAccessReview,
    k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
    k8s_openapi::api::autoscaling::v1::Scale,
    k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
    k8s_openapi::api::batch::v1::CronJob,
    k8s_openapi::api::batch::v1::Job,
    k8s_openapi::api::certificates::v1::CertificateSigningRequest,
    k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle,
    k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle,
    k8s_openapi::api::coordination::v1::Lease,
    k8s_openapi::api::coordination::v1alpha2::LeaseCandidate,
    k8s_openapi::api::coordination::v1beta1::LeaseCandidate,
    k8s_openapi::api::core::v1::Binding,
    k8s_openapi::api::core::v1::ComponentStatus,
    k8s_openapi::api::core::v1::ConfigMap,
    k8s_openapi::api::core::v1::Endpoints,
    k8s_openapi::api::core::v1::Event,
    k8s_openapi::api::core::v1::LimitRange,
    k8s_openapi::api::core::v1::Namespace,
    k8s_openapi::api::core::v1::Node,
    k8s_openapi::api::core::v1::PersistentVolume,
    k8s_openapi::api::core::v1::PersistentVolumeClaim,
    k8s_openapi::api::core::v1::Pod,
    k8s_openapi::api::core::v1::PodTemplate,
    k8s_openapi::api::core::v1::ReplicationController,
    k8s_openapi::api::core::v1::ResourceQuota,
    k8s_openapi::api::core::v1::Secret,
    k8s_openapi::api::core::v1::Service,
    k8s_openapi::api::core::v1::ServiceAccount,
    k8s_openapi::api::discovery::v1::EndpointSlice,
    k8s_openapi::api::events::v1::Event,
    k8s_openapi::api::flowcontrol::v1::FlowSchema,
    k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration,
    k8s_openapi::api::networking::v1::IPAddress,
    k8s_openapi::api::networking::v1::Ingress,
    k8s_openapi::api::networking::v1::IngressClass,
    k8s_openapi::api::networking::v1::NetworkPolicy,
    k8s_openapi::api::networking::v1::ServiceCIDR,
    k8s_openapi::api::networking::v1beta1::IPAddress,
    k8s_openapi::api::networking::v1beta1::ServiceCIDR,
    k8s_openapi::api::node::v1::RuntimeClass,
    k8s_openapi::api::policy::v1::Eviction,
    k8s_openapi::api::policy::v1::PodDisruptionBudget,
    k8s_openapi::api::rbac::v1::ClusterRole,
    k8s_openapi::api::rbac::v1::ClusterRoleBinding,
    k8s_openapi::api::rbac::v1::Role,
    k8s_openapi::api::rbac::v1::RoleBinding,
    k8s_openapi::api::resource::v1alpha3::DeviceClass,
    k8s_openapi::api::resource::v1alpha3::DeviceTaintRule,
    k8s_openapi::api::resource::v1alpha3::ResourceClaim,
    k8s_openapi::api::resource::v1alpha3::ResourceClaimTemplate,
    k8s_openapi::api::resource::v1alpha3::ResourceSlice,
    k8s_openapi::api::resource::v1beta1::DeviceClass,
    k8s_openapi::api::resource::v1beta1::ResourceClaim,
    k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate,
    k8s_openapi::api::resource::v1beta1::ResourceSlice,
    k8s_openapi::api::resource::v1beta2::DeviceClass,
    k8s_openapi::api::resource::v1beta2::ResourceClaim,
    k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate,
    k8s_openapi::api::resource::v1beta2::ResourceSlice,
    k8s_openapi::api::scheduling::v1::PriorityClass,
    k8s_openapi::api::storage::v1::CSIDriver,
    k8s_openapi::api::storage::v1::CSINode,
    k8s_openapi::api::storage::v1::CSIStorageCapacity,
    k8s_openapi::api::storage::v1::StorageClass,
    k8s_openapi::api::storage::v1::VolumeAttachment,
    k8s_openapi::api::storage::v1alpha1::VolumeAttributesClass,
    k8s_openapi::api::storage::v1beta1::VolumeAttributesClass,
    k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigration,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
];

/// The definition name a `$ref` points to.
pub fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

fn find(group: &str, version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

fn generator() -> SchemaGenerator {
    // No transforms: keep `$ref` siblings (descriptions) for the shaping
    // step, which knows what each OpenAPI version allows.
    SchemaSettings::draft07()
        .with(|s| s.transforms.clear())
        .into_generator()
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn add_gvk(defs: &mut Definitions, name: &str, entry: Value) {
    let Some(Value::Object(schema)) = defs.get_mut(name) else {
        return;
    };
    let list = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        if !items.contains(&entry) {
            items.push(entry);
        }
    }
}

/// The definitions for the given kinds (group, version, kind) and
/// everything they reference, plus the kinds' lists and the shared meta
/// types; and each kind's definition name. Kinds `k8s-openapi` does not
/// know get no definition (`None`); `mod.rs` gives them a minimal one.
pub fn definitions(kinds: &[(&str, &str, &str)]) -> (Definitions, Vec<Option<String>>) {
    let mut generator = generator();
    let mut found = Vec::new();
    let mut names = Vec::new();
    for &(group, version, kind) in kinds {
        let name = find(group, version, kind).and_then(|k| {
            let reference = (k.schema)(&mut generator);
            let name = ref_name(reference.as_value())?.to_string();
            found.push((k, name.clone()));
            Some(name)
        });
        names.push(name);
    }
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::ListMeta>();
    let mut defs = generator.take_definitions(false);

    add_gvk(&mut defs, STATUS, gvk("", "v1", "Status"));
    add_gvk(&mut defs, DELETE_OPTIONS, gvk("", "v1", "DeleteOptions"));
    for (k, name) in &found {
        not_requiring_metadata(&mut defs, name);
        add_gvk(&mut defs, name, gvk(k.group, k.version, k.kind));
        add_gvk(
            &mut defs,
            DELETE_OPTIONS,
            gvk(k.group, k.version, "DeleteOptions"),
        );
        add_list(&mut defs, k, name);
        annotate_patch_strategies(&mut defs, k, name);
    }
    defs.insert(
        WATCH_EVENT.to_string(),
        json!({
            "description": "Event represents a single event to a watched resource.",
            "type": "object",
            "required": ["type", "object"],
            "properties": {
                "object": {
                    "description": "Object is the object of the event: the object itself for ADDED, MODIFIED and DELETED (its last state), a Status for ERROR, an object with only its resourceVersion for BOOKMARK.",
                    "type": "object",
                },
                "type": {"type": "string"},
            },
        }),
    );
    defs.insert(
        PATCH.to_string(),
        json!({
            "description": "The body of a PATCH request, in the format its Content-Type names (JSON patch, merge patch, strategic merge patch or apply configuration).",
            "type": "object",
        }),
    );
    fix_scalars(&mut defs);
    (defs, names)
}

/// `k8s-openapi` makes `metadata` a required field of every kind (its Rust
/// field is not optional); upstream requires it of none.
fn not_requiring_metadata(defs: &mut Definitions, name: &str) {
    let Some(Value::Object(schema)) = defs.get_mut(name) else {
        return;
    };
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
}

/// Upstream's Swagger 2.0 spellings of the two scalar unions.
fn fix_scalars(defs: &mut Definitions) {
    for (name, format) in [(INT_OR_STRING, Some("int-or-string")), (QUANTITY, None)] {
        if let Some(Value::Object(schema)) = defs.get_mut(name) {
            schema.remove("x-kubernetes-int-or-string");
            schema.insert("type".into(), json!("string"));
            if let Some(format) = format {
                schema.insert("format".into(), json!(format));
            }
        }
    }
}

/// `<Kind>List`: apiVersion, kind, ListMeta metadata and the items.
fn add_list(defs: &mut Definitions, k: &Kind, name: &str) {
    let list_name = format!("{name}List");
    if defs.contains_key(&list_name) {
        return;
    }
    let property = |p: &str| {
        defs.get(name)
            .and_then(|s| s.get("properties"))
            .and_then(|s| s.get(p))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}))
    };
    let list = json!({
        "description": format!("{}List is a list of {} objects.", k.kind, k.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": property("apiVersion"),
            "items": {
                "description": format!("Items is the list of {} objects.", k.kind),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{name}")},
            },
            "kind": property("kind"),
            "metadata": {
                "$ref": format!("{REF_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "x-kubernetes-group-version-kind": [gvk(k.group, k.version, &format!("{}List", k.kind))],
    });
    defs.insert(list_name, list);
}

/// Walks the kind's schema by field path and writes the patch strategy
/// extensions where the strategic merge patch table has them.
fn annotate_patch_strategies(defs: &mut Definitions, k: &Kind, name: &str) {
    let api_version = if k.group.is_empty() {
        k.version.to_string()
    } else {
        format!("{}/{}", k.group, k.version)
    };
    let Some(meta) = builtin_meta(&api_version, k.kind) else {
        return;
    };
    let mut path = Vec::new();
    let mut stack = Vec::new();
    walk(defs, name, &meta, &mut path, &mut stack);
}

/// Deep enough for every tagged field of the built-in kinds (a CronJob's
/// container ports are 8 levels down).
const MAX_DEPTH: usize = 14;

fn walk(
    defs: &mut Definitions,
    name: &str,
    meta: &dyn PatchMeta,
    path: &mut Vec<String>,
    stack: &mut Vec<String>,
) {
    if stack.len() >= MAX_DEPTH || stack.iter().any(|s| s == name) {
        return;
    }
    let Some(Value::Object(props)) = defs.get(name).and_then(|d| d.get("properties")) else {
        return;
    };
    let mut updates = Vec::new();
    let mut children = Vec::new();
    for (prop, schema) in props {
        path.push(prop.clone());
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let ext = patch_extensions(meta, &p);
        if !ext.is_empty() {
            updates.push((prop.clone(), ext));
        }
        let target = ref_name(schema).or_else(|| schema.get("items").and_then(ref_name));
        if let Some(target) = target {
            children.push((prop.clone(), target.to_string()));
        }
        path.pop();
    }
    if let Some(Value::Object(props)) = defs.get_mut(name).and_then(|d| d.get_mut("properties")) {
        for (prop, ext) in updates {
            if let Some(Value::Object(schema)) = props.get_mut(&prop) {
                schema.extend(ext);
            }
        }
    }
    stack.push(name.to_string());
    for (prop, child) in children {
        path.push(prop);
        walk(defs, &child, meta, path, stack);
        path.pop();
    }
    stack.pop();
}

fn patch_extensions(meta: &dyn PatchMeta, path: &[&str]) -> Map<String, Value> {
    let mut ext = Map::new();
    let retain = meta.retain_keys(path);
    match meta.list_strategy(path) {
        ListStrategy::MergeByKey(key) => {
            let strategy = if retain { "merge,retainKeys" } else { "merge" };
            let keys: Vec<String> = list_keys(meta, path)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            ext.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            ext.insert("x-kubernetes-list-type".into(), json!("map"));
            ext.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            ext.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        }
        ListStrategy::MergePrimitives => {
            ext.insert("x-kubernetes-list-type".into(), json!("set"));
            ext.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
        }
        ListStrategy::Replace if retain => {
            ext.insert("x-kubernetes-patch-strategy".into(), json!("retainKeys"));
        }
        ListStrategy::Replace => {}
    }
    ext
}
