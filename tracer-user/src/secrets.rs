//! Credentials never reach the output unless asked for (`--show-secrets`):
//! the values of the headers that carry them, and a password in the URL.
use crate::client::RequestSpec;

/// Headers whose values are credentials (compared without case).
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// What is printed in place of a secret.
pub const REDACTED: &str = "<redacted>";

pub fn is_secret(name: &str) -> bool {
    SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The request as it may be shown: secret header values and the URL's
/// password replaced, unless `show`.
pub fn shown(spec: &RequestSpec, show: bool) -> RequestSpec {
    let mut url = spec.url.clone();
    if !show && url.password().is_some() {
        // `<` and `>` would be percent-encoded in a URL.
        let _ = url.set_password(Some("redacted"));
    }
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| {
            let v = if !show && is_secret(k) {
                REDACTED.to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    RequestSpec {
        method: spec.method.clone(),
        url,
        headers,
        body: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a bad URL should fail the test loudly")]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_replaced_and_others_kept() {
        let mut spec = RequestSpec::get("http://u:pw@127.0.0.1/".parse().unwrap());
        spec.headers = vec![
            ("AUTHORIZATION".into(), "Bearer s3cret".into()),
            ("Proxy-Authorization".into(), "Basic s3cret".into()),
            ("cookie".into(), "id=s3cret".into()),
            ("Set-Cookie".into(), "id=s3cret".into()),
            ("X-Trace".into(), "visible".into()),
        ];
        let hidden = shown(&spec, false);
        assert_eq!(hidden.url.as_str(), "http://u:redacted@127.0.0.1/");
        let values: Vec<&str> = hidden.headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, REDACTED, REDACTED, "visible"]);
        let all = shown(&spec, true);
        assert_eq!(all.url.as_str(), "http://u:pw@127.0.0.1/");
        assert_eq!(all.headers, spec.headers);
    }
}
