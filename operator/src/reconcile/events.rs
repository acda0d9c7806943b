//! Kubernetes Events about an `AthensProxy`: what the operator did and what is wrong.

use crate::crd::AthensProxy;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

/// Publishes an Event on `proxy`. Failing to publish is logged, never fatal.
pub async fn publish(
    recorder: &Recorder,
    proxy: &AthensProxy,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &proxy.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
