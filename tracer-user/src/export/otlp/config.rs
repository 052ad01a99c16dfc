//! Where spans go: `--otlp ENDPOINT`, else the OpenTelemetry SDKs'
//! environment variables, read as the OTLP exporter specification says.
use reqwest::Url;

/// The spans' destination and how to present ourselves to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub endpoint: Url,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`), often an API
    /// key: never printed.
    pub headers: Vec<(String, String)>,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`).
    pub service_name: Option<String>,
}

const TRACES_PATH: &str = "v1/traces";
impl OtlpConfig {
    /// `OTEL_SERVICE_NAME`, else `default`.
    pub fn service_name_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.service_name.as_deref().unwrap_or(default)
    }

    /// `flag` is `--otlp`'s value; `env` reads a variable. Ok(None): no
    /// export was asked for. Err is a one-line message for exit 2.
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let endpoint = if let Some(base) = flag {
            traces_url(base, "--otlp")?
        } else if let Some(url) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            // Used as it is, by the specification.
            parse(url.trim(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?
        } else if let Some(base) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            traces_url(base.trim(), "OTEL_EXPORTER_OTLP_ENDPOINT")?
        } else {
            return Ok(None);
        };
        let headers = match env("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(list) => parse_headers(&list)?,
            None => Vec::new(),
        };
        let service_name = env("OTEL_SERVICE_NAME");
        Ok(Some(OtlpConfig {
            endpoint,
            headers,
            service_name,
        }))
    }
}

fn parse(url: &str, from: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| {
        format!("{from}: invalid URL '{url}': {e}; give one such as http://127.0.0.1:4318")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{from}: unsupported scheme '{}' in '{url}': OTLP/HTTP needs http:// or https://",
            parsed.scheme()
        ));
    }
    Ok(parsed)
}

/// `base` + `/v1/traces`, whatever `base` ends with.
fn traces_url(base: &str, from: &str) -> Result<Url, String> {
    let base = parse(base, from)?;
    let joined = format!("{}/{TRACES_PATH}", base.as_str().trim_end_matches('/'));
    parse(&joined, from)
}

/// `k1=v1,k2=v2`, values percent-encoded (W3C baggage format).
fn parse_headers(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                // The value may be a secret: name only the key.
                let key = item.split('=').next().unwrap_or("").trim();
                format!("OTEL_EXPORTER_OTLP_HEADERS: '{key}' has no '=value'; write key=value,key2=value2")
            })?;
            let value = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .map_err(|_| format!("OTEL_EXPORTER_OTLP_HEADERS: the value of '{}' is not UTF-8", k.trim()))?;
            Ok((k.trim().to_string(), value.into_owned()))
        })
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a failed parse should fail the test loudly"
)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn endpoint(
        flag: Option<&str>,
        vars: &'static [(&'static str, &'static str)],
    ) -> Option<String> {
        OtlpConfig::resolve(flag, env_of(vars))
            .unwrap()
            .map(|c| c.endpoint.to_string())
    }

    #[test]
    fn nothing_asked_nothing_exported() {
        assert_eq!(endpoint(None, &[]), None);
        assert_eq!(
            endpoint(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]),
            None
        );
    }

    #[test]
    fn the_flag_and_the_base_variable_get_the_traces_path() {
        let want = Some("http://127.0.0.1:4318/v1/traces".to_string());
        assert_eq!(endpoint(Some("http://127.0.0.1:4318"), &[]), want);
        assert_eq!(endpoint(Some("http://127.0.0.1:4318/"), &[]), want);
        let base = &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
        assert_eq!(endpoint(None, base), want);
        assert_eq!(
            endpoint(Some("http://c:1/otlp"), base).as_deref(),
            Some("http://c:1/otlp/v1/traces"),
            "the flag wins"
        );
    }

    #[test]
    fn the_traces_variable_is_used_as_it_is_and_wins_over_the_base() {
        let vars = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
        ];
        assert_eq!(
            endpoint(None, vars).as_deref(),
            Some("http://b:4318/custom")
        );
    }

    #[test]
    fn headers_and_service_name_are_read() {
        let vars = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%20ecret, x-team = web",
            ),
            ("OTEL_SERVICE_NAME", "checkout"),
        ];
        let c = OtlpConfig::resolve(None, env_of(vars)).unwrap().unwrap();
        assert_eq!(
            c.headers,
            [
                ("api-key".into(), "s ecret".into()),
                ("x-team".into(), "web".into())
            ]
        );
        assert_eq!(c.service_name_or("tracer"), "checkout");
        let c = OtlpConfig::resolve(Some("http://a:1"), env_of(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(c.service_name_or("tracer"), "tracer");
    }

    #[test]
    fn bad_values_are_one_line_that_names_where_they_came_from() {
        let err = OtlpConfig::resolve(Some("grpc://a:4317"), env_of(&[])).unwrap_err();
        assert!(
            err.starts_with("--otlp: unsupported scheme 'grpc'"),
            "{err}"
        );
        let vars = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
        ];
        let err = OtlpConfig::resolve(None, env_of(vars)).unwrap_err();
        assert!(err.contains("'api-key' has no '=value'"), "{err}");
        assert!(!err.contains('\n'));
    }
}
