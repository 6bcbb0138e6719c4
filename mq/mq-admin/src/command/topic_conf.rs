//! updateTopicPerm, updateOrderConf.

use anyhow::{anyhow, bail, Result};
use mq_client::TopicSpec;
use mq_protocol::route::{perm, NAMESPACE_ORDER_TOPIC_CONFIG};

use super::common::{admin, target_brokers, value, Command};
use crate::args::{FlagSpec, Flags};

const UPDATE_TOPIC_PERM_FLAGS: &[FlagSpec] = &[
    value(
        'b',
        "brokerAddr",
        "update topic perm on which broker",
        false,
    ),
    value(
        'c',
        "clusterName",
        "update topic perm on which cluster",
        false,
    ),
    value('t', "topic", "topic name", true),
    value(
        'p',
        "perm",
        "set topic's permission(2|4|6), intro[2:W; 4:R; 6:RW]",
        true,
    ),
];

pub const UPDATE_TOPIC_PERM: Command = Command {
    name: "updateTopicPerm",
    summary: "Update topic perm",
    flags: UPDATE_TOPIC_PERM_FLAGS,
    run: |f| Box::pin(update_topic_perm(f)),
};

async fn update_topic_perm(f: Flags) -> Result<()> {
    let topic = f.value('t')?.to_owned();
    let new_perm: i32 = f.number('p', 0)?;
    if ![2, 4, 6].contains(&new_perm) {
        bail!("option -p must be 2, 4 or 6, got {new_perm}");
    }
    let admin = admin(&f).await?;
    let result = async {
        for addr in target_brokers(&admin, &f).await? {
            let configs = admin.broker_topic_configs(&addr).await?;
            let config = configs
                .topic_config_table
                .get(&topic)
                .ok_or_else(|| anyhow!("topic {topic} does not exist on broker {addr}"))?;
            if config.perm == new_perm {
                println!(
                    "new perm equals to the old one on {addr} ({}), nothing to change",
                    perm::to_string(new_perm)
                );
                continue;
            }
            let spec = TopicSpec {
                perm: new_perm,
                order: config.order,
                ..TopicSpec::new(topic.clone())
                    .with_queues(config.read_queue_nums, config.write_queue_nums)
            };
            admin.create_topic(&addr, &spec).await?;
            println!(
                "update topic perm from {} to {} in {addr} success.",
                config.perm, new_perm
            );
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const UPDATE_ORDER_CONF_FLAGS: &[FlagSpec] = &[
    value('t', "topic", "topic name", true),
    value(
        'v',
        "orderConf",
        "set order conf [eg. brokerName1:num;brokerName2:num]",
        false,
    ),
    value('m', "method", "option type [eg. put|get|delete]", true),
];

pub const UPDATE_ORDER_CONF: Command = Command {
    name: "updateOrderConf",
    summary: "Create or update or delete order conf",
    flags: UPDATE_ORDER_CONF_FLAGS,
    run: |f| Box::pin(update_order_conf(f)),
};

/// Checks `brokerName:num;...`.
fn check_order_conf(conf: &str) -> Result<()> {
    for part in conf.split(';').filter(|p| !p.is_empty()) {
        let ok = part
            .split_once(':')
            .is_some_and(|(name, n)| !name.is_empty() && n.parse::<u32>().is_ok_and(|n| n > 0));
        if !ok {
            bail!("bad order conf {part:?}: expected brokerName:queueNum;...");
        }
    }
    Ok(())
}

async fn update_order_conf(f: Flags) -> Result<()> {
    let topic = f.value('t')?;
    let method = f.value('m')?;
    let admin = admin(&f).await?;
    let result = async {
        match method {
            "get" => {
                let conf = admin
                    .get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
                    .await?
                    .ok_or_else(|| anyhow!("topic {topic} has no order conf"))?;
                println!("get orderConf success. topic=[{topic}], orderConf=[{conf}]");
            }
            "put" => {
                let conf = f
                    .get('v')
                    .ok_or_else(|| anyhow!("-m put needs -v (brokerName:num;...)"))?;
                check_order_conf(conf)?;
                admin
                    .put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic, conf)
                    .await?;
                println!("update orderConf success. topic=[{topic}], orderConf=[{conf}]");
            }
            "delete" => {
                admin
                    .delete_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
                    .await?;
                println!("delete orderConf success. topic=[{topic}]");
            }
            other => bail!("option -m must be get, put or delete, got {other:?}"),
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::check_order_conf;

    #[test]
    fn order_conf_shape() {
        assert!(check_order_conf("broker-a:4;broker-b:4").is_ok());
        assert!(check_order_conf("broker-a").is_err());
        assert!(check_order_conf("broker-a:x").is_err());
        assert!(check_order_conf(":4").is_err());
    }
}
