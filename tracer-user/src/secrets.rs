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

/// Parts of a query parameter's name that mark its value as a credential
/// (compared without case): `?token=`, `access_token`, `api_key`,
/// `X-Amz-Signature`, `password`, `session_id`, ...
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "secret",
    "passw",
    "pwd",
    "sig",
    "auth",
    "session",
    "credential",
];

/// A request target (`/p?token=abc&page=2`) as it may be shown: the
/// values of credential-like query parameters replaced by `redacted`
/// (`<` and `>` would be percent-encoded in a URL). attach has no
/// `--show-secrets`: a request it read off the wire is never its user's.
pub fn shown_target(target: &str) -> std::borrow::Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return target.into();
    };
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMS.iter().any(|s| name.contains(s))
    };
    if !query
        .split('&')
        .any(|p| p.split_once('=').is_some_and(|(n, _)| secret(n)))
    {
        return target.into();
    }
    let query: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((n, _)) if secret(n) => format!("{n}=redacted"),
            _ => p.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&")).into()
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

    #[test]
    fn credential_query_values_are_replaced_and_others_kept() {
        assert_eq!(
            shown_target("/p?token=t0k3n&page=2&API_KEY=k&X-Amz-Signature=s"),
            "/p?token=redacted&page=2&API_KEY=redacted&X-Amz-Signature=redacted"
        );
        assert_eq!(shown_target("/p?page=2&q=token"), "/p?page=2&q=token");
        assert_eq!(shown_target("/plain"), "/plain");
    }
}
