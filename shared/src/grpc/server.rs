//! A node's gRPC server: our limits and layers (trace, live feed, guard), health and
//! reflection, binding, serving until a shutdown signal.

use super::*;

/// The layers every node's server has: the trace layer, the live feed, then the guard.
pub type NodeLayers = Stack<guard::GuardLayer, Stack<feed::FeedLayer, Stack<TraceLayer, Identity>>>;

/// A node's router, with its layers.
pub type NodeRouter = Router<NodeLayers>;

/// A server builder for the node of ErrorInfo domain `domain`, with our limits, the trace layer, the live feed and `guard`; over TLS when
/// `tls` is given.
pub fn server(
    domain: &'static str,
    guard: guard::GuardLayer,
    feed: feed::FeedLayer,
    tls: Option<&TlsFiles>,
    transport: &transport::TransportArgs,
) -> anyhow::Result<Server<NodeLayers>> {
    let mut builder = Server::builder();
    if let Some(files) = tls {
        builder = builder
            .tls_config(guard::server_tls(files))
            .context("the server's TLS configuration")?;
    }
    Ok(builder
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .http2_keepalive_interval(Some(transport.keepalive()))
        .http2_keepalive_timeout(Some(transport.keepalive()))
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION_MAX)
        .layer(TraceLayer::new(domain))
        .layer(feed)
        .layer(guard))
}

/// `node`'s server ([`server`] with its guard as `security` turns it on, feeding its live feed,
/// within `transport`'s limits) and its feed's Watch service, already added. The node adds its
/// own services, then [`with_health_and_reflection`].
pub fn node_server<N: crate::node::Node>(
    node: &N,
    security: &Security,
    transport: &transport::TransportArgs,
) -> anyhow::Result<Router<NodeLayers>> {
    let f = node
        .faults()
        .feed()
        .cloned()
        .context("a node's fault rules carry its live feed")?;
    let guard = guard::GuardLayer::new(node, security);
    let mut server = server(
        N::DOMAIN,
        guard,
        feed::FeedLayer::new(f.clone()),
        security.tls.as_ref(),
        transport,
    )?;
    Ok(
        server.add_service(proto::sim::v1::feed_service_server::FeedServiceServer::new(
            feed::Watch(f),
        )),
    )
}

/// Adds health (every service `node` serves reported SERVING) and reflection listing them (see
/// [`reflection`]); the names come from the services table ([`services::served_by`]).
pub async fn with_health_and_reflection(
    router: NodeRouter,
    node: Institution,
) -> anyhow::Result<NodeRouter> {
    let service_names = &services::served_by(node);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    for name in service_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = reflection::Reflection::new(
        &[
            proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ],
        service_names,
    )?;
    Ok(router
        .add_service(health)
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha()))
}

/// Binds a node's listen address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// A node's gRPC server: bound and wired, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    addr: SocketAddr,
    router: NodeRouter,
    transport: transport::TransportArgs,
    metrics: crate::metrics::Metrics,
}

impl BoundServer {
    /// The server `router` will run on `listener`, holding its connections within `transport`'s
    /// limits (refusals counted in `metrics`).
    pub fn new(
        listener: TcpListener,
        router: NodeRouter,
        transport: &transport::TransportArgs,
        metrics: crate::metrics::Metrics,
    ) -> anyhow::Result<BoundServer> {
        Ok(BoundServer {
            addr: listener.local_addr()?,
            listener,
            router,
            transport: transport.clone(),
            metrics,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        node: &str,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "{node} node serving");
        let incoming = transport::Incoming::new(self.listener, &self.transport, self.metrics);
        self.router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        tracing::info!("{node} node stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
