//! The trait a connector implements, and its adapter to the generated export.

use crate::bindings::exports::oubli::connector::connector::Guest;
use crate::{
    Change, ConnectorError, Dated, EraseMode, Exported, Located, Manifest, Outcome, RecordRef,
    Subject, SweepQuery,
};
use std::marker::PhantomData;

/// A connector: implement `manifest` and `locate`, and whichever other
/// operations the system offers. The rest answer `not-supported`, which makes
/// the host create a manual task instead of skipping the system.
///
/// Every method runs in a fresh instance of the component: keep no state in
/// statics, it will not be there on the next call.
pub trait Connector {
    /// What the connector is and what it asks for. Must be pure: no network,
    /// no configuration.
    fn manifest() -> Manifest;

    /// Find every record of the subject.
    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError>;

    /// Read the personal data in these records.
    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let _ = refs;
        Err(ConnectorError::not_supported("export"))
    }

    /// Read up to `max_len` bytes of an attachment from `offset`; empty means
    /// the end.
    fn read_attachment(
        reference: RecordRef,
        name: String,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, ConnectorError> {
        let _ = (reference, name, offset, max_len);
        Err(ConnectorError::not_supported("read-attachment"))
    }

    /// Correct fields in one record.
    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        let _ = (reference, changes);
        Err(ConnectorError::not_supported("rectify"))
    }

    /// Delete or anonymise records.
    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let _ = (refs, mode);
        Err(ConnectorError::not_supported("erase"))
    }

    /// Remove the subject from records shared with other people (located
    /// with [`Role::Participant`](crate::Role)), leaving the records to the
    /// others.
    fn detach(subject: Subject, refs: Vec<RecordRef>) -> Result<Vec<Outcome>, ConnectorError> {
        let _ = (subject, refs);
        Err(ConnectorError::not_supported("detach"))
    }

    /// Turn restriction of processing on or off. A system that cannot
    /// restrict only the scope asked (a purpose such as
    /// `direct-marketing`) answers `retained` with the reason rather than
    /// restricting more.
    fn restrict(
        subject: Subject,
        scope: Vec<String>,
        on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        let _ = (subject, scope, on);
        Err(ConnectorError::not_supported("restrict"))
    }

    /// Follow an asynchronous job.
    fn poll(ticket: String) -> Result<Vec<Outcome>, ConnectorError> {
        let _ = ticket;
        Err(ConnectorError::not_supported("poll"))
    }

    /// Page through the records of one category dated before the cutoff,
    /// oldest first by (trigger date, id), strictly after `query.after`, at
    /// most `query.limit` of them. Read-only. Declare the categories in
    /// [`Manifest::retention`]; [`SweepQuery::check`] refuses the others.
    fn sweep(query: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        let _ = query;
        Err(ConnectorError::not_supported("sweep"))
    }
}

/// A call the system refused (`denied`) may have been refused for a token
/// the host kept, revoked since: forget the tokens this call used, so that
/// the next fetches new ones.
fn refused<R>(result: Result<R, ConnectorError>) -> Result<R, ConnectorError> {
    if let Err(ConnectorError::Denied(_)) = &result {
        crate::http::forget_used_tokens();
    }
    result
}

/// Adapts a [`Connector`] to the generated bindings; used by
/// [`export!`](crate::export), not by hand.
pub struct Export<T>(PhantomData<T>);

impl<T: Connector> Guest for Export<T> {
    fn manifest() -> Manifest {
        T::manifest()
    }
    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        refused(T::locate(subject))
    }
    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        refused(T::export(refs))
    }
    fn read_attachment(
        reference: RecordRef,
        name: String,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, ConnectorError> {
        refused(T::read_attachment(reference, name, offset, max_len))
    }
    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        refused(T::rectify(reference, changes))
    }
    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        refused(T::erase(refs, mode))
    }
    fn detach(subject: Subject, refs: Vec<RecordRef>) -> Result<Vec<Outcome>, ConnectorError> {
        refused(T::detach(subject, refs))
    }
    fn restrict(
        subject: Subject,
        scope: Vec<String>,
        on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        refused(T::restrict(subject, scope, on))
    }
    fn poll(ticket: String) -> Result<Vec<Outcome>, ConnectorError> {
        refused(T::poll(ticket))
    }
    fn sweep(query: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        refused(T::sweep(query))
    }
}
