//! Talking to a checksum database, directly or through a proxy that serves `/sumdb/<name>/`.

use reqwest::StatusCode;
use tracing::Instrument;

use std::collections::HashMap;

use base64::Engine as _;

use super::lookup::{SumdbRecord, parse_lookup};
use super::spec::SumdbSpec;
use super::tlog;
use crate::module::{unescape_path, unescape_version};
use crate::upstream::{Entry, FallThrough, Source, read_limited};
use crate::verify::VerifyError;

/// Largest lookup answer read (real answers are a few hundred bytes).
const MAX_LOOKUP_BODY: usize = 64 * 1024;
/// Largest error body read from the database (only its first line is shown).
const MAX_ERROR_BODY: usize = 4 * 1024;

/// A checksum database client.
///
/// The base URL is chosen like the `go` command does (modfetch `dbDial`): an explicit URL in the
/// spec is used as is; otherwise the first proxy (in order) whose `<proxy>/sumdb/<name>/supported`
/// answers 200 (404 and 410, or any error after a `|`, mean "try the next one"; `direct` or `off`
/// ends the search); otherwise `https://<name>`. The choice is made once and cached; a failed
/// probe is not cached.
#[derive(Debug)]
pub struct SumdbClient {
    spec: SumdbSpec,
    proxies: Vec<Entry>,
    http: reqwest::Client,
    base: tokio::sync::OnceCell<String>,
    /// Largest verified signed tree seen (size, root): every later tree must be consistent
    /// with it.
    latest: std::sync::Mutex<Option<(u64, tlog::Hash)>>,
    /// Tiles that were part of a proof that checked out. A tile's content never changes (a
    /// partial tile is named by its width), so they are reused as the go command reuses its
    /// on-disk tile cache: the upper levels are shared by nearly every lookup, and fetching
    /// them again made each cold `.mod` wait for several round trips in a row.
    tiles: std::sync::Mutex<HashMap<tlog::Tile, Vec<u8>>>,
}

/// Most tiles remembered (at most 8 KiB each): the cache is emptied when it is full.
const MAX_CACHED_TILES: usize = 512;

impl SumdbClient {
    /// `proxies` is the parsed `GOPROXY` list the proxy itself fetches from.
    pub fn new(spec: SumdbSpec, proxies: Vec<Entry>, http: reqwest::Client) -> Self {
        SumdbClient {
            spec,
            proxies,
            http,
            base: tokio::sync::OnceCell::new(),
            latest: std::sync::Mutex::new(None),
            tiles: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn spec(&self) -> &SumdbSpec {
        &self.spec
    }

    fn unavailable(&self, reason: String) -> VerifyError {
        VerifyError::SumdbUnavailable {
            name: self.spec.name.clone(),
            // Reasons quote URLs, which may be a proxy's with credentials in them.
            reason: athens_config::redact_userinfo(&reason),
        }
    }

    /// The base URL lookups go to (no trailing slash), choosing it on first use.
    pub async fn base_url(&self) -> Result<&str, VerifyError> {
        self.base
            .get_or_try_init(|| self.choose_base())
            .await
            .map(String::as_str)
    }

    async fn choose_base(&self) -> Result<String, VerifyError> {
        if let Some(u) = &self.spec.url {
            return Ok(u.clone());
        }
        for entry in &self.proxies {
            let proxy = match &entry.source {
                Source::Url(u) => u.trim_end_matches('/'),
                Source::Direct | Source::Off => break,
            };
            let lower = proxy.to_ascii_lowercase();
            if !(lower.starts_with("https://") || lower.starts_with("http://")) {
                continue; // e.g. file:// proxies: cannot serve us
            }
            let base = format!("{proxy}/sumdb/{}", self.spec.name);
            let url = format!("{base}/supported");
            let answer = match self.http.get(&url).send().await {
                Ok(resp) => match resp.status() {
                    StatusCode::OK => return Ok(base),
                    StatusCode::NOT_FOUND | StatusCode::GONE => continue,
                    s => Err(self.unavailable(format!("GET {url}: {s}"))),
                },
                Err(e) => Err(self.unavailable(format!("GET {url}: {e}"))),
            };
            if entry.fall_through == FallThrough::OnAnyError {
                continue;
            }
            return answer;
        }
        Ok(self.spec.direct_url())
    }

    /// Looks up `module@version` (both already case-escaped, as in proxy URLs) and returns the
    /// database's hashes, authenticated: the tree note must carry the spec's key's signature,
    /// the record must be proven in that signed tree (tiles on its path fetched from
    /// `<base>/tile/...` and the root recomputed), and the tree must be consistent with the
    /// largest tree this client has seen (in memory, per process). This holds whether the answer
    /// came from the database itself or through an upstream proxy.
    ///
    /// 404 and 410 give [`VerifyError::NotInSumdb`]: the database does not know this version.
    pub async fn lookup(
        &self,
        module_escaped: &str,
        version: &str,
    ) -> Result<SumdbRecord, VerifyError> {
        let module = unescape_path(module_escaped).map_err(|e| VerifyError::MalformedLookup {
            name: self.spec.name.clone(),
            module: module_escaped.to_string(),
            version: version.to_string(),
            reason: e.to_string(),
        })?;
        let version_plain =
            unescape_version(version).map_err(|e| VerifyError::MalformedLookup {
                name: self.spec.name.clone(),
                module: module.clone(),
                version: version.to_string(),
                reason: e.to_string(),
            })?;
        let base = self.base_url().await?;
        let url = format!("{base}/lookup/{module_escaped}@{version}");
        let (status, body) = async {
            let resp = self.get(&url).await?;
            let status = resp.status();
            let limit = if status == StatusCode::OK {
                MAX_LOOKUP_BODY
            } else {
                MAX_ERROR_BODY
            };
            let body = read_limited(resp, limit)
                .await
                .map_err(|e| self.unavailable(format!("GET {url}: answer {e}")))?;
            Ok::<_, VerifyError>((status, body))
        }
        .instrument(tracing::info_span!("sumdb_get"))
        .await?;
        match status {
            StatusCode::OK => {
                let mut rec = parse_lookup(
                    &body,
                    &self.spec.name,
                    &module,
                    &version_plain,
                    Some(&self.spec.verifier_key),
                )?;
                // One proof after the other: the consistency proof mostly needs the newer
                // tree's edge tiles the inclusion proof has just fetched and remembered (run at
                // once, both fetched them: 209 tile requests instead of 189 for the 79 versions
                // of tests/bench/coldfill).
                self.verify_inclusion(&rec, &module, &version_plain).await?;
                let root = decode_hash(&rec.tree_hash).ok_or_else(|| {
                    self.inconsistent(format!("bad tree hash {:?}", rec.tree_hash))
                })?;
                self.observe_tree(rec.tree_size, root).await?;
                rec.inclusion_verified = true;
                Ok(rec)
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(VerifyError::NotInSumdb {
                name: self.spec.name.clone(),
                module,
                version: version_plain,
                detail: format!("{}: {}", status.as_u16(), first_line(&body)),
            }),
            s => Err(self.unavailable(format!("GET {url}: {s}: {}", first_line(&body)))),
        }
    }
}

impl SumdbClient {
    /// Proves that `rec`'s record text is leaf `rec.id` of the tree whose root is
    /// `rec.tree_hash`, fetching the needed tiles from the database.
    pub async fn verify_inclusion(
        &self,
        rec: &SumdbRecord,
        module: &str,
        version: &str,
    ) -> Result<(), VerifyError> {
        let not_in_tree = |reason: String| VerifyError::NotInTree {
            name: self.spec.name.clone(),
            module: module.to_string(),
            version: version.to_string(),
            reason,
        };
        let root =
            decode_hash(&rec.tree_hash).ok_or_else(|| not_in_tree("bad tree hash".into()))?;
        let tiles = self
            .fetch_tiles(tlog::tiles_needed(rec.id, rec.tree_size))
            .await?;
        let leaf = tlog::record_hash(rec.record_text.as_bytes());
        match tlog::root_from_tiles(rec.id, rec.tree_size, leaf, &tiles) {
            Some(r) if r == root => {
                self.remember(tiles);
                Ok(())
            }
            Some(_) => Err(not_in_tree(format!(
                "inclusion proof for record {} does not lead to the signed root of tree size {}",
                rec.id, rec.tree_size
            ))),
            None => Err(not_in_tree("incomplete tiles".into())),
        }
    }

    fn inconsistent(&self, reason: String) -> VerifyError {
        VerifyError::TreeInconsistent {
            name: self.spec.name.clone(),
            reason,
        }
    }

    /// Records a verified signed tree, checking it against the largest one seen so far: equal
    /// sizes need equal roots, otherwise the smaller tree must be a prefix of the larger.
    async fn observe_tree(&self, size: u64, root: tlog::Hash) -> Result<(), VerifyError> {
        let prev = *self.latest.lock().unwrap_or_else(|e| e.into_inner());
        match prev {
            None => {}
            Some((n, h)) if n == size => {
                if h != root {
                    return Err(
                        self.inconsistent(format!("two different roots for tree size {size}"))
                    );
                }
                return Ok(());
            }
            Some((n, h)) if n < size => self.check_consistency((n, h), (size, root)).await?,
            Some((n, h)) => self.check_consistency((size, root), (n, h)).await?,
        }
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if latest.is_none_or(|(n, _)| n < size) {
            *latest = Some((size, root));
        }
        Ok(())
    }

    /// Checks, with tiles of the newer tree, that the tree `old` (size, root) is a prefix of the
    /// tree `new`.
    pub async fn check_consistency(
        &self,
        old: (u64, tlog::Hash),
        new: (u64, tlog::Hash),
    ) -> Result<(), VerifyError> {
        if old.0 == 0 {
            return Ok(());
        }
        if old.0 > new.0 {
            return Err(self.inconsistent(format!(
                "tree size {} is not a prefix of tree size {}",
                old.0, new.0
            )));
        }
        let tiles = self
            .fetch_tiles(tlog::consistency_tiles(old.0, new.0))
            .await?;
        match tlog::consistent_from_tiles(old.0, &old.1, new.0, &new.1, &tiles) {
            Some(true) => {
                self.remember(tiles);
                Ok(())
            }
            Some(false) => Err(self.inconsistent(format!(
                "tree of size {} is not a prefix of tree of size {}",
                old.0, new.0
            ))),
            None => Err(self.inconsistent("incomplete tiles".into())),
        }
    }

    /// Sends a GET to the database; a failure to get any answer makes it unavailable.
    async fn get(&self, url: &str) -> Result<reqwest::Response, VerifyError> {
        self.http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unavailable(format!("GET {url}: {e}")))
    }

    /// Keeps the tiles of a proof that checked out.
    fn remember(&self, tiles: HashMap<tlog::Tile, Vec<u8>>) {
        let mut cache = self.tiles.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + tiles.len() > MAX_CACHED_TILES {
            cache.clear();
        }
        cache.extend(tiles);
    }

    /// The tiles wanted: remembered ones, the others fetched from `<base>/tile/...` at once,
    /// each checked to hold exactly its width of hashes.
    async fn fetch_tiles(
        &self,
        wanted: std::collections::BTreeSet<tlog::Tile>,
    ) -> Result<HashMap<tlog::Tile, Vec<u8>>, VerifyError> {
        let mut tiles = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.tiles.lock().unwrap_or_else(|e| e.into_inner());
            for tile in wanted {
                match cache.get(&tile) {
                    Some(data) => {
                        tiles.insert(tile, data.clone());
                    }
                    None => missing.push(tile),
                }
            }
        }
        if missing.is_empty() {
            return Ok(tiles);
        }
        let base = self.base_url().await?;
        let span = tracing::info_span!("sumdb_tiles", count = missing.len());
        let fetched =
            futures::future::try_join_all(missing.into_iter().map(|t| self.fetch_tile(base, t)))
                .instrument(span)
                .await?;
        tiles.extend(fetched);
        Ok(tiles)
    }

    async fn fetch_tile(
        &self,
        base: &str,
        tile: tlog::Tile,
    ) -> Result<(tlog::Tile, Vec<u8>), VerifyError> {
        let url = format!("{base}/{}", tile.path());
        let resp = self.get(&url).await?;
        let status = resp.status();
        if status != StatusCode::OK {
            let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(self.unavailable(format!("GET {url}: {status}: {}", first_line(&body))));
        }
        // A tile is exactly its width of 32-byte hashes: read no more than that.
        let data = read_limited(resp, tile.width as usize * 32)
            .await
            .map_err(|e| self.unavailable(format!("GET {url}: {e}")))?;
        if data.len() != tile.width as usize * 32 {
            return Err(self.unavailable(format!(
                "GET {url}: {} bytes, want {}",
                data.len(),
                tile.width as usize * 32
            )));
        }
        Ok((tile, data.to_vec()))
    }
}

/// A base64 tree hash as 32 bytes.
pub fn decode_hash(b64: &str) -> Option<tlog::Hash> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|h| h.try_into().ok())
}

/// First line of an error body, printable and short.
fn first_line(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let line = s.lines().next().unwrap_or("").trim();
    let line: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.is_empty() {
        "no details".to_string()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_short() {
        assert_eq!(first_line(b"not found\nmore"), "not found");
        assert_eq!(first_line(b""), "no details");
    }
}
