//! Clusters and brokers.

use mq_protocol::route::{decode_json, ClusterInfo};
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::{ClientError, Result};

impl AdminClient {
    /// GET_BROKER_CLUSTER_INFO.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let response = self
            .call_namesrv(RemotingCommand::request(
                request_code::GET_BROKER_CLUSTER_INFO,
            ))
            .await?;
        Ok(decode_json(&response.body)?)
    }

    /// The master address of every broker group of `cluster`.
    pub async fn cluster_masters(&self, cluster: &str) -> Result<Vec<String>> {
        let info = self.cluster_info().await?;
        let names = info
            .cluster_addr_table
            .get(cluster)
            .ok_or_else(|| ClientError::InvalidArgument(format!("no cluster named {cluster}")))?;
        Ok(names
            .iter()
            .filter_map(|name| info.broker_addr_table.get(name))
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect())
    }
}
