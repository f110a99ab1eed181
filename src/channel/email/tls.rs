//! TLS for the SMTP channel, rustls only: the trust roots (the public web
//! PKI plus an optional `ca_file`, for a comune's own mail server behind a
//! private CA), STARTTLS parameters for lettre, and our own handshake for
//! implicit TLS (smtps://) so the socket stays one we opened with
//! TCP_NODELAY.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{AsyncTokioStream, Certificate, TlsParameters};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Everything needed to start TLS with one server.
pub struct TlsSetup {
    /// For STARTTLS, handed to lettre.
    pub starttls: TlsParameters,
    /// For implicit TLS, our own connector.
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsSetup {
    pub fn new(host: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let extra: Vec<CertificateDer<'static>> = match ca_file {
            Some(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        format!("ca_file {}: not PEM certificates ({e})", path.display())
                    })?;
                if certs.is_empty() {
                    return Err(format!("ca_file {}: no certificate in it", path.display()));
                }
                certs
            }
            None => Vec::new(),
        };

        let mut builder = TlsParameters::builder(host.to_owned());
        for der in &extra {
            let cert = Certificate::from_der(der.to_vec()).map_err(|e| format!("ca_file: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let starttls = builder
            .build_rustls()
            .map_err(|e| format!("TLS setup: {e}"))?;

        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra {
            roots
                .add(der)
                .map_err(|e| format!("ca_file: unusable certificate ({e})"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
        Ok(Self {
            starttls,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Implicit TLS: the handshake right after connecting.
    pub async fn wrap(&self, tcp: TcpStream) -> io::Result<Implicit> {
        let stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        Ok(Implicit(stream))
    }
}

/// A TLS stream lettre can drive as if it were plain TCP.
#[derive(Debug)]
pub struct Implicit(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for Implicit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Implicit {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// True when `error` (or one of its sources) is a TLS protocol or
/// certificate failure, as opposed to the network going away: the first is
/// a configuration problem that no retry fixes.
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && inner.downcast_ref::<rustls::Error>().is_some()
        {
            return true;
        }
        current = e.source();
    }
    false
}
