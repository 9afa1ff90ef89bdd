//! Calling remote stages: found through the Component Registry by
//! capability `pipeline.stage.<name>`, called by request/reply with the
//! stage's timeout (`cim_pipeline_api::stage`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cim_pipeline_api::stage::{StageReply, StageRequest, capability, subject_suffix};
use cim_registry_api::ComponentQuery;
use serde_json::Value;

use crate::run::{Context, Input, Pipeline};

/// How long a discovered subject is used before asking the registry again.
const DISCOVERY_TTL: Duration = Duration::from_secs(10);

static SUBJECTS: Mutex<Option<HashMap<String, (String, Instant)>>> = Mutex::new(None);

async fn subject(ctx: &Context, stage: &str) -> Result<String, String> {
    if let Some((subject, at)) = SUBJECTS.lock().expect("lock").get_or_insert_with(HashMap::new).get(stage)
        && at.elapsed() < DISCOVERY_TTL
    {
        return Ok(subject.clone());
    }
    let query = ComponentQuery { name: None, capability: Some(capability(stage)) };
    let list = ctx.registry.components(&query).await.map_err(|e| format!("finding remote stage {stage:?}: {e}"))?;
    let suffix = subject_suffix(stage);
    let subject = list
        .components
        .iter()
        .find_map(|c| c.registration.subjects.iter().find(|s| s.ends_with(&suffix)).cloned())
        .ok_or_else(|| format!("no component serves remote stage {stage:?} (capability {})", capability(stage)))?;
    SUBJECTS
        .lock()
        .expect("lock")
        .get_or_insert_with(HashMap::new)
        .insert(stage.to_owned(), (subject.clone(), Instant::now()));
    Ok(subject)
}

/// Sends one value to a remote stage; the values it answers.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    ctx: &Context,
    pipeline: &Pipeline,
    input: &Input,
    stage_name: &str,
    remote: &str,
    timeout: Duration,
    options: &Value,
    value: &Value,
) -> Result<Vec<Value>, String> {
    let subject = subject(ctx, remote).await?;
    let request = StageRequest {
        pipeline: pipeline.name.clone(),
        version: pipeline.version,
        stage: stage_name.to_owned(),
        input_cid: input.cid().to_string(),
        value: value.clone(),
        options: options.clone(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    let request = async_nats::Request::new().payload(body.into()).timeout(Some(timeout));
    let reply = ctx.client.send_request(subject.clone(), request).await.map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::TimedOut => format!("remote stage {remote:?} did not answer within {timeout:?}"),
        async_nats::RequestErrorKind::NoResponders => format!("remote stage {remote:?}: nobody serves {subject}"),
        _ => format!("remote stage {remote:?}: {e}"),
    })?;
    if let Some(error) = cim_wire::WireError::from_reply(reply.headers.as_ref(), &reply.payload) {
        return Err(format!("remote stage {remote:?} failed: {} ({})", error.message, error.code));
    }
    let reply: StageReply = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("remote stage {remote:?} answered something that is not a stage reply: {e}"))?;
    if reply.values.len() > ctx.settings.max_values {
        return Err(format!("remote stage {remote:?} answered more than {} values", ctx.settings.max_values));
    }
    Ok(reply.values)
}
