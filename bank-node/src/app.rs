//! Building and running the bank node: bind, open the database, wire the services, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use shared::clock::Clock;
use shared::grpc::BoundServer;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::Bank;
use crate::grpc::{self, PlatformClient};
use crate::store::Store;

/// A bank node, bound and ready to serve.
pub struct Application {
    server: BoundServer,
    store: Store,
}

impl Application {
    /// Binds the listen address, opens and migrates the database, and wires the services.
    pub async fn build(config: &Config, clock: Clock) -> anyhow::Result<Application> {
        Self::build_on(shared::grpc::bind(config.listen).await?, config, clock).await
    }

    /// Like [`Application::build`] on a listener bound already (tests and `ibsim up` bind both
    /// nodes' ports first, so that each knows the other's address); `config.listen` is ignored.
    pub async fn build_on(
        listener: TcpListener,
        config: &Config,
        clock: Clock,
    ) -> anyhow::Result<Application> {
        let store = Store::connect(&config.database_url()?).await?;
        let platform = PlatformClient::new(&config.platform_url, config.peer_timeout_ms)?;
        let bank = Bank::new(store.clone(), clock, Arc::new(platform));
        let router = grpc::router(bank).await?;
        Ok(Application {
            server: BoundServer::new(listener, router)?,
            store,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let result = self.server.serve("bank", shutdown).await;
        self.store.close().await;
        result
    }
}
