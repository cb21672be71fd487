//! Watching pods without decoding their `managedFields` or volumes.
//!
//! Pods are most of what the scheduler and the controller manager watch,
//! and a pod's managedFields (one tree of field names per writer) are a
//! large part of its JSON. No component reads them: informers drop them
//! ([`crate::trim_managed_fields`]), but only after decoding every one of
//! them into a tree of maps. A [`LeanPod`] is decoded with them skipped,
//! and so is a [`LeanMetadata`], what the garbage collector's metadata
//! watches of every resource deliver.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::Resource;
use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A pod as a watch delivers it, without `metadata.managedFields` and
/// without `spec.volumes`.
///
/// No watcher of pods in the project reads a cached pod's volumes (and none
/// writes a cached pod back whole), while a pod's service-account volume
/// alone was a quarter of the cost of decoding it. A component that comes
/// to need volumes must watch `Pod`s instead.
#[derive(Clone, Debug, Default)]
pub struct LeanPod(pub Pod);

/// ObjectMeta with `managedFields` skipped unread.
struct LeanMeta(ObjectMeta);

impl<'de> Deserialize<'de> for LeanMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        without(deserializer, &["managedFields"]).map(LeanMeta)
    }
}

impl LeanMeta {
    /// The ObjectMeta of an object's `metadata` (absent: the empty one).
    fn object_meta(meta: Option<LeanMeta>) -> ObjectMeta {
        meta.map(|m| m.0).unwrap_or_default()
    }
}

/// A PodSpec with `volumes` skipped unread.
struct SpecWithoutVolumes(PodSpec);

impl<'de> Deserialize<'de> for SpecWithoutVolumes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        without(deserializer, &["volumes"]).map(SpecWithoutVolumes)
    }
}

/// `T` decoded from an object whose members named in `skip` are passed
/// over unread.
fn without<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
    skip: &'static [&'static str],
) -> Result<T, D::Error> {
    T::deserialize(Without {
        inner: deserializer,
        skip,
    })
}

impl<'de> Deserialize<'de> for LeanPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LeanPod, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            metadata: Option<LeanMeta>,
            spec: Option<SpecWithoutVolumes>,
            status: Option<PodStatus>,
        }
        let Object {
            metadata,
            spec,
            status,
        } = Object::deserialize(deserializer)?;
        Ok(LeanPod(Pod {
            metadata: LeanMeta::object_meta(metadata),
            spec: spec.map(|s| s.0),
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

/// A deserializer for an object that passes over the members named in
/// `skip` (their values are parsed past, never built) and decodes the
/// others as `inner` would. It leaves nested objects alone.
struct Without<D> {
    inner: D,
    skip: &'static [&'static str],
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Without<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(WithoutVisitor {
            visitor,
            skip: self.skip,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(
            name,
            fields,
            WithoutVisitor {
                visitor,
                skip: self.skip,
            },
        )
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(WithoutVisitor {
            visitor,
            skip: self.skip,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}

/// Hands the object's members, less the skipped ones, to `visitor`.
struct WithoutVisitor<V> {
    visitor: V,
    skip: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for WithoutVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(WithoutMap {
            inner: map,
            skip: self.skip,
        })
    }

    // Anything but an object is the inner visitor's to accept or refuse.
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.visitor.visit_bool(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.visitor.visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.visitor.visit_u64(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.visitor.visit_f64(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.visitor.visit_str(v)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(seq)
    }
}

struct WithoutMap<A> {
    inner: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        mut seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let key = KeySeed {
                seed,
                skip: self.skip,
            };
            match self.inner.next_key_seed(key)? {
                None => return Ok(None),
                Some(Key::Kept(key)) => return Ok(Some(key)),
                Some(Key::Skipped(unused)) => {
                    self.inner.next_value::<IgnoredAny>()?;
                    seed = unused;
                }
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// A member's name: decoded by the caller's seed, or, for a skipped member,
/// the seed handed back unused.
enum Key<K, S> {
    Kept(K),
    Skipped(S),
}

struct KeySeed<K> {
    seed: K,
    skip: &'static [&'static str],
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<K> {
    type Value = Key<K::Value, K>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeySeed<K> {
    type Value = Key<K::Value, K>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        if self.skip.contains(&name) {
            return Ok(Key::Skipped(self.seed));
        }
        self.seed
            .deserialize(name.into_deserializer())
            .map(Key::Kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lean_pod_is_the_pod_without_its_managed_fields_or_volumes() {
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
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
                "tolerations": [{"key": "k", "operator": "Exists"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.2"}
        });
        let mut full: Pod = serde_json::from_value(json.clone()).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        crate::trim_managed_fields(&mut full);
        full.spec.as_mut().unwrap().volumes = None;
        // From text, as a watch decodes it, and from a tree.
        let text = serde_json::to_string(&json).unwrap();
        let lean: LeanPod = serde_json::from_str(&text).unwrap();
        assert_eq!(lean.0, full);
        let lean: LeanPod = serde_json::from_value(json).unwrap();
        assert_eq!(lean.0, full);
        // Missing and null parts decode as for a Pod.
        let bare: LeanPod =
            serde_json::from_str(r#"{"metadata":{"name":"p","labels":null},"spec":null}"#).unwrap();
        let pod: Pod =
            serde_json::from_str(r#"{"metadata":{"name":"p","labels":null},"spec":null}"#).unwrap();
        assert_eq!(bare.0, pod);
        // A spec that is not an object is refused as for a Pod.
        assert!(serde_json::from_str::<LeanPod>(r#"{"spec":[1]}"#).is_err());
        assert!(serde_json::from_str::<Pod>(r#"{"spec":[1]}"#).is_err());
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
