//! Report: the Events of one reconcile, computed as values from what preflight found, what
//! apply did and how the status changed; the reconciler publishes them after writing the status.

use super::preflight::Problem;
use crate::crd::{AthensProxyStatus, DEGRADED, READY};
use kube::runtime::events::EventType;

/// One Event to publish on the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

/// What apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The Deployment did not exist before.
    pub created: bool,
    /// Pod-template hash before and after.
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    /// A claim the operator created and deleted because the spec no longer uses it.
    pub deleted_claim: Option<String>,
}

fn note(type_: EventType, reason: &'static str, action: &'static str, message: String) -> Note {
    Note {
        type_,
        reason,
        action,
        message,
    }
}

/// The Events of one reconcile: a problem once per change of it; what was created, rolled or
/// deleted; becoming Ready; recovering from Degraded.
pub fn notes(
    prev: Option<&AthensProxyStatus>,
    next: &AthensProxyStatus,
    problem: Option<&Problem>,
    applied: Option<&Applied>,
    url: &str,
) -> Vec<Note> {
    let mut out = Vec::new();
    if let Some(p) = problem {
        if changed_condition(prev, next, DEGRADED) {
            out.push(note(
                EventType::Warning,
                p.reason(),
                "Reconcile",
                p.to_string(),
            ));
        }
        return out;
    }
    if let Some(a) = applied {
        if let Some(claim) = &a.deleted_claim {
            out.push(note(
                EventType::Normal,
                "Deleted",
                "Delete",
                format!("deleted PersistentVolumeClaim {claim} (no longer used)"),
            ));
        }
        if a.created {
            out.push(note(
                EventType::Normal,
                "Created",
                "Apply",
                format!("created Deployment, Service and ConfigMap for {url}"),
            ));
        } else if a.old_hash != a.new_hash {
            out.push(note(
                EventType::Normal,
                "RollingUpdate",
                "Apply",
                format!(
                    "configuration or credentials changed (hash {} -> {}): rolling the pods",
                    a.old_hash.as_deref().unwrap_or_default(),
                    a.new_hash.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    if next.is_true(READY) && !prev.is_some_and(|s| s.is_true(READY)) {
        out.push(note(
            EventType::Normal,
            "Ready",
            "Reconcile",
            format!("serving at {url}"),
        ));
    }
    if !next.is_true(DEGRADED) && prev.is_some_and(|s| s.is_true(DEGRADED)) {
        out.push(note(
            EventType::Normal,
            "Recovered",
            "Reconcile",
            "the spec is applied again".into(),
        ));
    }
    out
}

/// Whether condition `type_` differs in status, reason or message.
fn changed_condition(
    prev: Option<&AthensProxyStatus>,
    next: &AthensProxyStatus,
    type_: &str,
) -> bool {
    let key = |s: Option<&AthensProxyStatus>| {
        s.and_then(|s| s.condition(type_))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    key(prev) != key(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{Observed, next_status};
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    const URL: &str = "http://p.ns.svc.cluster.local";

    fn status(available: Option<i32>, problem: Option<Problem>) -> AthensProxyStatus {
        let d = available.map(|a| Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                replicas: Some(1),
                updated_replicas: Some(1),
                available_replicas: Some(a),
                ready_replicas: Some(a),
                ..Default::default()
            }),
            ..Default::default()
        });
        let obs = Observed {
            generation: Some(1),
            deployment: d.as_ref(),
            problem,
            url: URL.into(),
            selector: "a=b".into(),
            injection: None,
            monitoring: None,
        };
        next_status(None, &obs, &Time(Timestamp::UNIX_EPOCH))
    }

    fn reasons(notes: &[Note]) -> Vec<&str> {
        notes.iter().map(|n| n.reason).collect()
    }

    fn secret_missing() -> Problem {
        Problem::SecretNotFound { secret: "s".into() }
    }

    #[test]
    fn a_problem_is_a_warning_once() {
        let bad = status(None, Some(secret_missing()));
        let first = notes(None, &bad, Some(&secret_missing()), None, URL);
        assert_eq!(reasons(&first), ["SecretNotFound"]);
        assert_eq!(first[0].type_, EventType::Warning);
        assert_eq!(first[0].message, secret_missing().to_string());
        let again = notes(Some(&bad), &bad, Some(&secret_missing()), None, URL);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn create_then_ready_then_roll() {
        let creating = status(Some(0), None);
        let created = Applied {
            created: true,
            new_hash: Some("h1".into()),
            ..Default::default()
        };
        assert_eq!(
            reasons(&notes(None, &creating, None, Some(&created), URL)),
            ["Created"]
        );
        let ready = status(Some(1), None);
        let same = Applied {
            old_hash: Some("h1".into()),
            new_hash: Some("h1".into()),
            ..Default::default()
        };
        assert_eq!(
            reasons(&notes(Some(&creating), &ready, None, Some(&same), URL)),
            ["Ready"]
        );
        assert!(notes(Some(&ready), &ready, None, Some(&same), URL).is_empty());
        let rolled = Applied {
            new_hash: Some("h2".into()),
            deleted_claim: Some("p-storage".into()),
            ..same
        };
        let n = notes(Some(&ready), &ready, None, Some(&rolled), URL);
        assert_eq!(reasons(&n), ["Deleted", "RollingUpdate"]);
        assert!(n[1].message.contains("h1 -> h2"), "{}", n[1].message);
    }

    #[test]
    fn recovering_is_reported() {
        let bad = status(None, Some(secret_missing()));
        let ready = status(Some(1), None);
        let applied = Applied {
            created: true,
            ..Default::default()
        };
        assert_eq!(
            reasons(&notes(Some(&bad), &ready, None, Some(&applied), URL)),
            ["Created", "Ready", "Recovered"]
        );
    }
}
