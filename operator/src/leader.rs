//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas can run and
//! only one reconciles.
//!
//! kube-runtime ships no leader election, so this is a small loop in the style of client-go:
//! a candidate takes the Lease when it is free or its holder stopped renewing for a lease
//! duration (measured on the candidate's own clock from when it last saw the record change, so
//! clock skew between nodes does not matter); the leader renews it every few seconds, and steps
//! down (the process exits and restarts as a candidate) when it cannot renew in time. On a clean
//! shutdown the leader releases the Lease so a standby takes over at once. Writes use the
//! Lease's resourceVersion, so two candidates never both win.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Timing and identity of one candidate.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews (and a candidate retries).
    pub retry_period: Duration,
}

impl LeaseSettings {
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A candidate for, and possibly holder of, the Lease.
pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observer: Observer,
}

/// Outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Leading,
    /// Someone else holds a valid Lease.
    Standby(String),
}

impl Elector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observer: Observer::default(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Waits until this candidate holds the Lease.
    pub async fn acquire(&self) {
        let mut last_holder = String::new();
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => return,
                Ok(Attempt::Standby(holder)) => {
                    if holder != last_holder {
                        tracing::info!(%holder, "standing by: another replica leads");
                        last_holder = holder;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews the Lease until it cannot; returns when leadership is lost.
    pub async fn hold(&self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => last_renewal = Instant::now(),
                Ok(Attempt::Standby(holder)) => {
                    tracing::error!(%holder, "lost the leader Lease to another replica");
                    return;
                }
                Err(e) => {
                    // Step down before the Lease could expire for others.
                    let deadline = self.settings.lease_duration - self.settings.retry_period;
                    if last_renewal.elapsed() >= deadline {
                        tracing::error!(error = %e, "could not renew the leader Lease in time");
                        return;
                    }
                    tracing::warn!(error = %e, "renewing the leader Lease failed; retrying");
                }
            }
        }
    }

    /// Gives the Lease up (best effort), so a standby replica takes over without waiting.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the leader Lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the leader Lease"),
        }
    }

    /// One round: create the Lease, renew ours, take over an expired one, or stand by.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration_secs = i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby(String::new())),
                Err(e) => Err(e),
            };
        };
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.settings.identity;
        if !ours && !holder.is_empty() {
            let held_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(duration_secs)).unwrap_or(15),
            );
            if !self.observer.expired(&rv, held_for, Instant::now()) {
                return Ok(Attempt::Standby(holder));
            }
            tracing::info!(%holder, "the leader Lease expired; taking over");
        }
        if !ours {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.settings.identity.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby(holder)),
            Err(e) => Err(e),
        }
    }
}

/// Remembers the Lease record last seen (its resourceVersion) and when, by our own clock.
#[derive(Default)]
struct Observer {
    observed: Mutex<Option<(String, Instant)>>,
}

impl Observer {
    /// Whether the record with resourceVersion `rv` has been unchanged for longer than
    /// `held_for` as of `now`. A record seen for the first time is never expired.
    fn expired(&self, rv: &str, held_for: Duration, now: Instant) -> bool {
        let Ok(mut observed) = self.observed.lock() else {
            return false;
        };
        match observed.as_ref() {
            Some((seen, since)) if seen == rv => now.duration_since(*since) > held_for,
            _ => {
                *observed = Some((rv.to_string(), now));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_only_after_staying_unchanged() {
        let o = Observer::default();
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        assert!(!o.expired("1", d, t0), "first sight");
        assert!(!o.expired("1", d, t0 + Duration::from_secs(10)));
        assert!(o.expired("1", d, t0 + Duration::from_secs(16)));
        // A renewal (new resourceVersion) restarts the clock.
        assert!(!o.expired("2", d, t0 + Duration::from_secs(17)));
        assert!(!o.expired("2", d, t0 + Duration::from_secs(30)));
        assert!(o.expired("2", d, t0 + Duration::from_secs(33)));
    }
}
