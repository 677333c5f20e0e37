//! Binding listeners and serving routers until told to stop.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

/// A service bound to its socket, ready to serve.
pub struct BoundService {
    /// Its name in stack.json.
    pub name: &'static str,
    /// The bound socket.
    pub listener: TcpListener,
    /// Its address.
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

    /// `http://host:port`.
    pub fn url(&self) -> String {
        match self.addr.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", self.addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", self.addr.port()),
        }
    }
}

/// Servers running as tasks; stopped (and drained) with [`Servers::stop`], or aborted when dropped.
pub struct Servers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl Servers {
    /// Starts serving every `(service, router)` pair.
    pub fn spawn(services: Vec<(BoundService, Router)>) -> Servers {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for (service, router) in services {
            let mut stopped = stop_rx.clone();
            let name = service.name;
            tasks.spawn(async move {
                axum::serve(service.listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stopped| *stopped).await;
                    })
                    .await
                    .with_context(|| format!("{name} server failed"))
            });
        }
        Servers { stop, tasks }
    }

    /// Serves until `shutdown` resolves (or a server ends on its own, which is an error), then
    /// drains the servers.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = shutdown => {}
            Some(result) = self.tasks.join_next() => {
                let _ = self.stop.send(true);
                result??;
                anyhow::bail!("a server stopped unexpectedly");
            }
        }
        self.stop().await
    }

    /// Stops the servers gracefully and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            result??;
        }
        Ok(())
    }
}

/// Serves every `(service, router)` pair until Ctrl-C or SIGTERM, then drains them.
pub async fn serve_all(services: Vec<(BoundService, Router)>) -> anyhow::Result<()> {
    Servers::spawn(services).run_until(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
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
