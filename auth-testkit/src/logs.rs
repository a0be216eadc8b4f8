//! Capturing the log lines a test makes, to assert on them: that a warning was logged once,
//! or that no secret ever reaches the log.
//!
//! [`capture_logs`] installs one global `tracing` subscriber for the whole test binary (the
//! first time it is called) and routes each event to the capture of the thread it happens
//! on. A `#[tokio::test]` runs its app, the layer and [`MockIdp`](crate::MockIdp)'s handlers on
//! the test's own thread (the default current-thread runtime), so each test sees its own
//! lines and never another test's.
//!
//! Why not a scoped subscriber per test (`tracing::subscriber::set_default`): tracing caches
//! whether a callsite is enabled across threads, so a callsite another test's thread reached
//! first (with no capture, or a quieter one) could stay disabled for this test, and a test
//! checking its log would fail now and then. Here every span and event is decided when it
//! happens, by the capture of its thread.
//!
//! ```
//! # async fn demo() {
//! let (logs, _guard) = auth_testkit::capture_logs("auth_tower=debug,warn");
//! // ... drive the app in this test ...
//! assert_eq!(logs.count("session cookie did not open"), 0);
//! # }
//! ```

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once, PoisonError};

use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// The lines one [`capture_logs`] collected, formatted as `tracing_subscriber`'s `fmt`
/// layer writes them (no colours). Clones share the lines.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::fmt::Debug for CapturedLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturedLogs").field("bytes", &self.lock().len()).finish()
    }
}

impl CapturedLogs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// How many times `needle` occurs in what was captured so far.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Whether `needle` occurs in what was captured so far.
    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one thread captures: `(target prefix, most verbose level)` pairs, and where to.
type Capture = (Vec<(String, Level)>, CapturedLogs);

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Ends the capture of its thread when dropped.
#[derive(Debug)]
#[must_use = "the capture ends when the guard is dropped"]
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

/// Writes to the capture of the current thread, if any.
struct ThreadWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadWriter {
    type Writer = Box<dyn std::io::Write>;

    fn make_writer(&'a self) -> Self::Writer {
        match CAPTURE.with(|capture| capture.borrow().as_ref().map(|(_, logs)| logs.clone())) {
            Some(logs) => Box::new(logs),
            None => Box::new(std::io::sink()),
        }
    }
}

/// Enables what the current thread captures, decided for every span and event, never
/// cached per callsite.
struct Capturing;

impl<S> tracing_subscriber::layer::Filter<S> for Capturing {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        CAPTURE.with(|capture| {
            capture.borrow().as_ref().is_some_and(|(directives, _)| {
                directives
                    .iter()
                    .any(|(target, level)| meta.target().starts_with(target.as_str()) && meta.level() <= level)
            })
        })
    }

    fn callsite_enabled(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
}

/// Parses `"target=level,level,..."`: a bare level applies to every target.
fn directives(filter: &str) -> Vec<(String, Level)> {
    let level = |text: &str| {
        text.trim().parse::<Level>().unwrap_or_else(|_| {
            panic!("capture_logs: {text:?} in {filter:?} is not a level (trace, debug, info, warn or error)")
        })
    };
    filter
        .split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| match item.split_once('=') {
            Some((target, lvl)) => (target.trim().to_owned(), level(lvl)),
            None => (String::new(), level(item)),
        })
        .collect()
}

/// Captures the log lines of the current thread that `filter` lets through, until the
/// guard drops. `filter` is a comma-separated list of `target=level` (the target a prefix
/// of the event's, such as `auth_tower` or `auth_providers::oidc`) or a bare level for
/// every target: `"auth_tower=trace,warn"`.
///
/// # Panics
///
/// When `filter` holds something that is not a level, or when the test binary already set
/// another global `tracing` subscriber (the first call installs this one).
pub fn capture_logs(filter: &str) -> (CapturedLogs, CaptureGuard) {
    static INSTALL: Once = Once::new();
    let directives = directives(filter);
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer().with_writer(ThreadWriter).with_ansi(false).with_filter(Capturing);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).expect(
            "capture_logs installs the global tracing subscriber, and this test binary already has one: \
             capture with capture_logs only, or drop the other subscriber",
        );
    });
    let logs = CapturedLogs::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some((directives, logs.clone())));
    (logs, CaptureGuard(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_sees_its_thread_at_its_levels_and_ends_with_its_guard() {
        let (logs, guard) = capture_logs("auth_testkit=debug,warn");
        tracing::debug!("kept: debug of this crate");
        tracing::trace!("dropped: trace of this crate");
        tracing::warn!(target: "elsewhere", "kept: warn elsewhere");
        tracing::info!(target: "elsewhere", "dropped: info elsewhere");
        std::thread::spawn(|| tracing::warn!("dropped: another thread")).join().expect("the other thread logs");
        drop(guard);
        tracing::warn!("dropped: after the guard");
        let text = logs.text();
        assert_eq!(logs.count("kept:"), 2, "{text}");
        assert!(!logs.contains("dropped:"), "{text}");
    }

    #[test]
    #[should_panic(expected = "is not a level")]
    fn a_filter_that_is_not_a_level_is_named() {
        let _ = capture_logs("auth_tower=loud");
    }
}
