//! Kubernetes Events about an `AthensProxy`: what the operator did and what is wrong.

use super::report::Note;
use crate::crd::AthensProxy;
use kube::Resource;
use kube::runtime::events::{Event, Recorder};

/// Publishes `note` as an Event on `proxy`. Failing to publish is logged, never fatal.
pub async fn publish(recorder: &Recorder, proxy: &AthensProxy, note: Note) {
    let ev = Event {
        type_: note.type_,
        reason: note.reason.into(),
        note: Some(note.message),
        action: note.action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &proxy.object_ref(&())).await {
        tracing::warn!(error = %e, reason = note.reason, "could not publish event");
    }
}
