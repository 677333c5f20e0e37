//! sigstack in containers, for tests that would rather run the stack in a container than as a
//! process: [`Sigstack::start`] runs the sigstack image (and a registry image beside it) through
//! the [`testcontainers`] crate and hands back the same [`Stack`] the in-process test kit gives —
//! the services' URLs, the trust files on the host's disk, a token minter, and the
//! build/sign/attest/verify helpers.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let stack = sigstack_testcontainers::Sigstack::default().start().await?;
//! let fulcio = stack.url("fulcio")?;
//! let trusted_root = stack.trust_dir().join("trusted_root.json");
//! let token = stack.token(&Default::default())?; // a GitHub Actions token of the stack's issuer
//! # let _ = (fulcio, trusted_root, token);
//! stack.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Both containers share the host's network namespace and bind loopback only: the URLs in the
//! trust files are the ones a client on the host uses, with no port mapping to rewrite. The state
//! directory is a host temporary directory mounted at the same path, so `stack.json`, the trust
//! files and the issuer's keys are real files here (the container runs as this user).

use std::time::Duration;

use anyhow::Context;
use sigstack::stack::StackDescription;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

pub use sigstack::testkit::{RekorVersions, Stack};

/// How the containers are made. `Default` takes `$SIGSTACK_IMAGE` (else `sigstack:latest`, what
/// `docker build -t sigstack .` makes) and `$SIGSTACK_REGISTRY_IMAGE` (else `registry:2`).
#[derive(Debug, Clone)]
pub struct Sigstack {
    image: String,
    registry_image: Option<String>,
    rekor: RekorVersions,
    startup_timeout: Duration,
}

impl Default for Sigstack {
    fn default() -> Self {
        Sigstack {
            image: std::env::var("SIGSTACK_IMAGE").unwrap_or_else(|_| "sigstack:latest".into()),
            registry_image: Some(std::env::var("SIGSTACK_REGISTRY_IMAGE").unwrap_or_else(|_| "registry:2".into())),
            rekor: RekorVersions::default(),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl Sigstack {
    /// The sigstack image (`NAME[:TAG]`).
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The registry image started beside it (`NAME[:TAG]`, distribution's layout: `registry:2`).
    pub fn with_registry_image(mut self, image: impl Into<String>) -> Self {
        self.registry_image = Some(image.into());
        self
    }

    /// No registry: only the Sigstore services.
    pub fn without_registry(mut self) -> Self {
        self.registry_image = None;
        self
    }

    /// Which transparency logs run (`sigstack up --rekor`).
    pub fn with_rekor(mut self, versions: RekorVersions) -> Self {
        self.rekor = versions;
        self
    }

    /// How long the containers may take to become ready (60 s by default).
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the registry (when asked) and `sigstack up` in containers; returns once the stack
    /// has written `stack.json`. Dropping the stack removes the containers and the directory.
    pub async fn start(self) -> anyhow::Result<Stack> {
        let temp = tempfile::Builder::new().prefix("sigstack-tc-").tempdir().context("a temporary state dir")?;
        let state_dir = temp.path().canonicalize().context("resolve the state dir")?;
        let state = state_dir.to_str().context("the temporary directory's path is not UTF-8")?.to_string();
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let user = unsafe { format!("{}:{}", libc::getuid(), libc::getgid()) };

        let mut registry = None;
        let mut args = vec!["up".to_string(), "--state-dir".into(), state.clone(), "--ephemeral-ports".into()];
        args.extend(["--rekor".to_string(), self.rekor.as_arg().to_string()]);
        match &self.registry_image {
            Some(image) => {
                let (name, tag) = split_image(image);
                // Debian's registry cannot report a port it chose itself, so the port is chosen
                // here; one taken between the choice and the bind is chosen again.
                let mut attempt = 1;
                let (container, address) = loop {
                    let address = free_loopback_address()?;
                    let started = GenericImage::new(name, tag)
                        .with_wait_for(WaitFor::message_on_stderr("listening on"))
                        .with_network("host")
                        .with_env_var("REGISTRY_HTTP_ADDR", &address)
                        .with_env_var("REGISTRY_STORAGE_DELETE_ENABLED", "true")
                        .with_startup_timeout(self.startup_timeout)
                        .start()
                        .await;
                    match started {
                        Ok(container) => break (container, address),
                        Err(_) if attempt < 3 => attempt += 1,
                        Err(e) => return Err(e).with_context(|| format!("start the registry image {image}")),
                    }
                };
                args.extend(["--registry".to_string(), format!("http://{address}")]);
                registry = Some(container);
            }
            None => args.push("--no-registry".into()),
        }
        let (name, tag) = split_image(&self.image);
        let sigstack = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_stdout("sigstack is up"))
            .with_cmd(args)
            .with_network("host")
            .with_mount(Mount::bind_mount(state.clone(), state.clone()))
            .with_user(user)
            .with_startup_timeout(self.startup_timeout)
            .start()
            .await
            .with_context(|| {
                format!("start the sigstack image {} (build it: docker build -t sigstack .)", self.image)
            })?;
        let description = StackDescription::require(&state_dir)?;
        let stop: sigstack::testkit::StopStack = Box::new(move || {
            Box::pin(async move {
                sigstack.rm().await.context("remove the sigstack container")?;
                if let Some(registry) = registry {
                    registry.rm().await.context("remove the registry container")?;
                }
                Ok(())
            })
        });
        Ok(Stack::attached(description, stop, Some(temp)))
    }
}

/// `name:tag` → (`name`, `tag`); a port in the registry part is not a tag.
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// A loopback address with a port free at the moment of asking, for the registry (host network:
/// nothing maps ports); the caller retries when it was taken before the registry bound it.
fn free_loopback_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_names_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(split_image("sigstack:dev"), ("sigstack", "dev"));
        assert_eq!(split_image("registry:2"), ("registry", "2"));
        assert_eq!(split_image("localhost:5000/sigstack"), ("localhost:5000/sigstack", "latest"));
        assert_eq!(split_image("localhost:5000/sigstack:v1"), ("localhost:5000/sigstack", "v1"));
        assert_eq!(split_image("sigstack"), ("sigstack", "latest"));
    }
}
