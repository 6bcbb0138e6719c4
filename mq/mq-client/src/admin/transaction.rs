//! Half messages a broker still waits on an outcome for.

use mq_protocol::admin_body::HalfStatus;
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::Result;

impl AdminClient {
    /// GET_TRANSACTION_HALF_STATUS (ours): at most `max` pending half
    /// messages of the broker at `addr`, oldest first, with their check counts.
    pub async fn transaction_half_status(&self, addr: &str, max: usize) -> Result<HalfStatus> {
        let request = RemotingCommand::request(request_code::GET_TRANSACTION_HALF_STATUS)
            .with_field("max", max);
        let response = self.call_broker(addr, request).await?;
        Ok(serde_json::from_slice(&response.body)?)
    }
}
