use std::path::Path;
use std::sync::Arc;

use hyper::Method;
use postbackd::app::{App, StartError};
use postbackd::config::Config;
use postbackd::http::server;
use postbackd::store::OpenError;
use postbackd::store::fault::DiskFault;
use postbackd::util::client::{HttpClient, HttpResponse};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-admin-token-0123456789abcdef";

/// A server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub base: String,
    /// The running server's application (direct writes in report tests).
    pub app: Arc<App>,
    pub client: HttpClient,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s = TestServer::start_at(&path, |_| {}).await;
        s._dir = Some(dir);
        s
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s = TestServer::start_at(&path, tweak).await;
        s._dir = Some(dir);
        s
    }

    /// Start on an existing data dir (restart tests).
    pub async fn start_at(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_full(dir, tweak, None).await
    }

    /// Start with a storage backend whose disk can be made "full".
    pub async fn start_with_fault(dir: &Path, fault: Arc<DiskFault>) -> TestServer {
        TestServer::start_full(dir, |_| {}, Some(fault)).await
    }

    async fn start_full(
        dir: &Path,
        tweak: impl FnOnce(&mut Config),
        fault: Option<Arc<DiskFault>>,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = Config::with_data_dir(dir);
        cfg.listen = addr;
        cfg.public_url = format!("http://{addr}");
        cfg.admin_token = Some(TOKEN.into());
        tweak(&mut cfg);
        // redb's file lock belongs to the open file description, which a
        // sibling test's `Command::spawn` copies into its child for the
        // moment between fork and exec. A restart that lands in that window
        // sees the previous server's lock, so retry briefly; any other
        // error, or a lock still held after 3 s, fails the test.
        let mut tries = 0;
        let (app, _) = loop {
            let opened = match &fault {
                None => App::open(cfg.clone()),
                Some(f) => App::open_with_fault(cfg.clone(), f.clone()),
            };
            match opened {
                Err(StartError::Open(OpenError::Db(redb::DatabaseError::DatabaseAlreadyOpen)))
                    if tries < 60 =>
                {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => break other.unwrap(),
            }
        };
        let (tx, rx) = oneshot::channel::<()>();
        let app = Arc::new(app);
        let task = tokio::spawn(server::run(listener, app.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            app,
            client: HttpClient::new(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    /// Graceful stop; the data dir stays (when not owned) for a restart.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self._dir.take()
    }

    pub async fn get(&self, path: &str) -> HttpResponse {
        self.client
            .send(Method::GET, &format!("{}{path}", self.base), &[], None)
            .await
            .unwrap()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.client
            .send(
                method,
                &format!("{}{path}", self.base),
                headers,
                Some(body.to_vec()),
            )
            .await
            .unwrap()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> HttpResponse {
        self.client
            .json(
                method,
                &format!("{}{path}", self.base),
                Some(TOKEN),
                body.as_ref(),
            )
            .await
            .unwrap()
    }

    /// Create a source; returns its JSON.
    pub async fn source(&self, body: Value) -> Value {
        let r = self
            .admin(Method::POST, "/api/v1/sources", Some(body))
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Create a link; returns its JSON.
    pub async fn link(&self, body: Value) -> Value {
        let r = self.admin(Method::POST, "/api/v1/links", Some(body)).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// A source with a link to it; returns (source, slug).
    pub async fn source_and_link(&self, source: Value) -> (Value, String) {
        let s = self.source(source).await;
        let l = self
            .link(json!({"destination": "https://offer.example/lp?sub={click_id}", "source": s["id"]}))
            .await;
        (s, l["slug"].as_str().unwrap().to_string())
    }

    /// Click a link; returns the click ID.
    pub async fn click(&self, slug: &str, query: &str) -> String {
        let r = self.get(&format!("/c/{slug}{query}")).await;
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        r.header("x-postbackd-click-id").unwrap().to_string()
    }

    /// Fire a GET postback at a source.
    pub async fn postback(&self, source: &Value, query: &str) -> HttpResponse {
        self.get(&format!("/p/{}?{query}", source["key"].as_str().unwrap()))
            .await
    }
}

/// The body as pretty text for assertion messages.
pub fn text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}
