//! What API Gateway's HTTP API does with its `CorsConfiguration`: it answers preflight `OPTIONS`
//! requests itself (no route needed), adds the configured headers to the answers of requests from
//! an allowed origin, and drops whatever CORS headers the function set. A browser app on another
//! origin (the customer app's dev server, template.yaml's `CorsAllowedOrigin`) can then call
//! `make dev`'s API as it will call AWS.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Deserialize;

/// The HTTP API's `CorsConfiguration`, as template.yaml gives it (references resolved).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Cors {
    allow_origins: Vec<String>,
    allow_methods: Vec<String>,
    allow_headers: Vec<String>,
    expose_headers: Vec<String>,
    max_age: Option<u64>,
    allow_credentials: Option<bool>,
}

impl Cors {
    /// The `Access-Control-Allow-Origin` an allowed `origin` gets: `*` where any origin may call,
    /// else the origin itself. `https://*` and `http://*` allow every origin of that scheme.
    fn allowed(&self, origin: &str) -> Option<String> {
        self.allow_origins
            .iter()
            .find_map(|allowed| match allowed.as_str() {
                "*" => Some("*".to_owned()),
                pattern
                    if pattern
                        .strip_suffix('*')
                        .is_some_and(|scheme| origin.starts_with(scheme)) =>
                {
                    Some(origin.to_owned())
                }
                exact if exact.eq_ignore_ascii_case(origin) => Some(origin.to_owned()),
                _ => None,
            })
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` for any other request.
    pub fn preflight(&self, method: &str, headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
        if method != "OPTIONS" || !headers.contains_key("access-control-request-method") {
            return None;
        }
        let origin = headers.get("origin")?.to_str().ok()?;
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(allowed) = self.allowed(origin) {
            let out = response.headers_mut();
            insert(out, "access-control-allow-origin", &allowed);
            insert(
                out,
                "access-control-allow-methods",
                &self.allow_methods.join(","),
            );
            insert(
                out,
                "access-control-allow-headers",
                &self.allow_headers.join(","),
            );
            if let Some(seconds) = self.max_age {
                insert(out, "access-control-max-age", &seconds.to_string());
            }
            self.credentials(out);
        }
        Some(response)
    }

    /// Sets the configured headers on the answer to a request from `origin` (none if it is not
    /// allowed), in place of any the function set.
    pub fn decorate(&self, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
        let names: Vec<_> = out
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in names {
            out.remove(name);
        }
        let Some(allowed) = origin
            .and_then(|o| o.to_str().ok())
            .and_then(|o| self.allowed(o))
        else {
            return;
        };
        insert(out, "access-control-allow-origin", &allowed);
        if !self.expose_headers.is_empty() {
            insert(
                out,
                "access-control-expose-headers",
                &self.expose_headers.join(","),
            );
        }
        self.credentials(out);
    }

    fn credentials(&self, out: &mut HeaderMap) {
        if self.allow_credentials == Some(true) {
            insert(out, "access-control-allow-credentials", "true");
        }
    }
}

fn insert(out: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        out.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        serde_json::from_value(serde_json::json!({
            "AllowOrigins": ["http://localhost:5173"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["authorization", "content-type"],
            "ExposeHeaders": ["etag", "retry-after"],
            "MaxAge": 600
        }))
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn preflights_from_the_allowed_origin_are_answered_with_the_configuration() {
        let asked = headers(&[
            ("origin", "http://localhost:5173"),
            ("access-control-request-method", "POST"),
        ]);
        let answer = cors().preflight("OPTIONS", &asked).expect("a preflight");
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let got = answer.headers();
        assert_eq!(got["access-control-allow-origin"], "http://localhost:5173");
        assert_eq!(got["access-control-allow-methods"], "GET,POST");
        assert_eq!(
            got["access-control-allow-headers"],
            "authorization,content-type"
        );
        assert_eq!(got["access-control-max-age"], "600");

        // Another origin's preflight gets no permission; a plain OPTIONS is no preflight.
        let other = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        let refused = cors().preflight("OPTIONS", &other).expect("a preflight");
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin")
        );
        let plain = headers(&[("origin", "http://localhost:5173")]);
        assert!(cors().preflight("OPTIONS", &plain).is_none());
        assert!(cors().preflight("GET", &asked).is_none());
    }

    #[test]
    fn answers_carry_the_configured_headers_only_for_allowed_origins() {
        let origin = HeaderValue::from_static("http://localhost:5173");
        let mut out = headers(&[("access-control-allow-origin", "*"), ("etag", "\"1\"")]);
        cors().decorate(Some(&origin), &mut out);
        assert_eq!(out["access-control-allow-origin"], "http://localhost:5173");
        assert_eq!(out["access-control-expose-headers"], "etag,retry-after");
        assert_eq!(out["etag"], "\"1\"");

        // The function's own CORS headers never pass: API Gateway replaces them.
        let mut out = headers(&[("access-control-allow-origin", "*")]);
        cors().decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut out,
        );
        assert!(!out.contains_key("access-control-allow-origin"));
        let mut out = headers(&[("access-control-allow-origin", "*")]);
        cors().decorate(None, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn wildcards_allow_any_origin_or_any_of_a_scheme() {
        let any = Cors {
            allow_origins: vec!["*".into()],
            ..Cors::default()
        };
        assert_eq!(any.allowed("https://a.example").as_deref(), Some("*"));
        let https = Cors {
            allow_origins: vec!["https://*".into()],
            ..Cors::default()
        };
        assert_eq!(
            https.allowed("https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(https.allowed("http://a.example"), None);
    }
}
