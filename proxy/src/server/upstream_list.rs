//! Upstream's `list` answers, remembered briefly and refreshed without making clients wait.
//!
//! A busy module's `list` is asked for constantly (every `go get`, `go list -m -u`). Asking
//! upstream each time made `list` in strict mode as slow as upstream; remembering the answer
//! for a fixed time and then asking again made every request that arrived while the new
//! answer was on its way wait a full round trip, one upstream request each (measured: 0.31x
//! nginx, p99 75 ms, in docs/bench/results.md of 2026-12-06). Now:
//! - younger than [`FRESH`]: served as is;
//! - younger than [`FRESH`] + [`STALE`]: served as is, and the first such request starts one
//!   refresh in the background;
//! - older, or never asked: the request waits for upstream, and concurrent requests for the
//!   same module share that one upstream request.
//!
//! So a version tagged upstream is listed within `FRESH` plus a round trip for a module asked
//! for at least once a minute, and at the first request after that otherwise: one answer up to
//! a minute old (what a client may cache anyway), then the refreshed one.

use super::App;
use crate::fetch::negative_cache::{TtlCache, Weigh};
use crate::fetch::singleflight::Group;
use crate::module::{Version, parse_list};
use crate::upstream::UpstreamError;
use std::sync::Arc;
use std::time::Duration;

/// How long upstream's answer is served without asking again.
pub const FRESH: Duration = Duration::from_secs(5);
/// How much longer it is still served while a refresh is under way. With [`FRESH`], the 60 s
/// clients are told they may cache a `list` for (`reply::SHORT`): an answer this old could be
/// in any client's cache anyway. Shorter, a module asked for every few seconds still found its
/// answer expired and made its clients wait (the benchmark's alternating rounds did: p99 32 ms).
pub const STALE: Duration = Duration::from_secs(55);

/// Upstream's tagged versions, parsed and sorted once per answer.
type Fetched = Result<Arc<[Version]>, UpstreamError>;

/// What the memory says about a `list` path, by the remembered answer's age (pure).
#[derive(Debug, PartialEq, Eq)]
enum Freshness {
    Fresh,
    /// Serve it, and refresh in the background.
    Stale,
    /// Too old: ask upstream and wait.
    Expired,
}

fn freshness(age: Duration) -> Freshness {
    if age < FRESH {
        Freshness::Fresh
    } else if age < FRESH + STALE {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

impl Weigh for Arc<[Version]> {
    fn weight(&self) -> usize {
        self.iter().map(|v| v.as_str().len() + 24).sum()
    }
}

pub struct UpstreamLists {
    memory: TtlCache<Arc<[Version]>>,
    flights: Group<String, Fetched>,
}

impl Default for UpstreamLists {
    fn default() -> Self {
        Self {
            memory: TtlCache::new(FRESH + STALE),
            flights: Group::default(),
        }
    }
}

impl UpstreamLists {
    /// Upstream's `list` for `path` (`<module>/@v/list`), from memory when recent enough.
    pub async fn get(&self, app: &Arc<App>, path: &str) -> Fetched {
        if let Some((versions, age)) = self.memory.get_aged(path) {
            match freshness(age) {
                Freshness::Fresh => return Ok(versions),
                Freshness::Stale => {
                    // The refresh runs in its own task (see `Group::run`); this only starts it.
                    tokio::spawn(self.refresh(app, path));
                    return Ok(versions);
                }
                Freshness::Expired => {}
            }
        }
        self.refresh(app, path).await
    }

    /// One upstream request for `path` however many callers ask at once; a success is
    /// remembered before any caller sees it.
    fn refresh(
        &self,
        app: &Arc<App>,
        path: &str,
    ) -> impl std::future::Future<Output = Fetched> + Send + 'static {
        let (app, key, flights) = (app.clone(), path.to_string(), self.flights.clone());
        let gone = Err(UpstreamError::Transport {
            url: key.clone(),
            reason: "list refresh task ended unexpectedly".into(),
        });
        let path = key.clone();
        let work = async move {
            let fetched = super::protocol::fetch_small(&app, &path)
                .await
                .map(|body| Arc::from(parse_list(&String::from_utf8_lossy(&body))));
            if let Ok(versions) = &fetched {
                app.upstream_lists.memory.put(&path, Arc::clone(versions));
            }
            fetched
        };
        async move { flights.run(key, work, gone).await.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_fresh_then_stale_then_expired() {
        assert_eq!(freshness(Duration::ZERO), Freshness::Fresh);
        assert_eq!(
            freshness(FRESH - Duration::from_millis(1)),
            Freshness::Fresh
        );
        assert_eq!(freshness(FRESH), Freshness::Stale);
        assert_eq!(
            freshness(FRESH + STALE - Duration::from_millis(1)),
            Freshness::Stale
        );
        assert_eq!(freshness(FRESH + STALE), Freshness::Expired);
    }
}
