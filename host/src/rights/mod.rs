//! The rights themselves: what must happen for a data subject, across every
//! configured system. The CLI and (later) the HTTP API are thin layers over
//! this module.
//!
//! So far: [`locate`], finding a subject everywhere; [`access`], reading
//! their records and attachments out; [`retry`], calling plugins the way
//! their systems ask (Retry-After, back-off). The request lifecycle (plan,
//! approve, execute, verify, evidence) comes on top of them.

pub mod access;
pub mod locate;
pub mod retry;
