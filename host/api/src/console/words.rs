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

/// An audit event's action as a person reads it; an action this list does
/// not know is shown as it is recorded (hyphens as spaces).
pub(crate) fn action(l: Lang, a: &str) -> String {
    let (code, rest) = a.split_once(':').unwrap_or((a, ""));
    let known = match code {
        "received" => Some(tr(l, "received", "reçue")),
        "planning" => Some(tr(l, "planning", "préparation")),
        "planned" => Some(tr(l, "planned", "plan établi")),
        "approved" => Some(tr(l, "approved", "approuvée")),
        "rejected" => Some(tr(l, "rejected", "rejetée")),
        "cancelled" => Some(tr(l, "cancelled", "annulée")),
        "extended" => Some(tr(l, "deadline extended", "délai prolongé")),
        "noted" => Some(tr(l, "note", "note")),
        "identity-attested" => Some(tr(l, "identity attested", "identité attestée")),
        "record-excluded" => Some(tr(
            l,
            "record kept out of the plan",
            "enregistrement exclu du plan",
        )),
        "restriction-lifted" => Some(tr(l, "restriction lifted", "limitation levée")),
        "certificate-issued" => Some(tr(l, "certificate issued", "certificat émis")),
        "needs-attention" => Some(tr(l, "needs attention", "à traiter")),
        "retried" => Some(tr(l, "retried", "relancée")),
        "skipped" => Some(tr(l, "skipped", "ignoré")),
        "manual-done" => Some(tr(l, "manual task done", "tâche manuelle faite")),
        "done" => Some(tr(l, "done", "fait")),
        "settled" => Some(tr(l, "settled", "réglée")),
        "shredded" => Some(tr(l, "shredded", "détruite")),
        "answer-kept" => Some(tr(l, "answer kept", "réponse gardée")),
        "answer-removed" => Some(tr(l, "answer removed", "réponse supprimée")),
        _ => None,
    };
    match (known, rest) {
        (Some(w), "") => w.to_string(),
        (Some(w), r) => format!("{w} ({r})"),
        (None, _) => a.replace('-', " "),
    }
}

/// A channel's name.
pub(super) fn channel(l: Lang, c: oubli_model::Channel) -> &'static str {
    use oubli_model::Channel::*;
    match c {
        Call => tr(l, "phone call", "appel téléphonique"),
        Ivr => tr(l, "voice server (IVR)", "serveur vocal (SVI)"),
        Email => tr(l, "email", "courriel"),
        Letter => tr(l, "letter", "courrier"),
        Web => tr(l, "web form", "formulaire web"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_words_and_unknown_ones_as_recorded() {
        assert_eq!(action(Lang::Fr, "identity-attested"), "identité attestée");
        assert_eq!(action(Lang::En, "answer-kept:ab12"), "answer kept (ab12)");
        assert_eq!(action(Lang::En, "something-new"), "something new");
    }
}
