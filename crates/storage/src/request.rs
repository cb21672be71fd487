//! Request validation shared by every backend, so that both reject the same
//! bad input with the same error before touching the datastore.

use crate::{RangeRequest, Result, Revision, StorageError};

pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::InvalidRequest("key must not be empty".into()));
    }
    Ok(())
}

pub(crate) fn check_expected(key: &str, expected: Revision) -> Result<()> {
    if expected <= 0 {
        return Err(StorageError::InvalidRequest(format!(
            "expected revision {expected} for key {key} must be positive"
        )));
    }
    Ok(())
}

pub(crate) fn check_range(req: &RangeRequest) -> Result<()> {
    if req.limit < 0 {
        return Err(StorageError::InvalidRequest(format!(
            "limit {} must not be negative",
            req.limit
        )));
    }
    if req.revision < 0 {
        return Err(StorageError::InvalidRequest(format!(
            "revision {} must not be negative",
            req.revision
        )));
    }
    if let Some(start) = &req.start_key {
        if !start.starts_with(&req.prefix) {
            return Err(StorageError::InvalidRequest(format!(
                "start key {start} is outside prefix {}",
                req.prefix
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_watch(start_revision: Revision) -> Result<()> {
    if start_revision < 0 {
        return Err(StorageError::InvalidRequest(format!(
            "start revision {start_revision} must not be negative"
        )));
    }
    Ok(())
}

pub(crate) fn check_compact(revision: Revision) -> Result<()> {
    if revision <= 0 {
        return Err(StorageError::InvalidRequest(format!(
            "compact revision {revision} must be positive"
        )));
    }
    Ok(())
}
