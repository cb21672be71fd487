//! The protobuf schema of every built-in type, derived at build time (see
//! `build.rs`) from the k8s-pb and k8s-openapi sources.

/// A protobuf scalar type. Kubernetes uses a few; all are decoded.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Float,
    Double,
}

impl Scalar {
    /// The wire type of one unpacked value.
    pub(super) fn wire_type(self) -> u8 {
        match self {
            Scalar::String | Scalar::Bytes => 2,
            Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => 1,
            Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => 5,
            _ => 0,
        }
    }
}

/// A field's type. `Message` indexes [`MESSAGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Scalar(Scalar),
    Message(usize),
    /// Key type and value type of a `map<K, V>` field.
    Map(Scalar, &'static Type),
}

/// Messages whose JSON form is not simply an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    /// `meta.v1.Time`: RFC 3339, whole seconds, UTC; `null` when empty.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with microseconds; `null` when empty.
    MicroTime,
    /// `meta.v1.Duration`: Go's duration string (`1h0m0s`).
    Duration,
    /// `util.intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `api.resource.Quantity`: its string.
    Quantity,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, apiextensions `JSON`:
    /// the JSON document held in field 1.
    RawJson,
    /// A Go named slice type (`ExtraValue`, `Verbs`): the bare array.
    Items,
    /// apiextensions `JSONSchemaPropsOrArray`.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`.
    SchemaOrStringArray,
}

#[derive(Debug)]
pub(super) struct Field {
    pub number: u32,
    pub json: &'static str,
    pub ty: Type,
    pub repeated: bool,
    /// Encoded packed (scalars only).
    pub packed: bool,
    /// A Go embedded struct (`json:",inline"`): its fields appear in the
    /// enclosing JSON object.
    pub inline: bool,
}

#[derive(Debug)]
pub(super) struct Message {
    /// Dotted module path and name: `api.apps.v1.Deployment`.
    pub name: &'static str,
    pub special: Special,
    /// Sorted by number.
    pub fields: &'static [Field],
}

impl Message {
    pub(super) fn field(&self, number: u64) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by_key(&number, |f| u64::from(f.number))
            .ok()
            .and_then(|i| fields.get(i))
    }
}

include!(concat!(env!("OUT_DIR"), "/protobuf_schema.rs"));

pub(super) fn message(index: usize) -> &'static Message {
    // Indexes come from the generated table itself.
    &MESSAGES[index]
}

/// The message `package.name`, e.g. (`api.apps.v1`, `Deployment`).
fn find(package: &str, name: &str) -> Option<usize> {
    let full = format!("{package}.{name}");
    MESSAGES
        .binary_search_by(|m| m.name.cmp(full.as_str()))
        .ok()
}

/// The message for an object's `apiVersion` and `kind`, as upstream's scheme
/// would pick it: the group's package, else the `meta.k8s.io/v1` types
/// every group version also serves (`Status`, `DeleteOptions`, ...).
pub(super) fn message_for_kind(api_version: &str, kind: &str) -> Option<usize> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if version.is_empty() || kind.is_empty() || !is_identifier(version) || !is_identifier(kind) {
        return None;
    }
    let prefix = GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, prefix)| (*prefix).to_string())
        .or_else(|| match group {
            "meta.k8s.io" => Some("apimachinery.pkg.apis.meta".to_string()),
            // Groups without a resource of their own (admission.k8s.io,
            // imagepolicy.k8s.io, apidiscovery.k8s.io, extensions, ...)
            // live in `api.<first label>`.
            _ => group
                .split('.')
                .next()
                .filter(|l| !l.is_empty() && is_identifier(l))
                .map(|l| format!("api.{l}")),
        })?;
    let package = format!("{prefix}.{version}");
    find(&package, kind)
        .or_else(|| find(&format!("apimachinery.pkg.apis.meta.{version}"), kind))
        .filter(|&i| MESSAGES[i].special == Special::None)
}

fn is_identifier(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
pub(super) fn by_name(name: &str) -> Option<usize> {
    MESSAGES.iter().position(|m| m.name == name)
}

#[cfg(test)]
pub(super) fn all() -> &'static [Message] {
    MESSAGES
}
