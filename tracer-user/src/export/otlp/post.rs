//! One POST of OTLP/HTTP protobuf, bounded by a deadline.
use std::{sync::Arc, time::Duration};

use rustls::{ClientConfig, RootCertStore};

use super::config::OtlpConfig;

/// Sends `body` (an encoded `ExportTraceServiceRequest`); Err is one line
/// that says why the collector did not take it.
pub async fn post(config: &OtlpConfig, body: Vec<u8>, deadline: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(deadline)
        .tls_backend_preconfigured(tls_config(config.endpoint.scheme() == "https")?)
        .build()
        .map_err(|e| one_line(&e))?;
    let mut request = client
        .post(config.endpoint.clone())
        .header("content-type", "application/x-protobuf")
        .body(body);
    for (k, v) in &config.headers {
        request = request.header(k, v);
    }
    let sent = tokio::time::timeout(deadline, async {
        let response = request.send().await?;
        let status = response.status();
        // The body says why a request was refused (a protobuf Status), but
        // its status line is enough for one line.
        let _ = response.bytes().await;
        Ok::<_, reqwest::Error>(status)
    })
    .await;
    match sent {
        Err(_) => Err(format!("no answer within {} s", deadline.as_secs_f64())),
        Ok(Err(e)) if e.is_timeout() => {
            Err(format!("no answer within {} s", deadline.as_secs_f64()))
        }
        Ok(Err(e)) => Err(one_line(&e)),
        Ok(Ok(status)) if status.is_success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the collector answered HTTP {status}")),
    }
}

/// Web PKI roots for an https collector; none are loaded for http.
fn tls_config(https: bool) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if https {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The error and its causes, each said once, on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string().replace(['\n', '\r'], " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
