//! A kind served through its generic entry plus subresources whose
//! handlers live in the REST layer: `serviceaccounts/token` (TokenRequest)
//! and `certificatesigningrequests/approval`.

use std::sync::Arc;

use apimachinery::{ResourceInfo, StatusCause};
use serde_json::Value;

use super::{DeleteAction, Strategy};
use crate::table::Column;

pub struct WithSubresources {
    pub inner: Arc<dyn Strategy>,
    info: ResourceInfo,
}

impl WithSubresources {
    pub fn new(inner: Arc<dyn Strategy>, subresources: &'static [&'static str]) -> Self {
        let mut info = inner.info().clone();
        info.subresources = subresources;
        WithSubresources { inner, info }
    }
}

impl Strategy for WithSubresources {
    forward_to_inner!(
        decode,
        decode_json,
        prepare_for_create,
        prepare_for_update,
        validate,
        validate_update,
        delete_action,
        columns,
        cells
    );

    fn info(&self) -> &ResourceInfo {
        &self.info
    }
}
