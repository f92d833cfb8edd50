//! A small JSON-over-HTTP client on `wasi:http/outgoing-handler`.
//!
//! The host only lets a connector reach the hosts its manifest asked for and
//! the integrator granted; any other request fails with
//! [`ConnectorError::Denied`]. Status codes map to connector errors with
//! [`Response::error_for_status`]:
//!
//! | status | error |
//! |---|---|
//! | 401, 403 | `denied` |
//! | 408, 5xx | `unavailable` |
//! | 429 | `rate-limited(Retry-After seconds)` |
//! | other 4xx | `invalid` |
//!
//! A 3xx is never success: redirects are followed (at most
//! [`MAX_REDIRECTS`] hops, same origin only unless [`Client::redirects`]
//! says otherwise, each hop checked by the host against the grants), and a
//! redirect that is not followed is an error.
//!
//! Error messages name the method, the host and the status, never the path or
//! query (they can hold identifiers) nor the body.
//!
//! Large bodies are read as a stream with [`Request::stream`];
//! [`Request::read_range`] streams too, and keeps its download open between
//! the `read-attachment` calls of one attachment (see [`Request::read_range`]).
//!
//! ```ignore
//! use oubli_plugin::http::Client;
//! let api = Client::new("https://api.example.com/v2")?.bearer(&token);
//! let hits: SearchResult = api.get("/contacts/search").query("email", email).json()?;
//! ```

use crate::ConnectorError;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use crate::bindings::wasi::io::streams::{InputStream, StreamError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bodies larger than this are refused unless [`Client::max_body`] says
/// otherwise.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Seconds to wait on a 429 that carries no usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER_SECS: u32 = 5;

/// The longest `Retry-After` the client waits out itself, inside the
/// operation; longer ones are the host's to schedule.
pub const INLINE_RETRY_MAX_SECS: u32 = 2;

/// How many throttled answers one request waits out before giving up.
pub const INLINE_RETRY_ATTEMPTS: u32 = 3;

/// How many redirects one request follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Which redirects a [`Client`] follows. Whatever this says, every hop is a
/// new request that the host checks against the connector's grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Redirects {
    /// None: a 3xx answer is an error.
    None,
    /// Only to the same origin (scheme, host and port): the default.
    #[default]
    SameOrigin,
    /// To any origin the host grants this connector. Leaving the origin
    /// drops the client's `Authorization` and `Cookie` headers: credentials
    /// for one server are never handed to another.
    Granted,
}

/// A client for one base URL (`https://host[:port][/base/path]`).
#[derive(Clone, Debug)]
pub struct Client {
    https: bool,
    authority: String,
    base_path: String,
    headers: Vec<(String, Vec<u8>)>,
    max_body: usize,
    redirects: Redirects,
}

/// A request being built; finish it with [`Request::send`] or
/// [`Request::json`].
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct Request<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

/// One page of a listing in the Genesys Cloud shape: `entities`, and the
/// `nextUri` of the next page when there is one. [`Request::all_pages`]
/// follows them; read one page with [`Request::json`].
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    /// The page's items.
    #[serde(default = "Vec::new")]
    pub entities: Vec<T>,
    /// Where the next page is (a path, or a URL on the same host).
    pub next_uri: Option<String>,
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers, names in lowercase.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    method: &'static str,
    authority: String,
}

impl Client {
    /// A client for `base_url`, which must be `http://` or `https://` with a
    /// host. Paths given to [`Client::get`] and friends are appended to the
    /// base URL's path; a full URL on the same host is accepted too.
    pub fn new(base_url: &str) -> Result<Self, ConnectorError> {
        let (https, rest) = if let Some(r) = base_url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = base_url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(ConnectorError::Invalid(
                "base URL must start with http:// or https://".into(),
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(ConnectorError::Invalid("base URL has no host".into()));
        }
        Ok(Client {
            https,
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
            headers: vec![("accept".into(), b"application/json".to_vec())],
            max_body: DEFAULT_MAX_BODY,
            redirects: Redirects::default(),
        })
    }

    /// Send `Authorization: Bearer <token>` with every request.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Send HTTP Basic credentials (RFC 7617) with every request.
    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.header("authorization", &format!("Basic {encoded}"))
    }

    /// Which redirects to follow ([`Redirects::SameOrigin`] unless set).
    pub fn redirects(mut self, policy: Redirects) -> Self {
        self.redirects = policy;
        self
    }

    /// Send this header with every request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    /// Refuse response bodies larger than `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The `host[:port]` this client talks to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// A GET request.
    pub fn get(&self, path: &str) -> Request<'_> {
        self.request(Method::Get, path)
    }
    /// A POST request.
    pub fn post(&self, path: &str) -> Request<'_> {
        self.request(Method::Post, path)
    }
    /// A PUT request.
    pub fn put(&self, path: &str) -> Request<'_> {
        self.request(Method::Put, path)
    }
    /// A PATCH request.
    pub fn patch(&self, path: &str) -> Request<'_> {
        self.request(Method::Patch, path)
    }
    /// A DELETE request.
    pub fn delete(&self, path: &str) -> Request<'_> {
        self.request(Method::Delete, path)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        let scheme = if self.https { "https://" } else { "http://" };
        let path = match path.strip_prefix(scheme) {
            // A full URL on our own host (e.g. a `nextUri`): keep its path.
            Some(rest) if rest.starts_with(&self.authority) => {
                let p = &rest[self.authority.len()..];
                if p.starts_with('/') {
                    p.to_string()
                } else {
                    format!("/{p}")
                }
            }
            _ if path.is_empty() => self.base_path.clone(),
            _ if path.starts_with('/')
                && !self.base_path.is_empty()
                && path.starts_with(&self.base_path) =>
            {
                path.to_string()
            }
            _ if path.starts_with('/') => format!("{}{path}", self.base_path),
            _ => format!("{}/{path}", self.base_path),
        };
        Request {
            client: self,
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }
}

impl Request<'_> {
    /// Add a query parameter (percent-encoded here).
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// Add a header to this request only.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    /// Send `value` as a JSON body.
    pub fn json_body<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ConnectorError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ConnectorError::Internal(format!("cannot encode request body: {e}")))?;
        self.headers
            .push(("content-type".into(), b"application/json".to_vec()));
        self.body = Some(body);
        Ok(self)
    }

    /// Send raw bytes as the body, with this content type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("content-type".into(), content_type.as_bytes().to_vec()));
        self.body = Some(body);
        self
    }

    /// Send the request and check its status; see the module docs.
    pub fn send(self) -> Result<Response, ConnectorError> {
        self.send_any()?.error_for_status()
    }

    /// Send the request, whatever status comes back (transport failures are
    /// still errors).
    ///
    /// A 429 whose `Retry-After` asks for at most [`INLINE_RETRY_MAX_SECS`]
    /// is waited out here and the request sent again (up to
    /// [`INLINE_RETRY_ATTEMPTS`] times): one operation often needs several
    /// requests, and giving up on each short throttle would make the host
    /// start the whole operation again, only to be throttled at the same
    /// point. Longer waits come back as the 429 response, for
    /// [`Response::error_for_status`] to turn into `rate-limited`.
    ///
    /// Redirects are followed as the client's [`Redirects`] policy says: a
    /// 303, or a 301 or 302 to a POST, becomes a GET without a body; 307
    /// and 308 repeat the method and body.
    pub fn send_any(self) -> Result<Response, ConnectorError> {
        let max = self.client.max_body;
        let opened = self.open()?;
        let status = opened.status;
        let headers = opened.headers.clone();
        let (method, authority) = (opened.body.method, opened.body.authority.clone());
        let body = opened.body.read_to_end(max)?;
        Ok(Response {
            status,
            headers,
            body,
            method,
            authority,
        })
    }

    /// Send the request, check its status, and hand back the body as a
    /// stream to read at the caller's pace, without holding it whole.
    ///
    /// ```ignore
    /// let mut body = media.get("").stream()?;
    /// while let chunk = body.read(64 * 1024)? && !chunk.is_empty() { ... }
    /// ```
    pub fn stream(self) -> Result<BodyReader, ConnectorError> {
        let opened = self.open()?;
        opened.check()?;
        Ok(opened.body)
    }

    /// Send, waiting out short throttles and following redirects; the body
    /// is not read yet.
    fn open(self) -> Result<Opened, ConnectorError> {
        let client = self.client;
        let mut hop = self.into_hop();
        let mut throttled = 0;
        let mut redirects = 0;
        loop {
            let opened = hop.send()?;
            if opened.status == 429 && throttled < INLINE_RETRY_ATTEMPTS {
                match opened
                    .header("retry-after")
                    .and_then(|v| parse_retry_after(v, crate::now()))
                {
                    Some(secs) if secs <= INLINE_RETRY_MAX_SECS => {
                        drop(opened);
                        let nanos = u64::from(secs.max(1)) * 1_000_000_000;
                        crate::bindings::wasi::clocks::monotonic_clock::subscribe_duration(nanos)
                            .block();
                        throttled += 1;
                        continue;
                    }
                    _ => return Ok(opened),
                }
            }
            if !matches!(opened.status, 301 | 302 | 303 | 307 | 308)
                || client.redirects == Redirects::None
            {
                return Ok(opened);
            }
            let Some(location) = opened.header("location") else {
                return Ok(opened);
            };
            let what = format!("{} to {}", hop.method_name(), hop.authority);
            if redirects >= MAX_REDIRECTS {
                return Err(ConnectorError::Unavailable(format!(
                    "{what}: more than {MAX_REDIRECTS} redirects"
                )));
            }
            let Some((https, authority, path)) = hop.resolve(location) else {
                return Err(ConnectorError::Invalid(format!(
                    "{what} redirected to an address that is not http(s)"
                )));
            };
            let home = https == client.https && authority == client.authority;
            if !home {
                if client.redirects == Redirects::SameOrigin {
                    return Err(ConnectorError::Denied(format!(
                        "{what} redirected to another origin ({}://{authority}); only same-origin redirects are followed",
                        if https { "https" } else { "http" }
                    )));
                }
                hop.headers
                    .retain(|(n, _)| n != "authorization" && n != "cookie");
            }
            let status = opened.status;
            drop(opened);
            if status == 303 || (matches!(status, 301 | 302) && matches!(hop.method, Method::Post))
            {
                hop.method = Method::Get;
                hop.body = None;
                hop.headers.retain(|(n, _)| n != "content-type");
            }
            hop.https = https;
            hop.authority = authority;
            hop.path = path;
            redirects += 1;
        }
    }

    fn into_hop(self) -> Hop {
        let mut path = self.path;
        for (i, (k, v)) in self.query.iter().enumerate() {
            path.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            path.push_str(&percent_encode(k));
            path.push('=');
            path.push_str(&percent_encode(v));
        }
        let mut headers = self.client.headers.clone();
        headers.extend(self.headers);
        Hop {
            https: self.client.https,
            authority: self.client.authority.clone(),
            path,
            method: self.method,
            headers,
            body: self.body,
        }
    }

    /// Send the request, check its status and decode the JSON answer.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, ConnectorError> {
        self.send()?.json()
    }

    /// Send the request and follow a paged listing in the shape Genesys
    /// Cloud and many REST APIs use (`{"entities": [...], "nextUri":
    /// "/path?page=2"}`), collecting the entities of every page; each next
    /// page is a GET of `nextUri` on the same client.
    ///
    /// ```ignore
    /// let lists: Vec<ContactList> = api.get("/api/v2/outbound/contactlists").query("pageSize", 100).all_pages()?;
    /// ```
    pub fn all_pages<T: DeserializeOwned>(self) -> Result<Vec<T>, ConnectorError> {
        let client = self.client;
        let mut page: Listing<T> = self.json()?;
        let mut out = Vec::new();
        loop {
            out.append(&mut page.entities);
            match page.next_uri.take() {
                Some(next) => page = client.get(&next).json()?,
                None => return Ok(out),
            }
        }
    }

    /// Like [`Request::json`], but a 404 is `Ok(None)`: the usual way to read
    /// a record that may have gone since it was located.
    ///
    /// ```ignore
    /// let Some(contact) = api.get(&format!("/contacts/{id}")).json_opt::<Contact>()? else {
    ///     continue; // erased meanwhile
    /// };
    /// ```
    pub fn json_opt<T: DeserializeOwned>(self) -> Result<Option<T>, ConnectorError> {
        let response = self.send_any()?;
        if response.status == 404 {
            return Ok(None);
        }
        response.error_for_status()?.json().map(Some)
    }

    /// Send a change to one record and say what happened to it: 2xx is
    /// `done`, 404 `not-found`, any other status the error it stands for.
    ///
    /// ```ignore
    /// outcomes.push(api.delete(&format!("/contacts/{}", r.id)).outcome_for(r)?);
    /// ```
    pub fn outcome_for(
        self,
        reference: crate::RecordRef,
    ) -> Result<crate::Outcome, ConnectorError> {
        let response = self.send_any()?;
        if response.status == 404 {
            return Ok(crate::Outcome::not_found(reference));
        }
        response.error_for_status()?;
        Ok(crate::Outcome::done(reference))
    }

    /// Read up to `max_len` bytes from `offset`, the building block of
    /// `read-attachment`. Streams: the body is read as it arrives, never
    /// held whole, so an attachment of any size can be read.
    ///
    /// The request asks for `Range: bytes=offset-` (to the end). A 206 is
    /// read from where its `Content-Range` says; a server that ignores
    /// `Range` (200, as Cyrus does for JMAP downloads) has the bytes before
    /// `offset` read and dropped. Either way the download stays open after
    /// this call: the host reads one attachment from one instance, so the
    /// next call, asking for the next bytes of the same URL, continues the
    /// same response instead of starting again. A call for anything else
    /// drops it. 416 means the end.
    ///
    /// ```ignore
    /// let chunk = media.get("").read_range(offset, max_len)?;
    /// ```
    pub fn read_range(self, offset: u64, max_len: u32) -> Result<Vec<u8>, ConnectorError> {
        if max_len == 0 {
            return Ok(Vec::new());
        }
        let key = format!(
            "{}://{}{}#{:?}",
            if self.client.https { "https" } else { "http" },
            self.client.authority,
            self.path,
            self.query
        );
        let open = OPEN_DOWNLOAD.with(|o| o.borrow_mut().take());
        let mut open = match open {
            Some(o) if o.key == key && o.offset == offset => o,
            _ => {
                let opened = self.header("range", &format!("bytes={offset}-")).open()?;
                let mut body = match opened.status {
                    416 => return Ok(Vec::new()),
                    206 => {
                        let start = opened
                            .header("content-range")
                            .and_then(content_range_start)
                            .unwrap_or(offset);
                        if start != offset {
                            return Err(ConnectorError::Internal(format!(
                                "{} to {}: the server sent a range starting at {start}, not {offset}",
                                opened.body.method, opened.body.authority
                            )));
                        }
                        opened.body
                    }
                    200 => {
                        let mut body = opened.body;
                        body.skip(offset)?;
                        body
                    }
                    _ => {
                        opened.check()?;
                        return Err(ConnectorError::Invalid(format!(
                            "{} to {} returned HTTP {} to a range request",
                            opened.body.method, opened.body.authority, opened.status
                        )));
                    }
                };
                body.position = 0;
                OpenDownload { key, body, offset }
            }
        };
        let bytes = open.body.read(max_len as usize)?;
        open.offset += bytes.len() as u64;
        // Kept even when the body has ended: the host asks once more past
        // the last byte, and that must not start the download again.
        OPEN_DOWNLOAD.with(|o| *o.borrow_mut() = Some(open));
        Ok(bytes)
    }
}

/// One request on the wire.
struct Hop {
    https: bool,
    authority: String,
    /// Path and query.
    path: String,
    method: Method,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

/// A response whose body is still to be read.
struct Opened {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: BodyReader,
}

impl Opened {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The error the status stands for, if any.
    fn check(&self) -> Result<(), ConnectorError> {
        Response {
            status: self.status,
            headers: self.headers.clone(),
            body: Vec::new(),
            method: self.body.method,
            authority: self.body.authority.clone(),
        }
        .error_for_status()
        .map(drop)
    }
}

impl Hop {
    fn method_name(&self) -> &'static str {
        method_name(&self.method)
    }

    /// Where a `Location` points, as (https, authority, path with query):
    /// an absolute http(s) URL, an absolute path, or a path relative to
    /// this request's.
    fn resolve(&self, location: &str) -> Option<(bool, String, String)> {
        let location = location.trim();
        // Another scheme (`ftp:`, `javascript:`, `mailto:`) is not followed.
        let scheme = location.split_once(':').map(|(s, _)| s).filter(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        if scheme
            .is_some_and(|s| !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https"))
        {
            return None;
        }
        let absolute = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{}://{rest}", if self.https { "https" } else { "http" })
        } else {
            let scheme = if self.https { "https" } else { "http" };
            let path = if location.starts_with('/') {
                location.to_string()
            } else {
                let current = self.path.split(['?', '#']).next().unwrap_or("/");
                let dir = &current[..=current.rfind('/').unwrap_or(0)];
                let dir = if dir.is_empty() { "/" } else { dir };
                format!("{dir}{location}")
            };
            format!("{scheme}://{}{path}", self.authority)
        };
        let absolute = absolute.split('#').next().unwrap_or_default().to_string();
        let (origin, path) = split_url(&absolute, "")?;
        let https = origin.starts_with("https://");
        let authority = origin.split_once("://")?.1.to_string();
        Some((https, authority, path))
    }

    fn send(&self) -> Result<Opened, ConnectorError> {
        let method_name = self.method_name();
        let authority = self.authority.clone();
        let mut headers = self.headers.clone();
        if let Some(body) = &self.body {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|e| ConnectorError::Internal(format!("invalid request header: {e:?}")))?;
        let request = OutgoingRequest::new(fields);
        let internal =
            |what: &str| ConnectorError::Internal(format!("cannot build request: {what}"));
        request
            .set_method(&self.method)
            .map_err(|_| internal("method"))?;
        let scheme = if self.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|_| internal("scheme"))?;
        request
            .set_authority(Some(&authority))
            .map_err(|_| internal("authority"))?;
        request
            .set_path_with_query(Some(&self.path))
            .map_err(|_| internal("path"))?;
        // A request without a body takes none: a body taken and finished
        // empty still goes out chunked, and a server that does not read it
        // (most, for a GET or a DELETE) closes the connection after its
        // answer, so the next request on it could fail as a reset.
        let outgoing_body = match &self.body {
            Some(_) => Some(request.body().map_err(|_| internal("body"))?),
            None => None,
        };
        let future = outgoing_handler::handle(request, None)
            .map_err(|e| transport_error(method_name, &authority, &e))?;
        // A server may answer before it has read the body (a 429 or 401 from
        // a gateway) and close the connection: then writing fails, but the
        // answer is what matters. So a failed write only counts when no
        // response comes.
        let mut sent = true;
        if let (Some(outgoing_body), Some(body)) = (outgoing_body, &self.body) {
            {
                let stream = outgoing_body.write().map_err(|_| internal("body stream"))?;
                // `blocking-write-and-flush` takes at most 4096 bytes.
                for chunk in body.chunks(4096) {
                    if stream.blocking_write_and_flush(chunk).is_err() {
                        sent = false;
                        break;
                    }
                }
            }
            let finished = OutgoingBody::finish(outgoing_body, None);
            if sent && let Err(e) = &finished {
                return Err(transport_error(method_name, &authority, e));
            }
        }

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(_))) if !sent => {
                return Err(ConnectorError::Unavailable(format!(
                    "{method_name} to {authority}: connection closed while sending"
                )));
            }
            Some(Ok(Err(e))) => return Err(transport_error(method_name, &authority, &e)),
            Some(Err(())) | None => {
                return Err(ConnectorError::Internal(format!(
                    "{method_name} to {authority}: response already taken"
                )));
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let body = response.consume().map_err(|_| internal("response body"))?;
        let stream = body
            .stream()
            .map_err(|_| ConnectorError::Internal("response body stream taken".into()))?;
        Ok(Opened {
            status,
            headers,
            body: BodyReader {
                stream: Some(stream),
                body: Some(body),
                _response: response,
                method: method_name,
                authority,
                ended: false,
                position: 0,
            },
        })
    }
}

/// A response body read as it arrives ([`Request::stream`]): never held
/// whole, so its size is bounded only by what the caller keeps.
pub struct BodyReader {
    // Dropped in this order: the stream before its body, the body before
    // its response.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
    method: &'static str,
    authority: String,
    ended: bool,
    position: u64,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("authority", &self.authority)
            .field("position", &self.position)
            .field("ended", &self.ended)
            .finish()
    }
}

impl BodyReader {
    /// Up to `max` bytes, fewer only at the end; empty means the end.
    pub fn read(&mut self, max: usize) -> Result<Vec<u8>, ConnectorError> {
        let mut out = Vec::new();
        while out.len() < max && !self.ended {
            let want = (max - out.len()).min(64 * 1024) as u64;
            let chunk = self.next(want)?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Read and drop `n` bytes (fewer at the end); returns how many.
    pub fn skip(&mut self, n: u64) -> Result<u64, ConnectorError> {
        let mut skipped = 0;
        while skipped < n && !self.ended {
            skipped += self.next((n - skipped).min(64 * 1024))?.len() as u64;
        }
        Ok(skipped)
    }

    /// Bytes read (or skipped) so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether the body has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn next(&mut self, want: u64) -> Result<Vec<u8>, ConnectorError> {
        let Some(stream) = &self.stream else {
            self.ended = true;
            return Ok(Vec::new());
        };
        match stream.blocking_read(want) {
            Ok(chunk) => {
                self.position += chunk.len() as u64;
                Ok(chunk)
            }
            Err(StreamError::Closed) => {
                self.ended = true;
                self.stream = None;
                if let Some(body) = self.body.take() {
                    drop(IncomingBody::finish(body));
                }
                Ok(Vec::new())
            }
            Err(StreamError::LastOperationFailed(_)) => {
                self.ended = true;
                Err(ConnectorError::Unavailable(format!(
                    "{} to {}: connection failed while reading the response",
                    self.method, self.authority
                )))
            }
        }
    }

    /// The whole body, refused past `max` bytes.
    fn read_to_end(mut self, max: usize) -> Result<Vec<u8>, ConnectorError> {
        let mut out = Vec::new();
        while !self.ended {
            let chunk = self.next(64 * 1024)?;
            if out.len() + chunk.len() > max {
                return Err(ConnectorError::Unavailable(format!(
                    "{} to {}: response body larger than {max} bytes",
                    self.method, self.authority
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.stream = None;
        self.body = None;
    }
}

/// A download left open by [`Request::read_range`] for the next call.
struct OpenDownload {
    /// `scheme://authority/path?query` of the request that opened it.
    key: String,
    body: BodyReader,
    /// The attachment offset of the body's next byte.
    offset: u64,
}

thread_local! {
    static OPEN_DOWNLOAD: std::cell::RefCell<Option<OpenDownload>> =
        const { std::cell::RefCell::new(None) };
}

/// Where a 206's `Content-Range: bytes first-last/total` starts.
fn content_range_start(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// An OAuth 2.0 access token by the client-credentials grant (RFC 6749
/// §4.4): `POST token_url` with HTTP Basic client authentication and
/// `grant_type=client_credentials`. The token is kept in the host's cache
/// ([`crate::cache`]) until a minute before it expires (`expires_in`; five
/// minutes when the server does not say), so that the calls of one request
/// (every call runs in a fresh instance, one per 1 MiB of a recording)
/// share one token instead of each asking the token endpoint, which real
/// services rate-limit. A call that ends `denied` (the token was revoked
/// before then) forgets the tokens it used, so the next call fetches a new
/// one.
///
/// ```ignore
/// let token = oubli_plugin::http::client_credentials(
///     "https://login.mypurecloud.ie/oauth/token", &id, &secret)?;
/// ```
pub fn client_credentials(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<String, ConnectorError> {
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
        expires_in: Option<u64>,
    }
    let key = token_key(token_url, client_id);
    USED_TOKENS.with(|u| {
        let mut u = u.borrow_mut();
        if !u.contains(&key) {
            u.push(key.clone());
        }
    });
    if let Some(token) = crate::cache::get(&key).and_then(|t| String::from_utf8(t).ok()) {
        return Ok(token);
    }
    let basic = base64(format!("{client_id}:{client_secret}").as_bytes());
    let token: Token = Client::new(token_url)?
        .post("")
        .header("authorization", &format!("Basic {basic}"))
        .body(
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials".to_vec(),
        )
        .json()?;
    let ttl = token.expires_in.map_or(300, |s| s.saturating_sub(60));
    crate::cache::set(
        &key,
        token.access_token.as_bytes(),
        u32::try_from(ttl).unwrap_or(u32::MAX),
    );
    Ok(token.access_token)
}

thread_local! {
    /// The cache keys of the tokens this call used.
    static USED_TOKENS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Forget every token this call used (the system refused one).
pub(crate) fn forget_used_tokens() {
    USED_TOKENS.with(|u| {
        for key in u.borrow_mut().drain(..) {
            crate::cache::set(&key, b"", 0);
        }
    });
}

fn token_key(token_url: &str, client_id: &str) -> String {
    format!("oubli.oauth-client-credentials {token_url} {client_id}")
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Split an absolute `http(s)://host[:port]/path?query` URL into its origin
/// and its path with query, for following links a server hands out
/// (`nextUri`, media URLs, JMAP's `apiUrl`). A relative reference (`/path`)
/// is resolved against `base`'s origin.
///
/// ```
/// use oubli_plugin::http::split_url;
/// assert_eq!(
///     split_url("https://a.example:8443/x/y?z=1", "https://b.example"),
///     Some(("https://a.example:8443".to_string(), "/x/y?z=1".to_string()))
/// );
/// assert_eq!(
///     split_url("/jmap/api/", "https://b.example/.well-known/jmap"),
///     Some(("https://b.example".to_string(), "/jmap/api/".to_string()))
/// );
/// ```
pub fn split_url(url: &str, base: &str) -> Option<(String, String)> {
    let origin_of = |u: &str| -> Option<(String, String)> {
        let scheme_end = u.find("://")? + 3;
        let scheme = &u[..scheme_end];
        if scheme != "http://" && scheme != "https://" {
            return None;
        }
        let rest = &u[scheme_end..];
        let cut = rest.find(['/', '?']).unwrap_or(rest.len());
        if cut == 0 {
            return None;
        }
        let path = &rest[cut..];
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Some((format!("{scheme}{}", &rest[..cut]), path))
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        origin_of(url)
    } else if url.starts_with('/') && !url.starts_with("//") {
        let (origin, _) = origin_of(base)?;
        Some((origin, url.to_string()))
    } else {
        None
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header (case-insensitive name), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::Internal(format!(
                "{} to {}: response is not the expected JSON (line {}, column {}: {})",
                self.method,
                self.authority,
                e.line(),
                e.column(),
                e.classify_name(),
            ))
        })
    }

    /// This response, or the [`ConnectorError`] its status stands for.
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        let what = || {
            format!(
                "{} to {} returned HTTP {}",
                self.method, self.authority, self.status
            )
        };
        match self.status {
            200..=299 => Ok(self),
            300..=399 => Err(ConnectorError::Invalid(format!(
                "{} (a redirect that was not followed)",
                what()
            ))),
            401 | 403 => Err(ConnectorError::Denied(what())),
            429 => Err(ConnectorError::RateLimited(
                self.header("retry-after")
                    .and_then(|v| parse_retry_after(v, crate::now()))
                    .unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            )),
            408 | 500..=599 => Err(ConnectorError::Unavailable(what())),
            _ => Err(ConnectorError::Invalid(what())),
        }
    }
}

fn header_in<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(_) => "request",
    }
}

/// A failed exchange, as the connector error the host acts on. The whole
/// table, with no catch-all, so a new WASI error code must be placed here:
/// - `denied`: the host refused the destination (not granted);
/// - `unavailable` (retried with back-off, then needs attention): anything
///   the network or the server did (no name, no route, refused, reset,
///   timed out, a broken or oversized answer, TLS failures, the host's own
///   I/O errors), since trying again later is the right response to each;
/// - `internal`: only what this connector did wrong in building the
///   request (a bad URI, method or header, an upgrade it should not ask).
fn transport_error(method: &str, authority: &str, e: &ErrorCode) -> ConnectorError {
    let failed = |what: &str| format!("{method} to {authority} failed: {what}");
    match e {
        ErrorCode::HttpRequestDenied => ConnectorError::Denied(format!(
            "{method} to {authority} refused by the host: that host is not granted to this plugin"
        )),
        ErrorCode::DestinationIpProhibited => ConnectorError::Denied(format!(
            "{method} to {authority} refused by the host: the address is in a range not granted to this plugin"
        )),
        ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::HttpResponseIncomplete
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::LoopDetected => ConnectorError::Unavailable(failed(&format!("{e:?}"))),
        // What the host's HTTP client reports for a connection reset or a
        // malformed exchange: the server's side, not ours.
        ErrorCode::HttpProtocolError => {
            ConnectorError::Unavailable(failed("connection reset or protocol error"))
        }
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => {
            ConnectorError::Unavailable(failed(&format!("TLS: {e:?}")))
        }
        ErrorCode::HttpResponseHeaderSectionSize(_)
        | ErrorCode::HttpResponseHeaderSize(_)
        | ErrorCode::HttpResponseBodySize(_)
        | ErrorCode::HttpResponseTrailerSectionSize(_)
        | ErrorCode::HttpResponseTrailerSize(_)
        | ErrorCode::HttpResponseTransferCoding(_)
        | ErrorCode::HttpResponseContentCoding(_) => {
            ConnectorError::Unavailable(failed(&format!("the answer was refused: {e:?}")))
        }
        ErrorCode::InternalError(_) | ErrorCode::ConfigurationError => {
            ConnectorError::Unavailable(failed("the host could not complete the exchange"))
        }
        ErrorCode::HttpRequestLengthRequired
        | ErrorCode::HttpRequestBodySize(_)
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestHeaderSectionSize(_)
        | ErrorCode::HttpRequestHeaderSize(_)
        | ErrorCode::HttpRequestTrailerSectionSize(_)
        | ErrorCode::HttpRequestTrailerSize(_)
        | ErrorCode::HttpUpgradeFailed => ConnectorError::Internal(failed(&format!(
            "the connector built a request the host refuses: {e:?}"
        ))),
    }
}

/// Percent-encode a query component (RFC 3986 unreserved characters stay).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Seconds to wait from a `Retry-After` value: either delay-seconds or an
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), relative to `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u32> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.min(u32::MAX as u64) as u32);
    }
    let at = parse_http_date(value)?;
    let wait = (at - now_ms.div_euclid(1000)).max(0);
    Some(wait.min(u32::MAX as i64) as u32)
}

/// Unix seconds of an IMF-fixdate.
fn parse_http_date(s: &str) -> Option<i64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: i64 = parts[0].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])? as i64
        + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<i64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    Some(
        crate::text::days_from_civil(year, month, day) * 86_400
            + hms[0] * 3600
            + hms[1] * 60
            + hms[2],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_classified_by_who_can_fix_them() {
        use ConnectorError::*;
        let kind = |e: ErrorCode| match transport_error("GET", "h:1", &e) {
            Unavailable(_) => "unavailable",
            Denied(_) => "denied",
            Internal(_) => "internal",
            _ => "other",
        };
        for e in [
            ErrorCode::ConnectionRefused,
            ErrorCode::ConnectionTerminated,
            ErrorCode::ConnectionTimeout,
            ErrorCode::ConnectionReadTimeout,
            ErrorCode::DnsTimeout,
            ErrorCode::DestinationNotFound,
            ErrorCode::HttpResponseIncomplete,
            ErrorCode::HttpResponseTimeout,
            ErrorCode::HttpProtocolError,
            ErrorCode::TlsCertificateError,
            ErrorCode::InternalError(Some("connection reset by peer".into())),
            ErrorCode::HttpResponseBodySize(None),
        ] {
            assert_eq!(kind(e.clone()), "unavailable", "{e:?}");
        }
        assert_eq!(kind(ErrorCode::HttpRequestDenied), "denied");
        assert_eq!(kind(ErrorCode::DestinationIpProhibited), "denied");
        for e in [
            ErrorCode::HttpRequestUriInvalid,
            ErrorCode::HttpRequestMethodInvalid,
            ErrorCode::HttpUpgradeFailed,
        ] {
            assert_eq!(kind(e.clone()), "internal", "{e:?}");
        }
        // A host's text never reaches the message (it can name a path).
        let m = format!(
            "{:?}",
            transport_error(
                "GET",
                "h:1",
                &ErrorCode::InternalError(Some("/contacts?email=x".into()))
            )
        );
        assert!(!m.contains("email"), "{m}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(120));
        // 1994-11-06T08:49:37Z is 784111777.
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", 784_111_777_000),
            Some(10)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", 900_000_000_000),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    fn hop(https: bool, authority: &str, path: &str) -> Hop {
        Hop {
            https,
            authority: authority.into(),
            path: path.into(),
            method: Method::Get,
            headers: Vec::new(),
            body: None,
        }
    }

    #[test]
    fn redirect_locations_resolve_like_a_browser() {
        let h = hop(true, "mail.example.com", "/.well-known/jmap?x=1");
        let r = |l: &str| h.resolve(l);
        assert_eq!(
            r("/jmap/"),
            Some((true, "mail.example.com".into(), "/jmap/".into()))
        );
        assert_eq!(
            r("session"),
            Some((
                true,
                "mail.example.com".into(),
                "/.well-known/session".into()
            ))
        );
        assert_eq!(
            r("http://other.example:8080/a?b#frag"),
            Some((false, "other.example:8080".into(), "/a?b".into()))
        );
        assert_eq!(
            r("//cdn.example/x"),
            Some((true, "cdn.example".into(), "/x".into()))
        );
        assert_eq!(r("ftp://x/y"), None);
        assert_eq!(r("javascript:alert(1)"), None);
        assert_eq!(
            r("a:b/c"),
            None,
            "a scheme-like first segment is a scheme (RFC 3986 §4.2)"
        );
    }

    #[test]
    fn content_range_gives_the_first_byte() {
        assert_eq!(content_range_start("bytes 100-199/1000"), Some(100));
        assert_eq!(content_range_start("bytes */1000"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(percent_encode("jo+x@ex.com"), "jo%2Bx%40ex.com");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
