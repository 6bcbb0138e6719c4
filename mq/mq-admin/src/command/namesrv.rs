//! updateKvConfig, deleteKvConfig, getNamesrvConfig, updateNamesrvConfig.

use anyhow::{bail, Result};

use super::common::{admin, value, Command};
use crate::args::{FlagSpec, Flags};

const UPDATE_KV_FLAGS: &[FlagSpec] = &[
    value('s', "namespace", "set the namespace", true),
    value('k', "key", "set the key name", true),
    value('v', "value", "set the key value", true),
];

pub const UPDATE_KV_CONFIG: Command = Command {
    name: "updateKvConfig",
    summary: "Create or update KV config.",
    flags: UPDATE_KV_FLAGS,
    run: |f| Box::pin(update_kv_config(f)),
};

async fn update_kv_config(f: Flags) -> Result<()> {
    let (namespace, key, value) = (f.value('s')?, f.value('k')?, f.value('v')?);
    let admin = admin(&f).await?;
    let result = admin.put_kv_config(namespace, key, value).await;
    admin.shutdown().await;
    result?;
    println!("update kv config in namespace success.");
    Ok(())
}

const DELETE_KV_FLAGS: &[FlagSpec] = &[
    value('s', "namespace", "set the namespace", true),
    value('k', "key", "set the key name", true),
];

pub const DELETE_KV_CONFIG: Command = Command {
    name: "deleteKvConfig",
    summary: "Delete KV config.",
    flags: DELETE_KV_FLAGS,
    run: |f| Box::pin(delete_kv_config(f)),
};

async fn delete_kv_config(f: Flags) -> Result<()> {
    let (namespace, key) = (f.value('s')?, f.value('k')?);
    let admin = admin(&f).await?;
    let result = admin.delete_kv_config(namespace, key).await;
    admin.shutdown().await;
    result?;
    println!("delete kv config from namespace success.");
    Ok(())
}

pub const GET_NAMESRV_CONFIG: Command = Command {
    name: "getNamesrvConfig",
    summary: "Get configs of name server.",
    flags: &[],
    run: |f| Box::pin(get_namesrv_config(f)),
};

async fn get_namesrv_config(f: Flags) -> Result<()> {
    let admin = admin(&f).await?;
    let result = async {
        for addr in admin.namesrv_addrs()? {
            let config = admin.namesrv_config(&addr).await?;
            println!("============{addr}============");
            for (key, value) in config {
                println!("{key:<50}=  {value}");
            }
        }
        Ok(())
    }
    .await;
    admin.shutdown().await;
    result
}

const UPDATE_NAMESRV_FLAGS: &[FlagSpec] = &[
    value('k', "key", "config key", true),
    value('v', "value", "config value", true),
];

pub const UPDATE_NAMESRV_CONFIG: Command = Command {
    name: "updateNamesrvConfig",
    summary: "Update configs of name server.",
    flags: UPDATE_NAMESRV_FLAGS,
    run: |f| Box::pin(update_namesrv_config(f)),
};

async fn update_namesrv_config(f: Flags) -> Result<()> {
    let entry = (
        f.value('k')?.trim().to_owned(),
        f.value('v')?.trim().to_owned(),
    );
    if entry.0.is_empty() || entry.0.contains(['=', '\n']) || entry.1.contains('\n') {
        bail!("bad key or value: {}={}", entry.0, entry.1);
    }
    let admin = admin(&f).await?;
    let result = async {
        admin
            .update_namesrv_config(std::slice::from_ref(&entry))
            .await?;
        Ok::<_, anyhow::Error>(admin.namesrv_addrs()?)
    }
    .await;
    admin.shutdown().await;
    println!("update name server config success!{:?}", result?);
    Ok(())
}
