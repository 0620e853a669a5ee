//! Desktop notifications: shows the notices that
//! [`backscatter_policy::digest`] batches, over D-Bus via notify-rust, and
//! falls back to a log line where there is no notification service
//! (headless, SSH, CI).

pub use backscatter_policy::digest::*;

/// Show a notice on the desktop; where that fails (no notification
/// service), log it instead.
pub async fn show(n: &Notice) {
    let mut note = notify_rust::Notification::new();
    note.appname("backscatter")
        .summary(&escape(&n.title))
        .body(&escape(&n.body));
    if n.urgent {
        note.urgency(notify_rust::Urgency::Critical);
    }
    let shown = tokio::time::timeout(std::time::Duration::from_secs(5), note.show_async()).await;
    match shown {
        Ok(Ok(_)) => tracing::info!("notified: {}", n.title),
        _ => tracing::info!(
            "notification (no desktop notification service): {}: {}",
            n.title,
            n.body
        ),
    }
}
