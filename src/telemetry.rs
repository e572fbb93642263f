//! JSON-lines logs on stdout and Prometheus metrics (SPEC §2 `/metrics`, §5).
//!
//! stdout carries only JSON lines. Events from `tracing` (startup, shutdown, database faults, the Lambda
//! runtime) and the one access line per request share the same writer and the same base keys:
//! `ts` (RFC 3339 UTC, milliseconds, `Z`), `level`, `msg`.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::config::LogLevel;
use crate::delivery::{Counts, Tally, WebhookResult};

static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

fn enabled(level: LogLevel) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes one line in a single call, so lines from concurrent requests never interleave.
fn write_line(mut line: Vec<u8>) {
    line.push(b'\n');
    // A closed stdout must not take the service down; the line is lost, nothing else.
    let _ = std::io::stdout().lock().write_all(&line);
}

/// Installs the JSON log layer as the global `tracing` subscriber. Calling it again only changes the level.
pub fn init_logging(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    let subscriber = tracing_subscriber::registry().with(JsonLayer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Formats `tracing` events as JSON lines. Other crates' events are kept at WARN and above unless
/// DEBUG is asked for, so a dependency cannot flood the log.
struct JsonLayer;

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        let level = match *metadata.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let ours = metadata.target().starts_with(env!("CARGO_CRATE_NAME"));
        enabled(level) && (ours || level <= LogLevel::Warn || enabled(LogLevel::Debug))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        #[derive(Serialize)]
        struct Line {
            ts: String,
            level: &'static str,
            #[serde(flatten)]
            fields: Map<String, Value>,
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        if !event.metadata().target().starts_with(env!("CARGO_CRATE_NAME")) {
            fields.insert("target".into(), event.metadata().target().into());
        }
        let line = Line { ts: now(), level: event.metadata().level().as_str(), fields };
        if let Ok(line) = serde_json::to_vec(&line) {
            write_line(line);
        }
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn key(field: &Field) -> String {
        match field.name() {
            "message" => "msg".into(),
            name => name.into(),
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(Self::key(field), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(Self::key(field), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(Self::key(field), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(Self::key(field), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(Self::key(field), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(Self::key(field), format!("{value:?}").into());
    }
}

/// The access-log line of one request (SPEC §5). `/webhook` lines add `result`, `dup` and, when the body
/// parsed, `message_id`; `/webhook/whatsapp` deliveries add `result` and their messages' and statuses'
/// [`Tally`].
#[derive(Debug, Serialize)]
pub struct RequestLog<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<WebhookResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub messages: Option<&'a Tally>,
    /// Why a request failed on the server side (5xx); never client input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

impl RequestLog<'_> {
    /// Writes the line at `level`, which the handler takes from the request's outcome.
    pub fn write(&self, level: LogLevel) {
        if !enabled(level) {
            return;
        }
        #[derive(Serialize)]
        struct Line<'a> {
            ts: String,
            level: &'static str,
            msg: &'static str,
            #[serde(flatten)]
            request: &'a RequestLog<'a>,
        }
        let line = Line { ts: now(), level: level.as_str(), msg: "request", request: self };
        if let Ok(line) = serde_json::to_vec(&line) {
            write_line(line);
        }
    }
}

const LATENCY_BUCKETS_MS: [f64; 12] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];

/// Installs the process-wide Prometheus recorder once and returns its handle.
///
/// Must be called inside a Tokio runtime: a background task drains histogram samples into buckets every
/// few seconds, so memory stays flat however long nobody scrapes.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("request_latency_ms".into()), &LATENCY_BUCKETS_MS)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder can only be present if an embedding program installed one; ours then stays idle.
            let _ = metrics::set_global_recorder(recorder);
            for result in WebhookResult::ALL.into_iter().filter(|r| r.counted_from_start()) {
                metrics::counter!("webhook_requests_total", "result" => result.as_str()).absolute(0);
            }
            for outcome in OUTCOMES {
                metrics::counter!("whatsapp_messages_total", "outcome" => outcome).absolute(0);
                metrics::counter!("whatsapp_statuses_total", "outcome" => outcome).absolute(0);
            }
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// Families in the order `/metrics` lists them: the short, fixed set of webhook outcomes first, so that
/// the first lines of the page (what `curl … | head` shows) hold both request counters.
const FAMILY_ORDER: [&str; 3] = ["webhook_requests_total", "http_requests_total", "request_latency_ms"];

/// The Prometheus text exposition, in a stable order.
///
/// The exporter emits families and label sets in hash order, which differs from scrape to scrape. Here
/// families follow [`FAMILY_ORDER`], counter samples are sorted, and histogram lines keep the exporter's
/// order (buckets ascending within each label set). Blank separator lines are dropped.
pub fn render_metrics(handle: &PrometheusHandle) -> String {
    let rendered = handle.render();
    let mut families: Vec<(&str, bool, Vec<&str>)> = Vec::new();
    for line in rendered.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap_or_default();
            families.push((name, words.next() == Some("counter"), vec![line]));
        } else if let Some((_, _, lines)) = families.last_mut() {
            lines.push(line);
        }
    }
    let rank = |name: &str| FAMILY_ORDER.iter().position(|f| *f == name).unwrap_or(FAMILY_ORDER.len());
    families.sort_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
    let mut out = String::with_capacity(rendered.len());
    for (_, is_counter, mut lines) in families {
        if is_counter {
            lines[1..].sort_unstable();
        }
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The `outcome` labels of `whatsapp_messages_total` and `whatsapp_statuses_total`, one per field of
/// [`Counts`].
const OUTCOMES: [&str; 3] = ["created", "duplicate", "skipped"];

/// The metrics of one finished request.
pub struct Sample<'a> {
    pub method: &'static str,
    /// The matched route, or `unmatched`.
    pub route: &'static str,
    pub status: u16,
    pub latency: Duration,
    /// The webhook outcome, on the delivery routes only.
    pub result: Option<WebhookResult>,
    /// What became of a WhatsApp delivery's messages.
    pub messages: Option<&'a Tally>,
}

impl Sample<'_> {
    /// Adds the request to the Prometheus counters and histogram.
    pub fn record(&self) {
        let status = self.status.to_string();
        metrics::counter!("http_requests_total", "method" => self.method, "path" => self.route, "status" => status)
            .increment(1);
        metrics::histogram!("request_latency_ms", "path" => self.route).record(self.latency_ms());
        if let Some(result) = self.result {
            metrics::counter!("webhook_requests_total", "result" => result.as_str()).increment(1);
        }
        if let Some(tally) = self.messages {
            let counts = |c: &Counts| [c.created, c.duplicate, c.skipped];
            for (outcome, (messages, statuses)) in
                OUTCOMES.into_iter().zip(counts(&tally.messages).into_iter().zip(counts(&tally.statuses)))
            {
                metrics::counter!("whatsapp_messages_total", "outcome" => outcome).increment(messages);
                metrics::counter!("whatsapp_statuses_total", "outcome" => outcome).increment(statuses);
            }
        }
    }

    fn latency_ms(&self) -> f64 {
        self.latency.as_secs_f64() * 1000.0
    }

    /// Writes the same counters and latency as one CloudWatch Embedded Metric Format line, which CloudWatch
    /// turns into metrics for the whole fleet of Lambda instances. Written whatever the log level: these
    /// are metrics, not log messages.
    pub fn write_emf(&self) {
        let mut directives = vec![serde_json::json!({
            "Namespace": EMF_NAMESPACE,
            "Dimensions": [["path", "method", "status"]],
            "Metrics": [
                {"Name": "http_requests_total", "Unit": "Count"},
                {"Name": "request_latency_ms", "Unit": "Milliseconds"}
            ]
        })];
        let mut line = serde_json::json!({
            "ts": now(),
            "level": "INFO",
            "msg": "metrics",
            "path": self.route,
            "method": self.method,
            "status": self.status.to_string(),
            "http_requests_total": 1,
            "request_latency_ms": (self.latency_ms() * 1000.0).round() / 1000.0,
        });
        if let Some(result) = self.result {
            directives.push(serde_json::json!({
                "Namespace": EMF_NAMESPACE,
                "Dimensions": [["result"]],
                "Metrics": [{"Name": "webhook_requests_total", "Unit": "Count"}]
            }));
            line["result"] = result.as_str().into();
            line["webhook_requests_total"] = 1.into();
        }
        line["_aws"] = serde_json::json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": directives,
        });
        if let Ok(line) = serde_json::to_vec(&line) {
            write_line(line);
        }
    }
}

/// The CloudWatch namespace of the EMF metrics.
pub const EMF_NAMESPACE: &str = "webhook-ingest";
