//! Issue 14 part 5 against the name server, with hand-written frames:
//! UPDATE_NAMESRV_CONFIG accepts only run-time keys with one-line values in
//! range; a refused body changes nothing and the server keeps answering.

use std::time::Duration;

use mq_namesrv::NamesrvConfig;
use mq_protocol::{request_code as rc, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig, RemotingClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(10);

/// A name server on a loopback port; stops when the sender is dropped.
async fn start(dir: &std::path::Path) -> (String, oneshot::Sender<()>) {
    let config = NamesrvConfig {
        kv_config_path: dir.join("kvConfig.json"),
        config_store_path: dir.join("namesrv.properties"),
        ..NamesrvConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = mq_namesrv::run(listener, config, async move {
            let _ = stopped.await;
        })
        .await;
    });
    (addr, stop)
}

async fn update(client: &RemotingClient, addr: &str, body: &str) -> RemotingCommand {
    let request =
        RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG).with_body(body.as_bytes().to_vec());
    client.invoke(addr, request, T).await.unwrap()
}

async fn config_text(client: &RemotingClient, addr: &str) -> String {
    let request = RemotingCommand::request(rc::GET_NAMESRV_CONFIG);
    let answer = client.invoke(addr, request, T).await.unwrap();
    String::from_utf8(answer.body.to_vec()).unwrap()
}

#[tokio::test]
async fn only_run_time_keys_with_one_line_values_in_range_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = start(dir.path()).await;
    let client = RemotingClient::new(ClientConfig::default());
    let before = config_text(&client, &addr).await;

    // The escaped `\n` becomes a newline in the value: a second line that
    // would read as kvConfigPath to anyone parsing the configuration.
    let evil = dir.path().join("evil").display().to_string();
    for (body, expected, why) in [
        (
            format!("productEnvName=x\\nkvConfigPath={evil}"),
            ResponseCode::INVALID_PARAMETER,
            "control character",
        ),
        (
            format!("kvConfigPath={evil}"),
            ResponseCode::NO_PERMISSION,
            "black list",
        ),
        (
            "rocketmqHome=/".to_owned(),
            ResponseCode::NO_PERMISSION,
            "black list",
        ),
        (
            "listenPort=1".to_owned(),
            ResponseCode::INVALID_PARAMETER,
            "listenPort",
        ),
        (
            "bindAddress=0.0.0.0".to_owned(),
            ResponseCode::INVALID_PARAMETER,
            "bindAddress",
        ),
        (
            "frameMaxLength=2147483647".to_owned(),
            ResponseCode::INVALID_PARAMETER,
            "frameMaxLength",
        ),
        (
            "scanNotActiveBrokerInterval=1".to_owned(),
            ResponseCode::INVALID_PARAMETER,
            "scanNotActiveBrokerInterval",
        ),
        (
            // One bad key refuses the whole body.
            "orderMessageEnable=true\nlistenPort=1".to_owned(),
            ResponseCode::INVALID_PARAMETER,
            "listenPort",
        ),
    ] {
        let answer = update(&client, &addr, &body).await;
        assert_eq!(answer.response_code(), Some(expected), "{body:?}");
        let remark = answer.remark.unwrap_or_default();
        assert!(remark.contains(why), "{body:?}: {remark}");
        assert_eq!(
            config_text(&client, &addr).await,
            before,
            "{body:?} changed nothing"
        );
    }
    assert!(!dir.path().join("evil").exists());

    let answer = update(
        &client,
        &addr,
        "orderMessageEnable=true\nproductEnvName=test",
    )
    .await;
    assert_eq!(answer.response_code(), Some(ResponseCode::SUCCESS));
    let after = config_text(&client, &addr).await;
    assert!(after.contains("orderMessageEnable=true\n"), "{after}");
    assert!(after.contains("productEnvName=test\n"), "{after}");
}
