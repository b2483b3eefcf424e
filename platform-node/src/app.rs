//! Building and running the platform node: bind, open the database, wire the services, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use shared::clock::Clock;
use shared::fault::Faults;
use shared::files::FileStore;
use shared::grpc::BoundServer;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::Platform;
use crate::grpc::{self, BankClient, BankFilesClient};
use crate::store::Store;

/// A platform node, bound and ready to serve.
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
        let faults = Faults::default();
        let bank = BankClient::new(&config.bank_url, config.peer_timeout_ms, faults.clone())?;
        let bank_files = BankFilesClient::new(&config.bank_url, faults.clone())?;
        let files = FileStore::open(config.files_dir()).with_context(|| {
            format!(
                "cannot open the file store {}",
                config.files_dir().display()
            )
        })?;
        let platform = Platform::new(
            store.clone(),
            clock,
            Arc::new(bank),
            Arc::new(bank_files),
            faults,
            files,
        );
        let router = grpc::router(platform).await?;
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
        let result = self.server.serve("platform", shutdown).await;
        self.store.close().await;
        result
    }
}
