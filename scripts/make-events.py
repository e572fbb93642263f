#!/usr/bin/env python3
"""Regenerates events/: Lambda test events from `sam local generate-event`, adapted to our routes and signed.

Each event is SAM's own sample for its source (HTTP API v2, REST v1 with stage "prod", ALB; a Function URL
event is an HTTP API event with a lambda-url domain, which is what Function URLs send), with method, path,
query, headers and body replaced. Bodies of POSTs to /webhook are signed with EVENTS_SECRET, those to
/webhook/whatsapp as Meta signs them (X-Hub-Signature-256: sha256=…) with EVENTS_WHATSAPP_SECRET, and the
WhatsApp handshakes present EVENTS_VERIFY_TOKEN. Next to every
NN-name.json sits NN-name.expected.json: the status, and the body where it is deterministic (as "text"
when it is plain text, the handshake's challenge). The events
are replayed in file order on a fresh database, so later expectations depend on earlier deliveries.

Usage: SAM=path/to/sam scripts/make-events.py   (make events does this)
"""
import base64
import hashlib
import hmac
import json
import os
import pathlib
import subprocess
import urllib.parse

EVENTS_SECRET = "events-test-secret"
EVENTS_WHATSAPP_SECRET = "events-whatsapp-secret"
EVENTS_VERIFY_TOKEN = "events-verify-token"
# How a route's deliveries are signed: the header, the secret, and what comes before the hex.
WEBHOOK = ("x-signature", EVENTS_SECRET, "")
WHATSAPP = ("x-hub-signature-256", EVENTS_WHATSAPP_SECRET, "sha256=")
SAM = os.environ.get("SAM", "sam")
OUT = pathlib.Path(__file__).resolve().parent.parent / "events"


def sam(*args):
    result = subprocess.run([SAM, "local", "generate-event", *args], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sort_key(ts: str) -> bytes:
    """A timestamp's nine-byte sort key: seconds since 0001-01-01 (five bytes), then nanoseconds (four)."""
    import datetime
    whole, _, fraction = ts.rstrip("Z").partition(".")
    instant = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    seconds = int(instant.timestamp()) + 62_135_596_800
    return seconds.to_bytes(5, "big") + int(fraction.ljust(9, "0")).to_bytes(4, "big")


def cursor(position, order="time", sender=None, since=None, q=None):
    """A `/messages` cursor as the service seals it under EVENTS_SECRET (src/cursor.rs says how): after
    (ts, message_id) in time order, or after an arrival number, without an ordinal."""
    hashed = hashlib.sha256()
    for part in (sender and sender.encode(), since and sort_key(since), q and q.encode()):
        hashed.update(b"\0" if part is None else b"\1" + len(part).to_bytes(8, "big") + part)
    order_byte = {"time": 0, "arrival": 1}[order]
    hashed.update(bytes([order_byte]))
    # No ordinal: the corpus's pages by cursor are of listings whose totals are not counted.
    content = bytes([1, order_byte]) + hashed.digest()[:8] + b"\0"
    if order == "time":
        ts, mid = position
        content += b"\0" + (9).to_bytes(4, "big") + sort_key(ts) + mid.encode()
    else:
        content += position.to_bytes(8, "big", signed=True)
    key = hmac.new(EVENTS_SECRET.encode(), b"webhook-ingest listing cursor v1", hashlib.sha256).digest()
    tag = hmac.new(key, content, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(content + tag).rstrip(b"=").decode()


def listed(mid, sender, ts, text, to="+14155550100"):
    """A message as a listing answers it."""
    return {"message_id": mid, "from": sender, "to": to, "ts": ts, "text": text}


def message(mid, sender="+919876543210", ts="2025-01-15T10:00:00Z", text="Hello"):
    m = {"message_id": mid, "from": sender, "to": "+14155550100", "ts": ts}
    if text is not None:
        m["text"] = text
    return json.dumps(m, separators=(",", ":"))


def whatsapp(messages=None, statuses=None):
    """A Cloud API delivery to the business number +1 555 000 1234, as Meta sends it."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"}}
    if messages is not None:
        value["contacts"] = [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    delivery = {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(delivery, separators=(",", ":"), ensure_ascii=False)


def wa_text(mid, body, timestamp="1736935200"):
    return {"from": "16315551234", "id": mid, "timestamp": timestamp, "type": "text", "text": {"body": body}}


def handshake(token=EVENTS_VERIFY_TOKEN, challenge="1158201444"):
    return {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}


def headers_for(body, signature, signer):
    header, secret, prefix = signer
    headers = {"content-type": "application/json", "user-agent": "webhook-provider/1.0"}
    if signature == "valid":
        headers[header] = prefix + sign(body.encode(), secret)
    elif signature is not None:
        headers[header] = signature
    return headers


def signer_for(path):
    return WHATSAPP if path == "/webhook/whatsapp" else WEBHOOK


def http_api(method, path, query="", body=None, signature="valid", b64=False, stage="$default", url=False):
    event = sam("apigateway", "http-api-proxy", "--method", method, "--path", path.lstrip("/"), "--stage", stage)
    # SAM puts the stage in neither rawPath nor http.path; a real HTTP API with a named stage does.
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    event["rawQueryString"] = query
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    event["queryStringParameters"] = {k: ",".join(v) for k, v in params.items()} or None
    event["headers"] = headers_for(body, signature, signer_for(path)) if body is not None else {"user-agent": "curl/8.5.0"}
    event.pop("cookies", None)
    if url:
        event["requestContext"]["domainName"] = "abcdefghijklmnop.lambda-url.us-east-1.on.aws"
        event["requestContext"]["domainPrefix"] = "abcdefghijklmnop"
        for key in ("authentication", "authorizer"):
            event["requestContext"].pop(key, None)
        event.pop("pathParameters", None)
        event.pop("stageVariables", None)
    set_body(event, body, b64)
    return event


def rest(method, path, query=None, body=None, signature="valid", b64=False):
    event = sam("apigateway", "aws-proxy", "--method", method, "--path", path.lstrip("/"),
                "--querystringparameters", json.dumps(query or {}))
    event["path"] = path
    event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    headers = headers_for(body, signature, signer_for(path)) if body is not None else {"user-agent": "curl/8.5.0"}
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    set_body(event, body, b64)
    return event


def alb(method, path, query=None, body=None, signature="valid", b64=False):
    event = sam("alb", "request", "--method", method, "--path", path.lstrip("/"))
    event["path"] = path
    # ALB hands over query keys and values as the client encoded them.
    event["queryStringParameters"] = query or {}
    headers = {"host": "lambda-alb-123578498.us-east-2.elb.amazonaws.com", "x-forwarded-proto": "https"}
    headers.update(headers_for(body, signature, signer_for(path)) if body is not None else {"user-agent": "curl/8.5.0"})
    event["headers"] = headers
    set_body(event, body, b64)
    return event


def set_body(event, body, b64):
    if body is None:
        event["body"] = None
        event["isBase64Encoded"] = False
    elif b64:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = body
        event["isBase64Encoded"] = False


OK = {"status": "ok"}
M1 = message("m1")
CORPUS = [
    ("v2-health-live", http_api("GET", "/health/live"), 200, OK),
    ("v2-health-ready", http_api("GET", "/health/ready"), 200, {"status": "ready"}),
    ("v2-webhook-created", http_api("POST", "/webhook", body=M1), 200, OK),
    ("v2-webhook-duplicate", http_api("POST", "/webhook", body=M1), 200, OK),
    ("v2-webhook-invalid-signature", http_api("POST", "/webhook", body=message("x1"), signature="123"), 401,
     {"detail": "invalid signature"}),
    ("v2-webhook-missing-signature", http_api("POST", "/webhook", body=message("x2"), signature=None), 401,
     {"detail": "invalid signature"}),
    ("v2-webhook-validation-error",
     http_api("POST", "/webhook", body=message("x3", sender="919876543210", ts="2025-01-15 10:00:00")), 422,
     {"detail": [
         {"loc": ["body", "from"], "msg": "String should match pattern '^\\+[0-9]+$'", "type": "string_pattern_mismatch"},
         {"loc": ["body", "ts"], "msg": "Value error, ts must be an RFC 3339 UTC timestamp such as 2025-01-15T10:00:00Z",
          "type": "value_error"}]}),
    ("v2-webhook-base64", http_api("POST", "/webhook", body=message("m2", ts="2025-01-15T09:00:00Z",
                                                                     text="Earlier hello"), b64=True), 200, OK),
    ("v2-named-stage-webhook", http_api("POST", "/webhook", stage="prod",
                                        body=message("m3", sender="+14155550100", ts="2025-01-15T10:00:00.5Z",
                                                     text="Reply")), 200, OK),
    ("rest-webhook-plain", rest("POST", "/webhook", body=message("m4", sender="+447700900123",
                                                                 ts="2025-01-16T08:30:00Z", text=None)), 200, OK),
    ("rest-webhook-base64", rest("POST", "/webhook", body=message("m5", ts="2025-01-15T11:45:00Z",
                                                                  text="hello again"), b64=True), 200, OK),
    ("alb-webhook-plain", alb("POST", "/webhook", body=message("m6", sender="+447700900123",
                                                               ts="2025-01-15T12:00:00Z", text="HELLO from ALB")),
     200, OK),
    ("function-url-webhook", http_api("POST", "/webhook", body=message("m7", sender="+15550001111",
                                                                      ts="2025-01-14T23:59:59.999Z", text="night"),
                                      url=True), 200, OK),
    ("v2-messages-from-unencoded-plus",
     http_api("GET", "/messages", query="from=+919876543210&since=2025-01-15T09:30:00Z&limit=10"), 200,
     {"data": [
         listed("m1", "+919876543210", "2025-01-15T10:00:00Z", "Hello"),
         listed("m5", "+919876543210", "2025-01-15T11:45:00Z", "hello again")],
      "total": 2, "limit": 10, "offset": 0, "next_cursor": None}),
    ("rest-messages-page", rest("GET", "/messages", query={"limit": "2", "offset": "1"}), 200,
     {"data": [
         listed("m2", "+919876543210", "2025-01-15T09:00:00Z", "Earlier hello"),
         listed("m1", "+919876543210", "2025-01-15T10:00:00Z", "Hello")],
      "total": 7, "limit": 2, "offset": 1, "next_cursor": cursor(("2025-01-15T10:00:00Z", "m1"))}),
    ("v2-messages-next-page",
     http_api("GET", "/messages", query="limit=2&cursor=" + cursor(("2025-01-15T10:00:00Z", "m1"))), 200,
     {"data": [
         listed("m3", "+14155550100", "2025-01-15T10:00:00.5Z", "Reply"),
         listed("m5", "+919876543210", "2025-01-15T11:45:00Z", "hello again")],
      "total": 7, "limit": 2, "offset": 0, "next_cursor": cursor(("2025-01-15T11:45:00Z", "m5"))}),
    ("rest-messages-arrival", rest("GET", "/messages", query={"order": "arrival", "limit": "2"}), 200,
     {"data": [
         listed("m1", "+919876543210", "2025-01-15T10:00:00Z", "Hello"),
         listed("m2", "+919876543210", "2025-01-15T09:00:00Z", "Earlier hello")],
      "total": 7, "limit": 2, "offset": 0, "next_cursor": cursor(2, order="arrival")}),
    ("alb-messages-forged-cursor",
     alb("GET", "/messages", query={"order": "arrival", "cursor": cursor(2, order="arrival")[:-2] + "AA"}), 422,
     {"detail": [{"loc": ["query", "cursor"], "type": "value_error",
                  "msg": "Value error, cursor is not one this service issued (malformed, truncated or altered); "
                         "start again without it"}]}),
    ("alb-messages-search", alb("GET", "/messages", query={"q": "hello%20"}), 200,
     {"data": [
         listed("m5", "+919876543210", "2025-01-15T11:45:00Z", "hello again"),
         listed("m6", "+447700900123", "2025-01-15T12:00:00Z", "HELLO from ALB")],
      "total": 2, "limit": 50, "offset": 0, "next_cursor": None}),
    ("v2-messages-bad-limit", http_api("GET", "/messages", query="limit=0"), 422,
     {"detail": [{"loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1",
                  "type": "greater_than_equal"}]}),
    ("v2-stats", http_api("GET", "/stats"), 200,
     {"total_messages": 7, "senders_count": 4,
      "messages_per_sender": [{"from": "+919876543210", "count": 3}, {"from": "+447700900123", "count": 2},
                              {"from": "+14155550100", "count": 1}, {"from": "+15550001111", "count": 1}],
      "first_message_ts": "2025-01-14T23:59:59.999Z", "last_message_ts": "2025-01-16T08:30:00Z",
      "statuses_by_status": {}}),
    ("v2-metrics", http_api("GET", "/metrics"), 200, None),
    ("rest-health-ready", rest("GET", "/health/ready"), 200, {"status": "ready"}),
    ("alb-health-live", alb("GET", "/health/live"), 200, OK),
    ("v2-unknown-route", http_api("GET", "/wp-login.php"), 404, {"detail": "not found"}),
    ("v2-wrong-method", http_api("DELETE", "/webhook"), 405, {"detail": "method not allowed"}),
    ("v2-broken-base64", dict(http_api("POST", "/webhook", body=message("x4"), b64=True), body="%%%not base64%%%"),
     400, {"detail": "body is not valid base64"}),
]


def stored(created, duplicate=0, skipped=0, statuses=(0, 0, 0)):
    counts = dict(zip(("created", "duplicate", "skipped"), statuses))
    return {"status": "ok", "created": created, "duplicate": duplicate, "skipped": skipped, "statuses": counts}


TEXT = object()  # the expected body is plain text, the next item
WA1 = whatsapp([wa_text("wamid.e1", "Hello from WhatsApp"), wa_text("wamid.e2", "Second message")])
# After the corpus above: WhatsApp's route through every event source, both ways (handshake and delivery).
CORPUS += [
    ("v2-whatsapp-handshake",
     http_api("GET", "/webhook/whatsapp", query=urllib.parse.urlencode(handshake())), 200, (TEXT, "1158201444")),
    ("rest-whatsapp-handshake", rest("GET", "/webhook/whatsapp", query=handshake(challenge="rest-42")), 200,
     (TEXT, "rest-42")),
    ("alb-whatsapp-handshake", alb("GET", "/webhook/whatsapp", query=handshake(challenge="alb.7")), 200,
     (TEXT, "alb.7")),
    ("function-url-whatsapp-handshake",
     http_api("GET", "/webhook/whatsapp", query=urllib.parse.urlencode(handshake(challenge="url_9")), url=True), 200,
     (TEXT, "url_9")),
    ("v2-whatsapp-handshake-wrong-token",
     http_api("GET", "/webhook/whatsapp", query=urllib.parse.urlencode(handshake(token="guess"))), 403,
     {"detail": "verification failed"}),
    ("v2-whatsapp-delivery", http_api("POST", "/webhook/whatsapp", body=WA1), 200, stored(2)),
    ("v2-whatsapp-redelivery", http_api("POST", "/webhook/whatsapp", body=WA1), 200, stored(0, 2)),
    ("rest-whatsapp-delivery-base64",
     rest("POST", "/webhook/whatsapp", b64=True, body=whatsapp([
         {"from": "16315551234", "id": "wamid.e3", "timestamp": "1736935260", "type": "image",
          "image": {"id": "media-1", "mime_type": "image/jpeg", "caption": "A photo of the hello board"}},
         wa_text("wamid.e1", "Hello from WhatsApp")])), 200, stored(1, 1)),
    ("alb-whatsapp-statuses",
     alb("POST", "/webhook/whatsapp", body=whatsapp(statuses=[
         {"id": "wamid.out", "status": "delivered", "timestamp": "1736935300", "recipient_id": "16315551234"}])),
     200, stored(0, statuses=(1, 0, 0))),
    ("function-url-whatsapp-delivery",
     http_api("POST", "/webhook/whatsapp", url=True, body=whatsapp([
         {"from": "16315551234", "id": "wamid.e4", "timestamp": "1736935320", "type": "reaction",
          "reaction": {"message_id": "wamid.e1", "emoji": "\U0001F44D"}},
         {"from": "not-digits", "id": "wamid.bad", "timestamp": "1736935320", "type": "text", "text": {"body": "x"}}])),
     200, stored(1, 0, 1)),
    ("v2-whatsapp-invalid-signature",
     http_api("POST", "/webhook/whatsapp", body=whatsapp([wa_text("wamid.x", "forged")]), signature="sha256=" + "0" * 64),
     401, {"detail": "invalid signature"}),
    ("v2-whatsapp-not-a-delivery",
     http_api("POST", "/webhook/whatsapp", body=message("x5")), 422,
     {"detail": [{"loc": ["body", "object"], "msg": "Field required", "type": "missing"}]}),
    ("v2-messages-whatsapp", http_api("GET", "/messages", query="from=%2B16315551234&q=hello"), 200,
     {"data": [
         listed("wamid.e1", "+16315551234", "2025-01-15T10:00:00Z", "Hello from WhatsApp", to="+15550001234"),
         listed("wamid.e3", "+16315551234", "2025-01-15T10:01:00Z", "A photo of the hello board", to="+15550001234")],
      "total": 2, "limit": 50, "offset": 0, "next_cursor": None}),
    ("v2-message-by-id", http_api("GET", "/messages/wamid.e3"), 200,
     {"message_id": "wamid.e3", "from": "+16315551234", "to": "+15550001234", "ts": "2025-01-15T10:01:00Z",
      "text": "A photo of the hello board", "type": "image",
      "raw": {"from": "16315551234", "id": "wamid.e3", "timestamp": "1736935260", "type": "image",
              "image": {"id": "media-1", "mime_type": "image/jpeg", "caption": "A photo of the hello board"}},
      "contact": {"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"},
      "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"}}),
    ("rest-message-by-id", rest("GET", "/messages/m1"), 200,
     {"message_id": "m1", "from": "+919876543210", "to": "+14155550100", "ts": "2025-01-15T10:00:00Z",
      "text": "Hello", "raw": json.loads(message("m1"))}),
    ("alb-message-unknown", alb("GET", "/messages/wamid.never"), 404, {"detail": "not found"}),
    ("v2-statuses", http_api("GET", "/statuses", query="message_id=wamid.out"), 200,
     {"data": [{"message_id": "wamid.out", "status": "delivered", "ts": "2025-01-15T10:01:40Z",
                "recipient_id": "16315551234",
                "raw": {"id": "wamid.out", "status": "delivered", "timestamp": "1736935300",
                        "recipient_id": "16315551234"}}],
      "total": 1, "limit": 50, "offset": 0}),
    ("v2-inbox-page", http_api("GET", "/"), 200, None),
    ("function-url-inbox-style", http_api("GET", "/ui/inbox.css", url=True), 200, None),
]


def main():
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for index, (name, event, status, body) in enumerate(CORPUS, start=1):
        stem = f"{index:02d}-{name}"
        (OUT / f"{stem}.json").write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
        if body is None:
            expected = {"status": status}
        elif isinstance(body, tuple) and body[0] is TEXT:
            expected = {"status": status, "text": body[1]}
        else:
            expected = {"status": status, "body": body}
        (OUT / f"{stem}.expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(CORPUS)} events to {OUT}")


if __name__ == "__main__":
    main()
