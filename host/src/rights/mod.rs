//! The rights themselves: what must happen for a data subject, across every
//! configured system. The CLI and (later) the HTTP API are thin layers over
//! this module.
//!
//! So far: [`locate`], finding a subject everywhere. The request lifecycle
//! (plan, approve, execute, verify, evidence) comes on top of it.

pub mod locate;
