//! The run's timeline as it happened: when each outage began and ended, read by every
//! request to know which phase it belongs to and whether an answer was excused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after the provider is back a login that was in flight may still fail.
pub(crate) const IDP_GRACE: Duration = Duration::from_secs(1);
/// How long after Redis answers again the app may still answer anonymous: its connection
/// to Redis is re-established on the next command, and a refresh that failed on the store
/// is not remembered, so the next request recovers; a second covers requests that were
/// already waiting on the dead connection. The report has the measured delay.
pub(crate) const REDIS_GRACE: Duration = Duration::from_secs(1);

/// An outage's edge.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    IdpDown,
    IdpUp,
    RedisDown,
    RedisUp,
}

/// A part of the run, for latency per phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Before,
    IdpDown,
    Between,
    RedisDown,
    After,
}

impl Phase {
    pub(crate) const ALL: [Phase; 5] = [Phase::Before, Phase::IdpDown, Phase::Between, Phase::RedisDown, Phase::After];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Phase::Before => "before the outages",
            Phase::IdpDown => "IdP down",
            Phase::Between => "IdP back, before the Redis outage",
            Phase::RedisDown => "Redis down (until it answers again)",
            Phase::After => "after the outages",
        }
    }
}

const UNSET: u64 = u64::MAX;

/// The start of the traffic and the outages' edges, in milliseconds from it.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    redis: bool,
    edges: [AtomicU64; 4],
}

impl Clock {
    pub(crate) fn new(start: Instant, redis: bool) -> Self {
        Self { start, redis, edges: [const { AtomicU64::new(UNSET) }; 4] }
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    /// `at` in milliseconds since the start.
    pub(crate) fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(UNSET - 1)
    }

    /// Records that `event` happens now.
    pub(crate) fn mark(&self, event: Event) {
        self.edges[event as usize].store(self.ms(Instant::now()), Ordering::SeqCst);
    }

    /// When `event` happened, in ms since the start.
    pub(crate) fn at(&self, event: Event) -> Option<u64> {
        Some(self.edges[event as usize].load(Ordering::SeqCst)).filter(|ms| *ms != UNSET)
    }

    /// The phase a request that began at `at` belongs to.
    pub(crate) fn phase(&self, at: Instant) -> Phase {
        let ms = self.ms(at);
        let reached = |event| self.at(event).is_some_and(|edge| ms >= edge);
        if reached(Event::RedisUp) {
            Phase::After
        } else if reached(Event::RedisDown) {
            Phase::RedisDown
        } else if reached(Event::IdpUp) {
            if self.redis { Phase::Between } else { Phase::After }
        } else if reached(Event::IdpDown) {
            Phase::IdpDown
        } else {
            Phase::Before
        }
    }

    /// Whether `[from, to]` overlaps the provider's outage (plus [`IDP_GRACE`]).
    pub(crate) fn idp_down_during(&self, from: Instant, to: Instant) -> bool {
        self.overlaps(Event::IdpDown, Event::IdpUp, IDP_GRACE, from, to)
    }

    /// Whether `[from, to]` overlaps Redis's outage (plus [`REDIS_GRACE`]).
    pub(crate) fn redis_down_during(&self, from: Instant, to: Instant) -> bool {
        self.overlaps(Event::RedisDown, Event::RedisUp, REDIS_GRACE, from, to)
    }

    fn overlaps(&self, down: Event, up: Event, grace: Duration, from: Instant, to: Instant) -> bool {
        let Some(down) = self.at(down) else { return false };
        let up = self.at(up).map_or(UNSET, |up| up.saturating_add(grace.as_millis() as u64));
        self.ms(to) >= down && self.ms(from) <= up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_windows_follow_the_marks() {
        let start = Instant::now() - Duration::from_secs(100);
        let clock = Clock::new(start, true);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(clock.phase(at(1)), Phase::Before);
        assert!(!clock.idp_down_during(at(1), at(2)));
        clock.edges[Event::IdpDown as usize].store(10_000, Ordering::SeqCst);
        assert_eq!(clock.phase(at(11)), Phase::IdpDown);
        assert!(clock.idp_down_during(at(9), at(10)), "an open outage covers what follows");
        assert!(clock.idp_down_during(at(50), at(51)));
        clock.edges[Event::IdpUp as usize].store(20_000, Ordering::SeqCst);
        assert_eq!(clock.phase(at(21)), Phase::Between);
        assert!(clock.idp_down_during(at(20), at(21)), "within the grace");
        assert!(!clock.idp_down_during(at(22), at(23)));
        clock.edges[Event::RedisDown as usize].store(30_000, Ordering::SeqCst);
        clock.edges[Event::RedisUp as usize].store(35_000, Ordering::SeqCst);
        assert_eq!(clock.phase(at(31)), Phase::RedisDown);
        assert_eq!(clock.phase(at(36)), Phase::After);
        assert!(clock.redis_down_during(at(35), at(35)), "within the grace");
        assert!(!clock.redis_down_during(at(37), at(38)));
        assert_eq!(Clock::new(start, false).phase(at(1)), Phase::Before);
    }
}
