//! The words of the notice, the record of processing and the answer's
//! information, per language. A struct rather than a table of keys: a
//! language that lacks a text does not compile, and a test checks that the
//! French follows French typography (a no-break space before `:`, `;`,
//! `?`, `!`) and is not English left untranslated.

use crate::lang::Lang;

/// Every word the duties to inform use, in one language.
#[derive(Debug)]
pub(crate) struct Words {
    pub(crate) title_notice: &'static str,
    pub(crate) title_ropa: &'static str,
    pub(crate) incomplete: &'static str,
    pub(crate) missing: &'static str,
    pub(crate) h_controller: &'static str,
    pub(crate) h_controller_ropa: &'static str,
    pub(crate) h_dpo: &'static str,
    pub(crate) h_representative: &'static str,
    pub(crate) h_joint: &'static str,
    pub(crate) h_activity: &'static str,
    pub(crate) h_purposes: &'static str,
    pub(crate) h_interests: &'static str,
    pub(crate) h_subjects: &'static str,
    pub(crate) h_categories: &'static str,
    pub(crate) h_recipients: &'static str,
    pub(crate) h_transfers: &'static str,
    pub(crate) h_retention: &'static str,
    pub(crate) h_rights: &'static str,
    pub(crate) h_withdraw: &'static str,
    pub(crate) h_complaint: &'static str,
    pub(crate) h_requirement: &'static str,
    pub(crate) h_automated: &'static str,
    pub(crate) h_sources: &'static str,
    pub(crate) h_security: &'static str,
    pub(crate) h_full: &'static str,
    pub(crate) h_recording: &'static str,
    pub(crate) h_object: &'static str,
    pub(crate) recorded: &'static str,
    pub(crate) basis: [&'static str; 6],
    pub(crate) roles: [&'static str; 3],
    pub(crate) safeguards: [&'static str; 4],
    pub(crate) no_recipients: &'static str,
    pub(crate) no_transfer: &'static str,
    pub(crate) portable_yes: &'static str,
    pub(crate) rights: [&'static str; 7],
    pub(crate) withdraw: &'static str,
    pub(crate) complaint: &'static str,
    pub(crate) object_marketing: &'static str,
    pub(crate) own_name: &'static str,
    pub(crate) own_purposes: &'static str,
    pub(crate) own_subjects: &'static str,
    pub(crate) own_data: &'static str,
    pub(crate) own_recipients: &'static str,
    pub(crate) own_retention: &'static str,
    pub(crate) own_answers_kept: &'static str,
    pub(crate) own_sources: &'static str,
    pub(crate) own_automated: &'static str,
    pub(crate) own_requirement: &'static str,
    pub(crate) security: [&'static str; 5],
    pub(crate) days: &'static str,
    pub(crate) title_intake: &'static str,
    pub(crate) intake: [&'static str; 8],
}

impl Words {
    /// The words in `lang`.
    pub(crate) fn of(lang: Lang) -> &'static Words {
        match lang {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }
}

static EN: Words = Words {
    title_notice: "How we use your personal data",
    title_ropa: "Record of processing activities (Art. 30(1) GDPR)",
    incomplete: "INCOMPLETE: the register of processing does not yet say everything the law requires here. Missing:",
    missing: "[not stated in the register]",
    h_controller: "Who is responsible for your data",
    h_controller_ropa: "Controller",
    h_dpo: "Data protection officer",
    h_representative: "Representative in the European Union",
    h_joint: "Joint controllers",
    h_activity: "Processing activity",
    h_purposes: "Purposes and legal basis",
    h_interests: "Legitimate interests pursued",
    h_subjects: "Categories of data subjects",
    h_categories: "Categories of personal data",
    h_recipients: "Recipients",
    h_transfers: "Transfers outside the European Economic Area",
    h_retention: "How long data is kept",
    h_rights: "Your rights",
    h_withdraw: "Withdrawing your consent",
    h_complaint: "Complaints",
    h_requirement: "Must you give us this data?",
    h_automated: "Automated decisions and profiling",
    h_sources: "Where the data comes from",
    h_security: "Security measures (Art. 32)",
    h_full: "The full privacy notice",
    h_recording: "Why this call is recorded",
    h_object: "Your right to object",
    recorded: "Before we go on: this call is recorded.",
    basis: [
        "your consent (Art. 6(1)(a) GDPR)",
        "a contract with you, or steps you asked for before one (Art. 6(1)(b) GDPR)",
        "a legal obligation we are under (Art. 6(1)(c) GDPR)",
        "to protect someone's vital interests (Art. 6(1)(d) GDPR)",
        "a task carried out in the public interest (Art. 6(1)(e) GDPR)",
        "our legitimate interests (Art. 6(1)(f) GDPR)",
    ],
    roles: [
        "processor acting for us",
        "controller in its own right",
        "joint controller with us",
    ],
    safeguards: [
        "an adequacy decision of the European Commission (Art. 45 GDPR)",
        "the EU-US Data Privacy Framework, an adequacy decision (Art. 45 GDPR)",
        "the European Commission's standard contractual clauses (Art. 46(2)(c) GDPR)",
        "binding corporate rules (Art. 47 GDPR)",
    ],
    no_recipients: "No one outside our organisation.",
    no_transfer: "No data is transferred outside the European Economic Area.",
    portable_yes: "You may receive the data you gave us, and data observed from your use of our services, in a machine-readable form (Art. 20 GDPR):",
    rights: [
        "to see the data we hold about you and receive a copy (Art. 15)",
        "to have inaccurate data corrected (Art. 16)",
        "to have your data erased (Art. 17)",
        "to have its processing restricted (Art. 18)",
        "to receive the data you provided in a machine-readable form, and to have it sent to another controller, where the processing rests on your consent or a contract (Art. 20)",
        "to object to processing based on our legitimate interests or a public task, and at any time to direct marketing (Art. 21)",
        "not to be subject to a decision based solely on automated processing that significantly affects you (Art. 22)",
    ],
    withdraw: "Where we rely on your consent, you may withdraw it at any time, as easily as you gave it; what was done before stays lawful (Art. 7(3) GDPR).",
    complaint: "You may lodge a complaint with a supervisory authority, in particular where you live or work. Ours is:",
    object_marketing: "You may object at any time to your data being used for direct marketing.",
    own_name: "Handling requests from data subjects (this service)",
    own_purposes: "To receive, verify and answer requests to exercise the rights of Art. 15 to 22 GDPR, to carry them out in every system, and to keep proof that it was done.",
    own_subjects: "People who exercise their rights, and people who act for them.",
    own_data: "The identifiers given with a request (email addresses, phone numbers, names, customer numbers), how identity was checked, the requests, their plans, outcomes and history, the answers sent, the register of consents and restrictions.",
    own_recipients: "No one outside our organisation. The systems listed in this record receive the instructions to carry out each request.",
    own_retention: "Requests and their history: until an operator erases them; sealed under a key per request, destroyed with it.",
    own_answers_kept: "Answers to access and portability requests: kept for",
    own_sources: "The person making the request, or whoever acts for them; the systems searched.",
    own_automated: "None: every erasure is approved by a person.",
    own_requirement: "Proving who you are is needed for us to act on a request; without it we cannot act.",
    security: [
        "personal data in the request store is encrypted with AES-256-GCM under a key per request, wrapped by a key-encryption key under RSA-2048-OAEP",
        "exports and answers are encrypted for their recipients (RSA-2048-OAEP and AES-256-GCM)",
        "lookups use a keyed blind index (HMAC-SHA-256); no identifier is written to logs",
        "connectors run sandboxed (WebAssembly), with network access only to the hosts granted",
        "a hash-chained audit log with signed heads; erasures approved by a second person",
    ],
    days: "days",
    title_intake: "Taking a data protection request (script for agents)",
    intake: [
        "1. Note the date and time the request reaches you: the one-month deadline (Art. 12(3)) runs from then, not from when it is filed. File it with --channel and --received-at.",
        "2. Ask which right the person exercises, in their words; read them the list below if they are unsure. A request needs no particular wording or form.",
        "3. Take the identifiers we would find them by: the email address and phone number they gave us, a customer or account number. Never act on a name alone.",
        "4. Check who they are before anything is disclosed or erased: call back on the number on file, or send a code to the email on file, or ask questions only the person can answer. A phone number alone is not proof: anyone can call from a spoofed number. Write down what you checked (the attestation); never write down the answers to the questions.",
        "5. Read the reference back to the caller, with the deadline, and tell them how the answer will reach them.",
        "6. If the caller asks for someone else, take a written authority (power of attorney, parental responsibility) before filing.",
        "7. Do not promise an outcome: some data must be kept by law, and the answer will say what and why.",
        "The rights the person may exercise",
    ],
};

static FR: Words = Words {
    title_notice: "Comment nous utilisons vos données personnelles",
    title_ropa: "Registre des activités de traitement (art. 30(1) du RGPD)",
    incomplete: "INCOMPLET\u{a0}: le registre des traitements ne dit pas encore tout ce que la loi exige ici. Il manque\u{a0}:",
    missing: "[non indiqué dans le registre]",
    h_controller: "Qui est responsable de vos données",
    h_controller_ropa: "Responsable du traitement",
    h_dpo: "Délégué à la protection des données",
    h_representative: "Représentant dans l’Union européenne",
    h_joint: "Responsables conjoints du traitement",
    h_activity: "Activité de traitement",
    h_purposes: "Finalités et base légale",
    h_interests: "Intérêts légitimes poursuivis",
    h_subjects: "Catégories de personnes concernées",
    h_categories: "Catégories de données personnelles",
    h_recipients: "Destinataires",
    h_transfers: "Transferts hors de l’Espace économique européen",
    h_retention: "Durée de conservation",
    h_rights: "Vos droits",
    h_withdraw: "Retirer votre consentement",
    h_complaint: "Réclamations",
    h_requirement: "Êtes-vous obligé de nous fournir ces données\u{a0}?",
    h_automated: "Décisions automatisées et profilage",
    h_sources: "Origine des données",
    h_security: "Mesures de sécurité (art. 32)",
    h_full: "La politique de confidentialité complète",
    h_recording: "Pourquoi cet appel est enregistré",
    h_object: "Votre droit d’opposition",
    recorded: "Avant de poursuivre\u{a0}: cet appel est enregistré.",
    basis: [
        "votre consentement (art. 6(1)(a) du RGPD)",
        "un contrat conclu avec vous, ou des mesures précontractuelles prises à votre demande (art. 6(1)(b) du RGPD)",
        "une obligation légale à laquelle nous sommes soumis (art. 6(1)(c) du RGPD)",
        "la sauvegarde des intérêts vitaux d’une personne (art. 6(1)(d) du RGPD)",
        "une mission d’intérêt public (art. 6(1)(e) du RGPD)",
        "nos intérêts légitimes (art. 6(1)(f) du RGPD)",
    ],
    roles: [
        "sous-traitant agissant pour notre compte",
        "responsable de traitement distinct",
        "responsable conjoint avec nous",
    ],
    safeguards: [
        "une décision d’adéquation de la Commission européenne (art. 45 du RGPD)",
        "le cadre de protection des données UE–États-Unis (Data Privacy Framework), une décision d’adéquation (art. 45 du RGPD)",
        "les clauses contractuelles types de la Commission européenne (art. 46(2)(c) du RGPD)",
        "des règles d’entreprise contraignantes (art. 47 du RGPD)",
    ],
    no_recipients: "Personne en dehors de notre organisation.",
    no_transfer: "Aucune donnée n’est transférée hors de l’Espace économique européen.",
    portable_yes: "Vous pouvez recevoir les données que vous nous avez fournies, et celles observées lors de votre utilisation de nos services, dans un format lisible par machine (art. 20 du RGPD)\u{a0}:",
    rights: [
        "accéder aux données que nous détenons sur vous et en recevoir une copie (art. 15)",
        "faire rectifier des données inexactes (art. 16)",
        "faire effacer vos données (art. 17)",
        "faire limiter leur traitement (art. 18)",
        "recevoir les données que vous avez fournies dans un format lisible par machine, et les faire transmettre à un autre responsable, lorsque le traitement repose sur votre consentement ou un contrat (art. 20)",
        "vous opposer au traitement fondé sur nos intérêts légitimes ou une mission d’intérêt public, et à tout moment à la prospection (art. 21)",
        "ne pas faire l’objet d’une décision fondée exclusivement sur un traitement automatisé qui vous affecte de manière significative (art. 22)",
    ],
    withdraw: "Lorsque nous nous fondons sur votre consentement, vous pouvez le retirer à tout moment, aussi simplement que vous l’avez donné\u{a0}; ce qui a été fait avant reste licite (art. 7(3) du RGPD).",
    complaint: "Vous pouvez introduire une réclamation auprès d’une autorité de contrôle, notamment là où vous vivez ou travaillez. La nôtre est\u{a0}:",
    object_marketing: "Vous pouvez vous opposer à tout moment à l’utilisation de vos données à des fins de prospection.",
    own_name: "Traitement des demandes des personnes concernées (ce service)",
    own_purposes: "Recevoir, vérifier et traiter les demandes d’exercice des droits prévus aux articles 15 à 22 du RGPD, les exécuter dans chaque système et conserver la preuve de leur exécution.",
    own_subjects: "Les personnes qui exercent leurs droits, et celles qui agissent pour leur compte.",
    own_data: "Les identifiants fournis avec une demande (adresses électroniques, numéros de téléphone, noms, numéros de client), la manière dont l’identité a été vérifiée, les demandes, leurs plans, résultats et historique, les réponses envoyées, le registre des consentements et des limitations.",
    own_recipients: "Personne en dehors de notre organisation. Les systèmes figurant dans ce registre reçoivent les instructions nécessaires à l’exécution de chaque demande.",
    own_retention: "Demandes et historique\u{a0}: jusqu’à leur effacement par un opérateur\u{a0}; chiffrés sous une clé propre à chaque demande, détruite avec elle.",
    own_answers_kept: "Réponses aux demandes d’accès et de portabilité\u{a0}: conservées",
    own_sources: "La personne qui fait la demande, ou celle qui agit pour elle\u{a0}; les systèmes consultés.",
    own_automated: "Aucune\u{a0}: chaque effacement est approuvé par une personne.",
    own_requirement: "Justifier de votre identité est nécessaire pour que nous donnions suite à une demande\u{a0}; sans cela, nous ne pouvons pas agir.",
    security: [
        "les données personnelles du registre des demandes sont chiffrées en AES-256-GCM sous une clé propre à chaque demande, elle-même protégée par une clé de chiffrement de clés en RSA-2048-OAEP",
        "les exports et les réponses sont chiffrés pour leurs destinataires (RSA-2048-OAEP et AES-256-GCM)",
        "les recherches passent par un index aveugle à clé (HMAC-SHA-256)\u{a0}; aucun identifiant n’est écrit dans les journaux",
        "les connecteurs s’exécutent isolés (WebAssembly), avec un accès réseau limité aux hôtes autorisés",
        "un journal d’audit chaîné par hachage, aux têtes signées\u{a0}; les effacements sont approuvés par une seconde personne",
    ],
    days: "jours",
    title_intake: "Recevoir une demande relative aux données personnelles (script pour les conseillers)",
    intake: [
        "1. Notez la date et l’heure auxquelles la demande vous parvient\u{a0}: le délai d’un mois (art. 12(3)) court à partir de là, et non du dépôt. Déposez-la avec --channel et --received-at.",
        "2. Demandez quel droit la personne exerce, avec ses mots\u{a0}; lisez-lui la liste ci-dessous si elle hésite. Une demande n’exige ni formule ni formulaire.",
        "3. Relevez les identifiants qui permettent de la retrouver\u{a0}: l’adresse électronique et le numéro de téléphone qu’elle nous a donnés, un numéro de client ou de compte. N’agissez jamais sur un nom seul.",
        "4. Vérifiez son identité avant toute communication ou tout effacement\u{a0}: rappelez le numéro connu, ou envoyez un code à l’adresse connue, ou posez des questions auxquelles seule la personne peut répondre. Un numéro de téléphone seul ne prouve rien\u{a0}: n’importe qui peut appeler depuis un numéro usurpé. Notez ce que vous avez vérifié (l’attestation), jamais les réponses aux questions.",
        "5. Relisez la référence à l’appelant, avec le délai, et dites-lui comment la réponse lui parviendra.",
        "6. Si l’appelant agit pour quelqu’un d’autre, obtenez un mandat écrit (procuration, autorité parentale) avant de déposer la demande.",
        "7. Ne promettez pas de résultat\u{a0}: certaines données doivent être conservées par la loi, et la réponse dira lesquelles et pourquoi.",
        "Les droits que la personne peut exercer",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn all(w: &Words) -> Vec<&'static str> {
        let mut v = vec![
            w.title_notice,
            w.title_ropa,
            w.incomplete,
            w.missing,
            w.h_controller,
            w.h_controller_ropa,
            w.h_dpo,
            w.h_representative,
            w.h_joint,
            w.h_activity,
            w.h_purposes,
            w.h_interests,
            w.h_subjects,
            w.h_categories,
            w.h_recipients,
            w.h_transfers,
            w.h_retention,
            w.h_rights,
            w.h_withdraw,
            w.h_complaint,
            w.h_requirement,
            w.h_automated,
            w.h_sources,
            w.h_security,
            w.h_full,
            w.h_recording,
            w.h_object,
            w.recorded,
            w.no_recipients,
            w.no_transfer,
            w.portable_yes,
            w.withdraw,
            w.complaint,
            w.object_marketing,
            w.own_name,
            w.own_purposes,
            w.own_subjects,
            w.own_data,
            w.own_recipients,
            w.own_retention,
            w.own_answers_kept,
            w.own_sources,
            w.own_automated,
            w.own_requirement,
            w.days,
        ];
        v.extend(w.basis);
        v.extend(w.roles);
        v.extend(w.safeguards);
        v.extend(w.rights);
        v.extend(w.security);
        v
    }

    #[test]
    fn every_text_is_translated_and_french_follows_its_typography() {
        let (en, fr) = (all(&EN), all(&FR));
        assert_eq!(en.len(), fr.len());
        for (e, f) in en.iter().zip(&fr) {
            assert!(!f.trim().is_empty(), "an empty French text for {e:?}");
            super::super::french_typography(f).unwrap();
            // Left in English: the same words (titles that are numbers or
            // names aside, none of ours is).
            assert_ne!(e, f, "not translated");
        }
        let check = super::super::french_typography;
        assert!(check("Avant de poursuivre : cet appel").is_err());
        assert!(check("Avant de poursuivre: cet appel").is_err());
        assert!(check("Avant de poursuivre\u{a0}: cet appel").is_ok());
        assert!(check("voir https://example.com").is_ok());
    }
}
