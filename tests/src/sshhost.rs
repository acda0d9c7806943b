//! An SSH git host made by the test: Debian's `sshd` (tests/peers/git-tools installs it) on a
//! loopback address and a port it picks, with its own host key, one authorized client key
//! made here, and `git-upload-pack` run by the login shell as on any SSH git server. Nothing of
//! the machine's own SSH setup is read or changed: the server gets its own configuration file,
//! and clients get the key and a known_hosts file from [`SshHost`].

use anyhow::{Context, Result, bail, ensure};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd; stopped on drop (or by [`SshHost::stop`]).
pub struct SshHost {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The account the server logs clients into (the one running the test).
    pub user: String,
    /// The client's private key (authorized on the server).
    pub key: PathBuf,
    /// A known_hosts file with the server's host key, as `[ip]:port`.
    pub known_hosts: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl SshHost {
    /// Starts sshd on `ip` (a port below the ephemeral range, picked at random and retried).
    pub fn start(ip: Ipv4Addr) -> Result<SshHost> {
        ensure!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing (tests/peers/git-tools installs openssh-server)"
        );
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        keygen(&d.join("host_ed25519"))?;
        keygen(&d.join("client_ed25519"))?;
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys"))?;
        let user = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?
            .trim()
            .to_string();
        // sshd started as root wants its privilege separation directory (made by the init
        // script, which never ran in a container).
        if user == "root" {
            std::fs::create_dir_all("/run/sshd")?;
        }
        let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub"))?;
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64;
        let mut last = String::new();
        for i in 0..10u64 {
            let port = 20000
                + (seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(i * 7919)
                    >> 33) as u16
                    % 12000;
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress {ip}\nHostKey {d}/host_ed25519\n\
                     PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                     PubkeyAuthentication yes\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                     PermitRootLogin prohibit-password\nAcceptEnv GIT_PROTOCOL\n\
                     LogLevel VERBOSE\n",
                    d = d.display()
                ),
            )?;
            let log = std::fs::File::create(d.join("sshd.log"))?;
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting sshd")?;
            let addr = SocketAddr::from((ip, port));
            let deadline = Instant::now() + Duration::from_secs(20);
            let up = loop {
                if let Some(status) = child.try_wait()? {
                    last = format!(
                        "sshd exited ({status}): {}",
                        std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
                    );
                    break false;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("sshd did not listen on {addr} within 20s");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if !up {
                continue;
            }
            let known_hosts = d.join("known_hosts");
            std::fs::write(
                &known_hosts,
                format!("[{ip}]:{port} {} {}\n", host_pub[0], host_pub[1]),
            )?;
            return Ok(SshHost {
                ip,
                port,
                user,
                key: d.join("client_ed25519"),
                known_hosts,
                child: Some(child),
                _dir: dir,
            });
        }
        bail!("sshd did not start on any port tried: {last}")
    }

    /// `ssh://<user>@<ip>:<port>`: a repository URL is this plus its absolute path.
    pub fn url_base(&self) -> String {
        format!("ssh://{}@{}:{}", self.user, self.ip, self.port)
    }

    /// The `GIT_SSH_COMMAND` for git clients (the go command's): this key and known_hosts
    /// only, nothing from `~/.ssh`.
    pub fn git_ssh_command(&self) -> String {
        format!(
            "ssh -F /dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o UserKnownHostsFile={} -i {}",
            self.known_hosts.display(),
            self.key.display()
        )
    }

    /// The private key's secret lines (between the armour lines): must never appear anywhere
    /// the proxy writes.
    pub fn secret_lines(&self) -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(&self.key)?
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 20)
            .map(str::to_string)
            .collect())
    }

    /// Stops the server (connections in progress end too).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) -> Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "athens-test", "-f"])
        .arg(path)
        .output()
        .context("running ssh-keygen (tests/peers/git-tools installs openssh-client)")?;
    ensure!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
