//! HTTP and HTTPS GET checks: hyper's HTTP/1 client connection driven in
//! the probe's own task (no spawned connection task), over a plain or a
//! rustls stream, with the TLS configurations shared by every check.

use std::future::{poll_fn, Future};
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::{tcp, Check, HttpCheck, ProbeContext, ProbeError, TlsVerify};

/// The most body a `body_regex` check buffers.
const MAX_BODY: usize = 1 << 20;

pub(super) async fn probe(
    check: &Check,
    http: &HttpCheck,
    ctx: &ProbeContext,
) -> Result<(), ProbeError> {
    let tcp = tcp::connect(check.target, check.source, check.local_only).await?;
    let Some(tls) = &http.tls else {
        return exchange(TokioIo::new(tcp), http).await;
    };
    let config = match &tls.verify {
        TlsVerify::WebPki => ctx.tls_webpki.clone(),
        TlsVerify::Insecure => ctx.tls_insecure.clone(),
        TlsVerify::CaFile(config) => config.clone(),
    };
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(tls_error)?;
    exchange(TokioIo::new(stream), http).await
}

/// One GET on a fresh connection; checks the status, then the body only if
/// the check looks at it.
async fn exchange<T>(io: T, http: &HttpCheck) -> Result<(), ProbeError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| ProbeError::Http(e.to_string()))?;
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = Uri::from(http.path.clone());
    *request.headers_mut() = http.headers.clone();

    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ProbeError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        if !http.status.contains(status) {
            return Err(ProbeError::Status(status));
        }
        if http.needs_body() {
            check_body(response.into_body(), http).await?;
        }
        Ok(())
    };

    // Drive the connection and the exchange together in this task. When the
    // connection fails, its error says more than the exchange's "connection
    // closed", so keep it.
    let mut conn = pin!(conn);
    let mut exchange = pin!(exchange);
    let mut conn_error = None;
    let mut conn_done = false;
    let result = poll_fn(|cx| {
        if !conn_done {
            if let Poll::Ready(r) = conn.as_mut().poll(cx) {
                conn_done = true;
                conn_error = r.err();
            }
        }
        exchange.as_mut().poll(cx)
    })
    .await;
    match (result, conn_error) {
        (Err(ProbeError::Http(_)), Some(e)) => Err(ProbeError::Http(e.to_string())),
        (result, _) => result,
    }
}

async fn check_body(mut body: hyper::body::Incoming, http: &HttpCheck) -> Result<(), ProbeError> {
    let mut hasher = http.digest.map(|_| Sha256::new());
    let mut buffer = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProbeError::Http(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if let Some(h) = hasher.as_mut() {
            h.update(&data);
        }
        if http.body_regex.is_some() {
            if buffer.len() + data.len() > MAX_BODY {
                return Err(ProbeError::Body("longer than 1 MiB".into()));
            }
            buffer.extend_from_slice(&data);
        }
    }
    if let (Some(want), Some(h)) = (&http.digest, hasher) {
        let got = h.finalize();
        if got.as_slice() != want {
            return Err(ProbeError::Digest(hex(got.as_slice())));
        }
    }
    if let Some(re) = &http.body_regex {
        if !re.is_match(&buffer) {
            return Err(ProbeError::Body(format!("no match for `{}`", re.as_str())));
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// tokio-rustls reports handshake failures as io errors wrapping the
/// rustls error; give those the "tls" reason.
fn tls_error(e: std::io::Error) -> ProbeError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ProbeError::Tls(tls.to_string()),
        None => ProbeError::io("tls handshake", e),
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn client_config(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
) -> Arc<ClientConfig> {
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Verification against the Mozilla roots (webpki-roots).
pub(super) fn webpki_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(client_config(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots),
    ))
}

/// `insecure = true`: any certificate is accepted (self-signed lab certs);
/// the handshake signatures are still checked, so the server does hold the
/// key of the certificate it sent.
pub(super) fn insecure_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    Ok(client_config(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider()))),
    ))
}

/// `ca_file = "..."`: verification against the PEM certificates in a file
/// (only those, not the webpki roots). Read when the config is loaded.
pub(super) fn ca_file_config(path: &Path) -> Result<Arc<ClientConfig>, String> {
    let what = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("ca_file {what}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("ca_file {what}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {what}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {what}: no PEM certificates"));
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ca_file {what}: {e}"))?
        .with_root_certificates(roots);
    Ok(client_config(builder))
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, ctx, serve_http, serve_https, Reply};
    use super::super::*;

    const BODY: &str = "hello, anycastd\n";
    // sha256 of BODY
    fn body_digest() -> String {
        super::hex(&sha2::Sha256::digest(BODY.as_bytes()))
    }
    use sha2::Digest;

    #[tokio::test]
    async fn status_ok_and_request_shape() {
        let (addr, mut requests) = serve_http(Reply::new(200, BODY)).await;
        let c = check(&format!(
            "type = \"http\"\nport = {}\nhost = \"www.example.com\"\npath = \"/health\"\nheaders = {{ \"X-Check\" = \"yes\" }}",
            addr.port()
        ));
        probe(&c, &ctx()).await.unwrap();
        let request = requests.recv().await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /health http/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nhost: www.example.com:{}\r\n", addr.port())),
            "{request}"
        );
        assert!(request.contains("\r\nx-check: yes\r\n"), "{request}");
        assert!(request.contains("\r\nconnection: close\r\n"), "{request}");
    }

    #[tokio::test]
    async fn wrong_status_fails() {
        let (addr, _requests) = serve_http(Reply::new(503, "busy")).await;
        let c = check(&format!("type = \"http\"\nport = {}", addr.port()));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "status");
        assert_eq!(err.to_string(), "status 503 not accepted");

        // An explicit list can accept it.
        let c = check(&format!(
            "type = \"http\"\nport = {}\nstatus = \"200,503\"",
            addr.port()
        ));
        probe(&c, &ctx()).await.unwrap();
    }

    #[tokio::test]
    async fn body_regex() {
        let (addr, _requests) = serve_http(Reply::new(200, BODY)).await;
        let ok = check(&format!(
            "type = \"http\"\nport = {}\nbody_regex = \"^hello, \\\\w+\"",
            addr.port()
        ));
        probe(&ok, &ctx()).await.unwrap();
        let bad = check(&format!(
            "type = \"http\"\nport = {}\nbody_regex = \"goodbye\"",
            addr.port()
        ));
        let err = probe(&bad, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "body", "{err}");
    }

    #[tokio::test]
    async fn chunked_body_regex() {
        let (addr, _requests) = serve_http(Reply::new(200, BODY).chunked()).await;
        let ok = check(&format!(
            "type = \"http\"\nport = {}\nbody_regex = \"anycastd\"",
            addr.port()
        ));
        probe(&ok, &ctx()).await.unwrap();
    }

    #[tokio::test]
    async fn digest() {
        let (addr, _requests) = serve_http(Reply::new(200, BODY)).await;
        let ok = check(&format!(
            "type = \"http\"\nport = {}\ndigest = \"{}\"",
            addr.port(),
            body_digest()
        ));
        probe(&ok, &ctx()).await.unwrap();
        let wrong = "00".repeat(32);
        let bad = check(&format!(
            "type = \"http\"\nport = {}\ndigest = \"{wrong}\"",
            addr.port()
        ));
        let err = probe(&bad, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "digest");
        // The message carries the body's actual digest, to put in the config.
        assert_eq!(err.to_string(), format!("body sha256 is {}", body_digest()));
    }

    #[tokio::test]
    async fn not_http_fails_with_http_reason() {
        let (addr, _requests) = serve_http(Reply::raw("SSH-2.0-OpenSSH_9.2\r\n")).await;
        let c = check(&format!("type = \"http\"\nport = {}", addr.port()));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "http", "{err}");
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let (addr, _requests) = serve_http(Reply::new(200, BODY).delay_ms(3000)).await;
        let c = check(&format!(
            "type = \"http\"\nport = {}\ninterval_ms = 200\ntimeout_ms = 200",
            addr.port()
        ));
        let start = std::time::Instant::now();
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "timeout");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn https_insecure_accepts_self_signed() {
        let (addr, _cert, mut requests) = serve_https(Reply::new(200, BODY)).await;
        let c = check(&format!(
            "type = \"https\"\nport = {}\ninsecure = true\nbody_regex = \"anycastd\"",
            addr.port()
        ));
        probe(&c, &ctx()).await.unwrap();
        let request = requests.recv().await.unwrap().to_ascii_lowercase();
        assert!(
            request.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", addr.port())),
            "{request}"
        );
    }

    #[tokio::test]
    async fn https_verification_rejects_self_signed() {
        let (addr, _cert, _requests) = serve_https(Reply::new(200, BODY)).await;
        let c = check(&format!(
            "type = \"https\"\nport = {}\nhost = \"localhost\"",
            addr.port()
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "tls", "{err}");
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[tokio::test]
    async fn https_ca_file_verifies_name() {
        let (addr, cert_pem, _requests) = serve_https(Reply::new(200, BODY)).await;
        let dir = std::env::temp_dir().join(format!("anycastd-health-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join(format!("ca-{}.pem", addr.port()));
        std::fs::write(&ca, cert_pem).unwrap();

        let ok = check(&format!(
            "type = \"https\"\nport = {}\nhost = \"localhost\"\nca_file = \"{}\"",
            addr.port(),
            ca.display()
        ));
        probe(&ok, &ctx()).await.unwrap();

        // The certificate names localhost only.
        let wrong_name = check(&format!(
            "type = \"https\"\nport = {}\nhost = \"other.example\"\nca_file = \"{}\"",
            addr.port(),
            ca.display()
        ));
        let err = probe(&wrong_name, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "tls", "{err}");
        std::fs::remove_file(&ca).unwrap();
        let _ = std::fs::remove_dir(&dir);
    }
}
