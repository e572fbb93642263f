//! Lambda events on arbitrary input: whatever JSON arrives, the event conversion and the handler behind it
//! answer it without a panic (`panic = "abort"` would take the whole function down), with a response of a
//! real HTTP status, in the shape the event's source expects. The app behind it stores in a file of its own
//! and has a secret, so a signed delivery in the corpus reaches the store.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use webhook_ingest::app::App;
use webhook_ingest::config::{Config, LogLevel};
use webhook_ingest::lambda::{invoke, Event, Reply};

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: App,
    _dir: std::path::PathBuf,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        webhook_ingest::telemetry::init_logging(LogLevel::Error);
        let dir = std::env::temp_dir().join(format!("webhook-ingest-fuzz-{}", std::process::id()));
        let url = format!("sqlite:///{}", dir.join("app.db").display());
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "WEBHOOK_SECRET" => Some("fuzz-secret".to_owned()),
            "WHATSAPP_APP_SECRET" => Some("fuzz-app-secret".to_owned()),
            "WHATSAPP_VERIFY_TOKEN" => Some("fuzz-verify-token".to_owned()),
            "METRICS_EMF" => Some("false".to_owned()),
            _ => None,
        })
        .expect("the fuzz configuration is valid");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = runtime.block_on(App::new(&config));
        Harness { runtime, app, _dir: dir }
    })
}

fuzz_target!(|input: &[u8]| {
    // What the runtime would hand the function: JSON it deserializes as an event, or refuses before us.
    let Ok(event) = serde_json::from_slice::<Event>(input) else { return };
    let source = match &event {
        Event::HttpApi(_) => "http api",
        Event::Rest(_) => "rest",
        Event::Alb(_) => "alb",
    };
    let harness = harness();
    let reply = harness.runtime.block_on(invoke(&harness.app, event, Default::default()));
    let status = match &reply {
        Reply::HttpApi(r) => r.status_code,
        Reply::Rest(r) => r.status_code,
        Reply::Alb(r) => r.status_code,
    };
    assert!((200..600).contains(&status), "{source}: status {status}");
    let shape = match &reply {
        Reply::HttpApi(_) => "http api",
        Reply::Rest(_) => "rest",
        Reply::Alb(_) => "alb",
    };
    assert_eq!(shape, source, "the reply's shape is the event's source's");
    serde_json::to_vec(&reply).expect("a reply serializes");
});
