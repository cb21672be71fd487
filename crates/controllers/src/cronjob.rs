//! The CronJob controller: creates a Job for each scheduled time, as
//! upstream's (v2) controller does.
//!
//! Schedules use the 5-field cron syntax (minute hour day-of-month month
//! day-of-week, with lists, ranges, steps, `?`, month and weekday names)
//! or the `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/`@midnight`/
//! `@hourly` descriptors, evaluated in `spec.timeZone` (read from the
//! system's zoneinfo) or UTC. Jobs are named `<cronjob>-<scheduled time in
//! minutes since the epoch>`; concurrencyPolicy Allow/Forbid/Replace,
//! startingDeadlineSeconds (missed runs), suspend, and the successful and
//! failed history limits behave as upstream; status keeps `active`,
//! `lastScheduleTime` and `lastSuccessfulTime`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::civil::DateTime;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Span, Timestamp, ToSpan};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::workload_util::{
    controller_owner_ref, controller_ref, is_conflict, is_not_found, is_ready, run_loop,
    self_trigger,
};
use crate::{Context, Error};

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

// ---------------------------------------------------------------------------
// Cron schedules.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("invalid value {0:?} in {1}")]
    Value(String, &'static str),
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
}

/// A parsed schedule: bit sets of allowed values per field.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Whether day-of-month or day-of-week was `*`/`?`: then both must
    /// match; otherwise either may (classic cron).
    dom_star: bool,
    dow_star: bool,
}

struct Field {
    what: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    what: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    what: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Field = Field {
    what: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    what: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Field = Field {
    what: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn parse_value(text: &str, field: &Field) -> Result<u32, ScheduleError> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + field.min);
    }
    text.parse::<u32>()
        .map_err(|_| ScheduleError::Value(text.into(), field.what))
}

/// One field: comma-separated `*`, `?`, `a`, `a-b`, each with an optional
/// `/step` (`a/step` means `a-max/step`). Returns the bits and whether it
/// was a bare star.
fn parse_field(expr: &str, field: &Field) -> Result<(u64, bool), ScheduleError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| ScheduleError::Value(part.into(), field.what))?,
                ),
            ),
            None => (part, None),
        };
        let (start, end, is_star) = if range == "*" || range == "?" {
            (field.min, field.max, step.is_none_or(|s| s == 1))
        } else if let Some((a, b)) = range.split_once('-') {
            (parse_value(a, field)?, parse_value(b, field)?, false)
        } else {
            let v = parse_value(range, field)?;
            (v, if step.is_some() { field.max } else { v }, false)
        };
        if start < field.min || end > field.max || start > end {
            return Err(ScheduleError::Value(part.into(), field.what));
        }
        star |= is_star;
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let expanded = if let Some(descriptor) = text.strip_prefix('@') {
            match descriptor {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                other => return Err(ScheduleError::Descriptor(other.into())),
            }
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount(fields.len(), text.into()));
        }
        let (minutes, _) = parse_field(fields[0], &MINUTE)?;
        let (hours, _) = parse_field(fields[1], &HOUR)?;
        let (days_of_month, dom_star) = parse_field(fields[2], &DOM)?;
        let (months, _) = parse_field(fields[3], &MONTH)?;
        let (days_of_week, dow_star) = parse_field(fields[4], &DOW)?;
        Ok(Schedule {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            dom_star,
            dow_star,
        })
    }

    fn day_matches(&self, dt: &DateTime) -> bool {
        let dom = self.days_of_month & (1 << dt.day()) != 0;
        let dow = self.days_of_week & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after`, in `tz`. None if
    /// nothing matches within five years (e.g. February 30th).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        let mut t = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = start.year() + 5;
        while t.year() <= limit {
            if self.months & (1 << t.month()) == 0 {
                t = t
                    .date()
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .to_datetime(midnight());
                continue;
            }
            if !self.day_matches(&t) {
                t = t.date().checked_add(1.day()).ok()?.to_datetime(midnight());
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let at = t.to_zoned(tz.clone()).ok()?.timestamp();
            // A wall time skipped by a DST jump can map before `after`.
            if at > after {
                return Some(at);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

fn midnight() -> k8s_openapi::jiff::civil::Time {
    k8s_openapi::jiff::civil::Time::midnight()
}

/// A time zone by IANA name from the system's zoneinfo.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, ScheduleError> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::UTC);
    };
    if name == "UTC" || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    let safe = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        && !name.contains("..")
        && !name.starts_with('/');
    if !safe {
        return Err(ScheduleError::TimeZone(name.into()));
    }
    let data = std::fs::read(format!("/usr/share/zoneinfo/{name}"))
        .map_err(|_| ScheduleError::TimeZone(name.into()))?;
    TimeZone::tzif(name, &data).map_err(|_| ScheduleError::TimeZone(name.into()))
}

/// The schedule times due in `(earliest, now]`: how many, and the latest.
/// Counting stops early on a runaway backlog; the latest is still found.
pub fn missed_runs(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (usize, Option<Timestamp>) {
    let mut count = 0;
    let mut latest = None;
    let mut t = earliest;
    while let Some(next) = schedule.next_after(t, tz) {
        if next > now {
            break;
        }
        count += 1;
        latest = Some(next);
        t = next;
        if count > 1000 {
            // Far behind: skip to the last day before now for the latest.
            let skip = now.checked_sub(Span::new().hours(24)).unwrap_or(now);
            if skip > t {
                t = skip;
            }
        }
    }
    (count, latest)
}

/// Job name for a scheduled time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

// ---------------------------------------------------------------------------

struct State {
    ctx: Context,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let _client = ctx.client.clone();
    let (cronjobs, cj_events) = ctx.informers.reflect::<CronJob>();
    let (jobs, job_events) = ctx.informers.reflect::<Job>();
    let job_trigger = job_events
        .filter_map(|job| async move {
            let owner = controller_ref(&job.metadata).filter(|r| r.kind == "CronJob")?;
            Some(ObjectRef::<CronJob>::new(&owner.name).within(job.metadata.namespace.as_deref()?))
        })
        .boxed();
    let state = Arc::new(State {
        ctx,
        cronjobs: cronjobs.clone(),
        jobs,
    });
    run_loop(
        "cronjob",
        cronjobs,
        vec![self_trigger(cj_events), job_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

fn job_finished(job: &Job) -> Option<&'static str> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

fn job_reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn created_at(meta: &ObjectMeta) -> Timestamp {
    meta.creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

async fn reconcile(cj: Arc<CronJob>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.cronjobs) || !is_ready(&state.jobs) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let namespace = cj.metadata.namespace.clone().unwrap_or_default();
    let name = cj.metadata.name.clone().unwrap_or_default();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let client = &state.ctx.client;
    let recorder = &state.ctx.recorder;
    let reference = clientkit::events::reference(cj.as_ref());
    let cj_api: Api<CronJob> = Api::namespaced(client.clone(), &namespace);
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let spec = cj.spec.clone().unwrap_or_default();
    let original = cj.status.clone().unwrap_or_default();
    let mut status = original.clone();

    let owned: Vec<Arc<Job>> = state
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|j| controller_ref(&j.metadata).is_some_and(|r| r.uid == uid))
        .collect();

    // Reconcile the active list with the jobs that exist.
    let mut active: Vec<ObjectReference> = status.active.clone().unwrap_or_default();
    active.retain(|r| {
        match owned.iter().find(|j| j.metadata.uid == r.uid) {
            Some(job) => job_finished(job).is_none(),
            // Gone: it was deleted (or is not in our cache yet, if very new).
            None => r.name.as_ref().is_some_and(|n| {
                state
                    .jobs
                    .get(&ObjectRef::new(n).within(&namespace))
                    .is_some()
            }),
        }
    });
    for job in &owned {
        let in_active = status
            .active
            .iter()
            .flatten()
            .any(|r| r.uid == job.metadata.uid);
        if let Some(outcome) = job_finished(job) {
            if in_active {
                let job_name = job.metadata.name.clone().unwrap_or_default();
                recorder
                    .record(
                        &reference,
                        clientkit::events::NORMAL,
                        "SawCompletedJob",
                        &format!("Saw completed job: {job_name}, condition: {outcome}"),
                    )
                    .await;
            }
            if outcome == "Complete" {
                let done = job
                    .status
                    .as_ref()
                    .and_then(|s| s.completion_time.as_ref())
                    .map(|t| t.0);
                if done.is_some() && status.last_successful_time.as_ref().map(|t| t.0) < done {
                    status.last_successful_time = done.map(Time);
                }
            }
        }
    }
    status.active = if active.is_empty() {
        None
    } else {
        Some(active.clone())
    };

    // History limits.
    for (outcome, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut finished: Vec<&Arc<Job>> = owned
            .iter()
            .filter(|j| job_finished(j) == Some(outcome))
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .collect();
        let limit = limit.max(0) as usize;
        if finished.len() > limit {
            finished.sort_by_key(|j| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0)
                    .unwrap_or_else(|| created_at(&j.metadata))
            });
            for job in finished.iter().take(finished.len() - limit) {
                let job_name = job.metadata.name.clone().unwrap_or_default();
                match jobs_api
                    .delete(&job_name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {
                        recorder
                            .record(
                                &reference,
                                clientkit::events::NORMAL,
                                "SuccessfulDelete",
                                &format!("Deleted job {job_name}"),
                            )
                            .await
                    }
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }

    let tz = match time_zone(spec.time_zone.as_deref()) {
        Ok(tz) => tz,
        Err(err) => {
            recorder
                .record(
                    &reference,
                    clientkit::events::WARNING,
                    "UnknownTimeZone",
                    &format!("invalid timeZone: {err}"),
                )
                .await;
            write_status(&cj_api, &name, &original, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(schedule) => schedule,
        Err(err) => {
            recorder
                .record(
                    &reference,
                    clientkit::events::WARNING,
                    "UnparseableSchedule",
                    &format!("unparseable schedule: {:?} : {err}", spec.schedule),
                )
                .await;
            write_status(&cj_api, &name, &original, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let requeue_next = |from: Timestamp| -> Action {
        match schedule.next_after(from, &tz) {
            Some(next) => {
                let wait = (next.as_second() - Timestamp::now().as_second()).max(0) as u64;
                Action::requeue(Duration::from_secs(wait) + Duration::from_millis(100))
            }
            None => Action::await_change(),
        }
    };

    if spec.suspend.unwrap_or(false) {
        write_status(&cj_api, &name, &original, &status).await?;
        return Ok(Action::await_change());
    }

    let mut earliest = status
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(|| created_at(&cj.metadata));
    if let Some(deadline) = spec.starting_deadline_seconds {
        let bound = now
            .checked_sub(Span::new().seconds(deadline))
            .unwrap_or(now);
        if bound > earliest {
            earliest = bound;
        }
    }
    let (missed, latest) = missed_runs(&schedule, &tz, earliest, now);
    let Some(scheduled) = latest else {
        write_status(&cj_api, &name, &original, &status).await?;
        return Ok(requeue_next(now));
    };
    if missed > 100 {
        recorder
            .record(
                &reference,
                clientkit::events::WARNING,
                "TooManyMissedTimes",
                &format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
            )
            .await;
    }
    if let Some(deadline) = spec.starting_deadline_seconds {
        if scheduled.as_second() + deadline < now.as_second() {
            let at = scheduled.to_zoned(tz.clone()).datetime();
            recorder
                .record(
                    &reference,
                    clientkit::events::WARNING,
                    "MissSchedule",
                    &format!("Missed scheduled time to start a job: {at}"),
                )
                .await;
            write_status(&cj_api, &name, &original, &status).await?;
            return Ok(requeue_next(now));
        }
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    let job_name_for = job_name(&name, scheduled);
    let already = active
        .iter()
        .any(|r| r.name.as_deref() == Some(job_name_for.as_str()));
    if already || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled) {
        write_status(&cj_api, &name, &original, &status).await?;
        return Ok(requeue_next(now));
    }
    if policy == "Forbid" && !active.is_empty() {
        write_status(&cj_api, &name, &original, &status).await?;
        return Ok(requeue_next(now));
    }
    if policy == "Replace" {
        for old in &active {
            let Some(old_name) = old.name.clone() else {
                continue;
            };
            let params = DeleteParams::background();
            match jobs_api.delete(&old_name, &params).await {
                Ok(_) => {
                    recorder
                        .record(
                            &reference,
                            clientkit::events::NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted job {old_name}"),
                        )
                        .await
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        active.clear();
        status.active = None;
    }

    // Create the job for the scheduled time.
    let template = spec.job_template.clone();
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = template_meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    let job = Job {
        metadata: ObjectMeta {
            name: Some(job_name_for.clone()),
            namespace: Some(namespace.clone()),
            labels: template_meta.labels,
            annotations: Some(annotations),
            owner_references: controller_owner_ref("batch/v1", "CronJob", &cj.metadata)
                .map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    };
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            recorder
                .record(
                    &reference,
                    clientkit::events::NORMAL,
                    "SuccessfulCreate",
                    &format!("Created job {job_name_for}"),
                )
                .await;
            Some(created)
        }
        // Created before (our status write was lost): record the time only.
        Err(err) if is_conflict(&err) => jobs_api.get_opt(&job_name_for).await?,
        Err(err) => {
            recorder
                .record(
                    &reference,
                    clientkit::events::WARNING,
                    "FailedCreate",
                    &format!("Error creating job: {err}"),
                )
                .await;
            return Err(err.into());
        }
    };
    if let Some(created) = created {
        if job_finished(&created).is_none()
            && controller_ref(&created.metadata).is_some_and(|r| r.uid == uid)
        {
            active.push(job_reference(&created));
        }
    }
    status.active = if active.is_empty() {
        None
    } else {
        Some(active)
    };
    status.last_schedule_time = Some(Time(scheduled));
    write_status(&cj_api, &name, &original, &status).await?;
    Ok(requeue_next(now))
}

async fn write_status(
    api: &Api<CronJob>,
    name: &str,
    original: &k8s_openapi::api::batch::v1::CronJobStatus,
    status: &k8s_openapi::api::batch::v1::CronJobStatus,
) -> Result<(), Error> {
    if original == status {
        return Ok(());
    }
    // Merge patch: null clears a list that became empty.
    let body = json!({"status": {
        "active": status.active,
        "lastScheduleTime": status.last_schedule_time,
        "lastSuccessfulTime": status.last_successful_time,
    }});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(after), &TimeZone::UTC)
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_minute_and_steps_of_minutes() {
        assert_eq!(
            next("* * * * *", "2024-05-01T10:00:30Z"),
            "2024-05-01T10:01:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-05-01T10:01:00Z"),
            "2024-05-01T10:15:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-05-01T10:45:00Z"),
            "2024-05-01T11:00:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "2024-05-01T10:26:00Z"),
            "2024-05-01T10:45:00Z"
        );
    }

    #[test]
    fn ranges_lists_and_names() {
        // 09:30 on weekdays.
        assert_eq!(
            next("30 9 * * mon-fri", "2024-05-03T10:00:00Z"),
            "2024-05-06T09:30:00Z"
        );
        assert_eq!(
            next("0 0 1 jan,jul *", "2024-02-10T00:00:00Z"),
            "2024-07-01T00:00:00Z"
        );
        assert_eq!(
            next("0 8-10/2 * * *", "2024-05-01T08:00:00Z"),
            "2024-05-01T10:00:00Z"
        );
    }

    #[test]
    fn descriptors_expand_to_their_schedules() {
        assert_eq!(
            next("@hourly", "2024-05-01T10:00:00Z"),
            "2024-05-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-05-01T10:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2024-05-01T10:00:00Z"),
            "2024-06-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-05-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_of_month_and_weekday_match_either() {
        // The 13th, or any Friday: after Wed 2024-09-11 comes Fri the 13th,
        // then Fri the 20th.
        assert_eq!(
            next("0 0 13 * 5", "2024-09-11T00:00:00Z"),
            "2024-09-13T00:00:00Z"
        );
        assert_eq!(
            next("0 0 13 * 5", "2024-09-13T00:00:00Z"),
            "2024-09-20T00:00:00Z"
        );
        // With a starred weekday both must match (just the 13th).
        assert_eq!(
            next("0 0 13 * *", "2024-09-13T00:00:00Z"),
            "2024-10-13T00:00:00Z"
        );
    }

    #[test]
    fn impossible_dates_never_fire_and_bad_syntax_is_rejected() {
        assert!(Schedule::parse("0 0 30 2 *")
            .unwrap()
            .next_after(at("2024-01-01T00:00:00Z"), &TimeZone::UTC)
            .is_none());
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@every 5m").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
    }

    #[test]
    fn schedules_follow_the_time_zone() {
        let Ok(tz) = time_zone(Some("America/New_York")) else {
            return; // no zoneinfo on this machine
        };
        let schedule = Schedule::parse("0 9 * * *").unwrap();
        // 09:00 EDT is 13:00 UTC.
        assert_eq!(
            schedule
                .next_after(at("2024-07-01T00:00:00Z"), &tz)
                .unwrap()
                .to_string(),
            "2024-07-01T13:00:00Z"
        );
        assert!(time_zone(Some("../etc/passwd")).is_err());
        assert!(time_zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn missed_runs_count_every_due_time_and_keep_the_latest() {
        let schedule = Schedule::parse("*/10 * * * *").unwrap();
        let (count, latest) = missed_runs(
            &schedule,
            &TimeZone::UTC,
            at("2024-05-01T10:00:00Z"),
            at("2024-05-01T10:35:00Z"),
        );
        assert_eq!(count, 3);
        assert_eq!(latest, Some(at("2024-05-01T10:30:00Z")));
    }

    #[test]
    fn job_names_use_minutes_since_the_epoch() {
        assert_eq!(
            job_name("backup", at("2024-05-01T10:30:00Z")),
            "backup-28575990"
        );
    }
}
