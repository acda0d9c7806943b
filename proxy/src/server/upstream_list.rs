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
//!
//! Each answer also keeps the last body rendered from it ([`Answer::body`]): merging hundreds
//! of upstream versions with storage's and filtering each, per request, cost a strict `list`
//! about a quarter of its throughput next to an offline one.

use super::App;
use super::policy::Rules;
use crate::fetch::negative_cache::{TtlCache, Weigh};
use crate::fetch::singleflight::Group;
use crate::module::{Version, parse_list};
use crate::upstream::UpstreamError;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long upstream's answer is served without asking again.
pub const FRESH: Duration = Duration::from_secs(5);
/// How much longer it is still served while a refresh is under way. With [`FRESH`], the 60 s
/// clients are told they may cache a `list` for (`reply::SHORT`): an answer this old could be
/// in any client's cache anyway. Shorter, a module asked for every few seconds still found its
/// answer expired and made its clients wait (the benchmark's alternating rounds did: p99 32 ms).
pub const STALE: Duration = Duration::from_secs(55);

/// Upstream's answer for one module.
type Fetched = Result<Arc<Answer>, UpstreamError>;

/// Upstream's tagged versions, parsed and sorted once per answer, and the last body rendered
/// from them.
pub struct Answer {
    pub versions: Box<[Version]>,
    rendered: Mutex<Option<Rendered>>,
    /// A refresh of this answer is under way: requests meanwhile serve it without starting
    /// another (the single flight would share the upstream request, but not the task).
    refreshing: AtomicBool,
}

/// A `list` body and what it was made from besides the answer: storage's versions and the
/// filter rules in force (a reload swaps in a new `Arc`).
struct Rendered {
    stored: Vec<Version>,
    rules: Arc<Rules>,
    body: Bytes,
}

impl Answer {
    pub fn new(versions: Vec<Version>) -> Self {
        Self {
            versions: versions.into(),
            rendered: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    /// Whether the caller is the one to refresh this answer (the first to ask since it was
    /// fetched, or since the last refresh failed).
    fn claim_refresh(&self) -> bool {
        !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// The refresh failed: the next request past [`FRESH`] tries again.
    fn refresh_failed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    /// The body for this answer with `stored` and `rules`: the last one when they are the same,
    /// else `render(upstream versions, rules)`, kept for the next request.
    pub fn body(
        &self,
        stored: &[Version],
        rules: &Arc<Rules>,
        render: impl FnOnce(&[Version], &Rules) -> String,
    ) -> Bytes {
        let same = |r: &Rendered| Arc::ptr_eq(&r.rules, rules) && r.stored == stored;
        if let Ok(last) = self.rendered.lock()
            && let Some(r) = last.as_ref().filter(|r| same(r))
        {
            return r.body.clone();
        }
        // Rendered outside the lock; two requests racing here both render, the last one is kept.
        let body = Bytes::from(render(&self.versions, rules));
        if let Ok(mut last) = self.rendered.lock() {
            *last = Some(Rendered {
                stored: stored.to_vec(),
                rules: Arc::clone(rules),
                body: body.clone(),
            });
        }
        body
    }
}

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

impl Weigh for Arc<Answer> {
    /// The versions, counted twice: the rendered body holds each again.
    fn weight(&self) -> usize {
        self.versions
            .iter()
            .map(|v| 2 * v.as_str().len() + 24)
            .sum()
    }
}

pub struct UpstreamLists {
    memory: TtlCache<Arc<Answer>>,
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
                    // The refresh runs in its own task (see `Group::run`); this only starts it,
                    // once per answer. A success replaces the answer in memory.
                    if versions.claim_refresh() {
                        let (old, refresh) = (Arc::clone(&versions), self.refresh(app, path));
                        tokio::spawn(async move {
                            if refresh.await.is_err() {
                                old.refresh_failed();
                            }
                        });
                    }
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
                .map(|body| Arc::new(Answer::new(parse_list(&String::from_utf8_lossy(&body)))));
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

    #[test]
    fn one_refresh_per_answer_until_it_fails() {
        let answer = Answer::new(Vec::new());
        assert!(answer.claim_refresh());
        assert!(!answer.claim_refresh(), "one is under way");
        answer.refresh_failed();
        assert!(answer.claim_refresh(), "a failed refresh is tried again");
    }

    fn versions(v: &[&str]) -> Vec<Version> {
        v.iter().map(|v| Version::parse(v).unwrap()).collect()
    }

    #[test]
    fn a_body_is_rendered_again_only_when_storage_or_rules_change() {
        let answer = Answer::new(versions(&["v1.0.0", "v1.1.0"]));
        let rules = Arc::new(Rules::default());
        let renders = std::cell::Cell::new(0);
        let render = |upstream: &[Version], _: &Rules| {
            renders.set(renders.get() + 1);
            format!("{} upstream, render {}", upstream.len(), renders.get())
        };
        let stored = versions(&["v1.0.0"]);
        let first = answer.body(&stored, &rules, render);
        assert_eq!(first, "2 upstream, render 1");
        assert_eq!(answer.body(&stored, &rules, render), first);
        assert_eq!(renders.get(), 1);

        let more = versions(&["v1.0.0", "v1.2.0"]);
        assert_eq!(answer.body(&more, &rules, render), "2 upstream, render 2");
        let reloaded = Arc::new(Rules::default());
        assert_eq!(
            answer.body(&more, &reloaded, render),
            "2 upstream, render 3"
        );
        assert_eq!(
            answer.body(&more, &reloaded, render),
            "2 upstream, render 3"
        );
        assert_eq!(renders.get(), 3);
    }
}
