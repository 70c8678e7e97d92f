//! Prometheus metrics served at `/metrics`.

use crate::bus::relay::RelayStatus;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    relay_leader: IntGauge,
    relay_connected: IntGauge,
    relay_published: IntGauge,
    relay_lag_events: IntGauge,
    relay_lag_seconds: Gauge,
    mailer_lag_events: IntGauge,
    mailer_lag_seconds: Gauge,
    cache_listening: IntGauge,
    cache_lookups: IntGaugeVec,
    cache_entries: IntGaugeVec,
}

impl Metrics {
    /// Registers vouch's metrics in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "vouch_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "vouch_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        let relay_leader = IntGauge::new(
            "vouch_relay_leader",
            "1 if this instance relays the log to RabbitMQ",
        )?;
        let relay_connected = IntGauge::new(
            "vouch_relay_connected",
            "1 if the relay's broker connection is up",
        )?;
        let relay_published = IntGauge::new(
            "vouch_relay_published_events",
            "Events this instance published and the broker confirmed",
        )?;
        let relay_lag_events = IntGauge::new(
            "vouch_relay_lag_events",
            "Events in the log after the relay checkpoint",
        )?;
        let relay_lag_seconds = Gauge::new(
            "vouch_relay_lag_seconds",
            "Age of the oldest event not yet confirmed by the broker",
        )?;
        let mailer_lag_events = IntGauge::new(
            "vouch_mailer_lag_events",
            "Events in the log after the mailer checkpoint",
        )?;
        let mailer_lag_seconds = Gauge::new(
            "vouch_mailer_lag_seconds",
            "Age of the oldest event the mailer has not handled (its mails not yet accepted)",
        )?;
        let cache_listening = IntGauge::new(
            "vouch_credential_cache_listening",
            "1 if the credential cache receives invalidations (and so serves from memory)",
        )?;
        let cache_lookups = IntGaugeVec::new(
            Opts::new(
                "vouch_credential_cache_lookups",
                "Credential look-ups since start, answered from memory (hit) or not (miss)",
            ),
            &["outcome"],
        )?;
        let cache_entries = IntGaugeVec::new(
            Opts::new("vouch_credential_cache_entries", "Entries held, by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(cache_listening.clone()))?;
        registry.register(Box::new(cache_lookups.clone()))?;
        registry.register(Box::new(cache_entries.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(relay_leader.clone()))?;
        registry.register(Box::new(relay_connected.clone()))?;
        registry.register(Box::new(relay_published.clone()))?;
        registry.register(Box::new(relay_lag_events.clone()))?;
        registry.register(Box::new(relay_lag_seconds.clone()))?;
        registry.register(Box::new(mailer_lag_events.clone()))?;
        registry.register(Box::new(mailer_lag_seconds.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            relay_leader,
            relay_connected,
            relay_published,
            relay_lag_events,
            relay_lag_seconds,
            mailer_lag_events,
            mailer_lag_seconds,
            cache_listening,
            cache_lookups,
            cache_entries,
        })
    }

    /// Copies the credential cache's state into the gauges.
    pub fn observe_cache(&self, cache: &crate::instance::cache::CredentialCache) {
        self.cache_listening.set(i64::from(cache.is_following()));
        let (hits, misses) = cache.counts();
        let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
        self.cache_lookups
            .with_label_values(&["hit"])
            .set(clamp(hits));
        self.cache_lookups
            .with_label_values(&["miss"])
            .set(clamp(misses));
        let (keys, sessions) = cache.len();
        self.cache_entries
            .with_label_values(&["key"])
            .set(keys as i64);
        self.cache_entries
            .with_label_values(&["session"])
            .set(sessions as i64);
    }

    /// Copies the relay's state and lag into the gauges.
    pub fn observe_relay(&self, status: &RelayStatus, lag: Option<(i64, f64)>) {
        self.relay_leader
            .set(i64::from(status.leader.load(Ordering::SeqCst)));
        self.relay_connected
            .set(i64::from(status.connected.load(Ordering::SeqCst)));
        self.relay_published.set(
            status
                .published
                .load(Ordering::Relaxed)
                .min(i64::MAX as u64) as i64,
        );
        if let Some((events, seconds)) = lag {
            self.relay_lag_events.set(events);
            self.relay_lag_seconds.set(seconds);
        }
    }

    /// Copies the mailer's lag into the gauges.
    pub fn observe_mailer(&self, lag: Option<(i64, f64)>) {
        if let Some((events, seconds)) = lag {
            self.mailer_lag_events.set(events);
            self.mailer_lag_seconds.set(seconds);
        }
    }

    /// Records one finished request. `route` is the matched pattern or
    /// `unmatched`, and a method HTTP does not define is counted as `other`,
    /// so no client can add series.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The methods of RFC 9110 and PATCH keep their name as a label; any other is `other`.
fn method_label(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("FROBNICATE"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
