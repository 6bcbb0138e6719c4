//! CPU cost of the plain ACL per send, without the network: the client's
//! signature of a producer's SEND_MESSAGE_V2 (the fields our producer sends,
//! a 1 KiB body) and the broker's [`Validator::check`] of it (account,
//! signature, PUB on the topic). Prints nanoseconds per request; compare
//! with the CPU time per message of a whole send (BENCHMARKS.md).
//!
//!   cargo run --release -p mq-acl --example acl_cost [-- iterations]

use std::hint::black_box;
use std::time::Instant;

use mq_acl::{Rules, Validator};
use mq_protocol::acl::{sign_request, Signer};
use mq_protocol::request_code as code;
use mq_protocol::RemotingCommand;

const ACCESS_KEY: &str = "bench-producer";
const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef";

fn send_request() -> RemotingCommand {
    let fields = [
        ("a", "please_rename_unique_group_name"),
        ("b", "BenchAclOn"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "3"),
        ("f", "0"),
        ("g", "1764633600000"),
        ("h", "0"),
        (
            "i",
            "UNIQ_KEY\u{1}7F0000010E6C1B2C3D4E5F60708090A0\u{2}WAIT\u{1}true\u{2}",
        ),
        ("j", "0"),
        ("k", "false"),
        ("m", "false"),
    ];
    let mut cmd = RemotingCommand::request(code::SEND_MESSAGE_V2).with_body(vec![b'x'; 1024]);
    for (k, v) in fields {
        cmd = cmd.with_field(k, v);
    }
    cmd
}

/// Nanoseconds per call of `f`, best of five rounds of `n`.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(200_000, |a| a.parse().expect("iterations"));
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("plain_acl.yml");
    std::fs::write(
        &path,
        format!(
            "accounts:\n  - accessKey: {ACCESS_KEY}\n    secretKey: {SECRET_KEY}\n    \
             defaultTopicPerm: DENY\n    topicPerms:\n      - BenchAclOn=PUB\n"
        ),
    )
    .expect("write the accounts file");
    let validator = Validator::load(Rules::Broker, &path).expect("accounts");
    let remote = "127.0.0.1".parse().expect("address");

    let unsigned = send_request();
    let clone = time(n, || {
        black_box(black_box(&unsigned).clone());
    });
    let sign_fresh = time(n, || {
        let mut cmd = black_box(&unsigned).clone();
        sign_request(&mut cmd, ACCESS_KEY, SECRET_KEY, None);
        black_box(cmd);
    }) - clone;
    let signer = Signer::new(ACCESS_KEY, SECRET_KEY, None);
    let sign = time(n, || {
        let mut cmd = black_box(&unsigned).clone();
        signer.sign(&mut cmd);
        black_box(cmd);
    }) - clone;
    let mut signed = unsigned.clone();
    sign_request(&mut signed, ACCESS_KEY, SECRET_KEY, None);
    let check = time(n, || {
        validator
            .check(remote, black_box(&signed))
            .expect("the request passes");
    });
    println!(
        "1 KiB SEND_MESSAGE_V2: sign {sign:.0} ns (keyed per request: {sign_fresh:.0} ns), \
         check {check:.0} ns, both {:.0} ns per request",
        sign + check
    );
}
