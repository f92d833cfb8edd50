//! The contract versions side by side: which one a component was built
//! against (from the interface it exports), and one call per operation that
//! dispatches to that version's bindings and answers in the host's model.
//! The rest of the runtime calls [`Bindings`] and never sees a generated
//! type; a new version is a module beside [`v0_1`] and [`v0_2`] and one arm
//! in each match here.

use crate::capability::PluginState;
use crate::{v0_1, v0_2};
use oubli_model as model;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// What a call answers: a trap or host failure (outer), or the connector's
/// own answer (inner).
pub(crate) type Answer<T> = wasmtime::Result<Result<T, model::ConnectorError>>;

/// The contract a component exports, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Pre {
    /// `oubli:connector@0.1.x`.
    V0_1(v0_1::PluginPre<PluginState>),
    /// `oubli:connector@0.2.x`.
    V0_2(v0_2::PluginPre<PluginState>),
}

/// One instance's exports, of whichever version.
pub(crate) enum Bindings {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl Pre {
    /// Which contract `exports` (the component's export names) implement,
    /// and its typed entry points; `Err` says why it is not a connector.
    pub(crate) fn new(
        instance_pre: InstancePre<PluginState>,
        exports: &[String],
    ) -> Result<Pre, String> {
        let version = exports
            .iter()
            .find_map(|e| e.strip_prefix("oubli:connector/connector@"))
            .ok_or_else(|| "it exports no `oubli:connector/connector` interface".to_string())?;
        if version.starts_with("0.2.") {
            v0_2::PluginPre::new(instance_pre)
                .map(Pre::V0_2)
                .map_err(|e| format!("{e:#}"))
        } else if version.starts_with("0.1.") {
            v0_1::PluginPre::new(instance_pre)
                .map(Pre::V0_1)
                .map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "it exports contract version {version}; this host serves {}",
                crate::SUPPORTED_WIT.join(", ")
            ))
        }
    }

    /// The contract version the component exports (`0.2.0`).
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => v0_1::VERSION,
            Pre::V0_2(_) => v0_2::VERSION,
        }
    }

    /// A fresh instance.
    pub(crate) async fn instantiate_async(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_1(p) => Bindings::V0_1(p.instantiate_async(store).await?),
            Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(store).await?),
        })
    }
}

/// The same expression for each version's bindings (`$p` bound to them):
/// what differs between versions is in their own modules' conversions.
macro_rules! each_version {
    ($bindings:expr, $p:ident => $body:expr) => {
        match $bindings {
            Bindings::V0_1($p) => $body,
            Bindings::V0_2($p) => $body,
        }
    };
}

/// Each operation, in the model. Arguments are converted before the call
/// and results after it, by each version's own conversions.
impl Bindings {
    pub(crate) async fn manifest(&self, store: &mut Store<PluginState>) -> Answer<model::Manifest> {
        Ok(Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_manifest(store)
            .await?
            .into())))
    }

    pub(crate) async fn locate(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
    ) -> Answer<Vec<model::Located>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_locate(store, &subject.into())
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }

    pub(crate) async fn export(
        &self,
        store: &mut Store<PluginState>,
        refs: &[model::RecordRef],
    ) -> Answer<Vec<model::Exported>> {
        Ok(each_version!(self, p => {
            let refs: Vec<_> = refs.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_export(store, &refs)
                .await?
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn read_attachment(
        &self,
        store: &mut Store<PluginState>,
        reference: &model::RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Answer<Vec<u8>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_read_attachment(store, &reference.into(), name, offset, max_len)
            .await?
            .map_err(Into::into)))
    }

    pub(crate) async fn rectify(
        &self,
        store: &mut Store<PluginState>,
        reference: &model::RecordRef,
        changes: &[model::Change],
    ) -> Answer<model::Outcome> {
        Ok(each_version!(self, p => {
            let changes: Vec<_> = changes.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_rectify(store, &reference.into(), &changes)
                .await?
                .map(Into::into)
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn erase(
        &self,
        store: &mut Store<PluginState>,
        refs: &[model::RecordRef],
        mode: model::EraseMode,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => {
            let refs: Vec<_> = refs.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_erase(store, &refs, mode.into())
                .await?
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn detach(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
        refs: &[model::RecordRef],
    ) -> Answer<Vec<model::Outcome>> {
        Ok(match self {
            Bindings::V0_1(_) => Err(model::ConnectorError::NotSupported(
                "built against contract 0.1, which has no `detach`".into(),
            )),
            Bindings::V0_2(p) => {
                let refs: Vec<_> = refs.iter().map(Into::into).collect();
                p.oubli_connector_connector()
                    .call_detach(store, &subject.into(), &refs)
                    .await?
                    .map(|v| v.into_iter().map(Into::into).collect())
                    .map_err(Into::into)
            }
        })
    }

    pub(crate) async fn sweep(
        &self,
        store: &mut Store<PluginState>,
        query: &model::SweepQuery,
    ) -> Answer<Vec<model::Dated>> {
        Ok(match self {
            Bindings::V0_1(_) => Err(model::ConnectorError::NotSupported(
                "built against contract 0.1, which has no `sweep`".into(),
            )),
            Bindings::V0_2(p) => p
                .oubli_connector_connector()
                .call_sweep(store, &query.into())
                .await?
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(Into::into),
        })
    }

    pub(crate) async fn restrict(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
        scope: &[String],
        on: bool,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_restrict(store, &subject.into(), scope, on)
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }

    pub(crate) async fn poll(
        &self,
        store: &mut Store<PluginState>,
        ticket: &str,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_poll(store, ticket)
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }
}
