//! The instance's send path against a recording server: with credentials
//! every request arrives signed, without them unsigned.

use std::sync::{Arc, Mutex};

use mq_protocol::acl;
use mq_protocol::header::TopicHeader;
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::{Channel, HandlerError, RequestHandler};
use tokio::net::TcpListener;

use super::ClientInstance;
use crate::config::ClientConfig;
use crate::credentials::Credentials;

/// Keeps every request and answers SUCCESS.
#[derive(Default)]
struct Recorder(Mutex<Vec<RemotingCommand>>);

#[mq_remoting::async_trait]
impl RequestHandler for Recorder {
    async fn handle(
        &self,
        _channel: &Channel,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, HandlerError> {
        let response = RemotingCommand::response_to(&request, ResponseCode::SUCCESS);
        self.0.lock().unwrap().push(request);
        Ok(Some(response))
    }
}

/// A recording server on port 0 and its address.
async fn recording_server() -> (Arc<Recorder>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let recorder = Arc::new(Recorder::default());
    tokio::spawn(mq_remoting::serve(
        listener,
        recorder.clone(),
        std::future::pending::<()>(),
    ));
    (recorder, addr)
}

/// One name server request, one broker request and one oneway request
/// through an instance with `credentials`; what the server received.
async fn send_through(credentials: Option<Credentials>, instance: &str) -> Vec<RemotingCommand> {
    let (recorder, addr) = recording_server().await;
    let config = ClientConfig::new(addr.clone())
        .with_instance_name(instance)
        .with_credentials(credentials);
    let instance = ClientInstance::acquire(&config).unwrap();
    let header = TopicHeader {
        topic: "SignedTopic".into(),
    };
    let request = || {
        RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC)
            .with_header(&header)
            .with_body(&b"the body is signed too"[..])
    };
    instance.invoke_namesrv(request()).await.unwrap();
    instance.invoke(&addr, request()).await.unwrap();
    instance
        .invoke_oneway(&addr, request().oneway())
        .await
        .unwrap();
    // The oneway request has no answer to wait for.
    for _ in 0..100 {
        if recorder.0.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    instance.release();
    let received = recorder.0.lock().unwrap().clone();
    received
}

#[tokio::test]
async fn every_request_is_signed_with_the_configured_keys() {
    let credentials = Credentials::new("RocketMQ", "12345678").with_security_token("tok");
    let received = send_through(Some(credentials), "signed-send-path").await;
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.field(acl::ACCESS_KEY), Some("RocketMQ"));
        assert_eq!(request.field(acl::SECURITY_TOKEN), Some("tok"));
        assert_eq!(request.field("topic"), Some("SignedTopic"));
        assert!(acl::verify_request(request, "12345678"), "{request:?}");
        assert!(!acl::verify_request(request, "87654321"));
    }
}

#[tokio::test]
async fn without_keys_nothing_is_added() {
    let received = send_through(None, "unsigned-send-path").await;
    for request in &received {
        assert_eq!(request.field(acl::ACCESS_KEY), None);
        assert_eq!(request.field(acl::SIGNATURE), None);
    }
}
