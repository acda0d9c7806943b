//! What a Dockerfile's final stage puts in its image, read from the text: files copied, user,
//! env, entrypoint, cmd, exposed ports and labels, following `FROM <stage>` to its bases.
//! Enough of the syntax for our Dockerfile; anything else in a final stage is an error, so a
//! new instruction cannot slip past the comparison with the layouts.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stage {
    /// Absolute destination paths of the files the stage (and its bases) copy.
    pub files: Vec<String>,
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub expose: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The image `docker build --target <target>` makes, as far as [`Stage`] describes it. `args`
/// are the build arguments (`--build-arg`); an `ARG` without one takes its default.
pub fn stage(dockerfile: &str, target: &str, args: &BTreeMap<String, String>) -> Result<Stage> {
    let stages = split(dockerfile);
    let mut chain = Vec::new();
    let mut name = target.to_string();
    loop {
        let (base, body) = stages
            .get(&name)
            .with_context(|| format!("no stage {name}"))?;
        chain.push(body);
        if base == "scratch" {
            break;
        }
        if !stages.contains_key(base) {
            bail!("final stages must start FROM scratch or another stage, {name} is FROM {base}");
        }
        name = base.clone();
    }
    let mut s = Stage::default();
    let mut vars = BTreeMap::new();
    for body in chain.into_iter().rev() {
        for line in body {
            let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let rest = substitute(rest.trim(), &vars);
            match word.to_ascii_uppercase().as_str() {
                "ARG" => {
                    let (k, default) = rest.split_once('=').unwrap_or((&rest, ""));
                    let v = args.get(k).cloned().unwrap_or_else(|| unquote(default));
                    vars.insert(k.to_string(), v);
                }
                "COPY" => s.files.extend(copy_destinations(&rest)?),
                "USER" => s.user = Some(rest),
                "ENV" => {
                    for (k, v) in pairs(&rest)? {
                        s.env.retain(|e| !e.starts_with(&format!("{k}=")));
                        s.env.push(format!("{k}={v}"));
                    }
                }
                "LABEL" => s.labels.extend(pairs(&rest)?),
                "ENTRYPOINT" => s.entrypoint = serde_json::from_str(&rest)?,
                "CMD" => s.cmd = serde_json::from_str(&rest)?,
                "EXPOSE" => s.expose.extend(rest.split_whitespace().map(|p| {
                    if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    }
                })),
                other => bail!(
                    "instruction {other} in a final stage: teach tests/src/image/dockerfile.rs what it adds"
                ),
            }
        }
    }
    s.files.sort();
    Ok(s)
}

/// Stage name → (base, instructions after FROM), with comments dropped and continued lines
/// joined.
fn split(dockerfile: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for raw in dockerfile.lines() {
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                cur.push_str(part.trim());
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                lines.push(std::mem::take(&mut cur));
            }
        }
    }
    let mut stages: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in lines.into_iter().filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0].eq_ignore_ascii_case("FROM") {
            let base = words.iter().skip(1).find(|w| !w.starts_with("--"));
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|i| words.get(i + 1));
            let name = name.map_or_else(|| format!("#{}", stages.len()), |n| n.to_string());
            stages.insert(name.clone(), (base.unwrap_or(&"").to_string(), Vec::new()));
            current = Some(name);
        } else if let Some(c) = &current {
            stages.get_mut(c).expect("current stage").1.push(line);
        }
    }
    stages
}

/// `COPY [--from=x] [--chmod=…] src… dest`: each source lands at `dest` (a file) or at
/// `dest/<basename>` when `dest` ends with `/`. Folder sources would hide what they hold.
fn copy_destinations(rest: &str) -> Result<Vec<String>> {
    let words: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let Some((dest, sources)) = words.split_last() else {
        bail!("COPY without arguments");
    };
    if sources.is_empty() {
        bail!("COPY {rest}: no source");
    }
    let mut out = Vec::new();
    for src in sources {
        if src.ends_with('/') {
            bail!("COPY {src}: copy files one by one so the file list stays checkable");
        }
        if let Some(dir) = dest.strip_suffix('/') {
            let base = src.rsplit('/').next().unwrap_or(src);
            out.push(format!("{dir}/{base}"));
        } else if sources.len() > 1 {
            bail!("COPY of several files needs a destination ending with /");
        } else {
            out.push(dest.to_string());
        }
    }
    Ok(out)
}

/// `k=v k2="v 2"` pairs (ENV, LABEL).
fn pairs(rest: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| !c.is_whitespace()) {
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("cannot read key=value pairs in {rest:?}");
        }
        out.push((key, value));
    }
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

/// `${NAME}` and `$NAME` from build arguments.
fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
FROM rust AS build
RUN cargo build
FROM scratch AS base
# a comment
COPY --from=build /a/ca.crt /etc/ssl/ca.crt
COPY files/passwd files/group \
     /etc/
USER 1:1
ENV HOME=/tmp X="a b"
FROM base AS app
ARG V=1.0
LABEL org.version="${V}" org.source=""
COPY --from=build /out/app /bin/app
EXPOSE 80
ENTRYPOINT ["/bin/app"]
CMD ["run"]
"#;

    #[test]
    fn reads_a_final_stage_and_its_base() {
        let s = stage(FILE, "app", &BTreeMap::new()).unwrap();
        assert_eq!(
            s.files,
            ["/bin/app", "/etc/group", "/etc/passwd", "/etc/ssl/ca.crt"]
        );
        assert_eq!(s.user.as_deref(), Some("1:1"));
        assert_eq!(s.env, ["HOME=/tmp", "X=a b"]);
        assert_eq!(s.entrypoint, ["/bin/app"]);
        assert_eq!(s.cmd, ["run"]);
        assert_eq!(s.expose, ["80/tcp"]);
        assert_eq!(s.labels["org.version"], "1.0");
        assert_eq!(s.labels["org.source"], "");
        let args = BTreeMap::from([("V".to_string(), "2.0".to_string())]);
        assert_eq!(
            stage(FILE, "app", &args).unwrap().labels["org.version"],
            "2.0"
        );
    }

    #[test]
    fn refuses_what_it_cannot_account_for() {
        assert!(stage(FILE, "nope", &BTreeMap::new()).is_err());
        // A base that is not scratch brings files we cannot list.
        assert!(
            stage(
                &FILE.replace("FROM scratch", "FROM debian"),
                "app",
                &BTreeMap::new()
            )
            .is_err()
        );
        let with_run = FILE.replace("EXPOSE 80", "RUN rm -rf /");
        assert!(stage(&with_run, "app", &BTreeMap::new()).is_err());
        let dir_copy = FILE.replace("/out/app /bin/app", "/out/ /bin/");
        assert!(stage(&dir_copy, "app", &BTreeMap::new()).is_err());
    }
}
