#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Join/leave churn: 100 endpoints come and go and leave no link behind; prints the CPU one
//! join+leave costs (this binary has one test, so the process's CPU time is its own).

mod link_support;

use std::time::Instant;

use berth_network::driver::{BridgeDriver, NetworkDriver};
use berth_network::netlink::Netlink;
use link_support::{endpoint, network, TestNs};

/// (user, system) CPU of the whole process, in microseconds.
fn cpu_micros() -> (u64, u64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer it is given.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

fn sub(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 - b.0, a.1 - b.1)
}

fn add(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 + b.0, a.1 + b.1)
}

#[test]
fn join_leave_100_times_leaves_no_links() {
    const N: usize = 100;
    let host = TestNs::new("churn-host");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network("eeeeeeeeeeeeeeee", &[("10.217.0.0/24", None)], &[]);
    driver.create(&net).unwrap();
    let containers: Vec<TestNs> = (0..N).map(|i| TestNs::new(&format!("churn-c{i}"))).collect();

    let (mut join_cpu, mut leave_cpu) = ((0, 0), (0, 0));
    let (mut join_wall, mut leave_wall) = (0, 0);
    for (i, c) in containers.iter().enumerate() {
        let addr = format!("10.217.0.{}/24", i + 2);
        let ep = endpoint(&net, &format!("container-{i}"), &[&addr], &["10.217.0.1"]);
        let (cpu0, t0) = (cpu_micros(), Instant::now());
        driver.join(&net, &ep, &c.ns).unwrap();
        let (cpu1, t1) = (cpu_micros(), Instant::now());
        driver.leave(&net, &ep).unwrap();
        join_cpu = add(join_cpu, sub(cpu1, cpu0));
        leave_cpu = add(leave_cpu, sub(cpu_micros(), cpu1));
        join_wall += (t1 - t0).as_micros();
        leave_wall += t1.elapsed().as_micros();
    }
    println!(
        "per endpoint: join {} us user + {} us sys / {} us wall, leave {} us user + {} us sys / {} us \
         wall (CPU of the whole process)",
        join_cpu.0 / N as u64,
        join_cpu.1 / N as u64,
        join_wall / N as u128,
        leave_cpu.0 / N as u64,
        leave_cpu.1 / N as u64,
        leave_wall / N as u128,
    );

    let hnl = Netlink::open_in(&host.ns).unwrap();
    let names: Vec<String> = hnl.links("").unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("veth") || n.starts_with("bvp"))
            .count(),
        0,
        "{names:?}"
    );
    for c in &containers {
        let nl = Netlink::open_in(&c.ns).unwrap();
        assert!(nl.link("eth0").unwrap().is_none());
    }
    driver.delete(&net).unwrap();
}
