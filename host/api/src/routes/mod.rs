//! The routes, one module per resource: each checks the caller's role
//! (before reading a body), reads its input, calls the engine and shapes the
//! answer, with no logic of its own. A route's path is written once, in its
//! `#[utoipa::path]`: [`api`] registers it with axum and in the OpenAPI
//! document together.

use crate::AppState;
use crate::problem::{ApiResult, Problem};
use oubli_core::identifiers::{Identifiers, Region};
use oubli_core::rights::engine::RequestDetail;
use oubli_core::rights::tokens::Role;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

mod evidence;
mod ops;
mod requests;
mod retention;
mod subjects;
mod systems;

pub use evidence::*;
pub use ops::*;
pub use requests::*;
pub use retention::*;
pub use subjects::*;
pub use systems::*;

/// Every route of the API, with its OpenAPI entry.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(requests::router())
        .merge(subjects::router())
        .merge(systems::router())
        .merge(evidence::router())
        .merge(ops::router())
        .merge(retention::router())
}

const MAX_ITEMS: usize = 20;
const MAX_TEXT: usize = 1000;
/// The longest identifier taken, in characters.
const MAX_IDENTIFIER: usize = 320;

/// Read a nested object only from a JSON object: serde would also take an
/// array of its fields in order (`"evidence": [null, null]`), which the
/// OpenAPI document does not allow.
pub(crate) fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let map = serde_json::Map::deserialize(d)?;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom)
}

/// [`object`], for each item of a list.
pub(crate) fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    Vec::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?
        .into_iter()
        .map(|map| serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom))
        .collect()
}

/// [`object`], for an optional one.
pub(crate) fn maybe_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(serde_json::Value::Object(map))
            .map(Some)
            .map_err(D::Error::custom),
    }
}

/// A subject, by the identifiers the caller knows: at least one email
/// address, phone number or external id (names alone are never enough to act
/// on).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectInput {
    /// Email addresses.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Phone numbers (international, or national in `region`).
    #[serde(default)]
    pub phones: Vec<String>,
    /// Names (hints only, never enough to act on).
    #[serde(default)]
    pub names: Vec<String>,
    /// `namespace:id` pairs (`crm:0031`).
    #[serde(default)]
    pub external_ids: Vec<String>,
}

/// Its schema says what the derive cannot: one of the lists that identify a
/// person must have an item.
impl utoipa::PartialSchema for SubjectInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{
            AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema,
        };
        let list = |item: &str, doc: &str| {
            ArrayBuilder::new()
                .items(Ref::from_schema_name(item))
                .max_items(Some(MAX_ITEMS))
                .description(Some(doc))
        };
        let lists = ObjectBuilder::new()
            .property("emails", list("EmailAddress", "Email addresses."))
            .property(
                "phones",
                list(
                    "PhoneNumber",
                    "Phone numbers (international, or national in `region`).",
                ),
            )
            .property(
                "names",
                list("PersonName", "Names (hints only, never enough to act on)."),
            )
            .property(
                "external_ids",
                list(
                    "ExternalIdInput",
                    "`namespace:id` pairs (`crm.contact:0031`).",
                ),
            )
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        let mut one_of_these = AnyOfBuilder::new();
        for field in ["emails", "phones", "external_ids"] {
            one_of_these = one_of_these.item(
                ObjectBuilder::new()
                    .property(field, ArrayBuilder::new().min_items(Some(1)))
                    .required(field),
            );
        }
        Schema::AllOf(
            AllOfBuilder::new()
                .description(Some(
                    "A subject, by the identifiers the caller knows: at least one email address, phone number or external id (names alone are never enough to act on).",
                ))
                .item(lists)
                .item(one_of_these)
                .build(),
        )
        .into()
    }
}

impl ToSchema for SubjectInput {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        for (name, schema) in [
            (
                "EmailAddress",
                <EmailAddress as utoipa::PartialSchema>::schema(),
            ),
            (
                "PhoneNumber",
                <PhoneNumber as utoipa::PartialSchema>::schema(),
            ),
            (
                "PersonName",
                <PersonName as utoipa::PartialSchema>::schema(),
            ),
            (
                "ExternalIdInput",
                <ExternalIdInput as utoipa::PartialSchema>::schema(),
            ),
        ] {
            out.push((name.to_string(), schema));
        }
    }
}

impl SubjectInput {
    pub(crate) fn identifiers(self) -> Result<Identifiers, Problem> {
        for list in [&self.emails, &self.phones, &self.names, &self.external_ids] {
            if list.len() > MAX_ITEMS {
                return Err(Problem::unprocessable(format!(
                    "at most {MAX_ITEMS} identifiers of each kind"
                )));
            }
            if list.iter().any(|s| s.trim().is_empty()) {
                return Err(Problem::unprocessable("an identifier is empty"));
            }
            if list.iter().any(|s| s.chars().count() > MAX_IDENTIFIER) {
                return Err(Problem::unprocessable(format!(
                    "an identifier is longer than {MAX_IDENTIFIER} characters"
                )));
            }
        }
        Ok(Identifiers {
            emails: self.emails,
            phones: self.phones,
            names: self.names,
            external_ids: self.external_ids,
        })
    }
}

pub(crate) fn region(r: Option<String>) -> Result<Option<Region>, Problem> {
    r.map(|r| {
        r.parse::<Region>()
            .map_err(|_| Problem::unprocessable("region is not an ISO 3166 code such as FR"))
    })
    .transpose()
}

pub(crate) fn text(what: &str, s: &str) -> Result<(), Problem> {
    if s.chars().count() > MAX_TEXT {
        return Err(Problem::unprocessable(format!(
            "{what} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

// What the OpenAPI document says of the strings the routes take, so that a
// client (or a fuzzer) can send valid ones. Schemas only: the values travel
// as plain strings.

macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $build:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Type};
                let build: fn(ObjectBuilder) -> ObjectBuilder = $build;
                build(ObjectBuilder::new().schema_type(Type::String)).into()
            }
        }
        impl ToSchema for $name {}
    };
}

string_schema!(
    /// An email address (an IDNA domain is welcome).
    EmailAddress,
    |b| b
        .format(Some(utoipa::openapi::SchemaFormat::Custom("email".into())))
        .min_length(Some(3))
        .max_length(Some(MAX_IDENTIFIER))
        .examples(["ada@example.com"])
);

string_schema!(
    /// A phone number: international (`+33 6 12 34 56 78`), or national in
    /// the request's `region`.
    PhoneNumber,
    |b| b
        .pattern(Some(r"^\+?[0-9][0-9 ()./-]{1,30}$"))
        .max_length(Some(32))
        .examples(["+33612345678"])
);

string_schema!(
    /// A person's name: a hint for systems that search by name, never
    /// enough to act on alone.
    PersonName,
    |b| b
        .min_length(Some(1))
        .pattern(Some(r"\S"))
        .max_length(Some(MAX_IDENTIFIER))
        .examples(["Ada Lovelace"])
);

string_schema!(
    /// A system-specific id, `namespace:id`.
    ExternalIdInput,
    |b| b
        .pattern(Some(r"^[^:]+:.+$"))
        .max_length(Some(MAX_IDENTIFIER))
        .examples(["crm.contact:0031"])
);

string_schema!(
    /// A country, ISO 3166 alpha-2, for national phone numbers.
    RegionCode,
    |b| b.pattern(Some("^[A-Za-z]{2}$")).examples(["FR"])
);

string_schema!(
    /// A scope or purpose of a restriction, objection or consent withdrawal
    /// (`all`, a data category, `direct-marketing`).
    ScopeName,
    |b| b
        .pattern(Some("^[A-Za-z0-9_-]{1,64}$"))
        .examples(["direct-marketing"])
);

string_schema!(
    /// A request's id (`r-` and letters or digits).
    RequestId,
    |b| b
        .pattern(Some("^[A-Za-z0-9._-]{1,128}$"))
        .examples(["r-k3j2h5g7"])
);

string_schema!(
    /// A retention policy's id.
    PolicyId,
    |b| b.pattern(Some("^[a-z0-9_-]{1,64}$")).examples(["mail-2y"])
);

string_schema!(
    /// A retention run's id.
    RunId,
    |b| b
        .pattern(Some("^[A-Za-z0-9._-]{1,128}$"))
        .examples(["s-k3j2h5g7"])
);

string_schema!(
    /// A system's name in the configuration.
    SystemName,
    |b| b.pattern(Some("^[a-z0-9_-]{1,64}$")).examples(["crm"])
);

string_schema!(
    /// Text that must say something (a reason, how the subject was told, a
    /// note): not blank, at most 1,000 characters.
    RequiredText,
    |b| b
        .min_length(Some(1))
        .max_length(Some(MAX_TEXT))
        .pattern(Some(r"\S"))
        .examples(["the subject asked by phone"])
);

string_schema!(
    /// What a request asks for, when it is filed (a lift is filed on the
    /// request it lifts: `POST /v1/requests/{id}/lift`).
    FilingKind,
    |b| b.enum_values(Some(
        oubli_model::RequestKind::ALL
            .iter()
            .filter(|k| **k != oubli_model::RequestKind::Lift)
            .map(|k| k.as_str()),
    ))
);

string_schema!(
    /// How consent was given or withdrawn.
    ConsentChannel,
    |b| b.enum_values(Some(["call", "ivr", "email", "web"]))
);

string_schema!(
    /// A short name (a consent's purpose, lawful basis, source system): not
    /// blank, at most 100 characters, no control characters.
    Label,
    |b| b
        .min_length(Some(1))
        .max_length(Some(100))
        .pattern(Some(r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"))
        .examples(["marketing-calls"])
);

string_schema!(
    /// Free text (a reason, a note, evidence): at most 1,000 characters.
    Text,
    |b| b.max_length(Some(MAX_TEXT)).examples(["the subject asked by phone"])
);

/// What an auditor may see of a request: no plans, no results, no notes.
pub(crate) fn for_role(mut d: RequestDetail, role: Role) -> RequestDetail {
    if !role.allows(Role::Operator) {
        for s in &mut d.systems {
            s.plan = None;
            s.result = None;
            if let Some(e) = &mut s.error {
                e.message = String::new();
            }
        }
        if let Some(e) = d.planning.as_mut().and_then(|p| p.error.as_mut()) {
            e.message = String::new();
        }
        for e in &mut d.events {
            if e.reason.is_some() {
                e.reason = Some("(withheld)".into());
            }
        }
    }
    d
}

pub(crate) fn valid_id(id: &str) -> Result<(), Problem> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Problem::not_found(
            "no such request (ids are letters, digits, - _ .)",
        ));
    }
    Ok(())
}

async fn shown(state: &AppState, id: &str, role: Role) -> ApiResult<axum::Json<RequestDetail>> {
    Ok(axum::Json(for_role(state.engine.show(id).await?, role)))
}

/// A reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the subject withdrew the request by phone"}))]
pub struct ReasonInput {
    /// Why (kept sealed).
    #[schema(value_type = RequiredText)]
    pub reason: String,
}
