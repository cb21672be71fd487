//! Two servers sharing one etcd: only one controller manager and one
//! scheduler act at a time (each elects a leader through its Lease in
//! kube-system), and killing the leaders' server moves leadership to the
//! other within about a lease duration (15 s).

mod support;

use std::time::{Duration, Instant};

use storage::testing::EtcdProcess;
use support::{json, Server};

fn start_etcd() -> EtcdProcess {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(EtcdProcess::start(None))
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
}

const LEASES: [&str; 2] = ["kube-controller-manager", "kube-scheduler"];

/// How many times this server's log says it became leader of `lease`.
fn terms(server: &Server, lease: &str) -> usize {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains("became leader") && l.contains(&format!("lease={lease}")))
        .count()
}

fn holder(server: &Server, lease: &str) -> String {
    let out = server.kubectl(
        "1.33",
        &["get", "lease", lease, "-n", "kube-system", "-o", "json"],
    );
    if !out.status.success() {
        return String::new();
    }
    json(&String::from_utf8_lossy(&out.stdout))["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn only_one_server_leads_and_leadership_moves_when_it_dies() {
    let etcd = start_etcd();
    let endpoint = format!(
        "--datastore-endpoint={}",
        etcd.client_config().endpoints.join(",")
    );
    let mut a = Server::start(&[&endpoint]);
    let mut b = Server::start(&[&endpoint]);

    let deadline = Instant::now() + Duration::from_secs(60);
    while LEASES.iter().any(|l| holder(&a, l).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "no leader elected:\n{}",
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Give the loser a few renewal periods to (wrongly) take over too.
    std::thread::sleep(Duration::from_secs(5));
    for lease in LEASES {
        assert_eq!(
            terms(&a, lease) + terms(&b, lease),
            1,
            "{lease}: exactly one leader\nA:\n{}\nB:\n{}",
            a.log_text(),
            b.log_text()
        );
    }
    assert_eq!(
        holder(&a, LEASES[0]),
        holder(&b, LEASES[0]),
        "both servers see one Lease"
    );

    // Kill the server that leads the controller manager.
    let a_leads = terms(&a, LEASES[0]) == 1;
    let (leader, survivor) = if a_leads {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let old_holder = holder(survivor, LEASES[0]);
    let scheduler_was_here = terms(leader, LEASES[1]) == 1;
    leader.kill9();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(40);
    while terms(survivor, LEASES[0]) == 0 {
        assert!(
            Instant::now() < deadline,
            "leadership did not move:\n{}",
            survivor.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let moved_after = killed.elapsed();
    let new_holder = holder(survivor, LEASES[0]);
    assert_ne!(new_holder, old_holder);
    if scheduler_was_here {
        let deadline = Instant::now() + Duration::from_secs(20);
        while terms(survivor, LEASES[1]) == 0 {
            assert!(Instant::now() < deadline, "the scheduler did not move");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let lease = json(&survivor.kubectl_ok(
        "1.33",
        &["get", "lease", LEASES[0], "-n", "kube-system", "-o", "json"],
    ));
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1,
        "{lease}"
    );
    // A lease lasts 15 s; the survivor notices within its 2 s retry period.
    assert!(
        moved_after < Duration::from_secs(25),
        "leadership took {moved_after:?} to move"
    );
    eprintln!("leadership moved {moved_after:?} after the leader was killed");
}
