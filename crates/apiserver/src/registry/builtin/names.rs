//! Name rules of built-in kinds that are not one of the shared ones in
//! `apimachinery::meta` (DNS-1123 label/subdomain) or `generic`
//! (path segment).

use apimachinery::meta;

/// RFC 1035 label (Services): lower-case alphanumerics and '-', starting
/// with a letter and ending with an alphanumeric, at most 63 characters.
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.ends_with('-');
    if !ok {
        errs.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

/// CronJobs: a DNS subdomain of at most 52 characters, because the
/// controller appends an 11-character suffix to name its Jobs.
pub fn cronjob_name_errors(value: &str) -> Vec<String> {
    let mut errs = meta::dns1123_subdomain_errors(value);
    if value.len() > 52 {
        errs.push("must be no more than 52 characters".to_string());
    }
    errs
}

/// CSIDrivers: the driver name, a DNS subdomain (case-insensitive) of at
/// most 63 characters.
pub fn csi_driver_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    errs.extend(meta::dns1123_subdomain_errors(&value.to_ascii_lowercase()));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_must_start_with_a_letter() {
        assert!(dns1035_label_errors("web-1").is_empty());
        assert_eq!(dns1035_label_errors("1web").len(), 1);
        assert_eq!(dns1035_label_errors("web.x").len(), 1);
        assert_eq!(dns1035_label_errors(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn cronjob_names_are_limited_to_52_characters() {
        assert!(cronjob_name_errors(&"a".repeat(52)).is_empty());
        assert_eq!(
            cronjob_name_errors(&"a".repeat(53)),
            ["must be no more than 52 characters"]
        );
    }

    #[test]
    fn csi_driver_names_may_use_upper_case() {
        assert!(csi_driver_name_errors("Hostpath.CSI.k8s.io").is_empty());
        assert_eq!(csi_driver_name_errors(&"a".repeat(64)).len(), 1);
    }
}
