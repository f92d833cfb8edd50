//! `oubli-connectors`: the four reference connectors (Genesys Cloud, an
//! outbound dialer, JMAP mail, a HubSpot-shaped CRM), compiled for
//! `wasm32-wasip2` from `plugins/` by this crate's build script and embedded
//! as bytes, so that the `oubli` binary carries them for `oubli demo`.
//!
//! Integrators deploy connectors as `.wasm` files named in `oubli.toml`; this
//! crate is how the demo gets them without a build tree.
//!
//! ```
//! let names: Vec<&str> = oubli_connectors::REFERENCE.iter().map(|c| c.name).collect();
//! assert_eq!(names, ["genesys-cloud", "dialer", "jmap-mail", "crm"]);
//! assert!(oubli_connectors::REFERENCE.iter().all(|c| c.wasm.starts_with(b"\0asm")));
//! ```

#![warn(missing_docs)]

/// One embedded connector component.
#[derive(Debug, Clone, Copy)]
pub struct Connector {
    /// Its crate name in `plugins/`, also the file stem the demo writes.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
