//! clusterList.

use anyhow::Result;

use super::{admin, Command};
use crate::args::Flags;

pub const CLUSTER_LIST: Command = Command {
    name: "clusterList",
    summary: "List cluster infos",
    flags: &[],
    run: |f| Box::pin(cluster_list(f)),
};

async fn cluster_list(f: Flags) -> Result<()> {
    let admin = admin(&f).await?;
    let info = admin.cluster_info().await?;
    println!(
        "{:<22} {:<22} {:<4} {:<24}",
        "#Cluster Name", "#Broker Name", "#BID", "#Addr"
    );
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            if let Some(broker) = info.broker_addr_table.get(name) {
                for (id, addr) in &broker.broker_addrs {
                    println!("{cluster:<22} {name:<22} {id:<4} {addr:<24}");
                }
            }
        }
    }
    admin.shutdown().await;
    Ok(())
}
