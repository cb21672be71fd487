//! certificates.k8s.io: the CSR approving and signing controllers.
//!
//! Approving (upstream's `csrapproving`, plus serving certificates as k3s
//! does): a kubelet's CSR is approved automatically when it has the exact
//! shape of a node certificate and a SubjectAccessReview says the
//! requester may `create` the matching `certificatesigningrequests/<kind>`
//! subresource: `nodeclient` (a first client certificate, typically asked
//! for with a bootstrap token), `selfnodeclient` (a node renewing its own
//! client certificate), `selfnodeserver` (a node's own serving certificate
//! whose names and addresses are the Node's).
//!
//! Signing (upstream's `csrsigning`): approved CSRs for the built-in
//! signers get a certificate, after the signer's checks (usages, subject);
//! a CSR a signer refuses gets a `Failed` condition. Client signers use the
//! client CA (so the API server trusts the result), `kubelet-serving` the
//! serving CA (so the API server can verify kubelets).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt};

use crate::{ClusterSigning, Context, Error};

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

/// One year, upstream's `--cluster-signing-duration`.
const DEFAULT_DURATION_SECONDS: i64 = 365 * 24 * 3600;
const MIN_DURATION_SECONDS: i64 = 600;

fn condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn new_condition(type_: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(Timestamp::now());
    CertificateSigningRequestCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    let signing = ctx.options.cluster_signing.clone().map(Arc::new);
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let csr = match event {
            Ok(csr) => csr,
            Err(err) => {
                tracing::debug!(%err, "CSR watch");
                continue;
            }
        };
        if condition(&csr, "Approved") || condition(&csr, "Denied") {
            if let Some(signing) = &signing {
                if let Err(err) = sign(&api, signing, &csr).await {
                    tracing::warn!(%err, csr = ?csr.metadata.name, "signing failed");
                }
            }
            continue;
        }
        if let Err(err) = approve(&ctx, &api, &csr).await {
            tracing::warn!(%err, csr = ?csr.metadata.name, "auto-approval failed");
        }
    }
    Ok(())
}

/// What the CSR asks for, decoded.
fn parse(csr: &CertificateSigningRequest) -> Result<pki::CsrInfo, String> {
    pki::parse_csr(&csr.spec.request.0).map_err(|e| e.to_string())
}

fn usages(csr: &CertificateSigningRequest) -> Vec<String> {
    csr.spec.usages.clone().unwrap_or_default()
}

/// A node certificate's subject: `system:node:<name>` in exactly `system:nodes`.
fn node_name(info: &pki::CsrInfo) -> Option<&str> {
    let name = info.common_name.strip_prefix("system:node:")?;
    (!name.is_empty() && info.organizations == ["system:nodes"]).then_some(name)
}

fn subset(have: &[String], allowed: &[&str]) -> bool {
    have.iter().all(|u| allowed.contains(&u.as_str()))
}

/// Whether a kubelet client CSR has exactly the shape upstream accepts.
fn is_kubelet_client(info: &pki::CsrInfo, usages: &[String]) -> bool {
    node_name(info).is_some()
        && info.dns_names.is_empty()
        && info.ip_addresses.is_empty()
        && info.email_addresses.is_empty()
        && info.uris.is_empty()
        && usages.iter().any(|u| u == "client auth")
        && subset(
            usages,
            &["key encipherment", "digital signature", "client auth"],
        )
}

fn is_kubelet_serving(info: &pki::CsrInfo, usages: &[String]) -> bool {
    node_name(info).is_some()
        && (!info.dns_names.is_empty() || !info.ip_addresses.is_empty())
        && info.email_addresses.is_empty()
        && info.uris.is_empty()
        && usages.iter().any(|u| u == "server auth")
        && subset(
            usages,
            &["key encipherment", "digital signature", "server auth"],
        )
}

async fn may(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> Result<bool, Error> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            groups: csr.spec.groups.clone(),
            uid: csr.spec.uid.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                subresource: Some(subresource.into()),
                verb: Some("create".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn approve(
    ctx: &Context,
    api: &Api<CertificateSigningRequest>,
    csr: &CertificateSigningRequest,
) -> Result<(), Error> {
    let Ok(info) = parse(csr) else {
        return Ok(());
    };
    let usages = usages(csr);
    let requester = csr.spec.username.as_deref().unwrap_or("");
    let approval = match csr.spec.signer_name.as_str() {
        KUBELET_CLIENT if is_kubelet_client(&info, &usages) => {
            if requester == info.common_name && may(ctx, csr, "selfnodeclient").await? {
                Some("Auto approving self kubelet client certificate after SubjectAccessReview.")
            } else if may(ctx, csr, "nodeclient").await? {
                Some("Auto approving kubelet client certificate after SubjectAccessReview.")
            } else {
                None
            }
        }
        KUBELET_SERVING if is_kubelet_serving(&info, &usages) => {
            let node = node_name(&info).unwrap_or_default();
            if requester == info.common_name
                && names_match_node(ctx, node, &info).await
                && may(ctx, csr, "selfnodeserver").await?
            {
                Some("Auto approving self kubelet serving certificate after SubjectAccessReview.")
            } else {
                None
            }
        }
        _ => None,
    };
    let Some(message) = approval else {
        return Ok(());
    };
    let mut approved = csr.clone();
    approved
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(new_condition("Approved", "AutoApproved", message));
    let name = csr.metadata.name.clone().unwrap_or_default();
    api.replace_subresource("approval", &name, &PostParams::default(), &approved)
        .await?;
    tracing::info!(csr = %name, "approved kubelet certificate request");
    Ok(())
}

/// A serving certificate may name only the Node's own addresses and host names.
async fn names_match_node(ctx: &Context, node: &str, info: &pki::CsrInfo) -> bool {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let Ok(node) = nodes.get(node).await else {
        return false;
    };
    let addresses: Vec<String> = node
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.address)
        .collect();
    info.dns_names.iter().all(|d| addresses.contains(d))
        && info
            .ip_addresses
            .iter()
            .all(|ip| addresses.contains(&ip.to_string()))
}

/// Why a signer refuses a request, if it does.
fn signer_refusal(signer: &str, info: &pki::CsrInfo, usages: &[String]) -> Option<String> {
    match signer {
        KUBE_APISERVER_CLIENT => {
            if !usages.iter().any(|u| u == "client auth")
                || !subset(
                    usages,
                    &["key encipherment", "digital signature", "client auth"],
                )
            {
                return Some("invalid usage for client certificate".into());
            }
            if info.organizations.iter().any(|o| o == "system:masters") {
                return Some("subject may not be in the system:masters group".into());
            }
            None
        }
        KUBELET_CLIENT => (!is_kubelet_client(info, usages))
            .then(|| "invalid kubelet client certificate request".into()),
        KUBELET_SERVING => (!is_kubelet_serving(info, usages))
            .then(|| "invalid kubelet serving certificate request".into()),
        _ => Some(format!("unknown signer {signer}")),
    }
}

async fn sign(
    api: &Api<CertificateSigningRequest>,
    signing: &ClusterSigning,
    csr: &CertificateSigningRequest,
) -> Result<(), Error> {
    let signer = csr.spec.signer_name.as_str();
    if !condition(csr, "Approved")
        || condition(csr, "Denied")
        || condition(csr, "Failed")
        || ![KUBE_APISERVER_CLIENT, KUBELET_CLIENT, KUBELET_SERVING].contains(&signer)
        || csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty())
    {
        return Ok(());
    }
    let name = csr.metadata.name.clone().unwrap_or_default();
    let usages = usages(csr);
    let mut updated = csr.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let outcome = parse(csr).and_then(|info| {
        if let Some(why) = signer_refusal(signer, &info, &usages) {
            return Err(why);
        }
        let (cert, key) = if signer == KUBELET_SERVING {
            (&signing.serving_ca_cert_pem, &signing.serving_ca_key_pem)
        } else {
            (&signing.client_ca_cert_pem, &signing.client_ca_key_pem)
        };
        let ca = pki::CertificateAuthority::from_pem(cert, key).map_err(|e| e.to_string())?;
        let seconds = csr
            .spec
            .expiration_seconds
            .map(i64::from)
            .unwrap_or(DEFAULT_DURATION_SECONDS)
            .clamp(MIN_DURATION_SECONDS, DEFAULT_DURATION_SECONDS);
        let not_after = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
        let parsed: Result<Vec<pki::KeyUsage>, String> = usages
            .iter()
            .map(|u| pki::KeyUsage::parse(u).map_err(|e| e.to_string()))
            .collect();
        ca.sign_parsed_csr(&info, &parsed?, not_after)
            .map_err(|e| e.to_string())
    });
    match outcome {
        Ok(pem) => status.certificate = Some(k8s_openapi::ByteString(pem.into_bytes())),
        Err(why) => status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(new_condition("Failed", "SignerValidationFailure", &why)),
    }
    api.replace_subresource("status", &name, &PostParams::default(), &updated)
        .await?;
    tracing::info!(csr = %name, signer, "processed an approved certificate request");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cn: &str, orgs: &[&str], dns: &[&str]) -> pki::CsrInfo {
        pki::CsrInfo {
            common_name: cn.into(),
            organizations: orgs.iter().map(|s| s.to_string()).collect(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: Vec::new(),
            email_addresses: Vec::new(),
            uris: Vec::new(),
            public_key_algorithm: pki::PublicKeyAlgorithm::EcdsaP256,
            public_key_der: Vec::new(),
            subject_der: Vec::new(),
        }
    }

    fn u(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelet_client_requests_need_the_exact_node_shape() {
        let ok = info("system:node:n1", &["system:nodes"], &[]);
        assert!(is_kubelet_client(
            &ok,
            &u(&["digital signature", "client auth"])
        ));
        assert!(!is_kubelet_client(&ok, &u(&["server auth"])));
        assert!(!is_kubelet_client(
            &info("n1", &["system:nodes"], &[]),
            &u(&["client auth"])
        ));
        assert!(!is_kubelet_client(
            &info("system:node:n1", &["system:nodes", "system:masters"], &[]),
            &u(&["client auth"])
        ));
        assert!(!is_kubelet_client(
            &info("system:node:n1", &["system:nodes"], &["n1"]),
            &u(&["client auth"])
        ));
    }

    #[test]
    fn the_client_signer_refuses_masters_and_server_usages() {
        let jane = info("jane", &["dev"], &[]);
        assert_eq!(
            signer_refusal(KUBE_APISERVER_CLIENT, &jane, &u(&["client auth"])),
            None
        );
        assert!(signer_refusal(KUBE_APISERVER_CLIENT, &jane, &u(&["server auth"])).is_some());
        let root = info("root", &["system:masters"], &[]);
        assert!(signer_refusal(KUBE_APISERVER_CLIENT, &root, &u(&["client auth"])).is_some());
        assert!(signer_refusal("example.com/custom", &jane, &u(&["client auth"])).is_some());
    }

    #[test]
    fn serving_requests_need_names_and_server_auth() {
        let ok = info("system:node:n1", &["system:nodes"], &["n1"]);
        assert!(is_kubelet_serving(
            &ok,
            &u(&["digital signature", "server auth"])
        ));
        assert!(!is_kubelet_serving(
            &info("system:node:n1", &["system:nodes"], &[]),
            &u(&["server auth"])
        ));
        assert!(!is_kubelet_serving(&ok, &u(&["client auth"])));
    }
}
