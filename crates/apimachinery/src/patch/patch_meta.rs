//! Where strategic merge patch learns how each list merges.
//!
//! Upstream reads `patchStrategy` / `patchMergeKey` struct tags from the Go
//! types. Here the engine asks a [`PatchMeta`] by field path instead;
//! [`builtin_meta`] answers for the built-in kinds of Kubernetes 1.33 from a
//! table of those tags, and returns `None` for kinds it does not know (custom
//! resources), for which upstream refuses strategic merge patch with 415.

use std::borrow::Cow;

/// How a list field is patched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListStrategy {
    /// No `patchStrategy` tag: the patch's list replaces the original.
    Replace,
    /// `patchStrategy:"merge"` on a list of primitives (e.g.
    /// `metadata.finalizers`): the lists are unioned.
    MergePrimitives,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"` on a list of objects
    /// (e.g. a pod's `containers` by `name`): elements merge by key.
    MergeByKey(Cow<'static, str>),
}

impl ListStrategy {
    pub fn is_merge(&self) -> bool {
        !matches!(self, ListStrategy::Replace)
    }

    /// The merge key, for [`ListStrategy::MergeByKey`].
    pub fn merge_key(&self) -> Option<&str> {
        match self {
            ListStrategy::MergeByKey(key) => Some(key),
            _ => None,
        }
    }
}

/// Patch strategy metadata, looked up by field path.
///
/// `path` holds the field names from the object's root; list elements add
/// nothing, so a pod's container ports are at
/// `["spec", "containers", "ports"]`. Directive prefixes are already
/// stripped.
pub trait PatchMeta {
    /// How the list at `path` is patched.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy;

    /// Whether the field at `path` carries the `retainKeys` strategy (a map
    /// such as a Deployment's `spec.strategy`, or each element of a list
    /// such as a pod's `volumes`). Only patch creation uses this; applying
    /// honours whatever `$retainKeys` directive the patch carries.
    fn retain_keys(&self, path: &[&str]) -> bool {
        let _ = path;
        false
    }
}

/// Metadata that knows nothing: every list is replaced and no map retains
/// keys (what merge semantics fall back to for an unknown type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaceAllLists;

impl PatchMeta for ReplaceAllLists {
    fn list_strategy(&self, _path: &[&str]) -> ListStrategy {
        ListStrategy::Replace
    }
}

/// The patch strategies of one built-in kind, from [`builtin_meta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinPatchMeta {
    root: Ty,
}

/// Patch metadata for a built-in kind, or `None` if `api_version`/`kind`
/// is not a Kubernetes 1.33 built-in (a custom resource): upstream rejects
/// strategic merge patch for those with 415 Unsupported Media Type.
pub fn builtin_meta(api_version: &str, kind: &str) -> Option<BuiltinPatchMeta> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let (_, versions, kinds) = GROUPS.iter().find(|(g, _, _)| *g == group)?;
    if !versions.contains(&version) {
        return None;
    }
    let root = kinds
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, root)| *root)?;
    Some(BuiltinPatchMeta { root })
}

impl BuiltinPatchMeta {
    fn lookup(&self, path: &[&str]) -> Strategy {
        let mut ty = self.root;
        let mut strategy = Strategy::None;
        for segment in path {
            match child(ty, segment) {
                Some((next, s)) => {
                    ty = next;
                    strategy = s;
                }
                // An unknown field: nothing at or below it has a strategy.
                None => return Strategy::None,
            }
        }
        strategy
    }
}

impl PatchMeta for BuiltinPatchMeta {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        match self.lookup(path) {
            Strategy::MergePrimitives => ListStrategy::MergePrimitives,
            Strategy::MergeKey(key) | Strategy::MergeKeyRetainKeys(key) => {
                ListStrategy::MergeByKey(Cow::Borrowed(key))
            }
            Strategy::None | Strategy::RetainKeys => ListStrategy::Replace,
        }
    }

    fn retain_keys(&self, path: &[&str]) -> bool {
        matches!(
            self.lookup(path),
            Strategy::RetainKeys | Strategy::MergeKeyRetainKeys(_)
        )
    }
}

/// A field's struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    /// `patchStrategy:"merge"` on a list of primitives.
    MergePrimitives,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`.
    MergeKey(&'static str),
    /// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`.
    MergeKeyRetainKeys(&'static str),
    /// `patchStrategy:"retainKeys"` on a struct field.
    RetainKeys,
}

/// The Go types on the way to a tagged field. `Opaque` is any type with no
/// tagged field below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Opaque,
    /// A top-level kind with nothing tagged beyond `metadata`.
    Object,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    Container,
    PodTemplate,
    PodTemplateSpec,
    /// A workload whose spec holds a pod `template` and whose status holds
    /// `conditions` merged by type: ReplicaSet, StatefulSet, DaemonSet, Job,
    /// ReplicationController.
    Workload,
    WorkloadSpec,
    Deployment,
    DeploymentSpec,
    CronJob,
    CronJobSpec,
    JobTemplateSpec,
    /// A kind whose only tagged field is `status.conditions` by type.
    ConditionsInStatus,
    ConditionsStatus,
    Node,
    NodeSpec,
    NodeStatus,
    Service,
    ServiceSpec,
    ServiceAccount,
    ComponentStatus,
    WebhookConfiguration,
    CsiNode,
    CsiNodeSpec,
    ResourceClaim,
    ResourceClaimStatus,
}

/// The type and tags of `ty`'s field `name`, if it is on the way to a
/// tagged field.
fn child(ty: Ty, name: &str) -> Option<(Ty, Strategy)> {
    use Strategy::*;
    use Ty::*;
    let found = match (ty, name) {
        (
            Object | Pod | PodTemplate | Workload | Deployment | CronJob | ConditionsInStatus
            | Node | Service | ServiceAccount | ComponentStatus | WebhookConfiguration | CsiNode
            | ResourceClaim | PodTemplateSpec | JobTemplateSpec,
            "metadata",
        ) => (ObjectMeta, None),

        (ObjectMeta, "finalizers") => (Opaque, MergePrimitives),
        (ObjectMeta, "ownerReferences") => (Opaque, MergeKey("uid")),

        (Pod, "spec") | (PodTemplateSpec, "spec") => (PodSpec, None),
        (Pod, "status") => (PodStatus, None),
        (PodTemplate, "template") | (WorkloadSpec, "template") | (DeploymentSpec, "template") => {
            (PodTemplateSpec, None)
        }

        (PodSpec, "volumes") => (Opaque, MergeKeyRetainKeys("name")),
        (PodSpec, "initContainers" | "containers" | "ephemeralContainers") => {
            (Container, MergeKey("name"))
        }
        (PodSpec, "imagePullSecrets") => (Opaque, MergeKey("name")),
        (PodSpec, "hostAliases") => (Opaque, MergeKey("ip")),
        (PodSpec, "topologySpreadConstraints") => (Opaque, MergeKey("topologyKey")),
        (PodSpec, "schedulingGates") => (Opaque, MergeKey("name")),
        (PodSpec, "resourceClaims") => (Opaque, MergeKeyRetainKeys("name")),

        (Container, "ports") => (Opaque, MergeKey("containerPort")),
        (Container, "env") => (Opaque, MergeKey("name")),
        (Container, "volumeMounts") => (Opaque, MergeKey("mountPath")),
        (Container, "volumeDevices") => (Opaque, MergeKey("devicePath")),

        (PodStatus, "conditions") => (Opaque, MergeKey("type")),
        (PodStatus, "podIPs" | "hostIPs") => (Opaque, MergeKey("ip")),
        (PodStatus, "resourceClaimStatuses") => (Opaque, MergeKeyRetainKeys("name")),

        (Workload, "spec") => (WorkloadSpec, None),
        (Deployment, "spec") => (DeploymentSpec, None),
        (DeploymentSpec, "strategy") => (Opaque, RetainKeys),
        (CronJob, "spec") => (CronJobSpec, None),
        (CronJobSpec, "jobTemplate") => (JobTemplateSpec, None),
        (JobTemplateSpec, "spec") => (WorkloadSpec, None),

        (Workload | Deployment | ConditionsInStatus | Service, "status") => {
            (ConditionsStatus, None)
        }
        (ConditionsStatus, "conditions") => (Opaque, MergeKey("type")),

        (Node, "spec") => (NodeSpec, None),
        (Node, "status") => (NodeStatus, None),
        (NodeSpec, "podCIDRs") => (Opaque, MergePrimitives),
        (NodeStatus, "conditions" | "addresses") => (Opaque, MergeKey("type")),

        (Service, "spec") => (ServiceSpec, None),
        (ServiceSpec, "ports") => (Opaque, MergeKey("port")),

        (ServiceAccount, "secrets") => (Opaque, MergeKey("name")),
        (ComponentStatus, "conditions") => (Opaque, MergeKey("type")),
        (WebhookConfiguration, "webhooks") => (Opaque, MergeKey("name")),
        (CsiNode, "spec") => (CsiNodeSpec, None),
        (CsiNodeSpec, "drivers") => (Opaque, MergeKey("name")),
        (ResourceClaim, "status") => (ResourceClaimStatus, None),
        (ResourceClaimStatus, "reservedFor") => (Opaque, MergeKey("uid")),

        _ => return Option::None,
    };
    Some(found)
}

type KindTable = &'static [(&'static str, Ty)];

/// Built-in API groups of Kubernetes 1.33: served versions and kinds.
static GROUPS: &[(&str, &[&str], KindTable)] = &[
    (
        "",
        &["v1"],
        &[
            ("Binding", Ty::Object),
            ("ComponentStatus", Ty::ComponentStatus),
            ("ConfigMap", Ty::Object),
            ("Endpoints", Ty::Object),
            ("Event", Ty::Object),
            ("LimitRange", Ty::Object),
            ("Namespace", Ty::ConditionsInStatus),
            ("Node", Ty::Node),
            ("PersistentVolume", Ty::Object),
            ("PersistentVolumeClaim", Ty::ConditionsInStatus),
            ("Pod", Ty::Pod),
            ("PodTemplate", Ty::PodTemplate),
            ("ReplicationController", Ty::Workload),
            ("ResourceQuota", Ty::Object),
            ("Secret", Ty::Object),
            ("Service", Ty::Service),
            ("ServiceAccount", Ty::ServiceAccount),
        ],
    ),
    (
        "apps",
        &["v1"],
        &[
            ("ControllerRevision", Ty::Object),
            ("DaemonSet", Ty::Workload),
            ("Deployment", Ty::Deployment),
            ("ReplicaSet", Ty::Workload),
            ("StatefulSet", Ty::Workload),
        ],
    ),
    (
        "autoscaling",
        &["v1", "v2"],
        &[
            ("HorizontalPodAutoscaler", Ty::ConditionsInStatus),
            ("Scale", Ty::Object),
        ],
    ),
    (
        "batch",
        &["v1"],
        &[("CronJob", Ty::CronJob), ("Job", Ty::Workload)],
    ),
    (
        "certificates.k8s.io",
        &["v1", "v1beta1", "v1alpha1"],
        &[
            ("CertificateSigningRequest", Ty::Object),
            ("ClusterTrustBundle", Ty::Object),
        ],
    ),
    (
        "coordination.k8s.io",
        &["v1", "v1beta1", "v1alpha2"],
        &[("Lease", Ty::Object), ("LeaseCandidate", Ty::Object)],
    ),
    (
        "discovery.k8s.io",
        &["v1"],
        &[("EndpointSlice", Ty::Object)],
    ),
    ("events.k8s.io", &["v1"], &[("Event", Ty::Object)]),
    (
        "flowcontrol.apiserver.k8s.io",
        &["v1", "v1beta3"],
        &[
            ("FlowSchema", Ty::ConditionsInStatus),
            ("PriorityLevelConfiguration", Ty::ConditionsInStatus),
        ],
    ),
    (
        "networking.k8s.io",
        &["v1", "v1beta1"],
        &[
            ("IPAddress", Ty::Object),
            ("Ingress", Ty::Object),
            ("IngressClass", Ty::Object),
            ("NetworkPolicy", Ty::Object),
            ("ServiceCIDR", Ty::ConditionsInStatus),
        ],
    ),
    ("node.k8s.io", &["v1"], &[("RuntimeClass", Ty::Object)]),
    (
        "policy",
        &["v1"],
        &[
            ("Eviction", Ty::Object),
            ("PodDisruptionBudget", Ty::ConditionsInStatus),
        ],
    ),
    (
        "rbac.authorization.k8s.io",
        &["v1"],
        &[
            ("ClusterRole", Ty::Object),
            ("ClusterRoleBinding", Ty::Object),
            ("Role", Ty::Object),
            ("RoleBinding", Ty::Object),
        ],
    ),
    (
        "scheduling.k8s.io",
        &["v1"],
        &[("PriorityClass", Ty::Object)],
    ),
    (
        "storage.k8s.io",
        &["v1", "v1beta1", "v1alpha1"],
        &[
            ("CSIDriver", Ty::Object),
            ("CSINode", Ty::CsiNode),
            ("CSIStorageCapacity", Ty::Object),
            ("StorageClass", Ty::Object),
            ("VolumeAttachment", Ty::Object),
            ("VolumeAttributesClass", Ty::Object),
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &["v1", "v1beta1", "v1alpha1"],
        &[
            ("MutatingAdmissionPolicy", Ty::Object),
            ("MutatingAdmissionPolicyBinding", Ty::Object),
            ("MutatingWebhookConfiguration", Ty::WebhookConfiguration),
            ("ValidatingAdmissionPolicy", Ty::Object),
            ("ValidatingAdmissionPolicyBinding", Ty::Object),
            ("ValidatingWebhookConfiguration", Ty::WebhookConfiguration),
        ],
    ),
    (
        "apiextensions.k8s.io",
        &["v1"],
        &[("CustomResourceDefinition", Ty::Object)],
    ),
    (
        "apiregistration.k8s.io",
        &["v1"],
        &[("APIService", Ty::ConditionsInStatus)],
    ),
    (
        "resource.k8s.io",
        &["v1beta1", "v1beta2", "v1alpha3"],
        &[
            ("DeviceClass", Ty::Object),
            ("DeviceTaintRule", Ty::Object),
            ("ResourceClaim", Ty::ResourceClaim),
            ("ResourceClaimTemplate", Ty::Object),
            ("ResourceSlice", Ty::Object),
        ],
    ),
    (
        "storagemigration.k8s.io",
        &["v1alpha1"],
        &[("StorageVersionMigration", Ty::Object)],
    ),
    (
        "internal.apiserver.k8s.io",
        &["v1alpha1"],
        &[("StorageVersion", Ty::Object)],
    ),
];
