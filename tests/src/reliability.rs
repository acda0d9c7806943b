//! What the fault and load tests saw, counted the same way everywhere, and written as one JSON
//! line per test to `$ATHENS_RELIABILITY_OUT` (when set) for `tests/reliability/report`.

use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// How one client request (an HTTP GET, or one `go` command) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with exactly the expected bytes.
    Correct,
    /// 200 with other bytes: the one thing that must never happen.
    Corrupt(String),
    /// A refusal the client can read: an error status with a text body, or a failed go command
    /// that says why.
    ClearError(String),
    /// The connection failed or the body was cut (the proxy died, or gave up mid-stream).
    Transport(String),
}

/// Counts of outcomes, bytes and latencies over one test.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub requests: usize,
    pub correct: usize,
    pub clear_errors: usize,
    pub transport_errors: usize,
    pub corrupt_served: usize,
    pub bytes_verified: u64,
    #[serde(skip)]
    pub latencies: Vec<Duration>,
    /// The first few non-correct outcomes, for failure messages.
    #[serde(skip)]
    pub samples: Vec<String>,
}

impl Tally {
    /// Counts one request; `took` is its latency as the client saw it.
    pub fn add(&mut self, outcome: &Outcome, bytes: u64, took: Duration) {
        self.requests += 1;
        self.latencies.push(took);
        let note = match outcome {
            Outcome::Correct => {
                self.correct += 1;
                self.bytes_verified += bytes;
                return;
            }
            Outcome::Corrupt(m) => {
                self.corrupt_served += 1;
                format!("CORRUPT: {m}")
            }
            Outcome::ClearError(m) => {
                self.clear_errors += 1;
                format!("error: {m}")
            }
            Outcome::Transport(m) => {
                self.transport_errors += 1;
                format!("transport: {m}")
            }
        };
        if self.samples.len() < 5 {
            self.samples.push(note);
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.correct += other.correct;
        self.clear_errors += other.clear_errors;
        self.transport_errors += other.transport_errors;
        self.corrupt_served += other.corrupt_served;
        self.bytes_verified += other.bytes_verified;
        self.latencies.extend(other.latencies);
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }

    /// The `q` quantile (0..=1) of the latencies, nearest-rank, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        quantile_ms(&self.latencies, q)
    }
}

/// Nearest-rank quantile of `xs` in milliseconds; `None` when empty.
pub fn quantile_ms(xs: &[Duration], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = xs.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// What a proxy's own metrics say about the requests it answered.
#[derive(Debug, Default, Serialize)]
pub struct ProxyFigures {
    /// Requests answered (the request-duration histogram's count).
    pub proxy_requests: Option<u64>,
    /// The 99th percentile of the proxy's own request latency, as the upper bound (seconds) of
    /// the histogram bucket it falls in.
    pub proxy_p99_le_s: Option<f64>,
}

impl ProxyFigures {
    /// Reads `<proxy_url>/metrics`; empty figures when the proxy does not answer.
    pub async fn read(proxy_url: &str) -> Self {
        let text = match reqwest::get(format!("{proxy_url}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return Self::default(),
        };
        Self::parse(&text)
    }

    /// Sums `athens_request_duration_seconds_bucket` over routes and finds the p99 bucket.
    pub fn parse(text: &str) -> Self {
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("athens_request_duration_seconds_bucket{") else {
                continue;
            };
            let Some(le) = rest.split("le=\"").nth(1).and_then(|v| v.split('"').next()) else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            let Some(n) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += n,
                None => buckets.push((le, n)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, total)) = buckets.last() else {
            return Self::default();
        };
        let p99 = buckets
            .iter()
            .find(|(_, c)| *c >= 0.99 * total)
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite());
        Self {
            proxy_requests: Some(total as u64),
            proxy_p99_le_s: p99,
        }
    }
}

/// One test's line in the reliability record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub test: &'a str,
    /// Which part of the test: `during` the fault, `after` it, ...
    pub phase: &'a str,
    /// What was done to the system, in a few words.
    pub fault: &'a str,
    pub faults_injected: usize,
    #[serde(flatten)]
    pub tally: &'a Tally,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Upstream fetches of module files (`.info`, `.mod`, `.zip`) the proxy made.
    pub upstream_fetches: usize,
    /// The proxy's own view (when it lived to be asked).
    #[serde(flatten)]
    pub proxy: ProxyFigures,
    pub seconds: f64,
}

impl Record<'_> {
    /// Appends this record to `$ATHENS_RELIABILITY_OUT`; does nothing when it is unset.
    pub fn write(&self) {
        let Some(path) = std::env::var_os("ATHENS_RELIABILITY_OUT") else {
            return;
        };
        let mut line = serde_json::to_string(self).expect("record serializes");
        line.push('\n');
        // One write per line with O_APPEND: parallel tests do not interleave lines.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.to_string_lossy()));
        f.write_all(line.as_bytes()).expect("writing the record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&xs, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&xs, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&xs, 1.0), Some(100.0));
        assert_eq!(quantile_ms(&xs[..1], 0.99), Some(1.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }

    #[test]
    fn tally_counts_each_outcome_once() {
        let mut t = Tally::default();
        let d = Duration::from_millis(1);
        t.add(&Outcome::Correct, 10, d);
        t.add(&Outcome::Corrupt("x".into()), 10, d);
        t.add(&Outcome::ClearError("502".into()), 10, d);
        t.add(&Outcome::Transport("reset".into()), 10, d);
        assert_eq!(
            (t.requests, t.correct, t.corrupt_served, t.clear_errors),
            (4, 1, 1, 1)
        );
        assert_eq!((t.transport_errors, t.bytes_verified), (1, 10));
        assert_eq!(t.samples.len(), 3);
    }

    #[test]
    fn proxy_p99_is_the_bucket_holding_the_99th_request() {
        let text = "\
athens_request_duration_seconds_bucket{route=\"zip\",le=\"0.1\"} 90
athens_request_duration_seconds_bucket{route=\"zip\",le=\"1\"} 99
athens_request_duration_seconds_bucket{route=\"zip\",le=\"+Inf\"} 100
athens_request_duration_seconds_bucket{route=\"mod\",le=\"0.1\"} 100
athens_request_duration_seconds_bucket{route=\"mod\",le=\"1\"} 100
athens_request_duration_seconds_bucket{route=\"mod\",le=\"+Inf\"} 100
athens_request_duration_seconds_count{route=\"mod\"} 100
";
        let f = ProxyFigures::parse(text);
        assert_eq!(f.proxy_requests, Some(200));
        assert_eq!(f.proxy_p99_le_s, Some(1.0));
        assert_eq!(ProxyFigures::parse("").proxy_requests, None);
    }
}
