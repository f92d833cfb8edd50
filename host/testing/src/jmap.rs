//! A JMAP client for tests and benches against a real JMAP server (the
//! Cyrus that `.ci/cyrus` starts): seeding messages and checking what the
//! connector left, apart from the connector itself. Logs in as `agent`.

use crate::unique;
use serde_json::{Value, json};

/// The login of `.ci/cyrus`'s test user.
pub const USER: &str = "agent";
/// Its password.
pub const PASSWORD: &str = "agent-pw";

/// A JMAP client for seeding and checking, apart from the connector.
pub struct Jmap {
    origin: String,
    /// The session resource.
    pub session: Value,
}

impl Jmap {
    /// The session at `session_url` (following its redirects).
    pub fn open(session_url: &str) -> Jmap {
        let origin = session_url.split('/').take(3).collect::<Vec<_>>().join("/");
        // The server redirects its well-known URL; credentials are sent
        // again to the same origin (ureq drops them on redirects).
        let mut url = session_url.to_string();
        let mut session = Value::Null;
        for _ in 0..3 {
            let (status, body) = Self::request("GET", &url, None).expect("session");
            match body {
                Value::String(location) if (300..400).contains(&status) => {
                    url = if location.starts_with('/') {
                        format!("{origin}{location}")
                    } else {
                        location
                    };
                }
                body => {
                    session = body;
                    break;
                }
            }
        }
        assert!(session["apiUrl"].is_string(), "no JMAP session: {session}");
        Jmap { origin, session }
    }

    fn auth() -> String {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        format!("Basic {b}")
    }

    /// (status, JSON body) of one request; for a redirect, its `Location`
    /// as the body.
    pub fn request(
        method: &str,
        url: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(u16, Value), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut response = match (method, body) {
            ("GET", _) => agent.get(url).header("authorization", Self::auth()).call(),
            (_, Some((content_type, bytes))) => agent
                .post(url)
                .header("authorization", Self::auth())
                .header("content-type", content_type)
                .send(&bytes[..]),
            _ => unreachable!(),
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        if let Some(location) = response.headers().get("location") {
            return Ok((status, json!(location.to_str().unwrap_or_default())));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// A URL of the session (`apiUrl`, `uploadUrl`), made absolute.
    pub fn url(&self, key: &str) -> String {
        let u = self.session[key].as_str().unwrap();
        if u.starts_with('/') {
            format!("{}{u}", self.origin)
        } else {
            u.to_string()
        }
    }

    /// One method call; its arguments (panics on an error).
    pub fn call(&self, account: &str, method: &str, mut args: Value) -> Value {
        args["accountId"] = json!(account);
        let body = json!({
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [[method, args, "c0"]],
        });
        let (status, answer) = Self::request(
            "POST",
            &self.url("apiUrl"),
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        )
        .unwrap();
        assert_eq!(status, 200, "{method}: {answer}");
        let r = &answer["methodResponses"][0];
        assert_eq!(r[0], method, "{answer}");
        r[1].clone()
    }

    /// The id of `account`'s inbox.
    pub fn inbox(&self, account: &str) -> String {
        let boxes = self.call(account, "Mailbox/get", json!({"ids": null}));
        boxes["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "inbox" || m["name"] == "INBOX" || m["name"] == "Inbox")
            .and_then(|m| m["id"].as_str())
            .expect("an inbox")
            .to_string()
    }

    /// Import one raw message into `account`'s inbox; its email id.
    pub fn import(&self, account: &str, raw: &[u8]) -> String {
        self.import_at(account, raw, None)
    }

    /// [`Jmap::import`], received at `received_at` (a UTCDate,
    /// `2001-01-01T00:00:00Z`) instead of now.
    pub fn import_at(&self, account: &str, raw: &[u8], received_at: Option<&str>) -> String {
        let upload = self.url("uploadUrl").replace("{accountId}", account);
        let (status, blob) =
            Self::request("POST", &upload, Some(("message/rfc822", raw.to_vec()))).unwrap();
        assert!((200..300).contains(&status), "upload: {status} {blob}");
        let inbox = self.inbox(account);
        let r = self.call(account, "Email/import", {
            let mut m = json!({"blobId": blob["blobId"], "mailboxIds": {inbox: true}});
            if let Some(at) = received_at {
                m["receivedAt"] = json!(at);
            }
            json!({"emails": {"m": m}})
        });
        r["created"]["m"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("import: {r}"))
            .to_string()
    }

    /// Wait until the server's search index shows `n` messages mentioning
    /// `address` in `account` (Cyrus indexes mail for search a moment after
    /// storing it: the delay `search_settle` covers in the engine).
    pub fn indexed(&self, account: &str, address: &str, n: usize) {
        let filter = json!({"operator": "OR", "conditions": [
            {"from": address}, {"to": address}, {"cc": address},
        ]});
        for _ in 0..200 {
            let r = self.call(account, "Email/query", json!({"filter": filter}));
            if r["ids"].as_array().unwrap().len() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the server did not index {n} messages in 10 s");
    }

    /// Whether `account` holds the message `id`.
    pub fn exists(&self, account: &str, id: &str) -> bool {
        let r = self.call(
            account,
            "Email/get",
            json!({"ids": [id], "properties": ["id"]}),
        );
        !r["list"].as_array().unwrap().is_empty()
    }
}

/// A plain-text RFC 5322 message.
pub fn message(from: &str, to: &str, cc: Option<&str>, subject: &str, body: &str) -> Vec<u8> {
    let cc = cc.map(|c| format!("Cc: {c}\r\n")).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: {to}\r\n{cc}Subject: {subject}\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{}@oubli.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        unique()
    )
    .into_bytes()
}
