//! What a served resource is: its group/version/kind, plural and singular
//! names, scope, verbs and discovery metadata.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// Everything discovery and the REST handlers need to know about one
/// resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural, lower-case resource name used in URLs ("configmaps").
    pub plural: &'static str,
    pub singular: &'static str,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources served under this resource ("status", "scale", ...).
    pub subresources: &'static [&'static str],
}

/// The verbs of an ordinary read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind {
            group: self.group.into(),
            version: self.version.into(),
            kind: self.kind.into(),
        }
    }

    pub fn api_version(&self) -> String {
        self.gvk().api_version()
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The datastore key prefix holding every object of this resource, as
    /// upstream lays it out: `/registry/<resource>/` (core) or
    /// `/registry/<group>/<resource>/` for groups whose upstream key says so.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.plural)
    }

    /// The datastore key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        match self.scope {
            Scope::Namespaced => format!("{}{namespace}/{name}", self.key_prefix()),
            Scope::Cluster => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Prefix for every object of this resource in one namespace (or all
    /// when `namespace` is empty).
    pub fn list_prefix(&self, namespace: &str) -> String {
        if self.namespaced() && !namespace.is_empty() {
            format!("{}{namespace}/", self.key_prefix())
        } else {
            self.key_prefix()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CM: ResourceInfo = ResourceInfo {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        scope: Scope::Namespaced,
        short_names: &["cm"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    };

    #[test]
    fn keys_follow_upstream_layout() {
        assert_eq!(CM.key("default", "a"), "/registry/configmaps/default/a");
        assert_eq!(CM.list_prefix(""), "/registry/configmaps/");
        assert_eq!(
            CM.list_prefix("kube-system"),
            "/registry/configmaps/kube-system/"
        );
        assert_eq!(CM.api_version(), "v1");
    }
}
