//! `shop-gateway`: the fake payment gateway's binary. Everything is in the
//! library; `shop_common::service::main` reads `-c FILE` and the environment
//! and serves until Ctrl-C or SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_common::service::main(&shop_gateway::SERVICE).await
}
