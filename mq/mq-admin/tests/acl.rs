//! `mqadmin` and the quickstart producer against a broker (and a name
//! server) with `aclEnable=true`: with the operator's keys (from the environment or from
//! `$ROCKETMQ_HOME/conf/tools.yml`) they work; without keys or with a wrong
//! secret the broker answers NO_PERMISSION and the tool fails with it.

mod common;

use std::path::Path;

use common::Out;
use mq_testkit::{NameServer, TestBroker};

const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: mqadmin-operator
    secretKey: operator-secret
    admin: true
";

/// Where the tool finds its keys in one run.
enum Keys<'a> {
    None,
    Env(&'a str, &'a str),
    Home(&'a Path),
}

/// Runs `bin` with `args` and only the key source `keys` (whatever the
/// test's own environment holds).
async fn run(bin: &str, args: &[&str], keys: Keys<'_>) -> Out {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args)
        .env_remove("NAMESRV_ADDR")
        .env_remove("ROCKETMQ_HOME")
        .env_remove("ROCKETMQ_ACCESS_KEY")
        .env_remove("ROCKETMQ_SECRET_KEY")
        .env_remove("ROCKETMQ_SECURITY_TOKEN");
    match keys {
        Keys::None => {}
        Keys::Env(access, secret) => {
            cmd.env("ROCKETMQ_ACCESS_KEY", access)
                .env("ROCKETMQ_SECRET_KEY", secret);
        }
        Keys::Home(home) => {
            cmd.env("ROCKETMQ_HOME", home);
        }
    }
    let out = cmd.output().await.expect("the tool runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn mqadmin(args: &[&str], keys: Keys<'_>) -> Out {
    run(env!("CARGO_BIN_EXE_mqadmin"), args, keys).await
}

fn assert_refused(out: &Out, what: &str) {
    assert!(!out.ok, "{what} should fail:\n{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("NO_PERMISSION"),
        "{what} should name NO_PERMISSION:\n{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_with_and_without_keys() {
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_file = acl_file.display().to_string();
    let mut broker = TestBroker::start_temp("broker-acl", &ns.addr, move |broker, _| {
        broker.acl_enable = true;
        broker.acl_file_path = acl_file;
    })
    .await;
    let create = |topic: &'static str| {
        let (ns, addr) = (ns.addr.clone(), broker.addr.clone());
        move |keys| async move {
            mqadmin(&["updateTopic", "-n", &ns, "-b", &addr, "-t", topic], keys).await
        }
    };

    assert_refused(
        &create("AclNoKeys")(Keys::None).await,
        "updateTopic without keys",
    );
    assert_refused(
        &create("AclWrongSecret")(Keys::Env("mqadmin-operator", "wrong")).await,
        "updateTopic with a wrong secret",
    );

    let out = create("AclEnvKeys")(Keys::Env("mqadmin-operator", "operator-secret")).await;
    assert!(
        out.ok,
        "updateTopic with keys:\n{}{}",
        out.stdout, out.stderr
    );

    // RocketMQ's way: the keys in $ROCKETMQ_HOME/conf/tools.yml.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("conf")).unwrap();
    std::fs::write(
        home.path().join("conf/tools.yml"),
        "accessKey: mqadmin-operator\nsecretKey: operator-secret\n",
    )
    .unwrap();
    let out = create("AclToolsYml")(Keys::Home(home.path())).await;
    assert!(
        out.ok,
        "updateTopic with tools.yml:\n{}{}",
        out.stdout, out.stderr
    );

    // The quickstart producer signs the same way.
    let quickstart = |keys| {
        let ns = ns.addr.clone();
        async move {
            let args = ["-n", &ns, "-t", "AclEnvKeys", "-c", "1"];
            run(env!("CARGO_BIN_EXE_quickstart-producer"), &args, keys).await
        }
    };
    let out = quickstart(Keys::Home(home.path())).await;
    assert!(
        out.ok,
        "quickstart with keys:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("SEND_OK"), "{}", out.stdout);
    assert!(!quickstart(Keys::None).await.ok, "quickstart without keys");

    broker.stop().await;
}

/// The name server with ACL on: its admin requests (a KV update) need the
/// operator's signature, which mqadmin sends to name servers too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_signs_name_server_admin_requests() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_file = acl_file.display().to_string();
    let ns = NameServer::start_with(move |config| {
        config.acl_enable = true;
        config.acl_file_path = acl_file;
    })
    .await;
    let put = |keys| {
        let ns = ns.addr.clone();
        async move {
            let args = [
                "updateKvConfig",
                "-n",
                &ns,
                "-s",
                "acl",
                "-k",
                "k",
                "-v",
                "v",
            ];
            mqadmin(&args, keys).await
        }
    };
    assert_refused(&put(Keys::None).await, "updateKvConfig without keys");
    assert_refused(
        &put(Keys::Env("mqadmin-operator", "wrong")).await,
        "updateKvConfig with a wrong secret",
    );
    let out = put(Keys::Env("mqadmin-operator", "operator-secret")).await;
    assert!(
        out.ok,
        "updateKvConfig with keys:\n{}{}",
        out.stdout, out.stderr
    );
}

#[tokio::test]
async fn help_says_where_the_keys_come_from() {
    for args in [&[][..], &["help", "updateTopic"][..]] {
        let out = mqadmin(args, Keys::None).await;
        assert!(out.ok, "{}", out.stderr);
        for needle in [
            "ROCKETMQ_ACCESS_KEY",
            "ROCKETMQ_SECRET_KEY",
            "conf/tools.yml",
        ] {
            assert!(out.stdout.contains(needle), "{args:?}: {}", out.stdout);
        }
    }
}
