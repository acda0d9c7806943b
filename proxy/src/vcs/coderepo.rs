//! One module inside one repository, answered the way cmd/go/internal/modfetch/coderepo.go
//! answers it: the version list from tags, the directory holding a version (`findDir`), its
//! go.mod and its zip. Reads go through the mirror; call on `spawn_blocking`.

use super::git::{self, GitError, Refs};
use super::gomod::module_path;
use super::limits::{MAX_GO_MOD, MAX_LICENSE};
use super::modzip::{self, Kind};
use super::pseudo;
use crate::module::{ModulePath, Version, check_path_major};
use gix::ObjectId;

/// Why a version cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The go command would say the version does not exist or is invalid here.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What the tags alone say about a module's versions (see [`CodeRepo::tagged`]).
#[derive(Debug)]
pub enum Tagged {
    Complete(Vec<Version>),
    /// `+incompatible` candidates whose listing depends on go.mod files.
    NeedsGoMod {
        list: Vec<Version>,
        incompatible: Vec<Version>,
    },
}

/// A module path mapped into a repository (newCodeRepo).
#[derive(Debug, Clone)]
pub struct CodeRepo {
    pub module: ModulePath,
    /// The repository root's import path.
    pub code_root: String,
    /// The module's directory in the repository ("" for the root).
    pub code_dir: String,
    /// `/v2`, `.v3` or "".
    pub path_major: String,
}

impl CodeRepo {
    pub fn new(module: ModulePath, code_root: &str, subdir: &str) -> Result<Self, RepoError> {
        let path = module.as_str().to_string();
        let path_major = module.major_suffix().unwrap_or("").to_string();
        let path_prefix = if code_root == path {
            path.clone()
        } else {
            module.prefix().to_string()
        };
        let mut code_dir = String::new();
        if code_root != path {
            if !has_path_prefix(&path_prefix, code_root) {
                return Err(RepoError::NotFound(format!(
                    "repository rooted at {code_root} cannot contain module {path}"
                )));
            }
            code_dir = path_prefix[code_root.len()..].trim_matches('/').to_string();
        }
        if !subdir.is_empty() {
            code_dir = [code_dir.as_str(), subdir]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
        }
        Ok(Self {
            module,
            code_root: code_root.to_string(),
            code_dir,
            path_major,
        })
    }

    /// The tag a canonical version comes from (revToRev): `dir/` prefixed, without
    /// `+incompatible`.
    pub fn tag_for(&self, v: &Version) -> String {
        let base = v.as_str().trim_end_matches("+incompatible");
        if self.code_dir.is_empty() {
            base.to_string()
        } else {
            format!("{}/{base}", self.code_dir)
        }
    }

    /// The versions the tags name, when that needs no file of the repository: everything but
    /// `+incompatible` candidates (v2+ tags of a root module without a major suffix), which
    /// depend on whether their releases have a go.mod. `list` on a repository with no mirror
    /// yet answers from the ref advertisement alone when this is complete.
    pub fn tagged(&self, refs: &Refs) -> Tagged {
        let prefix = if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        };
        let (mut list, mut incompatible) = (Vec::new(), Vec::new());
        for (tag, _) in &refs.tags {
            let Some(v) = tag.strip_prefix(&prefix) else {
                continue;
            };
            // Canonical tags only (semver.Canonical drops build metadata, so `+` never is).
            let Some(v) = Version::parse(v).ok().filter(|v| !v.as_str().contains('+')) else {
                continue;
            };
            if v.is_pseudo() {
                continue;
            }
            if check_path_major(&v, &self.module).is_err() {
                if self.code_dir.is_empty()
                    && self.path_major.is_empty()
                    && !matches!(v.major(), "v0" | "v1")
                {
                    incompatible.push(v);
                }
                continue;
            }
            list.push(v);
        }
        list.sort();
        incompatible.sort();
        if incompatible.is_empty() || !self.path_major.is_empty() {
            return Tagged::Complete(list);
        }
        Tagged::NeedsGoMod { list, incompatible }
    }

    /// The `list` answer (Versions + appendIncompatibleVersions).
    pub fn versions(&self, repo: &gix::Repository, refs: &Refs) -> Result<Vec<Version>, RepoError> {
        let (mut list, incompatible) = match self.tagged(refs) {
            Tagged::Complete(list) => return Ok(list),
            Tagged::NeedsGoMod { list, incompatible } => (list, incompatible),
        };
        let has_go_mod = |v: &Version| -> Result<bool, RepoError> {
            let Some(id) = refs.tag(&self.tag_for(v)) else {
                return Ok(false);
            };
            Ok(git::read_file(repo, id, "go.mod", MAX_GO_MOD)?.is_some())
        };
        if let Some(last) = list.last()
            && has_go_mod(last)?
        {
            return Ok(list);
        }
        // Per major version: only when its latest release has no go.mod.
        let mut i = 0;
        while i < incompatible.len() {
            let major = incompatible[i].major().to_string();
            let j = incompatible[i..]
                .iter()
                .position(|v| v.major() != major)
                .map_or(incompatible.len(), |k| i + k);
            if !has_go_mod(&incompatible[j - 1])? {
                for v in &incompatible[i..j] {
                    if let Ok(iv) = Version::parse(&format!("{}+incompatible", v.as_str())) {
                        list.push(iv);
                    }
                }
            }
            i = j;
        }
        Ok(list)
    }

    /// The commit, module directory and go.mod (if any) of a canonical version: a tag, or the
    /// commit a pseudo-version names (findDir, plus Stat's `+incompatible` rules).
    pub fn find_dir(
        &self,
        repo: &gix::Repository,
        refs: &Refs,
        v: &Version,
    ) -> Result<(ObjectId, String, Option<Vec<u8>>), RepoError> {
        let id = format!("{}@{}", self.module.as_str(), v.as_str());
        check_path_major(v, &self.module).map_err(|e| RepoError::NotFound(e.to_string()))?;
        let rev = if v.is_pseudo() {
            let hex = v.as_str().trim_end_matches("+incompatible");
            let hex = hex.rsplit('-').next().unwrap_or("");
            git::commit_by_prefix(repo, hex).ok_or_else(|| {
                RepoError::NotFound(format!("{id}: invalid version: unknown revision {hex}"))
            })?
        } else {
            let tag = self.tag_for(v);
            refs.tag(&tag).ok_or_else(|| {
                RepoError::NotFound(format!("{id}: invalid version: unknown revision {tag}"))
            })?
        };
        if v.is_pseudo() {
            self.check_pseudo(repo, refs, v, rev).map_err(|why| {
                RepoError::NotFound(format!("{id}: invalid pseudo-version: {why}"))
            })?;
        }
        if v.is_incompatible() {
            if !self.code_dir.is_empty() || !self.path_major.is_empty() {
                return Err(RepoError::NotFound(format!(
                    "{id}: invalid version: +incompatible suffix not allowed: module path has a \
                     major version suffix or is in a subdirectory"
                )));
            }
            if git::read_file(repo, rev, "go.mod", MAX_GO_MOD)?.is_some() {
                return Err(RepoError::NotFound(format!(
                    "{id}: invalid version: module contains a go.mod file, so module path must \
                     match major version (\"{}/{}\")",
                    self.module.as_str(),
                    v.major()
                )));
            }
        }
        self.dir_at(repo, rev, &id)
    }

    /// The go command's `validatePseudoVersion`: a pseudo-version must name its commit by the
    /// 12-digit short hash and the commit's time, and its base must be a tag the commit
    /// descends from (not one on the commit itself), so no commit gets a name above its
    /// history or more than the finite set of names its tags allow.
    fn check_pseudo(
        &self,
        repo: &gix::Repository,
        refs: &Refs,
        v: &Version,
        rev: ObjectId,
    ) -> Result<(), String> {
        let claims = pseudo::parts(v).map_err(|e| e.to_string())?;
        let short: String = rev.to_string().chars().take(12).collect();
        if claims.rev != short {
            return Err(if claims.rev.starts_with(&short) {
                format!("revision is longer than canonical (expected {short})")
            } else if short.starts_with(&claims.rev) {
                format!("revision is shorter than canonical (expected {short})")
            } else {
                format!("does not match short name of revision (expected {short})")
            });
        }
        let time = git::commit_time(repo, rev).map_err(|e| e.to_string())?;
        let expected = chrono::DateTime::from_timestamp(time, 0)
            .unwrap_or_default()
            .format("%Y%m%d%H%M%S")
            .to_string();
        if claims.time != expected {
            return Err(format!(
                "does not match version-control timestamp (expected {expected})"
            ));
        }
        let Some(base) = claims.base else {
            if self.path_major.is_empty() && v.major() == "v1" {
                return Err("major version without preceding tag must be v0, not v1".into());
            }
            return Ok(());
        };
        let prefix = if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        };
        for (tag, c) in &refs.tags {
            if *c == rev && tag.strip_prefix(prefix.as_str()) == Some(base.as_str()) {
                return Err(format!(
                    "tag ({tag}) found on revision {short} is already canonical, so should not \
                     be replaced with a pseudo-version derived from that tag"
                ));
            }
        }
        // Tags equal to the base as versions (`v1.2.3+meta` too), as semver.Compare sees them.
        let same = |tag: &str| {
            let t = tag.strip_prefix(prefix.as_str())?;
            let core = t.split_once('+').map_or(t, |(c, _)| c);
            (core == base).then_some(())
        };
        let candidates: Vec<&(String, ObjectId)> = refs
            .tags
            .iter()
            .filter(|(t, _)| same(t).is_some())
            .collect();
        let Some((last, _)) = candidates.last() else {
            return Err(format!("preceding tag ({base}) not found"));
        };
        let tags: Vec<ObjectId> = candidates.iter().map(|(_, c)| *c).collect();
        if git::descends_from(repo, rev, &tags).map_err(|e| e.to_string())? {
            return Ok(());
        }
        Err(format!(
            "revision {} is not a descendent of preceding tag ({last})",
            claims.rev
        ))
    }

    /// findDir at a commit: `<dir>/go.mod`, or `<dir>/vN/go.mod` for a `/vN` path.
    fn dir_at(
        &self,
        repo: &gix::Repository,
        rev: ObjectId,
        id: &str,
    ) -> Result<(ObjectId, String, Option<Vec<u8>>), RepoError> {
        let file1 = join(&self.code_dir, "go.mod");
        let gomod1 = git::read_file(repo, rev, &file1, MAX_GO_MOD)?;
        let mpath1 = gomod1.as_deref().map(module_path).unwrap_or_default();
        let found1 = gomod1.is_some()
            && (is_major(&mpath1, &self.path_major)
                || (self.path_major.is_empty() && mpath1.starts_with("gopkg.in/")));
        if !self.path_major.is_empty()
            && self.code_root != self.module.as_str()
            && !self.path_major.starts_with('.')
        {
            let dir2 = join(&self.code_dir, &self.path_major[1..]);
            let gomod2 = git::read_file(repo, rev, &join(&dir2, "go.mod"), MAX_GO_MOD)?;
            let mpath2 = gomod2.as_deref().map(module_path).unwrap_or_default();
            let found2 = gomod2.is_some() && is_major(&mpath2, &self.path_major);
            if found1 && found2 {
                return Err(RepoError::NotFound(format!(
                    "{id}: {file1} and {dir2}/go.mod both claim the module"
                )));
            }
            if found2 {
                return Ok((rev, dir2, gomod2));
            }
            if gomod2.is_some() {
                return Err(RepoError::NotFound(format!(
                    "{id}: {dir2}/go.mod has module path {mpath2:?}"
                )));
            }
        }
        if found1 {
            return Ok((rev, self.code_dir.clone(), gomod1));
        }
        if gomod1.is_some() {
            return Err(RepoError::NotFound(format!(
                "{id}: {file1} has module path {mpath1:?}"
            )));
        }
        if self.code_dir.is_empty()
            && (self.path_major.is_empty() || self.path_major.starts_with('.'))
        {
            return Ok((rev, String::new(), None));
        }
        Err(RepoError::NotFound(format!(
            "{id}: missing {}/go.mod",
            self.module.prefix()
        )))
    }

    /// Resolves a revision query (a branch, a tag, `HEAD`, a commit hash or prefix of at least
    /// 7 digits) to the version the go command would name it (Stat + convert): a canonical tag
    /// on that commit, else a pseudo-version based on the highest allowed tag in its history.
    /// Retractions are not taken into account when picking the base tag.
    pub fn stat(
        &self,
        repo: &gix::Repository,
        refs: &Refs,
        query: &str,
    ) -> Result<(Version, ObjectId), RepoError> {
        let id = format!("{}@{query}", self.module.as_str());
        let unknown =
            || RepoError::NotFound(format!("{id}: invalid version: unknown revision {query}"));
        let (rev, tag_name) = if let Some(c) = refs.tag(query) {
            (c, Some(query))
        } else if let Some((_, c)) = refs.heads.iter().find(|(n, _)| n == query) {
            (*c, None)
        } else if query == "HEAD" {
            (refs.head.ok_or_else(unknown)?, None)
        } else if (7..=40).contains(&query.len()) && query.bytes().all(|b| b.is_ascii_hexdigit()) {
            let q = query.to_ascii_lowercase();
            let mut known: Vec<ObjectId> = refs
                .tags
                .iter()
                .chain(&refs.heads)
                .map(|(_, c)| *c)
                .filter(|c| c.to_string().starts_with(&q))
                .collect();
            known.sort();
            known.dedup();
            match known.len() {
                1 => (known[0], None),
                0 => (git::commit_by_prefix(repo, &q).ok_or_else(unknown)?, None),
                _ => {
                    return Err(RepoError::NotFound(format!(
                        "{id}: ambiguous revision {query}"
                    )));
                }
            }
        } else {
            return Err(unknown());
        };
        let prefix = if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        };
        let incompatible_ok = std::cell::RefCell::new(std::collections::HashMap::new());
        let can_use_incompatible = |v: Option<&Version>| -> Result<bool, RepoError> {
            if !self.code_dir.is_empty() || !self.path_major.is_empty() {
                return Ok(false);
            }
            let cached = incompatible_ok.borrow().get("").copied();
            let root_ok = match cached {
                Some(ok) => ok,
                None => {
                    let ok = git::read_file(repo, rev, "go.mod", MAX_GO_MOD)?.is_none();
                    incompatible_ok.borrow_mut().insert(String::new(), ok);
                    ok
                }
            };
            let Some(v) = v.filter(|_| root_ok) else {
                return Ok(root_ok);
            };
            let major = v.major().to_string();
            if let Some(ok) = incompatible_ok.borrow().get(&major) {
                return Ok(*ok);
            }
            let ok = git::read_file(repo, rev, &format!("{major}/go.mod"), MAX_GO_MOD)?.is_none();
            incompatible_ok.borrow_mut().insert(major, ok);
            Ok(ok)
        };
        let check_canonical = |v: Version| -> Result<(Version, ObjectId), RepoError> {
            self.dir_at(repo, rev, &id)?;
            let base = Version::parse(v.as_str().trim_end_matches("+incompatible"))
                .map_err(|e| RepoError::NotFound(format!("{id}: {e}")))?;
            if !match_path_major(&base, &self.path_major) {
                if can_use_incompatible(Some(&base))? {
                    let v = Version::parse(&format!("{}+incompatible", base.as_str()))
                        .map_err(|e| RepoError::NotFound(format!("{id}: {e}")))?;
                    return Ok((v, rev));
                }
                return Err(RepoError::NotFound(format!(
                    "{id}: invalid version: module path must match major version {}",
                    base.major()
                )));
            }
            Ok((base, rev))
        };
        let tag_to_version = |tag: &str| -> Option<(Version, bool)> {
            let trimmed = tag.strip_prefix(prefix.as_str())?;
            let (core, canonical) = match trimmed.split_once('+') {
                Some((core, _)) => (core, false),
                None => (trimmed, true),
            };
            let v = Version::parse(core).ok()?;
            (!v.is_pseudo()).then_some((v, canonical))
        };
        if let Some((v, true)) = tag_name.and_then(tag_to_version)
            && let Ok(found) = check_canonical(v)
        {
            return Ok(found);
        }
        let mut highest: Option<Version> = None;
        for (tag, c) in &refs.tags {
            if *c != rev {
                continue;
            }
            if let Some((v, true)) = tag_to_version(tag)
                && highest.as_ref().is_none_or(|h| *h < v)
                && (match_path_major(&v, &self.path_major) || can_use_incompatible(Some(&v))?)
            {
                highest = Some(v);
            }
        }
        if let Some(v) = highest {
            return check_canonical(v);
        }
        let history = git::ancestors(repo, rev)?;
        let mut base: Option<Version> = None;
        for (tag, c) in &refs.tags {
            if !history.contains(c) {
                continue;
            }
            let Some((v, _)) = tag_to_version(tag) else {
                continue;
            };
            if !(match_path_major(&v, &self.path_major) || can_use_incompatible(Some(&v))?) {
                continue;
            }
            if base.as_ref().is_none_or(|b| *b < v) {
                base = Some(v);
            }
        }
        let time = git::commit_time(repo, rev)?;
        let short: String = rev.to_string().chars().take(12).collect();
        let major = self
            .path_major
            .trim_start_matches(['/', '.'])
            .trim_end_matches("-unstable");
        let pseudo = pseudo_version(major, base.as_ref(), time, &short);
        let v = Version::parse(&pseudo).map_err(|e| RepoError::NotFound(format!("{id}: {e}")))?;
        check_canonical(v)
    }

    /// The `.mod` answer: the go.mod, or `module <path>` for a module without one.
    pub fn go_mod(gomod: Option<Vec<u8>>, module: &ModulePath) -> Vec<u8> {
        // LegacyGoMod; a valid module path never needs modfile.AutoQuote's quotes.
        gomod.unwrap_or_else(|| format!("module {}\n", module.as_str()).into_bytes())
    }

    /// The module's files as the zip holds them (name relative to the module root, blob id),
    /// with the repository's LICENSE added to a module in a subdirectory that has none.
    pub fn zip_files(
        &self,
        repo: &gix::Repository,
        rev: ObjectId,
        dir: &str,
        gomod: Option<&[u8]>,
    ) -> Result<Vec<(String, ObjectId)>, RepoError> {
        let tree = git::list_tree(repo, rev, dir)?;
        let plain: Vec<_> = tree.iter().map(|(f, _)| f.clone()).collect();
        let keep = modzip::select(&plain, gomod).map_err(|e| {
            RepoError::NotFound(format!("{}: create zip: {e}", self.module.as_str()))
        })?;
        let mut out = Vec::with_capacity(keep.len() + 1);
        let mut have_license = false;
        for i in keep {
            let (f, oid) = &tree[i];
            debug_assert_eq!(f.kind, Kind::Regular);
            have_license |= f.path == "LICENSE";
            out.push((f.path.clone(), *oid));
        }
        if !have_license
            && !dir.is_empty()
            && let Some((id, size)) = git::file_id(repo, rev, "LICENSE")?
            && size <= MAX_LICENSE
        {
            out.push(("LICENSE".into(), id));
        }
        Ok(out)
    }
}

/// x/mod `module.PseudoVersion`: `vX.0.0-<time>-<rev>` without a base,
/// `vX.Y.(Z+1)-0.<time>-<rev>` after a release, `vX.Y.Z-pre.0.<time>-<rev>` after a prerelease.
pub fn pseudo_version(major: &str, older: Option<&Version>, secs: i64, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let ts = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y%m%d%H%M%S");
    let segment = format!("{ts}-{rev}");
    let Some(older) = older else {
        return format!("{major}.0.0-{segment}");
    };
    let older = older.as_str().trim_end_matches("+incompatible");
    if older.contains('-') {
        return format!("{older}.0.{segment}");
    }
    let (head, patch) = older.rsplit_once('.').unwrap_or((older, "0"));
    format!("{head}.{}-0.{segment}", inc_decimal(patch))
}

/// A decimal string plus one, at any length.
fn inc_decimal(d: &str) -> String {
    let mut digits: Vec<u8> = d.bytes().collect();
    for b in digits.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8_lossy(&digits).into_owned();
        }
    }
    format!("1{}", String::from_utf8_lossy(&digits))
}

/// x/mod `module.MatchPathMajor` for a version without `+incompatible`.
fn match_path_major(v: &Version, path_major: &str) -> bool {
    let pm = path_major.trim_end_matches("-unstable");
    if pm == ".v1" && v.as_str().starts_with("v0.0.0-") {
        return true;
    }
    if pm.is_empty() {
        return matches!(v.major(), "v0" | "v1");
    }
    v.major() == &pm[1..]
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn has_path_prefix(s: &str, prefix: &str) -> bool {
    s == prefix
        || (s.starts_with(prefix)
            && (prefix.ends_with('/') || s.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// coderepo.go's isMajor: whether a go.mod's module path fits the major version `path_major`.
fn is_major(mpath: &str, path_major: &str) -> bool {
    let Ok(m) = ModulePath::new(mpath) else {
        return false;
    };
    let mmajor = m.major_suffix().unwrap_or("");
    if path_major.is_empty() {
        return matches!(m.major(), None | Some("v0") | Some("v1"));
    }
    if mmajor.is_empty() {
        return false;
    }
    path_major[1..] == mmajor[1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str, root: &str) -> CodeRepo {
        CodeRepo::new(ModulePath::new(path).unwrap(), root, "").unwrap()
    }

    #[test]
    fn module_directories_like_new_code_repo() {
        let r = repo("corp.test/r/sub/v2", "corp.test/r");
        assert_eq!((r.code_dir.as_str(), r.path_major.as_str()), ("sub", "/v2"));
        assert_eq!(r.tag_for(&Version::parse("v2.1.0").unwrap()), "sub/v2.1.0");
        let r = repo("corp.test/r/v3", "corp.test/r/v3");
        assert_eq!(r.code_dir, "");
        let r = repo("corp.test/r", "corp.test/r");
        assert_eq!(
            r.tag_for(&Version::parse("v4.0.0+incompatible").unwrap()),
            "v4.0.0"
        );
        assert!(CodeRepo::new(ModulePath::new("corp.test/x").unwrap(), "corp.test/r", "").is_err());
    }

    #[test]
    fn pseudo_versions_like_x_mod() {
        let t = 1_704_103_200; // 2024-01-01T10:00:00Z
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(
            pseudo_version("", None, t, "0123456789ab"),
            "v0.0.0-20240101100000-0123456789ab"
        );
        assert_eq!(
            pseudo_version("v2", None, t, "0123456789ab"),
            "v2.0.0-20240101100000-0123456789ab"
        );
        assert_eq!(
            pseudo_version("", Some(&v("v1.2.9")), t, "0123456789ab"),
            "v1.2.10-0.20240101100000-0123456789ab"
        );
        assert_eq!(
            pseudo_version("", Some(&v("v1.3.0-rc.1")), t, "0123456789ab"),
            "v1.3.0-rc.1.0.20240101100000-0123456789ab"
        );
        assert_eq!(inc_decimal("99"), "100");
        assert!(match_path_major(&v("v1.0.0"), ""));
        assert!(!match_path_major(&v("v2.0.0"), ""));
        assert!(match_path_major(&v("v2.0.0"), "/v2"));
    }

    #[test]
    fn majors() {
        assert!(is_major("corp.test/r/v2", "/v2"));
        assert!(!is_major("corp.test/r", "/v2"));
        assert!(is_major("corp.test/r", ""));
        assert!(!is_major("corp.test/r/v3", ""));
        assert!(!is_major("", ""));
    }
}
