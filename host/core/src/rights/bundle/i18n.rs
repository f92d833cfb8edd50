//! What the subject reads, in their language. A language is one
//! [`Catalogue`]: add one (and its code to [`Lang`]) to add a language.

/// A language of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every language, by code.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// Its code (`en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Read a code.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }

    /// Its texts.
    pub fn texts(self) -> &'static Catalogue {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }
}

/// Every text of the bundle's page and information, in one language.
#[derive(Debug)]
pub struct Catalogue {
    pub(crate) title_access: &'static str,
    pub(crate) title_portability: &'static str,
    pub(crate) intro: &'static str,
    pub(crate) request: &'static str,
    pub(crate) received: &'static str,
    pub(crate) due: &'static str,
    pub(crate) completed: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) system: &'static str,
    pub(crate) records: &'static str,
    pub(crate) nothing_held: &'static str,
    pub(crate) not_searched: &'static str,
    pub(crate) files: &'static str,
    pub(crate) recording: &'static str,
    pub(crate) email: &'static str,
    pub(crate) download: &'static str,
    pub(crate) not_included: &'static str,
    pub(crate) information: &'static str,
    pub(crate) controller: &'static str,
    pub(crate) dpo: &'static str,
    pub(crate) categories: &'static str,
    pub(crate) purposes: &'static str,
    pub(crate) recipients: &'static str,
    pub(crate) retention: &'static str,
    pub(crate) source: &'static str,
    pub(crate) source_text: &'static str,
    pub(crate) automated: &'static str,
    pub(crate) no_automated: &'static str,
    pub(crate) your_rights: &'static str,
    pub(crate) rights: [&'static str; 6],
    pub(crate) complaint: &'static str,
    pub(crate) complaint_text: &'static str,
    pub(crate) not_set: &'static str,
    pub(crate) machine_readable: &'static str,
    pub(crate) other_voices: &'static str,
    pub(crate) states: &'static [(&'static str, &'static str)],
}

impl Catalogue {
    /// A system's or request's state, said to the subject.
    pub(crate) fn state(&self, s: &str) -> String {
        self.states
            .iter()
            .find(|(k, _)| *k == s)
            .map_or_else(|| s.to_string(), |(_, v)| v.to_string())
    }
}

static EN: Catalogue = Catalogue {
    title_access: "Your personal data",
    title_portability: "Your data, to take elsewhere",
    intro: "This is a copy of the personal data we hold about you, system by system, with what the law (Art. 15 GDPR) says you must be told about it. The files beside this page hold the same data in JSON, CSV and a spreadsheet, and your recordings and emails.",
    request: "Request",
    received: "Received",
    due: "Due",
    completed: "Completed",
    outcome: "Outcome",
    system: "System",
    records: "records",
    nothing_held: "Nothing about you was found in this system.",
    not_searched: "This system could not be searched or read for this answer, so it says nothing about what the system holds about you. We will answer for it separately.",
    files: "Files",
    recording: "Recording",
    email: "Email",
    download: "open the file",
    not_included: "could not be included",
    information: "About this processing",
    controller: "Controller",
    dpo: "Data protection officer",
    categories: "Categories of data",
    purposes: "Purposes",
    recipients: "Recipients",
    retention: "How long it is kept",
    source: "Where the data comes from",
    source_text: "From you (your calls, emails and forms) and from the systems listed here, which record your contacts with us.",
    automated: "Automated decisions",
    no_automated: "No decision about you is taken by automated means alone, and no profiling is done.",
    your_rights: "Your rights",
    rights: [
        "to have inaccurate data corrected (Art. 16)",
        "to have your data erased (Art. 17)",
        "to have its processing restricted (Art. 18)",
        "to receive the data you provided in a machine-readable form, and to have it sent to another controller (Art. 20)",
        "to object to processing, and at any time to direct marketing (Art. 21)",
        "to withdraw your consent at any time, without affecting what was done before (Art. 7(3))",
    ],
    complaint: "Complaints",
    complaint_text: "You may lodge a complaint with a supervisory authority, in particular where you live or work:",
    not_set: "(not configured)",
    machine_readable: "Machine-readable copies",
    other_voices: "Recordings hold the voices of others on the call (our agents); they cannot be removed from the recording.",
    states: &[
        ("done", "done"),
        ("partial", "partly done"),
        ("failed", "could not be done"),
        ("skipped", "skipped"),
        ("completed", "completed"),
        ("partially-completed", "partly completed"),
    ],
};

static FR: Catalogue = Catalogue {
    title_access: "Vos données personnelles",
    title_portability: "Vos données, pour les emporter ailleurs",
    intro: "Voici une copie des données personnelles que nous détenons sur vous, système par système, avec ce que la loi (art. 15 du RGPD) nous impose de vous en dire. Les fichiers à côté de cette page contiennent les mêmes données en JSON, en CSV et en tableur, ainsi que vos enregistrements et vos courriels.",
    request: "Demande",
    received: "Reçue le",
    due: "Échéance",
    completed: "Terminée le",
    outcome: "Résultat",
    system: "Système",
    records: "enregistrements",
    nothing_held: "Rien vous concernant n’a été trouvé dans ce système.",
    not_searched: "Ce système n’a pas pu être consulté pour cette réponse : elle ne dit donc rien de ce qu’il détient sur vous. Nous vous répondrons séparément pour lui.",
    files: "Fichiers",
    recording: "Enregistrement audio",
    email: "Courriel",
    download: "ouvrir le fichier",
    not_included: "n’a pas pu être inclus",
    information: "À propos de ce traitement",
    controller: "Responsable du traitement",
    dpo: "Délégué à la protection des données",
    categories: "Catégories de données",
    purposes: "Finalités",
    recipients: "Destinataires",
    retention: "Durée de conservation",
    source: "Origine des données",
    source_text: "Vous-même (vos appels, courriels et formulaires) et les systèmes listés ici, qui enregistrent vos contacts avec nous.",
    automated: "Décisions automatisées",
    no_automated: "Aucune décision vous concernant n’est prise sur le seul fondement d’un traitement automatisé, et aucun profilage n’est fait.",
    your_rights: "Vos droits",
    rights: [
        "faire rectifier des données inexactes (art. 16)",
        "faire effacer vos données (art. 17)",
        "faire limiter leur traitement (art. 18)",
        "recevoir les données que vous avez fournies dans un format lisible par machine, et les faire transmettre à un autre responsable (art. 20)",
        "vous opposer au traitement, et à tout moment à la prospection (art. 21)",
        "retirer votre consentement à tout moment, sans effet sur ce qui a été fait avant (art. 7(3))",
    ],
    complaint: "Réclamations",
    complaint_text: "Vous pouvez introduire une réclamation auprès d’une autorité de contrôle, notamment là où vous vivez ou travaillez :",
    not_set: "(non configuré)",
    machine_readable: "Copies lisibles par machine",
    other_voices: "Les enregistrements contiennent la voix d’autres personnes présentes lors de l’appel (nos conseillers) ; elles ne peuvent pas en être retirées.",
    states: &[
        ("done", "fait"),
        ("partial", "fait en partie"),
        ("failed", "n’a pas pu être fait"),
        ("skipped", "ignoré"),
        ("completed", "terminée"),
        ("partially-completed", "terminée en partie"),
    ],
};
