//! A network namespace made by the test, joined to the machine by one veth pair with a /30 of
//! link-local addresses: the container reaches servers the test runs on the host end, and the
//! host reaches the container, without touching the machine's own routes or sysctls. Dropping
//! it deletes the veth pair and the namespace, by name.

use anyhow::{Context, Result, bail};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct NetNs {
    /// `ip netns` name; the namespace file is /var/run/netns/<name>.
    pub name: String,
    /// Host end of the veth pair.
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    /// Address of the namespace's end: the pod IP.
    pub ns_ip: Ipv4Addr,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl NetNs {
    pub fn create() -> Result<NetNs> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() & 0xfffff) * 8 + n;
        let used = ip(&["-o", "-4", "addr", "show"])?;
        // 169.254.64.0/18, split into /30s; skip any the machine already uses.
        let (host_ip, ns_ip) = (0..4096)
            .map(|i| (id + i) % 4096)
            .map(|b| {
                let base = u32::from(Ipv4Addr::new(169, 254, 64, 0)) + b * 4;
                (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
            })
            .find(|(h, c)| !used.contains(&format!(" {h}/")) && !used.contains(&format!(" {c}/")))
            .context("no free /30 in 169.254.64.0/18")?;
        let ns = NetNs {
            name: format!("athens-image-{}-{n}", std::process::id()),
            host_if: format!("ai{:x}h", id),
            ns_ip,
            host_ip,
        };
        let peer = format!("ai{:x}c", id);
        ip(&["netns", "add", &ns.name])?;
        // From here on, Drop cleans up whatever was made.
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &ns.name,
        ])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        let n_ip = |args: &[&str]| {
            let mut all = vec!["-n", &ns.name];
            all.extend_from_slice(args);
            ip(&all)
        };
        n_ip(&["addr", "add", &format!("{ns_ip}/30"), "dev", &peer])?;
        n_ip(&["link", "set", &peer, "up"])?;
        n_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Whether the namespace and the host end still exist (for the cleanup check).
    pub fn exists(name: &str, host_if: &str) -> bool {
        let netns = ip(&["netns", "list"]).unwrap_or_default();
        let links = ip(&["-o", "link", "show"]).unwrap_or_default();
        netns.split_whitespace().any(|w| w == name) || links.contains(&format!(" {host_if}@"))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end deletes the pair.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `ip args…`, returning stdout.
fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
