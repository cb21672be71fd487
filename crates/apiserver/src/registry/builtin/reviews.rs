//! authentication.k8s.io/v1 and authorization.k8s.io/v1: the create-only
//! review kinds. They are registered here for discovery, typed decoding
//! and authorization; `crate::reviews` answers them and nothing is stored.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope};
use k8s_openapi::api::{authentication::v1 as authn, authorization::v1 as authz};
use serde_json::Value;

use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::{codec, Codec};

const CREATE: &[&str] = &["create"];

fn no_columns() -> Vec<Column> {
    Vec::new()
}

fn no_cells(_: &Value) -> Vec<Value> {
    Vec::new()
}

fn review(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    scope: Scope,
    decode: Codec,
) -> GenericStrategy {
    GenericStrategy {
        info: ResourceInfo {
            group,
            version: "v1",
            kind,
            plural,
            singular,
            scope,
            short_names: &[],
            categories: &[],
            verbs: CREATE,
            subresources: &[],
        },
        decode,
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        generation: false,
        spec_rules: None,
        columns: no_columns,
        cells: no_cells,
    }
}

pub fn authentication_kinds() -> Vec<GenericStrategy> {
    let g = crate::reviews::AUTHENTICATION_GROUP;
    vec![
        review(
            g,
            "SelfSubjectReview",
            "selfsubjectreviews",
            "selfsubjectreview",
            Scope::Cluster,
            codec::<authn::SelfSubjectReview>(),
        ),
        review(
            g,
            "TokenReview",
            "tokenreviews",
            "tokenreview",
            Scope::Cluster,
            codec::<authn::TokenReview>(),
        ),
    ]
}

pub fn authorization_kinds() -> Vec<GenericStrategy> {
    let g = crate::reviews::AUTHORIZATION_GROUP;
    vec![
        review(
            g,
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            "localsubjectaccessreview",
            Scope::Namespaced,
            codec::<authz::LocalSubjectAccessReview>(),
        ),
        review(
            g,
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            Scope::Cluster,
            codec::<authz::SelfSubjectAccessReview>(),
        ),
        review(
            g,
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            "selfsubjectrulesreview",
            Scope::Cluster,
            codec::<authz::SelfSubjectRulesReview>(),
        ),
        review(
            g,
            "SubjectAccessReview",
            "subjectaccessreviews",
            "subjectaccessreview",
            Scope::Cluster,
            codec::<authz::SubjectAccessReview>(),
        ),
    ]
}
