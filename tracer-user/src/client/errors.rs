//! Errors of building the client, and the one-line text of request errors.

use std::error::Error;
use std::path::PathBuf;

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// Why a [`TracedClient`](super::TracedClient) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read --cacert {}: {source}", path.display())]
    CaCertRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--cacert {} holds no PEM certificate", path.display())]
    CaCertEmpty { path: PathBuf },
    #[error("--cacert {}: {reason}", path.display())]
    CaCertInvalid { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("building the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// An error and its sources on one line, each said once:
/// `error sending request for url (...): client error (Connect): tcp
/// connect error: Connection refused (os error 111)`.
pub(crate) fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// True when some source in the chain is rustls refusing the certificate.
pub(crate) fn is_certificate_error(err: &(dyn Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(tls) = find_rustls(cause) {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        source = cause.source();
    }
    false
}

/// tokio-rustls and hyper-rustls wrap rustls errors in `io::Error`s (two
/// deep), whose `source()` skips the wrapped error itself.
fn find_rustls<'a>(mut err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
        err = inner;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources_without_repeating_them() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = ClientError::CaCertRead {
            path: "/x.pem".into(),
            source: io,
        };
        assert_eq!(error_chain(&outer), "cannot read --cacert /x.pem: refused");
    }
}
