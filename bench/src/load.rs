//! A closed-loop HTTP load generator for GraphQL: `clients` concurrent connections, each sending
//! its next request when the previous answer has arrived, for a fixed time (like wrk or
//! pgbench -T). Every answer is checked: a non-200 status or a GraphQL error fails the run.

use std::time::{Duration, Instant};

use serde_json::Value;

/// What one timed run measured.
#[derive(Clone, Debug)]
pub struct Load {
    pub requests: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// From every request's latency over `elapsed`.
    pub fn from_latencies(mut latencies: Vec<Duration>, elapsed: Duration) -> Load {
        latencies.sort();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Load {
            requests: latencies.len(),
            elapsed,
            p50: pick(0.50),
            p99: pick(0.99),
        }
    }
}

/// What the load generator checks in an answer: that it is JSON and has no `errors`.
#[derive(serde::Deserialize)]
struct Checked {
    errors: Option<serde::de::IgnoredAny>,
}

/// Where requests go and with which credentials.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub bearer: Option<String>,
}

/// Drives `target` for `duration`; `body(n)` is the n-th request body of a client.
pub async fn drive(
    target: &Target,
    bodies: &[Value],
    clients: usize,
    duration: Duration,
) -> Result<Load, String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, target, bodies) = (client.clone(), target.clone(), bodies.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = c;
            while Instant::now() < deadline {
                let body = &bodies[n % bodies.len()];
                n += clients;
                let t = Instant::now();
                let mut request = client.post(&target.url).json(body);
                if let Some(key) = &target.bearer {
                    request = request.bearer_auth(key);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let bytes = response.bytes().await.map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
                // Checked without building a tree: the load generator shares the cores with
                // the systems it measures.
                let answer: Checked = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: answer is not JSON: {e}", target.url))?;
                if !status.is_success() || answer.errors.is_some() {
                    return Err(format!(
                        "{} answered {status}: {}",
                        target.url,
                        String::from_utf8_lossy(&bytes)
                            .chars()
                            .take(400)
                            .collect::<String>()
                    ));
                }
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(Load::from_latencies(all, started.elapsed()))
}

/// POSTs one GraphQL request and returns the whole answer (errors included).
pub async fn post(
    client: &reqwest::Client,
    target: &Target,
    body: &Value,
) -> Result<Value, String> {
    let mut request = client.post(&target.url).json(body);
    if let Some(key) = &target.bearer {
        request = request.bearer_auth(key);
    }
    request
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Sends one request and returns its `data`; a GraphQL error fails it.
pub async fn ask(target: &Target, body: &Value) -> Result<Value, String> {
    let answer = post(&reqwest::Client::new(), target, body).await?;
    if answer.get("errors").is_some() {
        return Err(format!("{} answered {answer}", target.url));
    }
    Ok(answer["data"].clone())
}
