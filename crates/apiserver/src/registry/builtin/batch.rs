//! batch/v1 kinds.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::batch::v1 as api;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::docs;
use super::names;
use super::tables::{
    bool_text, col, containers, flag, format_label_selector, int, list, non_empty, since,
    terminating, text, wide,
};
use crate::registry::generic::GenericStrategy;
use crate::registry::validation;
use crate::table::Column;
use crate::typed::codec;

/// batch/v1 in upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info("CronJob", "cronjobs", "cronjob", &["cj"]),
            decode: codec::<api::CronJob>(),
            name_rule: names::cronjob_name_errors,
            initial_status: Some(|| json!({})),
            generation: true,
            spec_rules: Some(validation::batch::CRON_JOB),
            columns: cron_job_columns,
            cells: cron_job_cells,
        },
        GenericStrategy {
            info: info("Job", "jobs", "job", &[]),
            decode: codec::<api::Job>(),
            name_rule: meta::dns1123_subdomain_errors,
            // Upstream also generates the selector and the template's
            // controller-uid/job-name labels from the Job's UID and name.
            initial_status: Some(|| json!({})),
            generation: true,
            spec_rules: Some(validation::batch::JOB),
            columns: job_columns,
            cells: job_cells,
        },
    ]
}

/// A namespaced batch/v1 resource in the `all` category, with `/status`.
fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group: "batch",
        version: "v1",
        kind,
        plural,
        singular,
        scope: Scope::Namespaced,
        short_names,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status"],
    }
}

fn job_columns() -> Vec<Column> {
    vec![
        col("Status", "string", "Status of the job."),
        col("Completions", "string", docs::JOB_SUCCEEDED),
        col("Duration", "string", "Time required to complete the job."),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::JOB_SELECTOR),
    ]
}

fn job_cells(job: &Value) -> Vec<Value> {
    job_cells_at(job, OffsetDateTime::now_utc())
}

/// Whether the first condition of `kind` is True.
fn has_condition(job: &Value, kind: &str) -> bool {
    list(job, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == kind)
        .is_some_and(|c| text(c, "/status") == "True")
}

fn job_cells_at(job: &Value, now: OffsetDateTime) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int(job, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = non_empty(job, "/status/startTime").and_then(meta::parse_timestamp);
    let end = non_empty(job, "/status/completionTime").and_then(meta::parse_timestamp);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => meta::human_duration((now - s).whole_seconds()),
        (Some(s), Some(e)) => meta::human_duration((e - s).whole_seconds()),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if terminating(job) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(job.pointer("/spec/template/spec"));
    vec![
        json!(status),
        json!(completions),
        json!(duration),
        json!(names),
        json!(images),
        json!(format_label_selector(job.pointer("/spec/selector"))),
    ]
}

fn cron_job_columns() -> Vec<Column> {
    vec![
        col("Schedule", "string", docs::CRONJOB_SCHEDULE),
        col("Timezone", "string", docs::CRONJOB_TIME_ZONE),
        col("Suspend", "boolean", docs::CRONJOB_SUSPEND),
        col("Active", "integer", docs::CRONJOB_ACTIVE),
        col("Last Schedule", "string", docs::CRONJOB_LAST_SCHEDULE),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::JOB_SELECTOR),
    ]
}

fn cron_job_cells(cj: &Value) -> Vec<Value> {
    cron_job_cells_at(cj, OffsetDateTime::now_utc())
}

fn cron_job_cells_at(cj: &Value, now: OffsetDateTime) -> Vec<Value> {
    let last_schedule = match non_empty(cj, "/status/lastScheduleTime") {
        Some(t) => since(Some(t), now),
        None => "<none>".into(),
    };
    let job_spec = cj.pointer("/spec/jobTemplate/spec");
    let (names, images) = containers(job_spec.and_then(|s| s.pointer("/template/spec")));
    vec![
        json!(text(cj, "/spec/schedule")),
        json!(non_empty(cj, "/spec/timeZone").unwrap_or("<none>")),
        json!(bool_text(flag(cj, "/spec/suspend"))),
        json!(list(cj, "/status/active").len()),
        json!(last_schedule),
        json!(names),
        json!(images),
        json!(format_label_selector(
            job_spec.and_then(|s| s.get("selector"))
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        meta::parse_timestamp("2024-05-01T12:00:00Z").unwrap()
    }

    #[test]
    fn running_job_shows_progress_and_elapsed_time() {
        let job = json!({
            "spec": {"completions": 3, "parallelism": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}},
            "status": {"startTime": "2024-05-01T11:58:00Z", "succeeded": 1, "active": 1},
        });
        assert_eq!(
            job_cells_at(&job, now()),
            vec![
                json!("Running"),
                json!("1/3"),
                json!("2m"),
                json!("pi"),
                json!("perl"),
                json!("batch.kubernetes.io/controller-uid=abc"),
            ]
        );
    }

    #[test]
    fn complete_job_shows_its_duration() {
        let job = json!({
            "spec": {"completions": 1},
            "status": {
                "startTime": "2024-05-01T10:00:00Z", "completionTime": "2024-05-01T10:00:45Z", "succeeded": 1,
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
            },
        });
        let cells = job_cells_at(&job, now());
        assert_eq!(cells[..3], [json!("Complete"), json!("1/1"), json!("45s")]);
    }

    #[test]
    fn failed_and_suspended_jobs_are_named() {
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(job_cells_at(&failed, now())[0], json!("Failed"));
        let suspended = json!({"spec": {"parallelism": 2}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        let cells = job_cells_at(&suspended, now());
        assert_eq!(
            cells[..3],
            [json!("Suspended"), json!("0/1 of 2"), json!("")]
        );
    }

    #[test]
    fn cron_job_cells_show_schedule_and_last_run() {
        let cj = json!({
            "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "x"}], "lastScheduleTime": "2024-05-01T11:55:00Z"},
        });
        assert_eq!(
            cron_job_cells_at(&cj, now()),
            vec![
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("c"),
                json!("busybox"),
                json!("<none>"),
            ]
        );
    }
}
