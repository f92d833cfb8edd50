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

    /// Its name, in English (for messages to the operator).
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "French",
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
    pub(crate) intro_portability: &'static str,
    pub(crate) request: &'static str,
    pub(crate) received: &'static str,
    pub(crate) due: &'static str,
    pub(crate) completed: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) system: &'static str,
    pub(crate) records: &'static str,
    pub(crate) record: &'static str,
    pub(crate) nothing_held: &'static str,
    pub(crate) not_searched: &'static str,
    pub(crate) files: &'static str,
    pub(crate) recording: &'static str,
    pub(crate) email: &'static str,
    pub(crate) download: &'static str,
    pub(crate) not_included: &'static str,
    pub(crate) information: &'static str,
    pub(crate) machine_readable: &'static str,
    pub(crate) other_voices: &'static str,
    pub(crate) left_out: &'static str,
    pub(crate) recordings_excluded: &'static str,
    pub(crate) held: &'static str,
    pub(crate) held_intro: &'static str,
    pub(crate) consents: &'static str,
    pub(crate) restrictions: &'static str,
    pub(crate) your_requests: &'static str,
    pub(crate) nothing: &'static str,
    pub(crate) purpose: &'static str,
    pub(crate) action: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) date: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) state_word: &'static str,
    pub(crate) languages: &'static str,
    pub(crate) months: [&'static str; 12],
    pub(crate) at: &'static str,
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
    intro_portability: "This is the personal data you gave us, and what we observed of your use of our services, where we process it with your consent or under a contract with you, in machine-readable files you can take to another provider (Art. 20 GDPR). To see everything we hold about you, and why, make an access request (Art. 15 GDPR).",
    request: "Request",
    received: "Received",
    due: "Due",
    completed: "Answered",
    outcome: "Outcome",
    system: "System",
    records: "records",
    record: "Record",
    nothing_held: "Nothing about you was found in this system.",
    not_searched: "This system could not be searched or read for this answer, so it says nothing about what the system holds about you. We will answer for it separately.",
    files: "Files",
    recording: "Recording",
    email: "Email",
    download: "open the file",
    not_included: "could not be included",
    information: "About this processing",
    machine_readable: "Machine-readable copies",
    other_voices: "Recordings hold the voices of others on the call (our agents); they cannot be removed from the recording.",
    left_out: "Records left out because nothing in them falls under portability:",
    recordings_excluded: "Recordings left out: they hold other people's voices, and portability must not affect others (Art. 20(4) GDPR); an access request gives them to you:",
    held: "What this service itself holds about you",
    held_intro: "To handle your requests we keep the requests themselves, your consents and the restrictions you asked for.",
    consents: "Consents",
    restrictions: "Restrictions and objections in force",
    your_requests: "Your requests",
    nothing: "None.",
    purpose: "Purpose",
    action: "Action",
    channel: "Channel",
    date: "Date",
    scope: "Scope",
    kind: "Kind",
    state_word: "State",
    languages: "This page in other languages:",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    at: ",",
    states: &[
        ("done", "done"),
        ("nothing", "nothing found"),
        ("partial", "partly done"),
        ("failed", "could not be done"),
        ("skipped", "skipped"),
        ("needs-attention", "waiting for us"),
        ("completed", "completed"),
        ("partially-completed", "partly completed"),
        ("received", "received"),
        ("executing", "in progress"),
        ("rejected", "rejected"),
        ("cancelled", "cancelled"),
        ("given", "given"),
        ("withdrawn", "withdrawn"),
        ("access", "access"),
        ("portability", "portability"),
        ("erasure", "erasure"),
        ("rectification", "rectification"),
        ("restriction", "restriction"),
        ("objection", "objection"),
    ],
};

static FR: Catalogue = Catalogue {
    title_access: "Vos données personnelles",
    title_portability: "Vos données, pour les emporter ailleurs",
    intro: "Voici une copie des données personnelles que nous détenons sur vous, système par système, avec ce que la loi (art. 15 du RGPD) nous impose de vous en dire. Les fichiers à côté de cette page contiennent les mêmes données en JSON, en CSV et en tableur, ainsi que vos enregistrements audio et vos courriels.",
    intro_portability: "Voici les données personnelles que vous nous avez fournies, et celles observées lors de votre utilisation de nos services, lorsque nous les traitons avec votre consentement ou en exécution d’un contrat avec vous, dans des fichiers lisibles par machine que vous pouvez transmettre à un autre prestataire (art. 20 du RGPD). Pour connaître tout ce que nous détenons sur vous, et pourquoi, faites une demande d’accès (art. 15 du RGPD).",
    request: "Demande",
    received: "Reçue le",
    due: "Échéance",
    completed: "Réponse du",
    outcome: "Résultat",
    system: "Système",
    records: "fiches",
    record: "Fiche",
    nothing_held: "Rien vous concernant n’a été trouvé dans ce système.",
    not_searched: "Ce système n’a pas pu être consulté pour cette réponse\u{a0}: elle ne dit donc rien de ce qu’il détient sur vous. Nous vous répondrons séparément pour lui.",
    files: "Fichiers",
    recording: "Enregistrement audio",
    email: "Courriel",
    download: "ouvrir le fichier",
    not_included: "n’a pas pu être inclus",
    information: "À propos de ce traitement",
    machine_readable: "Copies lisibles par machine",
    other_voices: "Les enregistrements audio contiennent la voix d’autres personnes présentes lors de l’appel (nos conseillers)\u{a0}; elle ne peut pas en être retirée.",
    left_out: "Fiches écartées, car rien de ce qu’elles contiennent ne relève de la portabilité\u{a0}:",
    recordings_excluded: "Enregistrements audio écartés\u{a0}: ils contiennent la voix d’autres personnes, et la portabilité ne doit pas porter atteinte à autrui (art. 20(4) du RGPD)\u{a0}; une demande d’accès vous les donne\u{a0}:",
    held: "Ce que ce service détient lui-même sur vous",
    held_intro: "Pour traiter vos demandes, nous conservons les demandes elles-mêmes, vos consentements et les limitations que vous avez demandées.",
    consents: "Consentements",
    restrictions: "Limitations et oppositions en vigueur",
    your_requests: "Vos demandes",
    nothing: "Aucun.",
    purpose: "Finalité",
    action: "Action",
    channel: "Canal",
    date: "Date",
    scope: "Portée",
    kind: "Type",
    state_word: "État",
    languages: "Cette page dans d’autres langues\u{a0}:",
    months: [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    at: " à",
    states: &[
        ("done", "fait"),
        ("nothing", "rien trouvé"),
        ("partial", "fait en partie"),
        ("failed", "n’a pas pu être fait"),
        ("skipped", "ignoré"),
        ("needs-attention", "en attente de notre part"),
        ("completed", "terminée"),
        ("partially-completed", "terminée en partie"),
        ("received", "reçue"),
        ("executing", "en cours"),
        ("rejected", "refusée"),
        ("cancelled", "annulée"),
        ("given", "donné"),
        ("withdrawn", "retiré"),
        ("access", "accès"),
        ("portability", "portabilité"),
        ("erasure", "effacement"),
        ("rectification", "rectification"),
        ("restriction", "limitation"),
        ("objection", "opposition"),
    ],
};
