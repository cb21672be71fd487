//! Command-line definition. Every flag can also be set by a
//! `RUSTKUBE_<FLAG>` environment variable or a key of the config file.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rustkube",
    version = concat!(env!("CARGO_PKG_VERSION"), " (Kubernetes v1.33.0)"),
    about = "A Kubernetes distribution in one binary",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane (API server, datastore, controller manager, scheduler)
    Server(Box<ServerArgs>),
    /// Run the controller manager alone, against the API server of a kubeconfig
    ControllerManager(ControllerManagerArgs),
    /// Run the scheduler alone, against the API server of a kubeconfig
    Scheduler(SchedulerArgs),
    /// Register simulated nodes that run their pods without containers (for tests and scale benchmarks)
    SimNodes(SimNodesArgs),
    /// Manage bootstrap tokens (for joining nodes)
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Kubeconfig of an administrator (default: the server's admin kubeconfig under --data-dir)
    #[arg(long, global = true, env = "RUSTKUBE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The server's data dir (default /var/lib/rustkube as root, ~/.rustkube otherwise)
    #[arg(short = 'd', long, global = true, env = "RUSTKUBE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Create a bootstrap token and print it in the join form K10<ca-hash>::<id>.<secret>
    Create {
        /// The token to create (default: a random one)
        token: Option<String>,
        /// How long the token is valid, like 24h or 30m (0: forever)
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Extra groups, each starting with system:bootstrappers:
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "system:bootstrappers:rustkube:default-node-token"
        )]
        groups: Vec<String>,
        /// A human-readable description
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List bootstrap tokens
    List,
    /// Delete bootstrap tokens (by id, token or join token)
    Delete {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

/// How a client component finds the API server and whether it competes
/// for leadership.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Kubeconfig with the API server and this component's credentials
    #[arg(long, env = "RUSTKUBE_KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// Elect a leader through a Lease in kube-system before doing any work
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Log format: text or json
    #[arg(long, env = "RUSTKUBE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Debug logging
    #[arg(long, env = "RUSTKUBE_DEBUG")]
    pub debug: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ControllerManagerArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Pod network nodes get their podCIDR from
    #[arg(long, default_value = "10.42.0.0/16", value_parser = parse_cidr)]
    pub cluster_cidr: Cidr,

    /// Seconds without a heartbeat before a node is marked NotReady
    #[arg(long, default_value_t = 40)]
    pub node_monitor_grace_period: u64,

    /// File with the cluster CA (published as kube-root-ca.crt in every namespace)
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,

    /// CA certificate the kube-apiserver-client(-kubelet) signers issue with
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,

    /// Key of --cluster-signing-cert-file
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,

    /// CA certificate the kubelet-serving signer issues with (default: --cluster-signing-cert-file)
    #[arg(long, requires = "cluster_signing_kubelet_serving_key_file")]
    pub cluster_signing_kubelet_serving_cert_file: Option<PathBuf>,

    /// Key of --cluster-signing-kubelet-serving-cert-file
    #[arg(long, requires = "cluster_signing_kubelet_serving_cert_file")]
    pub cluster_signing_kubelet_serving_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1)
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SimNodesArgs {
    /// Kubeconfig with the API server and credentials allowed to manage nodes and pods
    #[arg(long, env = "RUSTKUBE_KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// How many nodes to simulate
    #[arg(long, default_value_t = 1)]
    pub count: usize,

    /// Node names are <prefix><index>
    #[arg(long, default_value = "sim-node-")]
    pub name_prefix: String,

    /// Index of the first node
    #[arg(long, default_value_t = 0)]
    pub start_index: usize,

    /// CPU capacity of each node
    #[arg(long, default_value = "4")]
    pub cpu: String,

    /// Memory capacity of each node
    #[arg(long, default_value = "16Gi")]
    pub memory: String,

    /// Pod capacity of each node
    #[arg(long, default_value_t = 110)]
    pub pods: u32,

    /// Extra node labels, k=v[,k=v...]
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Zones assigned round-robin as topology.kubernetes.io/zone
    #[arg(long, value_delimiter = ',')]
    pub zones: Vec<String>,

    /// Seconds between Lease renewals of each node
    #[arg(long, default_value_t = 10.0)]
    pub lease_renew_interval: f64,

    /// Seconds between node status updates
    #[arg(long, default_value_t = 60.0)]
    pub status_update_interval: f64,

    /// Seconds a pod with restartPolicy Never or OnFailure runs before it succeeds
    #[arg(long, default_value_t = 1.0)]
    pub job_run_seconds: f64,

    /// Log format: text or json
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Debug logging
    #[arg(long)]
    pub debug: bool,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not a label like key=value"))
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Config file (YAML; keys are flag names)
    #[arg(
        short = 'c',
        long,
        env = "RUSTKUBE_CONFIG",
        default_value = "/etc/rustkube/config.yaml"
    )]
    pub config: PathBuf,

    /// Folder for state (default /var/lib/rustkube as root, ~/.rustkube otherwise)
    #[arg(short = 'd', long, env = "RUSTKUBE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address the API server listens on
    #[arg(long, env = "RUSTKUBE_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Address advertised to clients and members of the cluster (default: the host's primary address, else 127.0.0.1)
    #[arg(long, env = "RUSTKUBE_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,

    /// HTTPS port of the API server
    #[arg(long, env = "RUSTKUBE_HTTPS_LISTEN_PORT", default_value_t = 6443)]
    pub https_listen_port: u16,

    /// Extra host name or IP for the serving certificate (repeatable)
    #[arg(long, env = "RUSTKUBE_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// Where to write the admin kubeconfig (default /etc/rustkube/rustkube.yaml as root)
    #[arg(short = 'o', long, env = "RUSTKUBE_WRITE_KUBECONFIG")]
    pub write_kubeconfig: Option<PathBuf>,

    /// File mode of the written kubeconfig, in octal
    #[arg(long, env = "RUSTKUBE_WRITE_KUBECONFIG_MODE", default_value = "0600", value_parser = parse_mode)]
    pub write_kubeconfig_mode: u32,

    /// Datastore: empty for embedded SQLite, or etcd endpoints http(s)://host:port[,...]
    #[arg(long, env = "RUSTKUBE_DATASTORE_ENDPOINT", default_value = "")]
    pub datastore_endpoint: String,

    /// CA file to verify the datastore's certificate
    #[arg(long, env = "RUSTKUBE_DATASTORE_CAFILE")]
    pub datastore_cafile: Option<PathBuf>,

    /// Client certificate for the datastore
    #[arg(long, env = "RUSTKUBE_DATASTORE_CERTFILE")]
    pub datastore_certfile: Option<PathBuf>,

    /// Client key for the datastore
    #[arg(long, env = "RUSTKUBE_DATASTORE_KEYFILE")]
    pub datastore_keyfile: Option<PathBuf>,

    /// Pod network (a /24 per node is carved out of it)
    #[arg(long, env = "RUSTKUBE_CLUSTER_CIDR", default_value = "10.42.0.0/16", value_parser = parse_cidr)]
    pub cluster_cidr: Cidr,

    /// Service network (ClusterIPs; the first address is the kubernetes Service)
    #[arg(long, env = "RUSTKUBE_SERVICE_CIDR", default_value = "10.43.0.0/16", value_parser = parse_cidr)]
    pub service_cidr: Cidr,

    /// Port range for NodePort services
    #[arg(long, env = "RUSTKUBE_SERVICE_NODE_PORT_RANGE", default_value = "30000-32767", value_parser = parse_port_range)]
    pub service_node_port_range: (u16, u16),

    /// ClusterIP of the cluster DNS service
    #[arg(long, env = "RUSTKUBE_CLUSTER_DNS", default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,

    /// Cluster domain
    #[arg(long, env = "RUSTKUBE_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = parse_domain)]
    pub cluster_domain: String,

    /// Static bearer tokens: a CSV file of token,user,uid,"group1,group2"
    #[arg(long, env = "RUSTKUBE_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,

    /// Authorizers in order: Node, RBAC, AlwaysAllow, AlwaysDeny (members of system:masters are always allowed)
    #[arg(long, env = "RUSTKUBE_AUTHORIZATION_MODE", default_value = "Node,RBAC")]
    pub authorization_mode: String,

    /// DEPRECATED, legacy: HTTP basic credentials, a CSV file of password,user,uid,"group1,group2"
    #[arg(long, env = "RUSTKUBE_BASIC_AUTH_FILE")]
    pub basic_auth_file: Option<PathBuf>,

    /// Serve requests without credentials as system:anonymous (they still need authorization)
    #[arg(long, env = "RUSTKUBE_ANONYMOUS_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,

    /// Audit policy (audit.k8s.io/v1 Policy, YAML); with --audit-log-path turns auditing on
    #[arg(long, env = "RUSTKUBE_AUDIT_POLICY_FILE", requires = "audit_log_path")]
    pub audit_policy_file: Option<PathBuf>,

    /// File the audit events are written to, one JSON object per line
    #[arg(long, env = "RUSTKUBE_AUDIT_LOG_PATH", requires = "audit_policy_file")]
    pub audit_log_path: Option<PathBuf>,

    /// Megabytes an audit log file may grow to before it is rotated (0: never)
    #[arg(long, env = "RUSTKUBE_AUDIT_LOG_MAXSIZE", default_value_t = 0)]
    pub audit_log_maxsize: u64,

    /// Rotated audit log files to keep (0: all)
    #[arg(long, env = "RUSTKUBE_AUDIT_LOG_MAXBACKUP", default_value_t = 0)]
    pub audit_log_maxbackup: usize,

    /// EncryptionConfiguration (apiserver.config.k8s.io/v1): which resources are encrypted at rest, and how
    #[arg(long, env = "RUSTKUBE_ENCRYPTION_PROVIDER_CONFIG")]
    pub encryption_provider_config: Option<PathBuf>,

    /// Do not run the controller manager in the server
    #[arg(long, env = "RUSTKUBE_DISABLE_CONTROLLER_MANAGER")]
    pub disable_controller_manager: bool,

    /// Do not run the scheduler in the server
    #[arg(long, env = "RUSTKUBE_DISABLE_SCHEDULER")]
    pub disable_scheduler: bool,

    /// KubeSchedulerConfiguration file for the scheduler the server runs
    #[arg(long, env = "RUSTKUBE_SCHEDULER_CONFIG")]
    pub scheduler_config: Option<PathBuf>,

    /// Seconds without a heartbeat before a node is marked NotReady
    #[arg(long, env = "RUSTKUBE_NODE_MONITOR_GRACE_PERIOD", default_value_t = 40)]
    pub node_monitor_grace_period: u64,

    /// Do not run the node agent alongside the server
    #[arg(long, env = "RUSTKUBE_DISABLE_AGENT")]
    pub disable_agent: bool,

    /// Log format: text or json
    #[arg(long, env = "RUSTKUBE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Debug logging
    #[arg(long, env = "RUSTKUBE_DEBUG")]
    pub debug: bool,
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// The network's first usable address (network address + 1).
    pub fn first_ip(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4).wrapping_add(1)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6).wrapping_add(1)).into()),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not in CIDR notation (address/prefix)"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("{prefix:?} is not a prefix length between 0 and {max}"))?;
    let cidr = Cidr { addr, prefix };
    if (cidr.addr.is_ipv4() && prefix > 30) || (!cidr.addr.is_ipv4() && prefix > 126) {
        return Err(format!("{s} is too small a network"));
    }
    Ok(cidr)
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} is not a port range like 30000-32767");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode like 0600"))
}

fn parse_domain(s: &str) -> Result<String, String> {
    if apimachinery::meta::dns1123_subdomain_errors(s).is_empty() {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a valid DNS domain"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_give_their_first_address() {
        let c = parse_cidr("10.43.0.0/16").unwrap();
        assert_eq!(c.first_ip().to_string(), "10.43.0.1");
        assert!(c.contains("10.43.200.1".parse().unwrap()));
        assert!(!c.contains("10.44.0.1".parse().unwrap()));
        assert!(parse_cidr("10.43.0.0").is_err());
        assert!(parse_cidr("10.43.0.0/33").is_err());
        assert!(parse_cidr("x/8").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert!(parse_mode("999").is_err());
    }
}
