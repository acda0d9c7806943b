//! The next `status` as a pure function of what the reconciler observed.

use super::preflight::Problem;
use crate::crd::{AthensProxyStatus, DEGRADED, GOPROXY_INJECTION, MONITORING, PROGRESSING, READY};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Status, reason and message of a condition about an optional feature (GoproxyInjection,
/// Monitoring), decided by the step that handles it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionState {
    /// "True", "False" or "Unknown".
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// What one reconcile saw.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    /// `metadata.generation` of the resource.
    pub generation: Option<i64>,
    /// The proxy's Deployment as the API server last returned it, if it exists.
    pub deployment: Option<&'a Deployment>,
    /// Why the spec cannot be applied, if it cannot.
    pub problem: Option<Problem>,
    /// In-cluster URL of the Service.
    pub url: String,
    /// Label selector of the pods.
    pub selector: String,
    /// Cluster-wide GOPROXY, when the operator injects (else no such condition).
    pub injection: Option<ConditionState>,
    /// The ServiceMonitor or PodMonitor, when the spec asks for one.
    pub monitoring: Option<ConditionState>,
}

/// A condition without its transition time: what decides whether it changed.
#[derive(Debug, Clone, PartialEq)]
struct Cond {
    type_: &'static str,
    status: &'static str,
    reason: String,
    message: String,
}

fn cond(type_: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Cond {
    Cond {
        type_,
        status: if status { "True" } else { "False" },
        reason: reason.into(),
        message: message.into(),
    }
}

/// Rollout facts from a Deployment.
struct Rollout {
    desired: i32,
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    current: bool,
    /// (reason, message) of a failure the Deployment controller reports.
    failure: Option<(String, String)>,
}

fn rollout(d: &Deployment) -> Rollout {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let mut failure = None;
    for c in st.conditions.iter().flatten() {
        if c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            failure = Some((
                "ProgressDeadlineExceeded".to_string(),
                c.message.clone().unwrap_or_default(),
            ));
        }
        if c.type_ == "ReplicaFailure" && c.status == "True" {
            failure = Some((
                "ReplicaFailure".to_string(),
                c.message.clone().unwrap_or_default(),
            ));
        }
    }
    Rollout {
        desired,
        replicas: st.replicas.unwrap_or(0),
        updated: st.updated_replicas.unwrap_or(0),
        ready: st.ready_replicas.unwrap_or(0),
        available: st.available_replicas.unwrap_or(0),
        current: st.observed_generation.unwrap_or(-1) >= generation,
        failure,
    }
}

/// The status to write next. Conditions whose status, reason and message are unchanged keep
/// their `lastTransitionTime`, so an unchanged world gives a status equal to `prev`.
pub fn next_status(
    prev: Option<&AthensProxyStatus>,
    obs: &Observed<'_>,
    now: &Time,
) -> AthensProxyStatus {
    let r = obs.deployment.map(rollout);
    let conds = conditions(r.as_ref(), obs);
    let prev_conds = prev.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let conditions = conds
        .into_iter()
        .map(|c| to_condition(c, prev_conds, obs.generation, now))
        .collect();
    AthensProxyStatus {
        observed_generation: obs.generation,
        replicas: r.as_ref().map(|r| r.replicas),
        ready_replicas: r.as_ref().map(|r| r.ready),
        selector: Some(obs.selector.clone()),
        url: obs.deployment.map(|_| obs.url.clone()),
        conditions,
    }
}

fn conditions(r: Option<&Rollout>, obs: &Observed<'_>) -> Vec<Cond> {
    let problem = obs.problem.as_ref().map(|p| (p.reason(), p.to_string()));
    let ready = match (r, &problem) {
        (None, Some((reason, message))) => cond(READY, false, reason, message.clone()),
        (None, None) => cond(
            READY,
            false,
            "Creating",
            "the Deployment does not exist yet",
        ),
        (Some(r), _) if r.desired == 0 => cond(
            READY,
            false,
            "ScaledToZero",
            "spec.replicas is 0: nothing serves",
        ),
        (Some(r), _) if r.available > 0 => cond(
            READY,
            true,
            "Available",
            format!(
                "{} of {} replicas available at {}",
                r.available, r.desired, obs.url
            ),
        ),
        (Some(r), _) => cond(
            READY,
            false,
            "NoReplicasAvailable",
            format!("0 of {} replicas available", r.desired),
        ),
    };
    let progressing = match r {
        None => cond(PROGRESSING, false, "NotApplied", "nothing applied yet"),
        Some(r) => match &r.failure {
            Some((reason, message)) if reason == "ProgressDeadlineExceeded" => {
                cond(PROGRESSING, false, reason, message.clone())
            }
            _ if r.current
                && r.updated == r.desired
                && r.replicas == r.desired
                && r.available == r.desired =>
            {
                cond(
                    PROGRESSING,
                    false,
                    "RolloutComplete",
                    format!(
                        "{} of {} replicas up to date and available",
                        r.available, r.desired
                    ),
                )
            }
            _ => cond(
                PROGRESSING,
                true,
                "RollingOut",
                format!(
                    "{} of {} replicas updated, {} available",
                    r.updated, r.desired, r.available
                ),
            ),
        },
    };
    let degraded = match (&problem, r.and_then(|r| r.failure.as_ref())) {
        (Some((reason, message)), _) => cond(DEGRADED, true, reason, message.clone()),
        (None, Some((reason, message))) => cond(DEGRADED, true, reason, message.clone()),
        (None, None) => cond(DEGRADED, false, "AsExpected", "the spec is applied"),
    };
    let mut all = vec![ready, progressing, degraded];
    for (type_, c) in [
        (GOPROXY_INJECTION, &obs.injection),
        (MONITORING, &obs.monitoring),
    ] {
        if let Some(c) = c {
            all.push(Cond {
                type_,
                status: c.status,
                reason: c.reason.to_string(),
                message: c.message.clone(),
            });
        }
    }
    all
}

fn to_condition(c: Cond, prev: &[Condition], generation: Option<i64>, now: &Time) -> Condition {
    let status = c.status.to_string();
    let since = prev
        .iter()
        .find(|p| p.type_ == c.type_ && p.status == status)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: c.type_.to_string(),
        status,
        reason: c.reason,
        message: c.message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn dep(desired: i32, updated: i32, available: i32) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(desired),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(2),
                replicas: Some(desired.max(updated)),
                updated_replicas: Some(updated),
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        };
        d.metadata.generation = Some(2);
        d
    }

    fn obs(d: Option<&Deployment>) -> Observed<'_> {
        Observed {
            generation: Some(7),
            deployment: d,
            problem: None,
            url: "http://p.ns.svc.cluster.local".into(),
            selector: "a=b".into(),
            injection: None,
            monitoring: None,
        }
    }

    #[test]
    fn injection_condition_only_when_injecting() {
        let d = dep(1, 1, 1);
        let s = next_status(None, &obs(Some(&d)), &t(1));
        assert!(s.condition(GOPROXY_INJECTION).is_none());
        let mut o = obs(Some(&d));
        o.injection = Some(ConditionState {
            status: "Unknown",
            reason: "Pending",
            message: "m".into(),
        });
        let s = next_status(None, &o, &t(1));
        let c = s.condition(GOPROXY_INJECTION).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "Pending")
        );
    }

    #[test]
    fn ready_when_rolled_out() {
        let d = dep(2, 2, 2);
        let s = next_status(None, &obs(Some(&d)), &t(1));
        assert!(s.is_true(READY));
        assert!(!s.is_true(PROGRESSING));
        assert!(!s.is_true(DEGRADED));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.observed_generation, Some(7));
        assert_eq!(s.url.as_deref(), Some("http://p.ns.svc.cluster.local"));
        assert_eq!(s.condition(READY).unwrap().observed_generation, Some(7));
    }

    #[test]
    fn progressing_while_rolling() {
        let d = dep(2, 1, 0);
        let s = next_status(None, &obs(Some(&d)), &t(1));
        assert!(!s.is_true(READY));
        assert!(s.is_true(PROGRESSING));
        assert_eq!(s.condition(PROGRESSING).unwrap().reason, "RollingOut");
    }

    #[test]
    fn unchanged_world_gives_equal_status() {
        let d = dep(1, 1, 1);
        let first = next_status(None, &obs(Some(&d)), &t(1));
        let again = next_status(Some(&first), &obs(Some(&d)), &t(99));
        assert_eq!(first, again);
        let d2 = dep(1, 1, 0);
        let changed = next_status(Some(&first), &obs(Some(&d2)), &t(99));
        assert_eq!(
            changed.condition(READY).unwrap().last_transition_time,
            t(99)
        );
        assert_eq!(
            changed.condition(DEGRADED).unwrap().last_transition_time,
            t(1)
        );
    }

    #[test]
    fn problem_is_degraded() {
        let mut o = obs(None);
        o.problem = Some(Problem::SecretNotFound { secret: "x".into() });
        let s = next_status(None, &o, &t(1));
        assert!(s.is_true(DEGRADED));
        assert_eq!(s.condition(DEGRADED).unwrap().reason, "SecretNotFound");
        assert_eq!(s.condition(READY).unwrap().reason, "SecretNotFound");
        assert_eq!(s.url, None);
    }

    #[test]
    fn deadline_exceeded_is_degraded() {
        let mut d = dep(1, 1, 0);
        d.status.as_mut().unwrap().conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("too slow".into()),
            ..Default::default()
        }]);
        let s = next_status(None, &obs(Some(&d)), &t(1));
        assert!(s.is_true(DEGRADED));
        assert_eq!(
            s.condition(PROGRESSING).unwrap().reason,
            "ProgressDeadlineExceeded"
        );
    }
}
