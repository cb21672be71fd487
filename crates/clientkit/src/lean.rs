//! Watching pods without decoding their `managedFields`.
//!
//! Pods are most of what the scheduler and the controller manager watch,
//! and a pod's managedFields (one tree of field names per writer) are a
//! large part of its JSON. No component reads them: informers drop them
//! ([`crate::trim_managed_fields`]), but only after decoding every one of
//! them into a tree of maps. A [`LeanPod`] is decoded with them skipped,
//! and so is a [`LeanMetadata`], what the garbage collector's metadata
//! watches of every resource deliver.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::Resource;
use serde::{Deserialize, Deserializer};

/// A pod as a watch delivers it, without `metadata.managedFields`.
#[derive(Clone, Debug, Default)]
pub struct LeanPod(pub Pod);

/// ObjectMeta's fields but managedFields, which is skipped unread.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LeanMeta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

impl LeanMeta {
    /// The ObjectMeta of an object's `metadata` (absent: the empty one).
    fn object_meta(meta: Option<LeanMeta>) -> ObjectMeta {
        let m = meta.unwrap_or_default();
        ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: m.self_link,
            uid: m.uid,
        }
    }
}

impl<'de> Deserialize<'de> for LeanPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LeanPod, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            metadata: Option<LeanMeta>,
            spec: Option<PodSpec>,
            status: Option<PodStatus>,
        }
        let Object {
            metadata,
            spec,
            status,
        } = Object::deserialize(deserializer)?;
        Ok(LeanPod(Pod {
            metadata: LeanMeta::object_meta(metadata),
            spec,
            status,
        }))
    }
}

impl Resource for LeanPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Pod::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Pod::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Pod::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Pod::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

/// An object's metadata as a metadata watch (`PartialObjectMetadata`)
/// delivers it, without managedFields: what kube's `PartialObjectMeta<K>`
/// holds, decoded without buffering the object first.
#[derive(Clone, Debug, Default)]
pub struct LeanMetadata<K = DynamicObject> {
    pub metadata: ObjectMeta,
    kind: PhantomData<K>,
}

impl<'de, K> Deserialize<'de> for LeanMetadata<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            metadata: Option<LeanMeta>,
        }
        let Object { metadata } = Object::deserialize(deserializer)?;
        Ok(LeanMetadata {
            metadata: LeanMeta::object_meta(metadata),
            kind: PhantomData,
        })
    }
}

impl<K: Resource> Resource for LeanMetadata<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    /// Asks the server for metadata only, as `PartialObjectMeta<K>` does.
    fn metadata_api() -> bool {
        true
    }
    fn kind(dt: &K::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &K::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &K::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &K::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A watcher's events of `api`'s pods, decoded without managedFields;
/// otherwise exactly `watcher::watcher` on an `Api<Pod>`.
pub fn pod_watcher(
    api: Api<LeanPod>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<Pod>, watcher::Error>> + Send {
    watcher::watcher(api, config).map_ok(|event| match event {
        Event::Apply(p) => Event::Apply(p.0),
        Event::Delete(p) => Event::Delete(p.0),
        Event::Init => Event::Init,
        Event::InitApply(p) => Event::InitApply(p.0),
        Event::InitDone => Event::InitDone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lean_pod_is_the_pod_without_its_managed_fields() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "generateName": "p-", "generation": 2, "selfLink": "/x",
                "creationTimestamp": "2026-11-24T01:00:00Z",
                "deletionTimestamp": "2026-11-24T01:00:30Z",
                "deletionGracePeriodSeconds": 30,
                "labels": {"app": "web"}, "annotations": {"a": "b"},
                "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "rs", "uid": "r", "controller": true}],
                "managedFields": [{"manager": "m", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:nodeName": {}}}}]
            },
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.2"}
        });
        let mut full: Pod = serde_json::from_value(json.clone()).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        crate::trim_managed_fields(&mut full);
        let lean: LeanPod = serde_json::from_value(json).unwrap();
        assert_eq!(lean.0, full);
        // Missing and null parts decode as for a Pod.
        let bare: LeanPod =
            serde_json::from_str(r#"{"metadata":{"name":"p","labels":null},"spec":null}"#).unwrap();
        let pod: Pod =
            serde_json::from_str(r#"{"metadata":{"name":"p","labels":null},"spec":null}"#).unwrap();
        assert_eq!(bare.0, pod);
    }

    #[test]
    fn lean_metadata_is_partial_object_metadata_without_managed_fields() {
        let json = r#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
            "metadata":{"name":"p","uid":"u","finalizers":["f"],
            "ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"o","uid":"ou"}],
            "managedFields":[{"manager":"m","fieldsV1":{"f:x":{}}}]}}"#;
        let full: kube::core::PartialObjectMeta<DynamicObject> =
            serde_json::from_str(json).unwrap();
        let lean: LeanMetadata = serde_json::from_str(json).unwrap();
        let mut expected = full.metadata;
        expected.managed_fields = None;
        assert_eq!(lean.metadata, expected);
        assert!(<LeanMetadata as Resource>::metadata_api());
    }
}
