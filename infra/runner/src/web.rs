//! The web app (`web/`, built into `web/dist` by `make web`) served under `/app/` on the API's
//! port, as CloudFront serves it deployed: its files, a `config.json` naming the local WebSocket
//! API, and the Content-Security-Policy the app is built for (docs/FRONTEND.md).

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

pub const PREFIX: &str = "/app/";

pub struct WebApp {
    dist: PathBuf,
    config: String,
    csp: HeaderValue,
}

impl WebApp {
    /// The app built into `dist`, talking to the API on its own origin and to `websocket`.
    pub fn new(dist: PathBuf, websocket: &str) -> Self {
        let config = serde_json::json!({"api": "", "websocket": websocket}).to_string();
        let csp = format!(
            "default-src 'self'; connect-src 'self' {websocket}; img-src 'self' data:; \
             style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'"
        );
        Self {
            dist,
            config,
            csp: HeaderValue::from_str(&csp)
                .unwrap_or(HeaderValue::from_static("default-src 'self'")),
        }
    }

    pub fn serves(path: &str) -> bool {
        path == "/app" || path.starts_with(PREFIX)
    }

    /// The answer to `GET path`: a file of the build, the config, or the app's page for any other
    /// path under `/app/` (its own routes).
    pub async fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let relative = path.strip_prefix(PREFIX).unwrap_or_default();
        if relative == "config.json" {
            return self.respond(
                StatusCode::OK,
                "application/json",
                Bytes::from(self.config.clone()),
            );
        }
        let safe = Path::new(relative)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let file = if safe && !relative.is_empty() {
            self.dist.join(relative)
        } else {
            self.dist.join("index.html")
        };
        let file = if file.is_file() {
            file
        } else {
            self.dist.join("index.html")
        };
        match tokio::fs::read(&file).await {
            Ok(body) => self.respond(StatusCode::OK, content_type(&file), Bytes::from(body)),
            Err(_) => self.respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"The web app is not built: run `make web`.\n"),
            ),
        }
    }

    fn respond(
        &self,
        status: StatusCode,
        kind: &'static str,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        headers.insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("mp3") => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn serves_the_build_its_config_and_nothing_outside_it() {
        let root = std::env::temp_dir().join(format!("web-{}", std::process::id()));
        let dist = root.join("dist");
        std::fs::create_dir_all(dist.join("assets")).unwrap();
        std::fs::write(dist.join("index.html"), "<p>board</p>").unwrap();
        std::fs::write(dist.join("assets/app.js"), "run()").unwrap();
        std::fs::write(root.join("secret.txt"), "secret").unwrap();
        let web = WebApp::new(dist, "ws://127.0.0.1:3001");

        let script = web.answer("/app/assets/app.js").await;
        assert_eq!(
            script.headers()[CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let csp = script.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:3001;"),
            "{csp}"
        );
        assert_eq!(body(script).await, "run()");
        let config: serde_json::Value =
            serde_json::from_str(&body(web.answer("/app/config.json").await).await).unwrap();
        assert_eq!(config["websocket"], "ws://127.0.0.1:3001");
        // The app's own routes and anything that climbs out get the page, never another file.
        for path in [
            "/app/",
            "/app/board/today",
            "/app/../secret.txt",
            "/app/%2e%2e/secret.txt",
        ] {
            assert_eq!(body(web.answer(path).await).await, "<p>board</p>", "{path}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
