//! The routes, in one table: path, methods, and whether `READ_API_TOKEN` guards them.

use lambda_http::http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Webhook,
    WhatsApp,
    Messages,
    Message,
    Statuses,
    Stats,
    Live,
    Ready,
    Metrics,
    OpenApi,
    Inbox,
    InboxScript,
    InboxStyle,
}

struct Entry {
    route: Route,
    path: &'static str,
    /// The methods the route answers, as its 405's `Allow` header lists them. Every GET route answers HEAD
    /// too, as GET without the body (RFC 9110 §9.3.2; uptime monitors and load balancers use it).
    allow: &'static str,
    /// Whether it reveals stored messages or what can be learnt about them: what `READ_API_TOKEN` protects.
    /// Health stays open for probes, the webhook has its own signature.
    reads_data: bool,
}

/// In the order of [`Route`]'s variants.
const ROUTES: [Entry; 13] = [
    Entry { route: Route::Webhook, path: "/webhook", allow: "POST", reads_data: false },
    // GET is Meta's subscription handshake, POST its deliveries.
    Entry { route: Route::WhatsApp, path: "/webhook/whatsapp", allow: "GET, HEAD, POST", reads_data: false },
    Entry { route: Route::Messages, path: "/messages", allow: "GET, HEAD", reads_data: true },
    // Any path below `/messages/`: the rest, percent-decoded, is the id.
    Entry { route: Route::Message, path: "/messages/{message_id}", allow: "GET, HEAD", reads_data: true },
    Entry { route: Route::Statuses, path: "/statuses", allow: "GET, HEAD", reads_data: true },
    Entry { route: Route::Stats, path: "/stats", allow: "GET, HEAD", reads_data: true },
    Entry { route: Route::Live, path: "/health/live", allow: "GET, HEAD", reads_data: false },
    Entry { route: Route::Ready, path: "/health/ready", allow: "GET, HEAD", reads_data: false },
    Entry { route: Route::Metrics, path: "/metrics", allow: "GET, HEAD", reads_data: true },
    Entry { route: Route::OpenApi, path: "/openapi.yaml", allow: "GET, HEAD", reads_data: false },
    // The inbox page and its assets: static, and reading data only through the routes above.
    Entry { route: Route::Inbox, path: "/", allow: "GET, HEAD", reads_data: false },
    Entry { route: Route::InboxScript, path: "/ui/inbox.js", allow: "GET, HEAD", reads_data: false },
    Entry { route: Route::InboxStyle, path: "/ui/inbox.css", allow: "GET, HEAD", reads_data: false },
];

impl Route {
    pub fn of(path: &str) -> Option<Route> {
        let exact = ROUTES.iter().find(|entry| entry.path == path).map(|entry| entry.route);
        exact.or_else(|| message_id(path).map(|_| Route::Message))
    }

    fn entry(self) -> &'static Entry {
        &ROUTES[self as usize]
    }

    /// The `path` label of metrics: the route itself, never what a client typed.
    pub fn label(route: Option<Route>) -> &'static str {
        route.map_or("unmatched", |route| route.entry().path)
    }

    pub fn allow(self) -> &'static str {
        self.entry().allow
    }

    pub fn answers(self, method: &Method) -> bool {
        self.allow().split(", ").any(|allowed| allowed == method.as_str())
    }

    pub fn reads_data(self) -> bool {
        self.entry().reads_data
    }
}

/// The id a `/messages/{message_id}` path names: everything after `/messages/`, percent-decoded (so an id
/// holding `/` is sent as `%2F`, and `+` is itself). None when the rest is empty or not UTF-8 once decoded,
/// which no id is.
pub fn message_id(path: &str) -> Option<String> {
    let encoded = path.strip_prefix("/messages/").filter(|rest| !rest.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_variant_order_and_every_path_finds_its_route() {
        for (index, entry) in ROUTES.iter().enumerate() {
            assert_eq!(entry.route as usize, index, "{}", entry.path);
            assert_eq!(Route::of(entry.path), Some(entry.route));
            assert_eq!(Route::label(Some(entry.route)), entry.path);
        }
        assert!(Route::Messages.answers(&Method::HEAD) && Route::Messages.answers(&Method::GET));
        assert!(!Route::Webhook.answers(&Method::HEAD) && !Route::Messages.answers(&Method::POST));
        assert_eq!(Route::of("/webhook/"), None);
        assert!(Route::WhatsApp.answers(&Method::GET) && Route::WhatsApp.answers(&Method::POST));
        assert_eq!(Route::label(None), "unmatched");
    }

    /// The gateway's own check of the reads (template-authorizer.yaml) covers every route that reads data:
    /// one left out would reach the function on the unauthorized catch-all.
    #[test]
    fn every_read_route_has_its_authorized_route_at_the_gateway() {
        // Read when the test runs: the template is no part of the binary (nor of the container's build).
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template-authorizer.yaml");
        let template = std::fs::read_to_string(path).unwrap();
        for entry in ROUTES.iter().filter(|entry| entry.reads_data) {
            // ANY: HEAD reads too.
            let key = format!("RouteKey: ANY {}", entry.path.replace('}', "+}"));
            assert!(template.contains(&key), "{key}");
        }
    }

    #[test]
    fn any_path_below_messages_names_one_message_by_its_decoded_id() {
        for (path, id) in [
            ("/messages/wamid.HBgL+x/y=", "wamid.HBgL+x/y="),
            ("/messages/a%2Fb%20c", "a/b c"),
            ("/messages/%E2%9C%93%F0%9F%98%80", "✓😀"),
            ("/messages/100%25", "100%"),
            ("/messages/a/b", "a/b"),
        ] {
            assert_eq!(Route::of(path), Some(Route::Message), "{path}");
            assert_eq!(message_id(path).as_deref(), Some(id), "{path}");
        }
        assert_eq!(Route::of("/messages/"), None);
        assert_eq!(Route::of("/messages/%FF"), None, "not UTF-8 once decoded");
        assert_eq!(Route::of("/messagesx"), None);
        assert_eq!(Route::label(Route::of("/messages/abc")), "/messages/{message_id}");
    }
}
