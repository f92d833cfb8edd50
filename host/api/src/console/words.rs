//! The console's words in English and French: each text is written where
//! it is used as a pair (`tr(lang, "English", "Français")`); the
//! vocabulary shared by many pages (states, kinds, roles) is here.

use oubli_core::lang::Lang;
use oubli_core::rights::tokens::Role;
use oubli_model::{RequestKind, RequestState, SystemState};

/// The text for `lang`.
pub(crate) fn tr(lang: Lang, en: &'static str, fr: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Fr => fr,
    }
}

/// A request's kind, with its article.
pub(crate) fn kind(l: Lang, k: RequestKind) -> &'static str {
    use RequestKind::*;
    match k {
        Access => tr(l, "Access (Art. 15)", "Accès (art. 15)"),
        Portability => tr(l, "Portability (Art. 20)", "Portabilité (art. 20)"),
        Rectification => tr(l, "Rectification (Art. 16)", "Rectification (art. 16)"),
        Erasure => tr(l, "Erasure (Art. 17)", "Effacement (art. 17)"),
        Restriction => tr(l, "Restriction (Art. 18)", "Limitation (art. 18)"),
        Objection => tr(l, "Objection (Art. 21)", "Opposition (art. 21)"),
        ConsentWithdrawal => tr(
            l,
            "Consent withdrawal (Art. 7(3))",
            "Retrait du consentement (art. 7(3))",
        ),
        Lift => tr(l, "Lift (Art. 18(3))", "Levée (art. 18(3))"),
    }
}

/// A request's state.
pub(crate) fn state(l: Lang, s: RequestState) -> &'static str {
    use RequestState::*;
    match s {
        Received => tr(l, "received", "reçue"),
        Verified => tr(l, "identity verified", "identité vérifiée"),
        Planning => tr(l, "planning", "en préparation"),
        AwaitingApproval => tr(l, "awaiting approval", "en attente d’approbation"),
        Executing => tr(l, "executing", "en cours"),
        Completed => tr(l, "completed", "terminée"),
        PartiallyCompleted => tr(l, "partially completed", "terminée en partie"),
        Failed => tr(l, "failed", "échouée"),
        Rejected => tr(l, "rejected", "rejetée"),
        Cancelled => tr(l, "cancelled", "annulée"),
    }
}

/// A system's state within a request.
pub(crate) fn system_state(l: Lang, s: SystemState) -> &'static str {
    use SystemState::*;
    match s {
        Planned => tr(l, "planned", "prévu"),
        LocateFailed => tr(l, "could not be searched", "recherche impossible"),
        Nothing => tr(l, "nothing found", "rien trouvé"),
        Running => tr(l, "running", "en cours"),
        NeedsAttention => tr(l, "needs attention", "à traiter"),
        Done => tr(l, "done", "fait"),
        Partial => tr(l, "partly done", "fait en partie"),
        Failed => tr(l, "failed", "échoué"),
        Skipped => tr(l, "skipped", "ignoré"),
        Cancelled => tr(l, "cancelled", "annulé"),
        Unavailable => tr(l, "unavailable", "indisponible"),
    }
}

/// A role.
pub(crate) fn role(l: Lang, r: Role) -> &'static str {
    match r {
        Role::Auditor => tr(l, "auditor", "auditeur"),
        Role::Operator => tr(l, "operator", "opérateur"),
        Role::Approver => tr(l, "approver", "approbateur"),
        Role::Admin => tr(l, "administrator", "administrateur"),
    }
}
