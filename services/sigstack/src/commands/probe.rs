use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// An `http://host:port/path` URL.
    url: String,
}

/// A plain HTTP/1.0 GET, so the runtime image needs no curl or wget for its health checks.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let rest = args.url.strip_prefix("http://").context("probe takes an http:// URL")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let address = authority.to_socket_addrs()?.next().with_context(|| format!("cannot resolve {authority}"))?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&address, timeout).with_context(|| format!("connect {authority}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).context("read the status line")?;
    let status = std::str::from_utf8(&head[9..12]).unwrap_or("");
    if !status.starts_with('2') {
        bail!("{} answered {status}", args.url);
    }
    Ok(())
}
