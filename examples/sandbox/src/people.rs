//! The synthetic population every stand-in is seeded from.
//!
//! Deterministic: the same count gives the same people, so tests and docs can
//! name them. Phone numbers come from Ofcom's London range reserved for
//! drama (020 7946 0000 to 020 7946 0999; libphonenumber accepts them as
//! valid, unlike the 07700 900xxx mobile drama range), emails from the
//! reserved `example.*` domains: none of them can reach a real person.

/// One synthetic person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Index in the population (0 is the demo person).
    pub index: usize,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Primary email address, as the person gives it.
    pub email: String,
    /// A second email address (work or old), for some people.
    pub other_email: Option<String>,
    /// Phone number in E.164 (`+442079460123`).
    pub phone: String,
}

impl Person {
    /// "First Last".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// The number in the UK national format with spaces (`020 7946 0123`).
    pub fn phone_national(&self) -> String {
        let rest = &self.phone[3..]; // after +44
        format!("0{} {} {}", &rest[..2], &rest[2..6], &rest[6..])
    }

    /// The number in national format without spaces (`02079460123`).
    pub fn phone_national_compact(&self) -> String {
        format!("0{}", &self.phone[3..])
    }

    /// The number in the international format with spaces
    /// (`+44 20 7946 0123`).
    pub fn phone_international(&self) -> String {
        let rest = &self.phone[3..];
        format!("+44 {} {} {}", &rest[..2], &rest[2..6], &rest[6..])
    }

    /// Which systems hold this person. The first ten people are in all four.
    pub fn systems(&self) -> Systems {
        let i = self.index;
        let all = i < 10;
        Systems {
            acd: all || i.is_multiple_of(2),
            dialer: all || i % 3 != 1,
            mail: all || i % 2 == 1 || i.is_multiple_of(7),
            crm: all || !i.is_multiple_of(5),
        }
    }
}

/// Where a person has data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Systems {
    /// The contact-center platform (Genesys stand-in).
    pub acd: bool,
    /// The outbound dialer.
    pub dialer: bool,
    /// The support mailbox (JMAP).
    pub mail: bool,
    /// The CRM.
    pub crm: bool,
}

const FIRST: &[&str] = &[
    "Camille",
    "Alex",
    "Sam",
    "Jordan",
    "Morgan",
    "Robin",
    "Charlie",
    "Dominique",
    "Claude",
    "Noor",
    "Ines",
    "Mateo",
    "Aiko",
    "Lena",
    "Tomasz",
    "Priya",
    "Oskar",
    "Amara",
    "Elif",
    "Yusuf",
    "Freya",
    "Hugo",
    "Maja",
    "Rafael",
    "Sofia",
    "Kenji",
    "Leila",
    "Niamh",
    "Emil",
    "Zara",
];
const LAST: &[&str] = &[
    "Martin",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Haddad",
    "Fischer",
    "Costa",
    "Tanaka",
    "Brennan",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Nielsen",
    "Santos",
    "Ivanova",
    "Byrne",
    "Keller",
    "Yilmaz",
    "Andersen",
    "Laurent",
    "Petrov",
    "Walsh",
    "Meyer",
    "Garcia",
    "Sato",
    "Larsen",
    "Ferreira",
    "Hughes",
    "Schmidt",
    "Bianchi",
];
const DOMAINS: &[&str] = &["example.org", "example.com", "example.net"];

/// The first `count` synthetic people (at most 1000: one per drama number).
pub fn population(count: usize) -> Vec<Person> {
    (0..count.min(1000)).map(person).collect()
}

fn person(i: usize) -> Person {
    // Person 0 is the demo person, always Camille Martin.
    let first = FIRST[(i * 7) % FIRST.len()];
    let last = LAST[(i * 11 + i / FIRST.len()) % LAST.len()];
    let domain = DOMAINS[i % DOMAINS.len()];
    let local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
    // Unique addresses: a number after everyone but the first of a name.
    let email = if i < FIRST.len() {
        format!("{local}@{domain}")
    } else {
        format!("{local}{i}@{domain}")
    };
    let other_email = i
        .is_multiple_of(4)
        .then(|| format!("{}{}@work.example.com", &local[..1], i));
    // Spread the numbers over the drama range.
    let n = (i * 379 + 123) % 1000;
    Person {
        index: i,
        first_name: first.to_string(),
        last_name: last.to_string(),
        email,
        other_email,
        phone: format!("+442079460{n:03}"),
    }
}

/// A small deterministic generator (SplitMix64), so seeding needs no crate
/// and never changes between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_unique_and_formats_agree() {
        let people = population(400);
        let mut emails: Vec<_> = people.iter().map(|p| p.email.clone()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 400);
        let mut phones: Vec<_> = people.iter().map(|p| p.phone.clone()).collect();
        phones.sort();
        phones.dedup();
        assert_eq!(phones.len(), 400);
        let p = &people[0];
        assert_eq!(p.full_name(), "Camille Martin");
        assert_eq!(
            p.phone_national().replace(' ', ""),
            p.phone_national_compact()
        );
        assert_eq!(p.phone_international().replace(' ', ""), p.phone);
    }
}
