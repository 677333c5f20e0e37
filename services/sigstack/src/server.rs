//! Binding listeners and serving routers until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

/// A service bound to its socket, ready to serve.
pub struct BoundService {
    pub name: &'static str,
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl BoundService {
    /// Binds `name` on `host:port` (port 0 picks a free one).
    pub async fn bind(name: &'static str, host: IpAddr, port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((host, port)).await.with_context(|| {
            format!("{name}: cannot listen on {host}:{port} (in use? pass --ephemeral-ports or another port)")
        })?;
        let addr = listener.local_addr()?;
        Ok(BoundService { name, listener, addr })
    }

    pub fn url(&self) -> String {
        match self.addr.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", self.addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", self.addr.port()),
        }
    }
}

/// Serves every `(service, router)` pair until a shutdown signal, then drains them.
pub async fn serve_all(services: Vec<(BoundService, Router)>) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (service, router) in services {
        let mut stop = stop_rx.clone();
        let name = service.name;
        tasks.spawn(async move {
            axum::serve(service.listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
                .with_context(|| format!("{name} server failed"))
        });
    }
    tokio::select! {
        () = shutdown_signal() => {}
        Some(result) = tasks.join_next() => {
            // A server ended on its own: that is an error, stop the others too.
            let _ = stop_tx.send(true);
            result??;
            anyhow::bail!("a server stopped unexpectedly");
        }
    }
    eprintln!("sigstack: shutting down");
    let _ = stop_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
