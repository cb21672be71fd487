//! Derives the Kubernetes protobuf schema table used by `src/protobuf/`.
//!
//! The wire format needs each message's field numbers and types; the JSON
//! form needs each field's JSON name. Neither is written by hand here:
//! - field numbers and types come from the *source text* of `k8s-pb`
//!   (prost-generated: `#[prost(string, optional, tag = "3")]`),
//! - JSON names come from the *source text* of `k8s-openapi` (its serde
//!   code maps `"clusterIP" => Field::Key_cluster_ip` per struct), and
//!   which API group lives in which module from its `Resource` impls.
//!
//! Both crates are optional dependencies behind the never-enabled feature
//! `protobuf-schema-sources`, so they are locked but not compiled. Cargo
//! downloads only what it compiles, so this script asks `cargo metadata`
//! (with that feature) for their manifest paths; that also downloads them
//! when they are missing (first offline, then online).
//!
//! Output: `$OUT_DIR/protobuf_schema.rs`, included by
//! `src/protobuf/schema.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const FEATURE: &str = "protobuf-schema-sources";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");

    let sources = locate_sources();
    let pb = parse_k8s_pb(&sources.k8s_pb.join("src"));
    let openapi = parse_k8s_openapi(
        &sources
            .k8s_openapi
            .join("src")
            .join(&sources.k8s_openapi_version),
    );
    let (table, report) = build_table(&pb, &openapi);
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let out = out_dir.join("protobuf_schema.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    // How each JSON name was found, for people reviewing the table.
    let out = out_dir.join("protobuf_schema_report.txt");
    std::fs::write(&out, report).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo did not set {name}"))
}

// ---------------------------------------------------------------------------
// Finding the sources
// ---------------------------------------------------------------------------

struct Sources {
    k8s_pb: PathBuf,
    k8s_openapi: PathBuf,
    /// `v1_33`: the directory of the Kubernetes version k8s-openapi is
    /// built for in this workspace.
    k8s_openapi_version: String,
}

fn locate_sources() -> Sources {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let target = env("TARGET");
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--locked"])
            .args(["--filter-platform", &target])
            .args(["--features", &format!("apimachinery/{FEATURE}")])
            .arg("--manifest-path")
            .arg(&manifest);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    // Offline first: normally the sources are already there, and a build
    // that was asked to stay offline must not reach the network.
    let output = match run(true) {
        Ok(o) if o.status.success() => o,
        _ => match run(false) {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!(
                "`cargo metadata` failed; cannot locate the k8s-pb and k8s-openapi sources:\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run `{cargo} metadata`: {e}"),
        },
    };
    let text = String::from_utf8(output.stdout).expect("cargo metadata printed non-UTF-8");
    let meta = json::parse(&text).expect("cargo metadata printed invalid JSON");

    let packages = meta.get("packages").and_then(json::Value::as_array);
    let manifest_of = |id: &str| -> PathBuf {
        for p in packages.into_iter().flatten() {
            if p.get("id").and_then(json::Value::as_str) == Some(id) {
                let path = p
                    .get("manifest_path")
                    .and_then(json::Value::as_str)
                    .expect("package without manifest_path");
                return Path::new(path)
                    .parent()
                    .expect("manifest path has a parent")
                    .to_path_buf();
            }
        }
        panic!("cargo metadata lists no package {id}");
    };
    let nodes = meta
        .get("resolve")
        .and_then(|r| r.get("nodes"))
        .and_then(json::Value::as_array)
        .expect("cargo metadata without resolve nodes");
    let node = |pred: &dyn Fn(&str) -> bool| {
        nodes
            .iter()
            .find(|n| n.get("id").and_then(json::Value::as_str).is_some_and(pred))
    };
    // `path+file:///.../crates/apimachinery#0.1.0` (or `#name@version`).
    let own_prefix = format!("path+file://{}#", env("CARGO_MANIFEST_DIR"));
    let own =
        node(&|id| id.starts_with(&own_prefix)).expect("cargo metadata does not list this package");
    let dep_id = |name: &str| -> String {
        own.get("deps")
            .and_then(json::Value::as_array)
            .into_iter()
            .flatten()
            .find(|d| d.get("name").and_then(json::Value::as_str) == Some(name))
            .and_then(|d| d.get("pkg").and_then(json::Value::as_str))
            .unwrap_or_else(|| {
                panic!("cargo metadata: {name} is not a dependency (feature {FEATURE})")
            })
            .to_string()
    };
    let pb_id = dep_id("k8s_pb");
    let openapi_id = dep_id("k8s_openapi");
    let openapi_node = node(&|id| id == openapi_id).expect("no resolve node for k8s-openapi");
    let version = openapi_node
        .get("features")
        .and_then(json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(json::Value::as_str)
        .find(|f| f.starts_with("v1_"))
        .expect("k8s-openapi has no v1_* feature enabled in this workspace")
        .to_string();
    Sources {
        k8s_pb: manifest_of(&pb_id),
        k8s_openapi: manifest_of(&openapi_id),
        k8s_openapi_version: version,
    }
}

// ---------------------------------------------------------------------------
// k8s-pb: messages, field numbers and wire types
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum PbType {
    Scalar(&'static str),
    /// Full dotted message name, e.g. `api.core.v1.PodSpec`.
    Message(String),
    Map(&'static str, Box<PbType>),
}

#[derive(Debug)]
struct PbField {
    rust_name: String,
    number: u32,
    ty: PbType,
    repeated: bool,
    packed: bool,
}

#[derive(Debug, Default)]
struct PbMessage {
    fields: Vec<PbField>,
}

#[derive(Default)]
struct PbSchema {
    /// Full dotted name -> message.
    messages: BTreeMap<String, PbMessage>,
    /// API group -> module prefix (e.g. `apps` -> `api.apps`).
    groups: BTreeMap<String, String>,
}

const SCALARS: &[&str] = &[
    "string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "float", "double",
];

fn scalar(word: &str) -> Option<&'static str> {
    SCALARS.iter().copied().find(|s| *s == word)
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `api/core/v1/mod.rs` -> `["api", "core", "v1"]`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).expect("file under root");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    if last != "mod.rs" && last != "lib.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

fn parse_k8s_pb(root: &Path) -> PbSchema {
    let mut files = Vec::new();
    rs_files(root, &mut files);
    let mut schema = PbSchema::default();
    for file in files {
        let module = module_of(root, &file);
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        parse_pb_file(&module, &text, &mut schema, &file);
    }
    assert!(
        schema.messages.len() > 500,
        "k8s-pb: found only {} messages in {}; has the crate's layout changed?",
        schema.messages.len(),
        root.display()
    );
    schema
}

fn parse_pb_file(module: &[String], text: &str, schema: &mut PbSchema, file: &Path) {
    let lines: Vec<&str> = text.lines().collect();
    let mut current: Option<(String, PbMessage)> = None;
    let mut pending_attr: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if let Some((name, _)) = &current {
            if line == "}" {
                let (name, msg) = current.take().expect("current message");
                schema.messages.insert(dotted(module, &name), msg);
                continue;
            }
            if trimmed.starts_with("#[prost(") {
                pending_attr = Some(trimmed.to_string());
                continue;
            }
            if trimmed.starts_with("pub ") {
                // The field's type may span several lines.
                let mut decl = trimmed.to_string();
                let mut depth = angle_depth(&decl);
                while !(depth == 0 && decl.ends_with(',')) && i < lines.len() {
                    decl.push_str(lines[i].trim());
                    depth = angle_depth(&decl);
                    i += 1;
                }
                let attr = pending_attr.take().unwrap_or_else(|| {
                    panic!(
                        "{}: field without #[prost] in {name}: {decl}",
                        file.display()
                    )
                });
                let field = parse_pb_field(module, &attr, &decl)
                    .unwrap_or_else(|e| panic!("{}: {name}: {e}", file.display()));
                if let Some((_, msg)) = current.as_mut() {
                    msg.fields.push(field);
                }
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("pub struct ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // `#[derive(..., ::prost::Message)]` just above (doc lines aside).
            let is_message = (1..=3).any(|back| {
                i > back
                    && lines
                        .get(i - 1 - back)
                        .is_some_and(|l| l.contains("::prost::Message"))
            });
            if !is_message {
                continue;
            }
            if rest.trim_end().ends_with("{}") {
                schema
                    .messages
                    .insert(dotted(module, &name), PbMessage::default());
            } else {
                current = Some((name, PbMessage::default()));
            }
            continue;
        }
        if trimmed.starts_with("pub enum ") && i >= 2 && lines[i - 2].contains("::prost::") {
            panic!(
                "{}: prost enums/oneofs are not supported by build.rs: {trimmed}",
                file.display()
            );
        }
        // `impl crate::Resource for X { const GROUP: &'static str = "apps"; ... }`
        if let Some(group) = const_str(trimmed, "GROUP") {
            record_group(&mut schema.groups, &group, module);
        }
    }
    assert!(current.is_none(), "{}: unterminated struct", file.display());
}

/// `const GROUP: &'static str = "apps";` -> `apps`.
fn const_str(line: &str, name: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("const {name}: &'static str = \""))?;
    Some(rest.strip_suffix("\";")?.to_string())
}

/// The module of a versioned package without its version: `api.apps`.
fn record_group(groups: &mut BTreeMap<String, String>, group: &str, module: &[String]) {
    let Some((_version, prefix)) = module.split_last() else {
        return;
    };
    let prefix = prefix.join(".");
    // meta.v1's discovery types (`APIGroupList`, ...) claim the core group;
    // the decoder falls back to meta.v1 for every group anyway.
    if prefix.starts_with("apimachinery") {
        return;
    }
    if let Some(existing) = groups.get(group) {
        assert_eq!(
            existing, &prefix,
            "API group {group} found in two modules: {existing} and {prefix}"
        );
    }
    groups.insert(group.to_string(), prefix);
}

fn dotted_str(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}.{name}")
    }
}

fn dotted(module: &[String], name: &str) -> String {
    let mut s = module.join(".");
    if !s.is_empty() {
        s.push('.');
    }
    s.push_str(name);
    s
}

fn angle_depth(s: &str) -> i32 {
    s.chars().fold(0, |d, c| match c {
        '<' => d + 1,
        '>' => d - 1,
        _ => d,
    })
}

/// Split `a, b = "x, y", c` at top-level commas.
fn split_attr_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn parse_pb_field(module: &[String], attr: &str, decl: &str) -> Result<PbField, String> {
    let inner = attr
        .strip_prefix("#[prost(")
        .and_then(|s| s.strip_suffix(")]"))
        .ok_or_else(|| format!("odd attribute {attr}"))?;
    let mut kind: Option<String> = None;
    let mut map: Option<String> = None;
    let mut number: Option<u32> = None;
    let mut repeated = false;
    let mut packed = true;
    for arg in split_attr_args(inner) {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"').to_string())),
            None => (arg.as_str(), None),
        };
        match (key, value) {
            ("tag", Some(v)) => number = Some(v.parse().map_err(|_| format!("bad tag {v}"))?),
            ("optional" | "required" | "boxed", None) => {}
            ("repeated", None) => repeated = true,
            ("packed", Some(v)) => packed = v != "false",
            ("map" | "btree_map" | "hash_map", Some(v)) => map = Some(v),
            ("bytes", Some(_)) => kind = Some("bytes".to_string()),
            ("string" | "bytes" | "message", None) => kind = Some(key.to_string()),
            ("enumeration", Some(_)) => kind = Some("int32".to_string()),
            (k, None) if scalar(k).is_some() => kind = Some(k.to_string()),
            _ => {
                return Err(format!(
                    "unsupported prost attribute argument `{arg}` in {attr}"
                ))
            }
        }
    }
    let number = number.ok_or_else(|| format!("no tag in {attr}"))?;
    let (name_part, type_part) = decl
        .strip_prefix("pub ")
        .and_then(|d| d.split_once(':'))
        .ok_or_else(|| format!("odd field declaration {decl}"))?;
    let rust_name = name_part.trim().trim_start_matches("r#").to_string();
    let type_part = type_part.trim().trim_end_matches(',').replace(' ', "");
    let ty = if let Some(map) = map {
        let (k, v) = map
            .split_once(',')
            .ok_or_else(|| format!("odd map {map}"))?;
        let key = scalar(k.trim()).ok_or_else(|| format!("odd map key {k}"))?;
        let value = match v.trim() {
            "message" => {
                let generics = type_part
                    .split_once('<')
                    .map(|(_, g)| g.trim_end_matches('>'))
                    .ok_or_else(|| format!("odd map type {type_part}"))?;
                let (_, value_ty) = split_top_level_comma(generics)
                    .ok_or_else(|| format!("odd map type {type_part}"))?;
                PbType::Message(resolve_path(module, &strip_wrappers(value_ty)))
            }
            "enumeration" => PbType::Scalar("int32"),
            s => PbType::Scalar(scalar(s).ok_or_else(|| format!("odd map value {s}"))?),
        };
        PbType::Map(key, Box::new(value))
    } else {
        match kind.as_deref() {
            Some("message") => PbType::Message(resolve_path(module, &strip_wrappers(&type_part))),
            Some(s) => PbType::Scalar(scalar(s).ok_or_else(|| format!("odd type {s}"))?),
            None => return Err(format!("no type in {attr}")),
        }
    };
    Ok(PbField {
        rust_name,
        number,
        ty,
        repeated,
        packed,
    })
}

fn split_top_level_comma(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => return Some((&s[..i], s[i + 1..].trim_end_matches(','))),
            _ => {}
        }
    }
    None
}

/// `::core::option::Option<::prost::alloc::boxed::Box<X>>` -> `X`.
fn strip_wrappers(ty: &str) -> String {
    let mut t = ty.trim().trim_end_matches(',').to_string();
    loop {
        let mut changed = false;
        for w in [
            "::core::option::Option<",
            "::prost::alloc::vec::Vec<",
            "::prost::alloc::boxed::Box<",
            "::std::option::Option<",
            "::std::vec::Vec<",
            "::std::boxed::Box<",
            "Option<",
            "Vec<",
            "Box<",
        ] {
            if let Some(rest) = t.strip_prefix(w) {
                if let Some(inner) = rest.strip_suffix('>') {
                    t = inner.trim_end_matches(',').to_string();
                    changed = true;
                }
            }
        }
        if !changed {
            return t;
        }
    }
}

/// Resolve a Rust path relative to `module` into a dotted message name.
fn resolve_path(module: &[String], path: &str) -> String {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = module.to_vec();
    if segs.first() == Some(&"crate") {
        base.clear();
        segs.remove(0);
    }
    while segs.first() == Some(&"super") {
        base.pop();
        segs.remove(0);
    }
    if segs.first() == Some(&"self") {
        segs.remove(0);
    }
    base.extend(segs.iter().map(|s| s.to_string()));
    base.join(".")
}

// ---------------------------------------------------------------------------
// k8s-openapi: JSON names
// ---------------------------------------------------------------------------

#[derive(Default)]
struct OpenApi {
    /// Lowercased full dotted name (`api.core.v1.serviceport`) -> (struct
    /// name as spelled, JSON field names).
    structs: HashMap<String, (String, Vec<String>)>,
    groups: BTreeMap<String, String>,
}

fn parse_k8s_openapi(root: &Path) -> OpenApi {
    let mut files = Vec::new();
    rs_files(root, &mut files);
    let mut api = OpenApi::default();
    for file in files {
        let mut module = module_of(root, &file);
        if file.file_name().is_some_and(|n| n != "mod.rs") {
            module.pop(); // the file is one type, named by its struct
        }
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let mut target: Option<String> = None;
        for line in text.lines() {
            let t = line.trim();
            // Top-level impls only: the nested `Field` enum has one too.
            if let Some(rest) = line.strip_prefix("impl<'de> crate::serde::Deserialize<'de> for ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                api.structs
                    .entry(dotted(&module, &name).to_lowercase())
                    .or_insert_with(|| (name.clone(), Vec::new()));
                target = Some(dotted(&module, &name).to_lowercase());
                continue;
            }
            if let (Some(key), Some(rest)) = (target.as_ref(), t.strip_prefix('"')) {
                if let Some((json, arm)) = rest.split_once("\" => ") {
                    if arm.starts_with("Field::Key_") {
                        if let Some((_, names)) = api.structs.get_mut(key) {
                            names.push(json.to_string());
                        }
                    }
                }
            }
            if let Some(group) = const_str(t, "GROUP") {
                // `module` ends with the version: api.apps.v1
                record_group(&mut api.groups, &group, &module);
            }
        }
    }
    assert!(
        api.structs.len() > 300,
        "k8s-openapi: found only {} structs in {}; has the crate's layout changed?",
        api.structs.len(),
        root.display()
    );
    api
}

/// Lowercase, letters and digits only: `clusterIP`, `cluster_ip` and
/// `$ref`/`ref` compare equal.
fn normalize(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// Messages whose JSON form is not an object of their fields.
fn special_of(name: &str, msg: &PbMessage, in_openapi: bool) -> &'static str {
    const META: &str = "apimachinery.pkg.apis.meta.v1.";
    const CRD: [&str; 2] = [
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.",
        "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.",
    ];
    let lname = name.to_ascii_lowercase();
    let is = |prefix: &str, short: &str| lname == format!("{prefix}{short}").to_ascii_lowercase();
    if is(META, "Time") {
        return "Time";
    }
    if is(META, "MicroTime") {
        return "MicroTime";
    }
    if is(META, "Duration") {
        return "Duration";
    }
    if is(META, "FieldsV1") || is("apimachinery.pkg.runtime.", "RawExtension") {
        return "RawJson";
    }
    if is("apimachinery.pkg.util.intstr.", "IntOrString") {
        return "IntOrString";
    }
    if is("apimachinery.pkg.api.resource.", "Quantity")
        || is("apimachinery.pkg.api.resource.", "QuantityValue")
    {
        return "Quantity";
    }
    for crd in CRD {
        if is(crd, "JSON") {
            return "RawJson";
        }
        if is(crd, "JSONSchemaPropsOrArray") {
            return "SchemaOrArray";
        }
        if is(crd, "JSONSchemaPropsOrBool") {
            return "SchemaOrBool";
        }
        if is(crd, "JSONSchemaPropsOrStringArray") {
            return "SchemaOrStringArray";
        }
    }
    // A Go named slice type (`type ExtraValue []string`) becomes a message
    // with one repeated `items` field; its JSON is the bare array, and
    // OpenAPI has no definition for it.
    if !in_openapi
        && msg.fields.len() == 1
        && msg.fields[0].rust_name == "items"
        && msg.fields[0].number == 1
        && msg.fields[0].repeated
    {
        return "Items";
    }
    "None"
}

fn build_table(pb: &PbSchema, openapi: &OpenApi) -> (String, String) {
    // Display names: as k8s-openapi spells them (Go's spelling, which is
    // the kind), else as k8s-pb does; `FooList` follows `Foo`.
    let spelled = |full: &str| {
        openapi
            .structs
            .get(&full.to_lowercase())
            .map(|(s, _)| s.clone())
    };
    let mut entries: Vec<(String, &String)> = pb
        .messages
        .keys()
        .map(|n| {
            let (module, short) = n.rsplit_once('.').unwrap_or(("", n));
            let short = spelled(n)
                .or_else(|| {
                    let item = short.strip_suffix("List")?;
                    spelled(&format!("{module}.{item}")).map(|s| format!("{s}List"))
                })
                .unwrap_or_else(|| short.to_string());
            (dotted_str(module, &short), n)
        })
        .collect();
    // Sorted by display name: the decoder binary-searches kinds.
    entries.sort();
    for pair in entries.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "two k8s-pb messages spelled alike");
    }
    let names: Vec<&String> = entries.iter().map(|(_, n)| *n).collect();
    let display: Vec<String> = entries.iter().map(|(d, _)| d.clone()).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();

    // Every JSON name k8s-openapi knows, by normalized form, for fields of
    // types k8s-openapi lacks (e.g. newer than its Kubernetes version).
    let mut global: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (_, jsons) in openapi.structs.values() {
        for j in jsons {
            global.entry(normalize(j)).or_default().insert(j.clone());
        }
    }

    // Types k8s-openapi lacks under their own module (older or newer
    // versions) borrow the JSON names of a same-named type: from the same
    // group if it has one, else from anywhere.
    let mut by_short: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for key in openapi.structs.keys() {
        let short = key.rsplit('.').next().unwrap_or(key).to_string();
        by_short.entry(short).or_default().push(key);
    }
    for keys in by_short.values_mut() {
        keys.sort();
    }
    let group_of = |full: &str| -> String {
        let parts: Vec<&str> = full.split('.').collect();
        parts[..parts.len().saturating_sub(2)].join(".")
    };
    let words = initialisms(openapi);
    let short_lower = |full: &str| full.rsplit('.').next().unwrap_or(full).to_lowercase();
    // Embedded structs seen where k8s-openapi has the type itself.
    let mut inline_seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (name, msg) in &pb.messages {
        let Some((_, js)) = openapi.structs.get(&name.to_lowercase()) else {
            continue;
        };
        let names: HashMap<String, &String> = js.iter().map(|j| (normalize(j), j)).collect();
        for f in &msg.fields {
            if let (PbType::Message(t), false) = (&f.ty, f.repeated) {
                if !names.contains_key(&normalize(&f.rust_name)) && is_inline(pb, t, &names) {
                    inline_seen.insert((short_lower(name), f.rust_name.clone()));
                }
            }
        }
    }

    let mut report = String::new();
    let (mut from_struct, mut from_sibling, mut from_elsewhere) = (0usize, 0usize, 0usize);
    let mut guessed: Vec<String> = Vec::new();
    let mut inline_fields: Vec<String> = Vec::new();
    let mut out = String::new();
    out.push_str("// @generated by crates/apimachinery/build.rs from the k8s-pb and k8s-openapi sources.\n\n");
    let _ = writeln!(out, "pub(super) static MESSAGES: &[Message] = &[");
    for (mi, name) in names.iter().enumerate() {
        let msg = &pb.messages[name.as_str()];
        let lname = name.to_lowercase();
        let own = openapi.structs.get(&lname);
        let sibling = if own.is_some() {
            None
        } else {
            // The same-named type matching most fields, same group first.
            let short = lname.rsplit('.').next().unwrap_or(&lname);
            let candidates = by_short.get(short).cloned().unwrap_or_default();
            let group = group_of(&lname);
            let score = |k: &&String| {
                let names: BTreeSet<String> = openapi
                    .structs
                    .get(k.as_str())
                    .map(|(_, js)| js.iter().map(|j| normalize(j)).collect())
                    .unwrap_or_default();
                let hits = msg
                    .fields
                    .iter()
                    .filter(|f| names.contains(&normalize(&f.rust_name)))
                    .count();
                (group_of(k) == group, hits)
            };
            candidates
                .iter()
                .max_by_key(|k| score(k))
                .and_then(|k| openapi.structs.get(k.as_str()))
        };
        let oa = own.or(sibling);
        let special = special_of(name, msg, oa.is_some());
        let oa_names: HashMap<String, &String> = oa
            .map(|(_, js)| js.iter().map(|j| (normalize(j), j)).collect())
            .unwrap_or_default();
        let mut fields: Vec<&PbField> = msg.fields.iter().collect();
        fields.sort_by_key(|f| f.number);
        let _ = writeln!(
            out,
            "    Message {{ name: {:?}, special: Special::{special}, fields: &[",
            display[mi]
        );
        for f in fields {
            let norm = normalize(&f.rust_name);
            let here = format!("{}.{}", display[mi], f.rust_name);
            let mut inline = false;
            let json = if let Some(j) = oa_names.get(&norm) {
                if own.is_some() {
                    from_struct += 1;
                } else {
                    from_sibling += 1;
                    let _ = writeln!(report, "sibling {here} -> {j}");
                }
                (*j).clone()
            } else if !f.repeated
                && match (own, &f.ty) {
                    (Some(_), PbType::Message(t)) => is_inline(pb, t, &oa_names),
                    // Another version's type may flatten or nest differently:
                    // only trust an embedding seen in a type of our own.
                    (None, _) => inline_seen.contains(&(short_lower(name), f.rust_name.clone())),
                    _ => false,
                }
            {
                // A Go embedded struct with `json:",inline"` (Volume's
                // VolumeSource, Probe's ProbeHandler): the OpenAPI type has
                // the embedded type's fields instead of this one.
                inline = true;
                inline_fields.push(here.clone());
                let _ = writeln!(report, "inline {here}");
                lower_camel(&f.rust_name)
            } else if let Some(j) = global
                .get(&norm)
                .filter(|s| s.len() == 1)
                .and_then(|s| s.iter().next())
            {
                from_elsewhere += 1;
                let _ = writeln!(report, "elsewhere {here} -> {j}");
                j.clone()
            } else {
                let camel = guess_json_name(&f.rust_name, &words);
                let _ = writeln!(report, "guessed {here} -> {camel}");
                guessed.push(format!("{}.{}", display[mi], camel));
                camel
            };
            let ty = type_expr(&f.ty, &index);
            let _ = writeln!(
                out,
                "        Field {{ number: {}, json: {:?}, ty: {ty}, repeated: {}, packed: {}, inline: {inline} }},",
                f.number,
                json,
                f.repeated,
                f.repeated && f.packed && matches!(f.ty, PbType::Scalar(s) if s != "string" && s != "bytes"),
            );
        }
        let _ = writeln!(out, "    ] }},");
    }
    let _ = writeln!(out, "];\n");

    // Groups: k8s-openapi's and k8s-pb's Resource impls agree where both
    // know a group; either may know groups the other lacks.
    let mut groups = pb.groups.clone();
    for (g, m) in &openapi.groups {
        groups.entry(g.clone()).or_insert_with(|| m.clone());
    }
    let _ = writeln!(out, "pub(super) static GROUPS: &[(&str, &str)] = &[");
    for (g, m) in &groups {
        let _ = writeln!(out, "    ({g:?}, {m:?}),");
    }
    let _ = writeln!(out, "];\n");

    let _ = writeln!(
        out,
        "/// Fields whose JSON name came from their own k8s-openapi struct.\n\
         #[cfg(test)]\n\
         pub(super) const JSON_NAMES_FROM_OPENAPI_STRUCT: usize = {from_struct};\n\
         /// Fields named as in the same-named type of another API version.\n\
         #[cfg(test)]\n\
         pub(super) const JSON_NAMES_FROM_OPENAPI_SIBLING: usize = {from_sibling};\n\
         /// Fields of types k8s-openapi lacks, named as the same field is elsewhere.\n\
         #[cfg(test)]\n\
         pub(super) const JSON_NAMES_FROM_OPENAPI_ELSEWHERE: usize = {from_elsewhere};"
    );
    let _ = writeln!(
        out,
        "/// Fields whose JSON name is a lowerCamelCase guess from the Rust name.\n\
         #[cfg(test)]\n\
         pub(super) static GUESSED_JSON_NAMES: &[&str] = &{guessed:?};"
    );
    let _ = writeln!(
        out,
        "/// Go embedded structs (`json:\",inline\"`).\n\
         #[cfg(test)]\n\
         pub(super) static INLINE_FIELDS: &[&str] = &{inline_fields:?};"
    );
    (out, report)
}

/// Whether message `target`, as a field of a type whose JSON names are
/// `names`, is embedded inline: most of its fields (looking through its own
/// embedded structs) are the enclosing type's.
fn is_inline(pb: &PbSchema, target: &str, names: &HashMap<String, &String>) -> bool {
    fn count(
        pb: &PbSchema,
        target: &str,
        names: &HashMap<String, &String>,
        depth: u32,
    ) -> (usize, usize) {
        let Some(m) = pb.messages.get(target) else {
            return (0, 0);
        };
        let (mut hit, mut total) = (0, 0);
        for g in &m.fields {
            if names.contains_key(&normalize(&g.rust_name)) {
                hit += 1;
                total += 1;
            } else if let (PbType::Message(t), false, true) = (&g.ty, g.repeated, depth < 4) {
                let (h, n) = count(pb, t, names, depth + 1);
                if h > 0 {
                    hit += h;
                    total += n;
                } else {
                    total += 1;
                }
            } else {
                total += 1;
            }
        }
        (hit, total)
    }
    let (hit, total) = count(pb, target, names, 0);
    hit > 0 && hit * 2 >= total
}

/// How words are spelled inside k8s-openapi's JSON names after the first
/// word (`uid` -> `UID`, `ips` -> `IPs`), most frequent spelling first.
fn initialisms(openapi: &OpenApi) -> HashMap<String, String> {
    let mut counts: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for (_, jsons) in openapi.structs.values() {
        for j in jsons {
            for w in camel_words(j).into_iter().skip(1) {
                *counts
                    .entry(w.to_lowercase())
                    .or_default()
                    .entry(w)
                    .or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter_map(|(lower, spellings)| {
            let best = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))?;
            Some((lower, best.0))
        })
        .collect()
}

/// `insecureSkipTLSVerify` -> `insecure`, `Skip`, `TLS`, `Verify`;
/// `podIPs` -> `pod`, `IPs` (a plural initialism stays one word).
fn camel_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 {
            chars.get(i - 1).copied()
        } else {
            None
        };
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            None => false,
            Some(p) => {
                (c.is_ascii_uppercase() && (p.is_ascii_lowercase() || p.is_ascii_digit()))
                    || (c.is_ascii_uppercase()
                        && p.is_ascii_uppercase()
                        && next.is_some_and(|n| n.is_ascii_lowercase())
                        && !(next == Some('s')
                            && chars.get(i + 2).is_none_or(|n| n.is_ascii_uppercase())))
            }
        };
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        if c.is_ascii_alphanumeric() {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// lowerCamelCase of a snake_case name, spelling later words as
/// Kubernetes does elsewhere (`pod_uid` -> `podUID`).
fn guess_json_name(snake: &str, words: &HashMap<String, String>) -> String {
    let mut out = String::new();
    for (i, w) in snake.split('_').filter(|w| !w.is_empty()).enumerate() {
        if i == 0 {
            out.push_str(w);
        } else if let Some(spelled) = words.get(w) {
            out.push_str(spelled);
        } else {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        }
    }
    out
}

fn type_expr(ty: &PbType, index: &HashMap<&str, usize>) -> String {
    match ty {
        PbType::Scalar(s) => format!("Type::Scalar(Scalar::{})", scalar_variant(s)),
        PbType::Message(m) => {
            let i = index
                .get(m.as_str())
                .unwrap_or_else(|| panic!("k8s-pb refers to unknown message {m}"));
            format!("Type::Message({i})")
        }
        PbType::Map(k, v) => format!(
            "Type::Map(Scalar::{}, &{})",
            scalar_variant(k),
            type_expr(v, index)
        ),
    }
}

fn scalar_variant(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// A minimal JSON reader for `cargo metadata` (no build-dependencies).
// ---------------------------------------------------------------------------

mod json {
    #[derive(Debug)]
    pub enum Value {
        Null,
        Bool,
        Number,
        Str(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::Str(s) => Some(s),
                _ => None,
            }
        }
        pub fn as_array(&self) -> Option<&Vec<Value>> {
            match self {
                Value::Array(a) => Some(a),
                _ => None,
            }
        }
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn expect(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {} at {}", c as char, self.i))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    let mut entries = Vec::new();
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Object(entries));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.expect(b':')?;
                        let v = self.value()?;
                        entries.push((k, v));
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(entries));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => Ok(Value::Str(self.string()?)),
                Some(b't') => self.word("true", Value::Bool),
                Some(b'f') => self.word("false", Value::Bool),
                Some(b'n') => self.word("null", Value::Null),
                Some(c) if c == b'-' || c.is_ascii_digit() => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
                    {
                        self.i += 1;
                    }
                    Ok(Value::Number)
                }
                _ => Err(format!("unexpected input at {}", self.i)),
            }
        }
        fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
            if self.s[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Ok(v)
            } else {
                Err(format!("bad literal at {}", self.i))
            }
        }
        fn string(&mut self) -> Result<String, String> {
            if self.peek() != Some(b'"') {
                return Err(format!("expected string at {}", self.i));
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let c = self.peek().ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let e = self.peek().ok_or("unterminated escape")?;
                        self.i += 1;
                        match e {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = self
                                    .s
                                    .get(self.i..self.i + 4)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .ok_or("bad \\u escape")?;
                                self.i += 4;
                                let ch = char::from_u32(hex).unwrap_or('\u{fffd}');
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            other => out.push(other),
                        }
                    }
                    _ => out.push(c),
                }
            }
            String::from_utf8(out).map_err(|e| e.to_string())
        }
    }
}
