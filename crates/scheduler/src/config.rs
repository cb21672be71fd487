//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): the file
//! format, its upstream defaults, and its resolution into [`Profile`]s --
//! which filter and score plugins run, with which weights and arguments.
//! Unknown fields and unknown plugin names are errors, as upstream's
//! strict decoding makes them.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::plugins::noderesources::{ScoringStrategy, StrategyType};
use crate::plugins::podtopologyspread::{system_default_constraints, DefaultConstraint};
use crate::plugins::*;
use crate::Error;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Filter plugins of the default profile, in upstream's order.
const DEFAULT_FILTERS: &[&str] = &[
    NODE_UNSCHEDULABLE,
    NODE_NAME,
    TAINT_TOLERATION,
    NODE_AFFINITY,
    NODE_PORTS,
    NODE_RESOURCES_FIT,
    POD_TOPOLOGY_SPREAD,
    INTER_POD_AFFINITY,
];

/// Score plugins of the default profile with upstream's weights.
const DEFAULT_SCORES: &[(&str, i64)] = &[
    (TAINT_TOLERATION, 3),
    (NODE_AFFINITY, 2),
    (NODE_RESOURCES_FIT, 1),
    (POD_TOPOLOGY_SPREAD, 2),
    (INTER_POD_AFFINITY, 2),
    (BALANCED_ALLOCATION, 1),
    (IMAGE_LOCALITY, 1),
];

/// Upstream plugins accepted in a configuration that have nothing to do
/// here (volumes, gates handled by the queue, binding done by the core).
const NO_OP_PLUGINS: &[&str] = &[
    "SchedulingGates",
    "PrioritySort",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
    "CinderLimits",
    "VolumeBinding",
    "VolumeZone",
    "DefaultBinder",
    "DynamicResources",
];

fn is_filter(name: &str) -> bool {
    DEFAULT_FILTERS.contains(&name)
}

fn is_score(name: &str) -> bool {
    DEFAULT_SCORES.iter().any(|(n, _)| *n == name)
}

/// Resolve a plugin name to the static name we use, or fail for unknown ones.
fn known(name: &str) -> Result<&'static str, Error> {
    DEFAULT_FILTERS
        .iter()
        .chain(DEFAULT_SCORES.iter().map(|(n, _)| n))
        .chain(NO_OP_PLUGINS.iter())
        .chain([DEFAULT_PREEMPTION].iter())
        .find(|n| **n == name)
        .copied()
        .ok_or_else(|| Error::Config(format!("plugin {name:?} does not exist")))
}

/// One scheduling profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub filters: Vec<&'static str>,
    pub scores: Vec<(&'static str, i64)>,
    pub preemption: bool,
    pub fit_strategy: ScoringStrategy,
    pub spread_defaults: Vec<DefaultConstraint>,
    pub spread_defaults_are_system: bool,
    pub hard_pod_affinity_weight: i64,
    pub min_candidate_nodes_percentage: i64,
    pub min_candidate_nodes_absolute: i64,
}

impl Profile {
    pub fn default_named(name: &str) -> Profile {
        Profile {
            scheduler_name: name.to_string(),
            percentage_of_nodes_to_score: None,
            filters: DEFAULT_FILTERS.to_vec(),
            scores: DEFAULT_SCORES.to_vec(),
            preemption: true,
            fit_strategy: ScoringStrategy::default(),
            spread_defaults: system_default_constraints(),
            spread_defaults_are_system: true,
            hard_pod_affinity_weight: 1,
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }

    pub fn filter_enabled(&self, name: &str) -> bool {
        self.filters.contains(&name)
    }

    pub fn score_weight(&self, name: &str) -> Option<i64> {
        self.scores
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| *w)
    }
}

/// The parsed configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub profiles: Vec<Profile>,
    /// 0 (or None) means adaptive, as upstream.
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profiles: vec![Profile::default_named(DEFAULT_SCHEDULER_NAME)],
            percentage_of_nodes_to_score: None,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    api_version: String,
    kind: String,
    parallelism: Option<i32>,
    leader_election: Option<Value>,
    client_connection: Option<Value>,
    health_z_bind_address: Option<Value>,
    metrics_bind_address: Option<Value>,
    enable_profiling: Option<bool>,
    enable_contention_profiling: Option<bool>,
    percentage_of_nodes_to_score: Option<i32>,
    pod_initial_backoff_seconds: Option<i64>,
    pod_max_backoff_seconds: Option<i64>,
    profiles: Option<Vec<RawProfile>>,
    extenders: Option<Vec<Value>>,
    delay_cacher_until_active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i32>,
    plugins: Option<RawPlugins>,
    plugin_config: Option<Vec<RawPluginConfig>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugins {
    pre_enqueue: Option<PluginSet>,
    queue_sort: Option<PluginSet>,
    pre_filter: Option<PluginSet>,
    filter: Option<PluginSet>,
    post_filter: Option<PluginSet>,
    pre_score: Option<PluginSet>,
    score: Option<PluginSet>,
    reserve: Option<PluginSet>,
    permit: Option<PluginSet>,
    pre_bind: Option<PluginSet>,
    bind: Option<PluginSet>,
    post_bind: Option<PluginSet>,
    multi_point: Option<PluginSet>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PluginSet {
    #[serde(default)]
    enabled: Vec<RawPlugin>,
    #[serde(default)]
    disabled: Vec<RawPlugin>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugin {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPluginConfig {
    name: String,
    args: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FitArgs {
    api_version: Option<String>,
    kind: Option<String>,
    ignored_resources: Option<Vec<String>>,
    ignored_resource_groups: Option<Vec<String>>,
    scoring_strategy: Option<RawStrategy>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStrategy {
    #[serde(rename = "type")]
    type_: Option<String>,
    resources: Option<Vec<RawPlugin>>,
    requested_to_capacity_ratio: Option<RawShapeHolder>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawShapeHolder {
    shape: Vec<RawShapePoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawShapePoint {
    utilization: i64,
    score: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpreadArgs {
    api_version: Option<String>,
    kind: Option<String>,
    default_constraints: Option<Vec<RawDefaultConstraint>>,
    defaulting_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDefaultConstraint {
    max_skew: i64,
    topology_key: String,
    when_unsatisfiable: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AffinityArgs {
    api_version: Option<String>,
    kind: Option<String>,
    hard_pod_affinity_weight: Option<i64>,
    ignore_preferred_terms_of_existing_pods: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreemptionArgs {
    api_version: Option<String>,
    kind: Option<String>,
    min_candidate_nodes_percentage: Option<i64>,
    min_candidate_nodes_absolute: Option<i64>,
}

fn args<T: serde::de::DeserializeOwned>(plugin: &str, v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Config(format!("pluginConfig {plugin}: {e}")))
}

fn check_percentage(p: Option<i32>, what: &str) -> Result<(), Error> {
    match p {
        Some(p) if !(0..=100).contains(&p) => Err(Error::Config(format!(
            "{what}percentageOfNodesToScore: {p}: not in valid range [0-100]"
        ))),
        _ => Ok(()),
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Config::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Config, Error> {
        let raw: RawConfig =
            serde_yaml::from_str(text).map_err(|e| Error::Config(format!("decoding: {e}")))?;
        if raw.api_version != "kubescheduler.config.k8s.io/v1" {
            return Err(Error::Config(format!(
                "apiVersion {:?} is not supported (want kubescheduler.config.k8s.io/v1)",
                raw.api_version
            )));
        }
        if raw.kind != "KubeSchedulerConfiguration" {
            return Err(Error::Config(format!(
                "kind {:?} is not KubeSchedulerConfiguration",
                raw.kind
            )));
        }
        if raw.extenders.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(Error::Config("extenders are not supported".into()));
        }
        let _ = (
            raw.parallelism,
            raw.leader_election,
            raw.client_connection,
            raw.health_z_bind_address,
            raw.metrics_bind_address,
            raw.enable_profiling,
            raw.enable_contention_profiling,
            raw.delay_cacher_until_active,
        );
        check_percentage(raw.percentage_of_nodes_to_score, "")?;
        let mut config = Config {
            percentage_of_nodes_to_score: raw.percentage_of_nodes_to_score,
            ..Config::default()
        };
        if let Some(s) = raw.pod_initial_backoff_seconds {
            config.pod_initial_backoff = Duration::from_secs(s.max(0) as u64);
        }
        if let Some(s) = raw.pod_max_backoff_seconds {
            config.pod_max_backoff = Duration::from_secs(s.max(0) as u64);
        }
        if config.pod_max_backoff < config.pod_initial_backoff {
            return Err(Error::Config(
                "podMaxBackoffSeconds must be at least podInitialBackoffSeconds".into(),
            ));
        }
        if let Some(profiles) = raw.profiles.filter(|p| !p.is_empty()) {
            config.profiles = profiles
                .into_iter()
                .enumerate()
                .map(|(i, p)| resolve_profile(i, p))
                .collect::<Result<_, _>>()?;
        }
        for (i, p) in config.profiles.iter().enumerate() {
            if config.profiles[..i]
                .iter()
                .any(|q| q.scheduler_name == p.scheduler_name)
            {
                return Err(Error::Config(format!(
                    "profiles[{i}].schedulerName: Duplicate value: {:?}",
                    p.scheduler_name
                )));
            }
        }
        Ok(config)
    }

    pub fn profile(&self, scheduler_name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.scheduler_name == scheduler_name)
    }
}

fn resolve_profile(index: usize, raw: RawProfile) -> Result<Profile, Error> {
    let name = raw
        .scheduler_name
        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
    check_percentage(
        raw.percentage_of_nodes_to_score,
        &format!("profiles[{index}]."),
    )?;
    let mut p = Profile::default_named(&name);
    p.percentage_of_nodes_to_score = raw.percentage_of_nodes_to_score;
    let plugins = raw.plugins.unwrap_or_default();

    if let Some(mp) = &plugins.multi_point {
        for d in &mp.disabled {
            if d.name == "*" {
                p.filters.clear();
                p.scores.clear();
                p.preemption = false;
            } else {
                let n = known(&d.name)?;
                p.filters.retain(|f| *f != n);
                p.scores.retain(|(s, _)| *s != n);
                if n == DEFAULT_PREEMPTION {
                    p.preemption = false;
                }
            }
        }
        for e in &mp.enabled {
            let n = known(&e.name)?;
            if is_filter(n) && !p.filters.contains(&n) {
                p.filters.push(n);
            }
            if is_score(n) {
                enable_score(&mut p, n, e.weight);
            }
            if n == DEFAULT_PREEMPTION {
                p.preemption = true;
            }
        }
    }
    if let Some(f) = &plugins.filter {
        for d in &f.disabled {
            if d.name == "*" {
                p.filters.clear();
            } else {
                let n = known(&d.name)?;
                p.filters.retain(|x| *x != n);
            }
        }
        for e in &f.enabled {
            let n = known(&e.name)?;
            if !is_filter(n) && !NO_OP_PLUGINS.contains(&n) {
                return Err(Error::Config(format!(
                    "plugin {n:?} does not extend filter"
                )));
            }
            if is_filter(n) && !p.filters.contains(&n) {
                p.filters.push(n);
            }
        }
    }
    if let Some(s) = &plugins.score {
        for d in &s.disabled {
            if d.name == "*" {
                p.scores.clear();
            } else {
                let n = known(&d.name)?;
                p.scores.retain(|(x, _)| *x != n);
            }
        }
        for e in &s.enabled {
            let n = known(&e.name)?;
            if !is_score(n) {
                return Err(Error::Config(format!("plugin {n:?} does not extend score")));
            }
            enable_score(&mut p, n, e.weight);
        }
    }
    if let Some(pf) = &plugins.post_filter {
        for d in &pf.disabled {
            if d.name == "*" || known(&d.name)? == DEFAULT_PREEMPTION {
                p.preemption = false;
            }
        }
        for e in &pf.enabled {
            if known(&e.name)? == DEFAULT_PREEMPTION {
                p.preemption = true;
            }
        }
    }
    // The remaining extension points only name plugins; check the names.
    for set in [
        &plugins.pre_enqueue,
        &plugins.queue_sort,
        &plugins.pre_filter,
        &plugins.pre_score,
        &plugins.reserve,
        &plugins.permit,
        &plugins.pre_bind,
        &plugins.bind,
        &plugins.post_bind,
    ]
    .into_iter()
    .flatten()
    {
        for x in set.enabled.iter().chain(&set.disabled) {
            if x.name != "*" {
                known(&x.name)?;
            }
        }
    }

    for pc in raw.plugin_config.into_iter().flatten() {
        let Some(v) = pc.args else { continue };
        match known(&pc.name)? {
            NODE_RESOURCES_FIT => {
                let a: FitArgs = args(&pc.name, v)?;
                let _ = (
                    a.api_version,
                    a.kind,
                    a.ignored_resources,
                    a.ignored_resource_groups,
                );
                if let Some(s) = a.scoring_strategy {
                    p.fit_strategy = resolve_strategy(s)?;
                }
            }
            POD_TOPOLOGY_SPREAD => {
                let a: SpreadArgs = args(&pc.name, v)?;
                let _ = (a.api_version, a.kind);
                match a.defaulting_type.as_deref().unwrap_or("System") {
                    "System" => {
                        if a.default_constraints
                            .as_ref()
                            .is_some_and(|c| !c.is_empty())
                        {
                            return Err(Error::Config(
                                "PodTopologySpread: defaultConstraints must be empty when defaultingType is System".into(),
                            ));
                        }
                    }
                    "List" => {
                        p.spread_defaults_are_system = false;
                        p.spread_defaults = a
                            .default_constraints
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| match c.when_unsatisfiable.as_str() {
                                "DoNotSchedule" | "ScheduleAnyway" if c.max_skew > 0 => {
                                    Ok(DefaultConstraint {
                                        max_skew: c.max_skew,
                                        topology_key: c.topology_key,
                                        do_not_schedule: c.when_unsatisfiable == "DoNotSchedule",
                                    })
                                }
                                _ => Err(Error::Config(format!(
                                    "PodTopologySpread: invalid default constraint (maxSkew {}, whenUnsatisfiable {:?})",
                                    c.max_skew, c.when_unsatisfiable
                                ))),
                            })
                            .collect::<Result<_, _>>()?;
                    }
                    other => {
                        return Err(Error::Config(format!(
                            "PodTopologySpread: defaultingType {other:?} is not System or List"
                        )))
                    }
                }
            }
            INTER_POD_AFFINITY => {
                let a: AffinityArgs = args(&pc.name, v)?;
                let _ = (
                    a.api_version,
                    a.kind,
                    a.ignore_preferred_terms_of_existing_pods,
                );
                if let Some(w) = a.hard_pod_affinity_weight {
                    if !(0..=100).contains(&w) {
                        return Err(Error::Config(format!(
                            "InterPodAffinity: hardPodAffinityWeight {w} not in [0-100]"
                        )));
                    }
                    p.hard_pod_affinity_weight = w;
                }
            }
            DEFAULT_PREEMPTION => {
                let a: PreemptionArgs = args(&pc.name, v)?;
                let _ = (a.api_version, a.kind);
                if let Some(x) = a.min_candidate_nodes_percentage {
                    p.min_candidate_nodes_percentage = x;
                }
                if let Some(x) = a.min_candidate_nodes_absolute {
                    p.min_candidate_nodes_absolute = x;
                }
            }
            NODE_AFFINITY if v.get("addedAffinity").is_some() => {
                return Err(Error::Config(
                    "NodeAffinity: addedAffinity is not supported".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(p)
}

fn enable_score(p: &mut Profile, n: &'static str, weight: Option<i64>) {
    let default = DEFAULT_SCORES
        .iter()
        .find(|(x, _)| *x == n)
        .map_or(1, |(_, w)| *w);
    let w = weight.filter(|w| *w > 0).unwrap_or(default);
    match p.scores.iter_mut().find(|(x, _)| *x == n) {
        Some(slot) => slot.1 = w,
        None => p.scores.push((n, w)),
    }
}

fn resolve_strategy(s: RawStrategy) -> Result<ScoringStrategy, Error> {
    let type_ = match s.type_.as_deref().unwrap_or("LeastAllocated") {
        "LeastAllocated" => StrategyType::LeastAllocated,
        "MostAllocated" => StrategyType::MostAllocated,
        "RequestedToCapacityRatio" => StrategyType::RequestedToCapacityRatio,
        other => {
            return Err(Error::Config(format!(
                "NodeResourcesFit: scoringStrategy.type {other:?} is not supported"
            )))
        }
    };
    let mut out = ScoringStrategy {
        type_,
        ..ScoringStrategy::default()
    };
    if let Some(resources) = s.resources {
        out.resources = resources
            .into_iter()
            .map(|r| (r.name, r.weight.filter(|w| *w > 0).unwrap_or(1)))
            .collect();
    }
    if type_ == StrategyType::RequestedToCapacityRatio {
        let shape = s
            .requested_to_capacity_ratio
            .map(|r| r.shape)
            .unwrap_or_default();
        if shape.is_empty() {
            return Err(Error::Config(
                "NodeResourcesFit: requestedToCapacityRatio.shape must not be empty".into(),
            ));
        }
        out.shape = shape
            .into_iter()
            .map(|p| (p.utilization, p.score))
            .collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_has_the_default_profile_with_upstream_weights() {
        let c = Config::default();
        let p = c.profile("default-scheduler").unwrap();
        assert_eq!(p.score_weight(TAINT_TOLERATION), Some(3));
        assert_eq!(p.score_weight(POD_TOPOLOGY_SPREAD), Some(2));
        assert_eq!(p.score_weight(NODE_RESOURCES_FIT), Some(1));
        assert!(p.preemption);
        assert_eq!(c.pod_initial_backoff, Duration::from_secs(1));
        assert_eq!(c.pod_max_backoff, Duration::from_secs(10));
    }

    #[test]
    fn profiles_plugins_weights_and_args_are_read() {
        let c = Config::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: NodeResourcesFit
        weight: 5
    postFilter:
      disabled:
      - name: "*"
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 2
  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
"#,
        )
        .unwrap();
        assert_eq!(c.percentage_of_nodes_to_score, Some(30));
        assert_eq!(c.profiles.len(), 2);
        let p = c.profile("bin-packer").unwrap();
        assert_eq!(p.score_weight(BALANCED_ALLOCATION), None);
        assert_eq!(p.score_weight(NODE_RESOURCES_FIT), Some(5));
        assert!(!p.preemption);
        assert_eq!(p.fit_strategy.type_, StrategyType::MostAllocated);
        assert_eq!(p.fit_strategy.resources, [("cpu".to_string(), 2)]);
        assert_eq!(p.spread_defaults.len(), 1);
        assert!(p.spread_defaults[0].do_not_schedule);
        assert!(!p.spread_defaults_are_system);
    }

    #[test]
    fn multi_point_disable_all_then_enable_some() {
        let c = Config::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: minimal
  plugins:
    multiPoint:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit}, {name: TaintToleration, weight: 7}]
"#,
        )
        .unwrap();
        let p = c.profile("minimal").unwrap();
        assert_eq!(p.filters, [NODE_RESOURCES_FIT, TAINT_TOLERATION]);
        assert_eq!(p.scores, [(NODE_RESOURCES_FIT, 1), (TAINT_TOLERATION, 7)]);
        assert!(!p.preemption);
    }

    #[test]
    fn unknown_fields_and_plugins_are_clear_errors() {
        let err = Config::from_yaml(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nbogus: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `bogus`"), "{err}");
        let err = Config::from_yaml(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n    score:\n      enabled: [{name: Nope}]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("plugin \"Nope\" does not exist"), "{err}");
        let err = Config::from_yaml(
            "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not supported"), "{err}");
        let err = Config::from_yaml(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {typo: 1}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `typo`"), "{err}");
    }

    #[test]
    fn config_is_read_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sched.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npodMaxBackoffSeconds: 20\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.pod_max_backoff, Duration::from_secs(20));
        assert!(Config::from_file(&dir.path().join("missing")).is_err());
    }
}
