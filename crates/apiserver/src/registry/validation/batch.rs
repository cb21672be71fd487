//! batch/v1 Job and CronJob, as upstream 1.33 validates them
//! (`pkg/apis/batch/validation`), with the schedule checked the way
//! upstream's cron parser (robfig/cron v3, standard five fields) reads it.
//! The controllers' own cron parser lives in a crate the API server may
//! not depend on, so the syntax check is here.

use std::path::Path;

use apimachinery::StatusCause;
use serde_json::Value;

use super::{
    go_label_selector, go_scalar, go_string, immutable, invalid_printed, nonnegative_fields,
    not_supported, print_json, print_scalar, required, selector_converts, selector_matches,
    semantic, set, spec, template_labels_not_selected, text, validate_label_selector, SpecRules,
};
use crate::registry::pods::validate_pod_template;

pub const JOB: SpecRules = SpecRules {
    validate: validate_job,
    validate_update: validate_job_update,
};

pub const CRON_JOB: SpecRules = SpecRules {
    validate: |obj| validate_cron_job(obj, None),
    validate_update: |new, old| validate_cron_job(new, Some(old)),
};

/// Upstream's limit on parallelism for Indexed Jobs.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;

/// `validateJobSpec`: what a Job and a CronJob's job template share. `at`
/// is the spec's path (`spec` or `spec.jobTemplate.spec`).
fn job_spec(spec: &Value, at: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    nonnegative_fields(
        spec,
        at,
        &[
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "backoffLimit",
            "ttlSecondsAfterFinished",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
        ],
        &mut causes,
    );
    let mode = spec.get("completionMode").and_then(Value::as_str);
    if set(spec.get("backoffLimitPerIndex")).is_some() && mode != Some("Indexed") {
        causes.push(StatusCause::forbidden(
            &format!("{at}.backoffLimitPerIndex"),
            "requires indexed completion mode",
        ));
    }
    if set(spec.get("maxFailedIndexes")).is_some()
        && set(spec.get("backoffLimitPerIndex")).is_none()
    {
        causes.push(required(
            &format!("{at}.backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    match mode {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if set(spec.get("completions")).is_none() {
                causes.push(required(
                    &format!("{at}.completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.get("parallelism").and_then(Value::as_i64) {
                if p > MAX_PARALLELISM_FOR_INDEXED_JOB {
                    causes.push(invalid_printed(
                        &format!("{at}.parallelism"),
                        &p.to_string(),
                        &format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
                    ));
                }
            }
        }
        Some(other) => causes.push(not_supported(
            &format!("{at}.completionMode"),
            &go_string(other),
            &["NonIndexed", "Indexed"],
        )),
    }
    let failure_policy = set(spec.get("podFailurePolicy")).is_some();
    if let Some(replacement) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let field = format!("{at}.podReplacementPolicy");
        if failure_policy && replacement != "Failed" {
            causes.push(not_supported(&field, &go_string(replacement), &["Failed"]));
        } else if !failure_policy && !matches!(replacement, "Failed" | "TerminatingOrFailed") {
            causes.push(not_supported(
                &field,
                &go_string(replacement),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template_at = format!("{at}.template");
    causes.extend(validate_pod_template(spec.get("template"), &template_at));
    let restart = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let restart_field = format!("{template_at}.spec.restartPolicy");
    if restart != "OnFailure" && restart != "Never" {
        causes.push(required(
            &restart_field,
            r#"valid values: "OnFailure", "Never""#,
        ));
    } else if failure_policy && restart != "Never" {
        causes.push(invalid_printed(
            &restart_field,
            &go_string(restart),
            r#"only "Never" is supported when podFailurePolicy is specified"#,
        ));
    }
    causes
}

fn validate_job(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = job_spec(spec, "spec");
    let selector = set(spec.get("selector"));
    match selector {
        None => causes.push(required("spec.selector", "")),
        Some(sel) => causes.extend(validate_label_selector(Some(sel), "spec.selector")),
    }
    let labels = spec.pointer("/template/metadata/labels");
    if selector_converts(selector) && !selector_matches(selector, labels) {
        causes.push(template_labels_not_selected(labels));
    }
    causes
}

/// The pod template fields a suspended Job that never started may change
/// (upstream's mutable scheduling directives).
fn scheduling_directives_view(template: &Value, from: &Value) -> Value {
    let mut view = template.clone();
    for pointer in [
        "/metadata/labels",
        "/metadata/annotations",
        "/spec/nodeSelector",
        "/spec/tolerations",
        "/spec/schedulingGates",
        "/spec/affinity/nodeAffinity",
    ] {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let value = from.pointer(pointer).cloned();
        if let Some(map) = view.pointer_mut(parent).and_then(Value::as_object_mut) {
            match value {
                Some(v) => {
                    map.insert(key.to_string(), v);
                }
                None => {
                    map.remove(key);
                }
            }
        } else if let Some(v) = value {
            // Create the parent object (e.g. spec.affinity) to hold it.
            let mut target = &mut view;
            for part in parent.split('/').filter(|p| !p.is_empty()) {
                if !target.get(part).is_some_and(Value::is_object) {
                    target[part] = Value::Object(Default::default());
                }
                target = &mut target[part];
            }
            target[key] = v;
        }
    }
    view
}

fn validate_job_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut causes = validate_job(new);
    let indexed = new.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
    let completions = new.pointer("/spec/completions");
    if !indexed {
        immutable(
            new,
            old,
            "/spec/completions",
            "spec.completions",
            print_scalar,
            &mut causes,
        );
    } else if set(completions).is_some()
        && completions != old.pointer("/spec/completions")
        && completions != new.pointer("/spec/parallelism")
    {
        causes.push(invalid_printed(
            "spec.completions",
            &print_scalar(completions),
            "can only be modified in tandem with spec.parallelism",
        ));
    }
    immutable(
        new,
        old,
        "/spec/selector",
        "spec.selector",
        go_label_selector,
        &mut causes,
    );
    let new_template = new.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut old_template = old
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let suspended = old.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let never_started = set(old.pointer("/status/startTime")).is_none();
    if suspended && never_started {
        old_template = scheduling_directives_view(&old_template, new_template);
    }
    if semantic(new_template) != semantic(&old_template) {
        causes.push(invalid_printed(
            "spec.template",
            &print_json(Some(new_template)),
            "field is immutable",
        ));
    }
    for field in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(
            new,
            old,
            &format!("/spec/{field}"),
            &format!("spec.{field}"),
            print_json,
            &mut causes,
        );
    }
    causes
}

fn validate_cron_job(obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let old_spec = old.map(spec);
    let spec = spec(obj);
    let mut causes = Vec::new();
    let schedule = text(spec, "schedule");
    let time_zone = set(spec.get("timeZone"));
    if schedule.is_empty() {
        causes.push(required("spec.schedule", ""));
    } else {
        if let Err(e) = parse_schedule(schedule) {
            causes.push(invalid_printed("spec.schedule", &go_string(schedule), &e));
        }
        let allow_tz = old_spec.is_some_and(|o| text(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && time_zone.is_some() {
            causes.push(invalid_printed(
                "spec.schedule",
                &go_string(schedule),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            causes.push(invalid_printed(
                "spec.schedule",
                &go_string(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    nonnegative_fields(spec, "spec", &["startingDeadlineSeconds"], &mut causes);
    if old_spec.is_none_or(|o| set(o.get("timeZone")) != time_zone) {
        if let Some(zone) = time_zone {
            causes.extend(validate_time_zone(zone));
        }
    }
    match text(spec, "concurrencyPolicy") {
        "" => causes.push(required("spec.concurrencyPolicy", "")),
        "Allow" | "Forbid" | "Replace" => {}
        other => causes.push(not_supported(
            "spec.concurrencyPolicy",
            &go_string(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let job_spec_value = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
    causes.extend(job_spec(job_spec_value, "spec.jobTemplate.spec"));
    if let Some(sel) = set(job_spec_value.get("selector")) {
        causes.push(invalid_printed(
            "spec.jobTemplate.spec.selector",
            &go_label_selector(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec_value
        .get("manualSelector")
        .and_then(Value::as_bool)
        == Some(true)
    {
        causes.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        ));
    }
    nonnegative_fields(
        spec,
        "spec",
        &["successfulJobsHistoryLimit", "failedJobsHistoryLimit"],
        &mut causes,
    );
    causes
}

/// `validateTimeZone`: a non-empty, explicit IANA zone name this host
/// knows (upstream's API server embeds the zone database; we read the
/// system's, and accept any well-formed name where there is none).
fn validate_time_zone(zone: &Value) -> Vec<StatusCause> {
    let field = "spec.timeZone";
    let printed = go_scalar(zone);
    let name = zone.as_str().unwrap_or("");
    if name.is_empty() {
        return vec![invalid_printed(
            field,
            &printed,
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !name.split('/').all(part_ok) {
        return vec![invalid_printed(
            field,
            &printed,
            &format!("unknown time zone {name}"),
        )];
    }
    let mut causes = Vec::new();
    if name.eq_ignore_ascii_case("Local") {
        causes.push(invalid_printed(
            field,
            &printed,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if name != "Local" && !time_zone_known(name) {
        causes.push(invalid_printed(
            field,
            &printed,
            &format!("unknown time zone {name}"),
        ));
    }
    causes
}

const ZONEINFO: &str = "/usr/share/zoneinfo";

fn time_zone_known(name: &str) -> bool {
    name == "UTC" || !Path::new(ZONEINFO).is_dir() || Path::new(ZONEINFO).join(name).is_file()
}

/// One field of a schedule: its bounds and the names it accepts.
struct Bounds {
    min: i64,
    max: i64,
    names: &'static [&'static str],
    /// What the first name stands for.
    first_name: i64,
}

impl Bounds {
    /// A field that takes numbers only.
    const fn numeric(min: i64, max: i64) -> Bounds {
        Bounds {
            min,
            max,
            names: &[],
            first_name: 0,
        }
    }
}

const MINUTES: Bounds = Bounds::numeric(0, 59);
const HOURS: Bounds = Bounds::numeric(0, 23);
const DAYS_OF_MONTH: Bounds = Bounds::numeric(1, 31);
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name: 1,
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name: 0,
};

/// Check a schedule as robfig/cron's `ParseStandard` does; Err is its
/// error text, which upstream puts in the cause.
pub fn parse_schedule(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let end = spec.find(' ').unwrap_or(spec.len());
        let zone = &spec[eq + 1..end];
        if !(zone == "Local" || time_zone_known(zone)) || zone.is_empty() {
            return Err(format!(
                "provided bad location {zone}: unknown time zone {zone}"
            ));
        }
        spec = spec[end..].trim();
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => match descriptor.strip_prefix("every ") {
                Some(d) => parse_go_duration(d)
                    .map_err(|e| format!("failed to parse duration {spec}: {e}")),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in
        fields
            .iter()
            .zip([&MINUTES, &HOURS, &DAYS_OF_MONTH, &MONTHS, &DAYS_OF_WEEK])
    {
        for range in field.split(',').filter(|r| !r.is_empty()) {
            check_range(range, bounds)?;
        }
    }
    Ok(())
}

fn check_range(expr: &str, r: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (r.min, r.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], r)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], r)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            // "N/step" means "N-max/step".
            if single {
                end = r.max;
            }
            must_parse_int(range_and_step[1])?
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn parse_int_or_name(expr: &str, r: &Bounds) -> Result<i64, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some(i) = r.names.iter().position(|n| *n == lower) {
        return Ok(r.first_name + i as i64);
    }
    must_parse_int(expr)
}

fn must_parse_int(expr: &str) -> Result<i64, String> {
    // Go's strconv.Atoi: optional sign, then decimal digits.
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let parsed = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        expr.parse::<i64>().ok()
    } else {
        None
    };
    match parsed {
        None => Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_string(expr)
        )),
        Some(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {expr}")),
        Some(n) => Ok(n),
    }
}

/// Go's `time.ParseDuration` syntax ("1h30m", "1.5s", "300ms").
fn parse_go_duration(s: &str) -> Result<(), String> {
    let quoted = go_string(s);
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body == "0" {
        return Ok(());
    }
    if body.is_empty() {
        return Err(format!("time: invalid duration {quoted}"));
    }
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("time: invalid duration {quoted}"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return Err(format!(
                "time: unknown unit {} in duration {quoted}",
                go_string(unit)
            ));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::validation::{assert_causes, fields};
    use serde_json::json;

    /// A Job as stored after defaulting.
    fn job() -> Value {
        json!({
            "metadata": {"name": "pi", "uid": "u1"},
            "spec": {
                "parallelism": 1, "completions": 1, "backoffLimit": 6,
                "completionMode": "NonIndexed", "suspend": false,
                "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": false,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": {
                    "metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "job-name": "pi"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]},
                },
            },
        })
    }

    #[test]
    fn a_defaulted_job_is_valid() {
        assert!(validate_job(&job()).is_empty());
    }

    #[test]
    fn job_counts_must_not_be_negative() {
        let mut j = job();
        for field in [
            "parallelism",
            "completions",
            "backoffLimit",
            "activeDeadlineSeconds",
        ] {
            j["spec"][field] = json!(-1);
        }
        let causes = validate_job(&j);
        assert_eq!(
            fields(&causes),
            [
                "spec.parallelism",
                "spec.completions",
                "spec.activeDeadlineSeconds",
                "spec.backoffLimit"
            ]
        );
    }

    #[test]
    fn job_pods_must_not_restart_always() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_causes(
            &validate_job(&j),
            &["spec.template.spec.restartPolicy"],
            r#"Required value: valid values: "OnFailure", "Never""#,
        );
    }

    #[test]
    fn completion_modes_are_checked() {
        let mut j = job();
        j["spec"]["completionMode"] = json!("Sometimes");
        assert_eq!(validate_job(&j)[0].reason, "FieldValueNotSupported");
        j["spec"]["completionMode"] = json!("Indexed");
        j["spec"].as_object_mut().unwrap().remove("completions");
        assert_causes(
            &validate_job(&j),
            &["spec.completions"],
            "Required value: when completion mode is Indexed",
        );
    }

    #[test]
    fn job_selector_must_match_template() {
        let mut j = job();
        j["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        assert_eq!(fields(&validate_job(&j)), ["spec.template.metadata.labels"]);
    }

    #[test]
    fn job_update_keeps_selector_template_and_completions() {
        let old = job();
        let mut new = job();
        new["spec"]["parallelism"] = json!(3);
        new["spec"]["suspend"] = json!(true);
        assert!(validate_job_update(&new, &old).is_empty());
        new["spec"]["completions"] = json!(4);
        new["spec"]["selector"]["matchLabels"]["x"] = json!("y");
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        assert_causes(
            &validate_job_update(&new, &old),
            &["spec.completions", "spec.selector", "spec.template"],
            "Invalid value: 4: field is immutable",
        );
    }

    #[test]
    fn suspended_unstarted_job_may_change_scheduling_directives() {
        let mut old = job();
        old["spec"]["suspend"] = json!(true);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        assert!(validate_job_update(&new, &old).is_empty());
        old["status"] = json!({"startTime": "2024-01-01T00:00:00Z"});
        assert_eq!(fields(&validate_job_update(&new, &old)), ["spec.template"]);
    }

    #[test]
    fn indexed_completions_change_with_parallelism() {
        let mut old = job();
        old["spec"]["completionMode"] = json!("Indexed");
        let mut new = old.clone();
        new["spec"]["completions"] = json!(3);
        new["spec"]["parallelism"] = json!(3);
        assert!(validate_job_update(&new, &old).is_empty());
        new["spec"]["parallelism"] = json!(2);
        let causes = validate_job_update(&new, &old);
        assert_eq!(
            causes[0].message,
            "Invalid value: 3: can only be modified in tandem with spec.parallelism"
        );
    }

    #[test]
    fn schedules_parse_like_robfig_cron() {
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan-mar mon-fri",
            "15,45 9-17 * * ?",
            "@hourly",
            "@every 1h30m",
            "5/10 * * * SUN",
        ] {
            assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
        }
        for (bad, err) in [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-2 * * * *",
                "beginning of range (5) beyond end of range (2): 5-2",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "x * * * *",
                r#"failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax"#,
            ),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            (
                "@every 5",
                r#"failed to parse duration @every 5: time: missing unit in duration "5""#,
            ),
        ] {
            assert_eq!(parse_schedule(bad), Err(err.to_string()), "{bad}");
        }
    }

    fn cron_job() -> Value {
        json!({
            "metadata": {"name": "c"},
            "spec": {
                "schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
                "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}},
            },
        })
    }

    #[test]
    fn cron_job_fields_are_checked() {
        assert!(validate_cron_job(&cron_job(), None).is_empty());
        let mut c = cron_job();
        c["spec"]["schedule"] = json!("every minute");
        c["spec"]["concurrencyPolicy"] = json!("Sometimes");
        c["spec"]["startingDeadlineSeconds"] = json!(-5);
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_causes(
            &validate_cron_job(&c, None),
            &[
                "spec.schedule",
                "spec.startingDeadlineSeconds",
                "spec.concurrencyPolicy",
                "spec.jobTemplate.spec.template.spec.restartPolicy",
            ],
            r#"Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]"#,
        );
    }

    #[test]
    fn cron_job_time_zones_must_be_known() {
        let mut c = cron_job();
        c["spec"]["timeZone"] = json!("Etc/UTC");
        assert!(validate_cron_job(&c, None).is_empty());
        for zone in ["", "Local", "Mars/Olympus_Mons", "../etc"] {
            c["spec"]["timeZone"] = json!(zone);
            let causes = validate_cron_job(&c, None);
            assert_eq!(fields(&causes)[0], "spec.timeZone", "{zone}");
        }
        c["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
        if Path::new(ZONEINFO).is_dir() {
            assert_eq!(
                validate_cron_job(&c, None)[0].message,
                r#"Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons"#
            );
        }
        c["spec"]["schedule"] = json!("TZ=UTC */1 * * * *");
        c["spec"].as_object_mut().unwrap().remove("timeZone");
        assert!(validate_cron_job(&c, None)[0]
            .message
            .ends_with("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
    }
}
