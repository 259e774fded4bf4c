//! Accepts TCP connections and serves the application on each over HTTP/1.1, with what
//! `axum::serve` does not offer:
//!
//! - a **header-read timeout**: a client that has not sent a whole request head within the
//!   limit (a slowloris connection trickling bytes, or an idle keep-alive connection) is
//!   disconnected, so connections cannot be held open for free;
//! - the **client address** of every request (`ConnectInfo<SocketAddr>`), which rate-limits
//!   requests that carry no key;
//! - **graceful shutdown**: once the stop signal resolves no connection is accepted, idle
//!   connections close, and requests in flight finish before this returns.
//!
//! `serve` and the tests both serve through [`serve`].

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_service::Service;

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the requests in
/// flight. Errors accepting one connection (the process is out of file descriptors, the
/// client went away) are logged and do not stop the server.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    // Every connection's task holds a receiver: `closed` resolves once all have ended.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept a connection");
                // Out of file descriptors: give connections in flight a moment to close
                // instead of spinning on the same error.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses are written in one piece; Nagle's algorithm would only delay them.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service)
            // A websocket upgrade (graphql-transport-ws) takes the connection over; the live
            // hub, not this loop, closes those at shutdown.
            .with_upgrades();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stopping.changed() => {
                    // Finish the request in flight (if any), then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            // Dropping `stopping` tells the accept loop this connection is done.
            drop(stopping);
        });
    }
    drop(listener);
    drop(stopping_rx);
    let _ = stopping_tx.send(());
    stopping_tx.closed().await;
}
