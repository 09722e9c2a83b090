//! A real HTTP server on loopback standing in for an ad platform: it
//! records every request and answers from a responder function.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Response};
use hyper_util::rt::TokioIo;

/// One request as the platform saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// What to answer: (status, headers, body), given the request and how many
/// requests came before it.
pub type Responder =
    Arc<dyn Fn(&Recorded, usize) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

pub struct Mock {
    pub addr: SocketAddr,
    pub base: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Mock {
    /// Answers 200 `{}` to everything.
    pub async fn ok() -> Mock {
        Mock::start(Arc::new(|_, _| (200, vec![], "{}".to_string()))).await
    }

    pub async fn start(responder: Responder) -> Mock {
        Mock::start_on("127.0.0.1:0".parse().unwrap(), responder).await
    }

    /// On a given address (to bring a "down" platform back on its port).
    pub async fn start_on(addr: SocketAddr, responder: Responder) -> Mock {
        Mock::serve(addr, responder, Duration::ZERO).await
    }

    /// Answers each request `delay` after it arrived (a slow platform, so
    /// a test can act while an attempt is in flight). The request is
    /// recorded on arrival, so `requests()` counts sends still in flight.
    pub async fn slow(delay: Duration, responder: Responder) -> Mock {
        Mock::serve("127.0.0.1:0".parse().unwrap(), responder, delay).await
    }

    async fn serve(addr: SocketAddr, responder: Responder, delay: Duration) -> Mock {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let reqs = reqs.clone();
                let responder = responder.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let reqs = reqs.clone();
                        let responder = responder.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let rec = Recorded {
                                method: parts.method.to_string(),
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                                at: Instant::now(),
                            };
                            let n = {
                                let mut r = reqs.lock().unwrap();
                                r.push(rec.clone());
                                r.len() - 1
                            };
                            let (status, headers, body) = responder(&rec, n);
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let mut resp = Response::new(Full::new(Bytes::from(body)));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            for (k, v) in headers {
                                resp.headers_mut().insert(k, v.parse().unwrap());
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Mock {
            addr,
            base: format!("http://{addr}"),
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Stop listening (the port is closed: connections are refused).
    pub fn stop(self) {
        self.task.abort();
    }
}
