//! The accept loop of `allerta serve`, with the limits of SPEC §13: `serve`
//! faces the gateway (and often the internet), so a stalled or hostile
//! client must not be able to exhaust it.
//!
//! - hyper's HTTP/1 builder with a timer closes a connection whose request
//!   head has not arrived within `header_read_timeout` (that also bounds
//!   idle keep-alive connections);
//! - tower-http bounds each request (`request_timeout`, then 408) and its
//!   body (`max_body_bytes`, then 413) on every route;
//! - a semaphore bounds the open connections: above `max_connections` a new
//!   one is accepted and closed at once, so the kernel backlog never fills
//!   and the stalled ones are ended by the timeouts while `/healthz` keeps
//!   answering.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::add_extension::AddExtension;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::config::ServeLimits;

/// How long requests in flight may take to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// The router with the per-request limits applied to every route.
pub fn limited(router: Router, limits: &ServeLimits) -> Router {
    router
        // axum's own default (2 MB) would otherwise apply to extractors
        // first; the layer below is the one limit.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.request_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// the requests in flight finish (for at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = limited(router, &limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many connections: refused");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The peer address for handlers that need it (the console's
        // login limit per address), as axum's `ConnectInfo`.
        let service = TowerToHyperService::new(AddExtension::new(
            router.clone(),
            axum::extract::ConnectInfo(peer),
        ));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN:?}: stopping anyway");
    }
    Ok(())
}
