//! The node's metrics, in Prometheus types, exposed through the Commonware runtime's registry.
//!
//! A [`Telemetry`] exists from the node's start, before any runtime: what it holds is counted
//! from the first block. Once the runtime runs, [`Telemetry::attach`] registers all of it in the
//! runtime's registry (and whatever is added later, as it is added), and [`Telemetry::encode`]
//! becomes the runtime's exposition: Kassa's metrics with Commonware's own (consensus, p2p,
//! storage, the runtime's tasks). Without a runtime (tests that drive the application
//! directly), `encode` exposes Kassa's metrics alone.
//!
//! Metrics read the wall clock; the state machine never sees them.

use crate::app::lock;
use commonware_runtime::Metrics as RuntimeMetrics;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every metric registered, and the runtime's registry once attached.
#[derive(Default)]
pub struct Telemetry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    metrics: Vec<Entry>,
    runtime: Option<Runtime>,
}

/// One registered metric: shared for encoding, and as its own type for [`Telemetry::metric`].
struct Entry {
    name: String,
    help: String,
    shared: Shared,
    typed: Box<dyn Any + Send + Sync>,
}

/// What keeps a metric in the runtime's registry (dropping it would unregister the metric).
type Handle = Box<dyn Any + Send + Sync>;

/// Registers a metric in the runtime's registry under a name and help.
type Register = Box<dyn Fn(&str, &str, Shared) -> Handle + Send + Sync>;

/// The runtime's registry: how to register in it and encode it, and the handles that keep what
/// was registered there.
struct Runtime {
    register: Register,
    encode: Arc<dyn Fn() -> String + Send + Sync>,
    handles: Vec<Handle>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("Telemetry")
            .field("metrics", &inner.metrics.len())
            .field("attached", &inner.runtime.is_some())
            .finish()
    }
}

/// A metric of any type, shared with the registry it is encoded from.
#[derive(Clone, Debug)]
struct Shared(Arc<dyn Metric>);

impl EncodeMetric for Shared {
    fn encode(&self, encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

impl Telemetry {
    /// The metric called `name`: the one registered under that name, or `make()`, registered
    /// now (in the runtime's registry too if it is attached). Prometheus metrics are handles:
    /// every clone counts into the same values.
    ///
    /// # Panics
    /// If a metric of another type was registered under `name`.
    pub fn metric<M: Metric + Clone>(&self, name: &str, help: &str, make: impl FnOnce() -> M) -> M {
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.metrics.iter().find(|e| e.name == name) {
            return e
                .typed
                .downcast_ref::<M>()
                .unwrap_or_else(|| panic!("metric {name} registered with another type"))
                .clone();
        }
        let metric = make();
        let entry = Entry {
            name: name.to_string(),
            help: help.to_string(),
            shared: Shared(Arc::new(metric.clone())),
            typed: Box::new(metric.clone()),
        };
        let Inner { metrics, runtime } = &mut *inner;
        if let Some(r) = runtime {
            let handle = (r.register)(&entry.name, &entry.help, entry.shared.clone());
            r.handles.push(handle);
        }
        metrics.push(entry);
        metric
    }

    /// Registers every metric in the runtime's registry, and from now on exposes that registry
    /// (once; later calls are ignored). The runtime prefixes names with the context's label:
    /// `context` is the root's child `kassa` (so `kassa_height` is registered as `height`), or
    /// the root itself.
    ///
    /// # Panics
    /// If a metric's name does not start with the context's label.
    pub fn attach<C: RuntimeMetrics>(&self, context: C) {
        let mut inner = lock(&self.inner);
        if inner.runtime.is_some() {
            return;
        }
        let label = context.name().label;
        let context = Arc::new(context);
        let registrar = context.clone();
        let mut runtime = Runtime {
            register: Box::new(move |name, help, metric| {
                let name = if label.is_empty() {
                    name
                } else {
                    name.strip_prefix(label.as_str())
                        .and_then(|n| n.strip_prefix('_'))
                        .unwrap_or_else(|| panic!("metric {name} is not under {label}"))
                };
                Box::new(registrar.register(name, help, metric))
            }),
            encode: Arc::new(move || context.encode()),
            handles: Vec::new(),
        };
        for e in &inner.metrics {
            let handle = (runtime.register)(&e.name, &e.help, e.shared.clone());
            runtime.handles.push(handle);
        }
        inner.runtime = Some(runtime);
    }

    /// Whether [`Telemetry::attach`] was called.
    pub fn attached(&self) -> bool {
        lock(&self.inner).runtime.is_some()
    }

    /// Every metric in the OpenMetrics text format: the runtime's whole registry once attached,
    /// else the metrics registered here.
    pub fn encode(&self) -> String {
        let inner = lock(&self.inner);
        if let Some(r) = &inner.runtime {
            let encode = r.encode.clone();
            // Encoded without this lock: registering waits for nothing but the runtime's.
            drop(inner);
            return encode();
        }
        let mut registry = Registry::default();
        for e in &inner.metrics {
            registry.register(e.name.clone(), e.help.clone(), e.shared.clone());
        }
        drop(inner);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a string");
        out
    }
}

/// A gauge read when the metrics are encoded (for values kept elsewhere, like the mempool's
/// size).
#[derive(Clone)]
pub struct Sampled(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Sampled {
    pub fn new(read: impl Fn() -> i64 + Send + Sync + 'static) -> Sampled {
        Sampled(Arc::new(read))
    }
}

impl std::fmt::Debug for Sampled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sampled")
    }
}

impl EncodeMetric for Sampled {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.0)())
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Latency buckets, in seconds, from 1 ms to about 33 s (doubling).
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

/// Fine latency buckets, in seconds, from 0.25 ms to about 8 s (doubling): for work that is
/// usually sub-millisecond, like serving a read.
pub fn fine_latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 16)
}

/// Milliseconds as a gauge's value (saturating).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What the node itself measures (beside what Commonware measures of consensus and p2p).
#[derive(Clone, Debug)]
pub(crate) struct NodeMetrics {
    pub height: Gauge,
    pub txs: Counter,
    pub block_interval_ms: Gauge,
    pub finalization_latency_ms: Gauge,
    pub apply_ms: Gauge,
    pub finalization_latency: Histogram,
    pub apply: Histogram,
    pub mempool_wait: Histogram,
}

impl NodeMetrics {
    /// Registers the node's metrics in `t`; `mempool_len` is read at each encoding.
    pub fn register(
        t: &Telemetry,
        mempool_len: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> NodeMetrics {
        t.metric("kassa_mempool_size", "Transactions waiting", || {
            Sampled::new(mempool_len)
        });
        NodeMetrics {
            height: t.metric(
                "kassa_height",
                "Height of the last finalized block",
                Gauge::default,
            ),
            txs: t.metric(
                "kassa_txs",
                "Transactions included in finalized blocks",
                Counter::default,
            ),
            block_interval_ms: t.metric(
                "kassa_block_interval_ms",
                "Block time between the last two finalized blocks, in milliseconds",
                Gauge::default,
            ),
            finalization_latency_ms: t.metric(
                "kassa_finalization_latency_ms",
                "Wall time from proposing to finalizing the last block this node proposed, in milliseconds",
                Gauge::default,
            ),
            apply_ms: t.metric(
                "kassa_apply_ms",
                "Wall time to apply and commit the last finalized block, in milliseconds",
                Gauge::default,
            ),
            finalization_latency: t.metric(
                "kassa_finalization_latency_seconds",
                "Wall time from proposing a block to finalizing it, for the blocks this node proposed",
                || Histogram::new(latency_buckets()),
            ),
            apply: t.metric(
                "kassa_apply_seconds",
                "Wall time to apply and commit a finalized block (execution already done, \
                 the database transaction, the mempool's cleanup)",
                || Histogram::new(fine_latency_buckets()),
            ),
            mempool_wait: t.metric(
                "kassa_mempool_wait_seconds",
                "Wall time a transaction waited in this node's mempool, from admission to the \
                 finalized block that included it (counted by the node that admitted it)",
                || Histogram::new(latency_buckets()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_asked_for_twice_is_one_metric_and_is_encoded_once() {
        let t = Telemetry::default();
        let a: Counter = t.metric("kassa_things", "Things", Counter::default);
        let b: Counter = t.metric("kassa_things", "Things", Counter::default);
        a.inc();
        b.inc();
        let text = t.encode();
        assert!(text.contains("kassa_things_total 2"), "{text}");
        assert_eq!(text.matches("# TYPE kassa_things counter").count(), 1);
    }

    #[test]
    fn an_attached_runtime_exposes_what_was_registered_before_and_after_with_its_own_metrics() {
        use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
        deterministic::Runner::default().start(|context| async move {
            let t = Telemetry::default();
            let before: Gauge = t.metric("kassa_before", "Before", Gauge::default);
            before.set(7);
            t.attach(context.child("kassa"));
            assert!(t.attached());
            let after: Histogram = t.metric("kassa_after_seconds", "After", || {
                Histogram::new(latency_buckets())
            });
            after.observe(0.003);
            let text = t.encode();
            assert!(text.contains("kassa_before 7"), "{text}");
            assert!(
                text.contains("kassa_after_seconds_bucket{le=\"0.004\"} 1"),
                "{text}"
            );
            // The runtime's own metrics are in the same exposition.
            assert!(text.contains("runtime_"), "{text}");
            assert_eq!(text, context.encode());
        });
    }
}
